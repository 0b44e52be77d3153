//! `GET /metrics`: Prometheus text format (version 0.0.4), unauthenticated like most
//! exporters, so it belongs on a port only operators reach (docs/SECURITY.md).
//!
//! Everything goes through the `metrics` facade and is rendered by the
//! metrics-exporter-prometheus recorder the liverec binary installs ([`ApiState::metrics`]).
//! Counters are bumped where things happen (each crate's `metrics` module names its own);
//! gauges of state — storage and callback backlogs, the hub, the process — are read here on
//! each scrape. docs/OPERATIONS.md lists every metric.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::ApiState;

/// Content type of the Prometheus text format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Longest wait for the database while scraping: a database that is down must not hang the
/// scrape (the backlog gauges then keep their last values, and the log says why).
const DATABASE_WAIT: Duration = Duration::from_secs(2);

/// Counter, by `action` and `code` (`OK`, or the error code answered).
pub const API_REQUESTS: &str = "liverec_api_requests_total";
/// Histogram, by `action`: time to answer an API request.
pub const API_DURATION: &str = "liverec_api_request_duration_seconds";
/// Counter, by `scope`: requests answered with a throttling error (`ip`: HTTP 429 `Throttling`
/// before authentication; `key`: `Throttling.User`, an AccessKeyId over its QPS).
pub const API_THROTTLED: &str = "liverec_api_requests_throttled_total";
/// The buckets of [`API_DURATION`], seconds.
pub const API_DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

const STREAMS_ONLINE: &str = "liverec_streams_online";
const RECORDER_QUEUE_BYTES: &str = "liverec_recorder_queue_bytes";
const RECORDER_QUEUE_BYTES_MAX: &str = "liverec_recorder_queue_max_bytes";
const VIEWER_QUEUE_BYTES: &str = "liverec_viewer_queue_bytes";
const UPLOAD_BACKLOG: &str = "liverec_upload_backlog";
const UPLOAD_BACKLOG_BYTES: &str = "liverec_upload_backlog_bytes";
const UPLOAD_BACKLOG_AGE: &str = "liverec_upload_backlog_oldest_age_seconds";
const UPLOAD_FAILING: &str = "liverec_upload_failing";
const INDEX_WAITING: &str = "liverec_index_waiting";
const CALLBACKS_PENDING: &str = "liverec_callbacks_pending";
const CALLBACKS_RETRYING: &str = "liverec_callbacks_retrying";
const CALLBACKS_FAILED: &str = "liverec_callbacks_failed";
const CONNECTIONS_OPEN: &str = "liverec_api_connections_open";
const CONNECTIONS_REFUSED: &str = "liverec_api_connections_refused_total";
const CONNECTIONS_TIMED_OUT: &str = "liverec_api_connections_timed_out_total";
const RESIDENT_MEMORY: &str = "process_resident_memory_bytes";
const OPEN_FDS: &str = "process_open_fds";

/// Registers the help texts of the API's and the scraped metrics.
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        API_REQUESTS,
        "API requests answered, by action and code (OK, or the Alibaba error code)."
    );
    describe_histogram!(
        API_DURATION,
        Unit::Seconds,
        "Time to answer an API request, by action."
    );
    describe_counter!(
        API_THROTTLED,
        "Requests answered with a throttling error: scope=ip (HTTP 429 Throttling, api.requests_per_ip) or key (Throttling.User, the AccessKeyId's QPS)."
    );
    describe_gauge!(
        STREAMS_ONLINE,
        "Streams live now: published, or pulled and relayed."
    );
    describe_gauge!(
        RECORDER_QUEUE_BYTES,
        Unit::Bytes,
        "Bytes waiting in the recorders' queues, all streams (payload plus per-frame overhead)."
    );
    describe_gauge!(
        RECORDER_QUEUE_BYTES_MAX,
        Unit::Bytes,
        "Bytes waiting in the fullest recorder queue (a full queue holds up its publisher, then skips)."
    );
    describe_gauge!(
        VIEWER_QUEUE_BYTES,
        Unit::Bytes,
        "Bytes waiting in viewers' queues, all streams."
    );
    describe_gauge!(
        UPLOAD_BACKLOG,
        "Recordings stored to the bucket's target but not yet uploaded (waiting or retrying)."
    );
    describe_gauge!(
        UPLOAD_BACKLOG_BYTES,
        Unit::Bytes,
        "Bytes of the bucket's upload backlog."
    );
    describe_gauge!(
        UPLOAD_BACKLOG_AGE,
        Unit::Seconds,
        "Age of the oldest upload of the bucket's backlog (0 when there is none)."
    );
    describe_gauge!(
        UPLOAD_FAILING,
        "Uploads of the backlog that failed at least once (storage unreachable or refusing)."
    );
    describe_gauge!(
        INDEX_WAITING,
        "Finished files whose index row (and file callback) waits for the database, busy or down; retried until it takes them."
    );
    describe_gauge!(
        CALLBACKS_PENDING,
        "Callbacks not delivered yet and still being tried."
    );
    describe_gauge!(
        CALLBACKS_RETRYING,
        "Pending callbacks whose receiver failed at least once."
    );
    describe_gauge!(
        CALLBACKS_FAILED,
        "Callbacks given up after notify.retry_hours (`liverec notify resend --failed` sends them again)."
    );
    describe_gauge!(CONNECTIONS_OPEN, "Connections open on the API port.");
    describe_counter!(
        CONNECTIONS_REFUSED,
        "Connections closed as they were accepted: reason=max_connections (api.max_connections open) or max_pending_per_ip."
    );
    describe_counter!(
        CONNECTIONS_TIMED_OUT,
        "Connections closed because a request head was not sent in time or a keep-alive stayed idle."
    );
    describe_gauge!(
        RESIDENT_MEMORY,
        Unit::Bytes,
        "Resident memory of the liverec process (VmRSS)."
    );
    describe_gauge!(OPEN_FDS, "Open file descriptors of the liverec process.");
}

