//! The recordings index on every backend: round trip, time-overlap queries at the
//! boundaries, paging, and a property test against a model of interval overlap.

mod support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};

use liverec_catalog::{CatalogError, Page, RecordingQuery, RecordingRow};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

fn recording(id: &str, stream: &str, start: i64, end: i64, created_at: i64) -> RecordingRow {
    RecordingRow {
        record_id: id.into(),
        domain: "live.example.com".into(),
        app: "live".into(),
        stream: stream.into(),
        format: "mp4".into(),
        oss_bucket: "bucket".into(),
        oss_endpoint: "oss.example.com".into(),
        oss_object: format!("record/live/{stream}/{id}.mp4"),
        start_time: start,
        end_time: end,
        duration_secs: (end - start) as f64 / 1000.0,
        size: 123_456_789_012,
        width: 1920,
        height: 1080,
        created_at,
        session_id: String::new(),
        object_prefix: String::new(),
        generated: false,
    }
}

fn query(stream: &str, start: i64, end: i64, page: Page) -> RecordingQuery {
    RecordingQuery {
        domain: "live.example.com".into(),
        app: "live".into(),
        stream: stream.into(),
        start,
        end,
        page,
    }
}

const ALL: Page = Page {
    num: 1,
    size: 1000,
    desc: false,
};

fn ids(rows: &[RecordingRow]) -> Vec<&str> {
    rows.iter().map(|r| r.record_id.as_str()).collect()
}

#[tokio::test]
async fn a_recording_round_trips_and_ids_are_unique() {
    for f in support::catalogs().await {
        let c = &f.catalog;
        let mut r = recording(
            "5f0c7e2a-0000-4000-8000-000000000001",
            "cam1",
            1_000,
            3_601_000,
            3_602_000,
        );
        r.duration_secs = 3600.04;
        c.insert_recording(&r).await.unwrap();
        let got = c
            .recording("live.example.com", "live", "cam1", &r.record_id)
            .await
            .unwrap();
        assert_eq!(got, Some(r.clone()), "{}", f.label);
        assert_eq!(
            c.recording("live.example.com", "live", "cam2", &r.record_id)
                .await
                .unwrap(),
            None,
            "{}",
            f.label
        );
        assert_eq!(
            c.recording("other.example.com", "live", "cam1", &r.record_id)
                .await
                .unwrap(),
            None,
            "{}",
            f.label
        );
        let again = c.insert_recording(&r).await;
        assert!(
            matches!(again, Err(CatalogError::AlreadyExists)),
            "{}: {again:?}",
            f.label
        );
        f.cleanup().await;
    }
}

#[tokio::test]
async fn overlap_queries_at_the_boundaries() {
    for f in support::catalogs().await {
        let c = &f.catalog;
        c.insert_recording(&recording("r", "cam1", 1_000, 2_000, 1))
            .await
            .unwrap();
        c.insert_recording(&recording("zero", "cam1", 3_000, 3_000, 2))
            .await
            .unwrap();
        let cases: [(i64, i64, &[&str]); 12] = [
            (0, 1_000, &[]),            // ends where the recording starts
            (0, 1_001, &["r"]),         // first millisecond
            (1_999, 2_500, &["r"]),     // last millisecond
            (2_000, 2_999, &[]),        // starts where the recording ends
            (1_200, 1_500, &["r"]),     // inside
            (0, 5_000, &["r", "zero"]), // around both
            (3_000, 3_001, &["zero"]),  // the instant of a zero-length recording
            (2_000, 3_000, &[]),        // ends at that instant
            (3_001, 4_000, &[]),        // after it
            (1_500, 1_500, &[]),        // empty query
            (2_000, 1_000, &[]),        // inverted query
            (i64::MIN, i64::MAX, &["r", "zero"]),
        ];
        for (start, end, expected) in cases {
            let (rows, total) = c.recordings(&query("cam1", start, end, ALL)).await.unwrap();
            assert_eq!(ids(&rows), expected, "{} [{start}, {end})", f.label);
            assert_eq!(total, expected.len() as u64, "{} [{start}, {end})", f.label);
        }
        f.cleanup().await;
    }
}

#[tokio::test]
async fn only_the_queried_stream_is_returned() {
    for f in support::catalogs().await {
        let c = &f.catalog;
        c.insert_recording(&recording("a", "cam1", 0, 10, 1))
            .await
            .unwrap();
        c.insert_recording(&recording("b", "cam2", 0, 10, 1))
            .await
            .unwrap();
        let mut other_app = recording("c", "cam1", 0, 10, 1);
        other_app.app = "live2".into();
        c.insert_recording(&other_app).await.unwrap();
        let mut other_domain = recording("d", "cam1", 0, 10, 1);
        other_domain.domain = "b.example.com".into();
        c.insert_recording(&other_domain).await.unwrap();
        let (rows, total) = c.recordings(&query("cam1", 0, 10, ALL)).await.unwrap();
        assert_eq!((ids(&rows), total), (vec!["a"], 1), "{}", f.label);
        f.cleanup().await;
    }
}

