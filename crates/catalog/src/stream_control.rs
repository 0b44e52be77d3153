//! ForbidLiveStream's block list and the publish history (DescribeLiveStreamsPublishList).

use crate::error::{CatalogError, Result};
use crate::{Catalog, Page, now_ms};

/// Publishes of the domain active in [$2, $3) (an open one is active until now); app and stream
/// filters are NULL when absent, `$6` selects substring matching.
macro_rules! publish_filter {
    () => {
        "WHERE domain = $1 AND started_at < $3 AND (stopped_at IS NULL OR stopped_at >= $2) \
         AND ($4 IS NULL OR ($6 AND lower(app) LIKE $4 ESCAPE '\\') OR (NOT $6 AND app = $4)) \
         AND ($5 IS NULL OR ($6 AND lower(stream) LIKE $5 ESCAPE '\\') OR (NOT $6 AND stream = $5))"
    };
}
const PUBLISH_COUNT: &str = concat!("SELECT COUNT(*) FROM publish_history ", publish_filter!());
macro_rules! publish_select {
    ($order:literal) => {
        concat!(
            "SELECT publish_id, node, domain, app, stream, client_addr, publish_url, started_at, \
             stopped_at FROM publish_history ",
            publish_filter!(),
            " ORDER BY ",
            $order,
            " LIMIT $7 OFFSET $8"
        )
    };
}

/// What [`Catalog::forbid_stream`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForbidOutcome {
    Forbidden,
    /// The stream is forbidden already (its ResumeTime is unchanged).
    AlreadyForbidden,
    /// The block list holds `limit` streams already.
    LimitReached,
}

/// A stream on the block list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForbiddenStream {
    pub domain: String,
    pub app: String,
    pub stream: String,
    /// Unix milliseconds.
    pub resume_at: i64,
    pub created_at: i64,
}

/// One publish, for the publish history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishRow {
    pub publish_id: String,
    pub node: String,
    pub domain: String,
    pub app: String,
    pub stream: String,
    pub client_addr: String,
    pub publish_url: String,
    /// Unix milliseconds.
    pub started_at: i64,
    /// `None` while the publish goes on.
    pub stopped_at: Option<i64>,
}

/// Sort orders of DescribeLiveStreamsPublishList.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublishOrder {
    PublishTimeAsc,
    PublishTimeDesc,
    StreamNameAsc,
    StreamNameDesc,
}

impl PublishOrder {
    /// The page query in this order. Every order ends on the unique id, so pages never
    /// overlap or skip.
    fn select(self) -> &'static str {
        match self {
            Self::PublishTimeAsc => publish_select!("started_at ASC, publish_id ASC"),
            Self::PublishTimeDesc => publish_select!("started_at DESC, publish_id DESC"),
            Self::StreamNameAsc => publish_select!("stream ASC, started_at ASC, publish_id ASC"),
            Self::StreamNameDesc => {
                publish_select!("stream DESC, started_at DESC, publish_id DESC")
            }
        }
    }
}

/// Which publishes to list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishQuery {
    /// Lowercase.
    pub domain: String,
    pub app: Option<String>,
    pub stream: Option<String>,
    /// Substring match (ASCII case-insensitive) when true, exact match otherwise.
    pub fuzzy: bool,
    /// Publishes active at some moment of [start, end), Unix milliseconds.
    pub start: i64,
    pub end: i64,
    pub order: PublishOrder,
    /// From 1.
    pub page_num: u32,
    pub page_size: u32,
}

/// The insert happens only while fewer than `$6` streams are forbidden, and replaces a row
/// only when that row has expired.
const FORBID: &str = "INSERT INTO forbidden_streams (domain, app, stream, resume_at, created_at) \
     SELECT $1, $2, $3, $4, $5 \
     WHERE (SELECT COUNT(*) FROM forbidden_streams WHERE resume_at > $5) < $6 \
     ON CONFLICT (domain, app, stream) DO UPDATE SET resume_at = excluded.resume_at, \
     created_at = excluded.created_at WHERE forbidden_streams.resume_at <= excluded.created_at";
const DELETE_EXPIRED: &str = "DELETE FROM forbidden_streams WHERE resume_at <= $1";
const RESUME: &str = "DELETE FROM forbidden_streams WHERE domain = $1 AND app = $2 AND stream = $3";
const FORBIDDEN_UNTIL: &str = "SELECT resume_at FROM forbidden_streams \
     WHERE domain = $1 AND app = $2 AND stream = $3 AND resume_at > $4";
