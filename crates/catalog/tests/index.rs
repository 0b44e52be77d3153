//! The record index's storage extensions on every backend: rows with their objects (idempotent
//! insert, delete), content per session, segment ranges (with a property test against a model),
//! the retention query, names in the index, streams seen and server secrets.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};

use liverec_catalog::{Catalog, ContentRow, ObjectKind, RecordingObject, RecordingRow, SegmentRow};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const DOMAIN: &str = "live.example.com";
const APP: &str = "live";

fn row(id: &str, stream: &str, format: &str, start: i64, end: i64) -> RecordingRow {
    RecordingRow {
        record_id: id.into(),
        domain: DOMAIN.into(),
        app: APP.into(),
        stream: stream.into(),
        format: format.into(),
        oss_bucket: "bucket".into(),
        oss_endpoint: "oss.example.com".into(),
        oss_object: format!("record/{stream}/{id}.{format}"),
        start_time: start,
        end_time: end,
        duration_secs: (end - start) as f64 / 1000.0,
        size: 1_000,
        width: 1280,
        height: 720,
        created_at: end,
        session_id: format!("session-{id}"),
        object_prefix: "record/{AppName}/{StreamName}/{Sequence}".into(),
        generated: false,
    }
}

fn object(seq: i32, kind: ObjectKind, name: &str, start: i64, duration_ms: i64) -> RecordingObject {
    RecordingObject {
        seq,
        bucket: "bucket".into(),
        object: name.into(),
        kind,
        start_time: start,
        duration_ms,
        size: 10 * i64::from(seq) + 7,
    }
}

/// A playlist row: the playlist (seq 0), then one segment per (start, duration).
fn playlist(id: &str, segments: &[(i64, i64)]) -> Vec<RecordingObject> {
    let start = segments.first().map_or(0, |s| s.0);
    let mut objects = vec![object(
        0,
        ObjectKind::Playlist,
        &format!("{id}.m3u8"),
        start,
        0,
    )];
    for (i, (seq, (s, d))) in (1..).zip(segments).enumerate() {
        objects.push(object(
            seq,
            ObjectKind::Segment,
            &format!("{id}/{i}.ts"),
            *s,
            *d,
        ));
    }
    objects
}

fn segment_names(rows: &[SegmentRow]) -> Vec<&str> {
    rows.iter().map(|r| r.object.as_str()).collect()
}

#[tokio::test]
async fn insert_with_objects_round_trips_and_is_idempotent() {
    for f in support::catalogs().await {
        let c = &f.catalog;
        let mut r = row("r1", "cam1", "m3u8", 1_000, 7_000);
        r.generated = true;
        let mut objects = playlist("r1", &[(1_000, 2_000), (3_000, 2_000), (5_000, 2_000)]);
        // Stored by seq, whatever the order given.
        objects.reverse();
        assert!(c.insert_recording_with_objects(&r, &objects).await.unwrap());
        objects.reverse();
        let got = c.recording(DOMAIN, APP, "cam1", "r1").await.unwrap();
        assert_eq!(got, Some(r.clone()), "{}", f.label);
        assert_eq!(
            c.recording_objects("r1").await.unwrap(),
            objects,
            "{}",
            f.label
        );

        // A retried completion with other objects changes nothing.
        let mut retried = r.clone();
        retried.size = 5;
        let other = playlist("r1", &[(9_000, 1_000)]);
        assert!(
            !c.insert_recording_with_objects(&retried, &other)
                .await
                .unwrap()
        );
        assert_eq!(
            c.recording(DOMAIN, APP, "cam1", "r1").await.unwrap(),
            Some(r.clone()),
            "{}",
            f.label
        );
        assert_eq!(
            c.recording_objects("r1").await.unwrap(),
            objects,
            "{}",
            f.label
        );

        // A row without objects, and the unknown id.
        let bare = row("r2", "cam1", "mp4", 0, 10);
        assert!(c.insert_recording_with_objects(&bare, &[]).await.unwrap());
        assert!(c.recording_objects("r2").await.unwrap().is_empty());
        assert!(c.recording_objects("nope").await.unwrap().is_empty());
        f.cleanup().await;
    }
}