#[tokio::test]
async fn recordings_are_paged_by_creation_time_in_both_orders() {
    for f in support::catalogs().await {
        let c = &f.catalog;
        // Created in an order unlike their start times; "c" and "d" tie.
        for (id, start, created) in [
            ("a", 500, 10),
            ("b", 100, 20),
            ("c", 300, 30),
            ("d", 200, 30),
            ("e", 400, 50),
        ] {
            c.insert_recording(&recording(id, "cam1", start, start + 50, created))
                .await
                .unwrap();
        }
        let page = |num, size, desc| query("cam1", 0, 1_000, Page { num, size, desc });
        let (rows, total) = c.recordings(&page(1, 2, false)).await.unwrap();
        assert_eq!((ids(&rows), total), (vec!["a", "b"], 5), "{}", f.label);
        let (rows, _) = c.recordings(&page(2, 2, false)).await.unwrap();
        assert_eq!(ids(&rows), vec!["c", "d"], "{}", f.label);
        let (rows, _) = c.recordings(&page(3, 2, false)).await.unwrap();
        assert_eq!(ids(&rows), vec!["e"], "{}", f.label);
        let (rows, _) = c.recordings(&page(1, 3, true)).await.unwrap();
        assert_eq!(ids(&rows), vec!["e", "d", "c"], "{}", f.label);
        let (rows, total) = c.recordings(&page(9, 3, true)).await.unwrap();
        assert_eq!((rows.len(), total), (0, 5), "{}", f.label);
        f.cleanup().await;
    }
}

/// Does recording [s, e) (the instant s when e <= s) share a millisecond with [qs, qe)?
/// Stated over the integer points, independently of the SQL.
fn model_overlaps((s, e): (i64, i64), (qs, qe): (i64, i64)) -> bool {
    let last = if e > s { e - 1 } else { s };
    (s..=last).any(|t| qs <= t && t < qe)
}

/// Random recordings and queries: walking every page finds exactly the model's recordings,
/// each once, in creation order, with the model's total.
#[test]
fn paged_overlap_queries_match_the_model() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let fixtures = rt.block_on(support::catalogs());
    let next_stream = AtomicU32::new(0);
    let interval = (0i64..40, 0i64..12).prop_map(|(s, len)| (s, s + len));
    let strategy = (
        prop::collection::vec((interval.clone(), 0i64..4), 0..10),
        (-2i64..45, -2i64..45),
        1u32..4,
        any::<bool>(),
    );
    let mut runner = TestRunner::new(Config {
        cases: 48,
        ..Config::default()
    });
    runner
        .run(&strategy, |(recordings, (qs, qe), size, desc)| {
            for f in &fixtures {
                let stream = format!("p{}", next_stream.fetch_add(1, Ordering::Relaxed));
                let (walked, totals) = rt.block_on(async {
                    for (i, ((s, e), created)) in recordings.iter().enumerate() {
                        let row = recording(&format!("{stream}-{i}"), &stream, *s, *e, *created);
                        f.catalog.insert_recording(&row).await.unwrap();
                    }
                    let mut walked = vec![];
                    let mut totals = BTreeSet::new();
                    for num in 1.. {
                        let (rows, total) = f
                            .catalog
                            .recordings(&query(&stream, qs, qe, Page { num, size, desc }))
                            .await
                            .unwrap();
                        totals.insert(total);
                        if rows.is_empty() {
                            break;
                        }
                        walked.extend(rows);
                    }
                    (walked, totals)
                });
                let expected: BTreeSet<String> = recordings
                    .iter()
                    .enumerate()
                    .filter(|(_, (interval, _))| model_overlaps(*interval, (qs, qe)))
                    .map(|(i, _)| format!("{stream}-{i}"))
                    .collect();
                let found: BTreeSet<String> = walked.iter().map(|r| r.record_id.clone()).collect();
                prop_assert_eq!(&found, &expected, "{}", f.label);
                prop_assert_eq!(
                    walked.len(),
                    expected.len(),
                    "{}: a row on two pages",
                    f.label
                );
                prop_assert_eq!(
                    totals,
                    BTreeSet::from([expected.len() as u64]),
                    "{}",
                    f.label
                );
                let created: Vec<i64> = walked.iter().map(|r| r.created_at).collect();
                let ordered = created
                    .windows(2)
                    .all(|w| if desc { w[0] >= w[1] } else { w[0] <= w[1] });
                prop_assert!(ordered, "{}: {:?} desc={}", f.label, created, desc);
            }
            Ok(())
        })
        .unwrap();
    rt.block_on(async {
        for f in fixtures {
            f.cleanup().await;
        }
    });
}
