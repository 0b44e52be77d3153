//! Crash recovery: on start, every recording left in a spool (the process was killed, the
//! disk filled up at finalize, shutdown timed out) is finalized through the same steps as a
//! normal finalize, stored under its final name and handed to the sink.
//!
//! Each spool file has a sidecar `<spool file>.json` ([`SpoolMeta`]) written when it opens;
//! a playlist notes its segments in an append-only journal beside it ([`crate::journal`]), so
//! recovery needs no database and the notes cost O(1) per segment.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use liverec_hub::StreamKey;
use liverec_mux::fmp4;
use liverec_mux::hls::MediaPlaylist;
use liverec_storage::layout::{self, ObjectName, Spool, relative_uri};
use liverec_storage::{Storage, StoreRequest, Target};
use serde::{Deserialize, Serialize};

use crate::config::Format;
use crate::journal::{self, Journal, JournalEntry};
use crate::output::{FileRecord, OutputContext, SegmentRecord, name_vars};

/// Version of the sidecar format (2: ids, file sequence, picture size, segment records;
/// 3: a playlist's segments are in its journal). Sidecars of every version are read.
const META_VERSION: u32 = 3;
/// Sidecar files larger than this are not ours.
const MAX_META_BYTES: u64 = 16 * 1024 * 1024;
/// Largest CMAF init segment read back for recovery.
const MAX_INIT_BYTES: u64 = 4 * 1024 * 1024;
const TS_PACKET: u64 = 188;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetaKey {
    pub domain: String,
    pub app: String,
    pub stream: String,
}

/// A committed segment as sidecars list it; version 1 wrote `[object, seconds]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MetaSegment {
    Stored(SegmentRecord),
    V1(String, f64),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MetaKind {
    /// A single-file recording (MP4, FLV); the spool file is the recording.
    File,
    /// A segmented recording; the spool file is its growing playlist.
    Playlist {
        init_object: Option<String>,
        /// Committed segments.
        segments: Vec<MetaSegment>,
        /// The segment being written, if any.
        open_segment: Option<PathBuf>,
        /// Wall clock of the open segment's first frame (Unix ms).
        #[serde(default)]
        open_segment_start_ms: Option<u64>,
        /// A finished segment being stored: noted before it leaves the spool, so a crash
        /// before the next sidecar write does not drop it from the playlist.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        closing_segment: Option<ClosingSegment>,
    },
}

/// A finished segment on its way from the spool to its target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClosingSegment {
    pub path: PathBuf,
    /// Wall clock of its first frame (Unix ms).
    pub start_ms: u64,
    pub duration_ms: u64,
    pub size: u64,
    /// Its number in the playlist (the `{Sequence}` of its name).
    pub sequence: u64,
}

/// What recovery needs to know of a spool file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpoolMeta {
    pub version: u32,
    pub key: MetaKey,
    pub format: Format,
    pub object_prefix: String,
    pub slice_object_prefix: String,
    pub slice_secs: u64,
    pub start_unix_ms: u64,
    /// OssEndpoint to report in the record index.
    #[serde(default)]
    pub endpoint: String,
    /// The index row's id, so a file recovered twice is indexed once.
    #[serde(default)]
    pub record_id: String,
    #[serde(default)]
    pub session_id: String,
    /// The file's number within its recording.
    #[serde(default)]
    pub sequence: u64,
    #[serde(default)]
    pub width: u32,
    #[serde(default)]
    pub height: u32,
    /// The publish URL's `callback_` parameters, for the file callback.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub push_args: BTreeMap<String, String>,
    #[serde(flatten)]
    pub kind: MetaKind,
}

/// Unix milliseconds of `t` (0 before the epoch).
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn from_unix_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

impl SpoolMeta {
    pub(crate) fn new(
        ctx: &OutputContext,
        record_id: &str,
        sequence: u64,
        start: SystemTime,
        (width, height): (u32, u32),
        kind: MetaKind,
    ) -> Self {
        Self {
            version: META_VERSION,
            key: MetaKey {
                domain: ctx.key.domain.clone(),
                app: ctx.key.app.clone(),
                stream: ctx.key.stream.clone(),
            },
            format: ctx.spec.format,
            object_prefix: ctx.spec.object_prefix.clone(),
            slice_object_prefix: ctx.spec.slice_object_prefix.clone(),
            slice_secs: ctx.spec.slice.as_secs(),
            endpoint: ctx.endpoint.clone(),
            start_unix_ms: unix_ms(start),
            record_id: record_id.to_owned(),
            session_id: ctx.session_id.clone(),
            sequence,
            width,
            height,
            push_args: (*ctx.push_args).clone(),
            kind,
        }
    }

