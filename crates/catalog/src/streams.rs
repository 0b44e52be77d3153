//! Streams that have published at least once (CreateLiveStreamRecordIndexFiles tells a stream
//! that never ingested apart from one with nothing recorded in the range).

use crate::Catalog;
use crate::error::{CatalogError, Result};

/// The first publish stays; the last only moves forward (nodes' clocks may differ a little).
const TOUCH_STREAM: &str = "INSERT INTO streams (domain, app, stream, first_publish, \
     last_publish) VALUES ($1, $2, $3, $4, $4) \
     ON CONFLICT (domain, app, stream) DO UPDATE SET last_publish = \
     CASE WHEN excluded.last_publish > streams.last_publish \
     THEN excluded.last_publish ELSE streams.last_publish END";
const COUNT_STREAM: &str =
    "SELECT COUNT(*) FROM streams WHERE domain = $1 AND app = $2 AND stream = $3";

impl Catalog {
    /// Notes a publish of the stream at `at_ms` (Unix ms).
    pub async fn touch_stream(
        &self,
        domain: &str,
        app: &str,
        stream: &str,
        at_ms: i64,
    ) -> Result<()> {
        on_pool!(self, |pool| sqlx::query(TOUCH_STREAM)
            .bind(domain)
            .bind(app)
            .bind(stream)
            .bind(at_ms)
            .execute(pool)
            .await
            .map(|_| ()))
        .map_err(|e| CatalogError::from_sqlx("upsert stream", e))
    }

    /// Whether the stream ever published.
    pub async fn stream_seen(&self, domain: &str, app: &str, stream: &str) -> Result<bool> {
        let count: i64 = on_pool!(self, |pool| sqlx::query_scalar(COUNT_STREAM)
            .bind(domain)
            .bind(app)
            .bind(stream)
            .fetch_one(pool)
            .await)
        .map_err(|e| CatalogError::from_sqlx("select stream", e))?;
        Ok(count > 0)
    }
}
