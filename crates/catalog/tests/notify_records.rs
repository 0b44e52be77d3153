//! The callback records of DescribeLiveRecordNotifyRecords, on the file and PostgreSQL
//! backends. The outbox rows are written with plain SQL over a second connection (no catalog
//! function writes `notify_events` yet), which the in-memory database cannot take; the file
//! backend covers SQLite.

mod support;

use liverec_catalog::{NotifyOutcome, NotifyRecordQuery, NotifyRecordRow, NotifyStatus};

/// A second on the time axis of the tests (Unix milliseconds).
const T0: i64 = 1_800_000_000_000;

/// One `notify_events` row to insert.
struct Event {
    id: &'static str,
    domain: &'static str,
    app: &'static str,
    stream: &'static str,
    status: &'static str,
    attempts: i32,
    /// None: never tried.
    last_attempt_at: Option<i64>,
}

fn event(id: &'static str, status: &'static str, attempts: i32, at: i64) -> Event {
    Event {
        id,
        domain: "n.example",
        app: "live",
        stream: "cam1",
        status,
        attempts,
        last_attempt_at: Some(at),
    }
}

fn literal(v: Option<&str>) -> String {
    v.map_or_else(
        || "NULL".to_owned(),
        |s| format!("'{}'", s.replace('\'', "''")),
    )
}

