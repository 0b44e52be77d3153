//! liverec's metadata store: access keys, signature nonces, domains, record configs and the
//! recordings index.
//!
//! One API over SQLite (default, embedded) and PostgreSQL (clusters), same schema, migrations
//! in `crates/catalog/migrations/`. Functions return domain types, not rows. Most calls are a
//! single SQL statement. The few that need atomicity use a write transaction that takes
//! SQLite's write lock at `BEGIN IMMEDIATE` (see `backend::BeginWrite`), so SQLite's busy
//! timeout covers every lock wait and PostgreSQL needs no retry loop.

use std::time::SystemTime;

/// Runs `$body` with `$pool` bound to the catalog's SQLite or PostgreSQL pool. The body is
/// compiled once per backend, so the same query text and decoding serve both; each arm must
/// produce the same type.
macro_rules! on_pool {
    ($catalog:expr, |$pool:ident| $body:expr) => {
        on_backend!(&$catalog.backend, |$pool| $body)
    };
}

/// [`on_pool!`] for a bare [`backend::Backend`].
macro_rules! on_backend {
    ($backend:expr, |$pool:ident| $body:expr) => {
        match $backend {
            $crate::backend::Backend::Sqlite($pool) => $body,
            $crate::backend::Backend::Postgres($pool) => $body,
        }
    };
}

mod backend;
mod domain_configs;
mod domains;
mod error;
mod keys;
mod nonces;
mod notify_configs;
mod notify_events;
mod notify_records;
mod pull_configs;
mod record_configs;
mod recordings;
mod secrets;
mod stream_control;
mod streams;
mod uploads;

pub use domain_configs::DomainConfigRow;
pub use error::{CatalogError, Result};
pub use notify_configs::NotifyConfigRow;
pub use notify_events::{
    AttemptOutcome, AttemptResult, NewNotifyEvent, NotifyBacklog, NotifyEventRow, ResendFilter,
    STATUS_FAILED, STATUS_PENDING, STATUS_SUCCESS,
};
pub use notify_records::{NotifyOutcome, NotifyRecordQuery, NotifyRecordRow, NotifyStatus};
pub use pull_configs::{ALL_APPS, LazyPullConfig, PullConfig};
pub use stream_control::{ForbidOutcome, ForbiddenStream, PublishOrder, PublishQuery, PublishRow};

/// An API access key. HMAC signatures need the plaintext secret, so it is stored as given
/// (the SQLite file is created with mode 0600).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessKey {
    pub id: String,
    pub secret: String,
    pub enabled: bool,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// One item of RecordFormat / TranscodeRecordFormat, as the API stores and echoes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordFormatRow {
    /// `m3u8`, `flv`, `mp4` or `cmaf`.
    pub format: String,
    pub oss_object_prefix: Option<String>,
    pub slice_oss_object_prefix: Option<String>,
    /// Seconds.
    pub cycle_duration: Option<i64>,
    /// Seconds.
    pub slice_duration: Option<i64>,
}

/// A record config made through the API; one per (domain, app, stream).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordConfigRow {
    pub domain: String,
    /// May be `*`.
    pub app: String,
    /// `*` when the API request had no StreamName.
    pub stream: String,
    pub oss_endpoint: String,
    pub oss_bucket: String,
    /// 0 automatic, 1 on-demand by HTTP callback, 2 on-demand by ingest parameters, 7 manual.
    pub on_demand: i32,
    /// Seconds.
    pub delay_time: i32,
    /// `yyyy-MM-ddTHH:mm:ssZ`, as given.
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    pub formats: Vec<RecordFormatRow>,
    pub transcode_formats: Vec<RecordFormatRow>,
    pub transcode_templates: Vec<String>,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// One finished recording file (one row of the record index).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecordingRow {
    /// UUID.
    pub record_id: String,
    pub domain: String,
    pub app: String,
    pub stream: String,
    /// `m3u8`, `flv`, `mp4`, `cmaf`.
    pub format: String,
    pub oss_bucket: String,
    pub oss_endpoint: String,
    pub oss_object: String,
    /// Unix milliseconds.
    pub start_time: i64,
    pub end_time: i64,
    pub duration_secs: f64,
    pub size: i64,
    pub width: i32,
    pub height: i32,
    pub created_at: i64,
    /// The recording session (start to finalize) the file belongs to; `''` on rows made before
    /// sessions were recorded.
    pub session_id: String,
    /// The record config's OssObjectPrefix template as stored.
    pub object_prefix: String,
    /// Made by CreateLiveStreamRecordIndexFiles, not by a recording.
    pub generated: bool,
}

/// What a stored object of an index row is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// An MP4 or FLV file.
    File,
    Playlist,
    /// A CMAF init segment.
    Init,
    Segment,
}

impl ObjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Playlist => "playlist",
            Self::Init => "init",
            Self::Segment => "segment",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "file" => Some(Self::File),
            "playlist" => Some(Self::Playlist),
            "init" => Some(Self::Init),
            "segment" => Some(Self::Segment),
            _ => None,
        }
    }
}

/// One stored object of an index row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingObject {
    /// 0, 1, … within the row.
    pub seq: i32,
    pub bucket: String,
    pub object: String,
    pub kind: ObjectKind,
    /// Unix milliseconds, wall clock of the object's first frame.
    pub start_time: i64,
    pub duration_ms: i64,
    pub size: i64,
}

