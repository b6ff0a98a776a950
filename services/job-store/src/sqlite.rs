//! The embedded SQLite adapter, so that `observatory up` runs without servers.
//!
//! It keeps the PostgreSQL adapter's semantics statement by statement. What differs is
//! representation (see `migrations/sqlite/`): uuids are 16-byte blobs, timestamps integer
//! microseconds since the epoch, JSON text; each compares and sorts like its PostgreSQL type.
//!
//! Every write runs in a `BEGIN IMMEDIATE` transaction: it takes the database's one write
//! lock up front, waiting up to the busy timeout that [`observatory_sqlite::open`] sets. A
//! deferred transaction would read first and could then fail to upgrade to a writer with
//! `SQLITE_BUSY` at once, without waiting. Holding the write lock for the whole transaction
//! also stands in for PostgreSQL's row locks (`FOR UPDATE`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use observatory_sqlite::Location;
use serde_json::{Map, Value};
use sqlx::sqlite::{Sqlite, SqliteConnection, SqlitePool};
use sqlx::{QueryBuilder, Transaction};
use uuid::Uuid;

use crate::contracts::dead_letter::DeadLetter;
use crate::contracts::dead_letter_page::DeadLetterPage;
use crate::contracts::event_envelope::EventProducer;
use crate::contracts::job::{Job, JobError, JobStatus};
use crate::contracts::job_attempt::{AttemptOutcome, JobAttempt};
use crate::contracts::job_created::JobCreated;
use crate::contracts::job_page::JobPage;
use crate::events::{EventFactory, NewOutboxEvent};
use crate::rows::{DeadLetterRow, JobAttemptRow, JobRow};
use crate::{
    Accepted, DueJob, FailOutcome, JobFilter, JobStore, OutboxEvent, Result, Retry, RunningAttempt,
    StartedAttempt, StoreError, after_failure, attempt_ordinal, check_duration,
    dead_letter_attempts, dead_letter_message, dead_letter_page, decode_cursor,
    exhausted_dead_letter, fail_outcome, interruption, job_error_json, job_page, lease_seconds,
    now, page_size, push_dead_letter_page_clauses, push_job_page_clauses, started_attempt, status,
    status_counts, stored_max_attempts,
};

/// Connections of a file database: readers run beside the one writer (write-ahead log).
/// A memory database always has exactly one.
const MAX_CONNECTIONS: u32 = 8;

/// Most ids one `DELETE … IN (…)` binds, well below SQLite's bound-parameter limit.
const DELETE_CHUNK: usize = 500;

/// The SQLite job store. Cheap to clone (a pool handle).
#[derive(Debug, Clone)]
pub struct SqliteJobStore {
    pub(crate) pool: SqlitePool,
    /// Named as the producer of every event this store writes to the outbox.
    producer: EventProducer,
}

/// A timestamp as stored: microseconds since the Unix epoch (truncating any nanoseconds,
/// as PostgreSQL's `timestamptz` does).
fn instant(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

/// A lease as the stored timestamps count it (microseconds).
fn lease_micros(lease: Duration) -> Result<i64> {
    lease_seconds(lease)?;
    i64::try_from(lease.as_micros())
        .map_err(|_| StoreError::InvalidArgument(format!("lease {lease:?} is too long")))
}

fn due_job((id, job_type, due_at): (Uuid, String, i64), field: &str) -> Result<DueJob> {
    let at = Instants {
        table: "jobs",
        key: &|| id.to_string(),
    }
    .at(field, due_at)?;
    Ok(DueJob {
        id,
        job_type,
        due_at: at,
    })
}

/// Converts the stored timestamps of one row back, reporting a corrupt row otherwise.
struct Instants<'a> {
    table: &'static str,
    key: &'a dyn Fn() -> String,
}

