//! The recordings index: one row per finished file, queried by stream and time range, with
//! every stored object of a row (a file, or a playlist with its init and segments).

use sqlx::QueryBuilder;

use crate::backend::BeginWrite;
use crate::error::{CatalogError, Result};
use crate::notify_events::{INSERT_EVENT_SQL, NewNotifyEvent, bind_event};
use crate::{
    Catalog, ContentRow, ObjectKind, RecordingObject, RecordingQuery, RecordingRow, SegmentRow,
};

/// Column list of `RecordingRecord` (a macro so queries stay `&'static str` literals).
macro_rules! columns {
    () => {
        "record_id, domain, app, stream, format, oss_bucket, oss_endpoint, oss_object, \
         start_time, end_time, duration_secs, size, width, height, created_at, session_id, \
         object_prefix, generated"
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
macro_rules! insert_recording {
    () => {
        concat!(
            "INSERT INTO recordings (",
            columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
             $17, $18)"
        )
    };
}
/// Binds every column of a `RecordingRow` in `columns!()` order.
macro_rules! bind_recording {
    ($query:expr, $r:expr) => {
        $query
            .bind(&$r.record_id)
            .bind(&$r.domain)
            .bind(&$r.app)
            .bind(&$r.stream)
            .bind(&$r.format)
            .bind(&$r.oss_bucket)
            .bind(&$r.oss_endpoint)
            .bind(&$r.oss_object)
            .bind($r.start_time)
            .bind($r.end_time)
            .bind($r.duration_secs)
            .bind($r.size)
            .bind($r.width)
            .bind($r.height)
            .bind($r.created_at)
            .bind(&$r.session_id)
            .bind(&$r.object_prefix)
            .bind($r.generated)
    };
}
macro_rules! object_columns {
    () => {
        "seq, bucket, object, kind, start_time, duration_ms, size"
    };
}

const INSERT_RECORDING: &str = insert_recording!();
/// A retried insert of the same record id adds nothing.
const INSERT_RECORDING_IF_NEW: &str =
    concat!(insert_recording!(), " ON CONFLICT (record_id) DO NOTHING");
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
const SELECT_OBJECTS: &str = concat!(
    "SELECT ",
    object_columns!(),
    " FROM recording_objects WHERE record_id = $1 ORDER BY seq"
);
/// Objects first: they reference the row.
const DELETE_OBJECTS: &str = concat!(
    "DELETE FROM recording_objects WHERE record_id = $1 RETURNING ",
    object_columns!()
);
const DELETE_RECORDING: &str = concat!(
    "DELETE FROM recordings WHERE record_id = $1 RETURNING ",
    columns!()
);
/// One row per (session, format) that has a recorded (not generated) row overlapping the
/// range (the rule of `filter!`), spanning every row of that session and format: a content
/// entry is the whole recording, not the part inside the range (API.md). Rows from before
/// sessions were recorded (`session_id = ''`) are each a session of their own. The bucket,
/// endpoint and prefix are the same on every row of a session; MIN just picks one portably.
const SELECT_CONTENT: &str = "SELECT MIN(r.session_id) AS session_id, r.format AS format, \
     MIN(r.oss_bucket) AS oss_bucket, MIN(r.oss_endpoint) AS oss_endpoint, \
     MIN(r.object_prefix) AS object_prefix, MIN(r.start_time) AS start_time, \
     MAX(r.end_time) AS end_time, SUM(r.duration_secs) AS duration_secs FROM recordings r \
     WHERE r.domain = $1 AND r.app = $2 AND r.stream = $3 AND r.generated = FALSE \
     AND EXISTS (SELECT 1 FROM recordings o WHERE o.domain = r.domain AND o.app = r.app \
     AND o.stream = r.stream AND o.format = r.format AND o.generated = FALSE \
     AND ((r.session_id = '' AND o.record_id = r.record_id) \
     OR (r.session_id <> '' AND o.session_id = r.session_id)) \
     AND $4 < $5 AND o.start_time < $5 AND (o.end_time > $4 OR o.start_time >= $4)) \
     GROUP BY CASE WHEN r.session_id = '' THEN r.record_id ELSE r.session_id END, r.format \
     ORDER BY MIN(r.start_time), MIN(r.session_id), r.format, MIN(r.record_id)";
/// Segments of one stream and format whose [start, start + duration) shares an instant with
/// the range: [$5, $6) or, with `$6` included, [$5, $6]. A zero-length segment is the instant
/// at its start (as for recordings).
macro_rules! select_segments {
    ($lt:literal) => {
        concat!(
            "SELECT o.record_id AS record_id, o.bucket AS bucket, r.oss_endpoint AS endpoint, \
             o.object AS object, o.start_time AS start_time, o.duration_ms AS duration_ms, \
             (SELECT i.object FROM recording_objects i \
              WHERE i.record_id = o.record_id AND i.kind = 'init' ORDER BY i.seq LIMIT 1) \
             AS init_object \
             FROM recording_objects o JOIN recordings r ON r.record_id = o.record_id \
             WHERE r.domain = $1 AND r.app = $2 AND r.stream = $3 AND r.format = $4 \
             AND r.generated = FALSE AND o.kind = 'segment' AND $5 ",
            $lt,
            " $6 AND o.start_time ",
            $lt,
            " $6 AND (o.start_time + o.duration_ms > $5 OR o.start_time >= $5) \
             ORDER BY o.start_time, o.seq, o.record_id"
        )
    };
}
const SELECT_SEGMENTS: &str = select_segments!("<");
const SELECT_SEGMENTS_END_INCLUDED: &str = select_segments!("<=");
const SELECT_ENDED_BEFORE: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM recordings WHERE oss_bucket = $1 AND end_time < $2 \
     ORDER BY end_time, record_id LIMIT $3"
);
const COUNT_OBJECT_IN_INDEX: &str = "SELECT COUNT(*) FROM (\
     SELECT 1 AS hit FROM recording_objects WHERE bucket = $1 AND object = $2 \
     UNION ALL SELECT 1 AS hit FROM recordings WHERE oss_bucket = $1 AND oss_object = $2\
     ) AS hits";
