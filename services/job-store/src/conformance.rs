//! The conformance suite: every behaviour test of the [`JobStore`] port, run against each
//! adapter. A test body takes a [`Harness`] (the store as `Arc<dyn JobStore>`, plus direct
//! database access for the few assertions the port does not offer); `conformance!` turns
//! each body into `postgres::<name>` (a fresh PostgreSQL database per test) and
//! `sqlite::<name>` (in memory, or a file in a temporary directory where the test needs one).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use observatory_sqlite::Location;
use observatory_validation::ContractValidator;
use serde_json::{Map, Value, json};
use sqlx::{PgPool, SqlitePool};
use uuid::Uuid;

use crate::contracts::dead_letter::{DeadLetter, DeadLetterReason};
use crate::contracts::event_envelope::EventProducer;
use crate::contracts::job::{Job, JobError, JobStatus};
use crate::contracts::job_attempt::AttemptOutcome;
use crate::contracts::job_created::JobCreated;
use crate::contracts::{job_completed, job_dead_lettered, job_failed, job_started};
use crate::{
    Accepted, FailOutcome, JobFilter, JobStore, OutboxEvent, PostgresJobStore, Retry,
    RunningAttempt, SqliteJobStore, StoreError,
};

/// Instantiates each test body once per adapter. Tests listed under `file` use SQLite file
/// storage (several connections, state that outlives the pool) instead of memory.
macro_rules! conformance {
    (memory: [$($memory:ident),* $(,)?], file: [$($file:ident),* $(,)?] $(,)?) => {
        mod postgres {
            $(
                #[tokio::test]
                async fn $memory() {
                    super::$memory(super::Harness::postgres().await).await;
                }
            )*
            $(
                #[tokio::test]
                async fn $file() {
                    super::$file(super::Harness::postgres().await).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test]
                async fn $memory() {
                    super::$memory(super::Harness::sqlite_memory().await).await;
                }
            )*
            $(
                #[tokio::test]
                async fn $file() {
                    super::$file(super::Harness::sqlite_file().await).await;
                }
            )*
        }
    };
}

conformance! {
    memory: [
        accept_is_idempotent_by_id_and_by_idempotency_key,
        start_and_complete_each_write_state_attempt_and_exactly_one_event,
        redelivered_writes_change_nothing,
        a_failing_outbox_write_rolls_back_the_state_change,
        a_retry_is_due_only_from_its_next_attempt_at,
        failing_the_last_attempt_dead_letters_the_job,
        a_failure_that_no_retry_can_fix_fails_the_job,
        every_outbox_event_matches_its_schema_and_contract_type,
        keyset_pages_walk_every_job_once_newest_first_with_filters,
        keyset_pages_are_stable_under_inserts,
        an_id_prefix_finds_the_jobs_whose_id_starts_with_it,
        a_malformed_cursor_is_an_invalid_cursor_error,
        dead_letters_are_recorded_once_and_paged_newest_first,
        the_relay_reads_the_outbox_in_order_deletes_and_counts,
        count_by_status_counts_each_present_status,
        a_lease_is_renewed_by_its_worker_and_runs_out_without_it,
        an_interrupted_attempt_gives_its_attempt_back_and_is_due_at_once,
        a_job_left_pending_is_found_by_age,
        relays_claim_disjoint_outbox_batches_until_their_claim_runs_out,
        invalid_arguments_are_rejected_without_changes,
        timestamps_are_kept_to_the_microsecond,
    ],
    file: [
        concurrent_writers_on_distinct_jobs_all_succeed,
        concurrent_starts_of_one_job_start_it_once,
        state_survives_close_and_reopen,
    ],
}

const WORKER: &str = "processor-test-1";
/// A lease that never runs out during a test.
const LEASE: Duration = Duration::from_secs(600);

pub(crate) fn producer() -> EventProducer {
    serde_json::from_value(
        json!({"service": "processor", "instanceId": WORKER, "version": "0.1.0"}),
    )
    .expect("a valid producer")
}

/// Which adapter a harness runs, for the few outcomes that differ by design.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Adapter {
    Postgres,
    Sqlite,
}

/// Direct access to the store's database, for assertions and fault injection.
enum Raw {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// A directory removed (with its contents) when the test ends.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        Self(std::env::temp_dir().join(observatory_test_support::unique_name()))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Best effort: a leftover directory in the temp dir harms nothing.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Harness {
    store: Arc<dyn JobStore>,
    adapter: Adapter,
    raw: Raw,
    /// How to open the same data again: a PostgreSQL URL or a SQLite file.
    reopen: Option<Reopen>,
    _dir: Option<TempDir>,
}

enum Reopen {
    Postgres(String),
    Sqlite(Location),
}

impl Harness {
    async fn postgres() -> Self {
        let url = observatory_test_support::fresh_postgres_database().await;
        let store = PostgresJobStore::connect(&url, 8, producer())
            .await
            .expect("connect and migrate");
        let raw = PgPool::connect(&url).await.expect("second pool");
        Self {
            store: Arc::new(store),
            adapter: Adapter::Postgres,
            raw: Raw::Postgres(raw),
            reopen: Some(Reopen::Postgres(url)),
            _dir: None,
        }
    }

    async fn sqlite_memory() -> Self {
        let store = SqliteJobStore::open(&Location::Memory, producer())
            .await
            .expect("open and migrate");
        // Memory is one database per connection: share the store's only one.
        let raw = Raw::Sqlite(store.pool.clone());
        Self {
            store: Arc::new(store),
            adapter: Adapter::Sqlite,
            raw,
            reopen: None,
            _dir: None,
        }
    }

    async fn sqlite_file() -> Self {
        let dir = TempDir::new();
        let location = Location::File(dir.0.join("jobs.db"));
        let store = SqliteJobStore::open(&location, producer())
            .await
            .expect("open and migrate");
        let raw = Raw::Sqlite(store.pool.clone());
        Self {
            store: Arc::new(store),
            adapter: Adapter::Sqlite,
            raw,
            reopen: Some(Reopen::Sqlite(location)),
            _dir: Some(dir),
        }
    }

    /// A new store on the same data (after the first was closed).
    async fn reopen(&self) -> Arc<dyn JobStore> {
        match self
            .reopen
            .as_ref()
            .expect("this harness's data cannot be reopened")
        {
            Reopen::Postgres(url) => Arc::new(
                PostgresJobStore::connect(url, 8, producer())
                    .await
                    .expect("reconnect"),
            ),
            Reopen::Sqlite(location) => Arc::new(
                SqliteJobStore::open(location, producer())
                    .await
                    .expect("reopen"),
            ),
        }
    }

    async fn count(&self, sql: &'static str) -> i64 {
        match &self.raw {
            Raw::Postgres(db) => sqlx::query_scalar(sql).fetch_one(db).await,
            Raw::Sqlite(db) => sqlx::query_scalar(sql).fetch_one(db).await,
        }
        .expect("count")
    }

    /// Makes every outbox insert fail (`true`) or succeed again (`false`).
    async fn refuse_outbox_inserts(&self, refuse: bool) {
        match (&self.raw, refuse) {
            (Raw::Postgres(db), true) => sqlx::raw_sql(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'outbox refused'; END $$; \
                 CREATE TRIGGER refuse_outbox BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION refuse();",
            )
            .execute(db)
            .await
            .map(drop),
            (Raw::Postgres(db), false) => sqlx::raw_sql("DROP TRIGGER refuse_outbox ON outbox")
                .execute(db)
                .await
                .map(drop),
            (Raw::Sqlite(db), true) => sqlx::raw_sql(
                "CREATE TRIGGER refuse_outbox BEFORE INSERT ON outbox \
                 BEGIN SELECT RAISE(ABORT, 'outbox refused'); END",
            )
            .execute(db)
            .await
            .map(drop),
            (Raw::Sqlite(db), false) => sqlx::raw_sql("DROP TRIGGER refuse_outbox")
                .execute(db)
                .await
                .map(drop),
        }
        .expect("outbox trigger");
    }
}