    fn start(&self) -> SystemTime {
        from_unix_ms(self.start_unix_ms)
    }

    fn stream_key(&self) -> StreamKey {
        StreamKey {
            domain: self.key.domain.clone(),
            app: self.key.app.clone(),
            stream: self.key.stream.clone(),
        }
    }

    /// The index row of the recovered file, before the target names it.
    fn record(
        &self,
        bucket: &str,
        duration_ms: u64,
        size: u64,
        init_object: Option<String>,
        segments: Vec<SegmentRecord>,
    ) -> FileRecord {
        let record_id = if self.record_id.is_empty() {
            crate::output::new_id()
        } else {
            self.record_id.clone()
        };
        FileRecord {
            record_id,
            session_id: self.session_id.clone(),
            key: self.stream_key(),
            format: self.format,
            bucket: bucket.to_owned(),
            endpoint: self.endpoint.clone(),
            object: String::new(),
            object_prefix: self.object_prefix.clone(),
            start: self.start(),
            end: self.start() + Duration::from_millis(duration_ms),
            duration_ms,
            size,
            width: self.width,
            height: self.height,
            init_object,
            segments,
            push_args: self.push_args.clone(),
        }
    }

    /// The recovered file's object name.
    fn object_name(&self, duration_ms: u64) -> Result<ObjectName, RecoveryError> {
        let key = self.stream_key();
        let start = self.start();
        let end = start + Duration::from_millis(duration_ms);
        let vars = name_vars(&key, start, end, start, self.sequence);
        Ok(layout::file_object(
            &self.object_prefix,
            &vars,
            self.format.extension(),
        )?)
    }
}

/// Writes the sidecar atomically and durably (temp file, fsync, rename, directory fsync), so
/// after a crash a spool file never lacks the sidecar that was written for it. Blocking.
pub fn write_meta(spool_file: &Path, meta: &SpoolMeta) -> io::Result<()> {
    let path = layout::sidecar_path(spool_file);
    let mut tmp = path.clone().into_os_string();
    tmp.push(".tmp");
    let json = serde_json::to_vec(meta).map_err(io::Error::other)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let written = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(&json)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)
    })();
    if let Err(err) = written {
        // A full disk: the half-written copy must not stay (the previous sidecar does).
        let _ = std::fs::remove_file(&tmp);
        return Err(err);
    }
    if let Some(dir) = path.parent() {
        liverec_storage::sync_dir(dir)?;
    }
    Ok(())
}

/// Removes the sidecar (and journal) of a finished spool file. Blocking; a missing file is
/// fine. The journal goes first: a journal never outlives its sidecar but by a crash here,
/// and [`reconcile_orphans`] removes such a one.
pub fn remove_meta(spool_file: &Path) {
    journal::remove(spool_file);
    let _ = std::fs::remove_file(layout::sidecar_path(spool_file));
}

#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error("storage: {0}")]
    Io(#[from] io::Error),
    #[error("storage target: {0}")]
    Storage(#[from] liverec_storage::StorageError),
    #[error("mp4: {0}")]
    Mp4(#[from] fmp4::RecoverError),
    #[error("object name: {0}")]
    Name(#[from] liverec_storage::NameError),
    #[error("sidecar: {0}")]
    Meta(#[from] serde_json::Error),
    #[error("nothing recordable in the file")]
    Empty,
}

impl RecoveryError {
    /// An error of reading or storing, which may not happen again (as opposed to content that
    /// is proven not to decode).
    fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Io(_) | Self::Storage(_) | Self::Mp4(fmp4::RecoverError::Io(_))
        )
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RecoveryError> + Send + 'static,
) -> Result<T, RecoveryError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| RecoveryError::Io(io::Error::other(e)))?
}

/// Recordings finalized concurrently during recovery (each is mostly fsyncs and one index
/// row, so a few at a time hide each other's waits without flooding the disk).
const RECOVERY_CONCURRENCY: usize = 8;

/// What the start-up pass over the spools did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecoverySummary {
    /// Unfinished recordings finalized, stored and indexed.
    pub recovered: usize,
    /// Files stored just before a crash whose completion (index row) was delivered now.
    pub resumed: usize,
    /// Recordings that could not be recovered now and stay in the spool for the next start.
    pub left: usize,
    /// Spool files no recording claims, moved aside (see [`reconcile_orphans`]).
    pub orphans: usize,
}

