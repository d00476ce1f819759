//! The one error type of the store.

use sqlx::migrate::MigrateError;

/// What can go wrong talking to the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL's scheme is neither `sqlite` nor `postgres`/`postgresql`. Holds the
    /// scheme only, never the whole URL (it may carry a password).
    #[error("unsupported database URL scheme {0:?}: expected sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    /// The caller's input is refused before it reaches the database (an empty name, port 0…).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The row the request names does not exist (a customer, carrier, plan… by id).
    #[error("no {what} with id {id}")]
    NotFound { what: &'static str, id: i64 },
    /// The change collides with what is stored: a name taken, an address already in use.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A stored row the store cannot read back (written by another tool, say).
    #[error("unreadable stored data: {0}")]
    Corrupt(String),
    /// Running the migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] MigrateError),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    /// Whether the database refused the data itself (so the same write fails again however
    /// often it is retried), as opposed to being away, busy or out of resources (worth
    /// retrying as it is). Refusals: input refused before the database
    /// ([`StoreError::Invalid`], [`StoreError::Conflict`]), a value that cannot be encoded,
    /// and the database's own data errors — PostgreSQL SQLSTATE classes 22 (data
    /// exception: a NUL byte in text, a value out of range) and 23 (integrity constraint),
    /// SQLite's `SQLITE_TOOBIG` (18), `SQLITE_CONSTRAINT` (19), `SQLITE_MISMATCH` (20) and
    /// `SQLITE_RANGE` (25). Everything else — connection and pool errors, I/O, PostgreSQL's
    /// 08 (connection), 40 (rollback), 53 (resources), 57 (operator intervention) — is
    /// taken for "away".
    pub fn is_refusal(&self) -> bool {
        match self {
            StoreError::Invalid(_) | StoreError::Conflict(_) | StoreError::NotFound { .. } => true,
            StoreError::Database(sqlx::Error::Encode(_)) => true,
            StoreError::Database(e) => e.as_database_error().is_some_and(|db| {
                let code = db.code();
                let code = code.as_deref().unwrap_or("");
                code.starts_with("22")
                    || code.starts_with("23")
                    || matches!(code, "18" | "19" | "20" | "25")
            }),
            StoreError::UnsupportedUrl(_) | StoreError::Corrupt(_) | StoreError::Migrate(_) => {
                false
            }
        }
    }

    /// Whether the database could not be reached or was too busy (worth trying again
    /// later), as opposed to refusing the request: pool timeouts, I/O, PostgreSQL's 08
    /// (connection), 53 (resources) and 57 (operator intervention), SQLite's busy (5) and
    /// locked (6).
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_),
            ) => true,
            StoreError::Database(e) => e.as_database_error().is_some_and(|db| {
                let code = db.code();
                let code = code.as_deref().unwrap_or("");
                code.starts_with("08")
                    || code.starts_with("53")
                    || code.starts_with("57")
                    || matches!(code, "5" | "6")
            }),
            _ => false,
        }
    }

    /// A unique-constraint violation becomes [`StoreError::Conflict`] with `what` as its
    /// message; any other error stays a [`StoreError::Database`]. The store checks for
    /// conflicts before writing, so this only catches a concurrent writer that won the race.
    pub(crate) fn unique_or(err: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
        match err.as_database_error() {
            Some(db) if db.is_unique_violation() => StoreError::Conflict(what()),
            _ => StoreError::Database(err),
        }
    }
}

/// A value domain's checks refused, on its way in.
impl From<domain::Invalid> for StoreError {
    fn from(e: domain::Invalid) -> StoreError {
        StoreError::Invalid(e.to_string())
    }
}