/// More objects than one multi-row statement holds.
#[tokio::test]
async fn a_long_playlist_is_stored_whole() {
    for f in support::catalogs().await {
        let c = &f.catalog;
        let segments: Vec<(i64, i64)> = (0..1_234).map(|i| (i * 2_000, 2_000)).collect();
        let objects = playlist("long", &segments);
        let r = row("long", "cam1", "m3u8", 0, 1_234 * 2_000);
        assert!(c.insert_recording_with_objects(&r, &objects).await.unwrap());
        assert_eq!(
            c.recording_objects("long").await.unwrap(),
            objects,
            "{}",
            f.label
        );
        f.cleanup().await;
    }
}

/// Completions of the same record racing: exactly one inserts, and its objects are stored.
#[tokio::test]
async fn racing_inserts_of_one_record_id_insert_once() {
    for f in support::catalogs().await {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..6i64 {
            let c = f.catalog.clone();
            tasks.spawn(async move {
                let objects = playlist("race", &[(i * 1_000, 1_000), (i * 1_000 + 1_000, 1_000)]);
                let r = row("race", "cam1", "m3u8", 0, 10_000);
                c.insert_recording_with_objects(&r, &objects).await.unwrap()
            });
        }
        let inserted = tasks.join_all().await;
        assert_eq!(inserted.iter().filter(|i| **i).count(), 1, "{}", f.label);
        assert_eq!(
            f.catalog.recording_objects("race").await.unwrap().len(),
            3,
            "{}",
            f.label
        );
        f.cleanup().await;
    }
}

#[tokio::test]
async fn the_existing_insert_stores_the_new_columns() {
    for f in support::catalogs().await {
        let c = &f.catalog;
        let mut r = row("plain", "cam1", "flv", 0, 10);
        r.session_id = "s".into();
        r.object_prefix = "x/{Sequence}".into();
        c.insert_recording(&r).await.unwrap();
        assert_eq!(
            c.recording(DOMAIN, APP, "cam1", "plain").await.unwrap(),
            Some(r),
            "{}",
            f.label
        );
        f.cleanup().await;
    }
}

#[tokio::test]
async fn delete_returns_the_row_and_its_objects() {
    for f in support::catalogs().await {
        let c = &f.catalog;
        let r = row("r1", "cam1", "m3u8", 1_000, 5_000);
        let objects = playlist("r1", &[(1_000, 2_000), (3_000, 2_000)]);
        c.insert_recording_with_objects(&r, &objects).await.unwrap();
        let keep = row("r2", "cam1", "m3u8", 5_000, 7_000);
        let kept = playlist("r2", &[(5_000, 2_000)]);
        c.insert_recording_with_objects(&keep, &kept).await.unwrap();

        let removed = c.delete_recording("r1").await.unwrap();
        assert_eq!(removed, Some((r.clone(), objects)), "{}", f.label);
        assert_eq!(c.recording(DOMAIN, APP, "cam1", "r1").await.unwrap(), None);
        assert!(c.recording_objects("r1").await.unwrap().is_empty());
        assert!(!c.object_in_index("bucket", "r1/0.ts").await.unwrap());
        assert_eq!(c.delete_recording("r1").await.unwrap(), None, "{}", f.label);
        assert_eq!(
            c.recording_objects("r2").await.unwrap(),
            kept,
            "{}",
            f.label
        );

        // The id is free again.
        assert!(c.insert_recording_with_objects(&r, &[]).await.unwrap());
        f.cleanup().await;
    }
}