/// Hears how far [`recover_all_with`] got (a progress bar, periodic log lines).
pub trait RecoveryProgress: Send + Sync {
    /// `n` more unfinished recordings were found (one call per storage target with any).
    fn found(&self, n: u64);
    /// One of them was dealt with (recovered, or left with a logged reason).
    fn finished(&self);
}

struct Silent;

impl RecoveryProgress for Silent {
    fn found(&self, _: u64) {}
    fn finished(&self) {}
}

/// The start-up pass: for each target, delivers completions a crash cut short
/// ([`Target::resume`]), finalizes every recording left in its spool (stored under its final
/// name, indexed through the completion hook), then reconciles what is left.
pub async fn recover_all(storage: &Storage) -> RecoverySummary {
    recover_all_with(storage, &Silent).await
}

/// [`recover_all`], telling `progress` as it goes.
pub async fn recover_all_with(
    storage: &Storage,
    progress: &dyn RecoveryProgress,
) -> RecoverySummary {
    use futures_util::StreamExt;
    let mut summary = RecoverySummary::default();
    for target in storage.targets_with_spools() {
        match target.resume().await {
            Ok(n) => summary.resumed += n,
            Err(err) => {
                tracing::warn!(bucket = %target.bucket(), %err, "cannot finish the stores a crash cut short")
            }
        }
        let dir = target.spool().dir().to_owned();
        let Ok(sidecars) = blocking(move || Ok(find_sidecars(&dir))).await else {
            continue;
        };
        if !sidecars.is_empty() {
            progress.found(sidecars.len() as u64);
        }
        let outcomes: Vec<bool> = futures_util::stream::iter(sidecars)
            .map(|spool_file| {
                let target = target.clone();
                async move {
                    let recovered = recover_logged(target.as_ref(), &spool_file).await;
                    progress.finished();
                    recovered
                }
            })
            .buffer_unordered(RECOVERY_CONCURRENCY)
            .collect()
            .await;
        for recovered in outcomes {
            if recovered {
                summary.recovered += 1;
            }
        }
        let (left, orphans) = reconcile_orphans(target.as_ref()).await;
        summary.left += left;
        summary.orphans += orphans;
    }
    summary
}

/// First and longest wait between attempts of [`finish_later`].
const FINISH_RETRY_FIRST: Duration = Duration::from_secs(1);
const FINISH_RETRY_MAX: Duration = Duration::from_secs(30);