fn created_at(
    job_id: Uuid,
    job_type: &str,
    max_attempts: u64,
    submitted_at: DateTime<Utc>,
) -> JobCreated {
    serde_json::from_value(json!({
        "contractVersion": "1.0.0",
        "eventType": "job.created",
        "eventId": Uuid::new_v4(),
        "occurredAt": submitted_at,
        "producer": {"service": "gateway", "instanceId": "gateway-1", "version": "0.1.0"},
        "correlationId": format!("req-{}", job_id.simple()),
        "idempotencyKey": format!("{job_id}:created"),
        "payload": {
            "jobId": job_id,
            "type": job_type,
            "payload": {"durationMs": 10},
            "maxAttempts": max_attempts,
            "submittedAt": submitted_at,
        }
    }))
    .expect("a valid job.created event")
}

fn created(job_type: &str, max_attempts: u64) -> JobCreated {
    created_at(Uuid::new_v4(), job_type, max_attempts, Utc::now())
}

async fn accept_new(store: &dyn JobStore, event: &JobCreated) -> Job {
    match store.accept(event).await.expect("accept") {
        Accepted::New(job) => job,
        Accepted::Duplicate(job) => panic!("expected a new job, got a duplicate of {}", job.id),
    }
}

async fn start(store: &dyn JobStore, job_id: Uuid) -> u32 {
    store
        .start_attempt(job_id, WORKER, LEASE)
        .await
        .expect("start")
        .expect("job is startable")
        .attempt
}

fn error(code: &str) -> JobError {
    JobError {
        attempt: None,
        code: code.to_owned(),
        message: format!("{code} on purpose"),
    }
}

async fn outbox(store: &dyn JobStore) -> Vec<OutboxEvent> {
    store.pending_outbox(10_000).await.expect("pending outbox")
}

async fn job(store: &dyn JobStore, job_id: Uuid) -> Job {
    store
        .job_detail(job_id)
        .await
        .expect("detail")
        .expect("job exists")
        .0
}

fn result(value: Value) -> Map<String, Value> {
    value.as_object().cloned().expect("an object")
}

fn routing_keys(events: &[OutboxEvent]) -> Vec<&str> {
    events.iter().map(|e| e.routing_key.as_str()).collect()
}

/// Checks an outbox event against its event schema and its generated contract type, and
/// returns its idempotency key and correlation id.
fn check_event(event: &OutboxEvent) -> (String, String) {
    let schema = event.routing_key.replace(['.', '-'], "_");
    let validator = ContractValidator::by_name(&schema)
        .unwrap_or_else(|| panic!("no schema for routing key {}", event.routing_key))
        .expect("schema compiles");
    if let Err(violations) = validator.validate(&event.body) {
        panic!(
            "{} violates {schema}: {violations:?}\n{}",
            event.routing_key, event.body
        );
    }
    let body = event.body.clone();
    macro_rules! envelope {
        ($ty:ty) => {{
            let e: $ty = serde_json::from_value(body).expect(stringify!($ty));
            (
                e.event_id.0,
                e.contract_version.to_string(),
                e.event_type.to_string(),
                e.idempotency_key.to_string(),
                e.correlation_id.to_string(),
            )
        }};
    }
    let (event_id, version, event_type, key, correlation) = match event.routing_key.as_str() {
        "job.started" => envelope!(job_started::JobStarted),
        "job.completed" => envelope!(job_completed::JobCompleted),
        "job.failed" => envelope!(job_failed::JobFailed),
        "job.dead-lettered" => envelope!(job_dead_lettered::JobDeadLettered),
        other => panic!("unexpected routing key {other}"),
    };
    assert_eq!(event_id, event.event_id, "eventId column matches the body");
    assert_eq!(
        event_type, event.routing_key,
        "routing key is the event type"
    );
    assert_eq!(
        version,
        validator.info().version,
        "contractVersion is the schema's version"
    );
    assert_eq!(
        event.body["producer"],
        json!({"service": "processor", "instanceId": WORKER, "version": "0.1.0"})
    );
    (key, correlation)
}

fn dead_letter(received_at: DateTime<Utc>, raw_body: &str) -> DeadLetter {
    DeadLetter {
        id: Uuid::new_v4(),
        source: "processor".into(),
        queue: Some("jobs".into()),
        reason: DeadLetterReason::SchemaViolation,
        message: Some("/payload: must be an object".into()),
        job_id: Some(Uuid::new_v4()),
        event_id: Some(Uuid::new_v4()),
        attempts: Some(0),
        received_at: received_at.trunc_subsecs(6),
        raw_body: raw_body.into(),
        correlation_id: Some("req-1".parse().expect("a correlation id")),
    }
}

/// Every page of `filter`, following the cursors: the jobs and each page's size.
async fn walk(store: &dyn JobStore, filter: &JobFilter, limit: u32) -> (Vec<Job>, Vec<usize>) {
    let (mut all, mut sizes, mut cursor) = (Vec::new(), Vec::new(), None::<String>);
    loop {
        let page = store
            .list_jobs(filter, limit, cursor.as_deref())
            .await
            .expect("page");
        sizes.push(page.items.len());
        all.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next.to_string()),
            None => return (all, sizes),
        }
    }
}

fn ids(jobs: &[Job]) -> Vec<Uuid> {
    jobs.iter().map(|j| j.id).collect()
}

// ----- the tests -----------------------------------------------------------------------------

async fn accept_is_idempotent_by_id_and_by_idempotency_key(h: Harness) {
    let store = &*h.store;
    let event = created("sleep", 3);
    let job = accept_new(store, &event).await;
    assert_eq!(job.id, event.payload.job_id);
    assert_eq!(job.status, JobStatus::Pending);
    assert_eq!(job.type_, event.payload.type_);
    assert_eq!(job.payload, event.payload.payload);
    assert_eq!((job.attempts, job.max_attempts.get()), (0, 3));
    assert_eq!(job.correlation_id, event.correlation_id);
    assert_eq!(job.created_at, event.payload.submitted_at.trunc_subsecs(6));
    assert_eq!(
        (job.started_at, job.finished_at, job.next_attempt_at),
        (None, None, None)
    );
    assert_eq!(
        job,
        self::job(store, job.id).await,
        "returned job is stored"
    );

    // Redelivered, or published twice by the gateway with another event id: a duplicate.
    assert_eq!(
        store.accept(&event).await.expect("accept"),
        Accepted::Duplicate(job.clone())
    );
    let mut republished = event.clone();
    republished.event_id = Uuid::new_v4().into();
    assert_eq!(
        store.accept(&republished).await.expect("accept"),
        Accepted::Duplicate(job.clone())
    );
    // The same creation announced under another job id is recognised by its idempotency key.
    let mut renamed = event.clone();
    renamed.payload.job_id = Uuid::new_v4();
    assert_eq!(
        store.accept(&renamed).await.expect("accept"),
        Accepted::Duplicate(job.clone())
    );
    // The same job id under another idempotency key is still the same job.
    let mut rekeyed = event.clone();
    rekeyed.idempotency_key = format!("{}:created-again", job.id).parse().expect("a key");
    assert_eq!(
        store.accept(&rekeyed).await.expect("accept"),
        Accepted::Duplicate(job.clone())
    );

    assert_eq!(h.count("SELECT count(*) FROM jobs").await, 1);
    assert_eq!(
        store.outbox_backlog().await.expect("backlog"),
        0,
        "accepting announces nothing (the gateway did)"
    );
}

