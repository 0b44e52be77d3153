//! The callback outbox: record callbacks waiting to be delivered, and the result of those
//! delivered or given up (DescribeLiveRecordNotifyRecords reads them).
//!
//! An event is queued only if its domain has a notify config (status events also need
//! NeedStatusNotify); the row takes the config's URL and signing key at that moment, in the
//! same statement, so a file callback written in the index row's transaction needs no second
//! read. Delivery claims due rows by moving `next_attempt_at` to the end of a lease: a
//! crashed or stuck attempt is tried again once its lease ends, and two nodes sharing
//! PostgreSQL never claim the same row at once (the claim re-checks the row it updates).

use sqlx::QueryBuilder;

use crate::error::{CatalogError, Result};
use crate::{Catalog, now_ms};

/// `status` of a row still being tried.
pub const STATUS_PENDING: &str = "pending";
/// `status` of a delivered row.
pub const STATUS_SUCCESS: &str = "success";
/// `status` of a row given up after its retry window.
pub const STATUS_FAILED: &str = "failed";

/// A callback to queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewNotifyEvent {
    /// The Idempotency-Key of every attempt; a second event with the same id is not queued.
    pub event_id: String,
    /// Looked up lowercase in `notify_configs`.
    pub domain: String,
    pub app: String,
    pub stream: String,
    /// `file_created`, `record_started`, `record_paused`, `record_resumed`, `record_error`.
    pub event: String,
    /// The JSON body.
    pub body: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds: retries stop after this.
    pub retry_until: i64,
}

/// A claimed callback to attempt.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct NotifyEventRow {
    pub event_id: String,
    pub domain: String,
    pub app: String,
    pub stream: String,
    pub event: String,
    pub url: String,
    pub body: String,
    /// `""`: unsigned.
    pub auth_key: String,
    /// Attempts made before this one.
    pub attempts: i32,
    /// Unix milliseconds.
    pub retry_until: i64,
    pub created_at: i64,
}

/// What one attempt gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptResult {
    /// Unix milliseconds.
    pub at: i64,
    /// The headers sent, as a JSON object.
    pub headers: String,
    /// `"HTTP 200: …"` or why the attempt failed.
    pub response: String,
    pub outcome: AttemptOutcome,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    Delivered,
    /// Failed; try again at this Unix millisecond.
    RetryAt(i64),
    /// Failed, and the retry window is over.
    GiveUp,
}

/// The outbox at a glance (metrics, logs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NotifyBacklog {
    /// Not delivered yet and still being tried.
    pub pending: u64,
    /// Of those, the ones that failed at least once.
    pub retrying: u64,
    /// Given up (kept until pruned).
    pub failed: u64,
}

/// Which rows a resend makes due again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResendFilter {
    /// These event ids, whatever their state.
    Events(Vec<String>),
    /// Every given-up row, of one domain if set.
    Failed { domain: Option<String> },
}

/// The insert-select that queues an event for a domain with a notify config. `$9` adds the
/// NeedStatusNotify condition for status events.
const INSERT_EVENT: &str = "INSERT INTO notify_events (event_id, domain, app, stream, event, url, \
     body, auth_key, status, attempts, next_attempt_at, retry_until, created_at) \
     SELECT $1, $2, $3, $4, $5, c.notify_url, $6, \
     CASE WHEN c.notify_req_auth THEN c.notify_auth_key ELSE '' END, 'pending', 0, $7, $8, $7 \
     FROM notify_configs c WHERE c.domain = $2 AND c.notify_url <> '' \
     AND ($9 = FALSE OR c.need_status_notify = TRUE) \
     ON CONFLICT (event_id) DO NOTHING";
const UPDATE_ATTEMPT: &str = "UPDATE notify_events SET attempts = attempts + 1, \
     last_attempt_at = $2, last_headers = $3, last_response = $4, status = $5, \
     next_attempt_at = $6 WHERE event_id = $1";
const SELECT_NEXT_DUE: &str =
    "SELECT MIN(next_attempt_at) FROM notify_events WHERE status = 'pending'";
