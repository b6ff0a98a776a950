//! The job store: the authoritative state of every job, kept in PostgreSQL.
//!
//! The processor writes through it, the read model reads through it. Each state change and
//! the event that announces it are written in one transaction (the transactional outbox):
//! either both exist or neither, so an event is never lost and never announces a change that
//! did not happen. A relay reads [`JobStore::pending_outbox`], publishes with confirms and
//! then calls [`JobStore::delete_outbox`]; a crash between publish and delete republishes,
//! which consumers absorb by deduplicating on `eventId`.
//!
//! Every processor write is idempotent under redelivery: it changes a job only from the state
//! it expects (a start only from PENDING or a due RETRYING, a completion or failure only of
//! the attempt that is running), and otherwise changes nothing and says so (`None` or
//! [`Accepted::Duplicate`]).
//!
//! **Retry scheduling lives in the database.** A failed attempt that may be retried leaves
//! the job RETRYING with `next_attempt_at`; the processor acknowledges the message and a
//! scheduler polls [`JobStore::due_retries`] and calls [`JobStore::start_attempt`] for each.
//! A pending retry thus survives restarts of every component, needs no broker plugin or
//! per-delay queues, and is visible to the read model. Attempts left RUNNING by a crashed
//! worker are found with [`JobStore::abandoned_attempts`] and failed like any other attempt.
//!
//! Timestamps are taken once per operation from this process's clock, truncated to
//! microseconds (PostgreSQL's precision), so a returned [`Job`] and its event agree exactly.

pub mod contracts;
mod cursor;
mod error;
mod events;
mod rows;

use std::num::NonZeroU64;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::{Map, Value};
use sqlx::postgres::{PgPoolOptions, Postgres};
use sqlx::{PgConnection, PgPool, QueryBuilder};
use uuid::Uuid;

use crate::contracts::dead_letter::{DeadLetter, DeadLetterReason};
use crate::contracts::dead_letter_page::DeadLetterPage;
use crate::contracts::event_envelope::EventProducer;
use crate::contracts::job::{Job, JobError, JobStatus, JobType};
use crate::contracts::job_attempt::{AttemptOutcome, JobAttempt};
use crate::contracts::job_created::JobCreated;
use crate::contracts::job_page::JobPage;
use crate::contracts::page_cursor::PageCursor;
use crate::cursor::{CursorKind, Keyset};
pub use crate::error::{Result, StoreError};
use crate::events::{EventFactory, NewOutboxEvent};
use crate::rows::{DeadLetterRow, JobAttemptRow, JobRow};

/// Largest page the list operations return (the read model's `limit` maximum); larger
/// requests are clamped, and 0 is treated as 1.
pub const MAX_PAGE_SIZE: u32 = 500;

/// Outcome of [`JobStore::accept`].
#[derive(Debug, Clone, PartialEq)]
pub enum Accepted {
    /// The job was stored now, PENDING.
    New(Job),
    /// The job (same id, or same creation idempotency key) was already stored; nothing changed.
    Duplicate(Job),
}

impl Accepted {
    pub fn job(&self) -> &Job {
        match self {
            Self::New(job) | Self::Duplicate(job) => job,
        }
    }

    pub fn is_new(&self) -> bool {
        matches!(self, Self::New(_))
    }
}

/// An attempt that [`JobStore::start_attempt`] started: the job is RUNNING.
#[derive(Debug, Clone, PartialEq)]
pub struct StartedAttempt {
    pub job: Job,
    /// 1 for the first attempt; the number to pass to complete/fail.
    pub attempt: u32,
}

/// Whether a failed attempt may be retried, as the caller (who knows why it failed) judges it.
/// The store decides the resulting status from the job's attempts and `maxAttempts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// A transient failure: retry after this backoff, unless the attempts are exhausted
    /// (then the job is DEAD_LETTERED).
    After(Duration),
    /// A failure no retry can fix (unknown type, invalid payload): the job is FAILED.
    Never,
}

/// Outcome of [`JobStore::fail_attempt`]; each carries the job after the change.
#[derive(Debug, Clone, PartialEq)]
pub enum FailOutcome {
    /// Another attempt is scheduled at `job.next_attempt_at`.
    Retrying(Job),
    /// Not retryable: terminal.
    Failed(Job),
    /// Every attempt failed: terminal, announced by job.dead-lettered and kept as a dead letter.
    DeadLettered(Job),
}

