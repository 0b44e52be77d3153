//! The catalog's error type and the mapping from sqlx errors.

/// What went wrong in the catalog. Messages name the operation and the database's own error,
/// never a bound value (so no secret, nonce or connection URL can leak into a log).
#[derive(Clone, Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("already exists")]
    AlreadyExists,
    /// Every candidate object name is taken (by the index or by another upload).
    #[error("no free object name")]
    NoFreeName,
    /// A failure that will not go away by retrying (bad SQL, corrupt row, bad URL …).
    #[error("database: {0}")]
    Database(String),
    /// The database is busy, locked, or unreachable for now; the same call may succeed later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

impl CatalogError {
    /// True when retrying the same call later may succeed (SQLite busy/locked, a lost or
    /// refused connection, an exhausted pool, a PostgreSQL serialization failure).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }

    /// Wraps a sqlx error with the operation that failed; unique violations become
    /// `AlreadyExists`.
    pub(crate) fn from_sqlx(operation: &'static str, err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &err
            && db.is_unique_violation()
        {
            return Self::AlreadyExists;
        }
        let message = format!("{operation}: {err}");
        if is_transient(&err) {
            Self::Unavailable(message)
        } else {
            Self::Database(message)
        }
    }

    /// A row that the catalog itself wrote but cannot read back.
    pub(crate) fn corrupt(what: &'static str, reason: impl std::fmt::Display) -> Self {
        Self::Database(format!("corrupt {what}: {reason}"))
    }
}

/// SQLite primary result codes that mean "try again": SQLITE_BUSY, SQLITE_LOCKED.
const SQLITE_TRANSIENT_CODES: [i64; 2] = [5, 6];

/// PostgreSQL SQLSTATE classes and codes that mean "try again": connection exceptions (08),
/// insufficient resources (53), operator intervention such as a shutting-down server (57P),
/// serialization failure and deadlock (40001, 40P01).
const PG_TRANSIENT_PREFIXES: [&str; 5] = ["08", "53", "57P", "40001", "40P01"];

fn is_transient(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(db) => {
            let Some(code) = db.code() else { return false };
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                is_transient_sqlite_code(&code)
            } else {
                is_transient_pg_code(&code)
            }
        }
        _ => false,
    }
}

fn is_transient_sqlite_code(code: &str) -> bool {
    // Extended SQLite codes carry the primary code in the low byte.
    code.parse::<i64>()
        .is_ok_and(|code| SQLITE_TRANSIENT_CODES.contains(&(code & 0xff)))
}

fn is_transient_pg_code(code: &str) -> bool {
    PG_TRANSIENT_PREFIXES
        .iter()
        .any(|prefix| code.starts_with(prefix))
}

pub type Result<T> = std::result::Result<T, CatalogError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_busy_and_locked_codes_are_transient() {
        for code in ["5", "6", "261", "517", "262"] {
            assert!(is_transient_sqlite_code(code), "{code}");
        }
        for code in ["1", "19", "2067", "11", "40001"] {
            assert!(!is_transient_sqlite_code(code), "{code}");
        }
    }

    #[test]
    fn postgres_connection_and_serialization_codes_are_transient() {
        for code in ["08006", "08001", "53300", "57P01", "40001", "40P01"] {
            assert!(is_transient_pg_code(code), "{code}");
        }
        for code in ["23505", "42P01", "22P02", "40002"] {
            assert!(!is_transient_pg_code(code), "{code}");
        }
    }

    #[test]
    fn pool_timeout_is_retryable_and_protocol_error_is_not() {
        assert!(CatalogError::from_sqlx("op", sqlx::Error::PoolTimedOut).is_retryable());
        let err = CatalogError::from_sqlx("op", sqlx::Error::Protocol("x".into()));
        assert!(!err.is_retryable());
        assert_eq!(
            err.to_string(),
            "database: op: encountered unexpected or invalid data: x"
        );
    }
}
