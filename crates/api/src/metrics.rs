//! `GET /metrics`: Prometheus text format (version 0.0.4), unauthenticated like most
//! exporters, so it belongs on a port only operators reach. Rendered by hand: a few gauges
//! read on request, no registry.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::ApiState;

/// Content type of the Prometheus text format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One gauge per configured storage target (`[buckets.NAME]`):
/// `liverec_upload_backlog{bucket="NAME"}` files stored but not yet uploaded, and
/// `liverec_upload_failing{bucket="NAME"}` those of them that failed at least once; and the
/// callback outbox: `liverec_callbacks_pending`, `liverec_callbacks_retrying`,
/// `liverec_callbacks_failed`; and `liverec_index_waiting`, finished files whose index row
/// waits for the database.
pub(crate) async fn serve(State(state): State<Arc<ApiState>>) -> Response {
    let mut targets: Vec<_> = state.storage.configured().cloned().collect();
    targets.sort_by(|a, b| a.bucket().cmp(b.bucket()));
    let mut backlog = Vec::with_capacity(targets.len());
    for target in &targets {
        match target.backlog().await {
            Ok(b) => backlog.push((target.bucket(), b)),
            // A bucket left out is "unknown", not 0.
            Err(err) => {
                tracing::warn!(bucket = target.bucket(), %err, "metrics: cannot read the upload backlog")
            }
        }
    }
    let mut out = String::new();
    gauge(
        &mut out,
        "liverec_upload_backlog",
        "Recordings stored to the bucket's target but not yet uploaded (waiting or retrying).",
        backlog.iter().map(|(bucket, b)| (*bucket, b.pending)),
    );
    gauge(
        &mut out,
        "liverec_upload_failing",
        "Uploads of the backlog that failed at least once (storage unreachable or refusing).",
        backlog.iter().map(|(bucket, b)| (*bucket, b.failing)),
    );
    let waiting = state
        .index_waiting
        .load(std::sync::atomic::Ordering::Relaxed);
    let _ = writeln!(
        out,
        "# HELP liverec_index_waiting Finished files whose index row (and file callback) waits for the database, busy or down; retried until it takes them.\n\
         # TYPE liverec_index_waiting gauge\nliverec_index_waiting {waiting}"
    );
    match state.catalog.notify_backlog().await {
        Ok(b) => {
            for (name, help, value) in [
                (
                    "liverec_callbacks_pending",
                    "Callbacks not delivered yet and still being tried.",
                    b.pending,
                ),
                (
                    "liverec_callbacks_retrying",
                    "Pending callbacks whose receiver failed at least once.",
                    b.retrying,
                ),
                (
                    "liverec_callbacks_failed",
                    "Callbacks given up after notify.retry_hours (`liverec notify resend --failed` sends them again).",
                    b.failed,
                ),
            ] {
                let _ = writeln!(
                    out,
                    "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
                );
            }
        }
        Err(err) => tracing::warn!(%err, "metrics: cannot read the callback outbox"),
    }
    http_counters(&mut out, &state.http);
    (StatusCode::OK, [(header::CONTENT_TYPE, CONTENT_TYPE)], out).into_response()
}

/// The API port's own connection counters (docs/SECURITY.md).
fn http_counters(out: &mut String, http: &crate::server::HttpCounters) {
    use std::sync::atomic::Ordering::Relaxed;
    let metric = |out: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    metric(
        out,
        "liverec_api_connections_open",
        "gauge",
        "Connections open on the API port.",
    );
    let _ = writeln!(
        out,
        "liverec_api_connections_open {}",
        http.open.load(Relaxed)
    );
    metric(
        out,
        "liverec_api_connections_refused_total",
        "counter",
        "Connections closed as they were accepted: api.max_connections open, or \
         api.max_pending_connections_per_ip from that address.",
    );
    for (reason, value) in [
        ("max_connections", &http.refused_total),
        ("max_pending_per_ip", &http.refused_per_ip),
    ] {
        let _ = writeln!(
            out,
            "liverec_api_connections_refused_total{{reason=\"{reason}\"}} {}",
            value.load(Relaxed)
        );
    }
    metric(
        out,
        "liverec_api_connections_timed_out_total",
        "counter",
        "Connections closed because a request head was not sent in time or a keep-alive stayed idle.",
    );
    let _ = writeln!(
        out,
        "liverec_api_connections_timed_out_total {}",
        http.timed_out.load(Relaxed)
    );
    metric(
        out,
        "liverec_api_requests_throttled_total",
        "counter",
        "Requests answered 429 Throttling (api.requests_per_ip).",
    );
    let _ = writeln!(
        out,
        "liverec_api_requests_throttled_total {}",
        http.throttled.load(Relaxed)
    );
}

fn gauge<'a>(
    out: &mut String,
    name: &str,
    help: &str,
    values: impl Iterator<Item = (&'a str, u64)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    for (bucket, value) in values {
        let _ = writeln!(out, "{name}{{bucket=\"{}\"}} {value}", escape(bucket));
    }
}

/// A label value as the text format wants it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_gauges_with_escaped_labels() {
        let mut out = String::new();
        gauge(
            &mut out,
            "g",
            "help",
            [("a", 1), ("b\"\\\n", 2)].into_iter(),
        );
        assert_eq!(
            out,
            "# HELP g help\n# TYPE g gauge\ng{bucket=\"a\"} 1\ng{bucket=\"b\\\"\\\\\\n\"} 2\n"
        );
    }
}
