//! The embedded adapter: one SQLite database (a file, or memory) with one `events` row per
//! event, for `observatory up` without servers.
//!
//! Key decisions:
//! - **`event_id` is the primary key** (lowercase hyphenated text, as MongoDB's `_id`). Every
//!   insert is `ON CONFLICT DO NOTHING`, so a redelivered event affects no row and is counted
//!   as a duplicate; a whole batch is one `BEGIN IMMEDIATE` transaction (all or nothing, and
//!   the write lock is taken up front instead of failing on upgrade from a read lock).
//! - **The envelope is stored as its exact JSON text** and read back with serde, so nothing
//!   is interpreted (no BSON-style range limits: any JSON number serde keeps is storable).
//! - **Derived columns only serve the queries**: `job_id` (canonical `payload.jobId`),
//!   `event_type`, and `occurredAt` split into integer milliseconds (`occurred_at_ms`, what
//!   listings, filters and cursors compare, as MongoDB's BSON dates) and the nanoseconds below
//!   it (`occurred_at_sub_ms_ns`, which orders a timeline within a millisecond). Integers sort
//!   correctly before 1970 too, which text timestamps would not without care.
//! - **The schema is created at open with `CREATE … IF NOT EXISTS`** rather than with
//!   `sqlx::migrate!`: two roles of `observatory up` may open the same file at the same time,
//!   and idempotent DDL inside one IMMEDIATE transaction cannot race the way two migrators
//!   both applying version 1 can; nor does it share a `_sqlx_migrations` table with another
//!   adapter if a file is ever shared. A later incompatible change adds a version check then.

use sqlx::sqlite::Sqlite;
use sqlx::{QueryBuilder, SqlitePool};
use uuid::Uuid;

use crate::contracts::event_envelope::EventEnvelope;
use crate::contracts::event_page::EventPage;
use crate::contracts::page_cursor::PageCursor;
use crate::cursor::{CursorPosition, next_cursor};
use crate::document::DocumentError;
use crate::{
    AppendOutcome, EventFilter, EventLog, EventLogError, MAX_PAGE_SIZE, RefusedEvent, Result,
};

/// Connections of a file database: one writer at a time (SQLite's lock), readers alongside
/// it (write-ahead log).
const MAX_CONNECTIONS: u32 = 4;

/// The schema, statement by statement (each one idempotent).
const SCHEMA: [&str; 4] = [
    "CREATE TABLE IF NOT EXISTS events (
        event_id TEXT NOT NULL PRIMARY KEY,
        job_id TEXT,
        event_type TEXT NOT NULL,
        occurred_at_ms INTEGER NOT NULL,
        occurred_at_sub_ms_ns INTEGER NOT NULL
            CHECK (occurred_at_sub_ms_ns BETWEEN 0 AND 999999),
        envelope TEXT NOT NULL
    ) STRICT",
    // A job's timeline, oldest first.
    "CREATE INDEX IF NOT EXISTS events_job_timeline
        ON events (job_id, occurred_at_ms, occurred_at_sub_ms_ns, event_id)",
    // The unfiltered listing, newest first (SQLite scans an index backwards).
    "CREATE INDEX IF NOT EXISTS events_recent ON events (occurred_at_ms, event_id)",
    // The listing filtered by event type.
    "CREATE INDEX IF NOT EXISTS events_event_type
        ON events (event_type, occurred_at_ms, event_id)",
];

/// The event log in one SQLite database.
#[derive(Clone, Debug)]
pub struct SqliteEventLog {
    pool: SqlitePool,
}

