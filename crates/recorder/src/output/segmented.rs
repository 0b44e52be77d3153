//! Segmented formats: HLS with MPEG-TS segments (`m3u8`) or fMP4 segments (`cmaf`).
//!
//! Segments are cut at the first GOP start after the slice duration and become objects as soon
//! as they close; the playlist grows in the spool after every segment and is stored under its
//! final name, with `#EXT-X-ENDLIST`, when the file is finalized.
//!
//! Each segment costs O(1) in notes, however long the recording: its events go to the
//! playlist's journal ([`crate::journal`]) rather than a rewritten sidecar, and its lines are
//! appended to the spool playlist, which is rewritten only when its target duration grows.

use std::path::PathBuf;
use std::time::SystemTime;

use bytes::BytesMut;
use liverec_media::{Frame, Tracks};
use liverec_mux::hls::{MediaPlaylist, Segment};
use liverec_mux::{fmp4, ts};

use liverec_storage::StoreRequest;
use liverec_storage::layout::{self, ObjectName, relative_uri};

use super::{
    Boundary, CutBudget, Failures, FileClock, FileRecord, FormatWriter, FrameIn, OutputContext,
    OutputError, SegmentRecord, boundary, completion, drop_meta, name_vars, new_id, save_meta,
    video_size,
};
use crate::config::Format;
use crate::journal::{Journal, JournalEntry};
use crate::recovery::{ClosingSegment, MetaKind, SpoolMeta, unix_ms};
use crate::spool::SpoolFile;

/// Media time per CMAF fragment inside a segment.
const FRAGMENT_MS: i64 = 1000;

enum Muxer {
    Ts(Box<ts::Muxer>),
    Cmaf(fmp4::Muxer),
}

struct OpenSegment {
    spool: SpoolFile,
    start: i64,
    start_wall: SystemTime,
    sequence: u64,
}

struct OpenPlaylist {
    record_id: String,
    /// The playlist's number within its recording (`{Sequence}` in OssObjectPrefix).
    sequence: u64,
    muxer: Muxer,
    clock: FileClock,
    tracks: Tracks,
    start_wall: SystemTime,
    last_wall: SystemTime,
    init_object: Option<String>,
    /// Finished segments, stored.
    segments: Vec<SegmentRecord>,
    segment: Option<OpenSegment>,
    next_sequence: u64,
    fragment_start: i64,
    size: u64,
    spool_playlist: PathBuf,
    journal: Journal,
    /// What the spool playlist was last rendered for in full.
    rendered: RenderedPlaylist,
}

/// The two things a whole render of the spool playlist depends on besides its segments:
/// while neither changes, a new segment only appends its lines.
#[derive(Clone, Debug, PartialEq)]
struct RenderedPlaylist {
    target_duration: u64,
    /// The playlist object's directory, which segment URIs are relative to (it can hold the
    /// end time, which moves as segments come).
    object_dir: String,
}

pub struct SegmentedOutput {
    ctx: OutputContext,
    open: Option<OpenPlaylist>,
    next_sequence: u64,
    pub(super) failures: Failures,
    cuts: CutBudget,
}

impl FormatWriter for SegmentedOutput {
    fn failures(&mut self) -> &mut Failures {
        &mut self.failures
    }

    fn cuts(&mut self) -> &mut CutBudget {
        &mut self.cuts
    }

    fn cut_due(&self, input: &FrameIn<'_>) -> Option<Boundary> {
        self.open
            .as_ref()
            .map(|open| boundary(&open.clock, &open.tracks, input, self.ctx.cycle_ms()))
    }

    async fn open(&mut self, input: &FrameIn<'_>) -> Result<(), OutputError> {
        self.open = Some(self.open_playlist(input).await?);
        self.next_sequence += 1;
        Ok(())
    }

    async fn write_open(&mut self, input: &FrameIn<'_>) -> Result<(), OutputError> {
        SegmentedOutput::write_open(self, input).await
    }

    fn close(&mut self) {
        SegmentedOutput::close(self);
    }
}

