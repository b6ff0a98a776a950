//! The job store against the real PostgreSQL: one fresh database per test.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use observatory_job_store::contracts::dead_letter::{DeadLetter, DeadLetterReason};
use observatory_job_store::contracts::event_envelope::EventProducer;
use observatory_job_store::contracts::job::{Job, JobError, JobStatus};
use observatory_job_store::contracts::job_attempt::AttemptOutcome;
use observatory_job_store::contracts::job_created::JobCreated;
use observatory_job_store::contracts::{job_completed, job_dead_lettered, job_failed, job_started};
use observatory_job_store::{
    Accepted, FailOutcome, JobFilter, JobStore, OutboxEvent, Retry, RunningAttempt, StoreError,
};
use observatory_validation::ContractValidator;
use serde_json::{Map, Value, json};
use sqlx::PgPool;
use uuid::Uuid;

const WORKER: &str = "processor-test-1";

fn producer() -> EventProducer {
    serde_json::from_value(
        json!({"service": "processor", "instanceId": WORKER, "version": "0.1.0"}),
    )
    .expect("a valid producer")
}

struct Fixture {
    store: JobStore,
    /// Direct access for assertions the API does not offer (row counts, triggers).
    db: PgPool,
}

async fn fixture() -> Fixture {
    let url = observatory_test_support::fresh_postgres_database().await;
    let store = JobStore::connect(&url, 4, producer())
        .await
        .expect("connect and migrate");
    let db = PgPool::connect(&url).await.expect("second pool");
    Fixture { store, db }
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

async fn accept_new(store: &JobStore, event: &JobCreated) -> Job {
    match store.accept(event).await.expect("accept") {
        Accepted::New(job) => job,
        Accepted::Duplicate(job) => panic!("expected a new job, got a duplicate of {}", job.id),
    }
}

async fn start(store: &JobStore, job_id: Uuid) -> u32 {
    store
        .start_attempt(job_id, WORKER)
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

async fn outbox(store: &JobStore) -> Vec<OutboxEvent> {
    store.pending_outbox(10_000).await.expect("pending outbox")
}

async fn count(db: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(db).await.expect("count")
}

async fn job(store: &JobStore, job_id: Uuid) -> Job {
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

/// Checks an outbox event against its event schema and its generated contract type, and
/// returns the typed event's envelope fields that tests compare.
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
    let (event_id, version, event_type, key, correlation) = match event.routing_key.as_str() {
        "job.started" => {
            let e: job_started::JobStarted = serde_json::from_value(body).expect("JobStarted");
            (
                e.event_id.0,
                e.contract_version.to_string(),
                e.event_type.to_string(),
                e.idempotency_key.to_string(),
                e.correlation_id.to_string(),
            )
        }
        "job.completed" => {
            let e: job_completed::JobCompleted =
                serde_json::from_value(body).expect("JobCompleted");
            (
                e.event_id.0,
                e.contract_version.to_string(),
                e.event_type.to_string(),
                e.idempotency_key.to_string(),
                e.correlation_id.to_string(),
            )
        }
        "job.failed" => {
            let e: job_failed::JobFailed = serde_json::from_value(body).expect("JobFailed");
            (
                e.event_id.0,
                e.contract_version.to_string(),
                e.event_type.to_string(),
                e.idempotency_key.to_string(),
                e.correlation_id.to_string(),
            )
        }
        "job.dead-lettered" => {
            let e: job_dead_lettered::JobDeadLettered =
                serde_json::from_value(body).expect("JobDeadLettered");
            (
                e.event_id.0,
                e.contract_version.to_string(),
                e.event_type.to_string(),
                e.idempotency_key.to_string(),
                e.correlation_id.to_string(),
            )
        }
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

fn routing_keys(events: &[OutboxEvent]) -> Vec<&str> {
    events.iter().map(|e| e.routing_key.as_str()).collect()
}

#[tokio::test]
async fn migrations_apply_once_and_create_every_table() {
    let Fixture { store, db } = fixture().await;
    store.ping().await.expect("ping");
    for table in ["jobs", "job_attempts", "outbox", "dead_letters"] {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(table)
            .fetch_one(&db)
            .await
            .unwrap();
        assert!(exists, "table {table}");
    }
    let applied = count(&db, "SELECT count(*) FROM _sqlx_migrations").await;
    // A second process connecting to the same database applies nothing again.
    let again = JobStore::with_pool(db.clone(), producer())
        .await
        .expect("migrate again");
    again.ping().await.unwrap();
    assert_eq!(
        count(&db, "SELECT count(*) FROM _sqlx_migrations").await,
        applied
    );
    // The status column accepts only the contract's statuses.
    let bad = sqlx::query(
        "INSERT INTO jobs (id, type, status, payload, attempts, max_attempts, correlation_id, created_at, updated_at) \
         VALUES (gen_random_uuid(), 'sleep', 'DONE', '{}', 0, 1, 'c', now(), now())",
    )
    .execute(&db)
    .await;
    assert!(bad.is_err(), "CHECK rejects an unknown status");
}

#[tokio::test]
async fn accept_stores_a_pending_job_once() {
    let Fixture { store, db } = fixture().await;
    let event = created("sleep", 3);
    let job = accept_new(&store, &event).await;
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

    // Redelivered, or published twice by the gateway with another event id: a duplicate.
    assert_eq!(
        store.accept(&event).await.unwrap(),
        Accepted::Duplicate(job.clone())
    );
    let mut republished = event.clone();
    republished.event_id = Uuid::new_v4().into();
    assert_eq!(
        store.accept(&republished).await.unwrap(),
        Accepted::Duplicate(job.clone())
    );
    // The same creation announced under another job id is recognised by its idempotency key.
    let mut renamed = event.clone();
    renamed.payload.job_id = Uuid::new_v4();
    assert_eq!(
        store.accept(&renamed).await.unwrap(),
        Accepted::Duplicate(job.clone())
    );

    assert_eq!(count(&db, "SELECT count(*) FROM jobs").await, 1);
    assert_eq!(
        store.outbox_backlog().await.unwrap(),
        0,
        "accepting announces nothing (the gateway did)"
    );
}

#[tokio::test]
async fn start_and_complete_each_write_state_attempt_and_exactly_one_event() {
    let Fixture { store, .. } = fixture().await;
    let event = created("compute", 3);
    let id = accept_new(&store, &event).await.id;

    let started = store
        .start_attempt(id, WORKER)
        .await
        .unwrap()
        .expect("startable");
    assert_eq!(started.attempt, 1);
    assert_eq!(started.job.status, JobStatus::Running);
    assert_eq!(started.job.attempts, 1);
    assert!(started.job.started_at.is_some());
    assert_eq!(
        started.job,
        job(&store, id).await,
        "returned job is the stored job"
    );
    let events = outbox(&store).await;
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
        .unwrap()
        .expect("the running attempt completes");
    assert_eq!(completed.status, JobStatus::Completed);
    assert_eq!(completed.result, output);
    assert!(completed.finished_at.is_some());
    let events = outbox(&store).await;
    assert_eq!(routing_keys(&events), ["job.started", "job.completed"]);
    let (key, _) = check_event(&events[1]);
    assert_eq!(key, format!("{id}:completed"));
    assert_eq!(events[1].body["payload"]["result"], Value::Object(output));
    assert_eq!(events[1].body["payload"]["durationMs"], 12.5);

    let (stored, attempts) = store.job_detail(id).await.unwrap().unwrap();
    assert_eq!(stored, completed);
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].outcome, AttemptOutcome::Succeeded);
    assert_eq!(attempts[0].duration_ms, Some(12.5));
    assert_eq!(attempts[0].worker.as_deref(), Some(WORKER));
    assert_eq!(attempts[0].finished_at, completed.finished_at);
    assert_eq!(store.job_detail(Uuid::new_v4()).await.unwrap(), None);
}

#[tokio::test]
async fn redelivered_writes_change_nothing() {
    let Fixture { store, .. } = fixture().await;
    let id = accept_new(&store, &created("sleep", 3)).await.id;
    assert_eq!(start(&store, id).await, 1);
    let running = job(&store, id).await;

    assert_eq!(
        store.start_attempt(id, WORKER).await.unwrap(),
        None,
        "already running"
    );
    assert_eq!(
        store
            .complete_attempt(id, 2, Map::new(), 1.0)
            .await
            .unwrap(),
        None,
        "not the running attempt"
    );
    assert_eq!(job(&store, id).await, running);
    assert_eq!(outbox(&store).await.len(), 1);

    let done = store
        .complete_attempt(id, 1, Map::new(), 1.0)
        .await
        .unwrap()
        .expect("completes");
    assert_eq!(
        store
            .complete_attempt(id, 1, Map::new(), 1.0)
            .await
            .unwrap(),
        None,
        "completed twice"
    );
    assert_eq!(
        store.start_attempt(id, WORKER).await.unwrap(),
        None,
        "terminal"
    );
    let late_failure =
        store.fail_attempt(id, 1, error("timeout"), Retry::After(Duration::ZERO), 1.0);
    assert_eq!(
        late_failure.await.unwrap(),
        None,
        "a late failure of a completed attempt"
    );
    assert_eq!(job(&store, id).await, done);
    assert_eq!(
        routing_keys(&outbox(&store).await),
        ["job.started", "job.completed"]
    );
    assert_eq!(
        store.start_attempt(Uuid::new_v4(), WORKER).await.unwrap(),
        None,
        "unknown job"
    );
}

#[tokio::test]
async fn a_failing_outbox_write_rolls_back_the_state_change() {
    let Fixture { store, db } = fixture().await;
    let id = accept_new(&store, &created("sleep", 3)).await.id;
    let pending = job(&store, id).await;
    sqlx::raw_sql(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'outbox refused'; END $$; \
         CREATE TRIGGER refuse_outbox BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION refuse();",
    )
    .execute(&db)
    .await
    .unwrap();

    let failed = store.start_attempt(id, WORKER).await;
    assert!(matches!(failed, Err(StoreError::Database(_))), "{failed:?}");
    assert_eq!(
        job(&store, id).await,
        pending,
        "no state change without its event"
    );
    assert_eq!(count(&db, "SELECT count(*) FROM job_attempts").await, 0);
    assert_eq!(store.outbox_backlog().await.unwrap(), 0);

    sqlx::raw_sql("DROP TRIGGER refuse_outbox ON outbox")
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(
        start(&store, id).await,
        1,
        "the rolled-back start left no trace"
    );
    assert_eq!(store.outbox_backlog().await.unwrap(), 1);
}

#[tokio::test]
async fn a_retryable_failure_with_attempts_left_schedules_a_retry() {
    let Fixture { store, .. } = fixture().await;
    let id = accept_new(&store, &created("fail", 3)).await.id;
    start(&store, id).await;

    let outcome = store
        .fail_attempt(
            id,
            1,
            error("intentional-failure"),
            Retry::After(Duration::from_secs(3600)),
            5.0,
        )
        .await
        .unwrap()
        .expect("the running attempt fails");
    let FailOutcome::Retrying(retrying) = outcome else {
        panic!("expected a retry, got {outcome:?}")
    };
    assert_eq!(retrying.status, JobStatus::Retrying);
    let due = retrying.next_attempt_at.expect("a retry is scheduled");
    assert_eq!(due - retrying.updated_at, TimeDelta::hours(1));
    assert_eq!(retrying.finished_at, None);
    let last_error = retrying.last_error.clone().expect("last error kept");
    assert_eq!(
        (
            last_error.code.as_str(),
            last_error.attempt.map(|a| a.get())
        ),
        ("intentional-failure", Some(1))
    );

    let events = outbox(&store).await;
    assert_eq!(routing_keys(&events), ["job.started", "job.failed"]);
    let (key, _) = check_event(&events[1]);
    assert_eq!(key, format!("{id}:failed:1"));
    let failed: job_failed::JobFailed = serde_json::from_value(events[1].body.clone()).unwrap();
    assert!(failed.payload.will_retry);
    assert_eq!(failed.payload.next_attempt_at, Some(due));
    assert_eq!(failed.payload.job_status, JobStatus::Retrying);
    assert_eq!(failed.payload.error, last_error);
    assert_eq!(failed.payload.duration_ms, Some(5.0));

    // Not due yet: neither polled nor startable.
    assert_eq!(store.start_attempt(id, WORKER).await.unwrap(), None);
    assert!(store.due_retries(Utc::now(), 10).await.unwrap().is_empty());
    assert_eq!(store.due_retries(due, 10).await.unwrap(), [id]);

    // A retry that is due at once is polled and started as attempt 2.
    let soon = accept_new(&store, &created("fail", 3)).await.id;
    start(&store, soon).await;
    let outcome = store
        .fail_attempt(soon, 1, error("timeout"), Retry::After(Duration::ZERO), 1.0)
        .await
        .unwrap();
    assert!(
        matches!(outcome, Some(FailOutcome::Retrying(_))),
        "{outcome:?}"
    );
    assert_eq!(store.due_retries(Utc::now(), 10).await.unwrap(), [soon]);
    assert_eq!(start(&store, soon).await, 2);
    let (running, attempts) = store.job_detail(soon).await.unwrap().unwrap();
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
    let last = outbox(&store).await.pop().unwrap();
    assert_eq!(check_event(&last).0, format!("{soon}:started:2"));
}

#[tokio::test]
async fn failing_the_last_attempt_dead_letters_the_job() {
    let Fixture { store, db } = fixture().await;
    let id = accept_new(&store, &created("fail", 2)).await.id;
    for attempt in 1..=2 {
        assert_eq!(start(&store, id).await, attempt);
        let outcome = store
            .fail_attempt(
                id,
                attempt,
                error("intentional-failure"),
                Retry::After(Duration::ZERO),
                2.0,
            )
            .await
            .unwrap()
            .expect("fails");
        let expected = if attempt == 1 {
            JobStatus::Retrying
        } else {
            JobStatus::DeadLettered
        };
        assert_eq!(outcome.job().status, expected);
    }
    let dead = job(&store, id).await;
    assert_eq!(
        (dead.status, dead.attempts, dead.next_attempt_at),
        (JobStatus::DeadLettered, 2, None)
    );
    assert!(dead.finished_at.is_some());

    let events = outbox(&store).await;
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
        serde_json::from_value(events[3].body.clone()).unwrap();
    assert!(!last_failure.payload.will_retry);
    assert_eq!(last_failure.payload.next_attempt_at, None);
    assert_eq!(last_failure.payload.job_status, JobStatus::DeadLettered);
    let (key, _) = check_event(&events[4]);
    assert_eq!(key, format!("{id}:dead-lettered"));
    let announced: job_dead_lettered::JobDeadLettered =
        serde_json::from_value(events[4].body.clone()).unwrap();
    assert_eq!(
        announced.payload.reason,
        DeadLetterReason::AttemptsExhausted
    );
    assert_eq!(announced.payload.attempts, 2);
    assert_eq!(announced.payload.last_error, dead.last_error);

    let letters = store.list_dead_letters(10, None).await.unwrap().items;
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(letter.reason, DeadLetterReason::AttemptsExhausted);
    assert_eq!(
        (letter.job_id, letter.event_id, letter.attempts),
        (Some(id), Some(events[4].event_id), Some(2))
    );
    assert_eq!(letter.correlation_id.as_ref(), Some(&dead.correlation_id));
    assert_eq!(letter.source, "processor");
    let raw: Job = serde_json::from_str(&letter.raw_body).expect("the raw body is the job");
    assert_eq!(raw, dead);

    assert!(store.due_retries(Utc::now(), 10).await.unwrap().is_empty());
    assert_eq!(store.start_attempt(id, WORKER).await.unwrap(), None);
    assert_eq!(count(&db, "SELECT count(*) FROM dead_letters").await, 1);
}

#[tokio::test]
async fn a_failure_that_no_retry_can_fix_fails_the_job() {
    let Fixture { store, db } = fixture().await;
    let id = accept_new(&store, &created("no-such-type", 3)).await.id;
    start(&store, id).await;
    let outcome = store
        .fail_attempt(id, 1, error("unknown-job-type"), Retry::Never, 0.0)
        .await
        .unwrap();
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

    let events = outbox(&store).await;
    assert_eq!(routing_keys(&events), ["job.started", "job.failed"]);
    let event: job_failed::JobFailed = serde_json::from_value(events[1].body.clone()).unwrap();
    assert!(!event.payload.will_retry);
    assert_eq!(event.payload.job_status, JobStatus::Failed);
    assert_eq!(
        count(&db, "SELECT count(*) FROM dead_letters").await,
        0,
        "FAILED is not dead-lettered"
    );
    assert_eq!(store.start_attempt(id, WORKER).await.unwrap(), None);
}

#[tokio::test]
async fn every_outbox_event_matches_its_schema_and_contract_type() {
    let Fixture { store, .. } = fixture().await;
    let completes = accept_new(&store, &created("sleep", 1)).await.id;
    start(&store, completes).await;
    store
        .complete_attempt(completes, 1, Map::new(), 0.0)
        .await
        .unwrap()
        .unwrap();
    let with_result = accept_new(&store, &created("compute", 1)).await.id;
    start(&store, with_result).await;
    store
        .complete_attempt(with_result, 1, result(json!({"n": [1, 2]})), 3.25)
        .await
        .unwrap()
        .unwrap();
    let fails = accept_new(&store, &created("unknown", 3)).await.id;
    start(&store, fails).await;
    store
        .fail_attempt(fails, 1, error("unknown-job-type"), Retry::Never, 1.0)
        .await
        .unwrap()
        .unwrap();
    let exhausts = accept_new(&store, &created("fail", 2)).await.id;
    for attempt in 1..=2 {
        start(&store, exhausts).await;
        store
            .fail_attempt(
                exhausts,
                attempt,
                error("boom"),
                Retry::After(Duration::ZERO),
                1.0,
            )
            .await
            .unwrap()
            .unwrap();
    }

    let events = outbox(&store).await;
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
    let mut ids = HashSet::new();
    for event in &events {
        let (key, _) = check_event(event);
        assert!(
            keys.insert(key.clone()),
            "idempotency key {key} announced twice"
        );
        assert!(ids.insert(event.event_id), "event id reused");
    }
    assert_eq!(events.len(), 11);
}

#[tokio::test]
async fn keyset_pages_walk_every_job_once_newest_first_with_filters() {
    let Fixture { store, .. } = fixture().await;
    let base = Utc::now().trunc_subsecs(6) - TimeDelta::days(1);
    let mut jobs = Vec::new();
    for i in 0..250i64 {
        // Pairs share a creation time, so the id must break ties.
        let at = base + TimeDelta::seconds(i / 2);
        let job_type = if i % 2 == 0 { "sleep" } else { "compute" };
        let job = accept_new(&store, &created_at(Uuid::new_v4(), job_type, 3, at)).await;
        if i % 5 == 0 {
            start(&store, job.id).await;
            store
                .complete_attempt(job.id, 1, Map::new(), 1.0)
                .await
                .unwrap()
                .unwrap();
        }
        jobs.push((at, job.id, job_type, i % 5 == 0));
    }
    jobs.sort_by_key(|job| std::cmp::Reverse((job.0, job.1)));

    async fn walk(store: &JobStore, filter: &JobFilter, limit: u32) -> (Vec<Job>, Vec<usize>) {
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
    let ids = |jobs: &[Job]| jobs.iter().map(|j| j.id).collect::<Vec<_>>();

    let (all, sizes) = walk(&store, &JobFilter::default(), 100).await;
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
    let (found, sizes) = walk(&store, &completed, 20).await;
    assert_eq!(sizes, [20, 20, 10]);
    assert_eq!(
        ids(&found),
        jobs.iter().filter(|j| j.3).map(|j| j.1).collect::<Vec<_>>()
    );

    let compute = JobFilter {
        job_type: Some("compute".parse().unwrap()),
        ..JobFilter::default()
    };
    let (found, sizes) = walk(&store, &compute, 100).await;
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
    let (found, sizes) = walk(&store, &window, 30).await;
    assert_eq!(sizes, [30, 30, 30, 10]);
    let expected: Vec<_> = jobs
        .iter()
        .filter(|j| j.0 >= from && j.0 < until)
        .map(|j| j.1)
        .collect();
    assert_eq!(ids(&found), expected);

    let combined = JobFilter {
        status: Some(JobStatus::Pending),
        job_type: Some("sleep".parse().unwrap()),
        ..window
    };
    let (found, _) = walk(&store, &combined, 7).await;
    let expected: Vec<_> = jobs
        .iter()
        .filter(|j| j.0 >= from && j.0 < until && j.2 == "sleep" && !j.3)
        .map(|j| j.1)
        .collect();
    assert_eq!(ids(&found), expected);
    assert!(found.iter().all(|j| j.status == JobStatus::Pending));

    let failed = JobFilter {
        status: Some(JobStatus::Failed),
        ..JobFilter::default()
    };
    let empty = store.list_jobs(&failed, 10, None).await.unwrap();
    assert!(empty.items.is_empty() && empty.next_cursor.is_none());
}

#[tokio::test]
async fn a_malformed_cursor_is_an_invalid_cursor_error() {
    let Fixture { store, .. } = fixture().await;
    for i in 0..2 {
        let letter = dead_letter(Utc::now() - TimeDelta::seconds(i), "x");
        store.record_dead_letter(&letter).await.unwrap();
    }
    let dead_letter_cursor = store
        .list_dead_letters(1, None)
        .await
        .unwrap()
        .next_cursor
        .expect("two pages");
    for bad in ["not-a-cursor", "zz", "00", dead_letter_cursor.as_str()] {
        let page = store.list_jobs(&JobFilter::default(), 10, Some(bad)).await;
        assert!(
            matches!(page, Err(StoreError::InvalidCursor(_))),
            "{bad}: {page:?}"
        );
    }
    let page = store.list_dead_letters(10, Some("6a6f6273")).await;
    assert!(
        matches!(page, Err(StoreError::InvalidCursor(_))),
        "{page:?}"
    );
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
        correlation_id: Some("req-1".parse().unwrap()),
    }
}

#[tokio::test]
async fn dead_letters_are_recorded_once_and_paged_newest_first() {
    let Fixture { store, db } = fixture().await;
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
        assert!(store.record_dead_letter(letter).await.unwrap(), "stored");
    }
    assert!(
        !store.record_dead_letter(&letters[0]).await.unwrap(),
        "a redelivered dead letter is stored once"
    );
    assert_eq!(count(&db, "SELECT count(*) FROM dead_letters").await, 5);

    let (mut seen, mut sizes, mut cursor) = (Vec::new(), Vec::new(), None::<String>);
    loop {
        let page = store.list_dead_letters(2, cursor.as_deref()).await.unwrap();
        sizes.push(page.items.len());
        seen.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(sizes, [2, 2, 1]);
    assert_eq!(seen, letters, "every field round-trips, newest first");
}

#[tokio::test]
async fn the_relay_reads_the_outbox_in_order_deletes_and_counts() {
    let Fixture { store, .. } = fixture().await;
    let first = accept_new(&store, &created("sleep", 3)).await.id;
    let second = accept_new(&store, &created("sleep", 3)).await.id;
    start(&store, first).await;
    store
        .complete_attempt(first, 1, Map::new(), 1.0)
        .await
        .unwrap()
        .unwrap();
    start(&store, second).await;
    assert_eq!(store.outbox_backlog().await.unwrap(), 3);

    let batch = store.pending_outbox(2).await.unwrap();
    assert_eq!(routing_keys(&batch), ["job.started", "job.completed"]);
    assert!(batch[0].id < batch[1].id);
    assert_eq!(batch[0].body["payload"]["jobId"], json!(first));
    let ids: Vec<i64> = batch.iter().map(|e| e.id).collect();
    assert_eq!(store.delete_outbox(&ids).await.unwrap(), 2);
    assert_eq!(
        store.delete_outbox(&ids).await.unwrap(),
        0,
        "deleting twice is harmless"
    );
    assert_eq!(store.outbox_backlog().await.unwrap(), 1);
    let rest = store.pending_outbox(10).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].body["payload"]["jobId"], json!(second));
    assert_eq!(store.delete_outbox(&[]).await.unwrap(), 0);
}