/// Rows per multi-row insert of objects: 8 values each stays far below both databases' limits
/// on bound parameters.
const OBJECTS_PER_STATEMENT: usize = 500;
/// Index rows naming an object as their file: id and whether generated.
const SELECT_NAMING: &str = "SELECT record_id, generated FROM recordings \
     WHERE oss_bucket = $1 AND oss_object = $2 \
     UNION SELECT o.record_id, r.generated FROM recording_objects o \
     JOIN recordings r ON r.record_id = o.record_id WHERE o.bucket = $1 AND o.object = $2";
const DELETE_GENERATED_OBJECTS: &str = "DELETE FROM recording_objects WHERE record_id IN \
     (SELECT record_id FROM recordings WHERE generated = TRUE AND oss_bucket = $1 AND oss_object = $2)";
const DELETE_GENERATED: &str =
    "DELETE FROM recordings WHERE generated = TRUE AND oss_bucket = $1 AND oss_object = $2";

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
    session_id: String,
    object_prefix: String,
    generated: bool,
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
            session_id: r.session_id,
            object_prefix: r.object_prefix,
            generated: r.generated,
        }
    }
}

#[derive(sqlx::FromRow)]
struct ObjectRecord {
    seq: i32,
    bucket: String,
    object: String,
    kind: String,
    start_time: i64,
    duration_ms: i64,
    size: i64,
}

impl TryFrom<ObjectRecord> for RecordingObject {
    type Error = CatalogError;

    fn try_from(r: ObjectRecord) -> Result<Self> {
        let kind = ObjectKind::parse(&r.kind)
            .ok_or_else(|| CatalogError::corrupt("recording object kind", &r.kind))?;
        Ok(Self {
            seq: r.seq,
            bucket: r.bucket,
            object: r.object,
            kind,
            start_time: r.start_time,
            duration_ms: r.duration_ms,
            size: r.size,
        })
    }
}

fn objects_from(records: Vec<ObjectRecord>) -> Result<Vec<RecordingObject>> {
    let mut objects = records
        .into_iter()
        .map(RecordingObject::try_from)
        .collect::<Result<Vec<_>>>()?;
    objects.sort_by_key(|o| o.seq);
    Ok(objects)
}

#[derive(sqlx::FromRow)]
struct ContentRecord {
    session_id: String,
    format: String,
    oss_bucket: String,
    oss_endpoint: String,
    object_prefix: String,
    start_time: i64,
    end_time: i64,
    duration_secs: f64,
}

impl From<ContentRecord> for ContentRow {
    fn from(r: ContentRecord) -> Self {
        Self {
            session_id: r.session_id,
            format: r.format,
            oss_bucket: r.oss_bucket,
            oss_endpoint: r.oss_endpoint,
            object_prefix: r.object_prefix,
            start_time: r.start_time,
            end_time: r.end_time,
            duration_secs: r.duration_secs,
        }
    }
}

#[derive(sqlx::FromRow)]
struct SegmentRecord {
    record_id: String,
    bucket: String,
    endpoint: String,
    object: String,
    start_time: i64,
    duration_ms: i64,
    init_object: Option<String>,
}

