//! DescribeLiveRecordNotifyRecords: the callbacks of the outbox (`notify_events`) tried at least
//! once, by the time of their last attempt, newest first.

use crate::error::{CatalogError, Result};
use crate::{Catalog, Page};

/// Where a callback's delivery stands (the `status` column of `notify_events`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NotifyStatus {
    /// Not delivered yet and still being retried.
    Pending,
    /// Delivered.
    Success,
    /// Given up: every attempt failed until the retry deadline.
    Failed,
}

impl NotifyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Success => "success",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "success" => Some(Self::Success),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// The `Status` filter: `Failed` means every attempt so far failed, so it matches callbacks
/// still being retried as well as those given up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NotifyOutcome {
    Success,
    Failed,
}

impl NotifyOutcome {
    /// The two `status` values the filter matches.
    fn statuses(self) -> (&'static str, &'static str) {
        match self {
            Self::Success => (
                NotifyStatus::Success.as_str(),
                NotifyStatus::Success.as_str(),
            ),
            Self::Failed => (
                NotifyStatus::Failed.as_str(),
                NotifyStatus::Pending.as_str(),
            ),
        }
    }
}

/// Which callback records to list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifyRecordQuery {
    /// Lowercase.
    pub domain: String,
    /// Exact matches when given.
    pub app: Option<String>,
    pub stream: Option<String>,
    /// Last attempt in [start, end), Unix milliseconds.
    pub start: i64,
    pub end: i64,
    pub outcome: Option<NotifyOutcome>,
    /// From 1.
    pub page_num: u32,
    pub page_size: u32,
}

/// One callback that was tried at least once. The signing key is not part of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifyRecordRow {
    /// The Idempotency-Key of every attempt.
    pub event_id: String,
    pub domain: String,
    pub app: String,
    pub stream: String,
    /// `file_created`, `record_started`, `record_paused`, `record_resumed`, `record_error`.
    pub event: String,
    pub url: String,
    /// The JSON body sent.
    pub body: String,
    pub status: NotifyStatus,
    /// At least 1.
    pub attempts: i32,
    /// Unix milliseconds: retries stop after this.
    pub retry_until: i64,
    pub created_at: i64,
    pub last_attempt_at: i64,
    /// The headers the last attempt sent (a JSON object).
    pub last_headers: Option<String>,
    /// The receiver's answer to the last attempt, or why it failed.
    pub last_response: Option<String>,
}

/// Rows of the query; `$4`/`$5` (app, stream) and `$6`/`$7` (the two statuses) are NULL when
/// not filtered. A NULL `last_attempt_at` never matches the range.
macro_rules! filter {
    () => {
        "WHERE domain = $1 AND attempts > 0 AND last_attempt_at >= $2 AND last_attempt_at < $3 \
         AND ($4 IS NULL OR app = $4) AND ($5 IS NULL OR stream = $5) \
         AND ($6 IS NULL OR status = $6 OR status = $7)"
    };
}

/// Newest first; the unique event id breaks ties so pages never overlap or skip.
const SELECT_PAGE: &str = concat!(
    "SELECT event_id, domain, app, stream, event, url, body, status, attempts, retry_until, \
     created_at, last_attempt_at, last_headers, last_response FROM notify_events ",
    filter!(),
    " ORDER BY last_attempt_at DESC, event_id DESC LIMIT $8 OFFSET $9"
);
const COUNT: &str = concat!("SELECT COUNT(*) FROM notify_events ", filter!());

#[derive(sqlx::FromRow)]
struct Record {
    event_id: String,
    domain: String,
    app: String,
    stream: String,
    event: String,
    url: String,
    body: String,
    status: String,
    attempts: i32,
    retry_until: i64,
    created_at: i64,
    last_attempt_at: Option<i64>,
    last_headers: Option<String>,
    last_response: Option<String>,
}

impl TryFrom<Record> for NotifyRecordRow {
    type Error = CatalogError;

    fn try_from(r: Record) -> Result<Self> {
        let status = NotifyStatus::parse(&r.status)
            .ok_or_else(|| CatalogError::corrupt("notify event status", &r.status))?;
        Ok(Self {
            event_id: r.event_id,
            domain: r.domain,
            app: r.app,
            stream: r.stream,
            event: r.event,
            url: r.url,
            body: r.body,
            status,
            attempts: r.attempts,
            retry_until: r.retry_until,
            created_at: r.created_at,
            // The filter only matches rows that have one.
            last_attempt_at: r.last_attempt_at.unwrap_or_default(),
            last_headers: r.last_headers,
            last_response: r.last_response,
        })
    }
}

impl Catalog {
    /// One page of the callbacks matching `query`, newest last attempt first, and how many
    /// match in all.
    pub async fn notify_records(
        &self,
        query: &NotifyRecordQuery,
    ) -> Result<(Vec<NotifyRecordRow>, u64)> {
        let q = query;
        let (status_a, status_b) = match q.outcome.map(NotifyOutcome::statuses) {
            Some((a, b)) => (Some(a), Some(b)),
            None => (None, None),
        };
        let page = Page {
            num: q.page_num,
            size: q.page_size,
            desc: true,
        };
        let (records, total): (Vec<Record>, i64) = on_pool!(self, |pool| {
            let records = sqlx::query_as::<_, Record>(SELECT_PAGE)
                .bind(&q.domain)
                .bind(q.start)
                .bind(q.end)
                .bind(q.app.as_deref())
                .bind(q.stream.as_deref())
                .bind(status_a)
                .bind(status_b)
                .bind(page.limit())
                .bind(page.offset())
                .fetch_all(pool)
                .await;
            match records {
                Ok(records) => sqlx::query_scalar(COUNT)
                    .bind(&q.domain)
                    .bind(q.start)
                    .bind(q.end)
                    .bind(q.app.as_deref())
                    .bind(q.stream.as_deref())
                    .bind(status_a)
                    .bind(status_b)
                    .fetch_one(pool)
                    .await
                    .map(|total| (records, total)),
                Err(e) => Err(e),
            }
        })
        .map_err(|e| CatalogError::from_sqlx("select notify records", e))?;
        let rows = records
            .into_iter()
            .map(NotifyRecordRow::try_from)
            .collect::<Result<Vec<_>>>()?;
        Ok((rows, u64::try_from(total).unwrap_or(0)))
    }
}