#[tokio::test]
async fn content_is_one_entry_per_session_and_format() {
    for f in support::catalogs().await {
        let c = &f.catalog;
        let in_session = |id: &str, session: &str, format: &str, start, end, secs| {
            let mut r = row(id, "cam1", format, start, end);
            r.session_id = session.into();
            r.duration_secs = secs;
            r
        };
        let rows = [
            // Session A: two mp4 cycles and an m3u8 playlist.
            in_session("a1", "A", "mp4", 1_000, 4_000, 3.0),
            in_session("a2", "A", "mp4", 4_000, 6_000, 2.5),
            in_session("a3", "A", "m3u8", 1_000, 6_000, 5.0),
            // Session B, later, one mp4.
            in_session("b1", "B", "mp4", 8_000, 9_000, 1.0),
            // Rows from before sessions: each its own entry.
            in_session("old1", "", "flv", 500, 700, 0.25),
            in_session("old2", "", "flv", 600, 900, 0.25),
            // Outside the range, and a generated index row inside it: neither counts.
            in_session("c1", "C", "mp4", 20_000, 21_000, 1.0),
            RecordingRow {
                generated: true,
                ..in_session("g1", "A", "m3u8", 1_000, 6_000, 5.0)
            },
            // Another stream.
            RecordingRow {
                stream: "cam2".into(),
                ..in_session("x1", "X", "mp4", 1_000, 2_000, 1.0)
            },
        ];
        for r in &rows {
            c.insert_recording(r).await.unwrap();
        }
        let content = c
            .record_content(DOMAIN, APP, "cam1", 0, 10_000)
            .await
            .unwrap();
        let entry = |session: &str, format: &str, start, end, secs| ContentRow {
            session_id: session.into(),
            format: format.into(),
            oss_bucket: "bucket".into(),
            oss_endpoint: "oss.example.com".into(),
            object_prefix: "record/{AppName}/{StreamName}/{Sequence}".into(),
            start_time: start,
            end_time: end,
            duration_secs: secs,
        };
        assert_eq!(
            content,
            vec![
                entry("", "flv", 500, 700, 0.25),
                entry("", "flv", 600, 900, 0.25),
                entry("A", "m3u8", 1_000, 6_000, 5.0),
                entry("A", "mp4", 1_000, 6_000, 5.5),
                entry("B", "mp4", 8_000, 9_000, 1.0),
            ],
            "{}",
            f.label
        );
        // An entry is the whole recording, also when only a2 overlaps the range (API.md:
        // "with that recording's StartTime/EndTime/Duration").
        let content = c
            .record_content(DOMAIN, APP, "cam1", 4_000, 5_000)
            .await
            .unwrap();
        assert_eq!(
            content,
            vec![
                entry("A", "m3u8", 1_000, 6_000, 5.0),
                entry("A", "mp4", 1_000, 6_000, 5.5),
            ],
            "{}",
            f.label
        );
        assert!(
            c.record_content(DOMAIN, APP, "cam1", 6_000, 8_000)
                .await
                .unwrap()
                .is_empty()
        );
        f.cleanup().await;
    }
}

