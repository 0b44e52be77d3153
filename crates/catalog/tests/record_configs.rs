//! Record configs on every backend: round trip, uniqueness, update, delete, paging.

mod support;

use liverec_catalog::{CatalogError, Page, RecordConfigRow, RecordFormatRow};

fn format(format: &str, cycle: Option<i64>) -> RecordFormatRow {
    RecordFormatRow {
        format: format.into(),
        oss_object_prefix: Some(format!("record/{{AppName}}/{{StreamName}}/{format}")),
        slice_oss_object_prefix: None,
        cycle_duration: cycle,
        slice_duration: None,
    }
}

fn config(app: &str, stream: &str, created_at: i64) -> RecordConfigRow {
    RecordConfigRow {
        domain: "live.example.com".into(),
        app: app.into(),
        stream: stream.into(),
        oss_endpoint: "oss-cn-shanghai.aliyuncs.com".into(),
        oss_bucket: "bucket".into(),
        on_demand: 0,
        delay_time: 180,
        start_time: None,
        end_time: None,
        formats: vec![format("mp4", Some(3600))],
        transcode_formats: vec![],
        transcode_templates: vec![],
        created_at,
    }
}

fn full_config() -> RecordConfigRow {
    RecordConfigRow {
        domain: "live.example.com".into(),
        app: "*".into(),
        stream: "*".into(),
        oss_endpoint: "oss.example.com".into(),
        oss_bucket: "b1".into(),
        on_demand: 7,
        delay_time: 21_600,
        start_time: Some("2026-11-25T00:00:00Z".into()),
        end_time: Some("2026-11-26T00:00:00Z".into()),
        formats: vec![
            format("mp4", Some(300)),
            RecordFormatRow {
                format: "m3u8".into(),
                oss_object_prefix: Some("a/\"quoted\"/ünïcode/{Sequence}".into()),
                slice_oss_object_prefix: Some("a/{UnixTimestamp}_{Sequence}".into()),
                cycle_duration: Some(21_600),
                slice_duration: Some(5),
            },
        ],
        transcode_formats: vec![format("flv", None)],
        transcode_templates: vec!["lld".into(), "sd".into()],
        created_at: 1_764_000_000_123,
    }
}

#[tokio::test]
async fn a_config_round_trips_every_field() {
    for f in support::catalogs().await {
        let c = &f.catalog;
        let cfg = full_config();
        c.add_record_config(&cfg).await.unwrap();
        assert_eq!(
            c.record_config("live.example.com", "*", "*").await.unwrap(),
            Some(cfg.clone()),
            "{}",
            f.label
        );
        let plain = config("live", "cam1", 5);
        c.add_record_config(&plain).await.unwrap();
        assert_eq!(
            c.record_config("live.example.com", "live", "cam1")
                .await
                .unwrap(),
            Some(plain),
            "{}",
            f.label
        );
        f.cleanup().await;
    }
}

#[tokio::test]
async fn one_config_per_domain_app_stream() {
    for f in support::catalogs().await {
        let c = &f.catalog;
        c.add_record_config(&config("live", "*", 1)).await.unwrap();
        let mut other = config("live", "*", 2);
        other.oss_bucket = "other".into();
        let again = c.add_record_config(&other).await;
        assert!(
            matches!(again, Err(CatalogError::AlreadyExists)),
            "{}: {again:?}",
            f.label
        );
        assert_eq!(
            c.record_config("live.example.com", "live", "*")
                .await
                .unwrap()
                .unwrap()
                .oss_bucket,
            "bucket"
        );
        // Any part different is another config.
        c.add_record_config(&config("live", "cam1", 3))
            .await
            .unwrap();
        c.add_record_config(&config("live2", "*", 4)).await.unwrap();
        let mut other_domain = config("live", "*", 5);
        other_domain.domain = "b.example.com".into();
        c.add_record_config(&other_domain).await.unwrap();
        assert_eq!(
            c.all_record_configs().await.unwrap().len(),
            4,
            "{}",
            f.label
        );
        f.cleanup().await;
    }
}

#[tokio::test]
async fn star_is_matched_literally() {
    for f in support::catalogs().await {
        let c = &f.catalog;
        c.add_record_config(&config("*", "*", 1)).await.unwrap();
        assert_eq!(
            c.record_config("live.example.com", "live", "cam1")
                .await
                .unwrap(),
            None,
            "{}",
            f.label
        );
        assert_eq!(
            c.record_config("live.example.com", "live", "*")
                .await
                .unwrap(),
            None,
            "{}",
            f.label
        );
        assert!(
            c.record_config("live.example.com", "*", "*")
                .await
                .unwrap()
                .is_some(),
            "{}",
            f.label
        );
        f.cleanup().await;
    }
}

