//! One output per format of a recording: it decides where files are cut (cycle, codec change)
//! and drives a pure muxer into spool files. Finalizing a file runs in the background.

mod error;
mod file;
mod segmented;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use liverec_hub::StreamKey;
use liverec_media::{Frame, TrackKind, Tracks};
use liverec_storage::Target;
use liverec_storage::layout::{self, NameVars, ObjectName};
use serde::{Deserialize, Serialize};
use tokio_util::task::TaskTracker;

use crate::config::{Format, FormatSpec};
use crate::spool::SpoolPolicy;

pub use error::OutputError;
use file::FileOutput;
use segmented::SegmentedOutput;

/// A finished recording file (MP4/FLV file, or HLS/CMAF playlist with its segments): one row of
/// the record index. It travels with the file's store request and reaches the index once the
/// object exists (for a remote target, after the upload), so it is serializable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// Chosen when the file opens, so a retried or recovered completion indexes it once.
    pub record_id: String,
    /// The recording (start to finalize) the file belongs to.
    pub session_id: String,
    #[serde(with = "stream_key")]
    pub key: StreamKey,
    pub format: Format,
    pub bucket: String,
    pub endpoint: String,
    /// Object name of the file (the playlist for segmented formats) inside the bucket; filled
    /// in by the target when it stores the file.
    pub object: String,
    /// The OssObjectPrefix template the name came from.
    pub object_prefix: String,
    #[serde(with = "unix_ms")]
    pub start: SystemTime,
    #[serde(with = "unix_ms")]
    pub end: SystemTime,
    pub duration_ms: u64,
    /// Bytes, segments included.
    pub size: u64,
    pub width: u32,
    pub height: u32,
    /// CMAF's init segment.
    pub init_object: Option<String>,
    /// Segments in playlist order (m3u8, cmaf).
    pub segments: Vec<SegmentRecord>,
    /// The publish URL's `callback_` parameters (name with its prefix → first value).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub push_args: BTreeMap<String, String>,
}

/// One stored segment of a playlist.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentRecord {
    pub object: String,
    /// Wall clock of the segment's first frame.
    #[serde(with = "unix_ms")]
    pub start: SystemTime,
    pub duration_ms: u64,
    pub size: u64,
}

/// A new unique id (record ids, recording sessions).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

mod unix_ms {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        let ms = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        s.serialize_u64(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        Ok(UNIX_EPOCH + Duration::from_millis(u64::deserialize(d)?))
    }
}

mod stream_key {
    use liverec_hub::StreamKey;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Key {
        domain: String,
        app: String,
        stream: String,
    }

    pub fn serialize<S: Serializer>(k: &StreamKey, s: S) -> Result<S::Ok, S::Error> {
        Key {
            domain: k.domain.clone(),
            app: k.app.clone(),
            stream: k.stream.clone(),
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<StreamKey, D::Error> {
        let k = Key::deserialize(d)?;
        Ok(StreamKey {
            domain: k.domain,
            app: k.app,
            stream: k.stream,
        })
    }
}

/// Template variables of `key` at the given times.
pub(crate) fn name_vars(
    key: &StreamKey,
    start: SystemTime,
    end: SystemTime,
    unix: SystemTime,
    sequence: u64,
) -> NameVars<'_> {
    NameVars {
        domain: &key.domain,
        app: &key.app,
        stream: &key.stream,
        start,
        end,
        unix,
        sequence,
    }
}

/// What an output needs from its surroundings.
#[derive(Clone)]
pub struct OutputContext {
    pub key: StreamKey,
    pub spec: FormatSpec,
    pub target: Arc<dyn Target>,
    /// OssEndpoint of the record config, echoed in the record index.
    pub endpoint: String,
    /// The recording these files belong to.
    pub session_id: String,
    pub policy: SpoolPolicy,
    /// Background finalizations; shutdown waits for them.
    pub tasks: TaskTracker,
    /// The publish URL's `callback_` parameters, carried by every file's index row.
    pub push_args: Arc<BTreeMap<String, String>>,
}

impl OutputContext {
    fn cycle_ms(&self) -> i64 {
        i64::try_from(self.spec.cycle.as_millis()).unwrap_or(i64::MAX)
    }

