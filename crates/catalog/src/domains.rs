//! Domains known to the API. Names are stored exactly as given (the API normalises them).

use crate::error::{CatalogError, Result};
use crate::{Catalog, now_ms};

const INSERT_DOMAIN: &str =
    "INSERT INTO domains (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING";
const SELECT_DOMAIN: &str = "SELECT COUNT(*) FROM domains WHERE name = $1";
/// Most domains [`Catalog::domains`] lists.
pub const MAX_LISTED_DOMAINS: i64 = 1000;
const SELECT_DOMAINS: &str = "SELECT name FROM domains ORDER BY name LIMIT $1";

impl Catalog {
    /// Adds `name` unless it is already known (idempotent, safe to race).
    pub async fn ensure_domain(&self, name: &str) -> Result<()> {
        on_pool!(self, |pool| sqlx::query(INSERT_DOMAIN)
            .bind(name)
            .bind(now_ms())
            .execute(pool)
            .await
            .map(|_| ()))
        .map_err(|e| CatalogError::from_sqlx("insert domain", e))
    }

    /// Known domains by name, at most [`MAX_LISTED_DOMAINS`].
    pub async fn domains(&self) -> Result<Vec<String>> {
        on_pool!(self, |pool| sqlx::query_scalar(SELECT_DOMAINS)
            .bind(MAX_LISTED_DOMAINS)
            .fetch_all(pool)
            .await)
        .map_err(|e| CatalogError::from_sqlx("select domains", e))
    }

    pub async fn domain_exists(&self, name: &str) -> Result<bool> {
        let count: i64 = on_pool!(self, |pool| sqlx::query_scalar(SELECT_DOMAIN)
            .bind(name)
            .fetch_one(pool)
            .await)
        .map_err(|e| CatalogError::from_sqlx("select domain", e))?;
        Ok(count > 0)
    }
}
