//! Where an embedded adapter keeps its data, and how its SQLite pool is opened.
//!
//! `observatory up` runs without any server: the job store, the event log and the counters
//! then live in SQLite, each in its own file under the data directory (so one adapter's
//! writes never wait for another's lock), or in memory when no directory is given.
//!
//! Files use write-ahead logging with `synchronous = NORMAL`: a committed transaction survives
//! a crash of the process (not necessarily of the machine), and readers never block the
//! writer. An in-memory database lives on exactly one connection that the pool never closes,
//! because every SQLite connection to `:memory:` is a separate, empty database.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

pub use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

/// Where one embedded database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A file, created when missing (its directory too).
    File(PathBuf),
    /// Process memory: gone when the process ends.
    Memory,
}

impl Location {
    /// The file `name` inside `data_dir`, or memory when there is no data directory.
    pub fn in_data_dir(data_dir: Option<&Path>, name: &str) -> Self {
        data_dir.map_or(Self::Memory, |dir| Self::File(dir.join(name)))
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Memory => f.write_str("memory"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create the data directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the SQLite database {location}: {source}")]
    Open {
        location: String,
        source: sqlx::Error,
    },
}

/// Opens (creating when missing) the database at `location`. `max_connections` applies to
/// files; memory always uses one connection.
pub async fn open(location: &Location, max_connections: u32) -> Result<SqlitePool, OpenError> {
    let failed = |source| OpenError::Open {
        location: location.to_string(),
        source,
    };
    let (options, pool) = match location {
        Location::File(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|source| OpenError::CreateDir {
                    path: dir.to_owned(),
                    source,
                })?;
            }
            let options = SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal);
            (
                options,
                SqlitePoolOptions::new().max_connections(max_connections.max(1)),
            )
        }
        Location::Memory => {
            let options = SqliteConnectOptions::from_str("sqlite::memory:").map_err(failed)?;
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
            (options, pool)
        }
    };
    let options = options
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    pool.acquire_timeout(Duration::from_secs(30))
        .connect_with(options)
        .await
        .map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_database_keeps_its_data_across_pools() {
        let dir = std::env::temp_dir().join(format!("observatory-sqlite-{}", std::process::id()));
        let location = Location::in_data_dir(Some(&dir.join("nested")), "test.db");
        let pool = open(&location, 2).await.expect("open");
        sqlx::query("CREATE TABLE t (v INTEGER)")
            .execute(&pool)
            .await
            .expect("create");
        sqlx::query("INSERT INTO t VALUES (42)")
            .execute(&pool)
            .await
            .expect("insert");
        pool.close().await;
        let pool = open(&location, 2).await.expect("reopen");
        let v: i64 = sqlx::query_scalar("SELECT v FROM t")
            .fetch_one(&pool)
            .await
            .expect("select");
        assert_eq!(v, 42);
        pool.close().await;
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[tokio::test]
    async fn memory_is_one_database_for_the_whole_pool() {
        let pool = open(&Location::Memory, 8).await.expect("open");
        sqlx::query("CREATE TABLE t (v INTEGER)")
            .execute(&pool)
            .await
            .expect("create");
        // Concurrent users share the one connection, hence the one database.
        let (a, b) = tokio::join!(
            sqlx::query("INSERT INTO t VALUES (1)").execute(&pool),
            sqlx::query("INSERT INTO t VALUES (2)").execute(&pool)
        );
        a.expect("a");
        b.expect("b");
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(&pool)
            .await
            .expect("count");
        assert_eq!(n, 2);
    }

    #[tokio::test]
    async fn an_unwritable_directory_is_a_clear_error() {
        let location = Location::File(PathBuf::from("/proc/observatory/test.db"));
        let error = open(&location, 1).await.expect_err("must fail");
        assert!(error.to_string().contains("/proc/observatory"), "{error}");
    }
}
