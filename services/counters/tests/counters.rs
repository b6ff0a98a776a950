//! The counters against a real Redis (each test under its own key prefix).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use futures_util::StreamExt;
use observatory_counters::contracts::event_envelope::{EventEnvelope, EventType};
use observatory_counters::contracts::overview::{JobCounters, Overview};
use observatory_counters::{
    Counters, CountersConfig, CountersError, EventFeed, OTHER_TYPE, RecordOutcome,
};
use serde_json::Value;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(30);

/// A test's own key prefix; its keys are deleted at the end of the test.
struct TestCounters {
    counters: Counters,
    prefix: String,
}

impl TestCounters {
    async fn new() -> Self {
        Self::with(|config| config).await
    }

    async fn with(configure: impl FnOnce(CountersConfig) -> CountersConfig) -> Self {
        let url = observatory_test_support::redis_url();
        let prefix = observatory_test_support::unique_name();
        let counters = Counters::connect_with(&url, configure(CountersConfig::new(&prefix)))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "Redis at {url} is not reachable ({e}); run `cargo xtask test`, which starts it"
                )
            });
        counters.ping().await.expect("ping");
        Self { counters, prefix }
    }

    async fn drop(self) {
        let client = redis::Client::open(observatory_test_support::redis_url()).expect("client");
        let mut connection = client
            .get_multiplexed_async_connection()
            .await
            .expect("connection");
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", self.prefix))
            .query_async(&mut connection)
            .await
            .expect("keys");
        if !keys.is_empty() {
            redis::cmd("DEL")
                .arg(&keys)
                .query_async::<()>(&mut connection)
                .await
                .expect("delete the test keys");
        }
    }
}

async fn bounded<F: std::future::Future<Output = ()>>(body: F) {
    tokio::time::timeout(TIMEOUT, body)
        .await
        .expect("the test took too long");
}

