//! The catalogs every test runs against: in-memory SQLite, a SQLite file in a temp dir, and
//! PostgreSQL when `LIVEREC_TEST_PG` holds a server URL (each test gets its own database there,
//! so tests stay independent and parallel).

#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use liverec_catalog::Catalog;
use sqlx::Connection;
use tempfile::TempDir;

/// Env var with an admin URL of a PostgreSQL server for the test suite.
pub const PG_ENV: &str = "LIVEREC_TEST_PG";

/// One catalog under test, with what keeps it alive.
pub struct Fixture {
    pub label: &'static str,
    pub catalog: Catalog,
    /// The SQLite file's directory (file backend only).
    pub dir: Option<TempDir>,
    /// The per-test PostgreSQL database (dropped by `cleanup`).
    pg_database: Option<(String, String)>,
    /// The database's URL for a second connection (file and PostgreSQL backends).
    url: Option<String>,
}

impl Fixture {
    /// Runs `sql` over a second connection to the catalog's database, for rows no catalog
    /// function writes yet. Returns false, running nothing, on the in-memory backend, which no
    /// other connection can reach (the file backend covers SQLite).
    pub async fn execute_raw(&self, sql: &str) -> bool {
        let Some(url) = &self.url else {
            return false;
        };
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        if url.starts_with("sqlite:") {
            let mut conn = sqlx::SqliteConnection::connect(url)
                .await
                .expect("second sqlite connection");
            sqlx::raw_sql(sql)
                .execute(&mut conn)
                .await
                .expect("raw sql");
            conn.close().await.expect("close");
        } else {
            let mut conn = sqlx::PgConnection::connect(url)
                .await
                .expect("second postgres connection");
            sqlx::raw_sql(sql)
                .execute(&mut conn)
                .await
                .expect("raw sql");
            conn.close().await.expect("close");
        }
        true
    }

    /// Closes the catalog and drops its PostgreSQL database (best effort: a failed test leaves
    /// it behind, which a throwaway cluster does not mind).
    pub async fn cleanup(self) {
        self.catalog.close().await;
        if let Some((admin_url, database)) = self.pg_database
            && let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await
        {
            let drop = format!("DROP DATABASE IF EXISTS \"{database}\"");
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
                .execute(&mut conn)
                .await;
            let _ = conn.close().await;
        }
    }
}

/// Every backend to test: memory and file always, PostgreSQL when `LIVEREC_TEST_PG` is set.
pub async fn catalogs() -> Vec<Fixture> {
    let mut fixtures = vec![memory().await, file().await];
    if let Some(pg) = postgres().await {
        fixtures.push(pg);
    }
    fixtures
}

pub async fn memory() -> Fixture {
    Fixture {
        label: "sqlite-memory",
        catalog: Catalog::open_in_memory()
            .await
            .expect("open in-memory catalog"),
        dir: None,
        pg_database: None,
        url: None,
    }
}

pub async fn file() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/nested/dir/liverec.db", dir.path().display());
    Fixture {
        label: "sqlite-file",
        catalog: Catalog::open(&url).await.expect("open file catalog"),
        dir: Some(dir),
        pg_database: None,
        url: Some(url),
    }
}

/// A fresh database on the `LIVEREC_TEST_PG` server, or None when the variable is unset.
pub async fn postgres() -> Option<Fixture> {
    let admin_url = std::env::var(PG_ENV).ok().filter(|u| !u.is_empty())?;
    let database = unique_database_name();
    let mut conn = sqlx::PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("{PG_ENV} is set but the server is unreachable: {e}"));
    let create = format!("CREATE DATABASE \"{database}\"");
    sqlx::raw_sql(sqlx::AssertSqlSafe(create))
        .execute(&mut conn)
        .await
        .expect("create test database");
    conn.close().await.expect("close admin connection");
    let url = with_database(&admin_url, &database);
    let catalog = Catalog::open(&url).await.expect("open postgres catalog");
    Some(Fixture {
        label: "postgres",
        catalog,
        dir: None,
        pg_database: Some((admin_url, database)),
        url: Some(url),
    })
}

fn unique_database_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "liverec_test_{}_{}_{}",
        std::process::id(),
        nanos,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// `url` with its database (the path) replaced, keeping any `?query`.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{database}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}