    fn slice_ms(&self) -> i64 {
        i64::try_from(self.spec.slice.as_millis()).unwrap_or(i64::MAX)
    }

    /// The object name of this output's `sequence`-th file (or playlist) of the recording,
    /// spanning `start..end`.
    fn file_name(
        &self,
        start: SystemTime,
        end: SystemTime,
        sequence: u64,
    ) -> Result<ObjectName, OutputError> {
        let vars = name_vars(&self.key, start, end, start, sequence);
        Ok(layout::file_object(
            &self.spec.object_prefix,
            &vars,
            self.spec.format.extension(),
        )?)
    }

    /// The index row of a file of this output; the target names the object when it stores it.
    fn file_record(
        &self,
        record_id: String,
        (start, end): (SystemTime, SystemTime),
        duration_ms: u64,
        size: u64,
        tracks: &Tracks,
    ) -> FileRecord {
        let (width, height) = video_size(tracks);
        FileRecord {
            record_id,
            session_id: self.session_id.clone(),
            key: self.key.clone(),
            format: self.spec.format,
            bucket: self.target.bucket().to_owned(),
            endpoint: self.endpoint.clone(),
            object: String::new(),
            object_prefix: self.spec.object_prefix.clone(),
            start,
            end,
            duration_ms,
            size,
            width,
            height,
            init_object: None,
            segments: Vec::new(),
            push_args: (*self.push_args).clone(),
        }
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
        if ctx.spec.format.is_segmented() {
            Self::Segmented(SegmentedOutput::new(ctx))
        } else {
            Self::File(FileOutput::new(ctx))
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

    /// A description of the first failure since the output last wrote successfully, once:
    /// the recording lost data there (a `record_error` status).
    pub fn take_new_failure(&mut self) -> Option<String> {
        match self {
            Self::File(o) => o.failures.take_new(),
            Self::Segmented(o) => o.failures.take_new(),
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

/// Files and segments one output may start after its first: a burst, then one per second
/// of wall time. A publisher that churns codec configs or inflates timestamps cannot make
/// liverec create files faster than that; a file pushed at full speed fits in the burst (a
/// 1-hour recording in 10 s slices takes 360).
pub const CUT_BURST: u32 = 600;
/// Refill of [`CUT_BURST`], per second of wall time.
pub const CUT_REFILL_PER_SEC: u32 = 1;

/// A token bucket of cuts (new files, new segments) of one output.
#[derive(Debug)]
pub struct CutBudget {
    tokens: f64,
    last: Option<Instant>,
    /// A codec change could not start a new file: frames are dropped until one can.
    dropping: bool,
    /// Cuts refused so far (logged sparsely).
    refused: u64,
}

impl Default for CutBudget {
    fn default() -> Self {
        Self {
            tokens: f64::from(CUT_BURST),
            last: None,
            dropping: false,
            refused: 0,
        }
    }
}

impl CutBudget {
    /// Takes a token for a cut at `now`, if there is one.
    pub fn allow(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let refill =
                now.saturating_duration_since(last).as_secs_f64() * f64::from(CUT_REFILL_PER_SEC);
            self.tokens = (self.tokens + refill).min(f64::from(CUT_BURST));
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            self.refused += 1;
            false
        }
    }

    /// Refused cuts so far.
    pub fn refused(&self) -> u64 {
        self.refused
    }
}

/// Where a frame falls relative to the open file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Boundary {
    Inside,
    /// The cycle is over: the file may end at this GOP start (or go on for a while).
    CycleOver,
    /// The codecs changed: the file must end before the frame.
    CodecsChanged,
}

/// What [`write_frame`] needs of a format: cut decisions, opening, writing, closing.
trait FormatWriter {
    fn failures(&mut self) -> &mut Failures;
    fn cuts(&mut self) -> &mut CutBudget;
    /// `None` when no file is open; else where the frame falls.
    fn cut_due(&self, input: &FrameIn<'_>) -> Option<Boundary>;
    async fn open(&mut self, input: &FrameIn<'_>) -> Result<(), OutputError>;
    async fn write_open(&mut self, input: &FrameIn<'_>) -> Result<(), OutputError>;
    fn close(&mut self);
}

/// The flow every format shares: files end and begin only at a GOP start; a failure (disk
/// full, storage gone) closes the file and skips to the next GOP start, counted in a gap.
///
/// Cuts are limited by the output's [`CutBudget`]: a cycle cut refused leaves the file going
/// on (nothing lost); a codec change refused drops frames until a new file may start.
async fn write_frame<W: FormatWriter>(writer: &mut W, input: &FrameIn<'_>) {
    let boundary = writer.cut_due(input);
    let open = match boundary {
        Some(b @ (Boundary::CycleOver | Boundary::CodecsChanged)) if input.starts_gop => {
            if writer.cuts().allow(input.now) {
                writer.cuts().dropping = false;
                if b == Boundary::CodecsChanged {
                    let failures = writer.failures();
                    tracing::info!(stream = %failures.stream, format = failures.format.as_str(),
                        "the stream's codec configuration changed: the file ends and a new one starts");
                }
                writer.close();
                false
            } else if b == Boundary::CycleOver {
                true
            } else {
                refuse_codec_cut(writer);
                return;
            }
        }
        Some(Boundary::CodecsChanged) if writer.cuts().dropping => return,
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
    match writer.write_open(input).await {
        Ok(()) => writer.failures().succeeded(),
        Err(err) => {
            writer.failures().record(
                "write failed; the file is closed and the next starts at the next keyframe",
                &err,
            );
            writer.close();
        }
    }
}

/// A codec change that may not start a new file yet: its frames cannot go in the open file.
fn refuse_codec_cut<W: FormatWriter>(writer: &mut W) {
    let cuts = writer.cuts();
    cuts.dropping = true;
    let refused = cuts.refused();
    if refused.is_power_of_two() {
        let failures = writer.failures();
        tracing::warn!(stream = %failures.stream, format = failures.format.as_str(), refused,
            "codec configs change faster than files may start (a burst of {CUT_BURST}, then one per second): frames dropped until the next file");
    }
}

/// Where `input` falls relative to the open file: its cycle over, its codecs changed.
fn boundary(clock: &FileClock, tracks: &Tracks, input: &FrameIn<'_>, cycle_ms: i64) -> Boundary {
    if *tracks != *input.tracks {
        Boundary::CodecsChanged
    } else if clock.elapsed(input.dts) >= cycle_ms {
        Boundary::CycleOver
    } else {
        Boundary::Inside
    }
}

/// Failures of one output, logged sparsely (1st, 2nd, 4th, 8th …) so a full disk does not
/// flood the log while every GOP start retries.
#[derive(Debug)]
pub struct Failures {
    stream: StreamKey,
    format: Format,
    count: u64,
    /// Failing since the last successful write.
    failing: bool,
    /// The first failure of the current run, until the driver takes it.
    unreported: Option<String>,
}

impl Failures {
    fn for_output(ctx: &OutputContext) -> Self {
        Self {
            stream: ctx.key.clone(),
            format: ctx.spec.format,
            count: 0,
            failing: false,
            unreported: None,
        }
    }

    fn succeeded(&mut self) {
        self.failing = false;
    }

    fn take_new(&mut self) -> Option<String> {
        self.unreported.take()
    }

    fn record(&mut self, what: &str, err: &OutputError) {
        self.count += 1;
        if !self.failing {
            self.failing = true;
            self.unreported = Some(format!("{}: {what}: {err}", self.format.as_str()));
        }
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

/// The completion a store request carries: the index row, as JSON.
fn completion(record: &FileRecord) -> Result<serde_json::Value, OutputError> {
    serde_json::to_value(record).map_err(|e| OutputError::Io(std::io::Error::other(e)))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn cuts_come_in_a_burst_then_one_per_second() {
        let mut budget = CutBudget::default();
        let start = Instant::now();
        for i in 0..CUT_BURST {
            assert!(budget.allow(start), "cut {i} of the burst");
        }
        assert!(!budget.allow(start), "the burst is spent");
        assert!(!budget.allow(start + Duration::from_millis(500)));
        assert!(budget.allow(start + Duration::from_millis(1500)));
        assert!(!budget.allow(start + Duration::from_millis(1600)));
        assert_eq!(budget.refused(), 3);
        // A long quiet spell refills the burst, never more.
        let later = start + Duration::from_secs(24 * 3600);
        for _ in 0..CUT_BURST {
            assert!(budget.allow(later));
        }
        assert!(!budget.allow(later));
    }
}
