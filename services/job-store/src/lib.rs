//! The job store: the authoritative state of every job, behind the [`JobStore`] port.
//!
//! Two adapters keep one contract: [`PostgresJobStore`] (the deployed store) and
//! [`SqliteJobStore`] (embedded, so that `observatory up` runs without any server). One
//! conformance suite (`src/conformance.rs`) runs every behaviour test against both.
//!
//! The processor writes through the store, the read model reads through it. Each state change
//! and the event that announces it are written in one transaction (the transactional outbox):
//! either both exist or neither, so an event is never lost and never announces a change that
//! did not happen. A relay claims events with [`JobStore::claim_outbox`], publishes with
//! confirms and then calls [`JobStore::delete_outbox`]; a crash between publish and delete
//! republishes, which consumers absorb by deduplicating on `eventId`.
//!
//! Every processor write is idempotent under redelivery: it changes a job only from the state
//! it expects (a start only from PENDING or a due RETRYING, a completion or failure only of
//! the attempt that is running), and otherwise changes nothing and says so (`None` or
//! [`Accepted::Duplicate`]).
//!
//! **Retry scheduling lives in the store.** A failed attempt that may be retried leaves
//! the job RETRYING with `next_attempt_at`; the processor acknowledges the message and a
//! scheduler polls [`JobStore::due_retries`] and calls [`JobStore::start_attempt`] for each.
//! A pending retry thus survives restarts of every component, needs no broker plugin or
//! per-delay queues, and is visible to the read model.
//!
//! **A running attempt is a lease.** Its worker renews it ([`JobStore::renew_lease`]); the
//! lease is timed by the store's clock (PostgreSQL's `now()`), so processors with different
//! clocks or settings agree on it. When a worker dies its leases run out
//! ([`JobStore::expired_leases`]) and any processor [interrupts](JobStore::interrupt_attempt)
//! those attempts: an interruption is not the job's failure and gives its attempt back, so a
//! crash or a deploy never uses up `maxAttempts`. `jobs.attempts` counts the attempts that do;
//! `jobs.runs` numbers every attempt row, so an interrupted attempt keeps its number.
//!
//! **Several relays share the outbox.** [`JobStore::claim_outbox`] hands each relay a
//! disjoint batch (`FOR UPDATE SKIP LOCKED` in PostgreSQL) for a while, so each event is
//! published once; a dead relay's claim runs out and another takes the batch over.
//!
//! Timestamps of states and events are taken once per operation from this process's clock
//! (leases use the store's), truncated to microseconds (PostgreSQL's precision, which the
//! SQLite adapter keeps too), so a returned [`Job`] and its event agree exactly.

pub mod contracts;
mod cursor;
mod error;
mod events;
mod postgres;
mod rows;
mod sqlite;

use std::num::NonZeroU64;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::{Map, Value};
use sqlx::{Database, Encode, QueryBuilder, Type};
use uuid::Uuid;

use crate::contracts::dead_letter::{DeadLetter, DeadLetterReason};
use crate::contracts::dead_letter_page::DeadLetterPage;
use crate::contracts::event_envelope::EventProducer;
use crate::contracts::job::{Job, JobError, JobStatus, JobType};
use crate::contracts::job_attempt::JobAttempt;
use crate::contracts::job_created::JobCreated;
use crate::contracts::job_page::JobPage;
use crate::contracts::page_cursor::PageCursor;
use crate::cursor::Keyset;
pub use crate::error::{Result, StoreError};
pub use crate::postgres::PostgresJobStore;
pub use crate::sqlite::SqliteJobStore;

/// Largest page the list operations return (the read model's `limit` maximum); larger
/// requests are clamped, and 0 is treated as 1.
pub const MAX_PAGE_SIZE: u32 = 500;

