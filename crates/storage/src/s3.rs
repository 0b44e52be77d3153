//! An S3-compatible target (AWS, MinIO, Alibaba OSS in S3 mode) through `object_store`.
//!
//! Storing a file queues an upload in the catalog (so it survives restarts) under a name
//! reserved there; an uploader task per target sends queued files from the spool (multipart,
//! streamed from disk, a few parts in memory at most), confirms each object with a HEAD,
//! delivers the completion (the index row) and only then deletes the spool copy. Failures are
//! retried with backoff for as long as it takes; the backlog is visible through
//! [`Target::backlog`] and the log.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use liverec_catalog::{Catalog, NewUpload, UploadRow};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{
    ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
    WriteMultipart,
};
use tokio::io::AsyncReadExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::layout::{MAX_COLLISION_SUFFIX, Spool};
use crate::{
    Backlog, ByteRange, Completed, ObjectRead, OnComplete, Result, StorageError, StoreRequest,
    Target,
};

/// Files up to this size go up in one PUT; larger ones as multipart uploads of this part size.
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts of one upload in flight at once: the upload's memory is about this many parts.
const PARTS_IN_FLIGHT: usize = 2;
/// Uploads in flight at once per target.
const UPLOADS_IN_FLIGHT: usize = 4;
/// Read size from the spool file.
const FILE_READ: usize = 1024 * 1024;
/// Backoff between attempts of one upload, and between tries while storage is down: doubling
/// from the first, capped. The cap bounds how long uploads wait once storage is back (the
/// first success retries the rest at once); while it is down one upload tries at a time.
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(60);
/// How long an idle uploader sleeps before looking at the queue again (new work wakes it).
const IDLE_POLL: Duration = Duration::from_secs(5);
/// The first wait between tries once every attempt fails.
const RETRY_POLL: Duration = Duration::from_secs(2);

/// The settings of one `[buckets.NAME] type = "s3"` section.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct S3Settings {
    /// `http(s)://host:port` of an S3-compatible service; `None` = AWS.
    pub endpoint: Option<String>,
    /// The real bucket.
    pub bucket: String,
    pub region: Option<String>,
    /// Unset: the usual `AWS_*` variables.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Virtual-hosted-style URLs (`bucket.host`) instead of path style.
    pub virtual_hosted: bool,
}

pub struct S3Target {
    name: String,
    real_bucket: String,
    /// For messages: the endpoint, or "AWS".
    endpoint: String,
    spool: Spool,
    store: Arc<AmazonS3>,
    catalog: Catalog,
    on_complete: OnComplete,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for S3Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Target")
            .field("bucket", &self.name)
            .field("real_bucket", &self.real_bucket)
            .finish_non_exhaustive()
    }
}

fn remote(e: impl std::fmt::Display) -> StorageError {
    StorageError::Remote(e.to_string())
}