const FORBIDDEN_PAGE: &str = "SELECT domain, app, stream, resume_at, created_at \
     FROM forbidden_streams WHERE domain = $1 AND resume_at > $2 \
     ORDER BY created_at ASC, app ASC, stream ASC LIMIT $3 OFFSET $4";
const FORBIDDEN_COUNT: &str =
    "SELECT COUNT(*) FROM forbidden_streams WHERE domain = $1 AND resume_at > $2";

const PUBLISH_STARTED: &str = "INSERT INTO publish_history (publish_id, node, domain, app, \
     stream, client_addr, publish_url, started_at, stopped_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)";
const PUBLISH_STOPPED: &str =
    "UPDATE publish_history SET stopped_at = $2 WHERE publish_id = $1 AND stopped_at IS NULL";
const CLOSE_OPEN: &str =
    "UPDATE publish_history SET stopped_at = $2 WHERE node = $1 AND stopped_at IS NULL";
const PRUNE_HISTORY: &str =
    "DELETE FROM publish_history WHERE stopped_at IS NOT NULL AND stopped_at < $1";

#[derive(sqlx::FromRow)]
struct ForbiddenRecord {
    domain: String,
    app: String,
    stream: String,
    resume_at: i64,
    created_at: i64,
}

#[derive(sqlx::FromRow)]
struct PublishRecord {
    publish_id: String,
    node: String,
    domain: String,
    app: String,
    stream: String,
    client_addr: String,
    publish_url: String,
    started_at: i64,
    stopped_at: Option<i64>,
}