/// The first valid example of `schemas/events/<file>.examples.json`.
fn example(file: &str) -> Value {
    let path = format!(
        "{}/../../schemas/events/{file}.examples.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let examples: Value = serde_json::from_str(&text).expect("examples are JSON");
    examples["valid"][0]["instance"].clone()
}

/// A valid event built from the schema's example, with its own eventId and the given job
/// type and time (and, for job.failed, willRetry).
fn event(event_type: EventType, job_type: &str, occurred_at: DateTime<Utc>) -> EventEnvelope {
    let file = match event_type {
        EventType::JobCreated => "job-created",
        EventType::JobStarted => "job-started",
        EventType::JobCompleted => "job-completed",
        EventType::JobFailed => "job-failed",
        EventType::JobDeadLettered => "job-dead-lettered",
    };
    let mut instance = example(file);
    instance["eventId"] = Value::from(Uuid::new_v4().to_string());
    instance["occurredAt"] = Value::from(occurred_at.to_rfc3339());
    instance["payload"]["jobId"] = Value::from(Uuid::new_v4().to_string());
    instance["payload"]["type"] = Value::from(job_type);
    serde_json::from_value(instance).expect("the example is a valid EventEnvelope")
}

fn failed(job_type: &str, will_retry: bool, occurred_at: DateTime<Utc>) -> EventEnvelope {
    let mut event = event(EventType::JobFailed, job_type, occurred_at);
    event
        .payload
        .insert("willRetry".into(), Value::from(will_retry));
    event
}

fn counters(
    submitted: u64,
    started: u64,
    completed: u64,
    failed: u64,
    retried: u64,
    dead_lettered: u64,
) -> JobCounters {
    JobCounters {
        submitted,
        started,
        completed,
        failed,
        retried,
        dead_lettered,
    }
}

fn by_type(overview: &Overview) -> BTreeMap<String, JobCounters> {
    overview
        .by_type
        .iter()
        .map(|t| (t.type_.clone(), t.counters.clone()))
        .collect()
}

/// One event of every lifecycle type for a job of `job_type`: created, started, failed with
/// retry, started, completed.
fn lifecycle(job_type: &str, occurred_at: DateTime<Utc>) -> Vec<EventEnvelope> {
    vec![
        event(EventType::JobCreated, job_type, occurred_at),
        event(EventType::JobStarted, job_type, occurred_at),
        failed(job_type, true, occurred_at),
        event(EventType::JobStarted, job_type, occurred_at),
        event(EventType::JobCompleted, job_type, occurred_at),
    ]
}

#[tokio::test]
async fn a_redelivered_batch_counts_once() {
    bounded(async {
        let test = TestCounters::new().await;
        let now = Utc::now();
        let mut batch = lifecycle("sleep", now);
        batch.push(failed("fail", false, now));
        batch.push(event(EventType::JobDeadLettered, "fail", now));

        let first = test
            .counters
            .record_batch(&batch)
            .await
            .expect("first delivery");
        assert_eq!(
            first,
            RecordOutcome {
                counted: 7,
                duplicates: 0
            }
        );
        let again = test
            .counters
            .record_batch(&batch)
            .await
            .expect("redelivery");
        assert_eq!(
            again,
            RecordOutcome {
                counted: 0,
                duplicates: 7
            }
        );
        // Repeated within one batch, and mixed with a new event.
        let extra = event(EventType::JobCreated, "compute", now);
        let mixed = [batch[0].clone(), extra.clone(), extra.clone()];
        let outcome = test.counters.record_batch(&mixed).await.expect("mixed");
        assert_eq!(
            outcome,
            RecordOutcome {
                counted: 1,
                duplicates: 2
            }
        );
        assert_eq!(
            test.counters.record_batch(&[]).await.expect("empty"),
            RecordOutcome::default()
        );

        let overview = test.counters.overview(60, 1).await.expect("overview");
        assert_eq!(overview.totals, counters(2, 2, 1, 2, 1, 1));
        test.drop().await;
    })
    .await;
}

#[tokio::test]
async fn types_beyond_the_cap_are_counted_as_other() {
    bounded(async {
        let test = TestCounters::with(|config| CountersConfig {
            max_custom_types: 2,
            ..config
        })
        .await;
        let now = Utc::now();
        let mut batch = Vec::new();
        for job_type in [
            "sleep",
            "compute",
            "fail",
            "resize-image",
            "send-mail",
            "third",
            "fourth",
        ] {
            batch.extend(lifecycle(job_type, now));
        }
        // Admitted types keep their own counters after the cap is reached.
        batch.push(event(EventType::JobCreated, "resize-image", now));
        // Not a JobType name: counted, but under "other".
        let mut odd = event(EventType::JobCreated, "sleep", now);
        odd.payload.insert("type".into(), Value::from("Not A Type"));
        batch.push(odd);
        test.counters.record_batch(&batch).await.expect("record");

        let overview = test.counters.overview(1, 1).await.expect("overview");
        let one_lifecycle = counters(1, 2, 1, 1, 1, 0);
        let expected: BTreeMap<String, JobCounters> = [
            ("compute", one_lifecycle.clone()),
            ("fail", one_lifecycle.clone()),
            ("sleep", one_lifecycle.clone()),
            ("resize-image", counters(2, 2, 1, 1, 1, 0)),
            ("send-mail", one_lifecycle.clone()),
            (OTHER_TYPE, counters(3, 4, 2, 2, 2, 0)),
        ]
        .into_iter()
        .map(|(t, c)| (t.to_string(), c))
        .collect();
        assert_eq!(by_type(&overview), expected);
        let order: Vec<&str> = overview.by_type.iter().map(|t| t.type_.as_str()).collect();
        assert_eq!(
            order,
            [
                "compute",
                "fail",
                "resize-image",
                "send-mail",
                "sleep",
                OTHER_TYPE
            ]
        );
        assert_eq!(overview.totals, counters(9, 14, 7, 7, 7, 0));
        test.drop().await;
    })
    .await;
}

#[tokio::test]
async fn retried_counts_only_failures_that_will_retry() {
    bounded(async {
        let test = TestCounters::new().await;
        let now = Utc::now();
        let batch = [
            failed("fail", true, now),
            failed("fail", true, now),
            failed("fail", false, now),
            failed("compute", false, now),
        ];
        test.counters.record_batch(&batch).await.expect("record");
        let overview = test.counters.overview(1, 1).await.expect("overview");
        assert_eq!(overview.totals, counters(0, 0, 0, 4, 2, 0));
        let types = by_type(&overview);
        assert_eq!(types["fail"], counters(0, 0, 0, 3, 2, 0));
        assert_eq!(types["compute"], counters(0, 0, 0, 1, 0, 0));
        test.drop().await;
    })
    .await;
}

#[tokio::test]
async fn throughput_buckets_count_by_occurrence_time() {
    bounded(async {
        let test = TestCounters::new().await;
        // A fixed "now" on a 10-second boundary plus 3 s, so the expectations are exact.
        let now_seconds = Utc::now().timestamp() / 10 * 10 + 3;
        let second = |s: i64| Utc.timestamp_opt(s, 0).single().expect("instant");
        let now = second(now_seconds);
        let base = now_seconds - 3; // start of the current 10-second bucket
        let batch = [
            event(EventType::JobCreated, "sleep", second(base + 3)),
            event(EventType::JobCreated, "sleep", second(base + 3)),
            event(EventType::JobStarted, "sleep", second(base + 3)), // not in throughput
            event(EventType::JobCompleted, "sleep", second(base + 2)),
            failed("fail", true, second(base - 1)),
            event(EventType::JobCreated, "compute", second(base - 10)),
            event(EventType::JobDeadLettered, "fail", second(base - 10)), // not in throughput
            event(EventType::JobCompleted, "compute", second(base - 25)), // outside 3 buckets of 10 s
        ];
        test.counters.record_batch(&batch).await.expect("record");

        let per_second = test
            .counters
            .overview_at(now, 5, 1)
            .await
            .expect("per second");
        let summary: Vec<(i64, u64, u64, u64, u64)> = per_second
            .throughput
            .iter()
            .map(|b| {
                (
                    b.start.timestamp(),
                    b.seconds.get(),
                    b.submitted,
                    b.completed,
                    b.failed,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (base - 1, 1, 0, 0, 1),
                (base, 1, 0, 0, 0),
                (base + 1, 1, 0, 0, 0),
                (base + 2, 1, 0, 1, 0),
                (base + 3, 1, 2, 0, 0),
            ]
        );

        let per_ten = test
            .counters
            .overview_at(now, 3, 10)
            .await
            .expect("per 10 s");
        let summary: Vec<(i64, u64, u64, u64, u64)> = per_ten
            .throughput
            .iter()
            .map(|b| {
                (
                    b.start.timestamp(),
                    b.seconds.get(),
                    b.submitted,
                    b.completed,
                    b.failed,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (base - 20, 10, 0, 0, 0),
                (base - 10, 10, 1, 0, 1),
                (base, 10, 2, 1, 0)
            ]
        );

        for (buckets, seconds) in [(1, 0), (3601, 1), (1, 7200)] {
            assert!(
                matches!(
                    test.counters.overview_at(now, buckets, seconds).await,
                    Err(CountersError::InvalidBuckets { .. })
                ),
                "{buckets} x {seconds}"
            );
        }
        test.drop().await;
    })
    .await;
}

#[tokio::test]
async fn the_overview_validates_and_equals_what_was_recorded() {
    bounded(async {
        let test = TestCounters::new().await;
        let now = Utc::now();
        let mut batch = lifecycle("sleep", now);
        batch.extend(lifecycle("resize-image", now));
        batch.push(failed("fail", false, now));
        batch.push(event(EventType::JobDeadLettered, "fail", now));
        test.counters.record_batch(&batch).await.expect("record");

        let overview = test
            .counters
            .overview_at(now, 60, 1)
            .await
            .expect("overview");
        let validator = observatory_validation::ContractValidator::by_name("overview")
            .expect("the overview schema exists")
            .expect("the overview schema compiles");
        let json = serde_json::to_value(&overview).expect("serializable");
        if let Err(violations) = validator.validate(&json) {
            panic!("the overview violates its schema: {violations:?}\n{json:#}");
        }

        assert_eq!(overview.generated_at, now);
        assert_eq!(overview.totals, counters(2, 4, 2, 3, 2, 1));
        let one_lifecycle = counters(1, 2, 1, 1, 1, 0);
        let expected: BTreeMap<String, JobCounters> = [
            ("fail", counters(0, 0, 0, 1, 0, 1)),
            ("resize-image", one_lifecycle.clone()),
            ("sleep", one_lifecycle),
        ]
        .into_iter()
        .map(|(t, c)| (t.to_string(), c))
        .collect();
        assert_eq!(by_type(&overview), expected);
        assert_eq!(overview.throughput.len(), 60);
        assert!(
            overview
                .throughput
                .windows(2)
                .all(|w| w[0].start < w[1].start),
            "oldest first"
        );
        let last = overview.throughput.last().expect("a current bucket");
        assert_eq!((last.submitted, last.completed, last.failed), (2, 2, 3));
        let earlier: u64 = overview.throughput[..59]
            .iter()
            .map(|b| b.submitted + b.completed + b.failed)
            .sum();
        assert_eq!(earlier, 0);

        // A fresh prefix has an empty, still valid overview.
        let empty = TestCounters::new().await;
        let overview = empty
            .counters
            .overview(10, 1)
            .await
            .expect("empty overview");
        assert!(validator.is_valid(&serde_json::to_value(&overview).expect("serializable")));
        assert_eq!(overview.totals, counters(0, 0, 0, 0, 0, 0));
        assert!(overview.by_type.is_empty());
        empty.drop().await;
        test.drop().await;
    })
    .await;
}

/// The next event on the feed, failing the test when none arrives in time.
async fn next_event(feed: &mut EventFeed) -> EventEnvelope {
    tokio::time::timeout(Duration::from_secs(10), feed.next())
        .await
        .expect("an event on the feed in time")
        .expect("the feed is open")
        .expect("a valid event")
}

#[tokio::test]
async fn the_feed_delivers_each_newly_counted_event_once() {
    bounded(async {
        let test = TestCounters::new().await;
        let mut feed = test.counters.subscribe().await.expect("subscribe");
        let now = Utc::now();
        let [a, b, c, last] = [
            event(EventType::JobCreated, "sleep", now),
            event(EventType::JobStarted, "sleep", now),
            failed("sleep", true, now),
            event(EventType::JobCompleted, "sleep", now),
        ];
        test.counters
            .record_batch(&[a.clone(), b.clone(), a.clone()])
            .await
            .expect("first");
        test.counters
            .record_batch(&[a.clone(), b.clone(), c.clone()])
            .await
            .expect("redelivery");
        test.counters
            .record_batch(std::slice::from_ref(&last))
            .await
            .expect("last");

        // Pub/sub keeps order: everything before `last` was published before it, so reading up
        // to `last` sees every message the earlier batches published.
        let mut received = Vec::new();
        loop {
            let event = next_event(&mut feed).await;
            let done = event.event_id == last.event_id;
            received.push(event);
            if done {
                break;
            }
        }
        assert_eq!(received, [a, b, c, last]);
        test.drop().await;
    })
    .await;
}

#[tokio::test]
async fn batches_larger_than_one_script_call_count_every_event_once() {
    bounded(async {
        let test = TestCounters::new().await;
        let now = Utc::now();
        let count = observatory_counters::MAX_EVENTS_PER_SCRIPT * 2 + 1;
        let batch: Vec<EventEnvelope> = (0..count)
            .map(|_| event(EventType::JobCreated, "sleep", now))
            .collect();
        let first = test.counters.record_batch(&batch).await.expect("record");
        assert_eq!(
            first,
            RecordOutcome {
                counted: count,
                duplicates: 0
            }
        );
        let again = test.counters.record_batch(&batch).await.expect("redeliver");
        assert_eq!(
            again,
            RecordOutcome {
                counted: 0,
                duplicates: count
            }
        );
        let overview = test.counters.overview(1, 1).await.expect("overview");
        assert_eq!(overview.totals.submitted, count as u64);
        test.drop().await;
    })
    .await;
}