fn object_path(object: &str) -> Result<ObjectPath> {
    ObjectPath::parse(crate::layout::sanitize(object)?).map_err(remote)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl S3Target {
    /// A target named `name` (the OssBucket of record configs) with its spool under `root`.
    pub fn new(
        name: impl Into<String>,
        root: &Path,
        settings: &S3Settings,
        catalog: Catalog,
        on_complete: OnComplete,
    ) -> Result<Self> {
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&settings.bucket)
            .with_virtual_hosted_style_request(settings.virtual_hosted)
            // One attempt's own retries stay short: the upload queue retries for as long as
            // it takes, with its own backoff, and a HEAD must not hang a playback request.
            .with_retry(RetryConfig {
                max_retries: 2,
                retry_timeout: Duration::from_secs(20),
                ..RetryConfig::default()
            })
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(Duration::from_secs(120)),
            );
        if let Some(endpoint) = &settings.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        if let Some(region) = &settings.region {
            builder = builder.with_region(region);
        }
        if let Some(id) = &settings.access_key_id {
            builder = builder.with_access_key_id(id);
        }
        if let Some(secret) = &settings.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        let store = builder.build().map_err(remote)?;
        Ok(Self {
            name: name.into(),
            real_bucket: settings.bucket.clone(),
            endpoint: settings
                .endpoint
                .clone()
                .unwrap_or_else(|| "AWS".to_owned()),
            spool: Spool::in_root(root),
            store: Arc::new(store),
            catalog,
            on_complete,
            wake: Arc::new(Notify::new()),
        })
    }

    /// Runs the uploader until `cancel`: uploads what is queued (also what a previous run left),
    /// retrying failures with backoff.
    ///
    /// While every attempt fails (an outage), one upload at a time tries, at growing intervals
    /// (2 s doubling to 60 s), rather than each due upload sending its file only to be
    /// refused; the log says so at 1, 2, 4 … failed attempts, with the reason. The first upload
    /// that goes through again makes all the others due at once, so the backlog drains as soon
    /// as storage is back.
    pub async fn run_uploader(self: Arc<Self>, cancel: CancellationToken) {
        let mut outage: Option<Outage> = None;
        loop {
            let limit = if outage.is_some() {
                1
            } else {
                UPLOADS_IN_FLIGHT as u32
            };
            let due = match self.catalog.due_uploads(&self.name, now_ms(), limit).await {
                Ok(due) => due,
                Err(err) => {
                    tracing::warn!(bucket = %self.name, %err, "cannot read the upload queue");
                    Vec::new()
                }
            };
            if !due.is_empty() {
                let results = futures_util::future::join_all(
                    due.into_iter().map(|row| self.clone().upload_one(row)),
                )
                .await;
                let tried = results.len() as u64;
                if results.iter().any(Result::is_ok) {
                    // Something went up: storage works.
                    if let Some(o) = outage.take() {
                        let retried = self
                            .catalog
                            .retry_uploads_now(&self.name, now_ms())
                            .await
                            .unwrap_or(0);
                        tracing::info!(bucket = %self.name, real_bucket = %self.real_bucket,
                            failed_attempts = o.failed, retried_now = retried,
                            "object storage takes uploads again");
                    }
                    continue;
                }
                let reason = results
                    .into_iter()
                    .filter_map(Result::err)
                    .next_back()
                    .unwrap_or_default();
                let o = outage.get_or_insert(Outage {
                    failed: 0,
                    next_log: 1,
                    wait: RETRY_POLL / 2,
                });
                o.failed += tried;
                o.wait = (o.wait * 2).min(MAX_RETRY);
                if o.failed >= o.next_log {
                    o.next_log = o.failed.saturating_mul(2);
                    let backlog = self.catalog.upload_backlog(&self.name).await.ok();
                    tracing::warn!(bucket = %self.name, real_bucket = %self.real_bucket,
                        pending = backlog.as_ref().map(|b| b.pending), failing = backlog.as_ref().map(|b| b.failing),
                        failed_attempts = o.failed, %reason,
                        "object storage is not taking uploads; recordings wait in the spool and are retried");
                }
            }
            // In an outage new uploads wait for the next try too: they would only be refused.
            let in_outage = outage.is_some();
            let poll = outage.as_ref().map_or(IDLE_POLL, |o| o.wait);
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = self.wake.notified(), if !in_outage => {}
                _ = tokio::time::sleep(poll) => {}
            }
        }
    }

    /// One attempt at one queued upload; why not, if it did not go up.
    async fn upload_one(self: Arc<Self>, row: UploadRow) -> Result<(), String> {
        let spool_file = PathBuf::from(&row.spool_path);
        match self.send(&spool_file, &row.object).await {
            Ok(size) => {
                let payload = match row.completion.as_deref().map(serde_json::from_str) {
                    Some(Ok(payload)) => Some(payload),
                    Some(Err(err)) => {
                        // Written by this program; unreadable means a bug or a damaged row.
                        tracing::error!(bucket = %self.name, object = %row.object, %err,
                            "an uploaded file's completion (its index row) is unreadable; it is not indexed");
                        None
                    }
                    None => None,
                };
                if let Some(payload) = payload {
                    (self.on_complete)(Completed {
                        bucket: self.name.clone(),
                        object: row.object.clone(),
                        payload,
                    })
                    .await;
                }
                // The object is confirmed: only now may the spool copy go.
                let confirmed = if row.completion.is_some() || row.group_id.is_none() {
                    self.catalog.finish_upload(row.id).await
                } else {
                    self.catalog.upload_done(row.id).await
                };
                if let Err(err) = confirmed {
                    tracing::warn!(bucket = %self.name, object = %row.object, %err,
                        "uploaded, but the queue could not be updated; it will be sent again");
                    return Ok(());
                }
                if let Err(err) = tokio::fs::remove_file(&spool_file).await
                    && err.kind() != std::io::ErrorKind::NotFound
                {
                    tracing::warn!(spool = %spool_file.display(), %err, "cannot remove an uploaded spool file");
                }
                tracing::debug!(bucket = %self.name, object = %row.object, bytes = size, "uploaded");
                Ok(())
            }
            Err(err) => {
                let attempts = u32::try_from(row.attempts.max(0)).unwrap_or(u32::MAX);
                let backoff = FIRST_RETRY
                    .saturating_mul(2u32.saturating_pow(attempts.min(16)))
                    .min(MAX_RETRY);
                // Jitter: up to a quarter more, so many uploads do not retry in lockstep.
                let jitter = backoff.mul_f64(rand_fraction() * 0.25);
                let next = now_ms() + i64::try_from((backoff + jitter).as_millis()).unwrap_or(0);
                if attempts == 0 || (attempts + 1).is_power_of_two() {
                    tracing::warn!(bucket = %self.name, real_bucket = %self.real_bucket, object = %row.object,
                        attempt = attempts + 1, %err, retry_in_ms = (backoff + jitter).as_millis() as u64,
                        "upload failed; will retry");
                }
                if let Err(e) = self
                    .catalog
                    .upload_attempt_failed(row.id, next, &err.to_string())
                    .await
                {
                    tracing::warn!(bucket = %self.name, %e, "cannot record an upload failure");
                }
                Err(err.to_string())
            }
        }
    }

    /// Why object storage failed a request, in one line an operator can act on: what S3's
    /// error code means here, with the code and message it sent, or that the endpoint cannot
    /// be reached.
    fn failed(&self, e: object_store::Error) -> StorageError {
        let text = e.to_string();
        let code = xml_field(&text, "Code");
        let bucket = &self.real_bucket;
        let what = match code {
            Some("NoSuchBucket") => Some(format!("bucket {bucket} does not exist")),
            Some(
                "InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "InvalidToken"
                | "ExpiredToken"
                | "TokenRefreshRequired"
                | "AuthorizationHeaderMalformed",
            ) => Some(format!(
                "storage refused the credentials for bucket {bucket}"
            )),
            Some("AccessDenied" | "AllAccessDisabled") => Some(format!(
                "access to bucket {bucket} denied: the credentials lack permission"
            )),
            _ if matches!(
                e,
                object_store::Error::PermissionDenied { .. }
                    | object_store::Error::Unauthenticated { .. }
            ) =>
            {
                Some(format!(
                    "storage refused the credentials for bucket {bucket}"
                ))
            }
            None if text.contains("error sending request") => {
                Some(format!("cannot reach {}", self.endpoint))
            }
            _ => None,
        };
        // The first line without the XML body; the code and message say what it held.
        let first = text.split("<?xml").next().unwrap_or_default();
        let mut detail = first.split_whitespace().collect::<Vec<_>>().join(" ");
        if let Some(code) = code {
            detail = match xml_field(&text, "Message") {
                Some(message) => format!("{code}: {message}"),
                None => code.to_owned(),
            };
        }
        StorageError::Remote(match what {
            Some(what) => format!("{what} ({detail})"),
            None => detail,
        })
    }

    /// Sends a spool file to `object` and confirms it; returns its size.
    async fn send(&self, spool_file: &Path, object: &str) -> Result<u64> {
        let location = object_path(object)?;
        let mut file = tokio::fs::File::open(spool_file).await?;
        let size = file.metadata().await?.len();
        if size <= PART_SIZE as u64 {
            let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            file.read_to_end(&mut data).await?;
            self.store
                .put(&location, PutPayload::from(data))
                .await
                .map_err(|e| self.failed(e))?;
        } else {
            let upload = self
                .store
                .put_multipart(&location)
                .await
                .map_err(|e| self.failed(e))?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
            let mut buf = vec![0u8; FILE_READ];
            let sent = async {
                loop {
                    let n = file.read(&mut buf).await?;
                    if n == 0 {
                        break;
                    }
                    writer
                        .wait_for_capacity(PARTS_IN_FLIGHT)
                        .await
                        .map_err(|e| self.failed(e))?;
                    writer.write(&buf[..n]);
                }
                Ok::<_, StorageError>(())
            }
            .await;
            if let Err(err) = sent {
                let _ = writer.abort().await;
                return Err(err);
            }
            writer.finish().await.map_err(|e| self.failed(e))?;
        }
        let meta = self
            .store
            .head(&location)
            .await
            .map_err(|e| self.failed(e))?;
        if meta.size != size {
            return Err(StorageError::Remote(format!(
                "{object}: stored {} bytes of {size}",
                meta.size
            )));
        }
        Ok(size)
    }
}

