//! The read model's HTTP surface in-process (`oneshot`) against the real servers: each test
//! has its own PostgreSQL database, Redis prefix, MongoDB database and broker prefix. Data is
//! seeded through the stores' own APIs; every body is checked against its schema.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use http_body_util::BodyExt;
use observatory_counters::{Counters, RedisCounters};
use observatory_event_log::{EventLog, MongoEventLog};
use observatory_job_store::{Accepted, JobStore, PostgresJobStore, Retry};
use observatory_messaging::{BrokerConnector, MessageMeta, RabbitMq, Topology};
use observatory_read_model::contracts::event_envelope::EventEnvelope;
use observatory_read_model::contracts::job::JobError;
use observatory_read_model::{ReadModelConfig, ReadModelOptions, ReadModelState, router};
use observatory_runtime::shutdown::CancellationToken;
use observatory_test_support::{
    fresh_postgres_database, mongodb_url, rabbitmq_url, redis_url, unique_name,
};
use observatory_validation::ContractValidator;
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(15);

struct Fixture {
    state: ReadModelState,
    redis_prefix: String,
    store: Arc<dyn JobStore>,
    log: Arc<dyn EventLog>,
    counters: Arc<dyn Counters>,
}

fn producer(service: &str) -> Value {
    json!({"service": service, "instanceId": format!("{service}-test-1"), "version": "0.1.0"})
}

async fn fixture_with(options: ReadModelOptions) -> Fixture {
    let store = PostgresJobStore::connect(
        &fresh_postgres_database().await,
        4,
        serde_json::from_value(producer("processor")).expect("a valid producer"),
    )
    .await
    .expect("PostgreSQL");
    let store: Arc<dyn JobStore> = Arc::new(store);
    let log: Arc<dyn EventLog> = Arc::new(
        MongoEventLog::connect(&mongodb_url(), &unique_name())
            .await
            .expect("MongoDB"),
    );
    let redis_prefix = unique_name();
    let counters: Arc<dyn Counters> = Arc::new(
        RedisCounters::connect(&redis_url(), &redis_prefix)
            .await
            .expect("Redis"),
    );
    let state = ReadModelState::new(options, Topology::new(unique_name())).expect("a valid state");
    assert!(state.provide_job_store(store.clone()));
    assert!(state.provide_event_log(log.clone()));
    assert!(state.provide_counters(counters.clone()));
    Fixture {
        state,
        redis_prefix,
        store,
        log,
        counters,
    }
}

async fn fixture() -> Fixture {
    fixture_with(ReadModelOptions::default()).await
}

impl Fixture {
    fn app(&self) -> Router {
        router(self.state.clone()).expect("every operation has a handler")
    }

    async fn get(&self, uri: &str) -> (StatusCode, HeaderMap, Value) {
        get(&self.app(), uri).await
    }

    /// Stores `event` in the event log and the counters, as the metrics engine does.
    async fn record(&self, events: &[EventEnvelope]) {
        self.log.append_batch(events).await.expect("append");
        self.counters.record_batch(events).await.expect("record");
    }

    /// Records every event the job store wrote to its outbox, and empties it.
    async fn record_outbox(&self) -> Vec<EventEnvelope> {
        let pending = self.store.pending_outbox(10_000).await.expect("outbox");
        let events: Vec<EventEnvelope> = pending
            .iter()
            .map(|e| serde_json::from_value(e.body.clone()).expect("an envelope"))
            .collect();
        let ids: Vec<i64> = pending.iter().map(|e| e.id).collect();
        self.store.delete_outbox(&ids).await.expect("delete outbox");
        self.record(&events).await;
        events
    }

    /// Accepts a job submitted at `at` and records its job.created event.
    async fn submit(&self, job_type: &str, max_attempts: u64, at: DateTime<Utc>) -> Uuid {
        let job_id = Uuid::new_v4();
        let created = json!({
            "contractVersion": "1.0.0",
            "eventType": "job.created",
            "eventId": Uuid::new_v4(),
            "occurredAt": at,
            "producer": producer("gateway"),
            "correlationId": format!("req-{}", job_id.simple()),
            "idempotencyKey": format!("{job_id}:created"),
            "payload": {"jobId": job_id, "type": job_type, "payload": {"durationMs": 10},
                        "maxAttempts": max_attempts, "submittedAt": at}
        });
        let accepted = self
            .store
            .accept(&serde_json::from_value(created.clone()).expect("a job.created event"))
            .await
            .expect("accept");
        assert!(matches!(accepted, Accepted::New(_)));
        self.record(&[serde_json::from_value(created).expect("an envelope")])
            .await;
        job_id
    }

    async fn start(&self, job_id: Uuid) -> u32 {
        self.store
            .start_attempt(job_id, "processor-test-1", Duration::from_secs(600))
            .await
            .expect("start")
            .expect("startable")
            .attempt
    }

    async fn complete(&self, job_id: Uuid) {
        let attempt = self.start(job_id).await;
        let result = json!({"ok": true}).as_object().cloned().unwrap_or_default();
        self.store
            .complete_attempt(job_id, attempt, result, 12.5)
            .await
            .expect("complete")
            .expect("running");
    }

    async fn fail(&self, job_id: Uuid, retry: Retry) {
        let attempt = self.start(job_id).await;
        let error = JobError {
            attempt: None,
            code: "boom".into(),
            message: "failed on purpose".into(),
        };
        self.store
            .fail_attempt(job_id, attempt, error, retry, 3.0)
            .await
            .expect("fail")
            .expect("running");
    }
}