const SELECT_BACKLOG: &str = "SELECT \
     COALESCE(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0), \
     COALESCE(SUM(CASE WHEN status = 'pending' AND attempts > 0 THEN 1 ELSE 0 END), 0), \
     COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) \
     FROM notify_events WHERE status <> 'success'";
const DELETE_FINISHED_BEFORE: &str =
    "DELETE FROM notify_events WHERE status <> 'pending' AND created_at < $1";
const SELECT_EVENT_STATUS: &str = "SELECT status, attempts FROM notify_events WHERE event_id = $1";

impl Catalog {
    /// Queues a status event if the domain's notify config wants status events. Returns
    /// whether it was queued.
    pub async fn enqueue_status_event(&self, event: &NewNotifyEvent) -> Result<bool> {
        let queued = on_pool!(self, |pool| bind_event(
            sqlx::query(INSERT_EVENT),
            event,
            true
        )
        .execute(pool)
        .await
        .map(|r| r.rows_affected() == 1))
        .map_err(|e| CatalogError::from_sqlx("enqueue status event", e))?;
        Ok(queued)
    }

    /// Claims up to `limit` due callbacks (due at `now`) until `lease_until` (Unix
    /// milliseconds), so that no domain has more than `per_domain` in flight counting the
    /// `in_flight` attempts the caller has already (domain, count).
    pub async fn claim_notify_events(
        &self,
        now: i64,
        lease_until: i64,
        limit: u32,
        per_domain: u32,
        in_flight: &[(String, u32)],
    ) -> Result<Vec<NotifyEventRow>> {
        if limit == 0 || per_domain == 0 {
            return Ok(Vec::new());
        }
        let rows = on_pool!(self, |pool| {
            let mut q = QueryBuilder::new("UPDATE notify_events SET next_attempt_at = ");
            q.push_bind(lease_until);
            q.push(
                " WHERE event_id IN (SELECT event_id FROM (SELECT event_id, domain, next_attempt_at, \
                 ROW_NUMBER() OVER (PARTITION BY domain ORDER BY next_attempt_at, event_id) AS n \
                 FROM notify_events WHERE status = 'pending' AND next_attempt_at <= ",
            );
            q.push_bind(now);
            let busy: Vec<&String> = in_flight
                .iter()
                .filter(|(_, n)| *n >= per_domain)
                .map(|(d, _)| d)
                .collect();
            if !busy.is_empty() {
                q.push(" AND domain NOT IN (");
                let mut list = q.separated(", ");
                for domain in busy {
                    list.push_bind(domain);
                }
                q.push(")");
            }
            q.push(") due WHERE n <= ");
            let partly: Vec<&(String, u32)> = in_flight
                .iter()
                .filter(|(_, n)| *n > 0 && *n < per_domain)
                .collect();
            if partly.is_empty() {
                q.push_bind(i64::from(per_domain));
            } else {
                q.push("CASE domain");
                for (domain, n) in partly {
                    q.push(" WHEN ");
                    q.push_bind(domain);
                    q.push(" THEN ");
                    q.push_bind(i64::from(per_domain - n));
                }
                q.push(" ELSE ");
                q.push_bind(i64::from(per_domain));
                q.push(" END");
            }
            q.push(" ORDER BY next_attempt_at, event_id LIMIT ");
            q.push_bind(i64::from(limit));
            // Re-checked on the row being updated: a row another node claimed meanwhile has
            // moved on and is skipped.
            q.push(") AND status = 'pending' AND next_attempt_at <= ");
            q.push_bind(now);
            q.push(
                " RETURNING event_id, domain, app, stream, event, url, body, auth_key, \
                 attempts, retry_until, created_at",
            );
            q.build_query_as::<NotifyEventRow>()
                .persistent(false)
                .fetch_all(pool)
                .await
        })
        .map_err(|e| CatalogError::from_sqlx("claim notify events", e))?;
        Ok(rows)
    }