#[tokio::test]
async fn segments_in_range_at_the_boundaries() {
    for f in support::catalogs().await {
        let c = &f.catalog;
        // Segments [1000, 2000), [2000, 3000), [3000, 4000) and an empty one at 4000.
        let mut objects = playlist("ts", &[(1_000, 1_000), (2_000, 1_000), (3_000, 1_000)]);
        objects.push(object(4, ObjectKind::Segment, "ts/3.ts", 4_000, 0));
        c.insert_recording_with_objects(&row("ts", "cam1", "m3u8", 1_000, 4_000), &objects)
            .await
            .unwrap();
        // Not selected: a generated row, another format, another stream.
        let generated = RecordingRow {
            generated: true,
            ..row("gen", "cam1", "m3u8", 1_000, 4_000)
        };
        c.insert_recording_with_objects(&generated, &playlist("gen", &[(1_000, 3_000)]))
            .await
            .unwrap();
        c.insert_recording_with_objects(
            &row("cmafrow", "cam1", "cmaf", 1_000, 4_000),
            &playlist("cmafrow", &[(1_000, 3_000)]),
        )
        .await
        .unwrap();
        c.insert_recording_with_objects(
            &row("cam2row", "cam2", "m3u8", 1_000, 4_000),
            &playlist("cam2row", &[(1_000, 3_000)]),
        )
        .await
        .unwrap();

        let cases: [(i64, i64, bool, &[&str]); 14] = [
            (0, 1_000, false, &[]),
            (0, 1_000, true, &["ts/0.ts"]), // starts exactly at the end
            (0, 1_001, false, &["ts/0.ts"]),
            (1_999, 2_000, false, &["ts/0.ts"]),
            (1_999, 2_000, true, &["ts/0.ts", "ts/1.ts"]),
            (2_000, 3_000, false, &["ts/1.ts"]),
            (2_000, 3_000, true, &["ts/1.ts", "ts/2.ts"]),
            (2_500, 2_500, false, &[]),
            (2_500, 2_500, true, &["ts/1.ts"]), // the instant inside a segment
            (3_000, 2_000, true, &[]),          // inverted
            (4_000, 4_001, false, &["ts/3.ts"]), // the empty segment's instant
            (3_999, 4_000, false, &["ts/2.ts"]),
            (3_999, 4_000, true, &["ts/2.ts", "ts/3.ts"]),
            (
                i64::MIN,
                i64::MAX,
                false,
                &["ts/0.ts", "ts/1.ts", "ts/2.ts", "ts/3.ts"],
            ),
        ];
        for (start, end, included, expected) in cases {
            let got = c
                .segments_in_range(DOMAIN, APP, "cam1", "m3u8", start, end, included)
                .await
                .unwrap();
            assert_eq!(
                segment_names(&got),
                expected,
                "{} [{start}, {end}) end_included={included}",
                f.label
            );
        }
        let got = c
            .segments_in_range(DOMAIN, APP, "cam1", "m3u8", 0, 2_000, false)
            .await
            .unwrap();
        assert_eq!(
            got,
            vec![SegmentRow {
                record_id: "ts".into(),
                bucket: "bucket".into(),
                endpoint: "oss.example.com".into(),
                object: "ts/0.ts".into(),
                start_time: 1_000,
                duration_ms: 1_000,
                init_object: None,
            }],
            "{}",
            f.label
        );
        f.cleanup().await;
    }
}