impl SqliteEventLog {
    /// Opens (creating when missing) the database at `location` and its schema.
    ///
    /// [`Location::Memory`](observatory_sqlite::Location::Memory) is a new, private database
    /// per call: share the one `SqliteEventLog` (e.g. as `Arc<dyn EventLog>`) between roles.
    pub async fn open(location: &observatory_sqlite::Location) -> Result<Self> {
        let pool = observatory_sqlite::open(location, MAX_CONNECTIONS).await?;
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        for statement in SCHEMA {
            sqlx::query(statement).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(Self { pool })
    }

    /// Closes the pool, waiting for the connections in use (a file is then fully written and
    /// can be reopened, by this process or another).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The columns stored for one event.
struct Row {
    event_id: String,
    job_id: Option<String>,
    event_type: String,
    occurred_at_ms: i64,
    occurred_at_sub_ms_ns: i64,
    envelope: String,
}

impl Row {
    fn of(event: &EventEnvelope) -> Result<Self, DocumentError> {
        let envelope = serde_json::to_string(event).map_err(DocumentError::Json)?;
        let occurred_at_ms = event.occurred_at.timestamp_millis();
        // timestamp_millis() truncates towards the past, so the remainder is 0..1_000_000
        // even before 1970.
        let occurred_at_sub_ms_ns =
            i64::from(event.occurred_at.timestamp_subsec_nanos() % 1_000_000);
        Ok(Self {
            event_id: event.event_id.0.to_string(),
            job_id: crate::job_id_of(event).map(|id| id.to_string()),
            event_type: event.event_type.to_string(),
            occurred_at_ms,
            occurred_at_sub_ms_ns,
            envelope,
        })
    }
}

fn from_stored((event_id, envelope): (String, String)) -> Result<EventEnvelope> {
    serde_json::from_str(&envelope).map_err(|e| EventLogError::CorruptDocument {
        id: event_id,
        source: DocumentError::Json(e),
    })
}

#[async_trait::async_trait]
impl EventLog for SqliteEventLog {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// One IMMEDIATE transaction: on any error nothing of the batch is stored.
    async fn append_batch(&self, events: &[EventEnvelope]) -> Result<AppendOutcome> {
        if events.is_empty() {
            return Ok(AppendOutcome::default());
        }
        // Serialize first, so that an unstorable event never holds the write lock.
        let mut refused = Vec::new();
        let mut rows = Vec::with_capacity(events.len());
        for (index, event) in events.iter().enumerate() {
            match Row::of(event) {
                Ok(row) => rows.push((index, row)),
                Err(error) => refused.push(RefusedEvent {
                    index,
                    event_id: event.event_id.0,
                    reason: error.to_string(),
                }),
            }
        }
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut inserted = 0;
        let mut already_stored = Vec::new();
        for (index, row) in rows {
            let done = sqlx::query(
                "INSERT INTO events
                    (event_id, job_id, event_type, occurred_at_ms, occurred_at_sub_ms_ns, envelope)
                 VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT (event_id) DO NOTHING",
            )
            .bind(row.event_id)
            .bind(row.job_id)
            .bind(row.event_type)
            .bind(row.occurred_at_ms)
            .bind(row.occurred_at_sub_ms_ns)
            .bind(row.envelope)
            .execute(&mut *tx)
            .await?;
            // 0 rows: the eventId is stored already (before, or earlier in this batch).
            if done.rows_affected() > 0 {
                inserted += 1;
            } else {
                already_stored.push(index);
            }
        }
        tx.commit().await?;
        Ok(AppendOutcome {
            inserted,
            duplicates: already_stored.len(),
            already_stored,
            refused,
        })
    }

    async fn events_for_job(&self, job_id: Uuid) -> Result<Vec<EventEnvelope>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT event_id, envelope FROM events WHERE job_id = ?
             ORDER BY occurred_at_ms, occurred_at_sub_ms_ns, event_id",
        )
        .bind(job_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(from_stored).collect()
    }

    async fn list_events(
        &self,
        filter: &EventFilter,
        limit: usize,
        cursor: Option<&PageCursor>,
    ) -> Result<EventPage> {
        let limit = limit.clamp(1, MAX_PAGE_SIZE);
        let position = cursor.map(CursorPosition::decode).transpose()?;
        let mut query =
            QueryBuilder::<Sqlite>::new("SELECT event_id, envelope FROM events WHERE 1");
        if let Some(job_id) = filter.job_id {
            query.push(" AND job_id = ").push_bind(job_id.to_string());
        }
        if let Some(event_type) = filter.event_type {
            query
                .push(" AND event_type = ")
                .push_bind(event_type.to_string());
        }
        if let Some(after) = filter.after {
            query
                .push(" AND occurred_at_ms >= ")
                .push_bind(after.timestamp_millis());
        }
        if let Some(before) = filter.before {
            query
                .push(" AND occurred_at_ms < ")
                .push_bind(before.timestamp_millis());
        }
        if let Some(position) = position {
            query
                .push(" AND (occurred_at_ms, event_id) < (")
                .push_bind(position.millis)
                .push(", ")
                .push_bind(position.event_id.to_string())
                .push(")");
        }
        let fetch = i64::try_from(limit + 1).unwrap_or(i64::MAX);
        query
            .push(" ORDER BY occurred_at_ms DESC, event_id DESC LIMIT ")
            .push_bind(fetch);
        let rows: Vec<(String, String)> = query.build_query_as().fetch_all(&self.pool).await?;
        let has_more = rows.len() > limit;
        let items = rows
            .into_iter()
            .take(limit)
            .map(from_stored)
            .collect::<Result<Vec<_>>>()?;
        let next_cursor = next_cursor(&items, has_more);
        Ok(EventPage { items, next_cursor })
    }
}

/// What only the SQLite adapter promises: a file keeps its events, and its storage limits.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{TYPES, at, bounded, event, sqlite_log};
    use observatory_sqlite::Location;

