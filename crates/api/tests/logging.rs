//! Every request is logged exactly once, with action, key id, status and code, and the
//! secret never appears in a log line.

mod support;

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use support::*;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Collects every event as `field=value …` text.
#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<String>>>);

struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, "{}={:?} ", field.name(), value);
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, "{}={} ", field.name(), value);
    }
}

impl Subscriber for Collect {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut line = Line(format!("{} ", event.metadata().level()));
        event.record(&mut line);
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[tokio::test(flavor = "current_thread")]
async fn one_line_per_request_without_secrets() {
    let api = start().await;
    let collect = Collect::default();
    let _guard = tracing::subscriber::set_default(collect.clone());

    call(
        &api,
        "DescribeLiveStreamsOnlineList",
        &[("DomainName", "example.com")],
    )
    .await
    .assert_ok();
    let mut wrong = V1::new(
        "DescribeLiveStreamsOnlineList",
        &[("DomainName", "example.com")],
    );
    wrong.secret = "wrong".into();
    send(&api.router, wrong.request())
        .await
        .assert_error(400, "SignatureDoesNotMatch");
    call(&api, "NoSuchAction", &[])
        .await
        .assert_error(404, "InvalidApi.NotFound");

    let lines: Vec<String> = collect
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("message=api request"))
        .cloned()
        .collect();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(lines[0].contains("status=200"), "{}", lines[0]);
    assert!(
        lines[0].contains("action=\"DescribeLiveStreamsOnlineList\""),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains(&format!("key_id=\"{AK}\"")),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("latency_us="), "{}", lines[0]);
    assert!(lines[1].contains("status=400") && lines[1].contains("code=SignatureDoesNotMatch"));
    assert!(lines[2].contains("status=404") && lines[2].contains("code=InvalidApi.NotFound"));
    for line in collect.0.lock().unwrap().iter() {
        assert!(!line.contains(SK), "secret in a log line: {line}");
    }
}
