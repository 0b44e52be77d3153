//! Opening catalogs: the SQLite file's mode, directories, WAL, reopening, URL forms, and the
//! test helpers' own PostgreSQL URL handling.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use liverec_catalog::{Catalog, CatalogError};
use sqlx::Connection;

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

#[tokio::test]
async fn the_sqlite_file_and_its_journal_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/liverec.db");
    let catalog = Catalog::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    assert_eq!(catalog.backend_name(), "sqlite");
    assert_eq!(mode(&path), 0o600);
    catalog.insert_key("ak", "very-secret").await.unwrap();
    let wal = path.with_file_name("liverec.db-wal");
    assert!(wal.exists(), "WAL mode keeps a -wal file while open");
    assert_eq!(mode(&wal), 0o600, "the WAL holds the secret too");
    catalog.close().await;
}

#[tokio::test]
async fn the_file_is_in_wal_mode() {
    let f = support::file().await;
    let path = f.dir.as_ref().unwrap().path().join("nested/dir/liverec.db");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(journal, "wal");
    conn.close().await.unwrap();
    f.cleanup().await;
}

#[tokio::test]
async fn data_survives_reopening_and_migrations_run_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}/liverec.db", dir.path().display());
    let first = Catalog::open(&url).await.unwrap();
    let key = first.create_key().await.unwrap();
    assert!(first.use_nonce(&key.id, "n", i64::MAX).await.unwrap());
    first.close().await;

    let second = Catalog::open(&url).await.unwrap();
    assert_eq!(second.key(&key.id).await.unwrap(), Some(key.clone()));
    assert!(
        !second.use_nonce(&key.id, "n", i64::MAX).await.unwrap(),
        "a restart opens no replay hole"
    );
    // A second pool on the same file at the same time (as a second process would).
    let third = Catalog::open(&url).await.unwrap();
    assert_eq!(third.keys().await.unwrap(), vec![key]);
    second.close().await;
    third.close().await;
}

#[tokio::test]
async fn an_existing_readable_file_is_tightened_to_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("liverec.db");
    fs::write(&path, b"").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let catalog = Catalog::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    assert_eq!(mode(&path), 0o600);
    catalog.close().await;
}

/// Two pools on one file (two processes sharing a data dir): still exactly one winner.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nonce_race_across_two_pools_on_one_file() {
    const TASKS: usize = 24;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/liverec.db", dir.path().display());
    let pools = [
        Catalog::open(&url).await.unwrap(),
        Catalog::open(&url).await.unwrap(),
    ];
    let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| {
            let (catalog, barrier) = (pools[i % 2].clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                catalog.use_nonce("ak", "shared", i64::MAX).await
            })
        })
        .collect();
    let mut passed = 0;
    for task in tasks {
        passed += usize::from(task.await.unwrap().unwrap());
    }
    assert_eq!(passed, 1);
}

#[tokio::test]
async fn memory_url_and_open_in_memory_are_private_databases() {
    let a = Catalog::open("sqlite::memory:").await.unwrap();
    let b = Catalog::open_in_memory().await.unwrap();
    a.insert_key("ak", "sk").await.unwrap();
    assert_eq!(b.key("ak").await.unwrap(), None);
    assert!(a.key("ak").await.unwrap().is_some());
}

#[tokio::test]
async fn bad_urls_and_paths_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        String::from("mysql://root:pw@localhost/db"),
        String::from("sqlite://"),
        String::new(),
        format!("sqlite://{}", dir.path().display()), // a directory
        format!("sqlite://{}/x.db?mode=rwc", dir.path().display()),
        String::from("postgres://u@host:notaport/db"),
    ] {
        let result = Catalog::open(&url).await;
        assert!(
            matches!(result, Err(CatalogError::Database(_))),
            "{url}: {result:?}"
        );
    }
}

#[test]
fn with_database_replaces_only_the_path() {
    use support::with_database;
    assert_eq!(
        with_database("postgres://u:p@h:5/postgres", "x"),
        "postgres://u:p@h:5/x"
    );
    assert_eq!(with_database("postgres://h:5", "x"), "postgres://h:5/x");
    assert_eq!(
        with_database("postgres://h/db?sslmode=disable", "x"),
        "postgres://h/x?sslmode=disable"
    );
}

#[tokio::test]
async fn postgres_is_tested_when_configured() {
    match std::env::var(support::PG_ENV) {
        Ok(url) if !url.is_empty() => {
            let f = support::postgres().await.expect("fixture");
            assert_eq!(f.catalog.backend_name(), "postgres");
            f.cleanup().await;
        }
        _ => eprintln!(
            "{} unset: PostgreSQL not tested (scripts/with-postgres.sh sets it)",
            support::PG_ENV
        ),
    }
}

/// Another writer holding the lock past the busy timeout: the call fails as retryable
/// (the API can answer "try later") instead of hanging or passing as a permanent error.
#[tokio::test]
async fn a_locked_file_is_a_retryable_error() {
    let f = support::file().await;
    let path = f.dir.as_ref().unwrap().path().join("nested/dir/liverec.db");
    let mut other = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::raw_sql("BEGIN EXCLUSIVE")
        .execute(&mut other)
        .await
        .unwrap();
    let err = f.catalog.insert_key("ak", "s3cr3tValue").await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(!err.to_string().contains("s3cr3tValue"), "{err}");
    sqlx::raw_sql("ROLLBACK").execute(&mut other).await.unwrap();
    f.catalog.insert_key("ak", "sk").await.unwrap();
    other.close().await.unwrap();
    f.cleanup().await;
}

/// A row the catalog cannot decode is reported, not panicked on.
#[tokio::test]
async fn a_corrupt_config_row_is_a_database_error() {
    let f = support::file().await;
    let path = f.dir.as_ref().unwrap().path().join("nested/dir/liverec.db");
    let mut raw = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::raw_sql(
        "INSERT INTO record_configs VALUES ('d', 'a', 's', 'e', 'b', 0, 180, NULL, NULL, \
         '[{\"format\": 7}]', '[]', '[]', 1)",
    )
    .execute(&mut raw)
    .await
    .unwrap();
    raw.close().await.unwrap();
    let err = f.catalog.record_config("d", "a", "s").await.unwrap_err();
    assert!(
        matches!(err, CatalogError::Database(ref m) if m.contains("record_configs.formats")),
        "{err}"
    );
    assert!(f.catalog.all_record_configs().await.is_err());
    assert!(
        f.catalog
            .record_config("d", "a", "other")
            .await
            .unwrap()
            .is_none()
    );
    f.cleanup().await;
}
