//! Crash recovery: on start, every recording left in a spool (the process was killed, the
//! disk filled up at finalize, shutdown timed out) is finalized through the same steps as a
//! normal finalize, stored under its final name and handed to the sink.
//!
//! Each spool file has a sidecar `<spool file>.json` ([`SpoolMeta`]) written when it opens
//! (and, for playlists, after every segment), so recovery needs no database.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use liverec_hub::StreamKey;
use liverec_mux::fmp4;
use liverec_mux::hls::MediaPlaylist;
use serde::{Deserialize, Serialize};

use crate::config::Format;
use crate::names::{NameVars, relative_uri, render};
use crate::output::{FileRecord, FileSink};
use crate::target::{LocalTarget, SPOOL_DIR};

/// Version of the sidecar format.
const META_VERSION: u32 = 1;
/// Sidecar files larger than this are not ours.
const MAX_META_BYTES: u64 = 16 * 1024 * 1024;
const TS_PACKET: u64 = 188;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetaKey {
    pub domain: String,
    pub app: String,
    pub stream: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MetaKind {
    /// A single-file recording (MP4, FLV); the spool file is the recording.
    File,
    /// A segmented recording; the spool file is its growing playlist.
    Playlist {
        init_object: Option<String>,
        /// Committed segments: object name, seconds.
        segments: Vec<(String, f64)>,
        /// The segment being written, if any.
        open_segment: Option<PathBuf>,
    },
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
    #[serde(flatten)]
    pub kind: MetaKind,
}

impl SpoolMeta {
    pub fn new(
        key: &StreamKey,
        spec: &crate::config::FormatSpec,
        endpoint: &str,
        start: SystemTime,
        kind: MetaKind,
    ) -> Self {
        Self {
            version: META_VERSION,
            key: MetaKey {
                domain: key.domain.clone(),
                app: key.app.clone(),
                stream: key.stream.clone(),
            },
            format: spec.format,
            object_prefix: spec.object_prefix.clone(),
            slice_object_prefix: spec.slice_object_prefix.clone(),
            slice_secs: spec.slice.as_secs(),
            endpoint: endpoint.to_owned(),
            start_unix_ms: start
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            kind,
        }
    }

    fn start(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.start_unix_ms)
    }

    fn stream_key(&self) -> StreamKey {
        StreamKey {
            domain: self.key.domain.clone(),
            app: self.key.app.clone(),
            stream: self.key.stream.clone(),
        }
    }
}

/// The sidecar path of a spool file.
pub fn meta_path(spool_file: &Path) -> PathBuf {
    let mut name = spool_file.as_os_str().to_owned();
    name.push(".json");
    PathBuf::from(name)
}

/// Writes the sidecar atomically (temp file + rename). Blocking.
pub fn write_meta(spool_file: &Path, meta: &SpoolMeta) -> io::Result<()> {
    let path = meta_path(spool_file);
    let mut tmp = path.clone().into_os_string();
    tmp.push(".tmp");
    let json = serde_json::to_vec(meta).map_err(io::Error::other)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&tmp, json)?;
    std::fs::rename(&tmp, &path)
}

/// Removes the sidecar of a finished spool file. Blocking; a missing file is fine.
pub fn remove_meta(spool_file: &Path) {
    let _ = std::fs::remove_file(meta_path(spool_file));
}

