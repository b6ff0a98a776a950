//! What can go wrong in the job store.

/// Errors of every [`JobStore`](crate::JobStore) operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// PostgreSQL is unreachable, or a statement failed. Usually transient: retry later.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// PostgreSQL cannot hold a value the caller gave (e.g. `\u0000` inside a JSON string in
    /// `jsonb`). Permanent: retrying the same message fails again, so dead-letter it.
    #[error("value cannot be stored in PostgreSQL: {0}")]
    Unstorable(#[source] sqlx::Error),
    #[error("migrating the job store schema failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A page cursor that this store did not issue (the HTTP layer answers 400).
    #[error("malformed page cursor: {0}")]
    InvalidCursor(&'static str),
    /// An argument outside what the store or the contracts accept (a caller's bug).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// An event could not be built within its contract (a defect in this crate or the contracts).
    #[error("event does not fit its contract: {0}")]
    Contract(String),
    /// A stored row that no longer maps to its contract type.
    #[error("stored {table} row {key} does not match its contract: {reason}")]
    CorruptRow {
        table: &'static str,
        key: String,
        reason: String,
    },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        // 22P05 untranslatable_character, 22021 character_not_in_repertoire: the value, not
        // the database, is the problem.
        let unstorable = error
            .as_database_error()
            .and_then(|e| e.code())
            .is_some_and(|code| code == "22P05" || code == "22021");
        if unstorable {
            Self::Unstorable(error)
        } else {
            Self::Database(error)
        }
    }
}