/// The text of the first `<name>…</name>` element in `text` (S3's XML error bodies).
fn xml_field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = text.find(&open)? + open.len();
    let len = text[start..].find(&format!("</{name}>"))?;
    Some(text[start..start + len].trim())
}

/// While every attempt fails.
struct Outage {
    /// Failed attempts so far.
    failed: u64,
    /// The failure count at which the next warning is logged.
    next_log: u64,
    /// Until the next try: doubling up to [`MAX_RETRY`].
    wait: Duration,
}

/// A number in [0, 1) for jitter, without a random-number crate: the clock's nanoseconds.
fn rand_fraction() -> f64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    f64::from(nanos % 1_000_000) / 1_000_000.0
}

#[async_trait::async_trait]
impl Target for S3Target {
    fn bucket(&self) -> &str {
        &self.name
    }

    fn spool(&self) -> &Spool {
        &self.spool
    }

    async fn store(&self, request: StoreRequest) -> Result<String> {
        let size = tokio::fs::metadata(&request.spool_file).await?.len();
        let completion = request
            .completion
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StorageError::Io(std::io::Error::other(e)))?;
        let new = NewUpload {
            bucket: self.name.clone(),
            spool_path: request.spool_file.display().to_string(),
            group_id: request.group.clone(),
            completion,
            size: i64::try_from(size).unwrap_or(i64::MAX),
        };
        let name = request.name.clone();
        let queued = self
            .catalog
            .enqueue_upload(&new, &|n| name.candidate(n), MAX_COLLISION_SUFFIX)
            .await
            .map_err(remote)?;
        self.wake.notify_one();
        Ok(queued.object)
    }

    async fn holds(&self, spool_file: &Path) -> Result<bool> {
        self.catalog
            .upload_holds(&spool_file.display().to_string())
            .await
            .map_err(remote)
    }

    async fn read(&self, object: &str, range: Option<ByteRange>) -> Result<ObjectRead> {
        let location = object_path(object)?;
        // An object whose upload is pending is only in the spool so far (recovery reads a
        // CMAF init segment stored before a crash while storage was down).
        if let Some(spool_file) = self
            .catalog
            .pending_upload_spool(&self.name, object)
            .await
            .map_err(remote)?
        {
            match crate::local::read_file(Path::new(&spool_file), object, range).await {
                // Uploaded (and removed from the spool) since the look-up.
                Err(e) if e.is_not_found() => {}
                read => return read,
            }
        }
        let range = match range {
            None => None,
            Some(ByteRange::From { start, end: None }) => Some(GetRange::Offset(start)),
            Some(ByteRange::From {
                start,
                end: Some(end),
            }) => Some(GetRange::Bounded(start..end)),
            Some(ByteRange::Suffix(n)) => Some(GetRange::Suffix(n)),
        };
        let options = GetOptions {
            range,
            ..GetOptions::default()
        };
        let result = self
            .store
            .get_opts(&location, options)
            .await
            .map_err(|e| match e {
                object_store::Error::NotFound { .. } => StorageError::NotFound(object.to_owned()),
                object_store::Error::Generic { ref source, .. }
                    if source.to_string().contains("416")
                        || source.to_string().contains("Range") =>
                {
                    StorageError::Range {
                        start: 0,
                        end: 0,
                        size: 0,
                    }
                }
                e => self.failed(e),
            })?;
        let size = result.meta.size;
        let byte_range = result.range.clone();
        let body = result
            .into_stream()
            .map_err(|e| std::io::Error::other(e.to_string()))
            .boxed();
        Ok(ObjectRead {
            size,
            range: byte_range,
            body,
        })
    }

    async fn write(&self, object: &str, data: Bytes) -> Result<()> {
        let location = object_path(object)?;
        self.store
            .put(&location, PutPayload::from(data))
            .await
            .map_err(|e| self.failed(e))?;
        Ok(())
    }

    async fn delete(&self, object: &str) -> Result<()> {
        let location = object_path(object)?;
        match self.store.delete(&location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.failed(e)),
        }
    }

    async fn backlog(&self) -> Result<Backlog> {
        let backlog = self
            .catalog
            .upload_backlog(&self.name)
            .await
            .map_err(remote)?;
        Ok(Backlog {
            pending: backlog.pending,
            failing: backlog.failing,
            bytes: backlog.bytes,
            oldest_created_at: backlog.oldest_created_at,
            last_error: backlog.last_error,
        })
    }
}
