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