impl FailOutcome {
    pub fn job(&self) -> &Job {
        match self {
            Self::Retrying(job) | Self::Failed(job) | Self::DeadLettered(job) => job,
        }
    }
}

/// A RUNNING attempt (see [`JobStore::abandoned_attempts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct RunningAttempt {
    pub job_id: Uuid,
    #[sqlx(try_from = "i32")]
    pub attempt: u32,
}

/// One event waiting in the outbox.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct OutboxEvent {
    /// Position in the outbox (publish in this order; pass back to delete).
    pub id: i64,
    pub event_id: Uuid,
    /// The event type, e.g. `job.started`.
    pub routing_key: String,
    /// The event exactly as its contract type serialized it.
    pub body: Value,
}

/// Filters of [`JobStore::list_jobs`]; `None` means any.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobFilter {
    pub status: Option<JobStatus>,
    pub job_type: Option<JobType>,
    /// Jobs created at or after this instant.
    pub created_after: Option<DateTime<Utc>>,
    /// Jobs created strictly before this instant.
    pub created_before: Option<DateTime<Utc>>,
}

/// The PostgreSQL job store. Cheap to clone (a pool handle).
#[derive(Debug, Clone)]
pub struct JobStore {
    pool: PgPool,
    /// Named as the producer of every event this store writes to the outbox.
    producer: EventProducer,
}

/// The time of one operation, at PostgreSQL's precision.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn page_size(limit: u32) -> i64 {
    i64::from(limit.clamp(1, MAX_PAGE_SIZE))
}

fn attempt_ordinal(attempt: u32) -> Result<(i32, NonZeroU64)> {
    let invalid =
        || StoreError::InvalidArgument(format!("attempt {attempt} is not a valid attempt number"));
    let stored = i32::try_from(attempt).map_err(|_| invalid())?;
    let ordinal = NonZeroU64::new(u64::from(attempt)).ok_or_else(invalid)?;
    Ok((stored, ordinal))
}

fn check_duration(duration_ms: f64) -> Result<f64> {
    if duration_ms.is_finite() && duration_ms >= 0.0 {
        Ok(duration_ms)
    } else {
        Err(StoreError::InvalidArgument(format!(
            "durationMs must be a finite, non-negative number, not {duration_ms}"
        )))
    }
}

fn status(status: JobStatus) -> String {
    status.to_string()
}

fn job_error_json(error: &JobError) -> Result<Value> {
    serde_json::to_value(error)
        .map_err(|e| StoreError::Contract(format!("serializing JobError: {e}")))
}