/// Finishes a recording whose finalize failed (a full disk, storage down) as soon as it can:
/// tries again through recovery, waiting 1 s doubling to 30 s between attempts, until it is
/// stored and indexed. At shutdown (`tasks` closed) it stops trying; the file stays in the
/// spool with its sidecar for the next start.
pub(crate) async fn finish_later(
    target: std::sync::Arc<dyn Target>,
    spool_file: PathBuf,
    tasks: tokio_util::task::TaskTracker,
) {
    let mut wait = FINISH_RETRY_FIRST;
    let mut failures = 0u64;
    loop {
        let deadline = tokio::time::Instant::now() + wait;
        while tokio::time::Instant::now() < deadline {
            if tasks.is_closed() {
                tracing::warn!(spool = %spool_file.display(),
                    "an unfinished recording stays in the spool for the next start");
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        match recover_one(target.as_ref(), &spool_file).await {
            Ok(Some(record)) => {
                tracing::info!(stream = %record.key, format = record.format.as_str(), object = %record.object,
                    duration_ms = record.duration_ms, attempts = failures + 1,
                    "a recording whose finalize had failed is stored now");
                return;
            }
            Ok(None) | Err(RecoveryError::Empty) => return,
            Err(err) => {
                failures += 1;
                if failures.is_power_of_two() {
                    tracing::warn!(spool = %spool_file.display(), %err, failures,
                        "cannot finish a recording yet; trying again");
                }
                wait = (wait * 2).min(FINISH_RETRY_MAX);
            }
        }
    }
}

/// Recovers one recording and logs the outcome; whether a file was recovered.
async fn recover_logged(target: &dyn Target, spool_file: &Path) -> bool {
    match recover_one(target, spool_file).await {
        Ok(Some(record)) => {
            tracing::info!(stream = %record.key, format = record.format.as_str(), bucket = %record.bucket,
                object = %record.object, duration_ms = record.duration_ms, "recovered an unfinished recording");
            true
        }
        Ok(None) => false,
        Err(RecoveryError::Empty) => {
            tracing::info!(spool = %spool_file.display(), "spooled recording held no media; removed");
            false
        }
        Err(err) => {
            tracing::warn!(spool = %spool_file.display(), %err,
                "cannot recover spooled recording now; it is left in place and tried again at the next start");
            false
        }
    }
}

/// After recovery, every spool file should be accounted for: the recordings left in place
/// (their sidecar and open segment), or files the target holds (waiting for upload). Half-written
/// sidecars and notes (`*.tmp`) and empty files are removed; any other file no one claims (a
/// crash between creating a file and writing its sidecar) is moved to the bucket's orphans
/// directory with a warning, never deleted. Returns (recordings left, orphans moved).
async fn reconcile_orphans(target: &dyn Target) -> (usize, usize) {
    let dir = target.spool().dir().to_owned();
    let scan = blocking(move || {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((0, Vec::new())),
            Err(e) => return Err(e.into()),
        };
        let files: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.path())
            .collect();
        // What the recordings still in the spool claim.
        let mut claimed = std::collections::HashSet::new();
        let mut left = 0;
        for sidecar in files.iter().filter(|p| Spool::is_sidecar(p)) {
            let spool_file = Spool::file_of_sidecar(sidecar);
            left += 1;
            match read_meta(&spool_file) {
                Ok(SpoolMeta {
                    kind:
                        MetaKind::Playlist {
                            open_segment,
                            closing_segment,
                            ..
                        },
                    ..
                }) => {
                    claimed.extend(open_segment);
                    claimed.extend(closing_segment.map(|c| c.path));
                }
                Ok(_) => {}
                // Cannot tell what it claims: touch nothing.
                Err(_) => return Ok((left, Vec::new())),
            }
            claimed.insert(spool_file);
        }
        let mut unclaimed = Vec::new();
        for file in files {
            if Spool::is_sidecar(&file) || Spool::is_stored_note(&file) || claimed.contains(&file) {
                continue;
            }
            if Spool::is_journal(&file) {
                // Notes, not media: useless once their sidecar is gone.
                if !layout::sidecar_path(&Spool::file_of_journal(&file)).exists() {
                    let _ = std::fs::remove_file(&file);
                }
                continue;
            }
            if file.extension().is_some_and(|e| e == "tmp")
                || std::fs::metadata(&file).is_ok_and(|m| m.len() == 0)
            {
                let _ = std::fs::remove_file(&file);
                continue;
            }
            unclaimed.push(file);
        }
        Ok((left, unclaimed))
    })
    .await;
    let (left, unclaimed) = match scan {
        Ok(found) => found,
        Err(err) => {
            tracing::warn!(bucket = %target.bucket(), %err, "cannot look over the spool");
            return (0, 0);
        }
    };
    let mut moved = 0;
    for file in unclaimed {
        // Remote targets keep stored files in the spool until their upload is confirmed.
        if target.holds(&file).await.unwrap_or(true) {
            continue;
        }
        let orphans = target.spool().orphans_dir();
        let from = file.clone();
        match blocking(move || {
            std::fs::create_dir_all(&orphans)?;
            let to = orphans.join(from.file_name().unwrap_or_default());
            std::fs::rename(&from, &to)?;
            Ok(to)
        })
        .await
        {
            Ok(to) => {
                tracing::warn!(bucket = %target.bucket(), file = %to.display(),
                    "a spool file no recording claims was moved aside for inspection");
                moved += 1;
            }
            Err(err) => {
                tracing::warn!(file = %file.display(), %err, "cannot move an unclaimed spool file aside")
            }
        }
    }
    (left, moved)
}

/// Spool files with a sidecar. Blocking.
fn find_sidecars(spool_dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(spool_dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| Spool::is_sidecar(p))
        .map(|p| Spool::file_of_sidecar(&p))
        .collect();
    files.sort();
    files
}

/// The sidecar of `spool_file` with its journal replayed over it. Blocking.
fn read_meta(spool_file: &Path) -> Result<SpoolMeta, RecoveryError> {
    let path = layout::sidecar_path(spool_file);
    let mut data = Vec::new();
    File::open(&path)?
        .take(MAX_META_BYTES)
        .read_to_end(&mut data)?;
    let mut meta: SpoolMeta = serde_json::from_slice(&data)?;
    journal::replay(spool_file, &mut meta.kind)?;
    Ok(meta)
}