async fn get(app: &Router, uri: &str) -> (StatusCode, HeaderMap, Value) {
    let response = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).expect("a request"))
        .await
        .expect("infallible");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("a body").to_bytes();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{uri}: body is not JSON ({e}): {bytes:?}"))
    };
    (parts.status, parts.headers, value)
}

fn assert_valid(schema: &str, value: &Value) {
    let validator = ContractValidator::by_name(schema)
        .expect("a known schema")
        .expect("a compilable schema");
    if let Err(violations) = validator.validate(value) {
        panic!("not a valid {schema}: {violations:?}\n{value:#}");
    }
}

/// A 4xx/5xx with the one error body, its code and (when given) the pointer of its detail.
fn assert_error(
    (status, headers, body): &(StatusCode, HeaderMap, Value),
    expected: StatusCode,
    code: &str,
    pointer: Option<&str>,
) {
    assert_eq!(*status, expected, "{body:#}");
    assert_eq!(
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    assert_valid("api_error", body);
    assert_eq!(body["code"], code, "{body:#}");
    assert!(body["correlationId"].is_string(), "{body:#}");
    if let Some(pointer) = pointer {
        assert_eq!(body["details"][0]["pointer"], pointer, "{body:#}");
    }
}

fn ids(page: &Value, field: &str) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items is an array")
        .iter()
        .map(|item| item[field].as_str().expect("a string id").to_string())
        .collect()
}

/// Follows `nextCursor` from `uri` (which has a query) to the last page; every page validates.
async fn all_pages(
    fixture: &Fixture,
    uri: &str,
    schema: &str,
    field: &str,
) -> (Vec<String>, usize) {
    let (mut collected, mut pages, mut next) = (Vec::new(), 0, uri.to_string());
    loop {
        let (status, _, page) = fixture.get(&next).await;
        assert_eq!(status, StatusCode::OK, "{next}: {page:#}");
        assert_valid(schema, &page);
        collected.extend(ids(&page, field));
        pages += 1;
        assert!(pages < 100, "pagination does not end");
        match page["nextCursor"].as_str() {
            Some(cursor) => next = format!("{uri}&cursor={cursor}"),
            None => return (collected, pages),
        }
    }
}

fn minutes_ago(n: i64) -> DateTime<Utc> {
    (Utc::now() - TimeDelta::minutes(n)).trunc_subsecs(3)
}

#[tokio::test]
async fn openapi_json_is_the_contract_and_every_operation_is_served() {
    let fixture = fixture().await;
    let job_id = fixture.submit("sleep", 3, minutes_ago(1)).await;
    let (status, _, document) = fixture.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let contract: Value =
        serde_json::from_str(observatory_contracts::openapi::READ_MODEL).expect("the contract");
    assert_eq!(document, contract);

    let app = fixture.app();
    let mut operations = 0;
    for (path, item) in contract["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            let uri = path
                .replace("{jobId}", &job_id.to_string())
                .replace("{asset}", "app.js");
            let request = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&uri)
                .body(Body::empty())
                .expect("a request");
            let response = app.clone().oneshot(request).await.expect("infallible");
            assert!(
                ![StatusCode::NOT_FOUND, StatusCode::METHOD_NOT_ALLOWED]
                    .contains(&response.status()),
                "{method} {uri}: {}",
                response.status()
            );
            operations += 1;
        }
    }
    assert_eq!(
        operations, 15,
        "8 read operations, the dashboard's 2 and 5 operational ones"
    );
}

#[tokio::test]
async fn jobs_are_filtered_and_paged_newest_first() {
    let fixture = fixture().await;
    // Seven jobs, one minute apart (index 0 newest); every third is compute.
    let mut jobs = Vec::new();
    for i in 0..7 {
        let job_type = if i % 3 == 0 { "compute" } else { "sleep" };
        jobs.push(fixture.submit(job_type, 3, minutes_ago(i + 1)).await);
    }
    for job in &jobs[0..3] {
        fixture.complete(*job).await;
    }
    fixture.fail(jobs[3], Retry::Never).await;
    let newest_first: Vec<String> = jobs.iter().map(ToString::to_string).collect();

    for limit in [1, 3, 7, 500] {
        let (all, pages) =
            all_pages(&fixture, &format!("/jobs?limit={limit}"), "job_page", "id").await;
        assert_eq!(all, newest_first, "limit {limit}");
        assert_eq!(pages, 7_usize.div_ceil(limit), "limit {limit}");
    }
    let (all, _) = all_pages(&fixture, "/jobs?", "job_page", "id").await;
    assert_eq!(all, newest_first, "the default limit holds them all");

    let (completed, _) =
        all_pages(&fixture, "/jobs?status=COMPLETED&limit=2", "job_page", "id").await;
    assert_eq!(completed, newest_first[0..3]);
    let (failed, _) = all_pages(&fixture, "/jobs?status=FAILED", "job_page", "id").await;
    assert_eq!(failed, newest_first[3..4]);
    let (pending, _) = all_pages(&fixture, "/jobs?status=PENDING", "job_page", "id").await;
    assert_eq!(pending, newest_first[4..7]);
    let (compute, _) = all_pages(&fixture, "/jobs?type=compute&limit=1", "job_page", "id").await;
    assert_eq!(
        compute,
        [
            newest_first[0].clone(),
            newest_first[3].clone(),
            newest_first[6].clone()
        ]
    );
    let (none, _) = all_pages(&fixture, "/jobs?type=fail", "job_page", "id").await;
    assert!(none.is_empty());

    // createdAfter is inclusive, createdBefore exclusive; '+' offsets must be percent-encoded.
    let after = minutes_ago(5).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let before = minutes_ago(2).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let window = format!("/jobs?createdAfter={after}&createdBefore={before}&limit=2");
    let (windowed, _) = all_pages(&fixture, &window, "job_page", "id").await;
    assert_eq!(windowed, newest_first[1..4], "{window}");
    let after6 = minutes_ago(6).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let combined = format!("/jobs?createdAfter={after6}&status=PENDING");
    let (both, _) = all_pages(&fixture, &combined, "job_page", "id").await;
    assert_eq!(both, newest_first[4..5]);

    // A short id (any case, dashes ignored) finds its job; a whole one exactly that job.
    let short = &newest_first[2][..8];
    let (found, _) = all_pages(
        &fixture,
        &format!("/jobs?idPrefix={}", short.to_uppercase()),
        "job_page",
        "id",
    )
    .await;
    assert!(found.contains(&newest_first[2]), "{short}: {found:?}");
    assert!(found.iter().all(|id| id.starts_with(short)), "{found:?}");
    let (exact, _) = all_pages(
        &fixture,
        &format!("/jobs?idPrefix={}&status=COMPLETED", newest_first[2]),
        "job_page",
        "id",
    )
    .await;
    assert_eq!(exact, newest_first[2..3]);
    // What the contract allows beyond that: dashes alone are every job, and more hex digits
    // than an id has are none.
    let (dashes, _) = all_pages(&fixture, "/jobs?idPrefix=---", "job_page", "id").await;
    assert_eq!(dashes, newest_first);
    let too_long = format!("/jobs?idPrefix={}", "0".repeat(35));
    let (none, _) = all_pages(&fixture, &too_long, "job_page", "id").await;
    assert!(none.is_empty(), "{none:?}");
}

