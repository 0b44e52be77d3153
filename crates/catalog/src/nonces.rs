//! Signature nonces: a nonce is accepted once per key until it is purged.

use crate::Catalog;
use crate::error::{CatalogError, Result};

/// The primary key (key_id, nonce) decides: of two concurrent inserts exactly one adds a row.
const INSERT_NONCE: &str = "INSERT INTO nonces (key_id, nonce, expires_at) VALUES ($1, $2, $3) \
     ON CONFLICT (key_id, nonce) DO NOTHING";
const DELETE_EXPIRED: &str = "DELETE FROM nonces WHERE expires_at < $1";

impl Catalog {
    /// Records a signature nonce of `key_id`, kept until `expires_at` (Unix ms). Returns false
    /// if it was already used (and not yet purged).
    pub async fn use_nonce(&self, key_id: &str, nonce: &str, expires_at: i64) -> Result<bool> {
        let inserted = on_pool!(self, |pool| sqlx::query(INSERT_NONCE)
            .bind(key_id)
            .bind(nonce)
            .bind(expires_at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| CatalogError::from_sqlx("insert nonce", e))?;
        Ok(inserted == 1)
    }

    /// Deletes nonces that expired before `now` (Unix ms); returns how many.
    pub async fn purge_nonces(&self, now: i64) -> Result<u64> {
        on_pool!(self, |pool| sqlx::query(DELETE_EXPIRED)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| CatalogError::from_sqlx("purge nonces", e))
    }
}
