//! The PostgreSQL adapter: the deployed job store.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::postgres::{PgPoolOptions, Postgres};
use sqlx::{PgConnection, PgPool, QueryBuilder};
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
    StartedAttempt, after_failure, attempt_ordinal, check_duration, dead_letter_attempts,
    dead_letter_message, dead_letter_page, decode_cursor, exhausted_dead_letter, fail_outcome,
    interruption, job_error_json, job_page, lease_seconds, now, page_size,
    push_dead_letter_page_clauses, push_job_page_clauses, started_attempt, status, status_counts,
    stored_max_attempts,
};

/// The PostgreSQL job store. Cheap to clone (a pool handle).
#[derive(Debug, Clone)]
pub struct PostgresJobStore {
    pub(crate) pool: PgPool,
    /// Named as the producer of every event this store writes to the outbox.
    producer: EventProducer,
}

fn due_job((id, job_type, due_at): (Uuid, String, DateTime<Utc>)) -> DueJob {
    DueJob {
        id,
        job_type,
        due_at,
    }
}

/// Timestamps are bound as they are: `timestamptz` keeps microseconds.
fn instant(at: DateTime<Utc>) -> DateTime<Utc> {
    at
}

/// Appends the clauses of a job page (see [`crate::push_job_page_clauses`]).
pub(crate) fn push_job_page(
    query: &mut QueryBuilder<Postgres>,
    filter: &JobFilter,
    after: Option<crate::cursor::Keyset>,
    fetch: i64,
) {
    push_job_page_clauses(query, filter, after, fetch, instant);
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
    let inserted = sqlx::query(
        "INSERT INTO dead_letters (id, source, queue, reason, message, job_id, event_id, attempts, \
         received_at, raw_body, correlation_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO NOTHING",
    )
    .bind(letter.id)
    .bind(&letter.source)
    .bind(&letter.queue)
    .bind(letter.reason.to_string())
    .bind(dead_letter_message(letter))
    .bind(letter.job_id)
    .bind(letter.event_id)
    .bind(dead_letter_attempts(letter)?)
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
        "UPDATE job_attempts SET outcome = $3, finished_at = $4, duration_ms = $5, error = $6, \
         lease_until = NULL WHERE job_id = $1 AND attempt = $2",
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

impl PostgresJobStore {
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
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self { pool, producer })
    }
}

#[async_trait::async_trait]
impl JobStore for PostgresJobStore {
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

