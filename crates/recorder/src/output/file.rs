//! Single-file formats: MP4 (fragmented, finalized in place) and FLV.

use std::time::SystemTime;

use liverec_media::{Frame, Tracks};
use liverec_mux::{Patch, flv, fmp4};

use liverec_storage::StoreRequest;

use super::{
    Boundary, CutBudget, Failures, FileClock, FileRecord, FormatWriter, FrameIn, OutputContext,
    OutputError, boundary, completion, drop_meta, new_id, save_meta, video_size,
};
use crate::config::Format;
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
    record_id: String,
    /// The file's number within its recording (`{Sequence}` in OssObjectPrefix).
    sequence: u64,
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
    next_sequence: u64,
    pub(super) failures: Failures,
    cuts: CutBudget,
}

impl FormatWriter for FileOutput {
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
        self.open = Some(self.open_file(input).await?);
        self.next_sequence += 1;
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
            next_sequence: 0,
            failures,
            cuts: CutBudget::default(),
        }
    }

    pub async fn write(&mut self, input: &FrameIn<'_>) {
        super::write_frame(self, input).await;
    }

    async fn open_file(&self, input: &FrameIn<'_>) -> Result<OpenFile, OutputError> {
        let format = self.ctx.spec.format;
        let path = self.ctx.target.spool().new_path(format.extension());
        let record_id = new_id();
        let meta = SpoolMeta::new(
            &self.ctx,
            &record_id,
            self.next_sequence,
            input.wall,
            video_size(input.tracks),
            MetaKind::File,
        );
        // The sidecar comes first, so no spool file is ever without one (a sidecar whose file
        // is missing is dropped by recovery).
        save_meta(path.clone(), meta).await?;
        let mut spool = match SpoolFile::create(path.clone(), self.ctx.policy).await {
            Ok(spool) => spool,
            Err(err) => {
                drop_meta(path).await;
                return Err(err.into());
            }
        };
        let muxer = match format {
            Format::Flv => {
                let mut m = flv::Muxer::new(input.tracks);
                m.header(&mut spool.buf);
                Muxer::Flv(m)
            }
            Format::Mp4 => {
                let mut m = fmp4::Muxer::new(input.tracks, fmp4::Mode::File)?;
                m.init(&mut spool.buf)?;
                Muxer::Mp4(m)
            }
            Format::M3u8 | Format::Cmaf => return Err(OutputError::WrongOutput(format)),
        };
        Ok(OpenFile {
            record_id,
            sequence: self.next_sequence,
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
                metrics::counter!(crate::metrics::FRAGMENTS_FLUSHED, "format" => "mp4")
                    .increment(1);
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
                    }
                    Err(err) => {
                        tracing::error!(stream = %ctx.key, spool = %path.display(), %err,
                            "finalizing a recording file failed; it stays in the spool and is tried again");
                        crate::recovery::finish_later(ctx.target.clone(), path, ctx.tasks.clone())
                            .await;
                    }
                }
            });
        }
    }
}

async fn finalize(ctx: &OutputContext, mut open: OpenFile) -> Result<FileRecord, OutputError> {
    let (patches, duration_ms) = open.muxer.finish(&mut open.spool)?;
    let (path, size) = open.spool.finish(patches).await?;
    let name = ctx.file_name(open.start_wall, open.last_wall, open.sequence)?;
    let mut record = ctx.file_record(
        open.record_id,
        (open.start_wall, open.last_wall),
        duration_ms,
        size,
        &open.tracks,
    );
    record.object = ctx
        .target
        .store(StoreRequest {
            spool_file: path.clone(),
            name,
            group: None,
            completion: Some(completion(&record)?),
        })
        .await?;
    drop_meta(path).await;
    Ok(record)
}