#[tokio::test]
async fn empty_results_are_empty_lists() {
    let fixture = fixture().await;
    for (uri, schema) in [
        ("/jobs", "job_page"),
        ("/jobs?status=RUNNING", "job_page"),
        ("/events", "event_page"),
        (
            "/events?jobId=6f1e0b0e-0a4c-4d52-8b53-0d7c0f0b9a11",
            "event_page",
        ),
        ("/dead-letters", "dead_letter_page"),
    ] {
        let (status, _, body) = fixture.get(uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert_valid(schema, &body);
        assert_eq!(body, json!({"items": []}), "{uri}");
    }
    let (status, _, overview) = fixture.get("/overview").await;
    assert_eq!(status, StatusCode::OK);
    assert_valid("overview", &overview);
    assert!(overview["byType"].is_array());
    assert_eq!(overview["totals"]["submitted"], 0);
}

#[tokio::test]
async fn bad_parameters_are_400_with_the_parameter_as_pointer() {
    let fixture = fixture().await;
    let job_cursor = {
        for i in 0..2 {
            fixture.submit("sleep", 1, minutes_ago(i + 1)).await;
        }
        let (_, _, page) = fixture.get("/jobs?limit=1").await;
        page["nextCursor"]
            .as_str()
            .expect("a next page")
            .to_string()
    };
    let before_4713_bc = "/jobs?cursor=c1.-210000000000000000.0b4bd3a494b44b4e9a353a1d6f6c9d11";
    let cases = [
        ("/jobs?status=DONE", "status"),
        ("/jobs?status=", "status"),
        ("/jobs?type=Not_A_Type", "type"),
        ("/jobs?createdAfter=yesterday", "createdAfter"),
        ("/jobs?createdBefore=2026-13-01T00:00:00Z", "createdBefore"),
        ("/jobs?limit=0", "limit"),
        ("/jobs?limit=501", "limit"),
        ("/jobs?limit=ten", "limit"),
        ("/jobs?limit=1&limit=2", "limit"),
        ("/jobs?cursor=", "cursor"),
        ("/jobs?cursor=zz", "cursor"),
        ("/jobs?cursor=6e6f742d612d637572736f72", "cursor"),
        ("/jobs?idPrefix=", "idPrefix"),
        ("/jobs?idPrefix=0b4g", "idPrefix"),
        (
            "/jobs?idPrefix=0b4bd3a4-94b4-4b4e-9a35-3a1d6f6c9d110",
            "idPrefix",
        ),
        ("/events?eventType=job.exploded", "eventType"),
        ("/events?jobId=not-a-uuid", "jobId"),
        ("/events?after=noon", "after"),
        ("/events?before=2026-01-01", "before"),
        ("/events?limit=-1", "limit"),
        ("/events?cursor=garbage", "cursor"),
        ("/dead-letters?limit=1000", "limit"),
        ("/dead-letters?cursor=garbage", "cursor"),
        // Well-formed but dated before 4713 BC, PostgreSQL's first day: a 400, not a 503.
        (before_4713_bc, "cursor"),
        // Parameters the operation does not declare (a misspelt filter returns nothing).
        ("/jobs?stauts=FAILED", "stauts"),
        ("/overview?verbose=1", "verbose"),
        (
            "/jobs/0b4bd3a4-94b4-4b4e-9a35-3a1d6f6c9d11?expand=1",
            "expand",
        ),
        ("/events?limit=5&colour=red", "colour"),
    ];
    for (uri, pointer) in cases {
        let answer = fixture.get(uri).await;
        assert_error(
            &answer,
            StatusCode::BAD_REQUEST,
            "validation-failed",
            Some(pointer),
        );
    }
    // A cursor is a position, not a list: any cursor of the contract's pattern is accepted by
    // every list (the page starts after that point), as the contract says.
    for list in ["/dead-letters", "/events"] {
        let (status, _, body) = fixture.get(&format!("{list}?cursor={job_cursor}")).await;
        assert_eq!(status, StatusCode::OK, "{list}: {body:#}");
    }

    // Every problem is reported, not only the first.
    let (status, _, body) = fixture.get("/jobs?status=DONE&limit=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["details"].as_array().map(Vec::len),
        Some(2),
        "{body:#}"
    );
}

#[tokio::test]
async fn job_detail_has_its_attempts_and_timeline_oldest_first() {
    let fixture = fixture().await;
    let job_id = fixture.submit("compute", 3, minutes_ago(1)).await;
    fixture.fail(job_id, Retry::After(Duration::ZERO)).await;
    fixture.complete(job_id).await;
    fixture.record_outbox().await;

    let (status, _, detail) = fixture.get(&format!("/jobs/{job_id}")).await;
    assert_eq!(status, StatusCode::OK, "{detail:#}");
    assert_valid("job_detail", &detail);
    assert_eq!(detail["job"]["id"], job_id.to_string());
    assert_eq!(detail["job"]["status"], "COMPLETED");
    let outcomes: Vec<&Value> = detail["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| &a["outcome"])
        .collect();
    assert_eq!(
        outcomes,
        [&json!("FAILED"), &json!("SUCCEEDED")],
        "{detail:#}"
    );
    let timeline: Vec<&str> = detail["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["eventType"].as_str().expect("a type"))
        .collect();
    assert_eq!(
        timeline,
        [
            "job.created",
            "job.started",
            "job.failed",
            "job.started",
            "job.completed"
        ]
    );

    let unknown = fixture.get(&format!("/jobs/{}", Uuid::new_v4())).await;
    assert_error(&unknown, StatusCode::NOT_FOUND, "not-found", None);
    let malformed = fixture.get("/jobs/not-a-uuid").await;
    assert_error(
        &malformed,
        StatusCode::BAD_REQUEST,
        "validation-failed",
        Some("jobId"),
    );
}

#[tokio::test]
async fn events_are_filtered_and_paged_newest_first() {
    let fixture = fixture().await;
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(fixture.submit("sleep", 1, minutes_ago(10 - i)).await);
    }
    fixture.complete(created[4]).await;
    fixture.fail(created[3], Retry::Never).await;
    let lifecycle = fixture.record_outbox().await;
    assert_eq!(lifecycle.len(), 4, "two starts, a completion and a failure");

    let (all, pages) = all_pages(&fixture, "/events?limit=2", "event_page", "eventId").await;
    assert_eq!(all.len(), 9);
    assert_eq!(pages, 5);
    assert_eq!(
        all.iter().collect::<BTreeSet<_>>().len(),
        9,
        "no event twice"
    );
    let (_, _, first) = fixture.get("/events?limit=500").await;
    let times: Vec<DateTime<Utc>> = first["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| {
            e["occurredAt"]
                .as_str()
                .expect("a time")
                .parse()
                .expect("a date-time")
        })
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );

    let (for_job, _) = all_pages(
        &fixture,
        &format!("/events?jobId={}&limit=1", created[4]),
        "event_page",
        "eventType",
    )
    .await;
    assert_eq!(for_job, ["job.completed", "job.started", "job.created"]);
    let (failed, _) = all_pages(
        &fixture,
        "/events?eventType=job.failed",
        "event_page",
        "eventType",
    )
    .await;
    assert_eq!(failed, ["job.failed"]);

    // job.created events occurred at their submission times: 10, 9, 8, 7, 6 minutes ago.
    let after = minutes_ago(9).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let before = minutes_ago(7).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let uri = format!("/events?eventType=job.created&after={after}&before={before}&limit=1");
    let (_, _, page) = fixture.get(&uri).await;
    assert_valid("event_page", &page);
    let (windowed, _) = all_pages(&fixture, &uri, "event_page", "eventId").await;
    assert_eq!(windowed.len(), 2, "{uri}");
}