impl From<SegmentRecord> for SegmentRow {
    fn from(r: SegmentRecord) -> Self {
        Self {
            record_id: r.record_id,
            bucket: r.bucket,
            endpoint: r.endpoint,
            object: r.object,
            start_time: r.start_time,
            duration_ms: r.duration_ms,
            init_object: r.init_object,
        }
    }
}

impl Catalog {
    /// `AlreadyExists` if the record id is taken (a retried insert after a lost reply).
    pub async fn insert_recording(&self, recording: &RecordingRow) -> Result<()> {
        let r = recording;
        on_pool!(self, |pool| bind_recording!(
            sqlx::query(INSERT_RECORDING),
            r
        )
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

    /// Inserts an index row with its objects, atomically. Returns false, inserting nothing,
    /// when the record id exists already (a completion retried after a crash).
    pub async fn insert_recording_with_objects(
        &self,
        recording: &RecordingRow,
        objects: &[RecordingObject],
    ) -> Result<bool> {
        self.index_recording(recording, objects, None).await
    }

    /// [`insert_recording_with_objects`](Self::insert_recording_with_objects), and in the same
    /// transaction the file's callback (queued if the domain has a notify config): a file is
    /// never indexed without its callback, nor announced without its row.
    pub async fn index_recording(
        &self,
        recording: &RecordingRow,
        objects: &[RecordingObject],
        file_event: Option<&NewNotifyEvent>,
    ) -> Result<bool> {
        let r = recording;
        on_pool!(self, |pool| async {
            let mut tx = pool.begin_write().await?;
            let inserted = bind_recording!(sqlx::query(INSERT_RECORDING_IF_NEW), r)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
            if !inserted {
                tx.rollback().await?;
                return Ok(false);
            }
            for chunk in objects.chunks(OBJECTS_PER_STATEMENT) {
                let mut query = QueryBuilder::new(concat!(
                    "INSERT INTO recording_objects (record_id, ",
                    object_columns!(),
                    ") "
                ));
                query.push_values(chunk, |mut row, o| {
                    row.push_bind(&r.record_id)
                        .push_bind(o.seq)
                        .push_bind(&o.bucket)
                        .push_bind(&o.object)
                        .push_bind(o.kind.as_str())
                        .push_bind(o.start_time)
                        .push_bind(o.duration_ms)
                        .push_bind(o.size);
                });
                // The SQL depends on the chunk's size: not worth a cached statement.
                query.build().persistent(false).execute(&mut *tx).await?;
            }
            if let Some(event) = file_event {
                bind_event(sqlx::query(INSERT_EVENT_SQL), event, false)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(true)
        }
        .await)
        .map_err(|e| CatalogError::from_sqlx("insert recording with objects", e))
    }

    /// The index rows that name `bucket`/`object` (as their file or one of their objects):
    /// `(record_id, generated)`.
    pub async fn rows_naming(&self, bucket: &str, object: &str) -> Result<Vec<(String, bool)>> {
        on_pool!(self, |pool| sqlx::query_as::<_, (String, bool)>(
            SELECT_NAMING
        )
        .bind(bucket)
        .bind(object)
        .fetch_all(pool)
        .await)
        .map_err(|e| CatalogError::from_sqlx("select rows naming an object", e))
    }

    /// Inserts a generated index row (CreateLiveStreamRecordIndexFiles) in place of the
    /// generated rows that named the same object, in one transaction: the object was
    /// overwritten, so they described what no longer exists.
    pub async fn replace_generated_index(
        &self,
        recording: &RecordingRow,
        objects: &[RecordingObject],
    ) -> Result<()> {
        let r = recording;
        on_pool!(self, |pool| async {
            let mut tx = pool.begin_write().await?;
            for statement in [DELETE_GENERATED_OBJECTS, DELETE_GENERATED] {
                sqlx::query(statement)
                    .bind(&r.oss_bucket)
                    .bind(&r.oss_object)
                    .execute(&mut *tx)
                    .await?;
            }
            bind_recording!(sqlx::query(INSERT_RECORDING), r)
                .execute(&mut *tx)
                .await?;
            for o in objects {
                sqlx::query(concat!(
                    "INSERT INTO recording_objects (record_id, ",
                    object_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                ))
                .bind(&r.record_id)
                .bind(o.seq)
                .bind(&o.bucket)
                .bind(&o.object)
                .bind(o.kind.as_str())
                .bind(o.start_time)
                .bind(o.duration_ms)
                .bind(o.size)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(())
        }
        .await)
        .map_err(|e| CatalogError::from_sqlx("replace generated index", e))
    }

    /// The stored objects of an index row, by `seq` (empty for an unknown id).
    pub async fn recording_objects(&self, record_id: &str) -> Result<Vec<RecordingObject>> {
        let records = on_pool!(self, |pool| sqlx::query_as::<_, ObjectRecord>(
            SELECT_OBJECTS
        )
        .bind(record_id)
        .fetch_all(pool)
        .await)
        .map_err(|e| CatalogError::from_sqlx("select recording objects", e))?;
        objects_from(records)
    }

    /// Removes an index row and its objects atomically; returns what was removed, or None if
    /// there was no such row. The stored objects themselves are the caller's to delete.
    pub async fn delete_recording(
        &self,
        record_id: &str,
    ) -> Result<Option<(RecordingRow, Vec<RecordingObject>)>> {
        let (row, objects) = on_pool!(self, |pool| async {
            let mut tx = pool.begin_write().await?;
            let objects = sqlx::query_as::<_, ObjectRecord>(DELETE_OBJECTS)
                .bind(record_id)
                .fetch_all(&mut *tx)
                .await?;
            let row = sqlx::query_as::<_, RecordingRecord>(DELETE_RECORDING)
                .bind(record_id)
                .fetch_optional(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>((row, objects))
        }
        .await)
        .map_err(|e| CatalogError::from_sqlx("delete recording", e))?;
        match row {
            Some(row) => Ok(Some((RecordingRow::from(row), objects_from(objects)?))),
            None => Ok(None),
        }
    }

    /// One entry per (recording session, format) of the stream's recorded (not generated)
    /// rows of which one overlaps [start_ms, end_ms) (the overlap rule of
    /// [`Catalog::recordings`]), spanning all of that session's rows of the format; ordered by
    /// start time.
    pub async fn record_content(
        &self,
        domain: &str,
        app: &str,
        stream: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<ContentRow>> {
        let records = on_pool!(self, |pool| sqlx::query_as::<_, ContentRecord>(
            SELECT_CONTENT
        )
        .bind(domain)
        .bind(app)
        .bind(stream)
        .bind(start_ms)
        .bind(end_ms)
        .fetch_all(pool)
        .await)
        .map_err(|e| CatalogError::from_sqlx("select record content", e))?;
        Ok(records.into_iter().map(ContentRow::from).collect())
    }

    /// The segments of the stream's recorded (not generated) rows of `format` whose
    /// [start, start + duration) overlaps [start_ms, end_ms), or [start_ms, end_ms] with
    /// `end_included` (a segment starting at `end_ms` counts). Ordered by start time, then seq.
    #[allow(clippy::too_many_arguments)]
    pub async fn segments_in_range(
        &self,
        domain: &str,
        app: &str,
        stream: &str,
        format: &str,
        start_ms: i64,
        end_ms: i64,
        end_included: bool,
    ) -> Result<Vec<SegmentRow>> {
        let select = if end_included {
            SELECT_SEGMENTS_END_INCLUDED
        } else {
            SELECT_SEGMENTS
        };
        let records = on_pool!(self, |pool| sqlx::query_as::<_, SegmentRecord>(select)
            .bind(domain)
            .bind(app)
            .bind(stream)
            .bind(format)
            .bind(start_ms)
            .bind(end_ms)
            .fetch_all(pool)
            .await)
        .map_err(|e| CatalogError::from_sqlx("select segments", e))?;
        Ok(records.into_iter().map(SegmentRow::from).collect())
    }

    /// Up to `limit` rows of `bucket` that ended before `cutoff_ms`, oldest end first
    /// (the retention sweep; generated rows included).
    pub async fn recordings_ended_before(
        &self,
        bucket: &str,
        cutoff_ms: i64,
        limit: u32,
    ) -> Result<Vec<RecordingRow>> {
        let records = on_pool!(self, |pool| sqlx::query_as::<_, RecordingRecord>(
            SELECT_ENDED_BEFORE
        )
        .bind(bucket)
        .bind(cutoff_ms)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await)
        .map_err(|e| CatalogError::from_sqlx("select ended recordings", e))?;
        Ok(records.into_iter().map(RecordingRow::from).collect())
    }

    /// Whether the index names `object` in `bucket`: as an object of a row, or as a row's
    /// OssObject.
    pub async fn object_in_index(&self, bucket: &str, object: &str) -> Result<bool> {
        let count: i64 = on_pool!(self, |pool| sqlx::query_scalar(COUNT_OBJECT_IN_INDEX)
            .bind(bucket)
            .bind(object)
            .fetch_one(pool)
            .await)
        .map_err(|e| CatalogError::from_sqlx("select object in index", e))?;
        Ok(count > 0)
    }
}
