//! The upload queue of remote storage targets: objects waiting in the spool to be uploaded,
//! kept in the database so pending uploads survive restarts.
//!
//! A row reserves its (bucket, object) name from enqueue until it is finished; by then the
//! caller has indexed the object, so `recording_objects` holds the name instead. Uploads of one
//! group (a playlist's segments, then the playlist) go in id order, and a done member keeps its
//! name reserved until the whole group is finished.
//!
//! Ids come from the `counters` row `uploads` (`UPDATE … RETURNING`): portable, increasing,
//! never reused. SQLite's autoincrementing `INTEGER PRIMARY KEY` has no PostgreSQL spelling in a
//! shared migration, and a sequence has no SQLite one.

use crate::backend::BeginWrite;
use crate::error::{CatalogError, Result};
use crate::{Catalog, NewUpload, QueuedUpload, UploadBacklog, UploadRow, now_ms};

/// Column list of `UploadRecord`, qualified by the alias `u`.
macro_rules! columns {
    () => {
        "u.id, u.bucket, u.object, u.spool_path, u.group_id, u.completion, u.size, u.attempts, \
         u.next_attempt_at, u.last_error, u.done, u.created_at"
    };
}

const NEXT_ID: &str =
    "UPDATE counters SET value = value + 1 WHERE name = 'uploads' RETURNING value";
const SELECT_BY_SPOOL: &str = "SELECT id, object FROM uploads WHERE spool_path = $1";
/// Inserts only if the index does not name the object; a taken name in `uploads` (or the spool
/// path, if a concurrent enqueue of the same file won) is a conflict that inserts nothing. One
/// statement, so on SQLite the check and the insert are atomic.
const INSERT_IF_FREE: &str = "INSERT INTO uploads (id, bucket, object, spool_path, group_id, \
     completion, size, attempts, next_attempt_at, done, created_at) \
     SELECT $1, $2, $3, $4, $5, $6, $7, 0, $8, FALSE, $8 \
     WHERE NOT EXISTS (SELECT 1 FROM recording_objects WHERE bucket = $2 AND object = $3) \
     AND NOT EXISTS (SELECT 1 FROM recordings WHERE oss_bucket = $2 AND oss_object = $3) \
     ON CONFLICT DO NOTHING";
/// A group member waits for every open member with a smaller id, in any bucket.
const SELECT_DUE: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM uploads u WHERE u.bucket = $1 AND u.done = FALSE AND u.next_attempt_at <= $2 \
     AND (u.group_id IS NULL OR NOT EXISTS (SELECT 1 FROM uploads g \
     WHERE g.group_id = u.group_id AND g.done = FALSE AND g.id < u.id)) \
     ORDER BY u.id LIMIT $3"
);
const SELECT_UPLOAD: &str = concat!("SELECT ", columns!(), " FROM uploads u WHERE u.id = $1");
const UPDATE_FAILED: &str = "UPDATE uploads SET attempts = attempts + 1, next_attempt_at = $2, \
     last_error = $3 WHERE id = $1";
const UPDATE_DONE: &str = "UPDATE uploads SET done = TRUE WHERE id = $1";
const DELETE_UPLOAD: &str = "DELETE FROM uploads WHERE id = $1 RETURNING group_id";
/// The group's done rows, once no member is left to upload.
const DELETE_FINISHED_GROUP: &str = "DELETE FROM uploads WHERE group_id = $1 AND done = TRUE \
     AND NOT EXISTS (SELECT 1 FROM uploads o WHERE o.group_id = $1 AND o.done = FALSE)";
const SELECT_BACKLOG: &str = "SELECT COUNT(*), \
     COALESCE(SUM(CASE WHEN attempts > 0 THEN 1 ELSE 0 END), 0), MIN(created_at), \
     CAST(COALESCE(SUM(size), 0) AS BIGINT), \
     (SELECT e.last_error FROM uploads e WHERE e.bucket = $1 AND e.done = FALSE \
      AND e.attempts > 0 ORDER BY e.next_attempt_at DESC, e.id DESC LIMIT 1) \
     FROM uploads WHERE bucket = $1 AND done = FALSE";
/// Makes every waiting upload of a bucket due at `$2` (storage is back).
const UPDATE_RETRY_NOW: &str = "UPDATE uploads SET next_attempt_at = $2 \
     WHERE bucket = $1 AND done = FALSE AND next_attempt_at > $2";
const SELECT_PENDING_OBJECT: &str =
    "SELECT spool_path FROM uploads WHERE bucket = $1 AND object = $2 AND done = FALSE";
