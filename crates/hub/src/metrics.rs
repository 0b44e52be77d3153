//! The hub's metrics (names follow Prometheus conventions; docs/OPERATIONS.md lists them all).
//! Counters are bumped where things happen; the gauges of what the hub holds are read with
//! [`crate::Hub::stats`] when `/metrics` is scraped.

use crate::StreamKey;

/// Counter, per stream: media payload bytes received (published or pulled).
pub const INGEST_BYTES: &str = "liverec_ingest_bytes_total";
/// Counter, by `subscriber` (`recorder`, `viewer`): frames skipped for a subscriber that fell
/// behind.
pub const DROPPED_FRAMES: &str = "liverec_dropped_frames_total";

/// Registers the help texts with the installed recorder.
pub fn describe() {
    metrics::describe_counter!(
        INGEST_BYTES,
        metrics::Unit::Bytes,
        "Media payload bytes received per stream, published or pulled (labels domain, app, stream)."
    );
    metrics::describe_counter!(
        DROPPED_FRAMES,
        "Frames skipped for a subscriber that fell behind (subscriber=recorder: a recording gap; viewer: a slow player)."
    );
}

impl StreamKey {
    /// The stream's labels: `domain`, `app`, `stream`.
    pub fn labels(&self) -> [metrics::Label; 3] {
        [
            metrics::Label::new("domain", self.domain.clone()),
            metrics::Label::new("app", self.app.clone()),
            metrics::Label::new("stream", self.stream.clone()),
        ]
    }
}
