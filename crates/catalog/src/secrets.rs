//! Secrets the server makes for itself (e.g. the key that signs VOD URLs), kept in the
//! database so they survive restarts and every node sharing it uses the same one.

use rand::Rng;

use crate::error::{CatalogError, Result};
use crate::{Catalog, now_ms};

/// Random bytes in a generated secret (hex-encoded: twice as many characters).
const SECRET_BYTES: usize = 32;

/// The first writer wins; everyone then reads the winner's value.
const INSERT_SECRET: &str = "INSERT INTO server_secrets (name, value, created_at) \
     VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING";
const SELECT_SECRET: &str = "SELECT value FROM server_secrets WHERE name = $1";

fn random_hex(bytes: usize) -> String {
    let mut rng = rand::rng();
    (0..bytes)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

impl Catalog {
    /// The server secret `name`, created (32 random bytes, hex) on first use. Concurrent
    /// callers, on any node, get the same value.
    pub async fn server_secret(&self, name: &str) -> Result<String> {
        let candidate = random_hex(SECRET_BYTES);
        let created_at = now_ms();
        let value: Option<String> = on_pool!(self, |pool| async {
            sqlx::query(INSERT_SECRET)
                .bind(name)
                .bind(&candidate)
                .bind(created_at)
                .execute(pool)
                .await?;
            sqlx::query_scalar(SELECT_SECRET)
                .bind(name)
                .fetch_optional(pool)
                .await
        }
        .await)
        .map_err(|e| CatalogError::from_sqlx("server secret", e))?;
        // Only a concurrent delete could remove it, and nothing deletes secrets.
        value.ok_or_else(|| CatalogError::corrupt("server secret", "missing after insert"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_hex_is_lowercase_hex_of_the_length() {
        let s = random_hex(SECRET_BYTES);
        assert_eq!(s.len(), 2 * SECRET_BYTES);
        assert!(
            s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_ne!(s, random_hex(SECRET_BYTES));
    }
}