    /// Records an attempt's result.
    pub async fn finish_notify_attempt(
        &self,
        event_id: &str,
        result: &AttemptResult,
    ) -> Result<()> {
        let (status, next) = match result.outcome {
            AttemptOutcome::Delivered => (STATUS_SUCCESS, result.at),
            AttemptOutcome::RetryAt(at) => (STATUS_PENDING, at),
            AttemptOutcome::GiveUp => (STATUS_FAILED, result.at),
        };
        on_pool!(self, |pool| sqlx::query(UPDATE_ATTEMPT)
            .bind(event_id)
            .bind(result.at)
            .bind(&result.headers)
            .bind(&result.response)
            .bind(status)
            .bind(next)
            .execute(pool)
            .await
            .map(|_| ()))
        .map_err(|e| CatalogError::from_sqlx("finish notify attempt", e))?;
        Ok(())
    }

    /// When the next pending callback is due (Unix milliseconds), if any is pending.
    pub async fn next_notify_due(&self) -> Result<Option<i64>> {
        on_pool!(self, |pool| sqlx::query_scalar::<_, Option<i64>>(
            SELECT_NEXT_DUE
        )
        .fetch_one(pool)
        .await)
        .map_err(|e| CatalogError::from_sqlx("next notify due", e))
    }

    pub async fn notify_backlog(&self) -> Result<NotifyBacklog> {
        let (pending, retrying, failed) =
            on_pool!(self, |pool| sqlx::query_as::<_, (i64, i64, i64)>(
                SELECT_BACKLOG
            )
            .fetch_one(pool)
            .await)
            .map_err(|e| CatalogError::from_sqlx("notify backlog", e))?;
        let count = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(NotifyBacklog {
            pending: count(pending),
            retrying: count(retrying),
            failed: count(failed),
        })
    }

    /// `(status, attempts)` of one event (tests, the CLI).
    pub async fn notify_event_status(&self, event_id: &str) -> Result<Option<(String, i32)>> {
        on_pool!(self, |pool| sqlx::query_as::<_, (String, i32)>(
            SELECT_EVENT_STATUS
        )
        .bind(event_id)
        .fetch_optional(pool)
        .await)
        .map_err(|e| CatalogError::from_sqlx("notify event status", e))
    }

    /// Makes the chosen rows due now, with a fresh retry window until `retry_until` and the
    /// quick retries again. Returns how many rows it touched.
    pub async fn resend_notify_events(
        &self,
        filter: &ResendFilter,
        retry_until: i64,
    ) -> Result<u64> {
        let now = now_ms();
        let affected = on_pool!(self, |pool| {
            let mut q = QueryBuilder::new(
                "UPDATE notify_events SET status = 'pending', attempts = 0, next_attempt_at = ",
            );
            q.push_bind(now);
            q.push(", retry_until = ");
            q.push_bind(retry_until);
            match filter {
                ResendFilter::Events(ids) if ids.is_empty() => return Ok(0),
                ResendFilter::Events(ids) => {
                    q.push(" WHERE event_id IN (");
                    let mut list = q.separated(", ");
                    for id in ids {
                        list.push_bind(id);
                    }
                    q.push(")");
                }
                ResendFilter::Failed { domain } => {
                    q.push(" WHERE status = 'failed'");
                    if let Some(domain) = domain {
                        q.push(" AND domain = ");
                        q.push_bind(domain.to_ascii_lowercase());
                    }
                }
            }
            q.build()
                .persistent(false)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(|e| CatalogError::from_sqlx("resend notify events", e))?;
        Ok(affected)
    }

    /// Deletes delivered and given-up rows created before `before` (Unix milliseconds).
    pub async fn prune_notify_events(&self, before: i64) -> Result<u64> {
        on_pool!(self, |pool| sqlx::query(DELETE_FINISHED_BEFORE)
            .bind(before)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| CatalogError::from_sqlx("prune notify events", e))
    }
}

/// Binds [`INSERT_EVENT`]'s parameters.
pub(crate) fn bind_event<'q, DB: sqlx::Database>(
    query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>,
    e: &'q NewNotifyEvent,
    status_only: bool,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>
where
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    bool: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    query
        .bind(&e.event_id)
        .bind(e.domain.to_ascii_lowercase())
        .bind(&e.app)
        .bind(&e.stream)
        .bind(&e.event)
        .bind(&e.body)
        .bind(e.created_at)
        .bind(e.retry_until)
        .bind(status_only)
}

pub(crate) const INSERT_EVENT_SQL: &str = INSERT_EVENT;