/// Recovers one spool file; `None` when there was nothing left to do.
async fn recover_one(
    target: &dyn Target,
    spool_file: &Path,
) -> Result<Option<FileRecord>, RecoveryError> {
    let path = spool_file.to_owned();
    let meta = blocking(move || read_meta(&path)).await?;
    let exists = {
        let path = spool_file.to_owned();
        blocking(move || Ok(path.exists())).await?
    };
    if target.holds(spool_file).await? || !exists {
        // Stored before the crash (a remote target still uploads it, or a local one moved it
        // into place); only its sidecar was left.
        let path = spool_file.to_owned();
        blocking(move || {
            remove_meta(&path);
            Ok(())
        })
        .await?;
        return Ok(None);
    }
    let result = match meta.kind.clone() {
        MetaKind::File => recover_file(target, spool_file, &meta).await,
        MetaKind::Playlist {
            init_object,
            segments,
            open_segment,
            open_segment_start_ms,
            closing_segment,
        } => {
            recover_playlist(
                target,
                spool_file,
                &meta,
                init_object,
                segments,
                closing_segment,
                open_segment.zip(Some(open_segment_start_ms)),
            )
            .await
        }
    };
    if matches!(result, Err(RecoveryError::Empty)) {
        // Nothing playable was written before the crash: drop the leftovers.
        let path = spool_file.to_owned();
        let _ = blocking(move || {
            let _ = std::fs::remove_file(&path);
            remove_meta(&path);
            Ok(())
        })
        .await;
    }
    result.map(Some)
}

/// Makes a torn MP4 or FLV file whole in place; returns its duration and size. Blocking.
fn repair_file(spool_file: &Path, format: Format) -> Result<(u64, u64), RecoveryError> {
    let mut file = File::options().read(true).write(true).open(spool_file)?;
    let duration_ms = match format {
        Format::Flv => {
            let (valid_len, duration_ms) = scan_flv(&mut file)?;
            file.set_len(valid_len)?;
            duration_ms
        }
        Format::Mp4 => {
            let recovery = match fmp4::recover(&mut file) {
                Ok(r) if r.fragment_count > 0 => r,
                Ok(_) | Err(fmp4::RecoverError::NoInit) => return Err(RecoveryError::Empty),
                Err(e) => return Err(e.into()),
            };
            file.set_len(recovery.valid_len)?;
            file.write_all_at(&recovery.tail, recovery.valid_len)?;
            for patch in &recovery.patches {
                file.write_all_at(&patch.bytes, patch.offset)?;
            }
            recovery.duration_ms
        }
        Format::M3u8 | Format::Cmaf => {
            return Err(RecoveryError::Io(io::Error::other(format!(
                "a {} sidecar describes a single file",
                format.as_str()
            ))));
        }
    };
    file.sync_all()?;
    let size = file.seek(SeekFrom::End(0))?;
    Ok((duration_ms, size))
}

async fn recover_file(
    target: &dyn Target,
    spool_file: &Path,
    meta: &SpoolMeta,
) -> Result<FileRecord, RecoveryError> {
    let (path, format) = (spool_file.to_owned(), meta.format);
    let (duration_ms, size) = blocking(move || repair_file(&path, format)).await?;
    let mut record = meta.record(target.bucket(), duration_ms, size, None, Vec::new());
    record.object = target
        .store(StoreRequest {
            spool_file: spool_file.to_owned(),
            name: meta.object_name(duration_ms)?,
            group: None,
            completion: Some(serde_json::to_value(&record)?),
        })
        .await?;
    let path = spool_file.to_owned();
    blocking(move || {
        remove_meta(&path);
        Ok(())
    })
    .await?;
    Ok(record)
}