impl SegmentedOutput {
    pub fn new(ctx: OutputContext) -> Self {
        let failures = Failures::for_output(&ctx);
        Self {
            ctx,
            open: None,
            next_sequence: 0,
            failures,
            cuts: CutBudget::default(),
        }
    }

    pub async fn write(&mut self, input: &FrameIn<'_>) {
        super::write_frame(self, input).await;
    }

    async fn open_playlist(&self, input: &FrameIn<'_>) -> Result<OpenPlaylist, OutputError> {
        let format = self.ctx.spec.format;
        let spool_playlist = self.ctx.target.spool().new_path(format.extension());
        let record_id = new_id();
        let mut size = 0;
        let (muxer, init_object) = match format {
            Format::Cmaf => {
                let mut m = fmp4::Muxer::new(input.tracks, fmp4::Mode::Cmaf)?;
                let init_path = self.ctx.target.spool().new_path("mp4");
                let stored = async {
                    let mut init = SpoolFile::create(init_path.clone(), self.ctx.policy).await?;
                    m.init(&mut init.buf)?;
                    let vars = name_vars(&self.ctx.key, input.wall, input.wall, input.wall, 0);
                    let name = layout::init_object(&self.ctx.spec.slice_object_prefix, &vars)?;
                    let (path, bytes) = init.finish(Vec::new()).await?;
                    let object = store_part(&self.ctx, &spool_playlist, path, name).await?;
                    Ok::<_, OutputError>((object, bytes))
                }
                .await;
                let (object, bytes) = match stored {
                    Ok(stored) => stored,
                    Err(err) => {
                        // Nothing claims the init segment yet: it must not stay in the spool.
                        let _ = tokio::fs::remove_file(&init_path).await;
                        return Err(err);
                    }
                };
                size += bytes;
                (Muxer::Cmaf(m), Some(object))
            }
            Format::M3u8 => (Muxer::Ts(Box::new(ts::Muxer::new(input.tracks)?)), None),
            Format::Mp4 | Format::Flv => return Err(OutputError::WrongOutput(format)),
        };
        save_meta(
            spool_playlist.clone(),
            SpoolMeta::new(
                &self.ctx,
                &record_id,
                self.next_sequence,
                input.wall,
                video_size(input.tracks),
                MetaKind::Playlist {
                    init_object: init_object.clone(),
                    segments: Vec::new(),
                    open_segment: None,
                    open_segment_start_ms: None,
                    closing_segment: None,
                },
            ),
        )
        .await?;
        let journal = {
            let path = spool_playlist.clone();
            tokio::task::spawn_blocking(move || Journal::create(&path))
                .await
                .map_err(std::io::Error::other)?
        };
        let journal = match journal {
            Ok(journal) => journal,
            Err(err) => {
                drop_meta(spool_playlist.clone()).await;
                return Err(err.into());
            }
        };
        let mut open = OpenPlaylist {
            record_id,
            sequence: self.next_sequence,
            muxer,
            clock: FileClock::new(input.dts),
            tracks: input.tracks.clone(),
            start_wall: input.wall,
            last_wall: input.wall,
            init_object,
            segments: Vec::new(),
            segment: None,
            next_sequence: 0,
            fragment_start: 0,
            size,
            spool_playlist,
            journal,
            rendered: RenderedPlaylist {
                target_duration: 0,
                object_dir: String::new(),
            },
        };
        // The growing playlist exists from the start, so recovery can tell a playlist still
        // recording (its spool file is there) from one already stored (it has left the spool).
        if let Err(err) = rewrite_spool_playlist(&self.ctx, &mut open).await {
            let _ = tokio::fs::remove_file(&open.spool_playlist).await;
            drop_meta(open.spool_playlist.clone()).await;
            return Err(err);
        }
        Ok(open)
    }

