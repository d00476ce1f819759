//! The errors of the operator commands: typed where they come from a library (the store,
//! reconciliation), words where the CLI itself refuses what it was given or could not
//! reach the running switch. `main` prints any of them after `vts: `.

/// An operator command failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// A value domain's checks refused (a pattern, an amount, a date).
    #[error(transparent)]
    Invalid(#[from] domain::Invalid),
    #[error(transparent)]
    Reconcile(#[from] accounting::reconcile::ReconcileError),
    /// Writing the output (JSON, CSV) failed.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Refused or failed, said in words (a bad option value, nothing to change, the switch
    /// not running, a file that cannot be read).
    #[error("{0}")]
    Said(String),
}

impl From<String> for Error {
    fn from(s: String) -> Error {
        Error::Said(s)
    }
}

impl From<&str> for Error {
    fn from(s: &str) -> Error {
        Error::Said(s.to_string())
    }
}

/// What an operator command returns.
pub(crate) type Result<T = ()> = std::result::Result<T, Error>;
