//! Pull configs: triggered ("lazy") ones — which origin a play of a stream nobody publishes
//! pulls — and scheduled ones — a source pulled and recorded during a time window.

use crate::error::{CatalogError, Result};
use crate::{Catalog, now_ms};

/// The app name that makes a config apply to every app of its domain (API.md).
pub const ALL_APPS: &str = "ali_all_app";

/// A triggered-pull config.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct LazyPullConfig {
    /// Lowercase.
    pub domain: String,
    /// An app, or [`ALL_APPS`].
    pub app: String,
    /// Origins, `host[:port]`, separated by `;`.
    pub pull_domain: String,
    /// The origin's app; empty for the played app.
    pub pull_app: String,
    /// `rtmp` or `httpflv`.
    pub pull_protocol: String,
    /// `yes` or `no` (kept and shown; liverec does not transcode).
    pub transcode_lazy: String,
    /// Unix milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
}

macro_rules! select_configs {
    ($where:literal) => {
        concat!(
            "SELECT domain, app, pull_domain, pull_app, pull_protocol, transcode_lazy, \
             created_at, updated_at FROM lazy_pull_configs WHERE ",
            $where
        )
    };
}
const SELECT_DOMAIN: &str =
    select_configs!("domain = $1 AND ($2 IS NULL OR app = $2) ORDER BY app");
const SELECT_FOR_APP: &str = select_configs!(
    "domain = $1 AND (app = $2 OR app = $3) ORDER BY CASE WHEN app = $2 THEN 0 ELSE 1 END LIMIT 1"
);
const UPSERT: &str = "INSERT INTO lazy_pull_configs (domain, app, pull_domain, pull_app, \
     pull_protocol, transcode_lazy, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
     ON CONFLICT (domain, app) DO UPDATE SET pull_domain = excluded.pull_domain, \
     pull_app = excluded.pull_app, pull_protocol = excluded.pull_protocol, \
     transcode_lazy = excluded.transcode_lazy, updated_at = excluded.updated_at";

impl Catalog {
    /// Sets the domain's config for `app` (a new one, or replacing the one there).
    pub async fn set_lazy_pull_config(&self, config: &LazyPullConfig) -> Result<()> {
        let now = now_ms();
        on_pool!(self, |pool| sqlx::query(UPSERT)
            .bind(&config.domain)
            .bind(&config.app)
            .bind(&config.pull_domain)
            .bind(&config.pull_app)
            .bind(&config.pull_protocol)
            .bind(&config.transcode_lazy)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ()))
        .map_err(|e| CatalogError::from_sqlx("set lazy pull config", e))
    }

    /// The domain's configs (only `app`'s when given), by app.
    pub async fn lazy_pull_configs(
        &self,
        domain: &str,
        app: Option<&str>,
    ) -> Result<Vec<LazyPullConfig>> {
        on_pool!(self, |pool| sqlx::query_as::<_, LazyPullConfig>(
            SELECT_DOMAIN
        )
        .bind(domain)
        .bind(app)
        .fetch_all(pool)
        .await)
        .map_err(|e| CatalogError::from_sqlx("select lazy pull configs", e))
    }

    /// The config a play of `domain/app/…` pulls by: the app's own, else the domain's
    /// [`ALL_APPS`] one.
    pub async fn lazy_pull_for(&self, domain: &str, app: &str) -> Result<Option<LazyPullConfig>> {
        on_pool!(self, |pool| sqlx::query_as::<_, LazyPullConfig>(
            SELECT_FOR_APP
        )
        .bind(domain)
        .bind(app)
        .bind(ALL_APPS)
        .fetch_optional(pool)
        .await)
        .map_err(|e| CatalogError::from_sqlx("select lazy pull config", e))
    }

    /// Deletes the domain's config for `app`; whether there was one.
    pub async fn delete_lazy_pull_config(&self, domain: &str, app: &str) -> Result<bool> {
        on_pool!(self, |pool| sqlx::query(
            "DELETE FROM lazy_pull_configs WHERE domain = $1 AND app = $2"
        )
        .bind(domain)
        .bind(app)
        .execute(pool)
        .await
        .map(|r| r.rows_affected() > 0))
        .map_err(|e| CatalogError::from_sqlx("delete lazy pull config", e))
    }
}