/// Finds the end of the last complete FLV tag and the media time it spans, reading only tag
/// headers. Public for the fuzz targets (fuzz/) only.
#[doc(hidden)]
pub fn scan_flv<R: Read + Seek>(file: &mut R) -> Result<(u64, u64), RecoveryError> {
    let len = file.seek(SeekFrom::End(0))?;
    let mut header = [0u8; 9];
    file.seek(SeekFrom::Start(0))?;
    if file.read_exact(&mut header).is_err() || &header[..3] != b"FLV" {
        return Err(RecoveryError::Empty);
    }
    let mut pos = u64::from(u32::from_be_bytes([
        header[5], header[6], header[7], header[8],
    ])) + 4;
    let (mut valid, mut first, mut last, mut media_tags) = (pos, None, 0u64, 0u32);
    let mut tag = [0u8; 11];
    while pos + 11 <= len {
        file.seek(SeekFrom::Start(pos))?;
        file.read_exact(&mut tag)?;
        let size = u64::from(u32::from_be_bytes([0, tag[1], tag[2], tag[3]]));
        let end = pos + 11 + size + 4;
        if end > len {
            break;
        }
        let ts = u64::from(u32::from_be_bytes([tag[7], tag[4], tag[5], tag[6]]));
        if matches!(tag[0] & 0x1f, 8 | 9) {
            first.get_or_insert(ts);
            last = last.max(ts);
            media_tags += 1;
        }
        pos = end;
        valid = end;
    }
    if media_tags == 0 {
        return Err(RecoveryError::Empty);
    }
    Ok((valid, last.saturating_sub(first.unwrap_or(0))))
}

/// Media time (seconds) spanned by the PES timestamps of a TS segment cut at `len` bytes.
fn ts_duration<R: Read + Seek>(file: &mut R, len: u64) -> io::Result<f64> {
    let (mut min, mut max) = (u64::MAX, 0u64);
    let mut packet = [0u8; TS_PACKET as usize];
    file.seek(SeekFrom::Start(0))?;
    let mut read = 0;
    while read + TS_PACKET <= len {
        file.read_exact(&mut packet)?;
        read += TS_PACKET;
        // Payload unit start with a PES header carrying a PTS.
        if packet[0] != 0x47 || packet[1] & 0x40 == 0 {
            continue;
        }
        let mut p = 4usize;
        if packet[3] & 0x20 != 0 {
            p += 1 + usize::from(packet[4]);
        }
        let Some(pes) = packet.get(p..p + 14) else {
            continue;
        };
        if pes[..3] != [0, 0, 1] || pes[7] & 0x80 == 0 {
            continue;
        }
        let b = &pes[9..14];
        let pts = (u64::from(b[0] >> 1) & 0x07) << 30
            | u64::from(b[1]) << 22
            | (u64::from(b[2]) >> 1) << 15
            | u64::from(b[3]) << 7
            | u64::from(b[4]) >> 1;
        min = min.min(pts);
        max = max.max(pts);
    }
    Ok(if max > min {
        (max - min) as f64 / 90_000.0
    } else {
        0.0
    })
}

/// Offset of the last TS packet that starts a PES in the first `len` bytes, if any.
fn last_pes_start<R: Read + Seek>(file: &mut R, len: u64) -> io::Result<Option<u64>> {
    let mut packet = [0u8; TS_PACKET as usize];
    file.seek(SeekFrom::Start(0))?;
    let (mut read, mut last) = (0, None);
    while read + TS_PACKET <= len {
        file.read_exact(&mut packet)?;
        if packet[0] == 0x47 && packet[1] & 0x40 != 0 {
            let mut p = 4usize;
            if packet[3] & 0x20 != 0 {
                p += 1 + usize::from(packet[4]);
            }
            if packet.get(p..p + 3) == Some(&[0, 0, 1]) {
                last = Some(read);
            }
        }
        read += TS_PACKET;
    }
    Ok(last)
}

/// How much of a segment to keep. `torn`: the writer was cut off, so its last PES may be
/// incomplete (a write that ran out of space stops mid-frame) and is dropped.
fn torn_segment(
    format: Format,
    init: Option<Vec<u8>>,
    path: &Path,
    torn: bool,
) -> Result<Option<(u64, u64)>, RecoveryError> {
    let mut file = File::open(path)?;
    match format {
        Format::Cmaf => {
            let Some(init) = init else {
                return Ok(None);
            };
            let found = fmp4::recover_segment(&mut Cursor::new(init), &mut file)?;
            Ok((found.fragment_count > 0 && found.duration_ms > 0)
                .then_some((found.valid_len, found.duration_ms)))
        }
        Format::M3u8 => Ok(scan_ts_segment(&mut file, torn)?),
        Format::Mp4 | Format::Flv => Ok(None),
    }
}