impl Instants<'_> {
    fn at(&self, field: &str, micros: i64) -> Result<DateTime<Utc>> {
        DateTime::from_timestamp_micros(micros).ok_or_else(|| StoreError::CorruptRow {
            table: self.table,
            key: (self.key)(),
            reason: format!("{field}: {micros} µs since the epoch is out of range"),
        })
    }

    fn opt(&self, field: &str, micros: Option<i64>) -> Result<Option<DateTime<Utc>>> {
        micros.map(|m| self.at(field, m)).transpose()
    }
}

#[derive(Debug, sqlx::FromRow)]
struct SqliteJobRow {
    id: Uuid,
    #[sqlx(rename = "type")]
    job_type: String,
    status: String,
    payload: Value,
    attempts: i32,
    max_attempts: i32,
    runs: i32,
    correlation_id: String,
    created_at: i64,
    updated_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    next_attempt_at: Option<i64>,
    last_error: Option<Value>,
    result: Option<Value>,
}

impl TryFrom<SqliteJobRow> for Job {
    type Error = StoreError;

    fn try_from(row: SqliteJobRow) -> Result<Self> {
        let id = row.id;
        let key = || id.to_string();
        let t = Instants {
            table: "jobs",
            key: &key,
        };
        JobRow {
            id: row.id,
            job_type: row.job_type,
            status: row.status,
            payload: row.payload,
            attempts: row.attempts,
            max_attempts: row.max_attempts,
            runs: row.runs,
            correlation_id: row.correlation_id,
            created_at: t.at("created_at", row.created_at)?,
            updated_at: t.at("updated_at", row.updated_at)?,
            started_at: t.opt("started_at", row.started_at)?,
            finished_at: t.opt("finished_at", row.finished_at)?,
            next_attempt_at: t.opt("next_attempt_at", row.next_attempt_at)?,
            last_error: row.last_error,
            result: row.result,
        }
        .try_into()
    }
}

#[derive(Debug, sqlx::FromRow)]
struct SqliteJobAttemptRow {
    job_id: Uuid,
    attempt: i32,
    outcome: String,
    started_at: i64,
    finished_at: Option<i64>,
    duration_ms: Option<f64>,
    error: Option<Value>,
    worker: Option<String>,
}

impl TryFrom<SqliteJobAttemptRow> for JobAttempt {
    type Error = StoreError;

    fn try_from(row: SqliteJobAttemptRow) -> Result<Self> {
        let (job_id, attempt) = (row.job_id, row.attempt);
        let key = || format!("{job_id}/{attempt}");
        let t = Instants {
            table: "job_attempts",
            key: &key,
        };
        JobAttemptRow {
            job_id: row.job_id,
            attempt: row.attempt,
            outcome: row.outcome,
            started_at: t.at("started_at", row.started_at)?,
            finished_at: t.opt("finished_at", row.finished_at)?,
            duration_ms: row.duration_ms,
            error: row.error,
            worker: row.worker,
        }
        .try_into()
    }
}

#[derive(Debug, sqlx::FromRow)]
struct SqliteDeadLetterRow {
    id: Uuid,
    source: String,
    queue: Option<String>,
    reason: String,
    message: Option<String>,
    job_id: Option<Uuid>,
    event_id: Option<Uuid>,
    attempts: Option<i32>,
    received_at: i64,
    raw_body: Vec<u8>,
    correlation_id: Option<String>,
}

impl TryFrom<SqliteDeadLetterRow> for DeadLetter {
    type Error = StoreError;

    fn try_from(row: SqliteDeadLetterRow) -> Result<Self> {
        let id = row.id;
        let key = || id.to_string();
        let t = Instants {
            table: "dead_letters",
            key: &key,
        };
        DeadLetterRow {
            id: row.id,
            source: row.source,
            queue: row.queue,
            reason: row.reason,
            message: row.message,
            job_id: row.job_id,
            event_id: row.event_id,
            attempts: row.attempts,
            received_at: t.at("received_at", row.received_at)?,
            raw_body: row.raw_body,
            correlation_id: row.correlation_id,
        }
        .try_into()
    }
}

