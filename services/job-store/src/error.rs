//! What can go wrong in the job store, the same for every adapter.

/// Errors of every [`JobStore`](crate::JobStore) operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database is unreachable or busy, or a statement failed. Usually transient: retry
    /// later (the processor requeues the message).
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// The database cannot hold a value the caller gave (e.g. `\u0000` inside a JSON string in
    /// PostgreSQL's `jsonb`, or a value beyond SQLite's size limit). Permanent: retrying the
    /// same message fails again, so dead-letter it.
    #[error("value cannot be stored in the job store: {0}")]
    Unstorable(#[source] sqlx::Error),
    #[error("migrating the job store schema failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The embedded (SQLite) database could not be opened or created.
    #[error(transparent)]
    Open(#[from] observatory_sqlite::OpenError),
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

/// Error codes that blame the value, not the database: PostgreSQL's SQLSTATEs 22P05
/// untranslatable_character and 22021 character_not_in_repertoire, and SQLite's result code
/// 18 SQLITE_TOOBIG. The two code spaces do not overlap (SQLSTATEs have five characters).
const UNSTORABLE_CODES: [&str; 3] = ["22P05", "22021", "18"];

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        let unstorable = error
            .as_database_error()
            .and_then(|e| e.code())
            .is_some_and(|code| UNSTORABLE_CODES.contains(&code.as_ref()));
        if unstorable {
            Self::Unstorable(error)
        } else {
            Self::Database(error)
        }
    }
}
