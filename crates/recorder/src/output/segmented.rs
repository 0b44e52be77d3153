//! Segmented formats: HLS with MPEG-TS segments (`m3u8`) or fMP4 segments (`cmaf`).
//!
//! Segments are cut at the first GOP start after the slice duration and become objects as soon
//! as they close; the playlist grows in the spool after every segment and is stored under its
//! final name, with `#EXT-X-ENDLIST`, when the file is finalized.

use std::path::PathBuf;
use std::time::SystemTime;

use bytes::BytesMut;
use liverec_media::{Frame, Tracks};
use liverec_mux::hls::MediaPlaylist;
use liverec_mux::{fmp4, ts};

use super::{
    Failures, FileClock, FileRecord, FormatWriter, FrameIn, OutputContext, OutputError,
    boundary_passed, drop_meta, save_meta, video_size,
};
use crate::config::Format;
use crate::names::{NameVars, relative_uri, render};
use crate::recovery::{MetaKind, SpoolMeta};
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
    muxer: Muxer,
    clock: FileClock,
    tracks: Tracks,
    start_wall: SystemTime,
    last_wall: SystemTime,
    init_object: Option<String>,
    /// Finished segments: object name and duration in seconds.
    segments: Vec<(String, f64)>,
    segment: Option<OpenSegment>,
    next_sequence: u64,
    fragment_start: i64,
    size: u64,
    spool_playlist: PathBuf,
}

pub struct SegmentedOutput {
    ctx: OutputContext,
    open: Option<OpenPlaylist>,
    failures: Failures,
}

impl FormatWriter for SegmentedOutput {
    fn failures(&mut self) -> &mut Failures {
        &mut self.failures
    }

    fn cut_due(&self, input: &FrameIn<'_>) -> Option<bool> {
        self.open
            .as_ref()
            .map(|open| boundary_passed(&open.clock, &open.tracks, input, self.ctx.cycle_ms()))
    }