const COUNT_HOLDS: &str = "SELECT COUNT(*) FROM uploads WHERE spool_path = $1 AND done = FALSE";
const SELECT_PENDING_BUCKETS: &str =
    "SELECT DISTINCT bucket FROM uploads WHERE done = FALSE ORDER BY bucket";

#[derive(sqlx::FromRow)]
struct UploadRecord {
    id: i64,
    bucket: String,
    object: String,
    spool_path: String,
    group_id: Option<String>,
    completion: Option<String>,
    size: i64,
    attempts: i32,
    next_attempt_at: i64,
    last_error: Option<String>,
    done: bool,
    created_at: i64,
}

impl From<UploadRecord> for UploadRow {
    fn from(r: UploadRecord) -> Self {
        Self {
            id: r.id,
            bucket: r.bucket,
            object: r.object,
            spool_path: r.spool_path,
            group_id: r.group_id,
            completion: r.completion,
            size: r.size,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            last_error: r.last_error,
            done: r.done,
            created_at: r.created_at,
        }
    }
}

impl Catalog {
    /// Queues the upload of `new.spool_path` under the first free name `candidate(0)`,
    /// `candidate(1)`, … `candidate(max_suffix)`: free means no other upload of the bucket
    /// holds it and [`Catalog::object_in_index`] is false. Idempotent on the spool path: a
    /// queued upload of the same file is returned as it is. `NoFreeName` if every name is taken.
    /// The upload is due at once.
    pub async fn enqueue_upload(
        &self,
        new: &NewUpload,
        candidate: &(dyn Fn(u32) -> String + Sync),
        max_suffix: u32,
    ) -> Result<QueuedUpload> {
        if let Some(queued) = self.upload_by_spool_path(&new.spool_path).await? {
            return Ok(queued);
        }
        // One id for every try: an insert that conflicted used none. An id lost to a crash or
        // a race only leaves a gap.
        let id = self.next_upload_id().await?;
        let now = now_ms();
        for n in 0..=max_suffix {
            let object = candidate(n);
            if self.insert_upload_if_free(id, new, &object, now).await? {
                return Ok(QueuedUpload { id, object });
            }
            if let Some(queued) = self.upload_by_spool_path(&new.spool_path).await? {
                return Ok(queued);
            }
        }
        Err(CatalogError::NoFreeName)
    }

    async fn upload_by_spool_path(&self, spool_path: &str) -> Result<Option<QueuedUpload>> {
        let found: Option<(i64, String)> = on_pool!(self, |pool| sqlx::query_as(SELECT_BY_SPOOL)
            .bind(spool_path)
            .fetch_optional(pool)
            .await)
        .map_err(|e| CatalogError::from_sqlx("select upload", e))?;
        Ok(found.map(|(id, object)| QueuedUpload { id, object }))
    }

    async fn next_upload_id(&self) -> Result<i64> {
        on_pool!(self, |pool| sqlx::query_scalar(NEXT_ID)
            .fetch_one(pool)
            .await)
        .map_err(|e| CatalogError::from_sqlx("allocate upload id", e))
    }

    async fn insert_upload_if_free(
        &self,
        id: i64,
        new: &NewUpload,
        object: &str,
        now: i64,
    ) -> Result<bool> {
        let affected = on_pool!(self, |pool| sqlx::query(INSERT_IF_FREE)
            .bind(id)
            .bind(&new.bucket)
            .bind(object)
            .bind(&new.spool_path)
            .bind(&new.group_id)
            .bind(&new.completion)
            .bind(new.size)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| CatalogError::from_sqlx("insert upload", e))?;
        Ok(affected == 1)
    }

    /// One upload by id (None once finished).
    pub async fn upload(&self, id: i64) -> Result<Option<UploadRow>> {
        let record = on_pool!(self, |pool| sqlx::query_as::<_, UploadRecord>(
            SELECT_UPLOAD
        )
        .bind(id)
        .fetch_optional(pool)
        .await)
        .map_err(|e| CatalogError::from_sqlx("select upload", e))?;
        Ok(record.map(UploadRow::from))
    }