/// The job store port. Services hold an `Arc<dyn JobStore>` and never name an adapter.
///
/// Every adapter keeps this contract (the conformance suite checks each):
/// - **Idempotent writes**: a write changes a job only from the state it expects and
///   otherwise changes nothing (`None`, [`Accepted::Duplicate`], `false`), so redelivered
///   messages are harmless.
/// - **Transactional outbox**: a state change and the event announcing it commit together or
///   not at all; [`JobStore::pending_outbox`] returns events in the order they were written.
/// - **Keyset pages**: newest first by `(timestamp, id)`; cursors are opaque and the same for
///   every adapter; a page costs the same at any depth and an insert never shifts a page.
/// - **Microsecond timestamps**: every stored instant is truncated to microseconds, so a
///   returned [`Job`], its events and a later read agree exactly.
/// - **Retry scheduling in the store**: a retry is a RETRYING job with `next_attempt_at`, due
///   by the store's data alone, so it survives restarts of every component.
///
/// Errors: [`StoreError::Database`] is transient (retry or requeue); the others are not.
/// A job the scheduler may start, with its type (the processor limits attempts per type) and
/// its place in the order it was found in, to read the next page after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueJob {
    pub id: Uuid,
    pub job_type: String,
    /// When it became due (`next_attempt_at` of a retry, `created_at` of a job left PENDING).
    pub due_at: DateTime<Utc>,
}

impl PartialEq<Uuid> for DueJob {
    fn eq(&self, other: &Uuid) -> bool {
        self.id == *other
    }
}