async fn start_and_complete_each_write_state_attempt_and_exactly_one_event(h: Harness) {
    let store = &*h.store;
    let event = created("compute", 3);
    let id = accept_new(store, &event).await.id;

    let started = store
        .start_attempt(id, WORKER, LEASE)
        .await
        .expect("start")
        .expect("startable");
    assert_eq!(started.attempt, 1);
    assert_eq!(started.job.status, JobStatus::Running);
    assert_eq!(started.job.attempts, 1);
    assert!(started.job.started_at.is_some());
    assert_eq!(
        started.job,
        job(store, id).await,
        "returned job is the stored job"
    );
    let events = outbox(store).await;
    assert_eq!(routing_keys(&events), ["job.started"]);
    let (key, correlation) = check_event(&events[0]);
    assert_eq!(key, format!("{id}:started:1"));
    assert_eq!(correlation, *event.correlation_id);
    let body = &events[0].body["payload"];
    assert_eq!(body["attempt"], 1);
    assert_eq!(body["maxAttempts"], 3);
    assert_eq!(body["worker"], WORKER);

    let output = result(json!({"digest": "abc", "iterations": 1000}));
    let completed = store
        .complete_attempt(id, 1, output.clone(), 12.5)
        .await
        .expect("complete")
        .expect("the running attempt completes");
    assert_eq!(completed.status, JobStatus::Completed);
    assert_eq!(completed.result, output);
    assert!(completed.finished_at.is_some());
    let events = outbox(store).await;
    assert_eq!(routing_keys(&events), ["job.started", "job.completed"]);
    let (key, _) = check_event(&events[1]);
    assert_eq!(key, format!("{id}:completed"));
    assert_eq!(events[1].body["payload"]["result"], Value::Object(output));
    assert_eq!(events[1].body["payload"]["durationMs"], 12.5);

    let (stored, attempts) = store.job_detail(id).await.expect("detail").expect("exists");
    assert_eq!(stored, completed);
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].job_id, id);
    assert_eq!(attempts[0].outcome, AttemptOutcome::Succeeded);
    assert_eq!(attempts[0].duration_ms, Some(12.5));
    assert_eq!(attempts[0].worker.as_deref(), Some(WORKER));
    assert_eq!(Some(attempts[0].started_at), started.job.started_at);
    assert_eq!(attempts[0].finished_at, completed.finished_at);
    assert_eq!(attempts[0].error, None);
    assert_eq!(
        store.job_detail(Uuid::new_v4()).await.expect("detail"),
        None
    );
}

async fn redelivered_writes_change_nothing(h: Harness) {
    let store = &*h.store;
    let id = accept_new(store, &created("sleep", 3)).await.id;
    assert_eq!(start(store, id).await, 1);
    let running = job(store, id).await;

    assert_eq!(
        store.start_attempt(id, WORKER, LEASE).await.expect("start"),
        None,
        "already running"
    );
    assert_eq!(
        store
            .complete_attempt(id, 2, Map::new(), 1.0)
            .await
            .expect("complete"),
        None,
        "not the running attempt"
    );
    let wrong_attempt = store
        .fail_attempt(id, 2, error("x"), Retry::Never, 1.0)
        .await
        .expect("fail");
    assert_eq!(wrong_attempt, None, "not the running attempt");
    assert_eq!(job(store, id).await, running);
    assert_eq!(outbox(store).await.len(), 1);

    let done = store
        .complete_attempt(id, 1, Map::new(), 1.0)
        .await
        .expect("complete")
        .expect("completes");
    assert_eq!(
        store
            .complete_attempt(id, 1, Map::new(), 1.0)
            .await
            .expect("complete"),
        None,
        "completed twice"
    );
    assert_eq!(
        store.start_attempt(id, WORKER, LEASE).await.expect("start"),
        None,
        "terminal"
    );
    let late_failure =
        store.fail_attempt(id, 1, error("timeout"), Retry::After(Duration::ZERO), 1.0);
    assert_eq!(
        late_failure.await.expect("fail"),
        None,
        "a late failure of a completed attempt"
    );
    assert_eq!(job(store, id).await, done);
    assert_eq!(
        routing_keys(&outbox(store).await),
        ["job.started", "job.completed"]
    );
    assert_eq!(
        store
            .start_attempt(Uuid::new_v4(), WORKER, LEASE)
            .await
            .expect("start"),
        None,
        "unknown job"
    );
    assert_eq!(h.count("SELECT count(*) FROM job_attempts").await, 1);
}

async fn a_failing_outbox_write_rolls_back_the_state_change(h: Harness) {
    let store = &*h.store;
    let id = accept_new(store, &created("sleep", 3)).await.id;
    let pending = job(store, id).await;
    h.refuse_outbox_inserts(true).await;

    let failed = store.start_attempt(id, WORKER, LEASE).await;
    assert!(matches!(failed, Err(StoreError::Database(_))), "{failed:?}");
    assert_eq!(
        job(store, id).await,
        pending,
        "no state change without its event"
    );
    assert_eq!(h.count("SELECT count(*) FROM job_attempts").await, 0);
    assert_eq!(store.outbox_backlog().await.expect("backlog"), 0);

    h.refuse_outbox_inserts(false).await;
    assert_eq!(
        start(store, id).await,
        1,
        "the rolled-back start left no trace"
    );
    assert_eq!(store.outbox_backlog().await.expect("backlog"), 1);
}