#[tokio::test]
async fn dead_letters_are_paged_newest_first() {
    let fixture = fixture().await;
    let mut letters = Vec::new();
    for i in 0..5 {
        let id = Uuid::new_v4();
        let letter = json!({
            "id": id, "source": "processor", "queue": "observatory.jobs",
            "reason": "malformed-json", "message": "not JSON",
            "receivedAt": minutes_ago(i + 1), "rawBody": format!("{{not json {i}")
        });
        let stored = fixture
            .store
            .record_dead_letter(&serde_json::from_value(letter).expect("a dead letter"))
            .await
            .expect("record");
        assert!(stored);
        letters.push(id.to_string());
    }
    // An exhausted job is dead-lettered by the store itself.
    let exhausted = fixture.submit("fail", 1, minutes_ago(30)).await;
    fixture.fail(exhausted, Retry::After(Duration::ZERO)).await;

    let (all, pages) = all_pages(&fixture, "/dead-letters?limit=2", "dead_letter_page", "id").await;
    assert_eq!(pages, 3);
    assert_eq!(all.len(), 6);
    assert_eq!(all[1..], letters[..], "the exhausted job is the newest");
    let (_, _, page) = fixture.get("/dead-letters?limit=1").await;
    assert_eq!(page["items"][0]["jobId"], exhausted.to_string());
    assert_eq!(page["items"][0]["reason"], "attempts-exhausted");
}