#[tokio::test]
async fn update_replaces_fields_but_keeps_key_and_creation_time() {
    for f in support::catalogs().await {
        let c = &f.catalog;
        c.add_record_config(&config("live", "cam1", 1_000))
            .await
            .unwrap();
        let mut updated = full_config();
        updated.app = "live".into();
        updated.stream = "cam1".into();
        updated.created_at = 9_999;
        assert!(
            c.update_record_config(&updated).await.unwrap(),
            "{}",
            f.label
        );
        let stored = c
            .record_config("live.example.com", "live", "cam1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            stored,
            RecordConfigRow {
                created_at: 1_000,
                ..updated.clone()
            },
            "{}",
            f.label
        );
        // Back to empty lists and no times.
        let cleared = config("live", "cam1", 1_000);
        assert!(
            c.update_record_config(&RecordConfigRow {
                formats: vec![],
                ..cleared.clone()
            })
            .await
            .unwrap()
        );
        let stored = c
            .record_config("live.example.com", "live", "cam1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            stored,
            RecordConfigRow {
                formats: vec![],
                ..cleared
            },
            "{}",
            f.label
        );

        let missing = config("live", "cam2", 1);
        assert!(
            !c.update_record_config(&missing).await.unwrap(),
            "{}",
            f.label
        );
        assert_eq!(
            c.record_config("live.example.com", "live", "cam2")
                .await
                .unwrap(),
            None,
            "{}: no upsert",
            f.label
        );
        f.cleanup().await;
    }
}

#[tokio::test]
async fn delete_removes_only_the_exact_config() {
    for f in support::catalogs().await {
        let c = &f.catalog;
        c.add_record_config(&config("live", "*", 1)).await.unwrap();
        c.add_record_config(&config("live", "cam1", 2))
            .await
            .unwrap();
        assert!(
            !c.delete_record_config("live.example.com", "live", "cam9")
                .await
                .unwrap(),
            "{}",
            f.label
        );
        assert!(
            c.delete_record_config("live.example.com", "live", "*")
                .await
                .unwrap(),
            "{}",
            f.label
        );
        assert!(
            !c.delete_record_config("live.example.com", "live", "*")
                .await
                .unwrap(),
            "{}",
            f.label
        );
        assert!(
            c.record_config("live.example.com", "live", "cam1")
                .await
                .unwrap()
                .is_some(),
            "{}",
            f.label
        );
        // Deleted means free again.
        c.add_record_config(&config("live", "*", 3)).await.unwrap();
        f.cleanup().await;
    }
}

fn keys(rows: &[RecordConfigRow]) -> Vec<(String, String)> {
    rows.iter()
        .map(|r| (r.app.clone(), r.stream.clone()))
        .collect()
}

fn pair(app: &str, stream: &str) -> (String, String) {
    (app.into(), stream.into())
}

#[tokio::test]
async fn configs_are_paged_by_creation_time_in_both_orders() {
    for f in support::catalogs().await {
        let c = &f.catalog;
        // Inserted out of creation order; s7 belongs to another domain.
        for (stream, created) in [("s3", 30), ("s1", 10), ("s5", 50), ("s2", 20), ("s4", 40)] {
            c.add_record_config(&config("live", stream, created))
                .await
                .unwrap();
        }
        let mut foreign = config("live", "s7", 1);
        foreign.domain = "other.example.com".into();
        c.add_record_config(&foreign).await.unwrap();

        let page = |num, size, desc| Page { num, size, desc };
        let (rows, total) = c
            .record_configs("live.example.com", None, None, page(1, 2, false))
            .await
            .unwrap();
        assert_eq!(
            (keys(&rows), total),
            (vec![pair("live", "s1"), pair("live", "s2")], 5),
            "{}",
            f.label
        );
        let (rows, _) = c
            .record_configs("live.example.com", None, None, page(3, 2, false))
            .await
            .unwrap();
        assert_eq!(keys(&rows), vec![pair("live", "s5")], "{}", f.label);
        let (rows, total) = c
            .record_configs("live.example.com", None, None, page(4, 2, false))
            .await
            .unwrap();
        assert_eq!((rows.len(), total), (0, 5), "{}: past the end", f.label);
        let (rows, _) = c
            .record_configs("live.example.com", None, None, page(1, 3, true))
            .await
            .unwrap();
        assert_eq!(
            keys(&rows),
            vec![pair("live", "s5"), pair("live", "s4"), pair("live", "s3")],
            "{}",
            f.label
        );
        let (rows, _) = c
            .record_configs("live.example.com", None, None, page(2, 3, true))
            .await
            .unwrap();
        assert_eq!(
            keys(&rows),
            vec![pair("live", "s2"), pair("live", "s1")],
            "{}",
            f.label
        );
        let (rows, total) = c
            .record_configs("nowhere.example.com", None, None, page(1, 10, false))
            .await
            .unwrap();
        assert_eq!((rows.len(), total), (0, 0), "{}", f.label);
        f.cleanup().await;
    }
}

