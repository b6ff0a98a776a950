//! The processor end to end against the real PostgreSQL and RabbitMQ on this machine: each
//! test runs `run_on` with its own database and broker prefix, publishes job.created messages
//! as the gateway does, and waits (bounded) for the outcome in the store and in the events.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use chrono::Utc;
use std::sync::Arc;

use observatory_job_store::contracts::dead_letter::DeadLetterReason;
use observatory_job_store::contracts::event_envelope::EventProducer;
use observatory_job_store::contracts::job::{Job, JobStatus};
use observatory_job_store::contracts::job_created::JobCreated;
use observatory_job_store::{JobStore, PostgresJobStore};
use observatory_messaging::{
    BrokerConnector, JOB_CREATED, MessageBroker, MessageMeta, Publisher, REASON_HEADER, RabbitMq,
    Subscription, Topology, next_delivery,
};
use observatory_processor::{ProcessorConfig, ProcessorError, executor, run_on};
use observatory_runtime::shutdown::CancellationToken;
use observatory_test_support::{fresh_postgres_database, rabbitmq_url, unique_name};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(30);

struct Harness {
    database: String,
    prefix: String,
    topology: Topology,
    store: Arc<dyn JobStore>,
    broker: Arc<dyn MessageBroker>,
    publisher: Publisher,
    events: Subscription,
    /// Every event seen so far, in arrival order.
    seen: Vec<Value>,
    addr: SocketAddr,
    shutdown: CancellationToken,
    processor: Option<JoinHandle<Result<(), ProcessorError>>>,
}

struct Options {
    concurrency: u32,
    prefetch: u16,
    shutdown_grace_secs: u64,
    attempt_timeout_secs: u64,
    attempt_lease_secs: u64,
    type_concurrency: Option<u32>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            concurrency: 8,
            prefetch: 16,
            shutdown_grace_secs: 10,
            attempt_timeout_secs: 60,
            attempt_lease_secs: 2,
            type_concurrency: None,
        }
    }
}

fn config(options: &Options, database: &str, prefix: &str, name: &str) -> ProcessorConfig {
    ProcessorConfig {
        rabbitmq_url: rabbitmq_url(),
        postgres_url: database.to_owned(),
        broker_prefix: prefix.to_owned(),
        processor_addr: "127.0.0.1:0".parse().expect("an address"),
        prefetch: options.prefetch,
        concurrency: options.concurrency,
        type_concurrency: options.type_concurrency,
        db_connections: 4,
        retry_backoff_base_ms: 50,
        retry_backoff_max_ms: 200,
        attempt_timeout_secs: options.attempt_timeout_secs,
        attempt_lease_secs: options.attempt_lease_secs,
        shutdown_grace_secs: options.shutdown_grace_secs,
        instance_id: Some(name.to_owned()),
    }
}

/// A processor on a runtime of its own, so that it can die as a crashed process does: every
/// task gone at once (no lease renewed, no message settled, connections dropped).
struct Crashable {
    runtime: Option<tokio::runtime::Runtime>,
}