async fn a_retry_is_due_only_from_its_next_attempt_at(h: Harness) {
    let store = &*h.store;
    let id = accept_new(store, &created("fail", 3)).await.id;
    start(store, id).await;

    let outcome = store
        .fail_attempt(
            id,
            1,
            error("intentional-failure"),
            Retry::After(Duration::from_secs(3600)),
            5.0,
        )
        .await
        .expect("fail")
        .expect("the running attempt fails");
    let FailOutcome::Retrying(retrying) = outcome else {
        panic!("expected a retry, got {outcome:?}")
    };
    assert_eq!(retrying.status, JobStatus::Retrying);
    let due = retrying.next_attempt_at.expect("a retry is scheduled");
    assert_eq!(due - retrying.updated_at, TimeDelta::hours(1));
    assert_eq!(retrying.finished_at, None);
    assert_eq!(retrying, job(store, id).await, "returned job is stored");
    let last_error = retrying.last_error.clone().expect("last error kept");
    assert_eq!(
        (
            last_error.code.as_str(),
            last_error.attempt.map(|a| a.get())
        ),
        ("intentional-failure", Some(1))
    );

    let events = outbox(store).await;
    assert_eq!(routing_keys(&events), ["job.started", "job.failed"]);
    let (key, _) = check_event(&events[1]);
    assert_eq!(key, format!("{id}:failed:1"));
    let failed: job_failed::JobFailed =
        serde_json::from_value(events[1].body.clone()).expect("JobFailed");
    assert!(failed.payload.will_retry);
    assert_eq!(failed.payload.next_attempt_at, Some(due));
    assert_eq!(failed.payload.job_status, JobStatus::Retrying);
    assert_eq!(failed.payload.error, last_error);
    assert_eq!(failed.payload.duration_ms, Some(5.0));

    // Not due before next_attempt_at (to the microsecond): neither polled nor startable.
    assert_eq!(
        store.start_attempt(id, WORKER, LEASE).await.expect("start"),
        None
    );
    let before = due - TimeDelta::microseconds(1);
    assert!(
        store
            .due_retries(before, None, 10)
            .await
            .expect("due")
            .is_empty()
    );
    let found = store.due_retries(due, None, 10).await.expect("due");
    assert_eq!(found, [id]);
    assert_eq!(
        found[0].job_type, "fail",
        "the scheduler learns each due job's type"
    );
    assert_eq!(
        store
            .due_retries(due + TimeDelta::days(1), None, 10)
            .await
            .expect("due"),
        [id]
    );

    // A retry that is due at once is polled, longest-waiting first, and started as attempt 2.
    let soon = accept_new(store, &created("fail", 3)).await.id;
    start(store, soon).await;
    let outcome = store
        .fail_attempt(soon, 1, error("timeout"), Retry::After(Duration::ZERO), 1.0)
        .await
        .expect("fail");
    let Some(FailOutcome::Retrying(soon_job)) = outcome else {
        panic!("expected a retry, got {outcome:?}")
    };
    let soon_due = soon_job.next_attempt_at.expect("scheduled");
    assert_eq!(
        store.due_retries(soon_due, None, 10).await.expect("due"),
        [soon]
    );
    assert_eq!(
        store
            .due_retries(due + TimeDelta::days(1), None, 10)
            .await
            .expect("due"),
        [soon, id],
        "longest-waiting first"
    );
    assert_eq!(
        store
            .due_retries(due + TimeDelta::days(1), None, 1)
            .await
            .expect("due"),
        [soon]
    );
    // The next page starts just after the last one seen, and ends empty.
    let first = store
        .due_retries(due + TimeDelta::days(1), None, 1)
        .await
        .expect("due");
    let second = store
        .due_retries(due + TimeDelta::days(1), first.last(), 1)
        .await
        .expect("due");
    assert_eq!(second, [id], "the page after the first");
    assert!(
        store
            .due_retries(due + TimeDelta::days(1), second.last(), 1)
            .await
            .expect("due")
            .is_empty(),
        "nothing after the last"
    );
    assert_eq!(start(store, soon).await, 2);
    let (running, attempts) = store
        .job_detail(soon)
        .await
        .expect("detail")
        .expect("exists");
    assert_eq!(
        (running.status, running.attempts, running.next_attempt_at),
        (JobStatus::Running, 2, None)
    );
    let outcomes: Vec<_> = attempts
        .iter()
        .map(|a| (a.attempt.get(), a.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [(1, AttemptOutcome::Failed), (2, AttemptOutcome::Running)],
        "oldest first"
    );
    assert_eq!(
        attempts[0].error.as_ref().map(|e| e.code.as_str()),
        Some("timeout")
    );
    assert_eq!(attempts[0].duration_ms, Some(1.0));
    let last = outbox(store).await.pop().expect("an event");
    assert_eq!(check_event(&last).0, format!("{soon}:started:2"));
    assert_eq!(
        store
            .due_retries(due + TimeDelta::days(1), None, 10)
            .await
            .expect("due"),
        [id],
        "a started retry is no longer due"
    );
}

async fn failing_the_last_attempt_dead_letters_the_job(h: Harness) {
    let store = &*h.store;
    let id = accept_new(store, &created("fail", 2)).await.id;
    for attempt in 1..=2 {
        assert_eq!(start(store, id).await, attempt);
        let outcome = store
            .fail_attempt(
                id,
                attempt,
                error("intentional-failure"),
                Retry::After(Duration::ZERO),
                2.0,
            )
            .await
            .expect("fail")
            .expect("fails");
        let expected = if attempt == 1 {
            JobStatus::Retrying
        } else {
            JobStatus::DeadLettered
        };
        assert_eq!(outcome.job().status, expected);
        if attempt == 2 {
            assert!(
                matches!(outcome, FailOutcome::DeadLettered(_)),
                "{outcome:?}"
            );
        }
    }
    let dead = job(store, id).await;
    assert_eq!(
        (dead.status, dead.attempts, dead.next_attempt_at),
        (JobStatus::DeadLettered, 2, None)
    );
    assert!(dead.finished_at.is_some());

    let events = outbox(store).await;
    assert_eq!(
        routing_keys(&events),
        [
            "job.started",
            "job.failed",
            "job.started",
            "job.failed",
            "job.dead-lettered"
        ]
    );
    let last_failure: job_failed::JobFailed =
        serde_json::from_value(events[3].body.clone()).expect("JobFailed");
    assert!(!last_failure.payload.will_retry);
    assert_eq!(last_failure.payload.next_attempt_at, None);
    assert_eq!(last_failure.payload.job_status, JobStatus::DeadLettered);
    let (key, _) = check_event(&events[4]);
    assert_eq!(key, format!("{id}:dead-lettered"));
    let announced: job_dead_lettered::JobDeadLettered =
        serde_json::from_value(events[4].body.clone()).expect("JobDeadLettered");
    assert_eq!(
        announced.payload.reason,
        DeadLetterReason::AttemptsExhausted
    );
    assert_eq!(announced.payload.attempts, 2);
    assert_eq!(announced.payload.last_error, dead.last_error);

    let letters = store.list_dead_letters(10, None).await.expect("page").items;
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(letter.reason, DeadLetterReason::AttemptsExhausted);
    assert_eq!(
        (letter.job_id, letter.event_id, letter.attempts),
        (Some(id), Some(events[4].event_id), Some(2))
    );
    assert_eq!(letter.correlation_id.as_ref(), Some(&dead.correlation_id));
    assert_eq!(letter.source, "processor");
    assert_eq!(Some(letter.received_at), dead.finished_at);
    let raw: Job = serde_json::from_str(&letter.raw_body).expect("the raw body is the job");
    assert_eq!(raw, dead);

    assert!(
        store
            .due_retries(Utc::now() + TimeDelta::days(1), None, 10)
            .await
            .expect("due")
            .is_empty()
    );
    assert_eq!(
        store.start_attempt(id, WORKER, LEASE).await.expect("start"),
        None
    );
    assert_eq!(h.count("SELECT count(*) FROM dead_letters").await, 1);
}

async fn a_failure_that_no_retry_can_fix_fails_the_job(h: Harness) {
    let store = &*h.store;
    let id = accept_new(store, &created("no-such-type", 3)).await.id;
    start(store, id).await;
    let outcome = store
        .fail_attempt(id, 1, error("unknown-job-type"), Retry::Never, 0.0)
        .await
        .expect("fail");
    let Some(FailOutcome::Failed(failed)) = outcome else {
        panic!("expected FAILED, got {outcome:?}")
    };
    assert_eq!(
        (failed.status, failed.attempts, failed.next_attempt_at),
        (JobStatus::Failed, 1, None)
    );
    assert!(failed.finished_at.is_some());
    assert_eq!(
        failed.last_error.as_ref().map(|e| e.code.as_str()),
        Some("unknown-job-type")
    );
    assert_eq!(failed, job(store, id).await);

    let events = outbox(store).await;
    assert_eq!(routing_keys(&events), ["job.started", "job.failed"]);
    let event: job_failed::JobFailed =
        serde_json::from_value(events[1].body.clone()).expect("JobFailed");
    assert!(!event.payload.will_retry);
    assert_eq!(event.payload.job_status, JobStatus::Failed);
    assert_eq!(
        h.count("SELECT count(*) FROM dead_letters").await,
        0,
        "FAILED is not dead-lettered"
    );
    assert_eq!(
        store.start_attempt(id, WORKER, LEASE).await.expect("start"),
        None
    );
}

async fn every_outbox_event_matches_its_schema_and_contract_type(h: Harness) {
    let store = &*h.store;
    let completes = accept_new(store, &created("sleep", 1)).await.id;
    start(store, completes).await;
    store
        .complete_attempt(completes, 1, Map::new(), 0.0)
        .await
        .expect("complete")
        .expect("completes");
    let with_result = accept_new(store, &created("compute", 1)).await.id;
    start(store, with_result).await;
    store
        .complete_attempt(with_result, 1, result(json!({"n": [1, 2]})), 3.25)
        .await
        .expect("complete")
        .expect("completes");
    let fails = accept_new(store, &created("unknown", 3)).await.id;
    start(store, fails).await;
    store
        .fail_attempt(fails, 1, error("unknown-job-type"), Retry::Never, 1.0)
        .await
        .expect("fail")
        .expect("fails");
    let exhausts = accept_new(store, &created("fail", 2)).await.id;
    for attempt in 1..=2 {
        start(store, exhausts).await;
        store
            .fail_attempt(
                exhausts,
                attempt,
                error("boom"),
                Retry::After(Duration::ZERO),
                1.0,
            )
            .await
            .expect("fail")
            .expect("fails");
    }

    let events = outbox(store).await;
    let kinds: HashSet<_> = routing_keys(&events).into_iter().collect();
    assert_eq!(
        kinds,
        HashSet::from([
            "job.started",
            "job.completed",
            "job.failed",
            "job.dead-lettered"
        ])
    );
    let mut keys = HashSet::new();
    let mut event_ids = HashSet::new();
    for event in &events {
        let (key, _) = check_event(event);
        assert!(
            keys.insert(key.clone()),
            "idempotency key {key} announced twice"
        );
        assert!(event_ids.insert(event.event_id), "event id reused");
    }
    assert_eq!(events.len(), 11);
}

async fn keyset_pages_walk_every_job_once_newest_first_with_filters(h: Harness) {
    let store = &*h.store;
    let base = Utc::now().trunc_subsecs(6) - TimeDelta::days(1);
    let mut jobs = Vec::new();
    for i in 0..250i64 {
        // Pairs share a creation time, so the id must break ties.
        let at = base + TimeDelta::seconds(i / 2);
        let job_type = if i % 2 == 0 { "sleep" } else { "compute" };
        let job = accept_new(store, &created_at(Uuid::new_v4(), job_type, 3, at)).await;
        if i % 5 == 0 {
            start(store, job.id).await;
            store
                .complete_attempt(job.id, 1, Map::new(), 1.0)
                .await
                .expect("complete")
                .expect("completes");
        }
        jobs.push((at, job.id, job_type, i % 5 == 0));
    }
    jobs.sort_by_key(|job| std::cmp::Reverse((job.0, job.1)));

    let (all, sizes) = walk(store, &JobFilter::default(), 100).await;
    assert_eq!(sizes, [100, 100, 50]);
    assert_eq!(
        ids(&all),
        jobs.iter().map(|j| j.1).collect::<Vec<_>>(),
        "newest first, no gaps or duplicates"
    );

    let completed = JobFilter {
        status: Some(JobStatus::Completed),
        ..JobFilter::default()
    };
    let (found, sizes) = walk(store, &completed, 20).await;
    assert_eq!(sizes, [20, 20, 10]);
    assert_eq!(
        ids(&found),
        jobs.iter().filter(|j| j.3).map(|j| j.1).collect::<Vec<_>>()
    );

    let compute = JobFilter {
        job_type: Some("compute".parse().expect("a job type")),
        ..JobFilter::default()
    };
    let (found, sizes) = walk(store, &compute, 100).await;
    assert_eq!(sizes, [100, 25]);
    assert_eq!(
        ids(&found),
        jobs.iter()
            .filter(|j| j.2 == "compute")
            .map(|j| j.1)
            .collect::<Vec<_>>()
    );

    let (from, until) = (
        base + TimeDelta::seconds(50),
        base + TimeDelta::seconds(100),
    );
    let window = JobFilter {
        created_after: Some(from),
        created_before: Some(until),
        ..JobFilter::default()
    };
    let (found, sizes) = walk(store, &window, 30).await;
    assert_eq!(sizes, [30, 30, 30, 10]);
    let expected: Vec<_> = jobs
        .iter()
        .filter(|j| j.0 >= from && j.0 < until)
        .map(|j| j.1)
        .collect();
    assert_eq!(ids(&found), expected);

    let combined = JobFilter {
        status: Some(JobStatus::Pending),
        job_type: Some("sleep".parse().expect("a job type")),
        ..window
    };
    let (found, _) = walk(store, &combined, 7).await;
    let expected: Vec<_> = jobs
        .iter()
        .filter(|j| j.0 >= from && j.0 < until && j.2 == "sleep" && !j.3)
        .map(|j| j.1)
        .collect();
    assert_eq!(ids(&found), expected);
    assert!(found.iter().all(|j| j.status == JobStatus::Pending));

    // Limits are clamped: 0 is one job, beyond the maximum is the maximum.
    let one = store
        .list_jobs(&JobFilter::default(), 0, None)
        .await
        .expect("page");
    assert_eq!(one.items.len(), 1);
    assert!(one.next_cursor.is_some());
    let most = store
        .list_jobs(&JobFilter::default(), u32::MAX, None)
        .await
        .expect("page");
    assert_eq!((most.items.len(), most.next_cursor), (250, None));

    let failed = JobFilter {
        status: Some(JobStatus::Failed),
        ..JobFilter::default()
    };
    let empty = store.list_jobs(&failed, 10, None).await.expect("page");
    assert!(empty.items.is_empty() && empty.next_cursor.is_none());
}

async fn an_id_prefix_finds_the_jobs_whose_id_starts_with_it(h: Harness) {
    let store = &*h.store;
    let base = Utc::now().trunc_subsecs(6) - TimeDelta::hours(1);
    // Ids chosen so that prefixes split them: 0b4b…, 0b4c…, 0b4bd3…, and the extremes.
    let ids: Vec<Uuid> = [
        "0b4bd3a4-94b4-4b4e-9a35-3a1d6f6c9d11",
        "0b4bd3ff-0000-4000-8000-000000000000",
        "0b4b0000-0000-4000-8000-000000000000",
        "0b4c0000-0000-4000-8000-000000000000",
        "00000000-0000-4000-8000-000000000000",
        "ffffffff-ffff-4fff-bfff-ffffffffffff",
    ]
    .iter()
    .map(|id| Uuid::parse_str(id).expect("a uuid"))
    .collect();
    for (i, id) in ids.iter().enumerate() {
        let at = base + TimeDelta::seconds(i64::try_from(i).expect("small"));
        accept_new(store, &created_at(*id, "sleep", 3, at)).await;
    }
    let find = |prefix: &str| {
        let filter = JobFilter {
            id_prefix: Some(crate::JobIdPrefix::parse(prefix).expect("a prefix")),
            ..JobFilter::default()
        };
        async move {
            let (found, _) = walk(store, &filter, 2).await;
            let mut found = self::ids(&found);
            found.sort();
            found
        }
    };
    let sorted = |picked: &[usize]| {
        let mut v: Vec<Uuid> = picked.iter().map(|i| ids[*i]).collect();
        v.sort();
        v
    };
    assert_eq!(find("0b4b").await, sorted(&[0, 1, 2]));
    assert_eq!(
        find("0B4BD3").await,
        sorted(&[0, 1]),
        "case does not matter"
    );
    assert_eq!(find("0b4bd3a4-9").await, sorted(&[0]), "dashes are ignored");
    assert_eq!(find("0b4bd3a494b4").await, sorted(&[0]));
    assert_eq!(
        find("0b4bd3a4-94b4-4b4e-9a35-3a1d6f6c9d11").await,
        sorted(&[0])
    );
    assert_eq!(find("0").await, sorted(&[0, 1, 2, 3, 4]));
    assert_eq!(find("f").await, sorted(&[5]));
    assert_eq!(find("0b4d").await, sorted(&[]));
    // With another filter, both apply.
    let filter = JobFilter {
        id_prefix: crate::JobIdPrefix::parse("0b4b"),
        created_after: Some(base + TimeDelta::seconds(1)),
        ..JobFilter::default()
    };
    let page = store.list_jobs(&filter, 10, None).await.expect("page");
    assert_eq!(self::ids(&page.items), vec![ids[2], ids[1]], "newest first");
}

async fn keyset_pages_are_stable_under_inserts(h: Harness) {
    let store = &*h.store;
    let base = Utc::now().trunc_subsecs(6) - TimeDelta::days(1);
    let mut originals = Vec::new();
    for i in 0..30 {
        let event = created_at(Uuid::new_v4(), "sleep", 3, base + TimeDelta::seconds(i));
        originals.push(accept_new(store, &event).await);
    }
    originals.reverse();

    // Between pages, a job newer than every page (it belongs before the cursor: never shown
    // in this walk) and one older than every job (it belongs after: shown at the end).
    let (mut seen, mut cursor, mut older, mut k) = (Vec::new(), None::<String>, Vec::new(), 0);
    loop {
        let page = store
            .list_jobs(&JobFilter::default(), 7, cursor.as_deref())
            .await
            .expect("page");
        seen.extend(page.items);
        let Some(next) = page.next_cursor else { break };
        cursor = Some(next.to_string());
        k += 1;
        let newer = created_at(
            Uuid::new_v4(),
            "sleep",
            3,
            base + TimeDelta::hours(1) + TimeDelta::seconds(k),
        );
        accept_new(store, &newer).await;
        let old = created_at(Uuid::new_v4(), "sleep", 3, base - TimeDelta::seconds(k));
        older.push(accept_new(store, &old).await);
    }
    let expected: Vec<Uuid> = originals.iter().chain(&older).map(|j| j.id).collect();
    assert_eq!(ids(&seen), expected, "no duplicates, no gaps");
    // Pages of 7: four full pages, then the last 2 originals and the 4 older jobs (6 < 7).
    assert_eq!(older.len(), 4);
}

async fn a_malformed_cursor_is_an_invalid_cursor_error(h: Harness) {
    let store = &*h.store;
    for i in 0..2 {
        let letter = dead_letter(Utc::now() - TimeDelta::seconds(i), "x");
        store.record_dead_letter(&letter).await.expect("record");
    }
    let dead_letter_cursor = store
        .list_dead_letters(1, None)
        .await
        .expect("page")
        .next_cursor
        .expect("two pages");
    for bad in [
        "not-a-cursor",
        "zz",
        "00",
        "c1.-210000000000000000.0b4bd3a494b44b4e9a353a1d6f6c9d11",
    ] {
        let page = store.list_jobs(&JobFilter::default(), 10, Some(bad)).await;
        assert!(
            matches!(page, Err(StoreError::InvalidCursor(_))),
            "{bad}: {page:?}"
        );
    }
    // A cursor is a position, not a list: another list's cursor starts a page too.
    store
        .list_jobs(&JobFilter::default(), 10, Some(dead_letter_cursor.as_str()))
        .await
        .expect("a position");
    let page = store.list_dead_letters(10, Some("6a6f6273")).await;
    assert!(
        matches!(page, Err(StoreError::InvalidCursor(_))),
        "{page:?}"
    );
}

async fn dead_letters_are_recorded_once_and_paged_newest_first(h: Harness) {
    let store = &*h.store;
    let now = Utc::now();
    let mut letters: Vec<DeadLetter> = (0..5)
        .map(|i| dead_letter(now - TimeDelta::seconds(i), &format!("{{\"n\": {i}}}")))
        .collect();
    // A raw body exactly as received, even with NUL and non-ASCII characters.
    letters[2].raw_body = "not json \u{0} ünïcode".into();
    letters[3] = DeadLetter {
        queue: None,
        message: None,
        job_id: None,
        event_id: None,
        attempts: None,
        correlation_id: None,
        reason: DeadLetterReason::MalformedJson,
        ..letters[3].clone()
    };
    for letter in &letters {
        assert!(
            store.record_dead_letter(letter).await.expect("record"),
            "stored"
        );
    }
    assert!(
        !store.record_dead_letter(&letters[0]).await.expect("record"),
        "a redelivered dead letter is stored once"
    );
    assert_eq!(h.count("SELECT count(*) FROM dead_letters").await, 5);

    let (mut seen, mut sizes, mut cursor) = (Vec::new(), Vec::new(), None::<String>);
    loop {
        let page = store
            .list_dead_letters(2, cursor.as_deref())
            .await
            .expect("page");
        sizes.push(page.items.len());
        seen.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(sizes, [2, 2, 1]);
    assert_eq!(seen, letters, "every field round-trips, newest first");

    // A message with NUL is stored with U+FFFD in its place (PostgreSQL text cannot hold NUL).
    let mut nul = dead_letter(now - TimeDelta::seconds(10), "x");
    nul.message = Some("bad\u{0}byte".into());
    assert!(store.record_dead_letter(&nul).await.expect("record"));
    let last = store
        .list_dead_letters(10, None)
        .await
        .expect("page")
        .items
        .pop()
        .expect("a letter");
    assert_eq!(last.message.as_deref(), Some("bad\u{FFFD}byte"));
}

async fn the_relay_reads_the_outbox_in_order_deletes_and_counts(h: Harness) {
    let store = &*h.store;
    let first = accept_new(store, &created("sleep", 3)).await.id;
    let second = accept_new(store, &created("sleep", 3)).await.id;
    start(store, first).await;
    store
        .complete_attempt(first, 1, Map::new(), 1.0)
        .await
        .expect("complete")
        .expect("completes");
    start(store, second).await;
    assert_eq!(store.outbox_backlog().await.expect("backlog"), 3);

    let batch = store.pending_outbox(2).await.expect("pending");
    assert_eq!(routing_keys(&batch), ["job.started", "job.completed"]);
    assert!(batch[0].id < batch[1].id);
    assert_eq!(batch[0].body["payload"]["jobId"], json!(first));
    let ids: Vec<i64> = batch.iter().map(|e| e.id).collect();
    assert_eq!(store.delete_outbox(&ids).await.expect("delete"), 2);
    assert_eq!(
        store.delete_outbox(&ids).await.expect("delete"),
        0,
        "deleting twice is harmless"
    );
    assert_eq!(store.outbox_backlog().await.expect("backlog"), 1);
    let rest = store.pending_outbox(10).await.expect("pending");
    assert_eq!(rest.len(), 1);
    assert!(rest[0].id > batch[1].id);
    assert_eq!(rest[0].body["payload"]["jobId"], json!(second));
    assert_eq!(store.delete_outbox(&[]).await.expect("delete"), 0);
    assert!(store.pending_outbox(0).await.expect("pending").is_empty());

    // Deleted ids are not reused: a later event comes after every earlier one.
    assert_eq!(store.delete_outbox(&[rest[0].id]).await.expect("delete"), 1);
    store
        .complete_attempt(second, 1, Map::new(), 1.0)
        .await
        .expect("complete")
        .expect("completes");
    let later = store.pending_outbox(10).await.expect("pending");
    assert_eq!(routing_keys(&later), ["job.completed"]);
    assert!(later[0].id > rest[0].id);

    // Many ids in one call (more than one SQLite statement's worth).
    for _ in 0..3 {
        accept_new(store, &created("sleep", 3)).await;
    }
    let mut many: Vec<i64> = (1..=1200).collect();
    many.push(later[0].id);
    assert_eq!(store.delete_outbox(&many).await.expect("delete"), 1);
    assert_eq!(store.outbox_backlog().await.expect("backlog"), 0);
}

async fn count_by_status_counts_each_present_status(h: Harness) {
    let store = &*h.store;
    assert!(store.count_by_status().await.expect("counts").is_empty());
    let ids = [
        accept_new(store, &created("sleep", 3)).await.id,
        accept_new(store, &created("sleep", 3)).await.id,
        accept_new(store, &created("sleep", 3)).await.id,
        accept_new(store, &created("sleep", 3)).await.id,
    ];
    start(store, ids[0]).await;
    start(store, ids[1]).await;
    store
        .complete_attempt(ids[1], 1, Map::new(), 1.0)
        .await
        .expect("complete")
        .expect("completes");
    start(store, ids[2]).await;
    store
        .fail_attempt(
            ids[2],
            1,
            error("x"),
            Retry::After(Duration::from_secs(60)),
            1.0,
        )
        .await
        .expect("fail")
        .expect("fails");
    let mut counts = store.count_by_status().await.expect("counts");
    counts.sort();
    assert_eq!(
        counts,
        [
            (JobStatus::Pending, 1),
            (JobStatus::Running, 1),
            (JobStatus::Retrying, 1),
            (JobStatus::Completed, 1),
        ]
    );
}

async fn a_lease_is_renewed_by_its_worker_and_runs_out_without_it(h: Harness) {
    let store = &*h.store;
    let id = accept_new(store, &created("sleep", 3)).await.id;
    let short = Duration::from_millis(300);
    store
        .start_attempt(id, WORKER, short)
        .await
        .expect("start")
        .expect("started");
    assert!(store.expired_leases(10).await.expect("expired").is_empty());
    // Its worker renews it; another worker cannot.
    assert!(
        store
            .renew_lease(id, 1, WORKER, LEASE)
            .await
            .expect("renew")
    );
    assert!(
        !store
            .renew_lease(id, 1, "processor-other", LEASE)
            .await
            .expect("renew")
    );
    assert!(
        !store
            .renew_lease(id, 2, WORKER, LEASE)
            .await
            .expect("renew")
    );
    // Without renewals it runs out (by the store's clock).
    assert!(
        store
            .renew_lease(id, 1, WORKER, short)
            .await
            .expect("renew")
    );
    tokio::time::sleep(short * 2).await;
    assert_eq!(
        store.expired_leases(10).await.expect("expired"),
        [RunningAttempt {
            job_id: id,
            attempt: 1
        }]
    );
    // A finished attempt holds no lease.
    store
        .complete_attempt(id, 1, Map::new(), 1.0)
        .await
        .expect("complete")
        .expect("completes");
    assert!(store.expired_leases(10).await.expect("expired").is_empty());
    assert!(
        !store
            .renew_lease(id, 1, WORKER, LEASE)
            .await
            .expect("renew")
    );
}

async fn an_interrupted_attempt_gives_its_attempt_back_and_is_due_at_once(h: Harness) {
    let store = &*h.store;
    // One attempt only: an interruption must not use it up.
    let id = accept_new(store, &created("sleep", 1)).await.id;
    assert_eq!(start(store, id).await, 1);
    let interrupted = store
        .interrupt_attempt(id, 1, "the processor stopped")
        .await
        .expect("interrupt")
        .expect("the running attempt");
    assert_eq!(interrupted.status, JobStatus::Retrying);
    assert_eq!(interrupted.attempts, 0, "the attempt is given back");
    let due = interrupted.next_attempt_at.expect("due");
    assert!(due <= Utc::now(), "due at once");
    let last = interrupted
        .last_error
        .clone()
        .expect("the interruption is the last error");
    assert_eq!(last.code, crate::INTERRUPTED);
    // Interrupting again, or the late result of the interrupted worker: nothing changes.
    assert_eq!(
        store
            .interrupt_attempt(id, 1, "again")
            .await
            .expect("interrupt"),
        None
    );
    assert_eq!(
        store
            .complete_attempt(id, 1, Map::new(), 1.0)
            .await
            .expect("complete"),
        None
    );
    assert!(
        !store
            .renew_lease(id, 1, WORKER, LEASE)
            .await
            .expect("renew")
    );
    // It runs again as attempt 2, and that attempt counts.
    assert!(
        store
            .due_retries(Utc::now(), None, 10)
            .await
            .expect("due")
            .iter()
            .any(|due| *due == id)
    );
    assert_eq!(start(store, id).await, 2);
    let done = store
        .complete_attempt(id, 2, Map::new(), 1.0)
        .await
        .expect("complete")
        .expect("completes");
    assert_eq!((done.status, done.attempts), (JobStatus::Completed, 1));
    let (_, attempts) = store.job_detail(id).await.expect("detail").expect("a job");
    let outcomes: Vec<(u64, String, Option<String>)> = attempts
        .iter()
        .map(|a| {
            (
                a.attempt.get(),
                a.outcome.to_string(),
                a.error.as_ref().map(|e| e.code.clone()),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            (1, "FAILED".to_owned(), Some(crate::INTERRUPTED.to_owned())),
            (2, "SUCCEEDED".to_owned(), None),
        ]
    );
    // The timeline says so: the interruption is a job.failed that will retry.
    let events = outbox(store).await;
    let failed = events
        .iter()
        .find(|e| e.routing_key == "job.failed")
        .expect("a job.failed event");
    assert_eq!(failed.body["payload"]["error"]["code"], crate::INTERRUPTED);
    assert_eq!(failed.body["payload"]["willRetry"], true);
    assert_eq!(failed.body["payload"]["attempt"], 1);
    assert_eq!(
        routing_keys(&events),
        ["job.started", "job.failed", "job.started", "job.completed"]
    );
}

async fn a_job_left_pending_is_found_by_age(h: Harness) {
    let store = &*h.store;
    let id = accept_new(store, &created("sleep", 3)).await.id;
    tokio::time::sleep(Duration::from_millis(2)).await;
    let later = accept_new(store, &created("sleep", 3)).await.id;
    assert!(
        store
            .stale_pending(Duration::from_secs(60), None, 10)
            .await
            .expect("stale")
            .is_empty(),
        "just stored"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        store
            .stale_pending(Duration::from_millis(10), None, 10)
            .await
            .expect("stale"),
        [id, later],
        "the oldest first"
    );
    let first = store
        .stale_pending(Duration::from_millis(10), None, 1)
        .await
        .expect("stale");
    assert_eq!(first, [id]);
    assert_eq!(
        store
            .stale_pending(Duration::from_millis(10), first.last(), 1)
            .await
            .expect("stale"),
        [later],
        "the page after the first"
    );
    start(store, id).await;
    start(store, later).await;
    assert!(
        store
            .stale_pending(Duration::from_millis(10), None, 10)
            .await
            .expect("stale")
            .is_empty(),
        "started"
    );
}

async fn relays_claim_disjoint_outbox_batches_until_their_claim_runs_out(h: Harness) {
    let store = &*h.store;
    for _ in 0..5 {
        let id = accept_new(store, &created("sleep", 3)).await.id;
        start(store, id).await;
    }
    assert_eq!(store.outbox_backlog().await.expect("backlog"), 5);
    let short = Duration::from_millis(300);
    let (a, b) = tokio::join!(store.claim_outbox(3, short), store.claim_outbox(3, short));
    let (a, b) = (a.expect("claim"), b.expect("claim"));
    let mut ids: Vec<i64> = a.iter().chain(&b).map(|e| e.id).collect();
    assert_eq!(ids.len(), 5, "every event claimed once: {a:?} {b:?}");
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 5, "no event claimed twice");
    assert!(a.windows(2).all(|w| w[0].id < w[1].id), "oldest first");
    assert!(
        store
            .claim_outbox(10, short)
            .await
            .expect("claim")
            .is_empty()
    );
    // Released events are claimable at once; the others once their claim runs out.
    let released: Vec<i64> = a.iter().map(|e| e.id).collect();
    store.release_outbox(&released).await.expect("release");
    let again = store.claim_outbox(10, LEASE).await.expect("claim");
    assert_eq!(again.iter().map(|e| e.id).collect::<Vec<_>>(), released);
    tokio::time::sleep(short * 2).await;
    let taken_over = store.claim_outbox(10, LEASE).await.expect("claim");
    assert_eq!(
        taken_over.iter().map(|e| e.id).collect::<Vec<_>>(),
        b.iter().map(|e| e.id).collect::<Vec<_>>()
    );
    // Published events are deleted whoever claimed them.
    assert_eq!(store.delete_outbox(&ids).await.expect("delete"), 5);
    assert_eq!(store.outbox_backlog().await.expect("backlog"), 0);
}

async fn invalid_arguments_are_rejected_without_changes(h: Harness) {
    let store = &*h.store;
    let id = accept_new(store, &created("sleep", 3)).await.id;
    start(store, id).await;
    let running = job(store, id).await;
    for duration in [f64::NAN, -1.0, f64::INFINITY] {
        let done = store.complete_attempt(id, 1, Map::new(), duration).await;
        assert!(
            matches!(done, Err(StoreError::InvalidArgument(_))),
            "{duration}: {done:?}"
        );
    }
    let zeroth = store
        .fail_attempt(id, 0, error("x"), Retry::Never, 1.0)
        .await;
    assert!(
        matches!(zeroth, Err(StoreError::InvalidArgument(_))),
        "{zeroth:?}"
    );
    let huge = store
        .fail_attempt(id, u32::MAX, error("x"), Retry::Never, 1.0)
        .await;
    assert!(
        matches!(huge, Err(StoreError::InvalidArgument(_))),
        "{huge:?}"
    );
    let forever = store
        .fail_attempt(id, 1, error("x"), Retry::After(Duration::MAX), 1.0)
        .await;
    assert!(
        matches!(forever, Err(StoreError::InvalidArgument(_))),
        "{forever:?}"
    );
    assert_eq!(job(store, id).await, running);
    assert_eq!(store.outbox_backlog().await.expect("backlog"), 1);

    // `\u0000` in a JSON string: PostgreSQL's jsonb cannot hold it, a permanent error so that
    // the processor dead-letters the message; SQLite stores JSON as text and keeps it.
    let mut poison = created("sleep", 3);
    poison
        .payload
        .payload
        .insert("text".into(), json!("a\u{0}b"));
    let accepted = store.accept(&poison).await;
    match h.adapter {
        Adapter::Postgres => {
            assert!(
                matches!(accepted, Err(StoreError::Unstorable(_))),
                "{accepted:?}"
            );
            assert_eq!(h.count("SELECT count(*) FROM jobs").await, 1);
        }
        Adapter::Sqlite => {
            let stored = accepted.expect("accept");
            assert!(stored.is_new());
            assert_eq!(
                job(store, poison.payload.job_id).await.payload["text"],
                "a\u{0}b"
            );
        }
    }
}

async fn timestamps_are_kept_to_the_microsecond(h: Harness) {
    let store = &*h.store;
    let submitted = DateTime::from_timestamp(1_800_000_000, 123_456_789).expect("a valid instant");
    let micros = DateTime::from_timestamp(1_800_000_000, 123_456_000).expect("a valid instant");
    let event = created_at(Uuid::new_v4(), "sleep", 3, submitted);
    let accepted = accept_new(store, &event).await;
    assert_eq!(accepted.created_at, micros, "truncated, not rounded");
    assert_eq!(job(store, accepted.id).await.created_at, micros);

    // A filter bound with nanoseconds compares at microsecond precision.
    let at_or_after = JobFilter {
        created_after: Some(submitted),
        ..JobFilter::default()
    };
    let page = store.list_jobs(&at_or_after, 10, None).await.expect("page");
    assert_eq!(ids(&page.items), [accepted.id]);

    let started = store
        .start_attempt(accepted.id, WORKER, LEASE)
        .await
        .expect("start")
        .expect("startable");
    let at = started.job.updated_at;
    assert_eq!(at, at.trunc_subsecs(6));
    assert_eq!(started.job.started_at, Some(at));
    let events = outbox(store).await;
    let announced: job_started::JobStarted =
        serde_json::from_value(events[0].body.clone()).expect("JobStarted");
    assert_eq!(
        announced.payload.started_at, at,
        "the event and the row agree"
    );
    let (_, attempts) = store
        .job_detail(accepted.id)
        .await
        .expect("detail")
        .expect("exists");
    assert_eq!(attempts[0].started_at, at);

    let mut letter = dead_letter(Utc::now(), "x");
    letter.received_at = submitted;
    store.record_dead_letter(&letter).await.expect("record");
    let stored = store.list_dead_letters(10, None).await.expect("page").items;
    assert_eq!(stored[0].received_at, micros);
}

async fn concurrent_writers_on_distinct_jobs_all_succeed(h: Harness) {
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = Arc::clone(&h.store);
            tokio::spawn(async move {
                // Every kind of write, including fail_attempt, which reads before it writes.
                let id = accept_new(&*store, &created("sleep", 3)).await.id;
                assert_eq!(start(&*store, id).await, 1);
                let failed = store
                    .fail_attempt(id, 1, error("timeout"), Retry::After(Duration::ZERO), 1.0)
                    .await
                    .expect("fail");
                assert!(
                    matches!(failed, Some(FailOutcome::Retrying(_))),
                    "{failed:?}"
                );
                assert_eq!(start(&*store, id).await, 2);
                store
                    .list_jobs(&JobFilter::default(), 5, None)
                    .await
                    .expect("a concurrent read");
                store
                    .complete_attempt(id, 2, Map::new(), 1.0)
                    .await
                    .expect("complete")
                    .expect("completes");
                id
            })
        })
        .collect();
    let mut done = HashSet::new();
    for task in tasks {
        done.insert(task.await.expect("the writer succeeded"));
    }
    assert_eq!(done.len(), 20);
    let store = &*h.store;
    assert_eq!(
        store.count_by_status().await.expect("counts"),
        [(JobStatus::Completed, 20)]
    );
    let events = outbox(store).await;
    assert_eq!(events.len(), 80);
    for id in done {
        let keys: Vec<_> = events
            .iter()
            .filter(|e| e.body["payload"]["jobId"] == json!(id))
            .map(|e| e.routing_key.as_str())
            .collect();
        assert_eq!(
            keys,
            ["job.started", "job.failed", "job.started", "job.completed"],
            "in order per job"
        );
    }
}