/// `%value%` for LIKE, lowercased, with LIKE's special characters escaped.
fn contains_pattern(value: &str) -> String {
    let mut pattern = String::with_capacity(value.len() + 2);
    pattern.push('%');
    for c in value.to_ascii_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

impl Catalog {
    /// Puts the stream on the block list until `resume_at` (Unix ms), unless it is there
    /// already or the list holds `limit` streams. Expired entries are dropped first.
    pub async fn forbid_stream(
        &self,
        domain: &str,
        app: &str,
        stream: &str,
        resume_at: i64,
        limit: u64,
    ) -> Result<ForbidOutcome> {
        let now = now_ms();
        on_pool!(self, |pool| sqlx::query(DELETE_EXPIRED)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ()))
        .map_err(|e| CatalogError::from_sqlx("delete expired forbidden streams", e))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let inserted = on_pool!(self, |pool| sqlx::query(FORBID)
            .bind(domain)
            .bind(app)
            .bind(stream)
            .bind(resume_at)
            .bind(now)
            .bind(limit)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| CatalogError::from_sqlx("forbid stream", e))?;
        if inserted > 0 {
            return Ok(ForbidOutcome::Forbidden);
        }
        Ok(match self.forbidden_until(domain, app, stream).await? {
            Some(_) => ForbidOutcome::AlreadyForbidden,
            None => ForbidOutcome::LimitReached,
        })
    }

    /// Takes the stream off the block list; false when it was not on it.
    pub async fn resume_stream(&self, domain: &str, app: &str, stream: &str) -> Result<bool> {
        let deleted = on_pool!(self, |pool| sqlx::query(RESUME)
            .bind(domain)
            .bind(app)
            .bind(stream)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| CatalogError::from_sqlx("resume stream", e))?;
        Ok(deleted > 0)
    }

    /// When the stream may publish again (Unix ms), if it is forbidden now.
    pub async fn forbidden_until(
        &self,
        domain: &str,
        app: &str,
        stream: &str,
    ) -> Result<Option<i64>> {
        on_pool!(self, |pool| sqlx::query_scalar(FORBIDDEN_UNTIL)
            .bind(domain)
            .bind(app)
            .bind(stream)
            .bind(now_ms())
            .fetch_optional(pool)
            .await)
        .map_err(|e| CatalogError::from_sqlx("select forbidden stream", e))
    }

    /// One page of the domain's forbidden streams, oldest entry first, and how many there are.
    pub async fn forbidden_streams(
        &self,
        domain: &str,
        page_num: u32,
        page_size: u32,
    ) -> Result<(Vec<ForbiddenStream>, u64)> {
        let page = Page {
            num: page_num,
            size: page_size,
            desc: false,
        };
        let now = now_ms();
        let (records, total): (Vec<ForbiddenRecord>, i64) = on_pool!(self, |pool| {
            match sqlx::query_as::<_, ForbiddenRecord>(FORBIDDEN_PAGE)
                .bind(domain)
                .bind(now)
                .bind(page.limit())
                .bind(page.offset())
                .fetch_all(pool)
                .await
            {
                Ok(records) => sqlx::query_scalar(FORBIDDEN_COUNT)
                    .bind(domain)
                    .bind(now)
                    .fetch_one(pool)
                    .await
                    .map(|total| (records, total)),
                Err(e) => Err(e),
            }
        })
        .map_err(|e| CatalogError::from_sqlx("select forbidden streams", e))?;
        let rows = records
            .into_iter()
            .map(|r| ForbiddenStream {
                domain: r.domain,
                app: r.app,
                stream: r.stream,
                resume_at: r.resume_at,
                created_at: r.created_at,
            })
            .collect();
        Ok((rows, u64::try_from(total).unwrap_or(0)))
    }

    /// Notes a publish that started (its `stopped_at` is ignored).
    pub async fn publish_started(&self, row: &PublishRow) -> Result<()> {
        on_pool!(self, |pool| sqlx::query(PUBLISH_STARTED)
            .bind(&row.publish_id)
            .bind(&row.node)
            .bind(&row.domain)
            .bind(&row.app)
            .bind(&row.stream)
            .bind(&row.client_addr)
            .bind(&row.publish_url)
            .bind(row.started_at)
            .execute(pool)
            .await
            .map(|_| ()))
        .map_err(|e| CatalogError::from_sqlx("insert publish", e))
    }

    /// Notes the end of a publish.
    pub async fn publish_stopped(&self, publish_id: &str, at: i64) -> Result<()> {
        on_pool!(self, |pool| sqlx::query(PUBLISH_STOPPED)
            .bind(publish_id)
            .bind(at)
            .execute(pool)
            .await
            .map(|_| ()))
        .map_err(|e| CatalogError::from_sqlx("update publish", e))
    }

    /// Ends the publishes `node` left open (it stopped without noting them: a crash), at `at`;
    /// returns how many.
    pub async fn close_open_publishes(&self, node: &str, at: i64) -> Result<u64> {
        on_pool!(self, |pool| sqlx::query(CLOSE_OPEN)
            .bind(node)
            .bind(at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| CatalogError::from_sqlx("close open publishes", e))
    }

    /// Forgets publishes that stopped before `before` (Unix ms); returns how many.
    pub async fn prune_publish_history(&self, before: i64) -> Result<u64> {
        on_pool!(self, |pool| sqlx::query(PRUNE_HISTORY)
            .bind(before)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| CatalogError::from_sqlx("prune publish history", e))
    }

    /// One page of the publishes matching `query`, and how many match in all.
    pub async fn publish_history(&self, query: &PublishQuery) -> Result<(Vec<PublishRow>, u64)> {
        let q = query;
        let filter = |v: &Option<String>| {
            v.as_deref().map(|v| {
                if q.fuzzy {
                    contains_pattern(v)
                } else {
                    v.to_owned()
                }
            })
        };
        let (app, stream) = (filter(&q.app), filter(&q.stream));
        let page = Page {
            num: q.page_num,
            size: q.page_size,
            desc: false,
        };
        let select = q.order.select();
        let (records, total): (Vec<PublishRecord>, i64) = on_pool!(self, |pool| {
            match sqlx::query_as::<_, PublishRecord>(select)
                .bind(&q.domain)
                .bind(q.start)
                .bind(q.end)
                .bind(app.as_deref())
                .bind(stream.as_deref())
                .bind(q.fuzzy)
                .bind(page.limit())
                .bind(page.offset())
                .fetch_all(pool)
                .await
            {
                Ok(records) => sqlx::query_scalar(PUBLISH_COUNT)
                    .bind(&q.domain)
                    .bind(q.start)
                    .bind(q.end)
                    .bind(app.as_deref())
                    .bind(stream.as_deref())
                    .bind(q.fuzzy)
                    .fetch_one(pool)
                    .await
                    .map(|total| (records, total)),
                Err(e) => Err(e),
            }
        })
        .map_err(|e| CatalogError::from_sqlx("select publish history", e))?;
        let rows = records
            .into_iter()
            .map(|r| PublishRow {
                publish_id: r.publish_id,
                node: r.node,
                domain: r.domain,
                app: r.app,
                stream: r.stream,
                client_addr: r.client_addr,
                publish_url: r.publish_url,
                started_at: r.started_at,
                stopped_at: r.stopped_at,
            })
            .collect();
        Ok((rows, u64::try_from(total).unwrap_or(0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_their_wildcards() {
        assert_eq!(contains_pattern("Cam_1"), "%cam\\_1%");
        assert_eq!(contains_pattern("a%b\\c"), "%a\\%b\\\\c%");
    }
}
