//! One output per format of a recording: it decides where files are cut (cycle, codec change)
//! and drives a pure muxer into spool files. Finalizing a file runs in the background.

mod error;
mod file;
mod segmented;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use liverec_hub::StreamKey;
use liverec_media::{Frame, TrackKind, Tracks};
use tokio_util::task::TaskTracker;

use crate::config::{Format, FormatSpec};
use crate::spool::SpoolPolicy;
use crate::target::LocalTarget;

pub use error::OutputError;
use file::FileOutput;
use segmented::SegmentedOutput;

/// A finished recording file (MP4/FLV file, or HLS/CMAF playlist with its segments): one row of
/// the record index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRecord {
    pub key: StreamKey,
    pub format: Format,
    pub bucket: String,
    pub endpoint: String,
    /// Object name of the file (the playlist for segmented formats) inside the bucket.
    pub object: String,
    pub start: SystemTime,
    pub end: SystemTime,
    pub duration_ms: u64,
    /// Bytes, segments included.
    pub size: u64,
    pub width: u32,
    pub height: u32,
    /// Segment object names (m3u8, cmaf; the init segment first for cmaf).
    pub segments: Vec<String>,
}

/// Receives every finished file (indexes it, queues callbacks). Awaited by the finalize task,
/// so shutdown waits for it too.
pub type FileSink =
    Arc<dyn Fn(FileRecord) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// What an output needs from its surroundings.
#[derive(Clone)]
pub struct OutputContext {
    pub key: StreamKey,
    pub spec: FormatSpec,
    pub target: LocalTarget,
    pub policy: SpoolPolicy,
    pub sink: FileSink,
    /// Background finalizations; shutdown waits for them.
    pub tasks: TaskTracker,
}

impl OutputContext {
    fn cycle_ms(&self) -> i64 {
        i64::try_from(self.spec.cycle.as_millis()).unwrap_or(i64::MAX)
    }

    fn slice_ms(&self) -> i64 {
        i64::try_from(self.spec.slice.as_millis()).unwrap_or(i64::MAX)
    }
}

/// One frame as an output sees it: `dts` on the recording's timeline.
pub struct FrameIn<'a> {
    pub frame: &'a Frame,
    pub dts: i64,
    pub starts_gop: bool,
    pub tracks: &'a Tracks,
    pub now: Instant,
    pub wall: SystemTime,
}

/// Outputs are few per recording and long-lived, so the size difference of the variants
/// does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Output {
    File(FileOutput),
    Segmented(SegmentedOutput),
}

impl Output {
    pub fn new(ctx: OutputContext) -> Self {
        match ctx.spec.format {
            Format::Mp4 | Format::Flv => Self::File(FileOutput::new(ctx)),
            Format::M3u8 | Format::Cmaf => Self::Segmented(SegmentedOutput::new(ctx)),
        }
    }

    pub async fn write(&mut self, input: &FrameIn<'_>) {
        match self {
            Self::File(o) => o.write(input).await,
            Self::Segmented(o) => o.write(input).await,
        }
    }

    /// Hands buffered data to the OS (on a pause, so nothing waits in memory).
    pub async fn flush(&mut self) {
        match self {
            Self::File(o) => o.flush().await,
            Self::Segmented(o) => o.flush().await,
        }
    }

    /// Closes the open file and finalizes it in the background.
    pub fn close(&mut self) {
        match self {
            Self::File(o) => o.close(),
            Self::Segmented(o) => o.close(),
        }
    }
}