    async fn write_open(&mut self, input: &FrameIn<'_>) -> Result<(), OutputError> {
        let slice_ms = self.ctx.slice_ms();
        let Some(open) = &mut self.open else {
            return Ok(());
        };
        let dts = open.clock.map(input.frame.track, input.dts);
        let frame = Frame {
            dts,
            ..input.frame.clone()
        };
        // A segment cut refused by the budget leaves the segment going on.
        let cut = input.starts_gop
            && open
                .segment
                .as_ref()
                .is_some_and(|s| dts - s.start >= slice_ms)
            && self.cuts.allow(input.now);
        match &mut open.muxer {
            Muxer::Cmaf(m) => {
                // Pushed first so the flush ends the fragment right before this keyframe.
                m.push(&frame)?;
                if cut {
                    if let Some(seg) = &mut open.segment {
                        m.flush_fragment(seg.buf_mut())?;
                        metrics::counter!(crate::metrics::FRAGMENTS_FLUSHED, "format" => "cmaf")
                            .increment(1);
                    }
                    open.fragment_start = dts;
                    close_segment(&self.ctx, open, dts).await?;
                } else if dts - open.fragment_start >= FRAGMENT_MS
                    && let Some(seg) = &mut open.segment
                {
                    m.flush_fragment(seg.buf_mut())?;
                    metrics::counter!(crate::metrics::FRAGMENTS_FLUSHED, "format" => "cmaf")
                        .increment(1);
                    open.fragment_start = dts;
                }
                if open.segment.is_none() {
                    open.segment = Some(open_segment(&self.ctx, open, dts, input.wall).await?);
                }
            }
            Muxer::Ts(_) => {
                if cut {
                    close_segment(&self.ctx, open, dts).await?;
                }
                if open.segment.is_none() {
                    let mut seg = open_segment(&self.ctx, open, dts, input.wall).await?;
                    if let Muxer::Ts(m) = &mut open.muxer {
                        m.start_segment(&mut seg.spool.buf);
                    }
                    open.segment = Some(seg);
                }
                if let (Muxer::Ts(m), Some(seg)) = (&mut open.muxer, &mut open.segment) {
                    m.push(&frame, &mut seg.spool.buf)?;
                }
            }
        }
        open.last_wall = input.wall;
        if let Some(seg) = &mut open.segment {
            seg.spool.maybe_flush(input.now).await?;
        }
        Ok(())
    }

    pub async fn flush(&mut self) {
        if let Some(seg) = self.open.as_mut().and_then(|o| o.segment.as_mut())
            && let Err(err) = seg.spool.flush(false).await
        {
            tracing::warn!(stream = %self.ctx.key, %err, "spool flush failed");
        }
    }

    pub fn close(&mut self) {
        if let Some(open) = self.open.take() {
            let ctx = self.ctx.clone();
            self.ctx.tasks.spawn(async move {
                let path = open.spool_playlist.clone();
                match finalize(&ctx, open).await {
                    Ok(Some(record)) => {
                        tracing::info!(stream = %ctx.key, format = record.format.as_str(), bucket = %record.bucket,
                            object = %record.object, segments = record.segments.len(), duration_ms = record.duration_ms,
                            "recording playlist complete");
                    }
                    Ok(None) => {
                        tracing::info!(stream = %ctx.key, format = ctx.spec.format.as_str(),
                            "a recording playlist ended without a segment; nothing stored")
                    }
                    Err(err) => {
                        tracing::error!(stream = %ctx.key, spool = %path.display(), %err,
                            "finalizing a recording playlist failed; it stays in the spool and is tried again");
                        crate::recovery::finish_later(ctx.target.clone(), path, ctx.tasks.clone())
                            .await;
                    }
                }
            });
        }
    }
}

impl OpenSegment {
    fn buf_mut(&mut self) -> &mut BytesMut {
        &mut self.spool.buf
    }
}