    async fn start_attempt(
        &self,
        job_id: Uuid,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<StartedAttempt>> {
        let lease = lease_seconds(lease)?;
        let at = now();
        let mut tx = self.pool.begin().await?;
        let row: Option<JobRow> = sqlx::query_as(
            "UPDATE jobs SET status = $3, attempts = attempts + 1, runs = runs + 1, \
             started_at = COALESCE(started_at, $2), next_attempt_at = NULL, updated_at = $2 \
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
        let runs = row.runs;
        let job = Job::try_from(row)?;
        let (attempt, stored_attempt, ordinal) = started_attempt(job_id, runs)?;

        sqlx::query(
            "INSERT INTO job_attempts (job_id, attempt, outcome, started_at, worker, lease_until) \
             VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))",
        )
        .bind(job_id)
        .bind(stored_attempt)
        .bind(AttemptOutcome::Running.to_string())
        .bind(at)
        .bind(worker)
        .bind(lease)
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
        let renewed = sqlx::query(
            "UPDATE job_attempts SET lease_until = now() + make_interval(secs => $4) \
             WHERE job_id = $1 AND attempt = $2 AND worker = $3 AND outcome = $5",
        )
        .bind(job_id)
        .bind(stored_attempt)
        .bind(worker)
        .bind(lease_seconds(lease)?)
        .bind(AttemptOutcome::Running.to_string())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(renewed == 1)
    }

    async fn expired_leases(&self, limit: u32) -> Result<Vec<RunningAttempt>> {
        let attempts = sqlx::query_as(
            "SELECT a.job_id, a.attempt FROM job_attempts a \
             JOIN jobs j ON j.id = a.job_id AND j.runs = a.attempt AND j.status = $1 \
             WHERE a.outcome = $2 AND (a.lease_until IS NULL OR a.lease_until < now()) \
             ORDER BY a.lease_until NULLS FIRST LIMIT $3",
        )
        .bind(status(JobStatus::Running))
        .bind(AttemptOutcome::Running.to_string())
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
        let at = now();
        let mut tx = self.pool.begin().await?;
        // Due at once, and the attempt given back.
        let row: Option<JobRow> = sqlx::query_as(
            "UPDATE jobs SET status = $3, attempts = attempts - 1, next_attempt_at = $4, \
             last_error = $5, updated_at = $4 \
             WHERE id = $1 AND runs = $2 AND status = $6 RETURNING *",
        )
        .bind(job_id)
        .bind(stored_attempt)
        .bind(status(JobStatus::Retrying))
        .bind(at)
        .bind(&error_json)
        .bind(status(JobStatus::Running))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let job = Job::try_from(row)?;
        let duration_ms: f64 = sqlx::query_scalar(
            "UPDATE job_attempts SET outcome = $3, finished_at = $4, error = $5, lease_until = NULL, \
             duration_ms = GREATEST(0, EXTRACT(EPOCH FROM ($4 - started_at)) * 1000)::float8 \
             WHERE job_id = $1 AND attempt = $2 RETURNING duration_ms",
        )
        .bind(job_id)
        .bind(stored_attempt)
        .bind(AttemptOutcome::Failed.to_string())
        .bind(at)
        .bind(&error_json)
        .fetch_one(&mut *tx)
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
        let at = now();
        let mut tx = self.pool.begin().await?;
        let row: Option<JobRow> = sqlx::query_as(
            "UPDATE jobs SET status = $3, result = $4, finished_at = $5, updated_at = $5 \
             WHERE id = $1 AND runs = $2 AND status = $6 RETURNING *",
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
        let at = now();
        let mut tx = self.pool.begin().await?;
        let current: Option<JobRow> = sqlx::query_as(
            "SELECT * FROM jobs WHERE id = $1 AND runs = $2 AND status = $3 FOR UPDATE",
        )
        .bind(job_id)
        .bind(stored_attempt)
        .bind(status(JobStatus::Running))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(current) = current else {
            return Ok(None);
        };
        let (next_status, next_attempt_at) =
            after_failure(retry, current.attempts < current.max_attempts, at)?;
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
            let letter = exhausted_dead_letter(&self.producer, &job, dead_lettered.event_id, at)?;
            insert_outbox(&mut tx, dead_lettered, at).await?;
            insert_dead_letter(&mut tx, &letter).await?;
        }
        tx.commit().await?;

        tracing::debug!(%job_id, attempt, status = %next_status, "attempt failed");
        Ok(Some(fail_outcome(job)))
    }

    async fn record_dead_letter(&self, letter: &DeadLetter) -> Result<bool> {
        let mut conn = self.pool.acquire().await?;
        insert_dead_letter(&mut conn, letter).await
    }

    async fn due_retries(
        &self,
        now: DateTime<Utc>,
        after: Option<&DueJob>,
        limit: u32,
    ) -> Result<Vec<DueJob>> {
        let rows: Vec<(Uuid, String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT id, type, next_attempt_at FROM jobs WHERE status = $1 AND next_attempt_at <= $2 \
             AND ($3::timestamptz IS NULL OR (next_attempt_at, id) > ($3, $4)) \
             ORDER BY next_attempt_at, id LIMIT $5",
        )
        .bind(status(JobStatus::Retrying))
        .bind(now)
        .bind(after.map(|a| a.due_at))
        .bind(after.map(|a| a.id))
        .bind(page_size(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(due_job).collect())
    }

    async fn stale_pending(
        &self,
        older_than: Duration,
        after: Option<&DueJob>,
        limit: u32,
    ) -> Result<Vec<DueJob>> {
        let rows: Vec<(Uuid, String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT id, type, created_at FROM jobs WHERE status = $1 \
             AND updated_at < now() - make_interval(secs => $2) \
             AND ($3::timestamptz IS NULL OR (created_at, id) > ($3, $4)) \
             ORDER BY created_at, id LIMIT $5",
        )
        .bind(status(JobStatus::Pending))
        .bind(older_than.as_secs_f64())
        .bind(after.map(|a| a.due_at))
        .bind(after.map(|a| a.id))
        .bind(page_size(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(due_job).collect())
    }

    async fn pending_outbox(&self, limit: u32) -> Result<Vec<OutboxEvent>> {
        let events = sqlx::query_as(
            "SELECT id, event_id, routing_key, body FROM outbox ORDER BY id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(events)
    }

    async fn claim_outbox(&self, limit: u32, lease: Duration) -> Result<Vec<OutboxEvent>> {
        // SKIP LOCKED: concurrent relays take disjoint batches instead of waiting or sharing.
        let mut events: Vec<OutboxEvent> = sqlx::query_as(
            "UPDATE outbox SET claimed_until = now() + make_interval(secs => $2) \
             WHERE id IN (SELECT id FROM outbox \
                          WHERE claimed_until IS NULL OR claimed_until < now() \
                          ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED) \
             RETURNING id, event_id, routing_key, body",
        )
        .bind(i64::from(limit))
        .bind(lease_seconds(lease)?)
        .fetch_all(&self.pool)
        .await?;
        events.sort_by_key(|e| e.id);
        Ok(events)
    }

    async fn release_outbox(&self, ids: &[i64]) -> Result<()> {
        sqlx::query("UPDATE outbox SET claimed_until = NULL WHERE id = ANY($1)")
            .bind(ids)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_outbox(&self, ids: &[i64]) -> Result<u64> {
        let deleted = sqlx::query("DELETE FROM outbox WHERE id = ANY($1)")
            .bind(ids)
            .execute(&self.pool)
            .await?
            .rows_affected();
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
        let mut query = QueryBuilder::<Postgres>::new("SELECT * FROM jobs");
        // One row more than the page tells whether another page follows.
        push_job_page(&mut query, filter, after, size + 1);
        let rows: Vec<JobRow> = query.build_query_as().fetch_all(&self.pool).await?;
        let items = rows
            .into_iter()
            .map(Job::try_from)
            .collect::<Result<Vec<_>>>()?;
        job_page(items, size)
    }

    async fn job_detail(&self, job_id: Uuid) -> Result<Option<(Job, Vec<JobAttempt>)>> {
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

    async fn list_dead_letters(&self, limit: u32, cursor: Option<&str>) -> Result<DeadLetterPage> {
        let after = decode_cursor(cursor)?;
        let size = page_size(limit);
        let mut query = QueryBuilder::<Postgres>::new("SELECT * FROM dead_letters");
        push_dead_letter_page_clauses(&mut query, after, size + 1, instant);
        let rows: Vec<DeadLetterRow> = query.build_query_as().fetch_all(&self.pool).await?;
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