    async fn open(&mut self, input: &FrameIn<'_>) -> Result<(), OutputError> {
        self.open = Some(self.open_playlist(input).await?);
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
            failures,
        }
    }

    fn segment_extension(&self) -> &'static str {
        if self.ctx.spec.format == Format::Cmaf {
            "m4s"
        } else {
            "ts"
        }
    }

    pub async fn write(&mut self, input: &FrameIn<'_>) {
        super::write_frame(self, input).await;
    }

    async fn open_playlist(&self, input: &FrameIn<'_>) -> Result<OpenPlaylist, OutputError> {
        let mut size = 0;
        let (muxer, init_object) = match self.ctx.spec.format {
            Format::Cmaf => {
                let mut m = fmp4::Muxer::new(input.tracks, fmp4::Mode::Cmaf)?;
                let mut init =
                    SpoolFile::create(self.ctx.target.new_spool_path("mp4"), self.ctx.policy)
                        .await?;
                m.init(&mut init.buf)?;
                let vars = NameVars {
                    key: &self.ctx.key,
                    start: input.wall,
                    end: input.wall,
                    unix: input.wall,
                    sequence: 0,
                };
                let object = format!(
                    "{}_init.mp4",
                    render(&self.ctx.spec.slice_object_prefix, &vars)?
                );
                let (path, bytes) = init.finish(Vec::new()).await?;
                size += bytes;
                (Muxer::Cmaf(m), Some(commit(&self.ctx, path, object).await?))
            }
            _ => (Muxer::Ts(Box::new(ts::Muxer::new(input.tracks)?)), None),
        };
        let spool_playlist = self.ctx.target.new_spool_path("m3u8");
        let open = OpenPlaylist {
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
        };
        save_playlist_meta(&self.ctx, &open).await?;
        Ok(open)
    }

    async fn write_open(&mut self, input: &FrameIn<'_>) -> Result<(), OutputError> {
        let slice_ms = self.ctx.slice_ms();
        let extension = self.segment_extension();
        let Some(open) = &mut self.open else {
            return Ok(());
        };
        let dts = open.clock.map(input.frame.track, input.dts);
        let frame = Frame {
            dts,
            ..input.frame.clone()
        };
        let cut = input.starts_gop
            && open
                .segment
                .as_ref()
                .is_some_and(|s| dts - s.start >= slice_ms);
        match &mut open.muxer {
            Muxer::Cmaf(m) => {
                // Pushed first so the flush ends the fragment right before this keyframe.
                m.push(&frame)?;
                if cut {
                    if let Some(seg) = &mut open.segment {
                        m.flush_fragment(seg.buf_mut())?;
                    }
                    open.fragment_start = dts;
                    close_segment(&self.ctx, open, dts).await?;
                } else if dts - open.fragment_start >= FRAGMENT_MS
                    && let Some(seg) = &mut open.segment
                {
                    m.flush_fragment(seg.buf_mut())?;
                    open.fragment_start = dts;
                }
                if open.segment.is_none() {
                    open.segment =
                        Some(open_segment(&self.ctx, open, dts, input.wall, extension).await?);
                }
            }
            Muxer::Ts(_) => {
                if cut {
                    close_segment(&self.ctx, open, dts).await?;
                }
                if open.segment.is_none() {
                    let mut seg = open_segment(&self.ctx, open, dts, input.wall, extension).await?;
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
                match finalize(&ctx, open).await {
                    Ok(record) => {
                        tracing::info!(stream = %ctx.key, format = record.format.as_str(), bucket = %record.bucket,
                            object = %record.object, segments = record.segments.len(), duration_ms = record.duration_ms,
                            "recording playlist complete");
                        (ctx.sink)(record).await;
                    }
                    Err(err) => tracing::error!(stream = %ctx.key, %err,
                        "finalizing a recording playlist failed; its segments stay for recovery"),
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
    extension: &str,
) -> Result<OpenSegment, OutputError> {
    let spool = SpoolFile::create(ctx.target.new_spool_path(extension), ctx.policy).await?;
    let sequence = open.next_sequence;
    open.next_sequence += 1;
    let segment = OpenSegment {
        spool,
        start,
        start_wall: wall,
        sequence,
    };
    let mut meta = playlist_meta(ctx, open);
    if let MetaKind::Playlist { open_segment, .. } = &mut meta.kind {
        *open_segment = Some(segment.spool.path().to_owned());
    }
    save_meta(open.spool_playlist.clone(), meta).await?;
    Ok(segment)
}

fn playlist_meta(ctx: &OutputContext, open: &OpenPlaylist) -> SpoolMeta {
    let kind = MetaKind::Playlist {
        init_object: open.init_object.clone(),
        segments: open.segments.clone(),
        open_segment: open.segment.as_ref().map(|s| s.spool.path().to_owned()),
    };
    SpoolMeta::new(
        &ctx.key,
        &ctx.spec,
        ctx.target.endpoint(),
        open.start_wall,
        kind,
    )
}

async fn save_playlist_meta(ctx: &OutputContext, open: &OpenPlaylist) -> Result<(), OutputError> {
    Ok(save_meta(open.spool_playlist.clone(), playlist_meta(ctx, open)).await?)
}

/// Closes the open segment, which ends at `end` (file time), and rewrites the growing playlist.
async fn close_segment(
    ctx: &OutputContext,
    open: &mut OpenPlaylist,
    end: i64,
) -> Result<(), OutputError> {
    let Some(seg) = open.segment.take() else {
        return Ok(());
    };
    let vars = NameVars {
        key: &ctx.key,
        start: open.start_wall,
        end: seg.start_wall,
        unix: seg.start_wall,
        sequence: seg.sequence,
    };
    let extension = if ctx.spec.format == Format::Cmaf {
        "m4s"
    } else {
        "ts"
    };
    let object = format!(
        "{}.{}",
        render(&ctx.spec.slice_object_prefix, &vars)?,
        extension
    );
    let (path, bytes) = seg.spool.finish(Vec::new()).await?;
    open.size += bytes;
    let object = commit(ctx, path, object).await?;
    open.segments
        .push((object, (end - seg.start).max(0) as f64 / 1000.0));
    save_playlist_meta(ctx, open).await?;
    let playlist_object = playlist_object(ctx, open)?;
    let text = render_playlist(ctx, open, &playlist_object, false);
    let path = open.spool_playlist.clone();
    tokio::task::spawn_blocking(move || std::fs::write(path, text))
        .await
        .map_err(std::io::Error::other)??;
    Ok(())
}

fn playlist_object(ctx: &OutputContext, open: &OpenPlaylist) -> Result<String, OutputError> {
    let vars = NameVars {
        key: &ctx.key,
        start: open.start_wall,
        end: open.last_wall,
        unix: open.start_wall,
        sequence: 0,
    };
    Ok(format!("{}.m3u8", render(&ctx.spec.object_prefix, &vars)?))
}

fn render_playlist(
    ctx: &OutputContext,
    open: &OpenPlaylist,
    playlist_object: &str,
    ended: bool,
) -> String {
    let mut playlist = MediaPlaylist::new();
    playlist.min_target_duration = ctx.spec.slice.as_secs();
    playlist.map_uri = open
        .init_object
        .as_deref()
        .map(|init| relative_uri(playlist_object, init));
    for (object, duration) in &open.segments {
        playlist.push(relative_uri(playlist_object, object), *duration);
    }
    playlist.ended = ended;
    playlist.to_m3u8()
}

async fn commit(ctx: &OutputContext, path: PathBuf, object: String) -> Result<String, OutputError> {
    let target = ctx.target.clone();
    Ok(
        tokio::task::spawn_blocking(move || target.commit(&path, &object))
            .await
            .map_err(std::io::Error::other)??,
    )
}

async fn finalize(ctx: &OutputContext, mut open: OpenPlaylist) -> Result<FileRecord, OutputError> {
    let end = open.clock.end + open.clock.video_step;
    if let (Muxer::Cmaf(m), Some(seg)) = (&mut open.muxer, &mut open.segment) {
        m.finish(&mut seg.spool.buf)?;
    }
    close_segment(ctx, &mut open, end).await?;
    let object = playlist_object(ctx, &open)?;
    let text = render_playlist(ctx, &open, &object, true);
    let mut file = SpoolFile::create(ctx.target.new_spool_path("m3u8"), ctx.policy).await?;
    file.buf.extend_from_slice(text.as_bytes());
    let (path, bytes) = file.finish(Vec::new()).await?;
    let object = commit(ctx, path, object).await?;
    let spool_playlist = open.spool_playlist.clone();
    let _ = tokio::task::spawn_blocking(move || std::fs::remove_file(spool_playlist)).await;
    drop_meta(open.spool_playlist.clone()).await;
    let duration_ms: f64 = open.segments.iter().map(|(_, d)| d * 1000.0).sum();
    let (width, height) = video_size(&open.tracks);
    let mut segments: Vec<String> = open.init_object.into_iter().collect();
    segments.extend(open.segments.into_iter().map(|(o, _)| o));
    Ok(FileRecord {
        key: ctx.key.clone(),
        format: ctx.spec.format,
        bucket: ctx.target.bucket().to_owned(),
        endpoint: ctx.target.endpoint().to_owned(),
        object,
        start: open.start_wall,
        end: open.last_wall,
        duration_ms: duration_ms.round() as u64,
        size: open.size + bytes,
        width,
        height,
        segments,
    })
}