/// How much of a TS segment to keep (bytes, milliseconds), or `None` if nothing decodes.
/// `torn`: its last PES may be incomplete and is dropped. Public for the fuzz targets (fuzz/)
/// only.
#[doc(hidden)]
pub fn scan_ts_segment<R: Read + Seek>(file: &mut R, torn: bool) -> io::Result<Option<(u64, u64)>> {
    let mut len = file.seek(SeekFrom::End(0))? / TS_PACKET * TS_PACKET;
    if torn {
        len = last_pes_start(file, len)?.unwrap_or(0);
    }
    let duration = ts_duration(file, len)?;
    Ok((duration > 0.0).then_some((len, (duration * 1000.0).round() as u64)))
}

/// Keeps what decodes of a segment left in the spool (`torn`: cut off while being written) and
/// stores it; `None` if nothing did.
#[allow(clippy::too_many_arguments)]
async fn recover_torn_segment(
    target: &dyn Target,
    spool_playlist: &Path,
    meta: &SpoolMeta,
    init_object: Option<&str>,
    journal: &Journal,
    path: &Path,
    torn: bool,
    start: SystemTime,
    sequence: u64,
) -> Result<Option<SegmentRecord>, RecoveryError> {
    let init = match (meta.format, init_object) {
        (Format::Cmaf, Some(init)) => {
            Some(liverec_storage::read_to_vec(target, init, MAX_INIT_BYTES).await?)
        }
        _ => None,
    };
    let (p, format) = (path.to_owned(), meta.format);
    let kept = blocking(move || {
        let kept = torn_segment(format, init, &p, torn)?;
        match kept {
            Some((len, _)) => {
                let file = File::options().write(true).open(&p)?;
                file.set_len(len)?;
                file.sync_all()?;
            }
            None => {
                let _ = std::fs::remove_file(&p);
            }
        }
        Ok(kept)
    })
    .await?;
    let Some((size, duration_ms)) = kept else {
        return Ok(None);
    };
    let key = meta.stream_key();
    let vars = name_vars(&key, meta.start(), start, start, sequence);
    let extension = meta.format.segment_extension().ok_or_else(|| {
        RecoveryError::Io(io::Error::other(format!(
            "a {} sidecar describes a playlist",
            meta.format.as_str()
        )))
    })?;
    let name = layout::segment_object(&meta.slice_object_prefix, &vars, extension)?;
    // Noted before it leaves the spool, as a live segment is: a failure after the store (a
    // full disk) leaves a journal that still finds it.
    journal
        .append_async(JournalEntry::Closing {
            segment: ClosingSegment {
                path: path.to_owned(),
                start_ms: unix_ms(start),
                duration_ms,
                size,
                sequence,
            },
        })
        .await?;
    let object = target
        .store(StoreRequest {
            spool_file: path.to_owned(),
            name,
            group: Some(spool_playlist.display().to_string()),
            completion: None,
        })
        .await?;
    Ok(Some(SegmentRecord {
        object,
        start,
        duration_ms,
        size,
    }))
}

/// Largest `_N` suffix looked for when finding a segment stored just before a crash.
const STORED_SEGMENT_CANDIDATES: u32 = 8;

