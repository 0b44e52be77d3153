//! Domain functions (BatchSetLiveDomainConfigs & co.): one row per domain and function name,
//! its arguments kept as the JSON array the API was given.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{CatalogError, Result};
use crate::{Catalog, now_ms};

/// A domain function and its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainConfigRow {
    /// Lowercase.
    pub domain: String,
    pub function_name: String,
    /// Alibaba's ConfigId: kept when the function is set again.
    pub config_id: i64,
    /// A JSON array of `{"argName", "argValue"}`.
    pub args: String,
    /// Unix milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
}

const UPSERT: &str = "INSERT INTO domain_configs (domain, function_name, config_id, args, \
     created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5) \
     ON CONFLICT (domain, function_name) DO UPDATE SET args = excluded.args, \
     updated_at = excluded.updated_at";
const DELETE: &str = "DELETE FROM domain_configs WHERE domain = $1 AND function_name = $2";
const SELECT: &str = "SELECT domain, function_name, config_id, args, created_at, updated_at \
     FROM domain_configs WHERE domain = $1 ORDER BY function_name";
const SELECT_FUNCTION: &str = "SELECT domain, function_name, config_id, args, created_at, \
     updated_at FROM domain_configs WHERE domain = $1 AND function_name = $2";

#[derive(sqlx::FromRow)]
struct Record {
    domain: String,
    function_name: String,
    config_id: i64,
    args: String,
    created_at: i64,
    updated_at: i64,
}

impl From<Record> for DomainConfigRow {
    fn from(r: Record) -> Self {
        Self {
            domain: r.domain,
            function_name: r.function_name,
            config_id: r.config_id,
            args: r.args,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A new ConfigId: milliseconds times 1000 plus a counter, unique within a server and across
/// restarts.
fn new_config_id() -> i64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed) % 1000;
    now_ms().saturating_mul(1000).saturating_add(n as i64)
}

impl Catalog {
    /// Sets `function_name` with `args` on each domain: new rows get a ConfigId, existing ones
    /// keep theirs and take the new arguments.
    pub async fn set_domain_configs(
        &self,
        domains: &[String],
        function_name: &str,
        args: &str,
    ) -> Result<()> {
        let now = now_ms();
        for domain in domains {
            on_pool!(self, |pool| sqlx::query(UPSERT)
                .bind(domain)
                .bind(function_name)
                .bind(new_config_id())
                .bind(args)
                .bind(now)
                .execute(pool)
                .await
                .map(|_| ()))
            .map_err(|e| CatalogError::from_sqlx("set domain config", e))?;
        }
        Ok(())
    }

    /// Removes each of `function_names` from each domain; returns how many rows went.
    pub async fn delete_domain_configs(
        &self,
        domains: &[String],
        function_names: &[String],
    ) -> Result<u64> {
        let mut deleted = 0;
        for domain in domains {
            for function_name in function_names {
                deleted += on_pool!(self, |pool| sqlx::query(DELETE)
                    .bind(domain)
                    .bind(function_name)
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected()))
                .map_err(|e| CatalogError::from_sqlx("delete domain config", e))?;
            }
        }
        Ok(deleted)
    }

    /// The domain's functions, by name.
    pub async fn domain_configs(&self, domain: &str) -> Result<Vec<DomainConfigRow>> {
        let records = on_pool!(self, |pool| sqlx::query_as::<_, Record>(SELECT)
            .bind(domain)
            .fetch_all(pool)
            .await)
        .map_err(|e| CatalogError::from_sqlx("select domain configs", e))?;
        Ok(records.into_iter().map(DomainConfigRow::from).collect())
    }

    /// One function of the domain, if set.
    pub async fn domain_config(
        &self,
        domain: &str,
        function_name: &str,
    ) -> Result<Option<DomainConfigRow>> {
        let record = on_pool!(self, |pool| sqlx::query_as::<_, Record>(SELECT_FUNCTION)
            .bind(domain)
            .bind(function_name)
            .fetch_optional(pool)
            .await)
        .map_err(|e| CatalogError::from_sqlx("select domain config", e))?;
        Ok(record.map(DomainConfigRow::from))
    }
}
