//! The process's logs and metrics: the tracing subscriber (text or JSON) and the Prometheus
//! recorder behind `/metrics`, with every crate's metric described once.

use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;
use tracing_subscriber::EnvFilter;

/// A counter not touched for this long is dropped from `/metrics`: the per-stream series of a
/// stream long gone do not pile up (a stream that comes back starts its counter again, which
/// Prometheus' `rate()` reads as a reset).
const IDLE_COUNTER_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// How often histograms and idle series are tidied between scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// How log lines are written (`--log-format`, `LIVEREC_LOG_FORMAT`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event (colours on a terminal).
    #[default]
    Text,
    /// One JSON object per line: timestamp, level, target, fields, and the spans (stream,
    /// API request) the event happened in.
    Json,
}

/// Installs the log subscriber: level filter from `LIVEREC_LOG` (default `info`), to stderr.
pub fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_env("LIVEREC_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .init(),
    }
}

/// Installs the process-wide metrics recorder, describes every metric, and keeps it tidy from
/// a background task. Call once, inside the runtime.
pub fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(liverec_api::metrics::API_DURATION.to_owned()),
            liverec_api::metrics::API_DURATION_BUCKETS,
        )
        .context("metrics: histogram buckets")?
        .idle_timeout(MetricKindMask::COUNTER, Some(IDLE_COUNTER_TIMEOUT))
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    liverec_hub::metrics::describe();
    liverec_recorder::metrics::describe();
    liverec_notify::metrics::describe();
    liverec_api::metrics::describe();
    liverec_rtmp::metrics::describe();
    liverec_play::describe_metrics();
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(UPKEEP_EVERY);
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}
