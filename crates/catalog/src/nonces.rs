//! Signature nonces: a nonce is accepted once per key until it is purged.
//!
//! Every signed request stores its nonce, so this is the catalog's hottest write. Requests
//! that arrive together share one statement (group commit): a single task takes whatever is
//! queued, inserts it with one multi-row `INSERT … ON CONFLICT DO NOTHING RETURNING`, and tells
//! each caller whether its row was the one inserted. The database stays the judge, so nodes
//! sharing a PostgreSQL catalog still see each other's nonces.

use std::collections::HashSet;

use sqlx::QueryBuilder;
use tokio::sync::{mpsc, oneshot};

use crate::Catalog;
use crate::backend::Backend;
use crate::error::{CatalogError, Result};

/// The primary key (key_id, nonce) decides: of two concurrent inserts exactly one adds a row.
const INSERT_NONCE: &str = "INSERT INTO nonces (key_id, nonce, expires_at) VALUES ($1, $2, $3) \
     ON CONFLICT (key_id, nonce) DO NOTHING";
const DELETE_EXPIRED: &str = "DELETE FROM nonces WHERE expires_at < $1";
/// Most nonces in one statement (3 bound values each: far below both databases' limits).
const MAX_BATCH: usize = 256;
/// Requests waiting for the committer; beyond this, callers wait to enqueue (back-pressure).
const QUEUE_DEPTH: usize = 4 * MAX_BATCH;

struct NonceUse {
    key_id: String,
    nonce: String,
    expires_at: i64,
    reply: oneshot::Sender<Result<bool>>,
}

/// The handle of the group-commit task; the task ends when the last handle is dropped.
#[derive(Clone, Debug)]
pub(crate) struct NonceQueue {
    tx: mpsc::Sender<NonceUse>,
}

impl std::fmt::Debug for NonceUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a nonce or key id.
        f.write_str("NonceUse")
    }
}

impl NonceQueue {
    /// Starts the committer on the current tokio runtime.
    pub(crate) fn start(backend: Backend) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(commit_loop(backend, rx));
        Self { tx }
    }
}

async fn commit_loop(backend: Backend, mut rx: mpsc::Receiver<NonceUse>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        commit(&backend, std::mem::take(&mut batch)).await;
    }
}

/// Inserts one batch and answers every caller: true for the first use of a (key, nonce), false
/// for a repeat (in the database already, or earlier in the same batch).
async fn commit(backend: &Backend, batch: Vec<NonceUse>) {
    let mut seen = HashSet::with_capacity(batch.len());
    let mut first = Vec::with_capacity(batch.len());
    for item in batch {
        if seen.insert((item.key_id.clone(), item.nonce.clone())) {
            first.push(item);
        } else {
            let _ = item.reply.send(Ok(false));
        }
    }
    let result = match first.as_slice() {
        [] => return,
        [one] => insert_one(backend, one).await.map(|inserted| {
            let mut set = HashSet::new();
            if inserted {
                set.insert((one.key_id.clone(), one.nonce.clone()));
            }
            set
        }),
        many => insert_many(backend, many).await,
    };
    match result {
        Ok(inserted) => {
            for item in first {
                let fresh = inserted.contains(&(item.key_id, item.nonce));
                let _ = item.reply.send(Ok(fresh));
            }
        }
        Err(err) => {
            for item in first {
                let _ = item.reply.send(Err(err.clone()));
            }
        }
    }
}

async fn insert_one(backend: &Backend, item: &NonceUse) -> Result<bool> {
    let affected = on_backend!(backend, |pool| sqlx::query(INSERT_NONCE)
        .bind(&item.key_id)
        .bind(&item.nonce)
        .bind(item.expires_at)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
    .map_err(|e| CatalogError::from_sqlx("insert nonce", e))?;
    Ok(affected == 1)
}

/// One multi-row statement; its SQL depends on the batch size, so it is not kept in the
/// prepared-statement cache.
async fn insert_many(backend: &Backend, items: &[NonceUse]) -> Result<HashSet<(String, String)>> {
    let rows: Vec<(String, String)> = on_backend!(backend, |pool| {
        let mut query = QueryBuilder::new("INSERT INTO nonces (key_id, nonce, expires_at) ");
        query.push_values(items, |mut row, item| {
            row.push_bind(&item.key_id)
                .push_bind(&item.nonce)
                .push_bind(item.expires_at);
        });
        query.push(" ON CONFLICT (key_id, nonce) DO NOTHING RETURNING key_id, nonce");
        query
            .build_query_as::<(String, String)>()
            .persistent(false)
            .fetch_all(pool)
            .await
    })
    .map_err(|e| CatalogError::from_sqlx("insert nonces", e))?;
    Ok(rows.into_iter().collect())
}

impl Catalog {
    /// Records a signature nonce of `key_id`, kept until `expires_at` (Unix ms). Returns false
    /// if it was already used (and not yet purged). Concurrent calls are committed together.
    pub async fn use_nonce(&self, key_id: &str, nonce: &str, expires_at: i64) -> Result<bool> {
        let (reply, answer) = oneshot::channel();
        let item = NonceUse {
            key_id: key_id.to_owned(),
            nonce: nonce.to_owned(),
            expires_at,
            reply,
        };
        let closed = || CatalogError::Unavailable("nonce committer stopped".into());
        self.nonces.tx.send(item).await.map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// How many callers got `true`, per (key, nonce).
    fn winners(results: &[((String, String), bool)]) -> HashMap<(String, String), usize> {
        let mut count = HashMap::new();
        for (k, ok) in results {
            *count.entry(k.clone()).or_default() += usize::from(*ok);
        }
        count
    }

    /// One batch with repeats inside it and a nonce already stored: each (key, nonce) passes
    /// once, and a nonce of another key is independent.
    #[tokio::test]
    async fn a_batch_lets_each_nonce_through_once() {
        let catalog = Catalog::open_in_memory().await.unwrap();
        assert!(catalog.use_nonce("ak", "stored", 10).await.unwrap());
        let items = [
            ("ak", "a"),
            ("ak", "a"),
            ("ak", "stored"),
            ("other", "a"),
            ("ak", "b"),
        ];
        let mut answers = Vec::new();
        let mut batch = Vec::new();
        for (key, nonce) in items {
            let (reply, answer) = oneshot::channel();
            batch.push(NonceUse {
                key_id: key.into(),
                nonce: nonce.into(),
                expires_at: 10,
                reply,
            });
            answers.push(((key.to_owned(), nonce.to_owned()), answer));
        }
        commit(&catalog.backend, batch).await;
        let mut results = Vec::new();
        for (k, answer) in answers {
            results.push((k, answer.await.unwrap().unwrap()));
        }
        let won = winners(&results);
        assert_eq!(won[&("ak".into(), "a".into())], 1);
        assert_eq!(won[&("other".into(), "a".into())], 1);
        assert_eq!(won[&("ak".into(), "b".into())], 1);
        assert_eq!(won[&("ak".into(), "stored".into())], 0);
        assert!(
            results[0].1 && !results[1].1,
            "the first of two repeats wins"
        );
    }
}