/// What [`write_frame`] needs of a format: cut decisions, opening, writing, closing.
trait FormatWriter {
    fn failures(&mut self) -> &mut Failures;
    /// `None` when no file is open; else whether a file boundary (cycle, codec change) passed.
    fn cut_due(&self, input: &FrameIn<'_>) -> Option<bool>;
    async fn open(&mut self, input: &FrameIn<'_>) -> Result<(), OutputError>;
    async fn write_open(&mut self, input: &FrameIn<'_>) -> Result<(), OutputError>;
    fn close(&mut self);
}

/// The flow every format shares: files end and begin only at a GOP start; a failure (disk
/// full, storage gone) closes the file and skips to the next GOP start, counted in a gap.
async fn write_frame<W: FormatWriter>(writer: &mut W, input: &FrameIn<'_>) {
    let open = match writer.cut_due(input) {
        Some(true) if input.starts_gop => {
            writer.close();
            false
        }
        Some(_) => true,
        None => false,
    };
    if !open {
        if !input.starts_gop {
            return;
        }
        if let Err(err) = writer.open(input).await {
            writer
                .failures()
                .record("cannot open a recording file", &err);
            return;
        }
    }
    if let Err(err) = writer.write_open(input).await {
        writer.failures().record(
            "write failed; the file is closed and the next starts at the next keyframe",
            &err,
        );
        writer.close();
    }
}

/// Whether the open file ends before `input`: its cycle is over or the codecs changed.
fn boundary_passed(clock: &FileClock, tracks: &Tracks, input: &FrameIn<'_>, cycle_ms: i64) -> bool {
    clock.elapsed(input.dts) >= cycle_ms || *tracks != *input.tracks
}

/// Failures of one output, logged sparsely (1st, 2nd, 4th, 8th …) so a full disk does not
/// flood the log while every GOP start retries.
#[derive(Debug)]
pub struct Failures {
    stream: StreamKey,
    format: Format,
    count: u64,
}

impl Failures {
    fn for_output(ctx: &OutputContext) -> Self {
        Self {
            stream: ctx.key.clone(),
            format: ctx.spec.format,
            count: 0,
        }
    }

    fn record(&mut self, what: &str, err: &OutputError) {
        self.count += 1;
        if self.count.is_power_of_two() {
            tracing::warn!(stream = %self.stream, format = self.format.as_str(), %err, failures = self.count, "{what}");
        }
    }
}

/// Per-track timestamps of one file, rebased to start at 0 and kept monotonic.
#[derive(Clone, Copy, Debug, Default)]
struct FileClock {
    start: i64,
    last: [Option<i64>; 2],
    /// Largest dts written and the step before it, to estimate the end of the last frame.
    end: i64,
    video_step: i64,
}

impl FileClock {
    fn new(start: i64) -> Self {
        Self {
            start,
            last: [None, None],
            end: 0,
            video_step: 0,
        }
    }

    /// The file-relative dts of a frame at recording time `dts`.
    fn map(&mut self, track: TrackKind, dts: i64) -> i64 {
        let idx = usize::from(track == TrackKind::Video);
        let mut t = (dts - self.start).max(0);
        if let Some(prev) = self.last[idx] {
            // Strictly increasing per track: containers refuse two samples at one DTS.
            if t <= prev {
                t = prev + 1;
            }
            if track == TrackKind::Video && t > prev {
                self.video_step = t - prev;
            }
        }
        self.last[idx] = Some(t);
        self.end = self.end.max(t);
        t
    }

    fn elapsed(&self, dts: i64) -> i64 {
        dts - self.start
    }
}

/// Writes a spool file's recovery sidecar off the runtime.
async fn save_meta(
    spool_file: std::path::PathBuf,
    meta: crate::recovery::SpoolMeta,
) -> std::io::Result<()> {
    tokio::task::spawn_blocking(move || crate::recovery::write_meta(&spool_file, &meta))
        .await
        .map_err(std::io::Error::other)?
}

/// Removes a finished spool file's sidecar off the runtime.
async fn drop_meta(spool_file: std::path::PathBuf) {
    let _ = tokio::task::spawn_blocking(move || crate::recovery::remove_meta(&spool_file)).await;
}

fn video_size(tracks: &Tracks) -> (u32, u32) {
    tracks
        .video
        .as_ref()
        .map_or((0, 0), |v| (v.width, v.height))
}
