//! Opening the database: the SQLite file (mode 0600, WAL, busy timeout) or a PostgreSQL pool,
//! then the embedded migrations. The same migrations serve both backends.

use std::fs::{self, OpenOptions, Permissions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Postgres, Sqlite, Transaction};

use crate::error::{CatalogError, Result};

/// The schema, embedded at build time from `crates/catalog/migrations/`.
static MIGRATOR: Migrator = sqlx::migrate!();

/// Mode of a database file we create: it holds plaintext access-key secrets.
pub(crate) const DB_FILE_MODE: u32 = 0o600;
/// How long a SQLite statement waits for another connection's write lock.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// SQLite in WAL mode has one writer at a time; a few connections let reads run beside it.
const SQLITE_MAX_CONNECTIONS: u32 = 4;
/// Connections per node to a shared PostgreSQL server.
const PG_MAX_CONNECTIONS: u32 = 10;
/// How long a call waits for a free (or new) connection before failing as retryable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// The pool of one backend. Queries are written once and run on either through `on_pool!`.
#[derive(Clone, Debug)]
pub(crate) enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Backend {
    /// Opens `sqlite://PATH`, `sqlite:PATH`, `sqlite::memory:` or `postgres(ql)://…`.
    pub(crate) async fn open(url: &str) -> Result<Self> {
        let backend = if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path == ":memory:" {
                return Self::in_memory().await;
            }
            Self::open_sqlite_file(path).await?
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::open_postgres(url).await?
        } else {
            return Err(CatalogError::Database(
                "unsupported database URL (expected sqlite://PATH or postgres://…)".into(),
            ));
        };
        backend.migrate().await?;
        Ok(backend)
    }

    /// A private in-memory SQLite database. One connection only: every SQLite connection to
    /// `:memory:` would otherwise see its own empty database.
    pub(crate) async fn in_memory() -> Result<Self> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(|e| CatalogError::from_sqlx("in-memory sqlite options", e))?
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| CatalogError::from_sqlx("open in-memory sqlite", e))?;
        let backend = Self::Sqlite(pool);
        backend.migrate().await?;
        Ok(backend)
    }

    async fn open_sqlite_file(path: &str) -> Result<Self> {
        if path.is_empty() || path.contains('?') {
            return Err(CatalogError::Database(
                "sqlite URL needs a plain file path (no query options)".into(),
            ));
        }
        let path = Path::new(path);
        create_private_file(path)?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(false)
            .journal_mode(SqliteJournalMode::Wal)
            // In WAL mode NORMAL commits without an fsync per transaction (the WAL is synced
            // at checkpoints): a crash of liverec loses nothing, a power cut may lose the last
            // commits. Every signed API request commits a nonce, so FULL would cost one fsync
            // per request (docs/BENCHMARKS.md).
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(SQLITE_MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| CatalogError::from_sqlx("open sqlite file", e))?;
        Ok(Self::Sqlite(pool))
    }

    async fn open_postgres(url: &str) -> Result<Self> {
        // The URL may hold a password: errors name the step, never the URL.
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| CatalogError::from_sqlx("parse postgres URL", e))?;
        let pool = PgPoolOptions::new()
            .max_connections(PG_MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| CatalogError::from_sqlx("connect to postgres", e))?;
        Ok(Self::Postgres(pool))
    }

    async fn migrate(&self) -> Result<()> {
        let result = match self {
            Self::Sqlite(pool) => MIGRATOR.run(pool).await,
            Self::Postgres(pool) => MIGRATOR.run(pool).await,
        };
        result.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(e) => CatalogError::from_sqlx("run migrations", e),
            other => CatalogError::Database(format!("run migrations: {other}")),
        })
    }
}

/// Opens a transaction that will write. On SQLite it is `BEGIN IMMEDIATE`: the write lock is
/// taken up front (waiting out the busy timeout), so the transaction never fails halfway on a
/// lock upgrade (SQLITE_BUSY_SNAPSHOT in WAL mode, which the busy timeout does not cover).
pub(crate) trait BeginWrite {
    type Db: sqlx::Database;

    fn begin_write(
        &self,
    ) -> impl Future<Output = sqlx::Result<Transaction<'static, Self::Db>>> + Send;
}

impl BeginWrite for SqlitePool {
    type Db = Sqlite;

    fn begin_write(
        &self,
    ) -> impl Future<Output = sqlx::Result<Transaction<'static, Sqlite>>> + Send {
        self.begin_with("BEGIN IMMEDIATE")
    }
}

impl BeginWrite for PgPool {
    type Db = Postgres;

    fn begin_write(
        &self,
    ) -> impl Future<Output = sqlx::Result<Transaction<'static, Postgres>>> + Send {
        self.begin()
    }
}

/// Creates `path` (and its parent directories) with mode 0600 before SQLite opens it, so the
/// secrets are never readable by others, not even for a moment. An existing file that others
/// can read is tightened.
fn create_private_file(path: &Path) -> Result<()> {
    let io_err = |what: &str, e: std::io::Error| {
        CatalogError::Database(format!("{what} {}: {e}", path.display()))
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| io_err("create directory for", e))?;
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(DB_FILE_MODE)
        .open(path)
        .map_err(|e| io_err("create", e))?;
    let metadata = file.metadata().map_err(|e| io_err("stat", e))?;
    if metadata.permissions().mode() & 0o077 != 0 {
        tracing::warn!(path = %path.display(), "database file was readable by others; setting mode 0600");
        file.set_permissions(Permissions::from_mode(DB_FILE_MODE))
            .map_err(|e| io_err("chmod", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unknown_scheme_is_refused() {
        let err = Backend::open("mysql://u:secretpw@host/db")
            .await
            .unwrap_err();
        assert!(matches!(err, CatalogError::Database(_)));
        assert!(!err.to_string().contains("secretpw"));
    }

    #[tokio::test]
    async fn sqlite_url_with_options_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/x.db?mode=ro", dir.path().display());
        assert!(Backend::open(&url).await.is_err());
    }

    #[tokio::test]
    async fn postgres_connection_error_hides_the_password() {
        // A "server" that hangs up at once: the connect fails fast with an I/O error (a
        // refused port would be retried until ACQUIRE_TIMEOUT).
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                drop(socket);
            }
        });
        let url = format!("postgres://user:hunter2secret@127.0.0.1:{port}/db");
        let err = Backend::open(&url).await.unwrap_err();
        assert!(!err.to_string().contains("hunter2secret"), "{err}");
        assert!(err.is_retryable(), "{err}");
    }

    #[test]
    fn existing_world_readable_file_is_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/db.sqlite");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, b"").unwrap();
        fs::set_permissions(&path, Permissions::from_mode(0o644)).unwrap();
        create_private_file(&path).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            DB_FILE_MODE
        );
    }
}
