//! The callback outbox on every backend: queued only for domains with a notify config, in the
//! index row's transaction, claimed with a lease and a per-domain cap, finished, resent, pruned.

mod support;

use liverec_catalog::{
    AttemptOutcome, AttemptResult, Catalog, NewNotifyEvent, NotifyBacklog, NotifyConfigRow,
    RecordingRow, ResendFilter,
};

const NOW: i64 = 1_800_000_000_000;
const DAY: i64 = 86_400_000;

fn config(domain: &str, status: bool, auth: bool) -> NotifyConfigRow {
    NotifyConfigRow {
        domain: domain.to_owned(),
        notify_url: format!("http://receiver.test/{domain}"),
        on_demand_url: String::new(),
        need_status_notify: status,
        notify_req_auth: auth,
        notify_auth_key: "abcdefghijklmnop".into(),
        created_at: 0,
        updated_at: 0,
    }
}

fn event(id: &str, domain: &str, kind: &str) -> NewNotifyEvent {
    NewNotifyEvent {
        event_id: id.to_owned(),
        domain: domain.to_owned(),
        app: "live".into(),
        stream: "s1".into(),
        event: kind.to_owned(),
        body: format!(r#"{{"id":"{id}"}}"#),
        created_at: NOW,
        retry_until: NOW + DAY,
    }
}

fn recording(id: &str, domain: &str) -> RecordingRow {
    RecordingRow {
        record_id: id.to_owned(),
        domain: domain.to_owned(),
        app: "live".into(),
        stream: "s1".into(),
        format: "mp4".into(),
        oss_bucket: "b".into(),
        oss_object: format!("rec/{id}.mp4"),
        start_time: NOW - 60_000,
        end_time: NOW,
        duration_secs: 60.0,
        created_at: NOW,
        ..Default::default()
    }
}

async fn claim_all(c: &Catalog, now: i64) -> Vec<String> {
    let mut ids: Vec<String> = c
        .claim_notify_events(now, now + 15_000, 100, 100, &[])
        .await
        .expect("claim events")
        .into_iter()
        .map(|r| r.event_id)
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn events_are_queued_only_for_configured_domains() {
    for fx in support::catalogs().await {
        let (c, label) = (&fx.catalog, fx.label);
        c.insert_notify_config(&config("files.example", false, true))
            .await
            .unwrap();
        c.insert_notify_config(&config("status.example", true, false))
            .await
            .unwrap();

        // No config: nothing queued, the row is still indexed.
        assert!(
            c.index_recording(
                &recording("r0", "none.example"),
                &[],
                Some(&event("r0", "none.example", "file_created"))
            )
            .await
            .unwrap()
        );
        // A file event needs only the config; the domain is matched case-insensitively.
        assert!(
            c.index_recording(
                &recording("r1", "Files.Example"),
                &[],
                Some(&event("r1", "Files.Example", "file_created"))
            )
            .await
            .unwrap()
        );
        // Indexing again (a completion retried after a crash) queues nothing new.
        assert!(
            !c.index_recording(
                &recording("r1", "files.example"),
                &[],
                Some(&event("r1", "files.example", "file_created"))
            )
            .await
            .unwrap()
        );
        // Status events need NeedStatusNotify.
        assert!(
            !c.enqueue_status_event(&event("s1", "files.example", "record_started"))
                .await
                .unwrap()
        );
        assert!(
            c.enqueue_status_event(&event("s2", "status.example", "record_started"))
                .await
                .unwrap()
        );
        assert!(
            !c.enqueue_status_event(&event("s2", "status.example", "record_started"))
                .await
                .unwrap(),
            "{label}: same id twice"
        );

        assert_eq!(c.next_notify_due().await.unwrap(), Some(NOW), "{label}");
        let rows = c
            .claim_notify_events(NOW, NOW + 15_000, 10, 10, &[])
            .await
            .unwrap();
        let mut got: Vec<(String, String, String)> = rows
            .iter()
            .map(|r| (r.event_id.clone(), r.url.clone(), r.auth_key.clone()))
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                (
                    "r1".into(),
                    "http://receiver.test/files.example".into(),
                    "abcdefghijklmnop".into()
                ),
                (
                    "s2".into(),
                    "http://receiver.test/status.example".into(),
                    String::new()
                ),
            ],
            "{label}"
        );
        // Leased: not claimable again until the lease ends.
        assert!(claim_all(c, NOW + 1).await.is_empty(), "{label}");
        assert_eq!(
            claim_all(c, NOW + 15_000).await,
            vec!["r1", "s2"],
            "{label}"
        );
        fx.cleanup().await;
    }
}

