//! Storage targets: where finished recordings go. A record config's OssBucket names a target:
//! a configured `[buckets.NAME]` (a local directory or S3-compatible object storage), else the
//! local directory `{data_dir}/buckets/{NAME}/`.
//!
//! - [`layout`] owns every name and path inside a target.
//! - [`Target`] is the one interface the recorder, recovery, the index actions and playback
//!   use; [`LocalTarget`] renames spool files into place, [`s3::S3Target`] queues uploads in
//!   the catalog and sends them from the spool.
//! - [`Storage`] maps bucket names to targets.

pub mod layout;
mod local;
pub mod s3;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;

pub use layout::{NameError, ObjectName, Spool};
pub use local::{LocalTarget, sync_dir};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("object name: {0}")]
    Name(#[from] NameError),
    #[error("no object {0:?}")]
    NotFound(String),
    #[error("byte range {start}-{end} is outside the object ({size} bytes)")]
    Range { start: u64, end: u64, size: u64 },
    #[error("no free name for {0} (tried {max} suffixes)", max = layout::MAX_COLLISION_SUFFIX)]
    NoFreeName(String),
    #[error("object storage: {0}")]
    Remote(String),
}

impl StorageError {
    pub fn is_not_found(&self) -> bool {
        match self {
            Self::NotFound(_) => true,
            Self::Io(e) => e.kind() == io::ErrorKind::NotFound,
            _ => false,
        }
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// A finished spool file to store under `name`.
#[derive(Debug)]
pub struct StoreRequest {
    pub spool_file: PathBuf,
    pub name: ObjectName,
    /// Objects of one group become visible in the order they were stored (segments before
    /// their playlist); `None` for a file that stands alone.
    pub group: Option<String>,
    /// Delivered to the [`OnComplete`] hook once the object exists (the record index row).
    pub completion: Option<serde_json::Value>,
}

/// An object that now exists, with the completion its store request carried.
#[derive(Clone, Debug, PartialEq)]
pub struct Completed {
    pub bucket: String,
    pub object: String,
    pub payload: serde_json::Value,
}

/// Called once per completed store request that carried a completion. Targets await it before
/// they forget the request, so a completion is never lost (a remote target keeps the request
/// until the hook returns).
pub type OnComplete = Arc<dyn Fn(Completed) -> BoxFuture<'static, ()> + Send + Sync>;

/// Bytes of an object being read.
pub struct ObjectRead {
    /// Size of the whole object.
    pub size: u64,
    /// The bytes `body` yields.
    pub range: Range<u64>,
    pub body: BoxStream<'static, io::Result<Bytes>>,
}

impl fmt::Debug for ObjectRead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectRead")
            .field("size", &self.size)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

/// How much of an object to read: `start..end` (end exclusive, clamped to the size), or the
/// last `n` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteRange {
    From { start: u64, end: Option<u64> },
    Suffix(u64),
}

impl ByteRange {
    /// The bytes selected of an object of `size` bytes, or an error if none are.
    pub fn resolve(self, size: u64) -> Result<Range<u64>> {
        let range = match self {
            Self::From { start, end } => start..end.unwrap_or(size).min(size),
            Self::Suffix(n) => size.saturating_sub(n)..size,
        };
        if range.start >= range.end && !(size == 0 && range.start == 0) {
            let Range { start, end } = range;
            return Err(StorageError::Range { start, end, size });
        }
        Ok(range)
    }
}

/// One storage target. Every implementation keeps its spool on local disk.
#[async_trait::async_trait]
pub trait Target: Send + Sync + fmt::Debug {
    /// The name record configs use (OssBucket).
    fn bucket(&self) -> &str;

    /// Where recordings of this target are written while in progress.
    fn spool(&self) -> &Spool;

    /// Stores a finished spool file under `request.name` or, if that is taken, the first free
    /// `name_1`, `name_2` …; never overwrites a stored object. Returns the name used. The
    /// spool file is gone (local: renamed into place) or owned by the target (remote: kept
    /// until its upload is confirmed), and `request.completion` is delivered once the object
    /// exists.
    async fn store(&self, request: StoreRequest) -> Result<String>;

    /// Finishes what a crash cut short after a file was in place: delivers completions that
    /// were due. Called once at start, before recovery looks at the spool. Returns how many.
    async fn resume(&self) -> Result<usize> {
        Ok(0)
    }