/// One recording session's files of one format (DescribeLiveStreamRecordContent).
#[derive(Clone, Debug, PartialEq)]
pub struct ContentRow {
    pub session_id: String,
    pub format: String,
    pub oss_bucket: String,
    pub oss_endpoint: String,
    pub object_prefix: String,
    /// Unix milliseconds: the earliest start and latest end of the session's rows in the range.
    pub start_time: i64,
    pub end_time: i64,
    /// Sum over those rows.
    pub duration_secs: f64,
}

/// A media segment in the index (CreateLiveStreamRecordIndexFiles, playlist serving).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentRow {
    pub record_id: String,
    pub bucket: String,
    /// The index row's OssEndpoint.
    pub endpoint: String,
    pub object: String,
    /// Unix milliseconds.
    pub start_time: i64,
    pub duration_ms: i64,
    /// The row's CMAF init segment, if it has one.
    pub init_object: Option<String>,
}

/// An object to upload from the spool to a remote storage target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewUpload {
    pub bucket: String,
    pub spool_path: String,
    /// Uploads of one group go in id order (segments before their playlist).
    pub group_id: Option<String>,
    /// JSON the caller handles once the upload is done (e.g. the index row to insert).
    pub completion: Option<String>,
    pub size: i64,
}

/// The queued upload of a spool file and the object name reserved for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuedUpload {
    pub id: i64,
    pub object: String,
}

/// One row of the upload queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadRow {
    /// Increasing in enqueue order, never reused.
    pub id: i64,
    pub bucket: String,
    pub object: String,
    pub spool_path: String,
    pub group_id: Option<String>,
    pub completion: Option<String>,
    pub size: i64,
    /// Failed attempts so far.
    pub attempts: i32,
    /// Unix milliseconds.
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub done: bool,
    pub created_at: i64,
}

/// Uploads of one bucket still to do (metrics, API, logs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UploadBacklog {
    /// Not done.
    pub pending: u64,
    /// Not done and failed at least once.
    pub failing: u64,
    /// Bytes of the files not yet uploaded.
    pub bytes: u64,
    /// Unix milliseconds: creation of the oldest pending upload.
    pub oldest_created_at: Option<i64>,
    /// The error of the failing upload whose next attempt is the latest (usually the one that
    /// failed last).
    pub last_error: Option<String>,
}

/// A page request: `num` from 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub num: u32,
    pub size: u32,
    /// Newest first (by creation time) when true.
    pub desc: bool,
}

impl Page {
    /// SQL `LIMIT`.
    pub(crate) fn limit(self) -> i64 {
        i64::from(self.size)
    }

    /// SQL `OFFSET`; page 0 is read as page 1.
    pub(crate) fn offset(self) -> i64 {
        let skipped = u64::from(self.num.saturating_sub(1)) * u64::from(self.size);
        i64::try_from(skipped).unwrap_or(i64::MAX)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingQuery {
    pub domain: String,
    pub app: String,
    pub stream: String,
    /// Recordings overlapping [start, end), Unix milliseconds.
    pub start: i64,
    pub end: i64,
    pub page: Page,
}

/// The metadata store. Cheap to clone (a pool).
#[derive(Clone, Debug)]
pub struct Catalog {
    backend: backend::Backend,
    nonces: nonces::NonceQueue,
}

impl Catalog {
    /// Opens (creating if needed) `url`: `sqlite://PATH` (file created with mode 0600) or
    /// `postgres://…`, and runs the migrations.
    pub async fn open(url: &str) -> Result<Self> {
        Ok(Self::with_backend(backend::Backend::open(url).await?))
    }

    /// A private in-memory SQLite database (tests).
    pub async fn open_in_memory() -> Result<Self> {
        Ok(Self::with_backend(backend::Backend::in_memory().await?))
    }

    fn with_backend(backend: backend::Backend) -> Self {
        Self {
            nonces: nonces::NonceQueue::start(backend.clone()),
            backend,
        }
    }

    /// Which backend this is: `"sqlite"` or `"postgres"` (logs, metrics).
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            backend::Backend::Sqlite(_) => "sqlite",
            backend::Backend::Postgres(_) => "postgres",
        }
    }

    /// Closes the pool, waiting for open connections to finish (graceful shutdown; SQLite
    /// checkpoints its WAL when the last connection closes).
    pub async fn close(&self) {
        on_pool!(self, |pool| pool.close().await);
    }
}

/// Unix milliseconds of `t` (0 before the epoch).
pub fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Unix milliseconds now.
pub(crate) fn now_ms() -> i64 {
    unix_ms(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn page_offsets() {
        let page = |num, size| Page {
            num,
            size,
            desc: false,
        };
        assert_eq!(page(1, 10).offset(), 0);
        assert_eq!(page(0, 10).offset(), 0);
        assert_eq!(page(3, 10).offset(), 20);
        assert_eq!(page(u32::MAX, 1).offset(), i64::from(u32::MAX - 1));
        // (2^32 - 2) * (2^32 - 1) does not fit an i64: the offset saturates.
        assert_eq!(page(u32::MAX, u32::MAX).offset(), i64::MAX);
        assert_eq!(page(2, 0).limit(), 0);
    }

    #[test]
    fn unix_ms_of_epoch_and_before() {
        assert_eq!(unix_ms(SystemTime::UNIX_EPOCH), 0);
        assert_eq!(
            unix_ms(SystemTime::UNIX_EPOCH + Duration::from_millis(1_234)),
            1_234
        );
        assert_eq!(unix_ms(SystemTime::UNIX_EPOCH - Duration::from_secs(1)), 0);
    }
}