#[tokio::test]
async fn count_by_status_counts_each_present_status() {
    let Fixture { store, .. } = fixture().await;
    assert!(store.count_by_status().await.unwrap().is_empty());
    let ids = [
        accept_new(&store, &created("sleep", 3)).await.id,
        accept_new(&store, &created("sleep", 3)).await.id,
        accept_new(&store, &created("sleep", 3)).await.id,
    ];
    start(&store, ids[0]).await;
    start(&store, ids[1]).await;
    store
        .complete_attempt(ids[1], 1, Map::new(), 1.0)
        .await
        .unwrap()
        .unwrap();
    let mut counts = store.count_by_status().await.unwrap();
    counts.sort();
    assert_eq!(
        counts,
        [
            (JobStatus::Pending, 1),
            (JobStatus::Running, 1),
            (JobStatus::Completed, 1)
        ]
    );
}

#[tokio::test]
async fn attempts_abandoned_by_a_crashed_worker_are_found_and_failed() {
    let Fixture { store, .. } = fixture().await;
    let id = accept_new(&store, &created("sleep", 3)).await.id;
    start(&store, id).await;
    let started_at = job(&store, id).await.started_at.unwrap();
    assert!(
        store
            .abandoned_attempts(started_at, 10)
            .await
            .unwrap()
            .is_empty(),
        "not older than the cutoff"
    );
    let cutoff = started_at + TimeDelta::minutes(1);
    assert_eq!(
        store.abandoned_attempts(cutoff, 10).await.unwrap(),
        [RunningAttempt {
            job_id: id,
            attempt: 1
        }]
    );

    let outcome = store
        .fail_attempt(
            id,
            1,
            error("timeout"),
            Retry::After(Duration::ZERO),
            60_000.0,
        )
        .await
        .unwrap();
    assert!(
        matches!(outcome, Some(FailOutcome::Retrying(_))),
        "{outcome:?}"
    );
    assert!(
        store
            .abandoned_attempts(cutoff, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // The worker that was in fact alive reports late: refused, nothing changes.
    assert_eq!(
        store
            .complete_attempt(id, 1, Map::new(), 1.0)
            .await
            .unwrap(),
        None
    );
    assert_eq!(job(&store, id).await.status, JobStatus::Retrying);
}

#[tokio::test]
async fn invalid_arguments_and_unstorable_values_are_rejected_without_changes() {
    let Fixture { store, db } = fixture().await;
    let id = accept_new(&store, &created("sleep", 3)).await.id;
    start(&store, id).await;
    let running = job(&store, id).await;
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
    assert_eq!(job(&store, id).await, running);
    assert_eq!(store.outbox_backlog().await.unwrap(), 1);

    // jsonb cannot hold \u0000: a permanent error, so the processor can dead-letter the message.
    let mut poison = created("sleep", 3);
    poison
        .payload
        .payload
        .insert("text".into(), json!("a\u{0}b"));
    let accepted = store.accept(&poison).await;
    assert!(
        matches!(accepted, Err(StoreError::Unstorable(_))),
        "{accepted:?}"
    );
    assert_eq!(count(&db, "SELECT count(*) FROM jobs").await, 1);
}