/// A scheduled pull: the source is pulled and recorded during [`start_at`, `end_at`).
///
/// [`start_at`]: PullConfig::start_at
/// [`end_at`]: PullConfig::end_at
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct PullConfig {
    pub domain: String,
    pub app: String,
    pub stream: String,
    /// Source URLs separated by `;`.
    pub source_url: String,
    /// Unix milliseconds.
    pub start_at: i64,
    pub end_at: i64,
    /// The source pulled now, empty when none.
    pub source_using: String,
    pub created_at: i64,
    pub updated_at: i64,
}

macro_rules! select_pulls {
    ($where:literal) => {
        concat!(
            "SELECT domain, app, stream, source_url, start_at, end_at, source_using, created_at, \
             updated_at FROM pull_configs WHERE ",
            $where
        )
    };
}
const INSERT_PULL: &str = "INSERT INTO pull_configs (domain, app, stream, source_url, start_at, \
     end_at, source_using, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, '', $7, $7) \
     ON CONFLICT (domain, app, stream) DO NOTHING";
const UPDATE_PULL: &str = "UPDATE pull_configs SET source_url = $4, start_at = $5, end_at = $6, \
     updated_at = $7 WHERE domain = $1 AND app = $2 AND stream = $3";

impl Catalog {
    /// Adds a scheduled pull; `false` if the stream has one already.
    pub async fn add_pull_config(&self, config: &PullConfig) -> Result<bool> {
        self.write_pull_config(INSERT_PULL, config, "add pull config")
            .await
    }

    /// Changes a scheduled pull's source and window; `false` if the stream has none.
    pub async fn update_pull_config(&self, config: &PullConfig) -> Result<bool> {
        self.write_pull_config(UPDATE_PULL, config, "update pull config")
            .await
    }

    async fn write_pull_config(
        &self,
        sql: &'static str,
        config: &PullConfig,
        what: &'static str,
    ) -> Result<bool> {
        let now = now_ms();
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(&config.domain)
            .bind(&config.app)
            .bind(&config.stream)
            .bind(&config.source_url)
            .bind(config.start_at)
            .bind(config.end_at)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected() > 0))
        .map_err(|e| CatalogError::from_sqlx(what, e))
    }

    /// The domain's scheduled pulls, by app and stream.
    pub async fn pull_configs(&self, domain: &str) -> Result<Vec<PullConfig>> {
        on_pool!(self, |pool| sqlx::query_as::<_, PullConfig>(select_pulls!(
            "domain = $1 ORDER BY app, stream"
        ))
        .bind(domain)
        .fetch_all(pool)
        .await)
        .map_err(|e| CatalogError::from_sqlx("select pull configs", e))
    }

    /// Scheduled pulls whose window holds `now_ms`.
    pub async fn active_pull_configs(&self, now_ms: i64) -> Result<Vec<PullConfig>> {
        on_pool!(self, |pool| sqlx::query_as::<_, PullConfig>(select_pulls!(
            "start_at <= $1 AND end_at > $1 ORDER BY domain, app, stream"
        ))
        .bind(now_ms)
        .fetch_all(pool)
        .await)
        .map_err(|e| CatalogError::from_sqlx("select active pull configs", e))
    }

    /// Notes the source a scheduled pull uses now (`""`: none).
    pub async fn set_pull_source_using(
        &self,
        domain: &str,
        app: &str,
        stream: &str,
        source: &str,
    ) -> Result<()> {
        on_pool!(self, |pool| sqlx::query(
            "UPDATE pull_configs SET source_using = $4 WHERE domain = $1 AND app = $2 AND stream = $3"
        )
        .bind(domain)
        .bind(app)
        .bind(stream)
        .bind(source)
        .execute(pool)
        .await
        .map(|_| ()))
        .map_err(|e| CatalogError::from_sqlx("note pull source", e))
    }

    /// Deletes a scheduled pull; whether there was one.
    pub async fn delete_pull_config(&self, domain: &str, app: &str, stream: &str) -> Result<bool> {
        on_pool!(self, |pool| sqlx::query(
            "DELETE FROM pull_configs WHERE domain = $1 AND app = $2 AND stream = $3"
        )
        .bind(domain)
        .bind(app)
        .bind(stream)
        .execute(pool)
        .await
        .map(|r| r.rows_affected() > 0))
        .map_err(|e| CatalogError::from_sqlx("delete pull config", e))
    }
}
