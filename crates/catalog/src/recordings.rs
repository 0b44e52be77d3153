//! The recordings index: one row per finished file, queried by stream and time range.

use crate::error::{CatalogError, Result};
use crate::{Catalog, RecordingQuery, RecordingRow};

/// Column list of `RecordingRecord` (a macro so queries stay `&'static str` literals).
macro_rules! columns {
    () => {
        "record_id, domain, app, stream, format, oss_bucket, oss_endpoint, oss_object, \
         start_time, end_time, duration_secs, size, width, height, created_at"
    };
}
/// Rows of one stream whose [start_time, end_time) shares an instant with [$4, $5). A
/// zero-length recording counts as the instant at its start; an empty range finds nothing.
macro_rules! filter {
    () => {
        "WHERE domain = $1 AND app = $2 AND stream = $3 AND $4 < $5 \
         AND start_time < $5 AND (end_time > $4 OR start_time >= $4)"
    };
}

const INSERT_RECORDING: &str = "INSERT INTO recordings (record_id, domain, app, stream, format, \
     oss_bucket, oss_endpoint, oss_object, start_time, end_time, duration_secs, size, width, \
     height, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)";
/// Creation time, then the unique record id, so pages never overlap or skip.
const SELECT_PAGE_ASC: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM recordings ",
    filter!(),
    " ORDER BY created_at ASC, record_id ASC LIMIT $6 OFFSET $7"
);
const SELECT_PAGE_DESC: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM recordings ",
    filter!(),
    " ORDER BY created_at DESC, record_id DESC LIMIT $6 OFFSET $7"
);
const COUNT_PAGE: &str = concat!("SELECT COUNT(*) FROM recordings ", filter!());
const SELECT_RECORDING: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM recordings ",
    "WHERE record_id = $1 AND domain = $2 AND app = $3 AND stream = $4"
);

#[derive(sqlx::FromRow)]
struct RecordingRecord {
    record_id: String,
    domain: String,
    app: String,
    stream: String,
    format: String,
    oss_bucket: String,
    oss_endpoint: String,
    oss_object: String,
    start_time: i64,
    end_time: i64,
    duration_secs: f64,
    size: i64,
    width: i32,
    height: i32,
    created_at: i64,
}

impl From<RecordingRecord> for RecordingRow {
    fn from(r: RecordingRecord) -> Self {
        Self {
            record_id: r.record_id,
            domain: r.domain,
            app: r.app,
            stream: r.stream,
            format: r.format,
            oss_bucket: r.oss_bucket,
            oss_endpoint: r.oss_endpoint,
            oss_object: r.oss_object,
            start_time: r.start_time,
            end_time: r.end_time,
            duration_secs: r.duration_secs,
            size: r.size,
            width: r.width,
            height: r.height,
            created_at: r.created_at,
        }
    }
}

impl Catalog {
    /// `AlreadyExists` if the record id is taken (a retried insert after a lost reply).
    pub async fn insert_recording(&self, recording: &RecordingRow) -> Result<()> {
        let r = recording;
        on_pool!(self, |pool| sqlx::query(INSERT_RECORDING)
            .bind(&r.record_id)
            .bind(&r.domain)
            .bind(&r.app)
            .bind(&r.stream)
            .bind(&r.format)
            .bind(&r.oss_bucket)
            .bind(&r.oss_endpoint)
            .bind(&r.oss_object)
            .bind(r.start_time)
            .bind(r.end_time)
            .bind(r.duration_secs)
            .bind(r.size)
            .bind(r.width)
            .bind(r.height)
            .bind(r.created_at)
            .execute(pool)
            .await
            .map(|_| ()))
        .map_err(|e| CatalogError::from_sqlx("insert recording", e))
    }

    /// Recordings of the query's stream overlapping [start, end), paged by creation time
    /// (oldest first unless `page.desc`); returns the page and the total count.
    pub async fn recordings(&self, query: &RecordingQuery) -> Result<(Vec<RecordingRow>, u64)> {
        let q = query;
        let select = if q.page.desc {
            SELECT_PAGE_DESC
        } else {
            SELECT_PAGE_ASC
        };
        let (records, total): (Vec<RecordingRecord>, i64) = on_pool!(self, |pool| {
            let records = sqlx::query_as::<_, RecordingRecord>(select)
                .bind(&q.domain)
                .bind(&q.app)
                .bind(&q.stream)
                .bind(q.start)
                .bind(q.end)
                .bind(q.page.limit())
                .bind(q.page.offset())
                .fetch_all(pool)
                .await;
            match records {
                Ok(records) => sqlx::query_scalar(COUNT_PAGE)
                    .bind(&q.domain)
                    .bind(&q.app)
                    .bind(&q.stream)
                    .bind(q.start)
                    .bind(q.end)
                    .fetch_one(pool)
                    .await
                    .map(|total| (records, total)),
                Err(e) => Err(e),
            }
        })
        .map_err(|e| CatalogError::from_sqlx("select recordings", e))?;
        Ok((
            records.into_iter().map(RecordingRow::from).collect(),
            u64::try_from(total).unwrap_or(0),
        ))
    }

    /// One recording of the stream by its id.
    pub async fn recording(
        &self,
        domain: &str,
        app: &str,
        stream: &str,
        record_id: &str,
    ) -> Result<Option<RecordingRow>> {
        let record = on_pool!(self, |pool| sqlx::query_as::<_, RecordingRecord>(
            SELECT_RECORDING
        )
        .bind(record_id)
        .bind(domain)
        .bind(app)
        .bind(stream)
        .fetch_optional(pool)
        .await)
        .map_err(|e| CatalogError::from_sqlx("select recording", e))?;
        Ok(record.map(RecordingRow::from))
    }
}