#[tokio::test]
async fn cmaf_segments_carry_their_init_and_sort_across_rows() {
    for f in support::catalogs().await {
        let c = &f.catalog;
        // Two rows (a cycle cut); the second row's segments are inserted out of seq order.
        let first = vec![
            object(0, ObjectKind::Playlist, "a.cmaf.m3u8", 0, 0),
            object(1, ObjectKind::Init, "a_init.mp4", 0, 0),
            object(2, ObjectKind::Segment, "a0.m4s", 0, 2_000),
            object(3, ObjectKind::Segment, "a1.m4s", 2_000, 2_000),
        ];
        let second = vec![
            object(3, ObjectKind::Segment, "b1.m4s", 6_000, 2_000),
            object(0, ObjectKind::Playlist, "b.cmaf.m3u8", 4_000, 0),
            object(2, ObjectKind::Segment, "b0.m4s", 4_000, 2_000),
            object(1, ObjectKind::Init, "b_init.mp4", 4_000, 0),
        ];
        c.insert_recording_with_objects(&row("b", "cam1", "cmaf", 4_000, 8_000), &second)
            .await
            .unwrap();
        c.insert_recording_with_objects(&row("a", "cam1", "cmaf", 0, 4_000), &first)
            .await
            .unwrap();
        let got = c
            .segments_in_range(DOMAIN, APP, "cam1", "cmaf", 1_000, 7_000, false)
            .await
            .unwrap();
        let summary: Vec<(&str, &str, Option<&str>)> = got
            .iter()
            .map(|s| {
                (
                    s.record_id.as_str(),
                    s.object.as_str(),
                    s.init_object.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("a", "a0.m4s", Some("a_init.mp4")),
                ("a", "a1.m4s", Some("a_init.mp4")),
                ("b", "b0.m4s", Some("b_init.mp4")),
                ("b", "b1.m4s", Some("b_init.mp4")),
            ],
            "{}",
            f.label
        );
        f.cleanup().await;
    }
}

/// Does segment [s, s + d) (the instant s when d <= 0) share an instant with [qs, qe), or
/// [qs, qe] when `included`? Stated over the integer points, independently of the SQL.
fn model_overlaps((s, d): (i64, i64), (qs, qe): (i64, i64), included: bool) -> bool {
    let last = if d > 0 { s + d - 1 } else { s };
    (s..=last).any(|t| qs <= t && (t < qe || (included && t == qe)))
}

/// Random segments over random rows and random ranges: the selection is the model's, in
/// (start, seq) order.
#[test]
fn segment_selection_matches_the_model() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let fixtures = rt.block_on(support::catalogs());
    let next_stream = AtomicU32::new(0);
    // Per row: segments (start, duration).
    let segments = prop::collection::vec((0i64..40, 0i64..8), 0..6);
    let strategy = (
        prop::collection::vec(segments, 1..4),
        (-2i64..45, -2i64..45),
        any::<bool>(),
    );
    let mut runner = TestRunner::new(Config {
        cases: 48,
        ..Config::default()
    });
    runner
        .run(&strategy, |(rows, (qs, qe), included)| {
            for f in &fixtures {
                let stream = format!("p{}", next_stream.fetch_add(1, Ordering::Relaxed));
                let mut expected = Vec::new();
                let got = rt.block_on(async {
                    for (r, segs) in rows.iter().enumerate() {
                        let id = format!("{stream}-{r}");
                        let objects: Vec<RecordingObject> = segs
                            .iter()
                            .enumerate()
                            .map(|(i, (s, d))| {
                                let name = format!("{id}/{i}.ts");
                                let seq = i32::try_from(i).unwrap();
                                if model_overlaps((*s, *d), (qs, qe), included) {
                                    expected.push((*s, seq, id.clone(), name.clone()));
                                }
                                object(seq, ObjectKind::Segment, &name, *s, *d)
                            })
                            .collect();
                        let row = row(&id, &stream, "m3u8", 0, 50);
                        f.catalog
                            .insert_recording_with_objects(&row, &objects)
                            .await
                            .unwrap();
                    }
                    f.catalog
                        .segments_in_range(DOMAIN, APP, &stream, "m3u8", qs, qe, included)
                        .await
                        .unwrap()
                });
                expected.sort();
                let expected: Vec<String> = expected.into_iter().map(|e| e.3).collect();
                let got: Vec<String> = got.into_iter().map(|s| s.object).collect();
                prop_assert_eq!(got, expected, "{} [{}, {}) {}", f.label, qs, qe, included);
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

#[tokio::test]
async fn retention_lists_ended_rows_of_the_bucket_oldest_first() {
    for f in support::catalogs().await {
        let c = &f.catalog;
        for (id, end) in [("c", 3_000), ("a", 1_000), ("b", 2_000), ("d", 4_000)] {
            c.insert_recording(&row(id, "cam1", "mp4", end - 500, end))
                .await
                .unwrap();
        }
        let elsewhere = RecordingRow {
            oss_bucket: "other".into(),
            ..row("x", "cam1", "mp4", 0, 500)
        };
        c.insert_recording(&elsewhere).await.unwrap();
        let ids =
            |rows: Vec<RecordingRow>| rows.into_iter().map(|r| r.record_id).collect::<Vec<_>>();
        let got = c
            .recordings_ended_before("bucket", 3_000, 10)
            .await
            .unwrap();
        assert_eq!(ids(got), ["a", "b"], "{}", f.label);
        let got = c
            .recordings_ended_before("bucket", 10_000, 3)
            .await
            .unwrap();
        assert_eq!(ids(got), ["a", "b", "c"], "{}", f.label);
        let got = c
            .recordings_ended_before("bucket", 1_000, 10)
            .await
            .unwrap();
        assert!(got.is_empty(), "{}", f.label);
        let got = c.recordings_ended_before("other", 1_000, 10).await.unwrap();
        assert_eq!(ids(got), ["x"], "{}", f.label);
        f.cleanup().await;
    }
}

#[tokio::test]
async fn the_index_names_objects_and_files() {
    for f in support::catalogs().await {
        let c = &f.catalog;
        let r = row("r1", "cam1", "m3u8", 0, 2_000);
        c.insert_recording_with_objects(&r, &playlist("r1", &[(0, 2_000)]))
            .await
            .unwrap();
        c.insert_recording(&row("f1", "cam1", "mp4", 0, 2_000))
            .await
            .unwrap();
        assert!(c.object_in_index("bucket", "r1.m3u8").await.unwrap());
        assert!(c.object_in_index("bucket", "r1/0.ts").await.unwrap());
        // A row's OssObject counts even without objects.
        assert!(
            c.object_in_index("bucket", "record/cam1/f1.mp4")
                .await
                .unwrap()
        );
        assert!(!c.object_in_index("other", "r1/0.ts").await.unwrap());
        assert!(!c.object_in_index("bucket", "r1/1.ts").await.unwrap());
        f.cleanup().await;
    }
}

#[tokio::test]
async fn streams_remember_first_and_last_publish() {
    for f in support::catalogs().await {
        let c = &f.catalog;
        assert!(!c.stream_seen(DOMAIN, APP, "cam1").await.unwrap());
        c.touch_stream(DOMAIN, APP, "cam1", 1_000).await.unwrap();
        c.touch_stream(DOMAIN, APP, "cam1", 5_000).await.unwrap();
        // A late report from a node with a slower clock does not move the last publish back.
        c.touch_stream(DOMAIN, APP, "cam1", 3_000).await.unwrap();
        assert!(
            c.stream_seen(DOMAIN, APP, "cam1").await.unwrap(),
            "{}",
            f.label
        );
        assert!(!c.stream_seen(DOMAIN, APP, "cam2").await.unwrap());
        assert!(!c.stream_seen(DOMAIN, "other", "cam1").await.unwrap());
        assert!(!c.stream_seen("b.example.com", APP, "cam1").await.unwrap());
        f.cleanup().await;
    }
}

#[tokio::test]
async fn server_secrets_are_made_once_and_shared() {
    for f in support::catalogs().await {
        let c = &f.catalog;
        // Concurrent first calls (spawned, so a multi-connection pool overlaps them).
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let c = c.clone();
            tasks.spawn(async move { c.server_secret("vod").await.unwrap() });
        }
        let secrets = tasks.join_all().await;
        let first = &secrets[0];
        assert_eq!(first.len(), 64, "{}", f.label);
        assert!(first.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(
            secrets.iter().all(|s| s == first),
            "{}: {secrets:?}",
            f.label
        );
        assert_eq!(&c.server_secret("vod").await.unwrap(), first);
        assert_ne!(&c.server_secret("other").await.unwrap(), first);
        f.cleanup().await;
    }
}

/// The secret survives reopening a file catalog.
#[tokio::test]
async fn a_server_secret_survives_a_restart() {
    let f = support::file().await;
    let secret = f.catalog.server_secret("vod").await.unwrap();
    let dir = f.dir.as_ref().unwrap().path().to_owned();
    f.catalog.close().await;
    let url = format!("sqlite://{}/nested/dir/liverec.db", dir.display());
    let reopened = Catalog::open(&url).await.unwrap();
    assert_eq!(reopened.server_secret("vod").await.unwrap(), secret);
    reopened.close().await;
    f.cleanup().await;
}