impl Crashable {
    fn start(config: ProcessorConfig) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.set_nonblocking(true).expect("non-blocking");
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
            run_on(listener, config, CancellationToken::new()).await
        });
        Self {
            runtime: Some(runtime),
        }
    }

    fn crash(mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn start(options: Options) -> Harness {
    let database = fresh_postgres_database().await;
    let prefix = unique_name();
    let topology = Topology::new(prefix.clone());
    // Declares the topology, so that publishes are routable before the processor connects.
    let broker = RabbitMq::new(rabbitmq_url(), topology.clone())
        .connect()
        .await
        .expect("RabbitMQ on 127.0.0.1:5672");
    let publisher = broker
        .publisher(Duration::from_secs(10))
        .await
        .expect("a publisher");
    // The metrics-engine queue is bound to the events exchange with `job.*`: what the relay
    // publishes lands there (next to the job.created messages, which the observer skips).
    let events = broker
        .consume(&topology.metrics_queue(), "test-events", 500)
        .await
        .expect("consume events");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let addr = listener.local_addr().expect("bound address");
    let shutdown = CancellationToken::new();
    let processor = tokio::spawn(run_on(
        listener,
        config(&options, &database, &prefix, "processor-test"),
        shutdown.clone(),
    ));
    let producer: EventProducer = serde_json::from_value(
        json!({"service": "test", "instanceId": "test-1", "version": "0.0.0"}),
    )
    .expect("a producer");
    let store: Arc<dyn JobStore> = Arc::new(
        PostgresJobStore::connect(&database, 2, producer)
            .await
            .expect("the test's job store"),
    );
    Harness {
        database,
        prefix,
        topology,
        store,
        broker,
        publisher,
        events,
        seen: Vec::new(),
        addr,
        shutdown,
        processor: Some(processor),
    }
}

/// A job.created message as the gateway builds it.
fn job_created(job_id: Uuid, job_type: &str, payload: Value, max_attempts: u64) -> Value {
    let now = Utc::now();
    json!({
        "contractVersion": "1.0.0",
        "eventType": "job.created",
        "eventId": Uuid::new_v4(),
        "occurredAt": now,
        "producer": {"service": "gateway", "instanceId": "gateway-test", "version": "0.1.0"},
        "correlationId": format!("req-{}", job_id.simple()),
        "idempotencyKey": format!("{job_id}:created"),
        "payload": {
            "jobId": job_id,
            "type": job_type,
            "payload": payload,
            "maxAttempts": max_attempts,
            "submittedAt": now,
        }
    })
}

impl Harness {
    /// Another processor on the same database and queues, stopped by the returned token.
    async fn another(
        &self,
        options: &Options,
        name: &str,
    ) -> (CancellationToken, JoinHandle<Result<(), ProcessorError>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run_on(
            listener,
            config(options, &self.database, &self.prefix, name),
            shutdown.clone(),
        ));
        (shutdown, task)
    }

    /// The attempts of a job as (attempt, outcome, error code, worker).
    async fn attempts(&self, job_id: Uuid) -> Vec<(u64, String, Option<String>, Option<String>)> {
        let (_, attempts) = self
            .store
            .job_detail(job_id)
            .await
            .expect("job_detail")
            .expect("a job");
        attempts
            .into_iter()
            .map(|a| {
                (
                    a.attempt.get(),
                    a.outcome.to_string(),
                    a.error.map(|e| e.code),
                    a.worker,
                )
            })
            .collect()
    }

    async fn publish_raw(&self, body: &[u8], message_id: Option<String>) {
        let meta = MessageMeta {
            message_id,
            correlation_id: None,
            headers: vec![],
        };
        self.publisher
            .publish(&self.topology.jobs_exchange(), JOB_CREATED, body, &meta)
            .await
            .expect("a confirmed publish");
    }

    async fn publish(&self, message: &Value) {
        let body = serde_json::to_vec(message).expect("JSON");
        let id = message["eventId"].as_str().map(str::to_owned);
        self.publish_raw(&body, id).await;
    }

    /// Submits a job and returns its id.
    async fn submit(&self, job_type: &str, payload: Value, max_attempts: u64) -> Uuid {
        let job_id = Uuid::new_v4();
        self.publish(&job_created(job_id, job_type, payload, max_attempts))
            .await;
        job_id
    }

    /// A job stored as RETRYING and due at once, as a job whose first attempt was interrupted
    /// (written straight into the store: no message, so only the scheduler can start it).
    async fn retrying(&self, job_type: &str, payload: Value) -> Uuid {
        let job_id = Uuid::new_v4();
        let created: JobCreated =
            serde_json::from_value(job_created(job_id, job_type, payload, 3)).expect("job.created");
        self.store.accept(&created).await.expect("accept");
        let started = self
            .store
            .start_attempt(job_id, "seed", Duration::from_secs(60))
            .await
            .expect("start")
            .expect("started");
        assert_eq!(started.job.status, JobStatus::Running);
        self.store
            .interrupt_attempt(job_id, 1, "seeded as a retry")
            .await
            .expect("interrupt")
            .expect("interrupted");
        job_id
    }

    /// How many of `jobs` have a status that `which` picks, by the store now.
    async fn count(&self, jobs: &[Uuid], which: impl Fn(JobStatus) -> bool) -> usize {
        let mut n = 0;
        for id in jobs {
            let (job, _) = self
                .store
                .job_detail(*id)
                .await
                .expect("read")
                .expect("stored");
            n += usize::from(which(job.status));
        }
        n
    }

    /// Polls the store until the job reaches `status`.
    async fn wait_for_status(&self, job_id: Uuid, status: JobStatus) -> Job {
        let store = self.store.clone();
        tokio::time::timeout(WAIT, async move {
            loop {
                if let Some((job, _)) = store.job_detail(job_id).await.expect("job_detail")
                    && job.status == status
                {
                    return job;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("job {job_id} did not become {status} within {WAIT:?}"))
    }

    /// Reads events until `done` holds for the events seen so far.
    async fn wait_for_events(&mut self, what: &str, done: impl Fn(&[Value]) -> bool) {
        let never = CancellationToken::new();
        let deadline = tokio::time::Instant::now() + WAIT;
        while !done(&self.seen) {
            let next = tokio::time::timeout_at(deadline, next_delivery(&mut self.events, &never))
                .await
                .unwrap_or_else(|_| {
                    panic!("{what}: not seen within {WAIT:?}; seen {:#?}", self.seen)
                });
            let delivery = next.expect("the events consumer ended").expect("an event");
            delivery.ack().await.expect("ack an event");
            // The queue also receives the job.created messages the tests publish (the metrics
            // engine logs submissions); the outbox never publishes job.created.
            if delivery.routing_key.as_str() == observatory_messaging::JOB_CREATED {
                continue;
            }
            self.seen
                .push(serde_json::from_slice(&delivery.data).expect("events are JSON"));
        }
    }

    /// `(eventType, attempt, willRetry)` of the events of one job, in arrival order.
    fn events_of(&self, job_id: Uuid) -> Vec<(String, Option<u64>, Option<bool>)> {
        events_of(&self.seen, job_id)
    }

    async fn stop(&mut self) -> Duration {
        let started = std::time::Instant::now();
        self.shutdown.cancel();
        let processor = self.processor.take().expect("running");
        tokio::time::timeout(Duration::from_secs(30), processor)
            .await
            .expect("run returns within 30 s of shutdown")
            .expect("the processor task did not panic")
            .expect("run returns Ok");
        started.elapsed()
    }

    async fn cleanup(mut self) {
        if self.processor.is_some() {
            self.stop().await;
        }
        self.broker
            .delete_queues()
            .await
            .expect("delete the test's queues");
        self.broker.close().await;
        self.store.close().await;
    }
}

fn events_of(seen: &[Value], job_id: Uuid) -> Vec<(String, Option<u64>, Option<bool>)> {
    let id = job_id.to_string();
    seen.iter()
        .filter(|e| e["payload"]["jobId"].as_str() == Some(id.as_str()))
        .map(|e| {
            (
                e["eventType"].as_str().unwrap_or_default().to_owned(),
                e["payload"]["attempt"].as_u64(),
                e["payload"]["willRetry"].as_bool(),
            )
        })
        .collect()
}

fn has_event(seen: &[Value], job_id: Uuid, event_type: &str) -> bool {
    events_of(seen, job_id)
        .iter()
        .any(|(t, _, _)| t == event_type)
}

fn types(events: &[(String, Option<u64>, Option<bool>)]) -> Vec<&str> {
    events.iter().map(|(t, _, _)| t.as_str()).collect()
}

/// A plain HTTP/1.1 GET: (status, body).
async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).expect("connect to the processor");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .expect("send request");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read response");
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    })
    .await
    .expect("the request task")
}

