//! The block list and the publish history on every backend.

mod support;

use liverec_catalog::{ForbidOutcome, PublishOrder, PublishQuery, PublishRow};

fn now_ms() -> i64 {
    liverec_catalog::unix_ms(std::time::SystemTime::now())
}

#[tokio::test]
async fn forbidding_is_once_until_resumed_or_expired_and_capped() {
    for fx in support::catalogs().await {
        let c = &fx.catalog;
        let label = fx.label;
        let later = now_ms() + 3_600_000;
        assert_eq!(
            c.forbid_stream("d.example", "live", "a", later, 2)
                .await
                .unwrap(),
            ForbidOutcome::Forbidden,
            "{label}"
        );
        assert_eq!(
            c.forbid_stream("d.example", "live", "a", later + 1, 2)
                .await
                .unwrap(),
            ForbidOutcome::AlreadyForbidden,
            "{label}"
        );
        assert_eq!(
            c.forbidden_until("d.example", "live", "a").await.unwrap(),
            Some(later),
            "{label}: a second forbid keeps the first ResumeTime"
        );
        assert_eq!(
            c.forbid_stream("e.example", "live", "b", later, 2)
                .await
                .unwrap(),
            ForbidOutcome::Forbidden,
            "{label}"
        );
        assert_eq!(
            c.forbid_stream("d.example", "live", "c", later, 2)
                .await
                .unwrap(),
            ForbidOutcome::LimitReached,
            "{label}: the limit counts every domain"
        );
        let (page, total) = c.forbidden_streams("d.example", 1, 10).await.unwrap();
        assert_eq!(total, 1, "{label}");
        assert_eq!(
            (page[0].app.as_str(), page[0].stream.as_str()),
            ("live", "a")
        );

        assert!(c.resume_stream("d.example", "live", "a").await.unwrap());
        assert!(!c.resume_stream("d.example", "live", "a").await.unwrap());
        assert_eq!(
            c.forbidden_until("d.example", "live", "a").await.unwrap(),
            None
        );

        // An entry whose ResumeTime has passed forbids nothing and frees its place.
        let past = now_ms() - 1;
        c.resume_stream("e.example", "live", "b").await.unwrap();
        assert_eq!(
            c.forbid_stream("d.example", "live", "x", now_ms() + 60, 2)
                .await
                .unwrap(),
            ForbidOutcome::Forbidden,
            "{label}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(80)).await;
        assert_eq!(
            c.forbidden_until("d.example", "live", "x").await.unwrap(),
            None,
            "{label}: expired"
        );
        assert_eq!(c.forbidden_streams("d.example", 1, 10).await.unwrap().1, 0);
        assert_eq!(
            c.forbid_stream("d.example", "live", "x", later, 1)
                .await
                .unwrap(),
            ForbidOutcome::Forbidden,
            "{label}: an expired entry is replaced (past = {past})"
        );
    }
}

fn publish(id: &str, node: &str, app: &str, stream: &str, start: i64) -> PublishRow {
    PublishRow {
        publish_id: id.to_owned(),
        node: node.to_owned(),
        domain: "d.example".to_owned(),
        app: app.to_owned(),
        stream: stream.to_owned(),
        client_addr: "127.0.0.1:5000".to_owned(),
        publish_url: format!("rtmp://d.example/{app}/{stream}"),
        started_at: start,
        stopped_at: None,
    }
}

#[tokio::test]
async fn publish_history_filters_orders_pages_and_closes_a_crashed_nodes_rows() {
    for fx in support::catalogs().await {
        let c = &fx.catalog;
        let label = fx.label;
        let t = 1_800_000_000_000i64;
        for (i, (app, stream)) in [
            ("live", "Cam_1"),
            ("live", "cam21"),
            ("other", "cam_1"),
            ("live", "zeta"),
        ]
        .into_iter()
        .enumerate()
        {
            let row = publish(&format!("p{i}"), "n1", app, stream, t + i as i64 * 1000);
            c.publish_started(&row).await.unwrap();
        }
        c.publish_started(&publish("q", "n2", "live", "other-node", t))
            .await
            .unwrap();
        c.publish_stopped("p0", t + 500).await.unwrap();
        // Stopping twice keeps the first stop.
        c.publish_stopped("p0", t + 900).await.unwrap();

        let query = |app: Option<&str>, stream: Option<&str>, fuzzy: bool| PublishQuery {
            domain: "d.example".to_owned(),
            app: app.map(str::to_owned),
            stream: stream.map(str::to_owned),
            fuzzy,
            start: t,
            end: t + 10_000,
            order: PublishOrder::PublishTimeAsc,
            page_num: 1,
            page_size: 10,
        };
        let ids =
            |rows: Vec<PublishRow>| rows.into_iter().map(|r| r.publish_id).collect::<Vec<_>>();

        let (rows, total) = c.publish_history(&query(None, None, true)).await.unwrap();
        assert_eq!(total, 5, "{label}");
        assert_eq!(rows[0].stopped_at, Some(t + 500), "{label}");
        // Fuzzy: case-insensitive substring, `_` is a character, not a wildcard.
        let (rows, _) = c
            .publish_history(&query(None, Some("CAM_"), true))
            .await
            .unwrap();
        assert_eq!(ids(rows), ["p0", "p2"], "{label}");
        let (rows, _) = c
            .publish_history(&query(Some("live"), Some("cam21"), false))
            .await
            .unwrap();
        assert_eq!(ids(rows), ["p1"], "{label}");
        let (rows, _) = c
            .publish_history(&query(None, Some("cam"), false))
            .await
            .unwrap();
        assert!(rows.is_empty(), "{label}: strict is exact");

        // A range after p0 stopped does not list it; open publishes are active until now.
        let mut later = query(None, None, true);
        later.start = t + 600;
        let (rows, _) = c.publish_history(&later).await.unwrap();
        assert!(!ids(rows).contains(&"p0".to_owned()), "{label}");

        let mut by_name = query(None, None, true);
        by_name.order = PublishOrder::StreamNameDesc;
        by_name.page_size = 2;
        by_name.page_num = 2;
        let (rows, total) = c.publish_history(&by_name).await.unwrap();
        assert_eq!(total, 5);
        assert_eq!(
            ids(rows),
            ["p2", "p1"],
            "{label}: zeta, other-node | cam_1, cam21"
        );

        assert_eq!(c.close_open_publishes("n1", t + 5000).await.unwrap(), 3);
        let (rows, _) = c
            .publish_history(&query(None, Some("other-node"), false))
            .await
            .unwrap();
        assert_eq!(
            rows[0].stopped_at, None,
            "{label}: another node's row stays open"
        );
        assert_eq!(c.prune_publish_history(t + 4000).await.unwrap(), 1);
        let (_, total) = c.publish_history(&query(None, None, true)).await.unwrap();
        assert_eq!(total, 4, "{label}");
    }
}