async fn concurrent_starts_of_one_job_start_it_once(h: Harness) {
    let id = accept_new(&*h.store, &created("sleep", 3)).await.id;
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let store = Arc::clone(&h.store);
            tokio::spawn(async move {
                store
                    .start_attempt(id, &format!("worker-{i}"), LEASE)
                    .await
                    .expect("start")
            })
        })
        .collect();
    let mut started = 0;
    for task in tasks {
        if task.await.expect("the starter ran").is_some() {
            started += 1;
        }
    }
    assert_eq!(started, 1, "exactly one redelivery starts the job");
    let (job, attempts) = h
        .store
        .job_detail(id)
        .await
        .expect("detail")
        .expect("exists");
    assert_eq!(
        (job.status, job.attempts, attempts.len()),
        (JobStatus::Running, 1, 1)
    );
    assert_eq!(h.store.outbox_backlog().await.expect("backlog"), 1);
}

async fn state_survives_close_and_reopen(h: Harness) {
    let store = &*h.store;
    let pending = accept_new(store, &created("sleep", 3)).await;
    let retrying = accept_new(store, &created("fail", 3)).await.id;
    start(store, retrying).await;
    store
        .fail_attempt(
            retrying,
            1,
            error("timeout"),
            Retry::After(Duration::from_secs(3600)),
            1.0,
        )
        .await
        .expect("fail")
        .expect("fails");
    let letter = dead_letter(Utc::now(), "{}");
    store.record_dead_letter(&letter).await.expect("record");
    let before = store
        .job_detail(retrying)
        .await
        .expect("detail")
        .expect("exists");
    let events = outbox(store).await;
    let last_id = events.last().expect("events").id;
    // Publish (delete) all but the last event, so that the outbox's sequence is tested too.
    let published: Vec<i64> = events[..events.len() - 1].iter().map(|e| e.id).collect();
    store.delete_outbox(&published).await.expect("delete");
    let page = store
        .list_jobs(&JobFilter::default(), 1, None)
        .await
        .expect("page");
    store.close().await;
    assert!(store.ping().await.is_err(), "closed");

    let store = h.reopen().await;
    store.ping().await.expect("ping");
    assert_eq!(
        store.job_detail(retrying).await.expect("detail"),
        Some(before.clone())
    );
    assert_eq!(job(&*store, pending.id).await, pending);
    let due = before.0.next_attempt_at.expect("scheduled");
    assert_eq!(
        store.due_retries(due, None, 10).await.expect("due"),
        [retrying]
    );
    assert_eq!(
        store.list_dead_letters(10, None).await.expect("page").items,
        [letter]
    );
    let remaining = outbox(&*store).await;
    assert_eq!(remaining, events[events.len() - 1..]);
    // A cursor issued before the restart still pages on.
    let cursor = page.next_cursor.expect("two jobs");
    let next = store
        .list_jobs(&JobFilter::default(), 1, Some(cursor.as_str()))
        .await
        .expect("page");
    assert_eq!(next.items.len(), 1);
    assert_ne!(next.items[0].id, page.items[0].id);

    start(&*store, pending.id).await;
    let after = outbox(&*store).await;
    assert_eq!(routing_keys(&after), ["job.failed", "job.started"]);
    assert!(after[1].id > last_id, "outbox ids keep increasing");
    store.close().await;
}