async fn insert_outbox(
    conn: &mut SqliteConnection,
    event: NewOutboxEvent,
    at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO outbox (event_id, routing_key, body, created_at) VALUES (?1, ?2, ?3, ?4)",
    )
    .bind(event.event_id)
    .bind(event.routing_key)
    .bind(event.body)
    .bind(instant(at))
    .execute(conn)
    .await?;
    Ok(())
}

async fn insert_dead_letter(conn: &mut SqliteConnection, letter: &DeadLetter) -> Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO dead_letters (id, source, queue, reason, message, job_id, event_id, attempts, \
         received_at, raw_body, correlation_id) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT (id) DO NOTHING",
    )
    .bind(letter.id)
    .bind(&letter.source)
    .bind(&letter.queue)
    .bind(letter.reason.to_string())
    .bind(dead_letter_message(letter))
    .bind(letter.job_id)
    .bind(letter.event_id)
    .bind(dead_letter_attempts(letter)?)
    .bind(instant(letter.received_at))
    .bind(letter.raw_body.as_bytes())
    .bind(letter.correlation_id.as_ref().map(|c| c.as_str()))
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Records how an attempt ended.
async fn finish_attempt_row(
    conn: &mut SqliteConnection,
    job_id: Uuid,
    attempt: i32,
    outcome: AttemptOutcome,
    at: DateTime<Utc>,
    duration_ms: f64,
    error: Option<&Value>,
) -> Result<()> {
    sqlx::query(
        "UPDATE job_attempts SET outcome = ?3, finished_at = ?4, duration_ms = ?5, error = ?6, \
         lease_until = NULL WHERE job_id = ?1 AND attempt = ?2",
    )
    .bind(job_id)
    .bind(attempt)
    .bind(outcome.to_string())
    .bind(instant(at))
    .bind(duration_ms)
    .bind(error)
    .execute(conn)
    .await?;
    Ok(())
}