    /// Up to `limit` uploads of `bucket` to try now: not done, due by `now_ms`, and not behind
    /// an unfinished upload of their group with a smaller id. By id.
    pub async fn due_uploads(
        &self,
        bucket: &str,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<UploadRow>> {
        let records = on_pool!(self, |pool| sqlx::query_as::<_, UploadRecord>(SELECT_DUE)
            .bind(bucket)
            .bind(now_ms)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await)
        .map_err(|e| CatalogError::from_sqlx("select due uploads", e))?;
        Ok(records.into_iter().map(UploadRow::from).collect())
    }

    /// Counts a failed attempt and schedules the next one. False if there is no such upload.
    pub async fn upload_attempt_failed(
        &self,
        id: i64,
        next_attempt_at_ms: i64,
        error: &str,
    ) -> Result<bool> {
        let affected = on_pool!(self, |pool| sqlx::query(UPDATE_FAILED)
            .bind(id)
            .bind(next_attempt_at_ms)
            .bind(error)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| CatalogError::from_sqlx("update failed upload", e))?;
        Ok(affected > 0)
    }

    /// Marks an upload done; its row keeps the name reserved (and, in a group, lets the next
    /// member go) until it is finished. False if there is no such upload.
    pub async fn upload_done(&self, id: i64) -> Result<bool> {
        let affected = on_pool!(self, |pool| sqlx::query(UPDATE_DONE)
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| CatalogError::from_sqlx("update done upload", e))?;
        Ok(affected > 0)
    }

    /// Deletes an upload once its completion was handled; when it was the last unfinished
    /// member of its group, the group's done rows go too. Atomic. False if there is no such
    /// upload.
    pub async fn finish_upload(&self, id: i64) -> Result<bool> {
        on_pool!(self, |pool| async {
            let mut tx = pool.begin_write().await?;
            let deleted: Option<Option<String>> = sqlx::query_scalar(DELETE_UPLOAD)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(Some(group_id)) = &deleted {
                sqlx::query(DELETE_FINISHED_GROUP)
                    .bind(group_id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(deleted.is_some())
        }
        .await)
        .map_err(|e| CatalogError::from_sqlx("finish upload", e))
    }

    /// Makes every upload of `bucket` not yet done due at `now_ms` (their failures stay
    /// counted): after an outage, once storage takes an upload again, the rest need not wait
    /// out their backoff. Returns how many were rescheduled.
    pub async fn retry_uploads_now(&self, bucket: &str, now_ms: i64) -> Result<u64> {
        on_pool!(self, |pool| sqlx::query(UPDATE_RETRY_NOW)
            .bind(bucket)
            .bind(now_ms)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| CatalogError::from_sqlx("reschedule uploads", e))
    }

    /// The spool file still holding `object` of `bucket`, if its upload is not done yet (the
    /// object may not exist in the bucket until it is).
    pub async fn pending_upload_spool(&self, bucket: &str, object: &str) -> Result<Option<String>> {
        on_pool!(self, |pool| sqlx::query_scalar(SELECT_PENDING_OBJECT)
            .bind(bucket)
            .bind(object)
            .fetch_optional(pool)
            .await)
        .map_err(|e| CatalogError::from_sqlx("select pending upload", e))
    }

    /// What is left to upload to `bucket`.
    pub async fn upload_backlog(&self, bucket: &str) -> Result<UploadBacklog> {
        let (pending, failing, oldest_created_at, bytes, last_error): (
            i64,
            i64,
            Option<i64>,
            i64,
            Option<String>,
        ) = on_pool!(self, |pool| sqlx::query_as(SELECT_BACKLOG)
            .bind(bucket)
            .fetch_one(pool)
            .await)
        .map_err(|e| CatalogError::from_sqlx("select upload backlog", e))?;
        Ok(UploadBacklog {
            pending: u64::try_from(pending).unwrap_or(0),
            failing: u64::try_from(failing).unwrap_or(0),
            bytes: u64::try_from(bytes).unwrap_or(0),
            oldest_created_at,
            last_error,
        })
    }

    /// Whether an upload not yet done needs the spool file at `spool_path` (a done upload no
    /// longer reads it).
    pub async fn upload_holds(&self, spool_path: &str) -> Result<bool> {
        let count: i64 = on_pool!(self, |pool| sqlx::query_scalar(COUNT_HOLDS)
            .bind(spool_path)
            .fetch_one(pool)
            .await)
        .map_err(|e| CatalogError::from_sqlx("select upload holds", e))?;
        Ok(count > 0)
    }

    /// Buckets with uploads not yet done, by name.
    pub async fn pending_upload_buckets(&self) -> Result<Vec<String>> {
        on_pool!(self, |pool| sqlx::query_scalar(SELECT_PENDING_BUCKETS)
            .fetch_all(pool)
            .await)
        .map_err(|e| CatalogError::from_sqlx("select upload buckets", e))
    }
}