async fn open_segment(
    ctx: &OutputContext,
    open: &mut OpenPlaylist,
    start: i64,
    wall: SystemTime,
) -> Result<OpenSegment, OutputError> {
    let extension = segment_extension(ctx)?;
    let path = ctx.target.spool().new_path(extension);
    // The journal names the segment before it exists, so no spool file is ever unclaimed
    // (recovery skips an open segment that is missing).
    open.journal
        .append_async(JournalEntry::Opened {
            path: path.clone(),
            start_ms: unix_ms(wall),
        })
        .await?;
    let spool = SpoolFile::create(path, ctx.policy).await?;
    let sequence = open.next_sequence;
    open.next_sequence += 1;
    Ok(OpenSegment {
        spool,
        start,
        start_wall: wall,
        sequence,
    })
}

fn segment_extension(ctx: &OutputContext) -> Result<&'static str, OutputError> {
    ctx.spec
        .format
        .segment_extension()
        .ok_or(OutputError::WrongOutput(ctx.spec.format))
}

/// Stores a segment or init segment of the playlist whose spool file is `spool_playlist`:
/// they form one group, so a remote target makes the playlist visible after its parts.
async fn store_part(
    ctx: &OutputContext,
    spool_playlist: &std::path::Path,
    path: PathBuf,
    name: ObjectName,
) -> Result<String, OutputError> {
    Ok(ctx
        .target
        .store(StoreRequest {
            spool_file: path,
            name,
            group: Some(spool_playlist.display().to_string()),
            completion: None,
        })
        .await?)
}

/// Closes the open segment, which ends at `end` (file time), and adds it to the growing
/// playlist.
async fn close_segment(
    ctx: &OutputContext,
    open: &mut OpenPlaylist,
    end: i64,
) -> Result<(), OutputError> {
    let Some(seg) = open.segment.take() else {
        return Ok(());
    };
    let vars = name_vars(
        &ctx.key,
        open.start_wall,
        seg.start_wall,
        seg.start_wall,
        seg.sequence,
    );
    let name = layout::segment_object(
        &ctx.spec.slice_object_prefix,
        &vars,
        segment_extension(ctx)?,
    )?;
    let (path, bytes) = seg.spool.finish(Vec::new()).await?;
    open.size += bytes;
    let duration_ms = u64::try_from(end - seg.start).unwrap_or(0);
    // Noted before it leaves the spool: a crash between the store and the next note must not
    // drop it from the playlist.
    open.journal
        .append_async(JournalEntry::Closing {
            segment: ClosingSegment {
                path: path.clone(),
                start_ms: unix_ms(seg.start_wall),
                duration_ms,
                size: bytes,
                sequence: seg.sequence,
            },
        })
        .await?;
    let object = store_part(ctx, &open.spool_playlist, path, name).await?;
    let segment = SegmentRecord {
        object,
        start: seg.start_wall,
        duration_ms,
        size: bytes,
    };
    open.journal
        .append_async(JournalEntry::Stored {
            index: open.segments.len() as u64,
            segment: segment.clone(),
        })
        .await?;
    open.segments.push(segment);
    extend_spool_playlist(ctx, open).await
}

/// Adds the last segment to the spool playlist: its lines appended, or the whole playlist
/// rewritten if the segment needs a longer target duration or the object's directory moved.
async fn extend_spool_playlist(
    ctx: &OutputContext,
    open: &mut OpenPlaylist,
) -> Result<(), OutputError> {
    let Some(last) = open.segments.last() else {
        return Ok(());
    };
    let name = playlist_object(ctx, open)?.to_string();
    let segment = Segment::new(
        relative_uri(&name, &last.object),
        last.duration_ms as f64 / 1000.0,
    );
    if segment.target_duration() > open.rendered.target_duration
        || object_dir(&name) != open.rendered.object_dir
    {
        return rewrite_spool_playlist(ctx, open).await;
    }
    let mut lines = String::new();
    segment.render(&mut lines);
    let path = open.spool_playlist.clone();
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::options().append(true).open(path)?;
        std::io::Write::write_all(&mut file, lines.as_bytes())
    })
    .await
    .map_err(std::io::Error::other)??;
    Ok(())
}