#[tokio::test]
async fn sleep_and_compute_jobs_complete_with_their_events_in_order() {
    let mut h = start(Options::default()).await;
    let sleep = h.submit("sleep", json!({"durationMs": 20}), 3).await;
    let compute = h
        .submit("compute", json!({"iterations": 5000, "seed": 7}), 3)
        .await;

    let slept = h.wait_for_status(sleep, JobStatus::Completed).await;
    assert_eq!(slept.attempts, 1);
    assert_eq!(slept.result.get("sleptMs"), Some(&json!(20)));
    let computed = h.wait_for_status(compute, JobStatus::Completed).await;
    assert_eq!(
        computed.result.get("digest"),
        Some(&json!(format!("{:016x}", executor::hash_chain(7, 5000))))
    );

    h.wait_for_events("both job.completed", |seen| {
        has_event(seen, sleep, "job.completed") && has_event(seen, compute, "job.completed")
    })
    .await;
    for job in [sleep, compute] {
        let events = h.events_of(job);
        assert_eq!(
            types(&events),
            ["job.started", "job.completed"],
            "{events:?}"
        );
        assert!(events.iter().all(|(_, attempt, _)| *attempt == Some(1)));
    }
    let correlation = format!("req-{}", sleep.simple());
    assert!(
        h.seen
            .iter()
            .filter(|e| e["payload"]["jobId"] == json!(sleep))
            .all(|e| e["correlationId"] == json!(correlation)),
        "events carry the job's correlation id"
    );

    let (status, metrics) = http_get(h.addr, "/metrics").await;
    assert_eq!(status, 200);
    for line in [
        "observatory_jobs_completed_total{type=\"sleep\",service=\"processor\"} 1",
        "observatory_jobs_completed_total{type=\"compute\",service=\"processor\"} 1",
        "observatory_job_duration_seconds_count{outcome=\"succeeded\",type=\"sleep\",service=\"processor\"} 1",
        "observatory_jobs_in_flight{service=\"processor\"} 0",
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
    h.cleanup().await;
}

#[tokio::test]
async fn the_operational_endpoints_answer_and_readiness_checks_the_dependencies() {
    let h = start(Options::default()).await;
    let (status, body) = tokio::time::timeout(WAIT, async {
        loop {
            let (status, body) = http_get(h.addr, "/readyz").await;
            if status == 200 {
                return (status, body);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("ready within the wait");
    assert_eq!(status, 200);
    let ready: Value = serde_json::from_str(&body).expect("readiness JSON");
    let checks: Vec<(&str, &str)> = ready["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default(),
                c["status"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert!(checks.contains(&("postgresql", "ok")), "{checks:?}");
    assert!(checks.contains(&("rabbitmq", "ok")), "{checks:?}");

    let (status, health) = http_get(h.addr, "/healthz").await;
    assert_eq!(status, 200);
    assert!(health.contains("\"service\":\"processor\""), "{health}");
    let (status, missing) = http_get(h.addr, "/no-such-route").await;
    assert_eq!(status, 404);
    assert!(missing.contains("not-found"), "{missing}");
    let (status, metrics) = http_get(h.addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("observatory_outbox_backlog{service=\"processor\"}"),
        "{metrics}"
    );
    h.cleanup().await;
}

#[tokio::test]
async fn a_failed_attempt_is_retried_and_the_job_completes() {
    let mut h = start(Options::default()).await;
    let job = h
        .submit(
            "fail",
            json!({"failFirstAttempts": 1, "message": "flaky"}),
            3,
        )
        .await;
    let done = h.wait_for_status(job, JobStatus::Completed).await;
    assert_eq!(done.attempts, 2);
    assert_eq!(done.result.get("succeededOnAttempt"), Some(&json!(2)));

    h.wait_for_events("job.completed", |seen| {
        has_event(seen, job, "job.completed")
    })
    .await;
    assert_eq!(
        h.events_of(job),
        [
            ("job.started".to_owned(), Some(1), None),
            ("job.failed".to_owned(), Some(1), Some(true)),
            ("job.started".to_owned(), Some(2), None),
            ("job.completed".to_owned(), Some(2), None),
        ]
    );
    let (_, attempts) = h
        .store
        .job_detail(job)
        .await
        .expect("job_detail")
        .expect("the job");
    let first_error = attempts[0]
        .error
        .as_ref()
        .expect("the first attempt's error");
    assert_eq!(first_error.code, "intentional-failure");
    assert!(first_error.message.contains("flaky"), "{first_error:?}");
    h.cleanup().await;
}

#[tokio::test]
async fn a_job_failing_every_attempt_is_dead_lettered() {
    let mut h = start(Options::default()).await;
    let job = h.submit("fail", json!({}), 2).await;
    let dead = h.wait_for_status(job, JobStatus::DeadLettered).await;
    assert_eq!(dead.attempts, 2);
    assert_eq!(
        dead.last_error.as_ref().map(|e| e.code.as_str()),
        Some("intentional-failure")
    );

    let letters = h
        .store
        .list_dead_letters(100, None)
        .await
        .expect("dead letters");
    let letter = letters
        .items
        .iter()
        .find(|l| l.job_id == Some(job))
        .expect("a dead letter for the job");
    assert_eq!(letter.reason, DeadLetterReason::AttemptsExhausted);
    assert_eq!(letter.attempts, Some(2));

    h.wait_for_events("job.dead-lettered", |seen| {
        has_event(seen, job, "job.dead-lettered")
    })
    .await;
    assert_eq!(
        h.events_of(job),
        [
            ("job.started".to_owned(), Some(1), None),
            ("job.failed".to_owned(), Some(1), Some(true)),
            ("job.started".to_owned(), Some(2), None),
            ("job.failed".to_owned(), Some(2), Some(false)),
            ("job.dead-lettered".to_owned(), None, None),
        ]
    );
    h.cleanup().await;
}

#[tokio::test]
async fn an_unknown_type_or_invalid_payload_fails_without_retry() {
    let mut h = start(Options::default()).await;
    let unknown = h.submit("transcode", json!({"input": "a.mov"}), 5).await;
    let invalid = h.submit("sleep", json!({"durationMs": -5}), 5).await;

    for (job, code) in [(unknown, "unknown-job-type"), (invalid, "invalid-payload")] {
        let failed = h.wait_for_status(job, JobStatus::Failed).await;
        assert_eq!(failed.attempts, 1, "no retry");
        assert_eq!(failed.next_attempt_at, None);
        let error = failed.last_error.expect("the error");
        assert_eq!(error.code, code);
    }
    h.wait_for_events("both job.failed", |seen| {
        has_event(seen, unknown, "job.failed") && has_event(seen, invalid, "job.failed")
    })
    .await;
    for job in [unknown, invalid] {
        assert_eq!(
            h.events_of(job),
            [
                ("job.started".to_owned(), Some(1), None),
                ("job.failed".to_owned(), Some(1), Some(false)),
            ]
        );
    }
    h.cleanup().await;
}

#[tokio::test]
async fn poison_messages_are_dead_lettered_with_their_reason_and_raw_body() {
    let h = start(Options::default()).await;
    let malformed = b"this is {not json".to_vec();
    h.publish_raw(&malformed, None).await;
    let attributed_job = Uuid::new_v4();
    let mut invalid = job_created(attributed_job, "sleep", json!({"durationMs": 1}), 1);
    invalid["payload"]["maxAttempts"] = json!(0);
    let invalid_event_id = invalid["eventId"].as_str().expect("eventId").to_owned();
    let invalid_body = serde_json::to_vec(&invalid).expect("JSON");
    h.publish_raw(&invalid_body, Some(invalid_event_id.clone()))
        .await;

    // In the dead_letters table, with the reason, the detail and the raw body.
    let store = h.store.clone();
    let letters = tokio::time::timeout(WAIT, async move {
        loop {
            let page = store
                .list_dead_letters(100, None)
                .await
                .expect("dead letters");
            if page.items.len() >= 2 {
                return page.items;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("two dead letters within the wait");
    assert_eq!(letters.len(), 2, "{letters:?}");
    let not_json = letters
        .iter()
        .find(|l| l.reason == DeadLetterReason::MalformedJson)
        .expect("a malformed-json dead letter");
    assert_eq!(not_json.raw_body.as_bytes(), malformed.as_slice());
    assert_eq!(not_json.source, "processor");
    assert_eq!(
        not_json.queue.as_deref(),
        Some(h.topology.jobs_queue().as_str())
    );
    let violation = letters
        .iter()
        .find(|l| l.reason == DeadLetterReason::SchemaViolation)
        .expect("a schema-violation dead letter");
    assert_eq!(violation.raw_body.as_bytes(), invalid_body.as_slice());
    assert_eq!(violation.job_id, Some(attributed_job));
    assert_eq!(
        violation.event_id.map(|id| id.to_string()),
        Some(invalid_event_id)
    );
    let detail = violation.message.as_deref().unwrap_or_default();
    assert!(detail.contains("/payload/maxAttempts"), "{detail}");
    assert!(
        h.store
            .job_detail(attributed_job)
            .await
            .expect("job_detail")
            .is_none(),
        "an invalid message creates no job"
    );

    // And in the dead-letter queue, with the reason header and the body as received.
    let never = CancellationToken::new();
    let mut dlq = h
        .broker
        .consume(&h.topology.dead_letter_queue(), "test-dlq", 10)
        .await
        .expect("consume the dead-letter queue");
    let mut received = Vec::new();
    for _ in 0..2 {
        let delivery = tokio::time::timeout(WAIT, next_delivery(&mut dlq, &never))
            .await
            .expect("a dead letter in the queue")
            .expect("consumer open")
            .expect("a delivery");
        delivery.ack().await.expect("ack");
        received.push((
            delivery.meta.header(REASON_HEADER).map(str::to_owned),
            delivery.data.clone(),
        ));
    }
    assert!(
        received.contains(&(Some("malformed-json".into()), malformed.clone())),
        "{received:?}"
    );
    assert!(
        received.contains(&(Some("schema-violation".into()), invalid_body.clone())),
        "{received:?}"
    );

    // Nothing was left behind to loop: the jobs queue is empty and the processor still works.
    let job = h.submit("sleep", json!({"durationMs": 0}), 1).await;
    h.wait_for_status(job, JobStatus::Completed).await;
    assert_eq!(
        h.broker
            .queue_depth(&h.topology.jobs_queue())
            .await
            .expect("depth")
            .0,
        0
    );
    let (_, metrics) = http_get(h.addr, "/metrics").await;
    assert!(
        metrics.contains(
            "observatory_dead_letters_total{reason=\"malformed-json\",service=\"processor\"} 1"
        ),
        "{metrics}"
    );
    h.cleanup().await;
}

#[tokio::test]
async fn one_type_at_its_limit_leaves_slots_and_the_queue_to_the_others() {
    // Four slots, two per type, and a prefetch window of four: ten long sleeps first, then a
    // compute job behind them in the queue.
    let mut h = start(Options {
        concurrency: 4,
        type_concurrency: Some(2),
        prefetch: 4,
        ..Options::default()
    })
    .await;
    let mut sleeps = Vec::new();
    for _ in 0..10 {
        sleeps.push(h.submit("sleep", json!({"durationMs": 1500}), 1).await);
    }
    let compute = h.submit("compute", json!({"iterations": 1000}), 1).await;
    h.wait_for_status(compute, JobStatus::Completed).await;
    // The compute job did not wait for the sleeps: at most two of them have started, the rest
    // are stored and parked (their messages acknowledged, so they held no prefetch slot).
    let started = h.count(&sleeps, |s| s != JobStatus::Pending).await;
    assert!(
        started <= 2,
        "{started} sleeps had started when the compute job completed"
    );
    let (_, metrics) = http_get(h.addr, "/metrics").await;
    assert!(
        !metrics.contains("observatory_jobs_parked_total{service=\"processor\"} 0"),
        "{metrics}"
    );
    // Every parked sleep runs in its turn, once.
    for id in &sleeps {
        h.wait_for_status(*id, JobStatus::Completed).await;
        assert_eq!(h.attempts(*id).await.len(), 1);
    }
    h.wait_for_events("every sleep completed", |seen| {
        seen.iter()
            .filter(|e| e["eventType"] == "job.completed")
            .count()
            == 11
    })
    .await;
    h.cleanup().await;
}

#[tokio::test]
async fn due_retries_behind_many_of_a_type_at_its_limit_still_start() {
    // One sleep at a time: more due sleep retries than the scheduler reads in one page, then
    // a compute retry due after all of them. The scheduler parks the sleeps and reads on past
    // them (parked jobs are not found again and again), so the compute job starts at once
    // rather than after dozens of sleeps.
    let h = start(Options {
        concurrency: 4,
        type_concurrency: Some(1),
        ..Options::default()
    })
    .await;
    let mut sleeps = Vec::new();
    for _ in 0..130 {
        sleeps.push(h.retrying("sleep", json!({"durationMs": 3000})).await);
    }
    let compute = h.retrying("compute", json!({"iterations": 10})).await;
    h.wait_for_status(compute, JobStatus::Completed).await;
    let finished = h.count(&sleeps, |s| s == JobStatus::Completed).await;
    assert!(
        finished <= 5,
        "{finished} sleeps had finished before the compute retry did"
    );
    let (_, metrics) = http_get(h.addr, "/metrics").await;
    let parked: f64 = metrics
        .lines()
        .find(|l| l.starts_with("observatory_jobs_parked_total"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .expect("jobs_parked_total");
    assert!(parked >= 100.0, "{parked} parked:\n{metrics}");
    h.cleanup().await;
}

#[tokio::test]
async fn a_duplicate_job_created_runs_the_job_once() {
    // One job at a time, one message at a time: messages are handled in publish order.
    let mut h = start(Options {
        concurrency: 1,
        prefetch: 1,
        ..Options::default()
    })
    .await;
    let job = Uuid::new_v4();
    let message = job_created(job, "sleep", json!({"durationMs": 30}), 3);
    h.publish(&message).await;
    h.publish(&message).await;
    // The gateway retrying a publish: same job, new event id.
    let mut again = message.clone();
    again["eventId"] = json!(Uuid::new_v4());
    h.publish(&again).await;
    let marker = h.submit("sleep", json!({"durationMs": 0}), 1).await;

    h.wait_for_status(marker, JobStatus::Completed).await;
    let done = h.wait_for_status(job, JobStatus::Completed).await;
    assert_eq!(done.attempts, 1);
    // The relay publishes in outbox order: once the marker's completion is seen, every event
    // of the duplicated job is too.
    h.wait_for_events("the marker's job.completed", |seen| {
        has_event(seen, marker, "job.completed")
    })
    .await;
    assert_eq!(
        types(&h.events_of(job)),
        ["job.started", "job.completed"],
        "one run, announced once"
    );
    let (_, attempts) = h
        .store
        .job_detail(job)
        .await
        .expect("job_detail")
        .expect("the job");
    assert_eq!(attempts.len(), 1);
    h.cleanup().await;
}

#[tokio::test]
async fn shutdown_finishes_running_jobs_publishes_their_events_and_returns() {
    let mut h = start(Options::default()).await;
    let job = h.submit("sleep", json!({"durationMs": 500}), 1).await;
    h.wait_for_status(job, JobStatus::Running).await;

    let took = h.stop().await;
    assert!(took < Duration::from_secs(15), "shutdown took {took:?}");
    // The running job finished within the grace period, and its completion was relayed
    // before the processor stopped.
    let done = h.wait_for_status(job, JobStatus::Completed).await;
    assert_eq!(done.attempts, 1);
    assert_eq!(h.store.outbox_backlog().await.expect("backlog"), 0);
    h.wait_for_events("job.completed", |seen| {
        has_event(seen, job, "job.completed")
    })
    .await;
    h.cleanup().await;
}

#[tokio::test]
async fn shutdown_interrupts_jobs_beyond_the_grace_period_without_using_up_an_attempt() {
    let mut h = start(Options {
        shutdown_grace_secs: 0,
        ..Options::default()
    })
    .await;
    // One attempt only: a deploy must not dead-letter it.
    let job = h.submit("sleep", json!({"durationMs": 60000}), 1).await;
    h.wait_for_status(job, JobStatus::Running).await;

    let took = h.stop().await;
    assert!(took < Duration::from_secs(15), "shutdown took {took:?}");
    let interrupted = h.wait_for_status(job, JobStatus::Retrying).await;
    assert_eq!(
        interrupted.last_error.map(|e| e.code),
        Some("interrupted".to_owned())
    );
    assert_eq!(interrupted.attempts, 0, "the attempt is given back");
    assert!(interrupted.next_attempt_at.is_some());
    h.cleanup().await;
}

#[tokio::test]
async fn a_crashed_processors_attempt_is_taken_over_within_seconds_and_completes() {
    let mut h = start(Options::default()).await;
    // The harness's processor stops: the crashable one gets the job.
    h.stop().await;
    let options = Options::default();
    let doomed = Crashable::start(config(&options, &h.database, &h.prefix, "processor-doomed"));
    // One attempt only, as a deploy or crash must not use it up.
    let job = h.submit("sleep", json!({"durationMs": 1500}), 1).await;
    h.wait_for_status(job, JobStatus::Running).await;
    doomed.crash();

    let started = std::time::Instant::now();
    let (stop, survivor) = h.another(&options, "processor-survivor").await;
    let done = h.wait_for_status(job, JobStatus::Completed).await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(15),
        "taken over and finished in {took:?} (lease {} s)",
        options.attempt_lease_secs
    );
    assert_eq!(done.attempts, 1, "only the completed attempt counts");
    assert_eq!(
        h.attempts(job).await,
        [
            (
                1,
                "FAILED".to_owned(),
                Some("interrupted".to_owned()),
                Some("processor-doomed".to_owned())
            ),
            (
                2,
                "SUCCEEDED".to_owned(),
                None,
                Some("processor-survivor".to_owned())
            ),
        ]
    );
    // The crashed relay's claim on the first job.started runs out, then it is published too.
    h.wait_for_events("the timeline of the takeover", |seen| {
        events_of(seen, job).len() >= 4
    })
    .await;
    // In the order they happened (a batch taken over from the dead relay arrives late).
    let mut timeline: Vec<&Value> = h
        .seen
        .iter()
        .filter(|e| e["payload"]["jobId"] == json!(job))
        .collect();
    timeline.sort_by_key(|e| {
        e["occurredAt"]
            .as_str()
            .and_then(|t| t.parse::<chrono::DateTime<Utc>>().ok())
    });
    let kinds: Vec<&str> = timeline
        .iter()
        .filter_map(|e| e["eventType"].as_str())
        .collect();
    assert_eq!(
        kinds,
        ["job.started", "job.failed", "job.started", "job.completed"]
    );
    stop.cancel();
    survivor.await.expect("no panic").expect("stops cleanly");
    h.cleanup().await;
}

#[tokio::test]
async fn processors_with_different_attempt_timeouts_never_run_one_job_twice() {
    let h = start(Options::default()).await;
    // Every job runs on the first processor (started alone)...
    let jobs: Vec<Uuid> = {
        let mut jobs = Vec::new();
        for _ in 0..4 {
            jobs.push(h.submit("sleep", json!({"durationMs": 5000}), 3).await);
        }
        jobs
    };
    for job in &jobs {
        h.wait_for_status(*job, JobStatus::Running).await;
    }
    // ...then a second one with a far shorter attempt timeout joins: it must not take over
    // attempts that are alive, whatever its own timeout says.
    let impatient = Options {
        attempt_timeout_secs: 1,
        ..Options::default()
    };
    let (stop, other) = h.another(&impatient, "processor-impatient").await;
    for job in &jobs {
        let done = h.wait_for_status(*job, JobStatus::Completed).await;
        assert_eq!(done.attempts, 1);
        assert_eq!(
            h.attempts(*job).await,
            [(
                1,
                "SUCCEEDED".to_owned(),
                None,
                Some("processor-test".to_owned())
            )],
            "one attempt, by the processor that started it"
        );
    }
    stop.cancel();
    other.await.expect("no panic").expect("stops cleanly");
    h.cleanup().await;
}

#[tokio::test]
async fn two_relays_publish_each_event_once() {
    let mut h = start(Options::default()).await;
    let (stop, other) = h.another(&Options::default(), "processor-second").await;
    let mut jobs = Vec::new();
    for _ in 0..40 {
        jobs.push(h.submit("sleep", json!({"durationMs": 0}), 3).await);
    }
    h.wait_for_events("every job.completed", |seen| {
        jobs.iter()
            .all(|job| has_event(seen, *job, "job.completed"))
    })
    .await;
    // Both relays ran; no event was published twice.
    let mut ids: Vec<&str> = h
        .seen
        .iter()
        .filter_map(|e| e["eventId"].as_str())
        .collect();
    let total = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), total, "an event was published twice");
    assert_eq!(total, jobs.len() * 2, "started and completed of every job");
    stop.cancel();
    other.await.expect("no panic").expect("stops cleanly");
    h.cleanup().await;
}
