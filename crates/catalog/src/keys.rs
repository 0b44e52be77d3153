//! Access keys: random ids and secrets, stored in plaintext because HMAC needs them.

use rand::Rng;
use rand::distr::Alphanumeric;

use crate::error::{CatalogError, Result};
use crate::{AccessKey, Catalog, now_ms};

/// Alibaba access key ids start with `LTAI`; SDKs and users recognise the shape.
const KEY_ID_PREFIX: &str = "LTAI";
/// Random alphanumerics after the prefix (about 119 bits).
const KEY_ID_RANDOM_LEN: usize = 20;
/// Length of a generated secret (about 178 bits).
const KEY_SECRET_LEN: usize = 30;
/// Tries for a free id; a collision of 20 random alphanumerics is practically impossible.
const CREATE_KEY_ATTEMPTS: usize = 3;

const INSERT_KEY: &str =
    "INSERT INTO access_keys (id, secret, enabled, created_at) VALUES ($1, $2, $3, $4)";
const SELECT_KEY: &str = "SELECT id, secret, enabled, created_at FROM access_keys WHERE id = $1";
const SELECT_KEYS: &str =
    "SELECT id, secret, enabled, created_at FROM access_keys ORDER BY created_at, id";
const UPDATE_KEY_ENABLED: &str = "UPDATE access_keys SET enabled = $2 WHERE id = $1";

#[derive(sqlx::FromRow)]
struct KeyRecord {
    id: String,
    secret: String,
    enabled: bool,
    created_at: i64,
}

impl From<KeyRecord> for AccessKey {
    fn from(r: KeyRecord) -> Self {
        Self {
            id: r.id,
            secret: r.secret,
            enabled: r.enabled,
            created_at: r.created_at,
        }
    }
}

/// `len` random ASCII letters and digits from the thread-local CSPRNG.
fn random_alphanumeric(len: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

impl Catalog {
    /// Creates a key with a random id (`LTAI` + 20 alphanumerics) and secret (30 alphanumerics).
    pub async fn create_key(&self) -> Result<AccessKey> {
        for _ in 0..CREATE_KEY_ATTEMPTS {
            let id = format!("{KEY_ID_PREFIX}{}", random_alphanumeric(KEY_ID_RANDOM_LEN));
            let secret = random_alphanumeric(KEY_SECRET_LEN);
            match self.insert_key(&id, &secret).await {
                Err(CatalogError::AlreadyExists) => continue,
                other => return other,
            }
        }
        Err(CatalogError::Database(
            "create access key: no free id found".into(),
        ))
    }

    /// Stores a given key (`AlreadyExists` if the id is taken). New keys are enabled.
    pub async fn insert_key(&self, id: &str, secret: &str) -> Result<AccessKey> {
        let key = AccessKey {
            id: id.to_owned(),
            secret: secret.to_owned(),
            enabled: true,
            created_at: now_ms(),
        };
        on_pool!(self, |pool| sqlx::query(INSERT_KEY)
            .bind(id)
            .bind(secret)
            .bind(key.enabled)
            .bind(key.created_at)
            .execute(pool)
            .await
            .map(|_| ()))
        .map_err(|e| CatalogError::from_sqlx("insert access key", e))?;
        Ok(key)
    }

    pub async fn key(&self, id: &str) -> Result<Option<AccessKey>> {
        let record = on_pool!(self, |pool| sqlx::query_as::<_, KeyRecord>(SELECT_KEY)
            .bind(id)
            .fetch_optional(pool)
            .await)
        .map_err(|e| CatalogError::from_sqlx("select access key", e))?;
        Ok(record.map(AccessKey::from))
    }

    /// Every key, oldest first.
    pub async fn keys(&self) -> Result<Vec<AccessKey>> {
        let records = on_pool!(self, |pool| sqlx::query_as::<_, KeyRecord>(SELECT_KEYS)
            .fetch_all(pool)
            .await)
        .map_err(|e| CatalogError::from_sqlx("select access keys", e))?;
        Ok(records.into_iter().map(AccessKey::from).collect())
    }

    /// Returns false if there is no such key.
    pub async fn set_key_enabled(&self, id: &str, enabled: bool) -> Result<bool> {
        let affected = on_pool!(self, |pool| sqlx::query(UPDATE_KEY_ENABLED)
            .bind(id)
            .bind(enabled)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| CatalogError::from_sqlx("update access key", e))?;
        Ok(affected > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_alphanumeric_has_the_length_and_alphabet() {
        let s = random_alphanumeric(KEY_SECRET_LEN);
        assert_eq!(s.len(), KEY_SECRET_LEN);
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(s, random_alphanumeric(KEY_SECRET_LEN));
    }
}