#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error("storage: {0}")]
    Io(#[from] io::Error),
    #[error("mp4: {0}")]
    Mp4(#[from] fmp4::RecoverError),
    #[error("object name: {0}")]
    Name(#[from] crate::names::NameError),
    #[error("sidecar: {0}")]
    Meta(#[from] serde_json::Error),
    #[error("nothing recordable in the file")]
    Empty,
}

/// Finalizes every spooled recording under `data_dir/buckets/*`. Returns how many files were
/// recovered.
pub async fn recover_all(data_dir: &Path, sink: &FileSink) -> usize {
    let buckets = data_dir.join("buckets");
    let metas = match tokio::task::spawn_blocking(move || find_metas(&buckets)).await {
        Ok(m) => m,
        Err(_) => return 0,
    };
    let mut recovered = 0;
    for (target, spool_file) in metas {
        let (t, f) = (target.clone(), spool_file.clone());
        match tokio::task::spawn_blocking(move || recover_one(&t, &f)).await {
            Ok(Ok(record)) => {
                tracing::info!(stream = %record.key, format = record.format.as_str(), object = %record.object,
                    duration_ms = record.duration_ms, "recovered an unfinished recording");
                sink(record).await;
                recovered += 1;
            }
            Ok(Err(err)) => {
                tracing::warn!(spool = %spool_file.display(), %err, "cannot recover spooled recording; it is left in place")
            }
            Err(err) => tracing::error!(%err, "recovery task failed"),
        }
    }
    recovered
}

fn find_metas(buckets: &Path) -> Vec<(LocalTarget, PathBuf)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(buckets) else {
        return out;
    };
    for bucket in entries.flatten() {
        let Some(name) = bucket.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let target = LocalTarget::new(name, bucket.path());
        let Ok(spool) = std::fs::read_dir(bucket.path().join(SPOOL_DIR)) else {
            continue;
        };
        for entry in spool.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "json") {
                out.push((target.clone(), path.with_extension("")));
            }
        }
    }
    out
}

fn read_meta(spool_file: &Path) -> Result<SpoolMeta, RecoveryError> {
    let path = meta_path(spool_file);
    let mut data = Vec::new();
    File::open(&path)?
        .take(MAX_META_BYTES)
        .read_to_end(&mut data)?;
    Ok(serde_json::from_slice(&data)?)
}

fn recover_one(target: &LocalTarget, spool_file: &Path) -> Result<FileRecord, RecoveryError> {
    let meta = read_meta(spool_file)?;
    let result = match &meta.kind {
        MetaKind::File => recover_file(target, spool_file, &meta),
        MetaKind::Playlist {
            init_object,
            segments,
            open_segment,
        } => recover_playlist(
            target,
            spool_file,
            &meta,
            init_object.as_deref(),
            segments,
            open_segment.as_deref(),
        ),
    };
    if matches!(result, Err(RecoveryError::Empty)) {
        // Nothing playable was written before the crash: drop the leftovers.
        let _ = std::fs::remove_file(spool_file);
        remove_meta(spool_file);
    }
    result
}

fn record(
    meta: &SpoolMeta,
    target: &LocalTarget,
    object: String,
    duration_ms: u64,
    size: u64,
    segments: Vec<String>,
) -> FileRecord {
    FileRecord {
        key: meta.stream_key(),
        format: meta.format,
        bucket: target.bucket().to_owned(),
        endpoint: meta.endpoint.clone(),
        object,
        start: meta.start(),
        end: meta.start() + Duration::from_millis(duration_ms),
        duration_ms,
        size,
        width: 0,
        height: 0,
        segments,
    }
}

fn object_name(
    meta: &SpoolMeta,
    prefix: &str,
    duration_ms: u64,
    extension: &str,
) -> Result<String, RecoveryError> {
    let key = meta.stream_key();
    let start = meta.start();
    let vars = NameVars {
        key: &key,
        start,
        end: start + Duration::from_millis(duration_ms),
        unix: start,
        sequence: 0,
    };
    Ok(format!("{}.{extension}", render(prefix, &vars)?))
}