#[async_trait::async_trait]
pub trait JobStore: Send + Sync + 'static {
    /// Whether the database answers (for `/readyz`).
    async fn ping(&self) -> Result<()>;

    /// Closes the connections; later calls fail with [`StoreError::Database`].
    async fn close(&self);

    // ----- processor writes ------------------------------------------------------------------

    /// Stores the job a job.created event announces, PENDING, unless it is already stored
    /// (same job id, or same creation idempotency key: [`Accepted::Duplicate`]).
    /// `createdAt` is the event's `submittedAt` (when the gateway accepted it).
    async fn accept(&self, created: &JobCreated) -> Result<Accepted>;

    /// Starts the next attempt of a PENDING job, or of a RETRYING job whose retry is due:
    /// RUNNING, attempts + 1, an attempt row and a job.started event. `None` when the job is
    /// unknown, running, terminal or not yet due (a redelivered start changes nothing).
    ///
    /// The attempt is a lease of `lease`, timed by the store's clock: `worker` renews it with
    /// [`JobStore::renew_lease`]; once it runs out, [`JobStore::expired_leases`] reports the
    /// attempt and anyone may [interrupt](JobStore::interrupt_attempt) it.
    async fn start_attempt(
        &self,
        job_id: Uuid,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<StartedAttempt>>;

    /// Extends the lease of the running attempt `attempt` of `worker` to `lease` from now;
    /// `false` when that attempt is not running any more (it was interrupted: its worker
    /// should stop, since its result would be refused).
    async fn renew_lease(
        &self,
        job_id: Uuid,
        attempt: u32,
        worker: &str,
        lease: Duration,
    ) -> Result<bool>;

    /// RUNNING attempts whose lease ran out by the store's clock: their worker is gone (or
    /// cut off from the store). The oldest first.
    async fn expired_leases(&self, limit: u32) -> Result<Vec<RunningAttempt>>;

    /// Ends the running attempt `attempt` as interrupted — by a shutdown, a crash or a lost
    /// connection, not by the job: the attempt is recorded FAILED with the error code
    /// [`INTERRUPTED`] and `reason`, it gives its attempt back (it does not count against
    /// `maxAttempts`), and the job is RETRYING, due at once; a job.failed event says so.
    /// `None` when that attempt is not the one running.
    async fn interrupt_attempt(
        &self,
        job_id: Uuid,
        attempt: u32,
        reason: &str,
    ) -> Result<Option<Job>>;

    /// Completes the running attempt `attempt`: COMPLETED with its result, and a job.completed
    /// event. `None` when that attempt is not the one running (a redelivered completion).
    async fn complete_attempt(
        &self,
        job_id: Uuid,
        attempt: u32,
        result: Map<String, Value>,
        duration_ms: f64,
    ) -> Result<Option<Job>>;

    /// Fails the running attempt `attempt` and decides what follows:
    /// - [`Retry::Never`] → FAILED;
    /// - [`Retry::After`] with attempts left → RETRYING, due after the backoff;
    /// - [`Retry::After`] with every attempt used → DEAD_LETTERED, plus a job.dead-lettered
    ///   event and a dead letter (reason attempts-exhausted, `rawBody` the job as JSON).
    ///
    /// Always writes a job.failed event. `None` when that attempt is not the one running.
    async fn fail_attempt(
        &self,
        job_id: Uuid,
        attempt: u32,
        error: JobError,
        retry: Retry,
        duration_ms: f64,
    ) -> Result<Option<FailOutcome>>;

    /// Stores a message that could not be processed (malformed JSON, schema violation, ...).
    /// Idempotent by `id`: returns `false` when that dead letter was already stored.
    async fn record_dead_letter(&self, letter: &DeadLetter) -> Result<bool>;

    /// RETRYING jobs whose next attempt is due at `now`, the longest-waiting first (ties by
    /// id), from just after `after` when given: a scheduler that cannot start the first ones
    /// yet (their type is at its limit) reads on past them instead of finding them again.
    async fn due_retries(
        &self,
        now: DateTime<Utc>,
        after: Option<&DueJob>,
        limit: u32,
    ) -> Result<Vec<DueJob>>;

    /// PENDING jobs stored more than `older_than` ago by the store's clock: a job is started
    /// as soon as it is stored, so one left PENDING lost its message (a crash between the two
    /// steps, a purged queue) and is started from here instead. The oldest first (ties by
    /// id), from just after `after` when given.
    async fn stale_pending(
        &self,
        older_than: Duration,
        after: Option<&DueJob>,
        limit: u32,
    ) -> Result<Vec<DueJob>>;

    // ----- outbox relay ----------------------------------------------------------------------

    /// The oldest events not yet published, in the order they were written (claimed or not).
    async fn pending_outbox(&self, limit: u32) -> Result<Vec<OutboxEvent>>;

    /// Claims up to `limit` events for `lease`, the oldest first, skipping those another
    /// relay holds: each event is published by one relay, and one whose relay died (its
    /// claim ran out) is taken over.
    async fn claim_outbox(&self, limit: u32, lease: Duration) -> Result<Vec<OutboxEvent>>;

    /// Gives claimed events back at once (their publish failed), so they are retried now.
    async fn release_outbox(&self, ids: &[i64]) -> Result<()>;

    /// Deletes published events; returns how many were deleted (ids already gone are skipped).
    async fn delete_outbox(&self, ids: &[i64]) -> Result<u64>;

    /// Events waiting to be published (the outbox backlog metric).
    async fn outbox_backlog(&self) -> Result<i64>;

    // ----- read model ------------------------------------------------------------------------

    /// One page of jobs, newest first (`created_at`, then `id`), after `cursor` (the previous
    /// page's `nextCursor`). Keyset pagination: a page costs the same at any depth.
    async fn list_jobs(
        &self,
        filter: &JobFilter,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<JobPage>;

    /// A job and its attempts, oldest attempt first; `None` for an unknown job.
    async fn job_detail(&self, job_id: Uuid) -> Result<Option<(Job, Vec<JobAttempt>)>>;

    /// One page of dead letters, newest first (`received_at`, then `id`).
    async fn list_dead_letters(&self, limit: u32, cursor: Option<&str>) -> Result<DeadLetterPage>;

    /// How many jobs are in each status; statuses without jobs are absent.
    async fn count_by_status(&self) -> Result<Vec<(JobStatus, i64)>>;
}

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

/// The error code of an interrupted attempt (see [`JobStore::interrupt_attempt`]).
pub const INTERRUPTED: &str = "interrupted";

/// A RUNNING attempt (see [`JobStore::expired_leases`]).
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
    /// Jobs whose id starts with these hex digits.
    pub id_prefix: Option<JobIdPrefix>,
}

/// The leading hex digits of a job id (a short id shown by a UI, or a whole id), as the range
/// of ids that start with them: ids compare bytewise in both databases, so a prefix is a range
/// scan of the primary key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobIdPrefix {
    lowest: Uuid,
    highest: Uuid,
}