    #[tokio::test]
    async fn a_file_database_keeps_its_events_across_close_and_reopen() {
        let dir = std::env::temp_dir().join(observatory_test_support::unique_name());
        let location = Location::File(dir.join("events.db"));
        bounded(async {
            let job = Uuid::new_v4();
            let events: Vec<EventEnvelope> =
                (0..3).map(|i| event(TYPES[i], job, at(i as i64))).collect();
            let log = SqliteEventLog::open(&location).await.expect("open");
            log.append_batch(&events).await.expect("append");
            log.close().await;

            // Two roles opening the same file at once both succeed (the schema is idempotent).
            let (first, second) = tokio::join!(
                SqliteEventLog::open(&location),
                SqliteEventLog::open(&location)
            );
            let (log, other) = (first.expect("reopen"), second.expect("reopen twice"));
            assert_eq!(log.events_for_job(job).await.expect("timeline"), events);
            // Still stored once: a redelivery after the restart is a duplicate.
            assert_eq!(
                other.append_batch(&events).await.expect("redeliver"),
                AppendOutcome {
                    inserted: 0,
                    duplicates: 3,
                    already_stored: vec![0, 1, 2],
                    refused: Vec::new(),
                }
            );
            log.close().await;
            other.close().await;
        })
        .await;
        std::fs::remove_dir_all(&dir).expect("remove the test directory");
    }

    /// JSON text has no BSON range limit (the MongoDB adapter refuses such events).
    #[tokio::test]
    async fn integers_beyond_int64_are_stored() {
        let log = sqlite_log().await;
        let mut huge = event(TYPES[0], Uuid::new_v4(), at(0));
        huge.payload
            .insert("huge".into(), serde_json::json!(u64::MAX));
        log.append_batch(std::slice::from_ref(&huge))
            .await
            .expect("append");
        let job = crate::job_id_of(&huge).expect("a job");
        assert_eq!(log.events_for_job(job).await.expect("timeline"), vec![huge]);
    }

    #[tokio::test]
    async fn a_row_that_is_not_an_envelope_is_reported() {
        let log = sqlite_log().await;
        let job = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO events VALUES ('bad-row', ?, 'job.created', 0, 0, '{\"not\":\"an envelope\"}')",
        )
        .bind(job.to_string())
        .execute(&log.pool)
        .await
        .expect("insert");
        match log.events_for_job(job).await {
            Err(EventLogError::CorruptDocument { id, .. }) => assert_eq!(id, "bad-row"),
            other => panic!("expected CorruptDocument, got {other:?}"),
        }
    }
}