    /// Whether `spool_file` was already handed to [`Target::store`] (recovery must then leave
    /// it alone).
    async fn holds(&self, spool_file: &Path) -> Result<bool>;

    /// Reads `range` of an object (all of it when `None`), streamed.
    async fn read(&self, object: &str, range: Option<ByteRange>) -> Result<ObjectRead>;

    /// Writes a small object whole, replacing any object of that name (generated indexes).
    async fn write(&self, object: &str, data: Bytes) -> Result<()>;

    /// Deletes an object; one that does not exist is not an error.
    async fn delete(&self, object: &str) -> Result<()>;

    /// Stored objects not yet confirmed by the target (remote uploads waiting or retrying).
    async fn backlog(&self) -> Result<Backlog> {
        Ok(Backlog::default())
    }
}

/// What a target still owes: files handed to [`Target::store`] that are not yet objects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Uploads waiting or retrying.
    pub pending: u64,
    /// Of those, the ones that failed at least once.
    pub failing: u64,
    /// Bytes of the pending uploads.
    pub bytes: u64,
    /// Unix milliseconds: when the oldest pending upload was handed over.
    pub oldest_created_at: Option<i64>,
    /// Why the latest failed attempt failed.
    pub last_error: Option<String>,
}

/// Reads a whole (small) object into memory: playlists, init segments.
pub async fn read_to_vec(target: &dyn Target, object: &str, limit: u64) -> Result<Vec<u8>> {
    let read = target.read(object, None).await?;
    if read.size > limit {
        return Err(StorageError::Io(io::Error::other(format!(
            "object {object} is {} bytes, more than {limit}",
            read.size
        ))));
    }
    collect(read).await
}

/// Reads `range` of an object into memory (tests, small objects).
pub async fn read_to_vec_range(
    target: &dyn Target,
    object: &str,
    range: Option<ByteRange>,
) -> Result<Vec<u8>> {
    collect(target.read(object, range).await?).await
}

async fn collect(mut read: ObjectRead) -> Result<Vec<u8>> {
    use futures_util::StreamExt;
    let len = read.range.end - read.range.start;
    let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    while let Some(chunk) = read.body.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

/// Bucket names to targets. Configured targets are made at start; any other bucket name is a
/// local directory under the data directory, made on first use.
pub struct Storage {
    data_dir: PathBuf,
    configured: HashMap<String, Arc<dyn Target>>,
    local: Mutex<HashMap<String, Arc<dyn Target>>>,
    on_complete: OnComplete,
}

impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Storage")
            .field("data_dir", &self.data_dir)
            .field("configured", &self.configured.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Storage {
    /// Storage with only default local targets under `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>, on_complete: OnComplete) -> Self {
        Self {
            data_dir: data_dir.into(),
            configured: HashMap::new(),
            local: Mutex::new(HashMap::new()),
            on_complete,
        }
    }

    /// Adds a configured target under its bucket name.
    pub fn with_target(mut self, target: Arc<dyn Target>) -> Self {
        self.configured.insert(target.bucket().to_owned(), target);
        self
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The hook targets deliver completions to.
    pub fn on_complete(&self) -> &OnComplete {
        &self.on_complete
    }

    /// The target of a bucket name (a record config's OssBucket).
    pub fn target(&self, bucket: &str) -> Arc<dyn Target> {
        if let Some(target) = self.configured.get(bucket) {
            return target.clone();
        }
        let mut local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        local
            .entry(bucket.to_owned())
            .or_insert_with(|| {
                Arc::new(LocalTarget::new(
                    bucket,
                    layout::bucket_root(&self.data_dir, bucket),
                    self.on_complete.clone(),
                ))
            })
            .clone()
    }

    /// Every target that may have a spool: the configured ones and every bucket directory
    /// under the data directory (recovery).
    pub fn targets_with_spools(&self) -> Vec<Arc<dyn Target>> {
        let mut names: Vec<String> = self.configured.keys().cloned().collect();
        if let Ok(entries) = std::fs::read_dir(self.data_dir.join(layout::BUCKETS_DIR)) {
            for entry in entries.flatten() {
                if let Some(name) = entry.file_name().to_str()
                    && !names.iter().any(|n| n == name)
                {
                    names.push(name.to_owned());
                }
            }
        }
        names.sort();
        names.iter().map(|name| self.target(name)).collect()
    }

    /// Names of the configured targets.
    pub fn configured(&self) -> impl Iterator<Item = &Arc<dyn Target>> {
        self.configured.values()
    }
}
