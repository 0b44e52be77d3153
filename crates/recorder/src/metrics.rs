//! The recorder's metrics (docs/OPERATIONS.md lists every metric of the process).

/// Gauge: recordings open (recording or paused, waiting out DelayTime).
pub const RECORDINGS_OPEN: &str = "liverec_recordings_open";
/// Counter: spool files finished whole (MP4/FLV files, segments, init segments, playlists).
pub const FILES_WRITTEN: &str = "liverec_files_written_total";
/// Counter: bytes written to spool files.
pub const BYTES_WRITTEN: &str = "liverec_written_bytes_total";
/// Counter, by `format` (`mp4`, `cmaf`): fMP4 fragments ended and handed to the spool.
pub const FRAGMENTS_FLUSHED: &str = "liverec_fragments_flushed_total";
/// Counter, by `cause`: gaps in a recording (`slow_recorder`: frames skipped because the
/// recorder fell behind; `write_error`: a write failed, e.g. a full disk).
pub const RECORDING_GAPS: &str = "liverec_recording_gaps_total";

pub fn describe() {
    metrics::describe_gauge!(
        RECORDINGS_OPEN,
        "Recordings open: recording, or paused and waiting out DelayTime."
    );
    metrics::describe_counter!(
        FILES_WRITTEN,
        "Spool files finished whole: MP4/FLV files, HLS/CMAF segments, init segments and playlists."
    );
    metrics::describe_counter!(
        BYTES_WRITTEN,
        metrics::Unit::Bytes,
        "Bytes written to spool files (recordings, before any upload)."
    );
    metrics::describe_counter!(
        FRAGMENTS_FLUSHED,
        "fMP4 fragments ended and handed to the spool (format=mp4 or cmaf)."
    );
    metrics::describe_counter!(
        RECORDING_GAPS,
        "Gaps in recordings: cause=slow_recorder (frames skipped to the next keyframe) or write_error (a write failed: disk full, I/O error)."
    );
}