fn insert_sql(events: &[Event]) -> String {
    let values: Vec<String> = events
        .iter()
        .map(|e| {
            let headers = e
                .last_attempt_at
                .map(|_| format!(r#"{{"Idempotency-Key":"{}"}}"#, e.id));
            let response = e.last_attempt_at.map(|_| format!("HTTP 200: ok {}", e.id));
            format!(
                "({id}, {domain}, {app}, {stream}, 'file_created', {url}, {body}, '', {status}, \
                 {attempts}, {next}, {until}, {created}, {at}, {headers}, {response})",
                id = literal(Some(e.id)),
                domain = literal(Some(e.domain)),
                app = literal(Some(e.app)),
                stream = literal(Some(e.stream)),
                url = literal(Some(&format!("http://cb.example/{}", e.id))),
                body = literal(Some(&format!(r#"{{"event":"{}"}}"#, e.id))),
                status = literal(Some(e.status)),
                attempts = e.attempts,
                next = T0,
                until = T0 + 86_400_000,
                created = T0 - 1000,
                at = e
                    .last_attempt_at
                    .map_or_else(|| "NULL".to_owned(), |t| t.to_string()),
                headers = literal(headers.as_deref()),
                response = literal(response.as_deref()),
            )
        })
        .collect();
    format!(
        "INSERT INTO notify_events (event_id, domain, app, stream, event, url, body, auth_key, \
         status, attempts, next_attempt_at, retry_until, created_at, last_attempt_at, \
         last_headers, last_response) VALUES {}",
        values.join(", ")
    )
}

fn query(start: i64, end: i64) -> NotifyRecordQuery {
    NotifyRecordQuery {
        domain: "n.example".into(),
        app: None,
        stream: None,
        start,
        end,
        outcome: None,
        page_num: 1,
        page_size: 100,
    }
}

fn ids(rows: &[NotifyRecordRow]) -> Vec<&str> {
    rows.iter().map(|r| r.event_id.as_str()).collect()
}

#[tokio::test]
async fn only_tried_callbacks_of_the_domain_in_the_range_newest_first() {
    for fx in support::catalogs().await {
        let label = fx.label;
        let mut events = vec![
            event("a", "success", 1, T0),
            event("b", "pending", 2, T0 + 5_000),
            event("c", "failed", 7, T0 + 10_000),
            // Same instant as "c": the id breaks the tie.
            event("d", "success", 1, T0 + 10_000),
            // Never tried: not a record yet.
            event("e", "pending", 0, T0 + 1_000),
            // The range is [start, end): at `end` is outside.
            event("f", "success", 1, T0 + 20_000),
        ];
        events.push(Event {
            last_attempt_at: None,
            ..event("g", "pending", 0, 0)
        });
        events.push(Event {
            domain: "other.example",
            ..event("h", "success", 1, T0)
        });
        if !fx.execute_raw(&insert_sql(&events)).await {
            fx.cleanup().await;
            continue;
        }
        let c = &fx.catalog;
        let (rows, total) = c.notify_records(&query(T0, T0 + 20_000)).await.unwrap();
        assert_eq!(ids(&rows), ["d", "c", "b", "a"], "{label}");
        assert_eq!(total, 4, "{label}");

        let (rows, total) = c.notify_records(&query(T0 + 1, T0 + 20_001)).await.unwrap();
        assert_eq!(ids(&rows), ["f", "d", "c", "b"], "{label}");
        assert_eq!(total, 4, "{label}");

        // Another domain's callbacks stay apart; an unknown domain has none.
        let mut q = query(T0, T0 + 1);
        q.domain = "other.example".into();
        assert_eq!(
            ids(&c.notify_records(&q).await.unwrap().0),
            ["h"],
            "{label}"
        );
        q.domain = "nobody.example".into();
        assert_eq!(c.notify_records(&q).await.unwrap(), (vec![], 0), "{label}");
        fx.cleanup().await;
    }
}

#[tokio::test]
async fn failed_means_every_attempt_so_far_failed() {
    for fx in support::catalogs().await {
        let label = fx.label;
        let events = [
            event("ok", "success", 3, T0),
            event("retrying", "pending", 4, T0 + 1),
            event("gave-up", "failed", 9, T0 + 2),
        ];
        if !fx.execute_raw(&insert_sql(&events)).await {
            fx.cleanup().await;
            continue;
        }
        let c = &fx.catalog;
        let mut q = query(T0, T0 + 10);
        q.outcome = Some(NotifyOutcome::Success);
        let (rows, total) = c.notify_records(&q).await.unwrap();
        assert_eq!((ids(&rows), total), (vec!["ok"], 1), "{label}");
        q.outcome = Some(NotifyOutcome::Failed);
        let (rows, total) = c.notify_records(&q).await.unwrap();
        assert_eq!(
            (ids(&rows), total),
            (vec!["gave-up", "retrying"], 2),
            "{label}"
        );
        assert_eq!(
            rows.iter().map(|r| r.status).collect::<Vec<_>>(),
            [NotifyStatus::Failed, NotifyStatus::Pending],
            "{label}"
        );
        fx.cleanup().await;
    }
}

#[tokio::test]
async fn app_and_stream_filters_and_pages() {
    for fx in support::catalogs().await {
        let label = fx.label;
        let mut events = Vec::new();
        const IDS: [&str; 7] = ["e0", "e1", "e2", "e3", "e4", "e5", "e6"];
        for (i, id) in IDS.into_iter().enumerate() {
            let i = i64::try_from(i).unwrap();
            events.push(Event {
                app: if i % 2 == 0 { "live" } else { "other" },
                stream: if i < 4 { "cam1" } else { "cam2" },
                ..event(id, "success", 1, T0 + i * 1000)
            });
        }
        if !fx.execute_raw(&insert_sql(&events)).await {
            fx.cleanup().await;
            continue;
        }
        let c = &fx.catalog;
        let mut q = query(T0, T0 + 60_000);
        q.app = Some("live".into());
        assert_eq!(
            ids(&c.notify_records(&q).await.unwrap().0),
            ["e6", "e4", "e2", "e0"],
            "{label}"
        );
        q.stream = Some("cam2".into());
        assert_eq!(
            ids(&c.notify_records(&q).await.unwrap().0),
            ["e6", "e4"],
            "{label}"
        );
        q.app = None;
        assert_eq!(
            ids(&c.notify_records(&q).await.unwrap().0),
            ["e6", "e5", "e4"],
            "{label}"
        );

        // Pages of 3 over the seven: no overlap, nothing skipped, the total on every page.
        let mut q = query(T0, T0 + 60_000);
        q.page_size = 3;
        let mut seen = Vec::new();
        for (num, len) in [(1, 3), (2, 3), (3, 1), (4, 0)] {
            q.page_num = num;
            let (rows, total) = c.notify_records(&q).await.unwrap();
            assert_eq!((rows.len(), total), (len, 7), "{label} page {num}");
            seen.extend(rows.into_iter().map(|r| r.event_id));
        }
        let expected: Vec<String> = IDS.iter().rev().map(|s| (*s).to_owned()).collect();
        assert_eq!(seen, expected, "{label}");
        fx.cleanup().await;
    }
}

#[tokio::test]
async fn every_field_comes_back() {
    for fx in support::catalogs().await {
        let label = fx.label;
        if !fx
            .execute_raw(&insert_sql(&[event("x1", "pending", 2, T0 + 42)]))
            .await
        {
            fx.cleanup().await;
            continue;
        }
        let (rows, _) = fx
            .catalog
            .notify_records(&query(T0, T0 + 100))
            .await
            .unwrap();
        assert_eq!(
            rows,
            [NotifyRecordRow {
                event_id: "x1".into(),
                domain: "n.example".into(),
                app: "live".into(),
                stream: "cam1".into(),
                event: "file_created".into(),
                url: "http://cb.example/x1".into(),
                body: r#"{"event":"x1"}"#.into(),
                status: NotifyStatus::Pending,
                attempts: 2,
                retry_until: T0 + 86_400_000,
                created_at: T0 - 1000,
                last_attempt_at: T0 + 42,
                last_headers: Some(r#"{"Idempotency-Key":"x1"}"#.into()),
                last_response: Some("HTTP 200: ok x1".into()),
            }],
            "{label}"
        );

        // A status the catalog does not know is an error, not a guess.
        assert!(
            fx.execute_raw(&insert_sql(&[event("x2", "lost", 1, T0 + 43)]))
                .await
        );
        assert!(
            fx.catalog
                .notify_records(&query(T0, T0 + 100))
                .await
                .is_err(),
            "{label}"
        );
        fx.cleanup().await;
    }
}

#[test]
fn status_names_round_trip() {
    for s in [
        NotifyStatus::Pending,
        NotifyStatus::Success,
        NotifyStatus::Failed,
    ] {
        assert_eq!(NotifyStatus::parse(s.as_str()), Some(s));
    }
    assert_eq!(NotifyStatus::parse("Success"), None);
}