/// Counts one answered API request (the handler's single log point calls this).
pub(crate) fn count_request(action: Option<&'static str>, code: &str, latency: Duration) {
    let action = action.unwrap_or("unknown");
    let code = if code.is_empty() { "OK" } else { code };
    if code == "Throttling.User" {
        metrics::counter!(API_THROTTLED, "scope" => "key").increment(1);
    }
    metrics::counter!(API_REQUESTS, "action" => action, "code" => code.to_owned()).increment(1);
    metrics::histogram!(API_DURATION, "action" => action).record(latency.as_secs_f64());
}

pub(crate) async fn serve(State(state): State<Arc<ApiState>>) -> Response {
    let Some(handle) = &state.metrics else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "no metrics recorder is installed in this process\n",
        )
            .into_response();
    };
    refresh(&state).await;
    handle.run_upkeep();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        handle.render(),
    )
        .into_response()
}

/// Sets the gauges of state read at scrape time.
async fn refresh(state: &ApiState) {
    use metrics::gauge;
    let hub = state.hub.stats();
    gauge!(STREAMS_ONLINE).set(hub.streams as f64);
    gauge!(RECORDER_QUEUE_BYTES).set(hub.recorder_queue_bytes as f64);
    gauge!(RECORDER_QUEUE_BYTES_MAX).set(hub.recorder_queue_bytes_max as f64);
    gauge!(VIEWER_QUEUE_BYTES).set(hub.viewer_queue_bytes as f64);
    gauge!(INDEX_WAITING).set(state.index_waiting.load(Relaxed) as f64);

    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    for target in state.storage.configured() {
        let bucket = target.bucket().to_owned();
        match tokio::time::timeout(DATABASE_WAIT, target.backlog()).await {
            Ok(Ok(b)) => {
                let age_ms = b.oldest_created_at.map_or(0, |t| now_ms.saturating_sub(t));
                gauge!(UPLOAD_BACKLOG, "bucket" => bucket.clone()).set(b.pending as f64);
                gauge!(UPLOAD_BACKLOG_BYTES, "bucket" => bucket.clone()).set(b.bytes as f64);
                gauge!(UPLOAD_BACKLOG_AGE, "bucket" => bucket.clone())
                    .set(age_ms.max(0) as f64 / 1000.0);
                gauge!(UPLOAD_FAILING, "bucket" => bucket).set(b.failing as f64);
            }
            Ok(Err(err)) => {
                tracing::warn!(bucket, %err, "metrics: cannot read the upload backlog; its gauges keep their last values")
            }
            Err(_) => {
                tracing::warn!(
                    bucket,
                    "metrics: reading the upload backlog timed out; its gauges keep their last values"
                )
            }
        }
    }
    match tokio::time::timeout(DATABASE_WAIT, state.catalog.notify_backlog()).await {
        Ok(Ok(b)) => {
            gauge!(CALLBACKS_PENDING).set(b.pending as f64);
            gauge!(CALLBACKS_RETRYING).set(b.retrying as f64);
            gauge!(CALLBACKS_FAILED).set(b.failed as f64);
        }
        Ok(Err(err)) => tracing::warn!(%err, "metrics: cannot read the callback outbox"),
        Err(_) => tracing::warn!("metrics: reading the callback outbox timed out"),
    }

    let http = &state.http;
    gauge!(CONNECTIONS_OPEN).set(http.open.load(Relaxed) as f64);
    metrics::counter!(CONNECTIONS_REFUSED, "reason" => "max_connections")
        .absolute(http.refused_total.load(Relaxed));
    metrics::counter!(CONNECTIONS_REFUSED, "reason" => "max_pending_per_ip")
        .absolute(http.refused_per_ip.load(Relaxed));
    metrics::counter!(CONNECTIONS_TIMED_OUT).absolute(http.timed_out.load(Relaxed));
    metrics::counter!(API_THROTTLED, "scope" => "ip").absolute(http.throttled.load(Relaxed));

    if let Some(bytes) = resident_memory_bytes() {
        gauge!(RESIDENT_MEMORY).set(bytes as f64);
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        gauge!(OPEN_FDS).set(fds.count() as f64);
    }
}

/// VmRSS of this process (Linux), from /proc/self/status.
fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_rss_in_bytes() {
        let status = "Name:\tliverec\nVmPeak:\t  100 kB\nVmRSS:\t   20480 kB\nThreads:\t4\n";
        assert_eq!(parse_vm_rss(status), Some(20_480 * 1024));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        assert_eq!(parse_vm_rss("VmRSS:\tlots kB\n"), None);
    }
}