impl JobIdPrefix {
    /// Parses 1 to 32 hex digits, ignoring dashes and case; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let digits: String = text.chars().filter(|c| *c != '-').collect();
        if digits.is_empty() || digits.len() > 32 || !digits.chars().all(|c| c.is_ascii_hexdigit())
        {
            return None;
        }
        let value = u128::from_str_radix(&digits, 16).ok()?;
        let free_bits = 4 * (32 - digits.len() as u32);
        let lowest = value.checked_shl(free_bits).unwrap_or(0);
        let rest = 1u128.checked_shl(free_bits).map_or(u128::MAX, |b| b - 1);
        Some(Self {
            lowest: Uuid::from_u128(lowest),
            highest: Uuid::from_u128(lowest | rest),
        })
    }

    /// The smallest and the largest id with this prefix.
    pub fn range(&self) -> (Uuid, Uuid) {
        (self.lowest, self.highest)
    }
}

// ----- shared by the adapters: validation, decisions, pages ---------------------------------

/// The time of one operation, at the stores' precision (microseconds).
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

/// `maxAttempts` as stored (an integer column).
fn stored_max_attempts(created: &JobCreated) -> Result<i32> {
    let max_attempts = created.payload.max_attempts;
    i32::try_from(max_attempts.get()).map_err(|_| {
        StoreError::InvalidArgument(format!("maxAttempts {max_attempts} is too large"))
    })
}

/// The number of the attempt a start just began: the job's `runs` after the start (every
/// attempt has its own number, interrupted ones included).
fn started_attempt(job_id: Uuid, runs: i32) -> Result<(u32, i32, NonZeroU64)> {
    let attempt = u32::try_from(runs)
        .map_err(|e| StoreError::Contract(format!("runs of job {job_id}: {e}")))?;
    let (stored, ordinal) = attempt_ordinal(attempt)?;
    Ok((attempt, stored, ordinal))
}

/// A lease or claim length as the databases take it (seconds), refusing the absurd.
fn lease_seconds(lease: Duration) -> Result<f64> {
    if lease.is_zero() || lease > Duration::from_secs(24 * 3600) {
        return Err(StoreError::InvalidArgument(format!(
            "a lease must be longer than 0 and at most a day, not {lease:?}"
        )));
    }
    Ok(lease.as_secs_f64())
}

/// The error an interrupted attempt records.
fn interruption(ordinal: NonZeroU64, reason: &str) -> JobError {
    JobError {
        attempt: Some(ordinal),
        code: INTERRUPTED.to_owned(),
        message: reason.to_owned(),
    }
}

/// What follows a failed attempt: the job's next status, and when a retry is due.
fn after_failure(
    retry: Retry,
    attempts_left: bool,
    at: DateTime<Utc>,
) -> Result<(JobStatus, Option<DateTime<Utc>>)> {
    Ok(match retry {
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
    })
}

fn fail_outcome(job: Job) -> FailOutcome {
    match job.status {
        JobStatus::Retrying => FailOutcome::Retrying(job),
        JobStatus::DeadLettered => FailOutcome::DeadLettered(job),
        _ => FailOutcome::Failed(job),
    }
}

/// The dead letter kept for a job whose every attempt failed, announced by `event_id`.
fn exhausted_dead_letter(
    producer: &EventProducer,
    job: &Job,
    event_id: Uuid,
    at: DateTime<Utc>,
) -> Result<DeadLetter> {
    Ok(DeadLetter {
        id: Uuid::new_v4(),
        source: producer.service.as_str().to_owned(),
        queue: None,
        reason: DeadLetterReason::AttemptsExhausted,
        message: job.last_error.as_ref().map(|e| {
            format!(
                "{} attempts failed; last: {}: {}",
                job.attempts, e.code, e.message
            )
        }),
        job_id: Some(job.id),
        event_id: Some(event_id),
        attempts: Some(job.attempts),
        received_at: at,
        raw_body: serde_json::to_string(job)
            .map_err(|e| StoreError::Contract(format!("serializing job {}: {e}", job.id)))?,
        correlation_id: Some(job.correlation_id.clone()),
    })
}

/// A dead letter's `attempts` as stored (an integer column).
fn dead_letter_attempts(letter: &DeadLetter) -> Result<Option<i32>> {
    letter
        .attempts
        .map(|n| {
            i32::try_from(n).map_err(|_| {
                StoreError::InvalidArgument(format!("dead letter attempts {n} is too large"))
            })
        })
        .transpose()
}