#[tokio::test]
async fn configs_filter_by_exact_app_and_stream() {
    for f in support::catalogs().await {
        let c = &f.catalog;
        for (i, (app, stream)) in [
            ("a1", "*"),
            ("a1", "x"),
            ("a2", "x"),
            ("*", "x"),
            ("a2", "y"),
        ]
        .into_iter()
        .enumerate()
        {
            c.add_record_config(&config(app, stream, i64::try_from(i).unwrap()))
                .await
                .unwrap();
        }
        let all = Page {
            num: 1,
            size: 100,
            desc: false,
        };
        let (rows, total) = c
            .record_configs("live.example.com", Some("a1"), None, all)
            .await
            .unwrap();
        assert_eq!(
            (keys(&rows), total),
            (vec![pair("a1", "*"), pair("a1", "x")], 2),
            "{}",
            f.label
        );
        let (rows, total) = c
            .record_configs("live.example.com", None, Some("x"), all)
            .await
            .unwrap();
        assert_eq!(
            (keys(&rows), total),
            (vec![pair("a1", "x"), pair("a2", "x"), pair("*", "x")], 3),
            "{}",
            f.label
        );
        let (rows, total) = c
            .record_configs("live.example.com", Some("a2"), Some("y"), all)
            .await
            .unwrap();
        assert_eq!(
            (keys(&rows), total),
            (vec![pair("a2", "y")], 1),
            "{}",
            f.label
        );
        let (rows, total) = c
            .record_configs("live.example.com", Some("*"), None, all)
            .await
            .unwrap();
        assert_eq!(
            (keys(&rows), total),
            (vec![pair("*", "x")], 1),
            "{}: `*` is literal",
            f.label
        );
        f.cleanup().await;
    }
}

/// Many configs created in the same millisecond: every page size walks each exactly once,
/// and descending is the exact reverse of ascending.
#[tokio::test]
async fn ties_in_creation_time_page_stably() {
    for f in support::catalogs().await {
        let c = &f.catalog;
        for i in 0..11 {
            c.add_record_config(&config(&format!("app{}", i % 3), &format!("s{i:02}"), 7))
                .await
                .unwrap();
        }
        let all = |desc| Page {
            num: 1,
            size: 100,
            desc,
        };
        let (asc, _) = c
            .record_configs("live.example.com", None, None, all(false))
            .await
            .unwrap();
        let (mut desc, _) = c
            .record_configs("live.example.com", None, None, all(true))
            .await
            .unwrap();
        desc.reverse();
        assert_eq!(keys(&asc), keys(&desc), "{}", f.label);
        for size in 1..=4 {
            for order in [false, true] {
                let mut walked = vec![];
                for num in 1.. {
                    let (rows, total) = c
                        .record_configs(
                            "live.example.com",
                            None,
                            None,
                            Page {
                                num,
                                size,
                                desc: order,
                            },
                        )
                        .await
                        .unwrap();
                    assert_eq!(total, 11);
                    if rows.is_empty() {
                        break;
                    }
                    walked.extend(rows);
                }
                let (expected, _) = c
                    .record_configs("live.example.com", None, None, all(order))
                    .await
                    .unwrap();
                assert_eq!(
                    keys(&walked),
                    keys(&expected),
                    "{} size {size} desc {order}",
                    f.label
                );
            }
        }
        assert_eq!(
            keys(&c.all_record_configs().await.unwrap()),
            keys(&asc),
            "{}",
            f.label
        );
        f.cleanup().await;
    }
}

#[tokio::test]
async fn page_zero_reads_as_page_one_and_size_zero_is_empty() {
    for f in support::catalogs().await {
        let c = &f.catalog;
        c.add_record_config(&config("live", "s1", 1)).await.unwrap();
        let (rows, total) = c
            .record_configs(
                "live.example.com",
                None,
                None,
                Page {
                    num: 0,
                    size: 5,
                    desc: false,
                },
            )
            .await
            .unwrap();
        assert_eq!((rows.len(), total), (1, 1), "{}", f.label);
        let (rows, total) = c
            .record_configs(
                "live.example.com",
                None,
                None,
                Page {
                    num: 1,
                    size: 0,
                    desc: false,
                },
            )
            .await
            .unwrap();
        assert_eq!((rows.len(), total), (0, 1), "{}", f.label);
        let huge = Page {
            num: u32::MAX,
            size: u32::MAX,
            desc: true,
        };
        let (rows, total) = c
            .record_configs("live.example.com", None, None, huge)
            .await
            .unwrap();
        assert_eq!((rows.len(), total), (0, 1), "{}", f.label);
        f.cleanup().await;
    }
}