#[tokio::test]
async fn overview_totals_equal_what_was_recorded() {
    let fixture = fixture().await;
    let now = Utc::now();
    let a = fixture.submit("sleep", 3, now).await;
    let b = fixture.submit("compute", 1, now).await;
    let c = fixture.submit("fail", 2, now).await;
    fixture.submit("my-type", 1, now).await;
    fixture.complete(a).await;
    fixture.fail(b, Retry::After(Duration::ZERO)).await; // exhausted: dead-lettered
    fixture.fail(c, Retry::After(Duration::ZERO)).await; // retried
    fixture.fail(c, Retry::Never).await;
    let events = fixture.record_outbox().await;
    // Recording again changes nothing (idempotent counters).
    fixture.record(&events).await;

    let (status, _, overview) = fixture.get("/overview").await;
    assert_eq!(status, StatusCode::OK);
    assert_valid("overview", &overview);
    assert_eq!(
        overview["totals"],
        json!({"submitted": 4, "started": 4, "completed": 1, "failed": 3, "retried": 1, "deadLettered": 1})
    );
    let by_type: HashMap<&str, &Value> = overview["byType"]
        .as_array()
        .expect("byType")
        .iter()
        .map(|t| (t["type"].as_str().expect("a type"), &t["counters"]))
        .collect();
    assert_eq!(by_type["fail"]["failed"], 2);
    assert_eq!(by_type["fail"]["retried"], 1);
    assert_eq!(by_type["compute"]["deadLettered"], 1);
    assert_eq!(by_type["my-type"]["submitted"], 1);

    let buckets = overview["throughput"].as_array().expect("throughput");
    assert_eq!(buckets.len(), 60);
    assert!(buckets.iter().all(|b| b["seconds"] == 1));
    let sum = |field: &str| {
        buckets
            .iter()
            .map(|b| b[field].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    assert_eq!(
        (sum("submitted"), sum("completed"), sum("failed")),
        (4, 1, 3)
    );
}

async fn delete_queues(topology: &Topology) {
    let broker = RabbitMq::new(rabbitmq_url(), topology.clone())
        .connect()
        .await
        .expect("RabbitMQ");
    broker
        .delete_queues()
        .await
        .expect("delete the test queues");
    broker.close().await;
}

#[tokio::test]
async fn queue_depths_list_the_topology_queues_and_503_without_the_broker() {
    let fixture = fixture().await;
    let unavailable = fixture.get("/queues").await;
    assert_error(
        &unavailable,
        StatusCode::SERVICE_UNAVAILABLE,
        "broker-unavailable",
        None,
    );
    assert!(unavailable.1.contains_key(header::RETRY_AFTER));
    let (status, _, ready) = fixture.get("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        ready["details"].as_array().map(Vec::len),
        Some(1),
        "{ready:#}"
    );
    assert_eq!(ready["details"][0]["pointer"], "rabbitmq");

    let topology = fixture.state.topology().clone();
    let broker = RabbitMq::new(rabbitmq_url(), topology.clone())
        .connect()
        .await
        .expect("RabbitMQ");
    fixture.state.set_broker(Some(broker.clone()));
    let publisher = broker.publisher(WAIT).await.expect("a publisher");
    publisher
        .publish(
            &topology.jobs_exchange(),
            observatory_messaging::JOB_CREATED,
            b"{}",
            &MessageMeta::default(),
        )
        .await
        .expect("a confirmed publish");

    let (status, _, depths) = fixture.get("/queues").await;
    assert_eq!(status, StatusCode::OK, "{depths:#}");
    assert_valid("queue_depths", &depths);
    let names: Vec<&str> = depths["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .map(|q| q["name"].as_str().expect("a name"))
        .collect();
    assert_eq!(names, topology.queues());
    // A job.created reaches the processor's queue and the metrics engine's; nothing is dead.
    assert_eq!(depths["queues"][0]["messages"], 1, "{depths:#}");
    assert_eq!(depths["queues"][1]["messages"], 1, "{depths:#}");
    assert_eq!(depths["queues"][2]["messages"], 0, "{depths:#}");

    let (status, _, ready) = fixture.get("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{ready:#}");
    assert_valid("health_status", &ready);
    let checks: BTreeSet<&str> = ready["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| c["name"].as_str().expect("a name"))
        .collect();
    assert_eq!(
        checks,
        BTreeSet::from(["mongodb", "postgresql", "rabbitmq", "redis"])
    );

    // A broker that went away is a 503, not a hang or a 500.
    broker.close().await;
    let gone = fixture.get("/queues").await;
    assert_error(
        &gone,
        StatusCode::SERVICE_UNAVAILABLE,
        "broker-unavailable",
        None,
    );
    delete_queues(&topology).await;
}

#[tokio::test]
async fn alerts_not_configured_and_unavailable() {
    let fixture = fixture().await;
    let (status, _, alerts) = fixture.get("/alerts").await;
    assert_eq!(status, StatusCode::OK);
    assert_valid("alert_list", &alerts);
    assert_eq!(alerts["source"], "not-configured");
    assert_eq!(alerts["alerts"], json!([]));

    // A port nobody listens on.
    let closed = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        listener.local_addr().expect("an address")
    };
    let fixture = fixture_with(ReadModelOptions {
        alertmanager_url: Some(format!("http://{closed}")),
        ..ReadModelOptions::default()
    })
    .await;
    let (status, _, alerts) = fixture.get("/alerts").await;
    assert_eq!(status, StatusCode::OK);
    assert_valid("alert_list", &alerts);
    assert_eq!(alerts["source"], "unavailable");
    assert!(alerts["detail"].as_str().is_some_and(|d| !d.is_empty()));
    assert_eq!(alerts["alerts"], json!([]));
}

#[tokio::test]
async fn alerts_come_from_alertmanager() {
    use axum::extract::RawQuery;
    let alertmanager = Router::new().route(
        "/api/v2/alerts",
        axum::routing::get(|RawQuery(query): RawQuery| async move {
            if query.as_deref() != Some("active=true") {
                return (StatusCode::BAD_REQUEST, axum::Json(json!("active=true expected")));
            }
            (StatusCode::OK, axum::Json(json!([
                {"labels": {"alertname": "DeadLettersAppearing", "severity": "warning", "service": "processor"},
                 "annotations": {"summary": "Dead letters appear", "runbook_url": "https://runbooks/dead-letters"},
                 "startsAt": "2026-01-31T12:00:00.000Z", "endsAt": "2026-01-31T12:10:00.000Z",
                 "fingerprint": "a1", "status": {"state": "active", "silencedBy": [], "inhibitedBy": []},
                 "receivers": [{"name": "read-model"}], "updatedAt": "2026-01-31T12:00:00.000Z"},
                {"labels": {"alertname": "ServiceDown", "severity": "critical"},
                 "annotations": {"description": "the gateway is down"},
                 "startsAt": "2026-01-31T11:00:00Z", "endsAt": "2026-01-31T12:10:00Z",
                 "fingerprint": "b2", "status": {"state": "suppressed", "silencedBy": ["s"], "inhibitedBy": []},
                 "receivers": [], "updatedAt": "2026-01-31T12:00:00Z"}
            ])))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("an address");
    let stop = CancellationToken::new();
    let server = tokio::spawn(
        axum::serve(listener, alertmanager)
            .with_graceful_shutdown(stop.clone().cancelled_owned())
            .into_future(),
    );

    let fixture = fixture_with(ReadModelOptions {
        alertmanager_url: Some(format!("http://{addr}/")),
        ..ReadModelOptions::default()
    })
    .await;
    let (status, _, alerts) = fixture.get("/alerts").await;
    assert_eq!(status, StatusCode::OK);
    assert_valid("alert_list", &alerts);
    assert_eq!(alerts["source"], "alertmanager", "{alerts:#}");
    let list = alerts["alerts"].as_array().expect("alerts");
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["name"], "ServiceDown", "critical first");
    assert_eq!(list[0]["state"], "suppressed");
    assert_eq!(list[0]["description"], "the gateway is down");
    assert_eq!(list[1]["name"], "DeadLettersAppearing");
    assert_eq!(list[1]["severity"], "warning");
    assert_eq!(list[1]["summary"], "Dead letters appear");
    assert_eq!(list[1]["runbookUrl"], "https://runbooks/dead-letters");
    assert_eq!(list[1]["fingerprint"], "a1");
    assert_eq!(list[1]["labels"]["service"], "processor");
    stop.cancel();
    server.await.expect("joined").expect("served");
}

/// Reads server-sent-event text from `body` until `done` accepts what was read so far.
async fn read_until(body: &mut Body, text: &mut String, done: impl Fn(&str) -> bool) {
    tokio::time::timeout(WAIT, async {
        while !done(text) {
            let frame = body
                .frame()
                .await
                .expect("the stream is still open")
                .expect("a frame");
            if let Some(data) = frame.data_ref() {
                text.push_str(&String::from_utf8_lossy(data));
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("nothing matching within {WAIT:?}; got {text:?}"));
}

#[tokio::test]
async fn the_stream_delivers_recorded_events_and_ends_on_shutdown() {
    let shutdown = CancellationToken::new();
    let fixture = fixture_with(ReadModelOptions {
        shutdown: shutdown.clone(),
        ..ReadModelOptions::default()
    })
    .await;
    let response = fixture
        .app()
        .oneshot(
            Request::get("/stream")
                .body(Body::empty())
                .expect("a request"),
        )
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    let mut body = response.into_body();

    // Subscribed when the response started: this event must arrive.
    let job_id = fixture.submit("sleep", 1, Utc::now()).await;
    let mut text = String::new();
    read_until(&mut body, &mut text, |t| t.contains("\n\n")).await;
    let event_line = text
        .lines()
        .find(|l| l.starts_with("event:"))
        .expect("an event line");
    assert_eq!(event_line, "event: job.created");
    let data = text
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .expect("a data line");
    let envelope: Value = serde_json::from_str(data).expect("one line of JSON");
    assert_valid("event_envelope", &envelope);
    assert_eq!(envelope["payload"]["jobId"], job_id.to_string());

    shutdown.cancel();
    let end = tokio::time::timeout(WAIT, async {
        while let Some(frame) = body.frame().await {
            frame.expect("a frame");
        }
    })
    .await;
    assert!(end.is_ok(), "the stream ends on shutdown");
}

/// Resident memory of this test process, in bytes.
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_client_that_never_reads_costs_bounded_memory_and_one_subscription() {
    use std::io::Write as _;
    let fixture = fixture().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("an address");
    let server = tokio::spawn(axum::serve(listener, fixture.app()).into_future());
    // Three clients: two that never read a byte, one that reads.
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let mut socket = std::net::TcpStream::connect(addr).expect("connect");
        write!(socket, "GET /stream HTTP/1.1\r\nHost: {addr}\r\n\r\n").expect("request");
        stalled.push(socket);
    }
    let reader = reqwest::get(format!("http://{addr}/stream"))
        .await
        .expect("the reading client's stream");
    assert_eq!(reader.status(), StatusCode::OK);
    // It reads all along, keeping the last few KiB of what it read.
    let read = Arc::new(std::sync::Mutex::new(String::new()));
    let reading = tokio::spawn({
        let read = read.clone();
        let mut body = reader.bytes_stream();
        async move {
            while let Some(Ok(chunk)) = futures_util::StreamExt::next(&mut body).await {
                let mut read = read.lock().unwrap_or_else(|p| p.into_inner());
                read.push_str(&String::from_utf8_lossy(&chunk));
                if read.len() > 64 << 10 {
                    let cut = read.len() - (16 << 10);
                    let cut = (cut..read.len())
                        .find(|i| read.is_char_boundary(*i))
                        .unwrap_or(0);
                    read.drain(..cut);
                }
            }
        }
    });
    // Every stream shares one subscription to the feed.
    let channel = format!("{}:events", fixture.redis_prefix);
    let mut redis = redis::Client::open(redis_url())
        .expect("a Redis client")
        .get_multiplexed_async_connection()
        .await
        .expect("Redis");
    let subscribed = tokio::time::timeout(WAIT, async {
        loop {
            let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg(&channel)
                .query_async(&mut redis)
                .await
                .expect("PUBSUB NUMSUB");
            if counts.first().is_some_and(|(_, n)| *n >= 1) {
                return counts[0].1;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("subscribed");
    assert_eq!(subscribed, 1, "one subscription for three streams");

    // 100,000 events of about 600 bytes pass while two clients read nothing (built a chunk at
    // a time, so that the test's own memory stays small).
    let job_id = Uuid::new_v4();
    let chunk = |from: usize| -> Vec<EventEnvelope> {
        (from..from + 5_000)
        .map(|i| {
            serde_json::from_value(json!({
                "contractVersion": "1.0.0", "eventType": "job.started", "eventId": Uuid::new_v4(),
                "occurredAt": Utc::now(), "producer": producer("processor"),
                "correlationId": "req-1", "idempotencyKey": format!("{job_id}:started:{i}"),
                "payload": {"jobId": job_id, "type": "sleep", "attempt": 1, "maxAttempts": 3,
                            "startedAt": Utc::now(), "worker": "processor-test-1-with-a-longer-name"}
            }))
            .expect("an envelope")
        })
        .collect()
    };
    fixture
        .counters
        .record_batch(&chunk(0))
        .await
        .expect("record");
    let before = resident_bytes();
    for from in (5_000..100_000).step_by(5_000) {
        fixture
            .counters
            .record_batch(&chunk(from))
            .await
            .expect("record");
    }
    let grown = resident_bytes().saturating_sub(before);
    assert!(
        grown < 40 << 20,
        "the read model grew by {} MiB while clients did not read",
        grown >> 20
    );
    // The reading client was not held back by the others: it still gets live events.
    let later = fixture.submit("sleep", 1, Utc::now()).await.to_string();
    tokio::time::timeout(WAIT, async {
        while !read
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&later)
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the reading client received the latest event");
    reading.abort();
    server.abort();
}

#[tokio::test]
async fn cors_headers_only_for_configured_origins() {
    let request = |origin: &str| {
        Request::get("/healthz")
            .header(header::ORIGIN, origin)
            .body(Body::empty())
            .expect("a request")
    };
    let allowed = fixture_with(ReadModelOptions {
        cors_origins: vec!["http://localhost:5173".into()],
        ..ReadModelOptions::default()
    })
    .await;
    let response = allowed
        .app()
        .oneshot(request("http://localhost:5173"))
        .await
        .expect("infallible");
    assert_eq!(
        response.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN),
        Some(&"http://localhost:5173".parse().expect("a header value"))
    );
    let response = allowed
        .app()
        .oneshot(request("http://evil.example"))
        .await
        .expect("infallible");
    assert!(
        !response
            .headers()
            .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
    );

    let plain = fixture().await;
    let response = plain
        .app()
        .oneshot(request("http://localhost:5173"))
        .await
        .expect("infallible");
    assert!(
        !response
            .headers()
            .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
    );

    let invalid = ReadModelState::new(
        ReadModelOptions {
            cors_origins: vec!["localhost".into()],
            ..ReadModelOptions::default()
        },
        Topology::new("x"),
    );
    assert!(invalid.is_err());
}

#[derive(clap::Parser)]
struct Cli {
    #[command(flatten)]
    config: ReadModelConfig,
}

/// A GET of `uri` with `headers`: status, headers and the raw body.
async fn get_raw(
    app: &Router,
    uri: &str,
    headers: &[(header::HeaderName, &str)],
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut request = Request::get(uri);
    for (name, value) in headers {
        request = request.header(name, *value);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).expect("a request"))
        .await
        .expect("infallible");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("a body").to_bytes();
    (parts.status, parts.headers, bytes.to_vec())
}

#[tokio::test]
async fn the_dashboard_is_served_with_a_policy_that_allows_only_itself_and_the_gateway() {
    let fixture = fixture_with(ReadModelOptions {
        gateway_url: Some("http://127.0.0.1:3000/".into()),
        ..ReadModelOptions::default()
    })
    .await;
    let app = fixture.app();
    let (status, headers, body) = get_raw(&app, "/", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    let policy = headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .expect("ASCII");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self' http://127.0.0.1:3000;",
        "frame-ancestors 'none'",
    ] {
        assert!(policy.contains(directive), "{directive} in {policy}");
    }
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    let page = String::from_utf8(body).expect("UTF-8");
    assert!(
        page.contains(r#"<meta name="observatory-gateway" content="http://127.0.0.1:3000">"#),
        "{page}"
    );

    // Every file the page and the modules name is served, with its type and the same policy.
    let (status, headers, body) = get_raw(&app, "/ui/api.js", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(
        body,
        include_bytes!("../../../generated/web/api.js"),
        "the generated API module, as codegen wrote it"
    );
    assert_eq!(headers[header::CONTENT_SECURITY_POLICY], policy);
    for asset in observatory_web::ASSETS {
        let (status, headers, body) = get_raw(&app, &format!("/ui/{}", asset.name), &[]).await;
        assert_eq!(status, StatusCode::OK, "{}", asset.name);
        assert_eq!(headers[header::CONTENT_TYPE], asset.content_type);
        assert_eq!(body, asset.body);
        // A browser that has this version gets 304 and no body.
        let etag = headers[header::ETAG].to_str().expect("ASCII").to_owned();
        let (status, _, body) = get_raw(
            &app,
            &format!("/ui/{}", asset.name),
            &[(header::IF_NONE_MATCH, &etag)],
        )
        .await;
        assert_eq!(status, StatusCode::NOT_MODIFIED, "{}", asset.name);
        assert!(body.is_empty());
    }
    let missing = fixture.get("/ui/missing.js").await;
    assert_error(&missing, StatusCode::NOT_FOUND, "not-found", None);
    let traversal = fixture.get("/ui/..%2Fsrc%2Flib.rs").await;
    assert_error(&traversal, StatusCode::NOT_FOUND, "not-found", None);

    // Without a gateway the page says so (the dashboard is read-only) and connects nowhere else.
    let read_only = fixture_with(ReadModelOptions::default()).await;
    let (_, headers, body) = get_raw(&read_only.app(), "/", &[]).await;
    let policy = headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .expect("ASCII");
    assert!(policy.contains("connect-src 'self';"), "{policy}");
    let page = String::from_utf8(body).expect("UTF-8");
    assert!(page.contains(r#"<meta name="observatory-gateway" content="">"#));

    // A gateway URL that is not http(s) is a configuration error.
    let invalid = ReadModelState::new(
        ReadModelOptions {
            gateway_url: Some("ftp://gateway".into()),
            ..ReadModelOptions::default()
        },
        Topology::new(unique_name()),
    );
    let message = invalid.err().expect("refused").to_string();
    assert!(message.contains("--gateway-url"), "{message}");
}

#[test]
fn configuration_flags_and_defaults() {
    use clap::Parser;
    let cli = Cli::try_parse_from(["read-model"]).expect("defaults");
    assert_eq!(cli.config.addr.to_string(), "127.0.0.1:8080");
    assert_eq!(cli.config.broker_prefix, "observatory");
    assert!(cli.config.alertmanager_url.is_none());
    if std::env::var_os("OBSERVATORY_GATEWAY_URL").is_none() {
        assert_eq!(cli.config.gateway_url, "http://127.0.0.1:3000");
    }
    let cli = Cli::try_parse_from([
        "read-model",
        "--read-model-addr",
        "0.0.0.0:9000",
        "--cors-origin",
        "http://a:1,http://b:2",
        "--cors-origin",
        "http://c:3",
        "--alertmanager-url",
        "http://am:9093",
        "--rabbitmq-url",
        "amqp://guest:secret@h:5672/%2f",
    ])
    .expect("flags");
    assert_eq!(
        cli.config.cors_origins,
        ["http://a:1", "http://b:2", "http://c:3"]
    );
    assert_eq!(
        cli.config.alertmanager_url.as_deref(),
        Some("http://am:9093")
    );
    assert!(
        !format!("{:?}", cli.config).contains("secret"),
        "passwords are redacted"
    );
}

#[tokio::test]
async fn serve_connects_in_the_background_and_shuts_down_gracefully() {
    use clap::Parser;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("an address");
    let postgres = fresh_postgres_database().await;
    let (redis_prefix, database, broker_prefix) = (unique_name(), unique_name(), unique_name());
    let mongodb = mongodb_url();
    let (redis, rabbitmq) = (redis_url(), rabbitmq_url());
    let config = Cli::try_parse_from([
        "read-model",
        "--postgres-url",
        postgres.as_str(),
        "--redis-url",
        redis.as_str(),
        "--redis-prefix",
        redis_prefix.as_str(),
        "--mongodb-url",
        mongodb.as_str(),
        "--mongodb-database",
        database.as_str(),
        "--rabbitmq-url",
        rabbitmq.as_str(),
        "--broker-prefix",
        broker_prefix.as_str(),
    ])
    .expect("flags")
    .config;
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(observatory_read_model::serve(
        listener,
        config,
        shutdown.clone(),
    ));

    let client = reqwest::Client::new();
    let base = format!("http://{addr}");
    let health = client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("served at once");
    assert_eq!(health.status(), StatusCode::OK);
    // Ready once every dependency is connected (polled, bounded).
    let ready = tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(response) = client.get(format!("{base}/readyz")).send().await
                && response.status() == StatusCode::OK
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(ready.is_ok(), "not ready within {WAIT:?}");
    let jobs: Value = client
        .get(format!("{base}/jobs"))
        .send()
        .await
        .expect("an answer")
        .json()
        .await
        .expect("JSON");
    assert_eq!(jobs, json!({"items": []}));

    shutdown.cancel();
    let stopped = tokio::time::timeout(WAIT, server).await;
    assert!(
        matches!(stopped, Ok(Ok(Ok(())))),
        "serve returns Ok on shutdown: {stopped:?}"
    );
    delete_queues(&Topology::new(broker_prefix)).await;
}