/// A dead letter's message as stored. PostgreSQL `text` cannot hold NUL; the message is
/// human-readable detail, so every adapter replaces it there and they read back the same.
fn dead_letter_message(letter: &DeadLetter) -> Option<String> {
    letter.message.as_ref().map(|m| m.replace('\0', "\u{FFFD}"))
}

fn decode_cursor(cursor: Option<&str>) -> Result<Option<Keyset>> {
    cursor.map(Keyset::decode).transpose()
}

/// Appends the filters, keyset position, order and limit of a job page to `query`, in SQL
/// that PostgreSQL and SQLite both answer from their `(…, created_at, id)` indexes.
/// `instant` converts a timestamp to the adapter's stored representation.
fn push_job_page_clauses<DB, T>(
    query: &mut QueryBuilder<DB>,
    filter: &JobFilter,
    after: Option<Keyset>,
    fetch: i64,
    instant: impl Fn(DateTime<Utc>) -> T,
) where
    DB: Database,
    for<'t> T: Encode<'t, DB> + Type<DB>,
    for<'t> String: Encode<'t, DB> + Type<DB>,
    for<'t> Uuid: Encode<'t, DB> + Type<DB>,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
{
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
        query.push(" AND created_at >= ").push_bind(instant(from));
    }
    if let Some(until) = filter.created_before {
        query.push(" AND created_at < ").push_bind(instant(until));
    }
    if let Some(prefix) = filter.id_prefix {
        let (lowest, highest) = prefix.range();
        query
            .push(" AND id BETWEEN ")
            .push_bind(lowest)
            .push(" AND ")
            .push_bind(highest);
    }
    if let Some(after) = after {
        // A row comparison, which both databases answer with an index range scan.
        query
            .push(" AND (created_at, id) < (")
            .push_bind(instant(after.at))
            .push(", ")
            .push_bind(after.id)
            .push(")");
    }
    query
        .push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .push_bind(fetch);
}

/// Appends the keyset position, order and limit of a dead letter page to `query`.
fn push_dead_letter_page_clauses<DB, T>(
    query: &mut QueryBuilder<DB>,
    after: Option<Keyset>,
    fetch: i64,
    instant: impl Fn(DateTime<Utc>) -> T,
) where
    DB: Database,
    for<'t> T: Encode<'t, DB> + Type<DB>,
    for<'t> Uuid: Encode<'t, DB> + Type<DB>,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
{
    if let Some(after) = after {
        query
            .push(" WHERE (received_at, id) < (")
            .push_bind(instant(after.at))
            .push(", ")
            .push_bind(after.id)
            .push(")");
    }
    query
        .push(" ORDER BY received_at DESC, id DESC LIMIT ")
        .push_bind(fetch);
}

/// Trims the extra row fetched beyond `size` and returns the cursor of the next page, if any.
fn next_page_cursor<T>(
    items: &mut Vec<T>,
    size: i64,
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
    let encoded = position(last).encode().ok_or_else(|| {
        StoreError::Contract("page cursor: an instant outside years 1199 BC to AD 33658".into())
    })?;
    let cursor = PageCursor::try_from(encoded)
        .map_err(|e| StoreError::Contract(format!("page cursor: {e}")))?;
    Ok(Some(cursor))
}

/// A job page from the rows fetched (one more than `size` when another page follows).
fn job_page(mut items: Vec<Job>, size: i64) -> Result<JobPage> {
    let next_cursor = next_page_cursor(&mut items, size, |job| Keyset {
        at: job.created_at,
        id: job.id,
    })?;
    Ok(JobPage { items, next_cursor })
}

/// A dead letter page from the rows fetched (one more than `size` when another page follows).
fn dead_letter_page(mut items: Vec<DeadLetter>, size: i64) -> Result<DeadLetterPage> {
    let next_cursor = next_page_cursor(&mut items, size, |letter| Keyset {
        at: letter.received_at,
        id: letter.id,
    })?;
    Ok(DeadLetterPage { items, next_cursor })
}

/// Parses `(status, count)` rows of a `GROUP BY status`.
fn status_counts(rows: Vec<(String, i64)>) -> Result<Vec<(JobStatus, i64)>> {
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

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod tests;