async fn insert_outbox(
    conn: &mut PgConnection,
    event: NewOutboxEvent,
    at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO outbox (event_id, routing_key, body, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(event.event_id)
    .bind(event.routing_key)
    .bind(event.body)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

async fn insert_dead_letter(conn: &mut PgConnection, letter: &DeadLetter) -> Result<bool> {
    let attempts = letter
        .attempts
        .map(|n| {
            i32::try_from(n).map_err(|_| {
                StoreError::InvalidArgument(format!("dead letter attempts {n} is too large"))
            })
        })
        .transpose()?;
    let inserted = sqlx::query(
        "INSERT INTO dead_letters (id, source, queue, reason, message, job_id, event_id, attempts, \
         received_at, raw_body, correlation_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO NOTHING",
    )
    .bind(letter.id)
    .bind(&letter.source)
    .bind(&letter.queue)
    .bind(letter.reason.to_string())
    // `text` cannot hold NUL; the message is human-readable detail, so replace it there.
    .bind(letter.message.as_ref().map(|m| m.replace('\0', "\u{FFFD}")))
    .bind(letter.job_id)
    .bind(letter.event_id)
    .bind(attempts)
    .bind(letter.received_at)
    .bind(letter.raw_body.as_bytes())
    .bind(letter.correlation_id.as_ref().map(|c| c.as_str()))
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Records how an attempt ended.
async fn finish_attempt_row(
    conn: &mut PgConnection,
    job_id: Uuid,
    attempt: i32,
    outcome: AttemptOutcome,
    at: DateTime<Utc>,
    duration_ms: f64,
    error: Option<&Value>,
) -> Result<()> {
    sqlx::query(
        "UPDATE job_attempts SET outcome = $3, finished_at = $4, duration_ms = $5, error = $6 \
         WHERE job_id = $1 AND attempt = $2",
    )
    .bind(job_id)
    .bind(attempt)
    .bind(outcome.to_string())
    .bind(at)
    .bind(duration_ms)
    .bind(error)
    .execute(conn)
    .await?;
    Ok(())
}

/// Appends the filters, keyset position, order and limit of a job page to `query`.
fn push_job_page_clauses(
    query: &mut QueryBuilder<Postgres>,
    filter: &JobFilter,
    after: Option<Keyset>,
    fetch: i64,
) {
    query.push(" WHERE TRUE");
    if let Some(job_status) = filter.status {
        query.push(" AND status = ").push_bind(status(job_status));
    }
    if let Some(job_type) = &filter.job_type {
        query
            .push(" AND type = ")
            .push_bind(job_type.as_str().to_owned());
    }
    if let Some(from) = filter.created_after {
        query.push(" AND created_at >= ").push_bind(from);
    }
    if let Some(until) = filter.created_before {
        query.push(" AND created_at < ").push_bind(until);
    }
    if let Some(after) = after {
        // A row comparison, which PostgreSQL answers from the (…, created_at, id) indexes.
        query
            .push(" AND (created_at, id) < (")
            .push_bind(after.at)
            .push(", ")
            .push_bind(after.id)
            .push(")");
    }
    query
        .push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .push_bind(fetch);
}

impl JobStore {
    /// Connects and applies the migrations (safe to run from several processes at once:
    /// sqlx serialises them with an advisory lock).
    pub async fn connect(url: &str, max_connections: u32, producer: EventProducer) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await?;
        Self::with_pool(pool, producer).await
    }

    /// Uses an existing pool, applying the migrations.
    pub async fn with_pool(pool: PgPool, producer: EventProducer) -> Result<Self> {
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool, producer })
    }

    /// Whether PostgreSQL answers (for `/readyz`).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    // ----- processor writes ------------------------------------------------------------------

    /// Stores the job a job.created event announces, PENDING, unless it is already stored.
    /// `createdAt` is the event's `submittedAt` (when the gateway accepted it).
    pub async fn accept(&self, created: &JobCreated) -> Result<Accepted> {
        let p = &created.payload;
        let max_attempts = i32::try_from(p.max_attempts.get()).map_err(|_| {
            StoreError::InvalidArgument(format!("maxAttempts {} is too large", p.max_attempts))
        })?;
        let idempotency_key = created.idempotency_key.as_str();
        let inserted: Option<JobRow> = sqlx::query_as(
            "INSERT INTO jobs (id, type, status, payload, attempts, max_attempts, correlation_id, \
             idempotency_key, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 0, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING RETURNING *",
        )
        .bind(p.job_id)
        .bind(p.type_.as_str())
        .bind(status(JobStatus::Pending))
        .bind(sqlx::types::Json(&p.payload))
        .bind(max_attempts)
        .bind(created.correlation_id.as_str())
        .bind(idempotency_key)
        .bind(p.submitted_at)
        .bind(now())
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = inserted {
            return Ok(Accepted::New(row.try_into()?));
        }
        // The conflict was on the id or on the idempotency key; prefer the job with this id.
        // Jobs are never deleted, so the conflicting row is there (fetch_one: RowNotFound if not).
        let row: JobRow = sqlx::query_as(
            "SELECT * FROM jobs WHERE id = $1 OR idempotency_key = $2 ORDER BY (id = $1) DESC LIMIT 1",
        )
        .bind(p.job_id)
        .bind(idempotency_key)
        .fetch_one(&self.pool)
        .await?;
        Ok(Accepted::Duplicate(row.try_into()?))
    }

    /// Starts the next attempt of a PENDING job, or of a RETRYING job whose retry is due:
    /// RUNNING, attempts + 1, an attempt row and a job.started event. `None` when the job is
    /// unknown, running, terminal or not yet due (a redelivered start changes nothing).
    pub async fn start_attempt(
        &self,
        job_id: Uuid,
        worker: &str,
    ) -> Result<Option<StartedAttempt>> {
        let at = now();
        let mut tx = self.pool.begin().await?;
        let row: Option<JobRow> = sqlx::query_as(
            "UPDATE jobs SET status = $3, attempts = attempts + 1, started_at = COALESCE(started_at, $2), \
             next_attempt_at = NULL, updated_at = $2 \
             WHERE id = $1 AND attempts < max_attempts \
               AND (status = $4 OR (status = $5 AND next_attempt_at <= $2)) \
             RETURNING *",
        )
        .bind(job_id)
        .bind(at)
        .bind(status(JobStatus::Running))
        .bind(status(JobStatus::Pending))
        .bind(status(JobStatus::Retrying))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let job = Job::try_from(row)?;
        let attempt = u32::try_from(job.attempts)
            .map_err(|e| StoreError::Contract(format!("attempts of job {job_id}: {e}")))?;
        let (stored_attempt, ordinal) = attempt_ordinal(attempt)?;

        sqlx::query(
            "INSERT INTO job_attempts (job_id, attempt, outcome, started_at, worker) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(job_id)
        .bind(stored_attempt)
        .bind(AttemptOutcome::Running.to_string())
        .bind(at)
        .bind(worker)
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

    /// Completes the running attempt `attempt`: COMPLETED with its result, and a job.completed
    /// event. `None` when that attempt is not the one running (a redelivered completion).
    pub async fn complete_attempt(
        &self,
        job_id: Uuid,
        attempt: u32,
        result: Map<String, Value>,
        duration_ms: f64,
    ) -> Result<Option<Job>> {
        let (stored_attempt, ordinal) = attempt_ordinal(attempt)?;
        let duration_ms = check_duration(duration_ms)?;
        let at = now();
        let mut tx = self.pool.begin().await?;
        let row: Option<JobRow> = sqlx::query_as(
            "UPDATE jobs SET status = $3, result = $4, finished_at = $5, updated_at = $5 \
             WHERE id = $1 AND attempts = $2 AND status = $6 RETURNING *",
        )
        .bind(job_id)
        .bind(stored_attempt)
        .bind(status(JobStatus::Completed))
        .bind(sqlx::types::Json(&result))
        .bind(at)
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

    /// Fails the running attempt `attempt` and decides what follows:
    /// - [`Retry::Never`] → FAILED;
    /// - [`Retry::After`] with attempts left → RETRYING, due after the backoff;
    /// - [`Retry::After`] with every attempt used → DEAD_LETTERED, plus a job.dead-lettered
    ///   event and a dead letter (reason attempts-exhausted, `rawBody` the job as JSON).
    ///
    /// Always writes a job.failed event. `None` when that attempt is not the one running.
    pub async fn fail_attempt(
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
        let at = now();
        let mut tx = self.pool.begin().await?;
        let current: Option<JobRow> = sqlx::query_as(
            "SELECT * FROM jobs WHERE id = $1 AND attempts = $2 AND status = $3 FOR UPDATE",
        )
        .bind(job_id)
        .bind(stored_attempt)
        .bind(status(JobStatus::Running))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(current) = current else {
            return Ok(None);
        };
        let attempts_left = current.attempts < current.max_attempts;

        let (next_status, next_attempt_at) = match retry {
            Retry::Never => (JobStatus::Failed, None),
            Retry::After(_) if !attempts_left => (JobStatus::DeadLettered, None),
            Retry::After(backoff) => {
                let backoff = chrono::TimeDelta::from_std(backoff).map_err(|_| {
                    StoreError::InvalidArgument(format!("backoff {backoff:?} is too long"))
                })?;
                let due = at
                    .checked_add_signed(backoff)
                    .ok_or_else(|| StoreError::InvalidArgument("backoff is too long".into()))?;
                (JobStatus::Retrying, Some(due.trunc_subsecs(6)))
            }
        };
        let finished_at = next_attempt_at.is_none().then_some(at);
        let error_json = job_error_json(&error)?;
        let row: JobRow = sqlx::query_as(
            "UPDATE jobs SET status = $2, last_error = $3, next_attempt_at = $4, finished_at = $5, updated_at = $6 \
             WHERE id = $1 RETURNING *",
        )
        .bind(job_id)
        .bind(status(next_status))
        .bind(&error_json)
        .bind(next_attempt_at)
        .bind(finished_at)
        .bind(at)
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
            let letter = DeadLetter {
                id: Uuid::new_v4(),
                source: self.producer.service.as_str().to_owned(),
                queue: None,
                reason: DeadLetterReason::AttemptsExhausted,
                message: job.last_error.as_ref().map(|e| {
                    format!(
                        "{} attempts failed; last: {}: {}",
                        job.attempts, e.code, e.message
                    )
                }),
                job_id: Some(job_id),
                event_id: Some(dead_lettered.event_id),
                attempts: Some(job.attempts),
                received_at: at,
                raw_body: serde_json::to_string(&job)
                    .map_err(|e| StoreError::Contract(format!("serializing job {job_id}: {e}")))?,
                correlation_id: Some(job.correlation_id.clone()),
            };
            insert_outbox(&mut tx, dead_lettered, at).await?;
            insert_dead_letter(&mut tx, &letter).await?;
        }
        tx.commit().await?;

        tracing::debug!(%job_id, attempt, status = %next_status, "attempt failed");
        Ok(Some(match next_status {
            JobStatus::Retrying => FailOutcome::Retrying(job),
            JobStatus::DeadLettered => FailOutcome::DeadLettered(job),
            _ => FailOutcome::Failed(job),
        }))
    }

    /// Stores a message that could not be processed (malformed JSON, schema violation, ...).
    /// Idempotent by `id`: returns `false` when that dead letter was already stored.
    pub async fn record_dead_letter(&self, letter: &DeadLetter) -> Result<bool> {
        let mut conn = self.pool.acquire().await?;
        insert_dead_letter(&mut conn, letter).await
    }

    /// RETRYING jobs whose next attempt is due at `now`, the longest-waiting first.
    pub async fn due_retries(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Uuid>> {
        let ids = sqlx::query_scalar(
            "SELECT id FROM jobs WHERE status = $1 AND next_attempt_at <= $2 ORDER BY next_attempt_at LIMIT $3",
        )
        .bind(status(JobStatus::Retrying))
        .bind(now)
        .bind(page_size(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(ids)
    }

    /// Attempts still RUNNING that started before `started_before`: their worker most likely
    /// died. Fail them with [`JobStore::fail_attempt`] (e.g. code `timeout`, retryable); a
    /// worker that is in fact still running then finds its completion refused.
    pub async fn abandoned_attempts(
        &self,
        started_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<RunningAttempt>> {
        let attempts = sqlx::query_as(
            "SELECT a.job_id, a.attempt FROM job_attempts a \
             JOIN jobs j ON j.id = a.job_id AND j.attempts = a.attempt AND j.status = $1 \
             WHERE a.outcome = $2 AND a.started_at < $3 ORDER BY a.started_at LIMIT $4",
        )
        .bind(status(JobStatus::Running))
        .bind(AttemptOutcome::Running.to_string())
        .bind(started_before)
        .bind(page_size(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(attempts)
    }

    // ----- outbox relay ----------------------------------------------------------------------

    /// The oldest events not yet published, in the order they were written.
    pub async fn pending_outbox(&self, limit: u32) -> Result<Vec<OutboxEvent>> {
        let events = sqlx::query_as(
            "SELECT id, event_id, routing_key, body FROM outbox ORDER BY id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(events)
    }

    /// Deletes published events; returns how many were deleted.
    pub async fn delete_outbox(&self, ids: &[i64]) -> Result<u64> {
        let deleted = sqlx::query("DELETE FROM outbox WHERE id = ANY($1)")
            .bind(ids)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(deleted)
    }

    /// Events waiting to be published (the outbox backlog metric).
    pub async fn outbox_backlog(&self) -> Result<i64> {
        let count = sqlx::query_scalar("SELECT count(*) FROM outbox")
            .fetch_one(&self.pool)
            .await?;
        Ok(count)
    }

    // ----- read model ------------------------------------------------------------------------

    /// One page of jobs, newest first (`created_at`, then `id`), after `cursor` (the previous
    /// page's `nextCursor`). Keyset pagination: a page costs the same at any depth.
    pub async fn list_jobs(
        &self,
        filter: &JobFilter,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<JobPage> {
        let after = cursor
            .map(|c| Keyset::decode(c, CursorKind::Jobs))
            .transpose()?;
        let size = page_size(limit);
        let mut query = QueryBuilder::<Postgres>::new("SELECT * FROM jobs");
        // One row more than the page tells whether another page follows.
        push_job_page_clauses(&mut query, filter, after, size + 1);
        let rows: Vec<JobRow> = query.build_query_as().fetch_all(&self.pool).await?;
        let mut items = rows
            .into_iter()
            .map(Job::try_from)
            .collect::<Result<Vec<_>>>()?;
        let next_cursor = next_page_cursor(&mut items, size, CursorKind::Jobs, |job| Keyset {
            at: job.created_at,
            id: job.id,
        })?;
        Ok(JobPage { items, next_cursor })
    }

    /// A job and its attempts, oldest attempt first; `None` for an unknown job.
    pub async fn job_detail(&self, job_id: Uuid) -> Result<Option<(Job, Vec<JobAttempt>)>> {
        let row: Option<JobRow> = sqlx::query_as("SELECT * FROM jobs WHERE id = $1")
            .bind(job_id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let attempts: Vec<JobAttemptRow> =
            sqlx::query_as("SELECT * FROM job_attempts WHERE job_id = $1 ORDER BY attempt")
                .bind(job_id)
                .fetch_all(&self.pool)
                .await?;
        let attempts = attempts
            .into_iter()
            .map(JobAttempt::try_from)
            .collect::<Result<Vec<_>>>()?;
        Ok(Some((row.try_into()?, attempts)))
    }

    /// One page of dead letters, newest first (`received_at`, then `id`).
    pub async fn list_dead_letters(
        &self,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<DeadLetterPage> {
        let after = cursor
            .map(|c| Keyset::decode(c, CursorKind::DeadLetters))
            .transpose()?;
        let size = page_size(limit);
        let rows: Vec<DeadLetterRow> = sqlx::query_as(
            "SELECT * FROM dead_letters \
             WHERE ($1::timestamptz IS NULL OR (received_at, id) < ($1, $2)) \
             ORDER BY received_at DESC, id DESC LIMIT $3",
        )
        .bind(after.map(|k| k.at))
        .bind(after.map(|k| k.id))
        .bind(size + 1)
        .fetch_all(&self.pool)
        .await?;
        let mut items = rows
            .into_iter()
            .map(DeadLetter::try_from)
            .collect::<Result<Vec<_>>>()?;
        let next_cursor =
            next_page_cursor(&mut items, size, CursorKind::DeadLetters, |letter| Keyset {
                at: letter.received_at,
                id: letter.id,
            })?;
        Ok(DeadLetterPage { items, next_cursor })
    }

    /// How many jobs are in each status; statuses without jobs are absent.
    pub async fn count_by_status(&self) -> Result<Vec<(JobStatus, i64)>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, count(*) FROM jobs GROUP BY status ORDER BY status")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|(text, count)| {
                let parsed = text
                    .parse::<JobStatus>()
                    .map_err(|e| StoreError::CorruptRow {
                        table: "jobs",
                        key: format!("status {text}"),
                        reason: e.to_string(),
                    })?;
                Ok((parsed, count))
            })
            .collect()
    }
}

/// Trims the extra row fetched beyond `size` and returns the cursor of the next page, if any.
fn next_page_cursor<T>(
    items: &mut Vec<T>,
    size: i64,
    kind: CursorKind,
    position: impl Fn(&T) -> Keyset,
) -> Result<Option<PageCursor>> {
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    if items.len() <= size {
        return Ok(None);
    }
    items.truncate(size);
    let Some(last) = items.last() else {
        return Ok(None);
    };
    let cursor = PageCursor::try_from(position(last).encode(kind))
        .map_err(|e| StoreError::Contract(format!("page cursor: {e}")))?;
    Ok(Some(cursor))
}

#[cfg(test)]
mod tests;