impl SqliteJobStore {
    /// Opens (creating when missing) the database at `location` and applies the migrations.
    pub async fn open(location: &Location, producer: EventProducer) -> Result<Self> {
        let pool = observatory_sqlite::open(location, MAX_CONNECTIONS).await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Self { pool, producer })
    }

    /// A write transaction holding the write lock from its start (see the module docs).
    async fn write(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

#[async_trait::async_trait]
impl JobStore for SqliteJobStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn accept(&self, created: &JobCreated) -> Result<Accepted> {
        let p = &created.payload;
        let max_attempts = stored_max_attempts(created)?;
        let idempotency_key = created.idempotency_key.as_str();
        let mut tx = self.write().await?;
        let inserted: Option<SqliteJobRow> = sqlx::query_as(
            "INSERT INTO jobs (id, type, status, payload, attempts, max_attempts, correlation_id, \
             idempotency_key, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, ?7, ?8, ?9) ON CONFLICT DO NOTHING RETURNING *",
        )
        .bind(p.job_id)
        .bind(p.type_.as_str())
        .bind(status(JobStatus::Pending))
        .bind(sqlx::types::Json(&p.payload))
        .bind(max_attempts)
        .bind(created.correlation_id.as_str())
        .bind(idempotency_key)
        .bind(instant(p.submitted_at))
        .bind(instant(now()))
        .fetch_optional(&mut *tx)
        .await?;
        let accepted = match inserted {
            Some(row) => Accepted::New(row.try_into()?),
            None => {
                // The conflict was on the id or on the idempotency key; prefer the job with
                // this id. Jobs are never deleted, so the conflicting row is there.
                let row: SqliteJobRow = sqlx::query_as(
                    "SELECT * FROM jobs WHERE id = ?1 OR idempotency_key = ?2 \
                     ORDER BY (id = ?1) DESC LIMIT 1",
                )
                .bind(p.job_id)
                .bind(idempotency_key)
                .fetch_one(&mut *tx)
                .await?;
                Accepted::Duplicate(row.try_into()?)
            }
        };
        tx.commit().await?;
        Ok(accepted)
    }

    async fn start_attempt(
        &self,
        job_id: Uuid,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<StartedAttempt>> {
        let lease = lease_micros(lease)?;
        let mut tx = self.write().await?;
        // Taken under the write lock, so timestamps follow commit order.
        let at = now();
        let row: Option<SqliteJobRow> = sqlx::query_as(
            "UPDATE jobs SET status = ?3, attempts = attempts + 1, runs = runs + 1, \
             started_at = COALESCE(started_at, ?2), next_attempt_at = NULL, updated_at = ?2 \
             WHERE id = ?1 AND attempts < max_attempts \
               AND (status = ?4 OR (status = ?5 AND next_attempt_at <= ?2)) \
             RETURNING *",
        )
        .bind(job_id)
        .bind(instant(at))
        .bind(status(JobStatus::Running))
        .bind(status(JobStatus::Pending))
        .bind(status(JobStatus::Retrying))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let runs = row.runs;
        let job = Job::try_from(row)?;
        let (attempt, stored_attempt, ordinal) = started_attempt(job_id, runs)?;

        sqlx::query(
            "INSERT INTO job_attempts (job_id, attempt, outcome, started_at, worker, lease_until) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .bind(job_id)
        .bind(stored_attempt)
        .bind(AttemptOutcome::Running.to_string())
        .bind(instant(at))
        .bind(worker)
        .bind(instant(at) + lease)
        .execute(&mut *tx)
        .await?;
        let factory = EventFactory {
            producer: &self.producer,
            at,
        };
        insert_outbox(&mut tx, factory.started(&job, ordinal, worker)?, at).await?;
        tx.commit().await?;
        tracing::debug!(%job_id, attempt, "attempt started");
        Ok(Some(StartedAttempt { job, attempt }))
    }

    async fn renew_lease(
        &self,
        job_id: Uuid,
        attempt: u32,
        worker: &str,
        lease: Duration,
    ) -> Result<bool> {
        let (stored_attempt, _) = attempt_ordinal(attempt)?;
        let lease = lease_micros(lease)?;
        let mut tx = self.write().await?;
        let renewed = sqlx::query(
            "UPDATE job_attempts SET lease_until = ?4 \
             WHERE job_id = ?1 AND attempt = ?2 AND worker = ?3 AND outcome = ?5",
        )
        .bind(job_id)
        .bind(stored_attempt)
        .bind(worker)
        .bind(instant(now()) + lease)
        .bind(AttemptOutcome::Running.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(renewed == 1)
    }

    async fn expired_leases(&self, limit: u32) -> Result<Vec<RunningAttempt>> {
        let attempts = sqlx::query_as(
            "SELECT a.job_id, a.attempt FROM job_attempts a \
             JOIN jobs j ON j.id = a.job_id AND j.runs = a.attempt AND j.status = ?1 \
             WHERE a.outcome = ?2 AND (a.lease_until IS NULL OR a.lease_until < ?3) \
             ORDER BY a.lease_until NULLS FIRST LIMIT ?4",
        )
        .bind(status(JobStatus::Running))
        .bind(AttemptOutcome::Running.to_string())
        .bind(instant(now()))
        .bind(page_size(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(attempts)
    }

    async fn interrupt_attempt(
        &self,
        job_id: Uuid,
        attempt: u32,
        reason: &str,
    ) -> Result<Option<Job>> {
        let (stored_attempt, ordinal) = attempt_ordinal(attempt)?;
        let error = interruption(ordinal, reason);
        let error_json = job_error_json(&error)?;
        let mut tx = self.write().await?;
        let at = now();
        // Due at once, and the attempt given back.
        let row: Option<SqliteJobRow> = sqlx::query_as(
            "UPDATE jobs SET status = ?3, attempts = attempts - 1, next_attempt_at = ?4, \
             last_error = ?5, updated_at = ?4 \
             WHERE id = ?1 AND runs = ?2 AND status = ?6 RETURNING *",
        )
        .bind(job_id)
        .bind(stored_attempt)
        .bind(status(JobStatus::Retrying))
        .bind(instant(at))
        .bind(&error_json)
        .bind(status(JobStatus::Running))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let job = Job::try_from(row)?;
        let started: i64 = sqlx::query_scalar(
            "SELECT started_at FROM job_attempts WHERE job_id = ?1 AND attempt = ?2",
        )
        .bind(job_id)
        .bind(stored_attempt)
        .fetch_one(&mut *tx)
        .await?;
        #[allow(clippy::cast_precision_loss)] // microseconds of one attempt
        let duration_ms = (instant(at) - started).max(0) as f64 / 1000.0;
        finish_attempt_row(
            &mut tx,
            job_id,
            stored_attempt,
            AttemptOutcome::Failed,
            at,
            duration_ms,
            Some(&error_json),
        )
        .await?;
        let factory = EventFactory {
            producer: &self.producer,
            at,
        };
        insert_outbox(
            &mut tx,
            factory.failed(&job, ordinal, error, duration_ms)?,
            at,
        )
        .await?;
        tx.commit().await?;
        tracing::debug!(%job_id, attempt, reason, "attempt interrupted");
        Ok(Some(job))
    }

    async fn complete_attempt(
        &self,
        job_id: Uuid,
        attempt: u32,
        result: Map<String, Value>,
        duration_ms: f64,
    ) -> Result<Option<Job>> {
        let (stored_attempt, ordinal) = attempt_ordinal(attempt)?;
        let duration_ms = check_duration(duration_ms)?;
        let mut tx = self.write().await?;
        // Taken under the write lock, so timestamps follow commit order.
        let at = now();
        let row: Option<SqliteJobRow> = sqlx::query_as(
            "UPDATE jobs SET status = ?3, result = ?4, finished_at = ?5, updated_at = ?5 \
             WHERE id = ?1 AND runs = ?2 AND status = ?6 RETURNING *",
        )
        .bind(job_id)
        .bind(stored_attempt)
        .bind(status(JobStatus::Completed))
        .bind(sqlx::types::Json(&result))
        .bind(instant(at))
        .bind(status(JobStatus::Running))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let job = Job::try_from(row)?;
        finish_attempt_row(
            &mut tx,
            job_id,
            stored_attempt,
            AttemptOutcome::Succeeded,
            at,
            duration_ms,
            None,
        )
        .await?;
        let factory = EventFactory {
            producer: &self.producer,
            at,
        };
        insert_outbox(
            &mut tx,
            factory.completed(&job, ordinal, result, duration_ms)?,
            at,
        )
        .await?;
        tx.commit().await?;
        tracing::debug!(%job_id, attempt, "attempt completed");
        Ok(Some(job))
    }

    async fn fail_attempt(
        &self,
        job_id: Uuid,
        attempt: u32,
        error: JobError,
        retry: Retry,
        duration_ms: f64,
    ) -> Result<Option<FailOutcome>> {
        let (stored_attempt, ordinal) = attempt_ordinal(attempt)?;
        let duration_ms = check_duration(duration_ms)?;
        let error = JobError {
            attempt: Some(ordinal),
            ..error
        };
        // The write lock, held since BEGIN IMMEDIATE, keeps the row as read until the update.
        let mut tx = self.write().await?;
        // Taken under the write lock, so timestamps follow commit order.
        let at = now();
        let current: Option<(i32, i32)> = sqlx::query_as(
            "SELECT attempts, max_attempts FROM jobs WHERE id = ?1 AND runs = ?2 AND status = ?3",
        )
        .bind(job_id)
        .bind(stored_attempt)
        .bind(status(JobStatus::Running))
        .fetch_optional(&mut *tx)
        .await?;
        let Some((attempts, max_attempts)) = current else {
            return Ok(None);
        };
        let (next_status, next_attempt_at) = after_failure(retry, attempts < max_attempts, at)?;
        let finished_at = next_attempt_at.is_none().then_some(at);
        let error_json = job_error_json(&error)?;
        let row: SqliteJobRow = sqlx::query_as(
            "UPDATE jobs SET status = ?2, last_error = ?3, next_attempt_at = ?4, finished_at = ?5, updated_at = ?6 \
             WHERE id = ?1 RETURNING *",
        )
        .bind(job_id)
        .bind(status(next_status))
        .bind(&error_json)
        .bind(next_attempt_at.map(instant))
        .bind(finished_at.map(instant))
        .bind(instant(at))
        .fetch_one(&mut *tx)
        .await?;
        let job = Job::try_from(row)?;
        finish_attempt_row(
            &mut tx,
            job_id,
            stored_attempt,
            AttemptOutcome::Failed,
            at,
            duration_ms,
            Some(&error_json),
        )
        .await?;

        let factory = EventFactory {
            producer: &self.producer,
            at,
        };
        insert_outbox(
            &mut tx,
            factory.failed(&job, ordinal, error, duration_ms)?,
            at,
        )
        .await?;
        if next_status == JobStatus::DeadLettered {
            let dead_lettered = factory.dead_lettered(&job)?;
            let letter = exhausted_dead_letter(&self.producer, &job, dead_lettered.event_id, at)?;
            insert_outbox(&mut tx, dead_lettered, at).await?;
            insert_dead_letter(&mut tx, &letter).await?;
        }
        tx.commit().await?;

        tracing::debug!(%job_id, attempt, status = %next_status, "attempt failed");
        Ok(Some(fail_outcome(job)))
    }

    async fn record_dead_letter(&self, letter: &DeadLetter) -> Result<bool> {
        let mut tx = self.write().await?;
        let inserted = insert_dead_letter(&mut tx, letter).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    async fn due_retries(
        &self,
        now: DateTime<Utc>,
        after: Option<&DueJob>,
        limit: u32,
    ) -> Result<Vec<DueJob>> {
        let rows: Vec<(Uuid, String, i64)> = sqlx::query_as(
            "SELECT id, type, next_attempt_at FROM jobs WHERE status = ?1 AND next_attempt_at <= ?2 \
             AND (?3 IS NULL OR (next_attempt_at, id) > (?3, ?4)) \
             ORDER BY next_attempt_at, id LIMIT ?5",
        )
        .bind(status(JobStatus::Retrying))
        .bind(instant(now))
        .bind(after.map(|a| instant(a.due_at)))
        .bind(after.map(|a| a.id))
        .bind(page_size(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| due_job(row, "next_attempt_at"))
            .collect()
    }

    async fn stale_pending(
        &self,
        older_than: Duration,
        after: Option<&DueJob>,
        limit: u32,
    ) -> Result<Vec<DueJob>> {
        let rows: Vec<(Uuid, String, i64)> = sqlx::query_as(
            "SELECT id, type, created_at FROM jobs WHERE status = ?1 AND updated_at < ?2 \
             AND (?3 IS NULL OR (created_at, id) > (?3, ?4)) \
             ORDER BY created_at, id LIMIT ?5",
        )
        .bind(status(JobStatus::Pending))
        .bind(instant(now()) - lease_micros(older_than)?)
        .bind(after.map(|a| instant(a.due_at)))
        .bind(after.map(|a| a.id))
        .bind(page_size(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| due_job(row, "created_at"))
            .collect()
    }

    async fn pending_outbox(&self, limit: u32) -> Result<Vec<OutboxEvent>> {
        let events = sqlx::query_as(
            "SELECT id, event_id, routing_key, body FROM outbox ORDER BY id LIMIT ?1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(events)
    }

    async fn claim_outbox(&self, limit: u32, lease: Duration) -> Result<Vec<OutboxEvent>> {
        let lease = lease_micros(lease)?;
        // One writer at a time: the claim is exclusive without row locks.
        let mut tx = self.write().await?;
        let at = instant(now());
        let mut events: Vec<OutboxEvent> = sqlx::query_as(
            "UPDATE outbox SET claimed_until = ?2 \
             WHERE id IN (SELECT id FROM outbox WHERE claimed_until IS NULL OR claimed_until < ?3 \
                          ORDER BY id LIMIT ?1) \
             RETURNING id, event_id, routing_key, body",
        )
        .bind(i64::from(limit))
        .bind(at + lease)
        .bind(at)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        events.sort_by_key(|e| e.id);
        Ok(events)
    }

    async fn release_outbox(&self, ids: &[i64]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.write().await?;
        for chunk in ids.chunks(DELETE_CHUNK) {
            let mut query =
                QueryBuilder::<Sqlite>::new("UPDATE outbox SET claimed_until = NULL WHERE id IN (");
            let mut list = query.separated(", ");
            for id in chunk {
                list.push_bind(*id);
            }
            list.push_unseparated(")");
            query.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn delete_outbox(&self, ids: &[i64]) -> Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut tx = self.write().await?;
        let mut deleted = 0;
        // SQLite has no arrays: bind each id of an IN list.
        for chunk in ids.chunks(DELETE_CHUNK) {
            let mut query = QueryBuilder::<Sqlite>::new("DELETE FROM outbox WHERE id IN (");
            let mut list = query.separated(", ");
            for id in chunk {
                list.push_bind(*id);
            }
            list.push_unseparated(")");
            deleted += query.build().execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(deleted)
    }

    async fn outbox_backlog(&self) -> Result<i64> {
        let count = sqlx::query_scalar("SELECT count(*) FROM outbox")
            .fetch_one(&self.pool)
            .await?;
        Ok(count)
    }

    async fn list_jobs(
        &self,
        filter: &JobFilter,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<JobPage> {
        let after = decode_cursor(cursor)?;
        let size = page_size(limit);
        let mut query = QueryBuilder::<Sqlite>::new("SELECT * FROM jobs");
        // One row more than the page tells whether another page follows.
        push_job_page_clauses(&mut query, filter, after, size + 1, instant);
        let rows: Vec<SqliteJobRow> = query.build_query_as().fetch_all(&self.pool).await?;
        let items = rows
            .into_iter()
            .map(Job::try_from)
            .collect::<Result<Vec<_>>>()?;
        job_page(items, size)
    }

    async fn job_detail(&self, job_id: Uuid) -> Result<Option<(Job, Vec<JobAttempt>)>> {
        let row: Option<SqliteJobRow> = sqlx::query_as("SELECT * FROM jobs WHERE id = ?1")
            .bind(job_id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let attempts: Vec<SqliteJobAttemptRow> =
            sqlx::query_as("SELECT * FROM job_attempts WHERE job_id = ?1 ORDER BY attempt")
                .bind(job_id)
                .fetch_all(&self.pool)
                .await?;
        let attempts = attempts
            .into_iter()
            .map(JobAttempt::try_from)
            .collect::<Result<Vec<_>>>()?;
        Ok(Some((row.try_into()?, attempts)))
    }

    async fn list_dead_letters(&self, limit: u32, cursor: Option<&str>) -> Result<DeadLetterPage> {
        let after = decode_cursor(cursor)?;
        let size = page_size(limit);
        let mut query = QueryBuilder::<Sqlite>::new("SELECT * FROM dead_letters");
        push_dead_letter_page_clauses(&mut query, after, size + 1, instant);
        let rows: Vec<SqliteDeadLetterRow> = query.build_query_as().fetch_all(&self.pool).await?;
        let items = rows
            .into_iter()
            .map(DeadLetter::try_from)
            .collect::<Result<Vec<_>>>()?;
        dead_letter_page(items, size)
    }

    async fn count_by_status(&self) -> Result<Vec<(JobStatus, i64)>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, count(*) FROM jobs GROUP BY status ORDER BY status")
                .fetch_all(&self.pool)
                .await?;
        status_counts(rows)
    }
}