/// Where a segment that left the spool just before a crash was stored: the first candidate of
/// its name the target has.
async fn find_stored_segment(
    target: &dyn Target,
    meta: &SpoolMeta,
    closing: &ClosingSegment,
) -> Result<Option<String>, RecoveryError> {
    let Some(extension) = meta.format.segment_extension() else {
        return Ok(None);
    };
    let start = from_unix_ms(closing.start_ms);
    let key = meta.stream_key();
    let vars = name_vars(&key, meta.start(), start, start, closing.sequence);
    let name = layout::segment_object(&meta.slice_object_prefix, &vars, extension)?;
    for n in 0..=STORED_SEGMENT_CANDIDATES {
        let object = name.candidate(n);
        match target.read(&object, None).await {
            Ok(read) if read.size == closing.size => return Ok(Some(object)),
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(None)
}

/// Notes in the journal that `segment` left the spool and is stored (so a retry after a
/// later failure still lists it), then adds it to the playlist.
async fn note_stored(
    journal: &Journal,
    segments: &mut Vec<SegmentRecord>,
    segment: SegmentRecord,
) -> Result<(), RecoveryError> {
    journal
        .append_async(JournalEntry::Stored {
            index: segments.len() as u64,
            segment: segment.clone(),
        })
        .await?;
    segments.push(segment);
    Ok(())
}

async fn recover_playlist(
    target: &dyn Target,
    spool_playlist: &Path,
    meta: &SpoolMeta,
    init_object: Option<String>,
    segments: Vec<MetaSegment>,
    closing_segment: Option<ClosingSegment>,
    open_segment: Option<(PathBuf, Option<u64>)>,
) -> Result<FileRecord, RecoveryError> {
    // Version 1 sidecars knew segments by name and length: their starts follow each other.
    let mut next_start = meta.start();
    let mut segments: Vec<SegmentRecord> = segments
        .into_iter()
        .map(|s| {
            let record = match s {
                MetaSegment::Stored(record) => record,
                MetaSegment::V1(object, secs) => SegmentRecord {
                    object,
                    start: next_start,
                    duration_ms: (secs * 1000.0).round() as u64,
                    size: 0,
                },
            };
            next_start = record.start + Duration::from_millis(record.duration_ms);
            record
        })
        .collect();
    let journal = {
        let path = spool_playlist.to_owned();
        blocking(move || Ok(Journal::reopen(&path)?)).await?
    };
    if let Some(closing) = closing_segment {
        let exists = {
            let p = closing.path.clone();
            blocking(move || Ok(p.exists())).await?
        };
        let start = from_unix_ms(closing.start_ms);
        if exists {
            // Not stored yet: store it as it is (it is whole).
            if let Some(segment) = recover_torn_segment(
                target,
                spool_playlist,
                meta,
                init_object.as_deref(),
                &journal,
                &closing.path,
                false,
                start,
                closing.sequence,
            )
            .await?
            {
                note_stored(&journal, &mut segments, segment).await?;
            }
        } else {
            match find_stored_segment(target, meta, &closing).await? {
                Some(object) => {
                    let segment = SegmentRecord {
                        object,
                        start,
                        duration_ms: closing.duration_ms,
                        size: closing.size,
                    };
                    note_stored(&journal, &mut segments, segment).await?;
                }
                None => tracing::warn!(segment = %closing.path.display(),
                    "a segment stored just before the crash is not in its bucket; the playlist goes without it"),
            }
        }
        next_start = start + Duration::from_millis(closing.duration_ms);
    }
    if let Some((path, start_ms)) = open_segment {
        let exists = {
            let p = path.clone();
            blocking(move || Ok(p.exists())).await?
        };
        if exists {
            let start = start_ms.map_or(next_start, from_unix_ms);
            match recover_torn_segment(
                target,
                spool_playlist,
                meta,
                init_object.as_deref(),
                &journal,
                &path,
                true,
                start,
                segments.len() as u64,
            )
            .await
            {
                Ok(Some(segment)) => note_stored(&journal, &mut segments, segment).await?,
                Ok(None) => {}
                // Reading it (or the init segment) failed: it may yet be readable, so the
                // whole recording waits for the next start.
                Err(err) if err.is_transient() => return Err(err),
                Err(err) => {
                    tracing::warn!(segment = %path.display(), %err,
                        "torn segment holds nothing that decodes; deleted");
                    let _ = tokio::fs::remove_file(&path).await;
                }
            }
        }
    }
    if segments.is_empty() {
        return Err(RecoveryError::Empty);
    }
    let duration_ms: u64 = segments.iter().map(|s| s.duration_ms).sum();
    let name = meta.object_name(duration_ms)?;
    let object = name.to_string();
    let mut playlist = MediaPlaylist::new();
    playlist.min_target_duration = meta.slice_secs;
    playlist.map_uri = init_object
        .as_deref()
        .map(|init| relative_uri(&object, init));
    for segment in &segments {
        playlist.push(
            relative_uri(&object, &segment.object),
            segment.duration_ms as f64 / 1000.0,
        );
    }
    playlist.ended = true;
    let text = playlist.to_m3u8();
    let size = text.len() as u64 + segments.iter().map(|s| s.size).sum::<u64>();
    let path = spool_playlist.to_owned();
    blocking(move || {
        let mut file = File::create(&path)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        Ok(())
    })
    .await?;
    let mut record = meta.record(target.bucket(), duration_ms, size, init_object, segments);
    record.object = target
        .store(StoreRequest {
            spool_file: spool_playlist.to_owned(),
            name,
            group: Some(spool_playlist.display().to_string()),
            completion: Some(serde_json::to_value(&record)?),
        })
        .await?;
    let path = spool_playlist.to_owned();
    blocking(move || {
        remove_meta(&path);
        Ok(())
    })
    .await?;
    Ok(record)
}