#[tokio::test]
async fn claims_respect_the_per_domain_cap_and_busy_domains() {
    for fx in support::catalogs().await {
        let (c, label) = (&fx.catalog, fx.label);
        for d in ["a.example", "b.example"] {
            c.insert_notify_config(&config(d, true, false))
                .await
                .unwrap();
            for i in 0..5 {
                c.enqueue_status_event(&event(&format!("{d}-{i}"), d, "record_started"))
                    .await
                    .unwrap();
            }
        }
        let rows = c
            .claim_notify_events(NOW, NOW + 1, 100, 2, &[])
            .await
            .unwrap();
        let per = |d: &str| rows.iter().filter(|r| r.domain == d).count();
        assert_eq!((per("a.example"), per("b.example")), (2, 2), "{label}");
        let rows = c
            .claim_notify_events(
                NOW,
                NOW + 1,
                100,
                4,
                &[("a.example".to_owned(), 4), ("b.example".to_owned(), 3)],
            )
            .await
            .unwrap();
        // a.example is at its cap; b.example has room for one more.
        assert!(
            rows.iter().all(|r| r.domain == "b.example") && rows.len() == 1,
            "{label}"
        );
        let rows = c
            .claim_notify_events(NOW, NOW + 1, 1, 10, &[])
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "{label}: the limit holds");
        fx.cleanup().await;
    }
}

#[tokio::test]
async fn attempts_finish_retry_give_up_resend_and_prune() {
    for fx in support::catalogs().await {
        let (c, label) = (&fx.catalog, fx.label);
        c.insert_notify_config(&config("a.example", true, false))
            .await
            .unwrap();
        for id in ["ok", "retry", "dead"] {
            c.enqueue_status_event(&event(id, "a.example", "record_paused"))
                .await
                .unwrap();
        }
        assert_eq!(claim_all(c, NOW).await.len(), 3);
        let result = |outcome| AttemptResult {
            at: NOW + 10,
            headers: r#"{"Idempotency-Key":"x"}"#.into(),
            response: "HTTP 500: no".into(),
            outcome,
        };
        c.finish_notify_attempt("ok", &result(AttemptOutcome::Delivered))
            .await
            .unwrap();
        c.finish_notify_attempt("retry", &result(AttemptOutcome::RetryAt(NOW + 5_000)))
            .await
            .unwrap();
        c.finish_notify_attempt("dead", &result(AttemptOutcome::GiveUp))
            .await
            .unwrap();
        assert_eq!(
            c.notify_event_status("ok").await.unwrap(),
            Some(("success".into(), 1)),
            "{label}"
        );
        assert_eq!(
            c.notify_event_status("retry").await.unwrap(),
            Some(("pending".into(), 1)),
            "{label}"
        );
        assert_eq!(
            c.notify_event_status("dead").await.unwrap(),
            Some(("failed".into(), 1)),
            "{label}"
        );
        assert_eq!(
            c.notify_backlog().await.unwrap(),
            NotifyBacklog {
                pending: 1,
                retrying: 1,
                failed: 1
            },
            "{label}"
        );
        assert_eq!(
            c.next_notify_due().await.unwrap(),
            Some(NOW + 5_000),
            "{label}"
        );
        assert!(claim_all(c, NOW + 4_999).await.is_empty(), "{label}");
        assert_eq!(claim_all(c, NOW + 5_000).await, vec!["retry"], "{label}");

        // A resend makes given-up rows due again, with attempts counted afresh.
        let until = liverec_catalog::unix_ms(std::time::SystemTime::now()) + DAY;
        assert_eq!(
            c.resend_notify_events(
                &ResendFilter::Failed {
                    domain: Some("A.example".into())
                },
                until
            )
            .await
            .unwrap(),
            1
        );
        assert_eq!(
            c.notify_event_status("dead").await.unwrap(),
            Some(("pending".into(), 0)),
            "{label}"
        );
        assert_eq!(
            c.resend_notify_events(
                &ResendFilter::Events(vec!["ok".into(), "nope".into()]),
                until
            )
            .await
            .unwrap(),
            1
        );
        assert_eq!(
            c.resend_notify_events(&ResendFilter::Events(vec![]), until)
                .await
                .unwrap(),
            0
        );

        // Pruning keeps pending rows whatever their age.
        c.finish_notify_attempt("ok", &result(AttemptOutcome::Delivered))
            .await
            .unwrap();
        assert_eq!(c.prune_notify_events(NOW + 1).await.unwrap(), 1, "{label}");
        assert_eq!(c.notify_event_status("ok").await.unwrap(), None, "{label}");
        assert!(
            c.notify_event_status("dead").await.unwrap().is_some(),
            "{label}"
        );
        fx.cleanup().await;
    }
}

#[tokio::test]
async fn generated_index_rows_queue_no_callback() {
    for fx in support::catalogs().await {
        let (c, label) = (&fx.catalog, fx.label);
        c.insert_notify_config(&config("files.example", true, true))
            .await
            .unwrap();
        // CreateLiveStreamRecordIndexFiles writes its row through `replace_generated_index`.
        let generated = liverec_catalog::RecordingRow {
            generated: true,
            ..recording("gen", "files.example")
        };
        c.replace_generated_index(&generated, &[]).await.unwrap();
        assert!(claim_all(c, NOW).await.is_empty(), "{label}");
        assert_eq!(c.notify_backlog().await.unwrap().pending, 0, "{label}");
        fx.cleanup().await;
    }
}