/// Renders the whole spool playlist into place (a synced temporary file renamed over it, so a
/// reader never sees it cut short).
async fn rewrite_spool_playlist(
    ctx: &OutputContext,
    open: &mut OpenPlaylist,
) -> Result<(), OutputError> {
    let name = playlist_object(ctx, open)?.to_string();
    let playlist = build_playlist(ctx, open, &name, false);
    let rendered = RenderedPlaylist {
        target_duration: playlist.target_duration(),
        object_dir: object_dir(&name).to_owned(),
    };
    let text = playlist.to_m3u8();
    let path = open.spool_playlist.clone();
    tokio::task::spawn_blocking(move || {
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        let mut file = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut file, text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)
    })
    .await
    .map_err(std::io::Error::other)??;
    open.rendered = rendered;
    Ok(())
}

/// The directory part of an object name ("" at the bucket's root).
fn object_dir(object: &str) -> &str {
    object.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// Replaces `path` with `text`, fsynced, off the runtime.
async fn write_synced(path: PathBuf, text: String) -> Result<u64, OutputError> {
    Ok(tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::create(&path)?;
        std::io::Write::write_all(&mut file, text.as_bytes())?;
        file.sync_all()?;
        Ok::<_, std::io::Error>(text.len() as u64)
    })
    .await
    .map_err(std::io::Error::other)??)
}

fn playlist_object(ctx: &OutputContext, open: &OpenPlaylist) -> Result<ObjectName, OutputError> {
    ctx.file_name(open.start_wall, open.last_wall, open.sequence)
}

fn build_playlist(
    ctx: &OutputContext,
    open: &OpenPlaylist,
    playlist_object: &str,
    ended: bool,
) -> MediaPlaylist {
    let mut playlist = MediaPlaylist::new();
    playlist.min_target_duration = ctx.spec.slice.as_secs();
    playlist.map_uri = open
        .init_object
        .as_deref()
        .map(|init| relative_uri(playlist_object, init));
    for segment in &open.segments {
        playlist.push(
            relative_uri(playlist_object, &segment.object),
            segment.duration_ms as f64 / 1000.0,
        );
    }
    playlist.ended = ended;
    playlist
}

/// Closes the last segment and stores the final playlist; `None` when the playlist holds no
/// segment (every write failed), which leaves nothing behind.
async fn finalize(
    ctx: &OutputContext,
    mut open: OpenPlaylist,
) -> Result<Option<FileRecord>, OutputError> {
    let end = open.clock.end + open.clock.video_step;
    if let (Muxer::Cmaf(m), Some(seg)) = (&mut open.muxer, &mut open.segment) {
        m.finish(&mut seg.spool.buf)?;
    }
    close_segment(ctx, &mut open, end).await?;
    if open.segments.is_empty() {
        let _ = tokio::fs::remove_file(&open.spool_playlist).await;
        drop_meta(open.spool_playlist.clone()).await;
        if let Some(init) = &open.init_object {
            let _ = ctx.target.delete(init).await;
        }
        return Ok(None);
    }
    let name = playlist_object(ctx, &open)?;
    // Segment URIs are relative to the name before a collision suffix: same directory.
    let text = build_playlist(ctx, &open, &name.to_string(), true).to_m3u8();
    // The final playlist replaces the growing one in place and is stored from there, so a
    // crash after the store leaves nothing for recovery to redo.
    let bytes = write_synced(open.spool_playlist.clone(), text).await?;
    let duration_ms = open.segments.iter().map(|s| s.duration_ms).sum();
    let mut record = ctx.file_record(
        open.record_id.clone(),
        (open.start_wall, open.last_wall),
        duration_ms,
        open.size + bytes,
        &open.tracks,
    );
    record.init_object = open.init_object.clone();
    record.segments = std::mem::take(&mut open.segments);
    let group = open.spool_playlist.display().to_string();
    record.object = ctx
        .target
        .store(StoreRequest {
            spool_file: open.spool_playlist.clone(),
            name,
            group: Some(group),
            completion: Some(completion(&record)?),
        })
        .await?;
    drop_meta(open.spool_playlist.clone()).await;
    Ok(Some(record))
}