fn recover_file(
    target: &LocalTarget,
    spool_file: &Path,
    meta: &SpoolMeta,
) -> Result<FileRecord, RecoveryError> {
    let mut file = File::options().read(true).write(true).open(spool_file)?;
    let duration_ms = match meta.format {
        Format::Flv => {
            let (valid_len, duration_ms) = scan_flv(&mut file)?;
            file.set_len(valid_len)?;
            duration_ms
        }
        _ => {
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
    };
    file.sync_all()?;
    let size = file.seek(SeekFrom::End(0))?;
    drop(file);
    let object = object_name(
        meta,
        &meta.object_prefix,
        duration_ms,
        meta.format.extension(),
    )?;
    let object = target.commit(spool_file, &object)?;
    remove_meta(spool_file);
    Ok(record(meta, target, object, duration_ms, size, Vec::new()))
}

/// Finds the end of the last complete FLV tag and the media time it spans, reading only tag
/// headers.
fn scan_flv(file: &mut File) -> Result<(u64, u64), RecoveryError> {
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
fn ts_duration(file: &mut File, len: u64) -> io::Result<f64> {
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

/// How much of a torn segment to keep (bytes, seconds), or `None` if nothing decodes.
fn torn_segment(
    target: &LocalTarget,
    meta: &SpoolMeta,
    init_object: Option<&str>,
    path: &Path,
) -> Result<Option<(u64, f64)>, RecoveryError> {
    let mut file = File::open(path)?;
    if meta.format == Format::Cmaf {
        let Some(init) = init_object else {
            return Ok(None);
        };
        let mut init = File::open(target.object_path(init))?;
        let found = fmp4::recover_segment(&mut init, &mut file)?;
        return Ok((found.fragment_count > 0 && found.duration_ms > 0)
            .then(|| (found.valid_len, found.duration_ms as f64 / 1000.0)));
    }
    let len = file.seek(SeekFrom::End(0))? / TS_PACKET * TS_PACKET;
    let duration = ts_duration(&mut file, len)?;
    Ok((duration > 0.0).then_some((len, duration)))
}

fn recover_playlist(
    target: &LocalTarget,
    spool_playlist: &Path,
    meta: &SpoolMeta,
    init_object: Option<&str>,
    segments: &[(String, f64)],
    open_segment: Option<&Path>,
) -> Result<FileRecord, RecoveryError> {
    let mut segments = segments.to_vec();
    if let Some(path) = open_segment.filter(|p| p.exists()) {
        // A torn segment keeps what decodes: whole TS packets, or complete CMAF fragments.
        match torn_segment(target, meta, init_object, path) {
            Ok(Some((len, duration))) => {
                let file = File::options().write(true).open(path)?;
                file.set_len(len)?;
                file.sync_all()?;
                drop(file);
                let key = meta.stream_key();
                let start = meta.start();
                let vars = NameVars {
                    key: &key,
                    start,
                    end: start,
                    unix: start,
                    sequence: segments.len() as u64,
                };
                let extension = if meta.format == Format::Cmaf {
                    "m4s"
                } else {
                    "ts"
                };
                let object = format!("{}.{extension}", render(&meta.slice_object_prefix, &vars)?);
                segments.push((target.commit(path, &object)?, duration));
            }
            Ok(None) => {
                let _ = std::fs::remove_file(path);
            }
            Err(err) => {
                tracing::warn!(segment = %path.display(), %err, "torn segment unreadable; dropped");
                let _ = std::fs::remove_file(path);
            }
        }
    }
    if segments.is_empty() {
        return Err(RecoveryError::Empty);
    }
    let duration_ms = (segments.iter().map(|(_, d)| d).sum::<f64>() * 1000.0).round() as u64;
    let object = object_name(meta, &meta.object_prefix, duration_ms, "m3u8")?;
    let mut playlist = MediaPlaylist::new();
    playlist.min_target_duration = meta.slice_secs;
    playlist.map_uri = init_object.map(|init| relative_uri(&object, init));
    for (segment, duration) in &segments {
        playlist.push(relative_uri(&object, segment), *duration);
    }
    playlist.ended = true;
    let text = playlist.to_m3u8();
    let mut file = File::create(spool_playlist)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    drop(file);
    let object = target.commit(spool_playlist, &object)?;
    remove_meta(spool_playlist);
    let names = init_object
        .map(str::to_owned)
        .into_iter()
        .chain(segments.into_iter().map(|(o, _)| o))
        .collect();
    Ok(record(
        meta,
        target,
        object,
        duration_ms,
        text.len() as u64,
        names,
    ))
}
