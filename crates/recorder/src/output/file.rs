//! Single-file formats: MP4 (fragmented, finalized in place) and FLV.

use std::time::SystemTime;

use liverec_media::{Frame, Tracks};
use liverec_mux::{Patch, flv, fmp4};

use super::{
    Failures, FileClock, FileRecord, FormatWriter, FrameIn, OutputContext, OutputError,
    boundary_passed, drop_meta, save_meta, video_size,
};
use crate::config::Format;
use crate::names::{NameVars, render};
use crate::recovery::{MetaKind, SpoolMeta};
use crate::spool::SpoolFile;

/// Media time per MP4 fragment: a crash loses at most about this much.
const FRAGMENT_MS: i64 = 1000;
/// A GOP start also ends a fragment once it is this long. Then the previous GOP's frames are
/// written (and released) when the hub's GOP cache lets go of them, rather than up to a
/// fragment later; the floor keeps all-intra streams from writing a fragment per frame.
const MIN_FRAGMENT_MS: i64 = FRAGMENT_MS / 4;

enum Muxer {
    Mp4(fmp4::Muxer),
    Flv(flv::Muxer),
}

impl Muxer {
    fn push(&mut self, frame: &Frame, out: &mut SpoolFile) -> Result<(), OutputError> {
        match self {
            Self::Mp4(m) => m.push(frame)?,
            Self::Flv(m) => m.push(frame, &mut out.buf)?,
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut SpoolFile) -> Result<(Vec<Patch>, u64), OutputError> {
        Ok(match self {
            Self::Mp4(m) => (m.finish(out)?, m.duration_ms()),
            Self::Flv(m) => (m.finish(&mut out.buf), m.duration_ms()),
        })
    }
}

struct OpenFile {
    muxer: Muxer,
    spool: SpoolFile,
    clock: FileClock,
    tracks: Tracks,
    fragment_start: i64,
    start_wall: SystemTime,
    last_wall: SystemTime,
}

pub struct FileOutput {
    ctx: OutputContext,
    open: Option<OpenFile>,
    failures: Failures,
}

impl FormatWriter for FileOutput {
    fn failures(&mut self) -> &mut Failures {
        &mut self.failures
    }

    fn cut_due(&self, input: &FrameIn<'_>) -> Option<bool> {
        self.open
            .as_ref()
            .map(|open| boundary_passed(&open.clock, &open.tracks, input, self.ctx.cycle_ms()))
    }

    async fn open(&mut self, input: &FrameIn<'_>) -> Result<(), OutputError> {
        self.open = Some(self.open_file(input).await?);
        Ok(())
    }

    async fn write_open(&mut self, input: &FrameIn<'_>) -> Result<(), OutputError> {
        FileOutput::write_open(self, input).await
    }

    fn close(&mut self) {
        FileOutput::close(self);
    }
}

impl FileOutput {
    pub fn new(ctx: OutputContext) -> Self {
        let failures = Failures::for_output(&ctx);
        Self {
            ctx,
            open: None,
            failures,
        }
    }

    pub async fn write(&mut self, input: &FrameIn<'_>) {
        super::write_frame(self, input).await;
    }

    async fn open_file(&self, input: &FrameIn<'_>) -> Result<OpenFile, OutputError> {
        let path = self
            .ctx
            .target
            .new_spool_path(self.ctx.spec.format.extension());
        let mut spool = SpoolFile::create(path.clone(), self.ctx.policy).await?;
        let meta = SpoolMeta::new(
            &self.ctx.key,
            &self.ctx.spec,
            self.ctx.target.endpoint(),
            input.wall,
            MetaKind::File,
        );
        save_meta(path, meta).await?;
        let muxer = match self.ctx.spec.format {
            Format::Flv => {
                let mut m = flv::Muxer::new(input.tracks);
                m.header(&mut spool.buf);
                Muxer::Flv(m)
            }
            _ => {
                let mut m = fmp4::Muxer::new(input.tracks, fmp4::Mode::File)?;
                m.init(&mut spool.buf)?;
                Muxer::Mp4(m)
            }
        };
        Ok(OpenFile {
            muxer,
            spool,
            clock: FileClock::new(input.dts),
            tracks: input.tracks.clone(),
            fragment_start: 0,
            start_wall: input.wall,
            last_wall: input.wall,
        })
    }

    async fn write_open(&mut self, input: &FrameIn<'_>) -> Result<(), OutputError> {
        let Some(open) = &mut self.open else {
            return Ok(());
        };
        let dts = open.clock.map(input.frame.track, input.dts);
        let frame = Frame {
            dts,
            ..input.frame.clone()
        };
        open.muxer.push(&frame, &mut open.spool)?;
        open.last_wall = input.wall;
        if let Muxer::Mp4(m) = &mut open.muxer {
            // The frame just pushed is held back and opens the next fragment.
            let length = dts - open.fragment_start;
            if length >= FRAGMENT_MS || (input.starts_gop && length >= MIN_FRAGMENT_MS) {
                m.flush_fragment(&mut open.spool)?;
                open.fragment_start = dts;
                // A whole fragment is queued by reference: write it now, so the frames it
                // holds are released (the spool's 1 s flush is for the small writes between).
                let sync = open.spool.sync_due(input.now);
                return Ok(open.spool.flush(sync).await?);
            }
        }
        open.spool.maybe_flush(input.now).await?;
        Ok(())
    }

    pub async fn flush(&mut self) {
        if let Some(open) = &mut self.open
            && let Err(err) = open.spool.flush(false).await
        {
            tracing::warn!(stream = %self.ctx.key, %err, "spool flush failed");
        }
    }

    pub fn close(&mut self) {
        if let Some(open) = self.open.take() {
            let ctx = self.ctx.clone();
            self.ctx.tasks.spawn(async move {
                let path = open.spool.path().to_owned();
                match finalize(&ctx, open).await {
                    Ok(record) => {
                        tracing::info!(stream = %ctx.key, format = record.format.as_str(), bucket = %record.bucket,
                            object = %record.object, duration_ms = record.duration_ms, bytes = record.size,
                            "recording file complete");
                        (ctx.sink)(record).await;
                    }
                    Err(err) => tracing::error!(stream = %ctx.key, spool = %path.display(), %err,
                        "finalizing a recording file failed; it stays in the spool for recovery"),
                }
            });
        }
    }
}

async fn finalize(ctx: &OutputContext, mut open: OpenFile) -> Result<FileRecord, OutputError> {
    let (patches, duration_ms) = open.muxer.finish(&mut open.spool)?;
    let (path, size) = open.spool.finish(patches).await?;
    let vars = NameVars {
        key: &ctx.key,
        start: open.start_wall,
        end: open.last_wall,
        unix: open.start_wall,
        sequence: 0,
    };
    let object = format!(
        "{}.{}",
        render(&ctx.spec.object_prefix, &vars)?,
        ctx.spec.format.extension()
    );
    let target = ctx.target.clone();
    let spool_path = path.clone();
    let object = tokio::task::spawn_blocking(move || target.commit(&path, &object))
        .await
        .map_err(std::io::Error::other)??;
    drop_meta(spool_path).await;
    let (width, height) = video_size(&open.tracks);
    Ok(FileRecord {
        key: ctx.key.clone(),
        format: ctx.spec.format,
        bucket: ctx.target.bucket().to_owned(),
        endpoint: ctx.target.endpoint().to_owned(),
        object,
        start: open.start_wall,
        end: open.last_wall,
        duration_ms,
        size,
        width,
        height,
        segments: Vec::new(),
    })
}
