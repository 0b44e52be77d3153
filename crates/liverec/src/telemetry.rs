//! The process's logs and metrics: the tracing subscriber (text or JSON) and the Prometheus
//! recorder behind `/metrics`, with every crate's metric described once.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use liverec_api::{RecentEvent, RecentEvents};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context as LayerContext, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

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

/// Installs the log subscriber: level filter from `LIVEREC_LOG` (default `info`), to stderr;
/// warnings and errors are also kept in `recent` (the dashboard shows them).
pub fn init_logs(format: LogFormat, recent: Arc<RecentEvents>) {
    let filter = EnvFilter::try_from_env("LIVEREC_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let keep = KeepRecent(recent);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .finish()
            .with(keep)
            .init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .finish()
            .with(keep)
            .init(),
    }
}

/// Longest field text of a kept event.
const MAX_KEPT_FIELDS: usize = 512;

/// A layer keeping warnings and errors in [`RecentEvents`].
struct KeepRecent(Arc<RecentEvents>);

impl<S: tracing::Subscriber> Layer<S> for KeepRecent {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: LayerContext<'_, S>) {
        let level = *event.metadata().level();
        // More verbose levels compare greater.
        if level > tracing::Level::WARN {
            return;
        }
        let mut fields = FieldText::default();
        event.record(&mut fields);
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        self.0.push(RecentEvent {
            at,
            level: if level == tracing::Level::ERROR {
                "ERROR"
            } else {
                "WARN"
            },
            message: fields.message,
            fields: fields.rest,
        });
    }
}

/// An event's message, and its other fields as `name=value` text (clipped).
#[derive(Default)]
struct FieldText {
    message: String,
    rest: String,
}

impl tracing::field::Visit for FieldText {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else if self.rest.len() < MAX_KEPT_FIELDS {
            if !self.rest.is_empty() {
                self.rest.push(' ');
            }
            let _ = write!(self.rest, "{}={value:?}", field.name());
            if self.rest.len() > MAX_KEPT_FIELDS {
                let mut end = MAX_KEPT_FIELDS;
                while !self.rest.is_char_boundary(end) {
                    end -= 1;
                }
                self.rest.truncate(end);
                self.rest.push('…');
            }
        }
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.record_debug(field, &value);
        }
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
