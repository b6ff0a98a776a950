//! The conformance suite: every test body takes a [`Backend`] (a factory of
//! `Arc<dyn Counters>`), and [`conformance!`] instantiates each for every adapter, as
//! `redis::<test>` (a real Redis, each test under its own key prefix) and `sqlite::<test>`
//! (an in-memory database; a temporary file where a test needs durability).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use futures_util::StreamExt;
use observatory_sqlite::Location;
use serde_json::Value;
use uuid::Uuid;

use crate::contracts::event_envelope::{EventEnvelope, EventType};
use crate::contracts::overview::{JobCounters, Overview};
use crate::{
    Counters, CountersConfig, CountersError, CountersState, EventFeed, IntactMark,
    MAX_EVENTS_PER_WRITE, OTHER_TYPE, RecordOutcome, Recording, RedisCounters, SqliteCounters,
};

const TIMEOUT: Duration = Duration::from_secs(30);

/// Instantiates each test body for every adapter.
macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        adapter_tests!(redis, Redis, $($test),*);
        adapter_tests!(sqlite, Sqlite, $($test),*);
    };
}

macro_rules! adapter_tests {
    ($module:ident, $backend:ident, $($test:ident),*) => {
        mod $module {
            $(
                #[tokio::test]
                async fn $test() {
                    super::bounded(super::$test(super::Backend::$backend)).await;
                }
            )*
        }
    };
}

conformance!(
    each_counter_counts_its_events,
    redelivered_events_count_once,
    concurrent_recorders_count_each_event_once,
    types_beyond_the_cap_are_counted_as_other,
    throughput_buckets_count_by_occurrence_time,
    buckets_older_than_the_retention_are_not_kept,
    invalid_bucket_arguments_are_rejected,
    the_overview_validates_and_equals_what_was_recorded,
    the_feed_delivers_each_newly_counted_event_once,
    large_batches_are_split_and_count_every_event_once,
    counts_survive_reopening,
    a_reset_and_a_quiet_replay_rebuild_the_counters_without_news,
    the_state_says_lost_rebuilding_or_intact_and_one_rebuild_wins,
    late_events_are_marked_when_recorded_live_and_not_in_a_rebuild,
    guarded_late_events_are_left_to_a_rebuild_that_began_since,
    markers_are_forgotten_once_the_window_has_passed,
);

/// An adapter under test.
#[derive(Debug, Clone, Copy)]
enum Backend {
    Redis,
    Sqlite,
}

/// One test's counters, and what it takes to reopen and clean them up.
struct Harness {
    counters: Arc<dyn Counters>,
    backend: Backend,
    config: CountersConfig,
    /// The SQLite adapter (to close it) and the temporary directory of its file, if any.
    sqlite: Option<(SqliteCounters, Option<PathBuf>)>,
}

impl Backend {
    async fn open(self) -> Harness {
        self.open_with(|config| config).await
    }

    /// Fresh counters (a new key prefix, a new in-memory database) configured by `configure`.
    async fn open_with(self, configure: impl FnOnce(CountersConfig) -> CountersConfig) -> Harness {
        let config = configure(CountersConfig::new(observatory_test_support::unique_name()));
        match self {
            Self::Redis => Harness::redis(config).await,
            Self::Sqlite => Harness::sqlite(config, None).await,
        }
    }

    /// Fresh counters that keep their data when reopened (a file for SQLite).
    async fn open_durable(self) -> Harness {
        let config = CountersConfig::new(observatory_test_support::unique_name());
        match self {
            Self::Redis => Harness::redis(config).await,
            Self::Sqlite => {
                let dir = std::env::temp_dir().join(&config.key_prefix);
                Harness::sqlite(config, Some(dir)).await
            }
        }
    }
}

impl Harness {
    async fn redis(config: CountersConfig) -> Self {
        let url = observatory_test_support::redis_url();
        let counters = RedisCounters::connect_with(&url, config.clone())
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "Redis at {url} is not reachable ({e}); run `cargo xtask test`, which starts it"
                )
            });
        counters.ping().await.expect("ping");
        Self {
            counters: Arc::new(counters),
            backend: Backend::Redis,
            config,
            sqlite: None,
        }
    }

    async fn sqlite(config: CountersConfig, dir: Option<PathBuf>) -> Self {
        let location = dir.as_ref().map_or(Location::Memory, |dir| {
            Location::File(dir.join("counters.db"))
        });
        let counters = SqliteCounters::open(&location, config.clone())
            .await
            .expect("open the SQLite counters");
        counters.ping().await.expect("ping");
        Self {
            counters: Arc::new(counters.clone()),
            backend: Backend::Sqlite,
            config,
            sqlite: Some((counters, dir)),
        }
    }

    /// Closes the counters and opens them again on the same data.
    async fn reopen(self) -> Self {
        match self.sqlite {
            None => Self::redis(self.config).await,
            Some((counters, dir)) => {
                assert!(dir.is_some(), "reopening needs a durable harness");
                counters.close().await;
                drop(self.counters);
                Self::sqlite(self.config, dir).await
            }
        }
    }

    /// Deletes what the test stored.
    async fn finish(self) {
        match (self.backend, self.sqlite) {
            (Backend::Redis, _) => delete_redis_keys(&self.config.key_prefix).await,
            (Backend::Sqlite, Some((counters, dir))) => {
                counters.close().await;
                if let Some(dir) = dir {
                    std::fs::remove_dir_all(&dir).expect("remove the test's directory");
                }
            }
            (Backend::Sqlite, None) => {}
        }
    }
}

async fn delete_redis_keys(prefix: &str) {
    let client = ::redis::Client::open(observatory_test_support::redis_url()).expect("client");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connection");
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut connection)
        .await
        .expect("keys");
    if !keys.is_empty() {
        ::redis::cmd("DEL")
            .arg(&keys)
            .query_async::<()>(&mut connection)
            .await
            .expect("delete the test keys");
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
pub(crate) fn event(
    event_type: EventType,
    job_type: &str,
    occurred_at: DateTime<Utc>,
) -> EventEnvelope {
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

fn types(pairs: &[(&str, JobCounters)]) -> BTreeMap<String, JobCounters> {
    pairs
        .iter()
        .map(|(t, c)| (t.to_string(), c.clone()))
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

fn outcome(counted: usize, duplicates: usize) -> RecordOutcome {
    RecordOutcome {
        counted,
        duplicates,
    }
}

/// A fixed instant (Unix seconds), for overviews as of an explicit time.
fn second(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(s, 0).single().expect("instant")
}

/// (start, width, submitted, completed, failed) of each throughput bucket.
fn throughput(overview: &Overview) -> Vec<(i64, u64, u64, u64, u64)> {
    overview
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
        .collect()
}

async fn each_counter_counts_its_events(backend: Backend) {
    let test = backend.open().await;
    let now = Utc::now();
    let batch = [
        event(EventType::JobCreated, "sleep", now),
        event(EventType::JobCreated, "compute", now),
        event(EventType::JobStarted, "sleep", now),
        event(EventType::JobCompleted, "sleep", now),
        failed("fail", true, now),
        failed("fail", true, now),
        failed("fail", false, now),
        failed("compute", false, now),
        event(EventType::JobDeadLettered, "fail", now),
    ];
    let recorded = test.counters.record_batch(&batch).await.expect("record");
    assert_eq!(recorded, outcome(9, 0));

    let overview = test
        .counters
        .overview_at(now, 1, 1)
        .await
        .expect("overview");
    // submitted, started, completed, failed (every job.failed), retried (willRetry only),
    // deadLettered.
    assert_eq!(overview.totals, counters(2, 1, 1, 4, 2, 1));
    assert_eq!(
        by_type(&overview),
        types(&[
            ("compute", counters(1, 0, 0, 1, 0, 0)),
            ("fail", counters(0, 0, 0, 3, 2, 1)),
            ("sleep", counters(1, 1, 1, 0, 0, 0)),
        ])
    );
    test.finish().await;
}

async fn redelivered_events_count_once(backend: Backend) {
    let test = backend.open().await;
    let now = Utc::now();
    let mut batch = lifecycle("sleep", now);
    batch.push(failed("fail", false, now));
    batch.push(event(EventType::JobDeadLettered, "fail", now));

    let first = test.counters.record_batch(&batch).await.expect("first");
    assert_eq!(first, outcome(7, 0));
    let again = test
        .counters
        .record_batch(&batch)
        .await
        .expect("redelivery");
    assert_eq!(again, outcome(0, 7));
    // Repeated within one batch, and mixed with a new event.
    let extra = event(EventType::JobCreated, "compute", now);
    let mixed = [batch[0].clone(), extra.clone(), extra.clone()];
    let recorded = test.counters.record_batch(&mixed).await.expect("mixed");
    assert_eq!(recorded, outcome(1, 2));
    let empty = test.counters.record_batch(&[]).await.expect("empty");
    assert_eq!(empty, RecordOutcome::default());

    let overview = test
        .counters
        .overview_at(now, 60, 1)
        .await
        .expect("overview");
    assert_eq!(overview.totals, counters(2, 2, 1, 2, 1, 1));
    let last = overview.throughput.last().expect("the current bucket");
    assert_eq!((last.submitted, last.completed, last.failed), (2, 1, 2));
    test.finish().await;
}

async fn concurrent_recorders_count_each_event_once(backend: Backend) {
    let test = backend
        .open_with(|config| CountersConfig {
            max_custom_types: 3,
            ..config
        })
        .await;
    let now = Utc::now();
    // Two recorders get overlapping deliveries, each with custom types of its own.
    let shared: Vec<EventEnvelope> = (0..20)
        .map(|i| event(EventType::JobCreated, &format!("shared-{}", i % 4), now))
        .collect();
    let mut left = shared.clone();
    left.extend((0..10).map(|i| event(EventType::JobCreated, &format!("left-{i}"), now)));
    let mut right = shared.clone();
    right.extend((0..10).map(|i| event(EventType::JobCreated, &format!("right-{i}"), now)));

    let (a, b) = tokio::join!(
        test.counters.record_batch(&left),
        test.counters.record_batch(&right)
    );
    let (a, b) = (a.expect("left"), b.expect("right"));
    assert_eq!(a.counted + b.counted, 40, "{a:?} {b:?}");
    assert_eq!(a.duplicates + b.duplicates, 20, "{a:?} {b:?}");

    let overview = test
        .counters
        .overview_at(now, 1, 1)
        .await
        .expect("overview");
    assert_eq!(overview.totals.submitted, 40);
    let per_type = by_type(&overview);
    let own: Vec<&String> = per_type.keys().filter(|t| *t != OTHER_TYPE).collect();
    assert_eq!(
        own.len(),
        3,
        "exactly the cap gets its own counters: {own:?}"
    );
    let summed: u64 = per_type.values().map(|c| c.submitted).sum();
    assert_eq!(summed, 40);
    test.finish().await;
}

async fn types_beyond_the_cap_are_counted_as_other(backend: Backend) {
    let test = backend
        .open_with(|config| CountersConfig {
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

    let overview = test
        .counters
        .overview_at(now, 1, 1)
        .await
        .expect("overview");
    let one_lifecycle = counters(1, 2, 1, 1, 1, 0);
    assert_eq!(
        by_type(&overview),
        types(&[
            ("compute", one_lifecycle.clone()),
            ("fail", one_lifecycle.clone()),
            ("sleep", one_lifecycle.clone()),
            ("resize-image", counters(2, 2, 1, 1, 1, 0)),
            ("send-mail", one_lifecycle.clone()),
            (OTHER_TYPE, counters(3, 4, 2, 2, 2, 0)),
        ])
    );
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

    // The cap holds across batches: admitted types stay, new ones go to "other".
    let later = [
        event(EventType::JobCreated, "send-mail", now),
        event(EventType::JobCreated, "fifth", now),
    ];
    test.counters.record_batch(&later).await.expect("later");
    let overview = test
        .counters
        .overview_at(now, 1, 1)
        .await
        .expect("overview");
    let per_type = by_type(&overview);
    assert_eq!(per_type["send-mail"].submitted, 2);
    assert_eq!(per_type[OTHER_TYPE].submitted, 4);
    assert!(!per_type.contains_key("fifth"));
    test.finish().await;
}

async fn throughput_buckets_count_by_occurrence_time(backend: Backend) {
    let test = backend.open().await;
    // A fixed "now" on a 10-second boundary plus 3 s, so the expectations are exact.
    let now_seconds = Utc::now().timestamp() / 10 * 10 + 3;
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

    let per_second = test.counters.overview_at(now, 5, 1).await.expect("per 1 s");
    assert_eq!(
        throughput(&per_second),
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
    assert_eq!(
        throughput(&per_ten),
        [
            (base - 20, 10, 0, 0, 0),
            (base - 10, 10, 1, 0, 1),
            (base, 10, 2, 1, 0)
        ]
    );
    let none = test
        .counters
        .overview_at(now, 0, 10)
        .await
        .expect("no buckets");
    assert!(none.throughput.is_empty());
    test.finish().await;
}

async fn buckets_older_than_the_retention_are_not_kept(backend: Backend) {
    let test = backend
        .open_with(|config| CountersConfig {
            bucket_seconds: 10,
            bucket_retention: Duration::from_secs(600),
            ..config
        })
        .await;
    let now = Utc::now();
    let old = now - chrono::Duration::seconds(3600);
    let batch = [
        event(EventType::JobCreated, "sleep", old),
        event(EventType::JobCreated, "sleep", now),
    ];
    let recorded = test.counters.record_batch(&batch).await.expect("record");
    assert_eq!(recorded, outcome(2, 0), "still counted");

    // The old event is in the totals but not in any bucket, even as of its own time.
    let then = test.counters.overview_at(old, 60, 10).await.expect("then");
    assert_eq!(then.totals.submitted, 2);
    assert!(then.throughput.iter().all(|b| b.submitted == 0), "{then:?}");
    let current = test.counters.overview_at(now, 60, 10).await.expect("now");
    let last = current.throughput.last().expect("the current bucket");
    assert_eq!(last.submitted, 1);
    test.finish().await;
}

async fn invalid_bucket_arguments_are_rejected(backend: Backend) {
    let test = backend
        .open_with(|config| CountersConfig {
            bucket_seconds: 2,
            bucket_retention: Duration::from_secs(3600),
            ..config
        })
        .await;
    let now = Utc::now();
    // Zero width, not a multiple of the recorded 2 s, beyond the retention (by count, by
    // width, by overflow).
    for (buckets, seconds) in [(1, 0), (1, 3), (1801, 2), (1, 7200), (usize::MAX, 2)] {
        let result = test.counters.overview_at(now, buckets, seconds).await;
        assert!(
            matches!(result, Err(CountersError::InvalidBuckets { .. })),
            "{buckets} x {seconds}: {result:?}"
        );
    }
    // The limits themselves are fine.
    let overview = test
        .counters
        .overview_at(now, 1800, 2)
        .await
        .expect("1800 x 2");
    assert_eq!(overview.throughput.len(), 1800);
    let overview = test
        .counters
        .overview_at(now, 1, 3600)
        .await
        .expect("1 x 3600");
    assert_eq!(overview.throughput.len(), 1);
    test.finish().await;
}

async fn the_overview_validates_and_equals_what_was_recorded(backend: Backend) {
    let test = backend.open().await;
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
    assert_eq!(
        by_type(&overview),
        types(&[
            ("fail", counters(0, 0, 0, 1, 0, 1)),
            ("resize-image", one_lifecycle.clone()),
            ("sleep", one_lifecycle),
        ])
    );
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

    // Fresh counters have an empty, still valid overview.
    let empty = backend.open().await;
    let overview = empty
        .counters
        .overview(10, 1)
        .await
        .expect("empty overview");
    assert!(validator.is_valid(&serde_json::to_value(&overview).expect("serializable")));
    assert_eq!(overview.totals, counters(0, 0, 0, 0, 0, 0));
    assert!(overview.by_type.is_empty());
    assert_eq!(overview.throughput.len(), 10);
    empty.finish().await;
    test.finish().await;
}

/// The next event on the feed, failing the test when none arrives in time.
async fn next_event(feed: &mut EventFeed) -> EventEnvelope {
    tokio::time::timeout(Duration::from_secs(10), feed.next())
        .await
        .expect("an event on the feed in time")
        .expect("the feed is open")
        .expect("a valid event")
}

/// The events on the feed up to and including the one with `last`'s eventId. The feed keeps
/// order, so this sees everything published before `last`.
async fn events_until(feed: &mut EventFeed, last: &EventEnvelope) -> Vec<EventEnvelope> {
    let mut received = Vec::new();
    loop {
        let event = next_event(feed).await;
        let done = event.event_id == last.event_id;
        received.push(event);
        if done {
            return received;
        }
    }
}

async fn the_feed_delivers_each_newly_counted_event_once(backend: Backend) {
    let test = backend.open().await;
    let now = Utc::now();
    // Counted before anyone subscribed: no history is replayed.
    let before = event(EventType::JobCreated, "compute", now);
    test.counters
        .record_batch(std::slice::from_ref(&before))
        .await
        .expect("before");

    let mut feed = test.counters.subscribe().await.expect("subscribe");
    let mut second_feed = test.counters.subscribe().await.expect("subscribe again");
    let [a, b, c, last] = [
        event(EventType::JobCreated, "sleep", now),
        event(EventType::JobStarted, "sleep", now),
        failed("sleep", true, now),
        event(EventType::JobCompleted, "sleep", now),
    ];
    test.counters
        .record_batch(&[a.clone(), b.clone(), a.clone(), before.clone()])
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

    let expected = [a, b, c, last.clone()];
    assert_eq!(events_until(&mut feed, &last).await, expected);
    assert_eq!(events_until(&mut second_feed, &last).await, expected);
    test.finish().await;
}

async fn large_batches_are_split_and_count_every_event_once(backend: Backend) {
    let test = backend.open().await;
    let now = Utc::now();
    let count = MAX_EVENTS_PER_WRITE * 2 + 1;
    let mut batch: Vec<EventEnvelope> = (0..count)
        .map(|_| event(EventType::JobCreated, "sleep", now))
        .collect();
    let first = test.counters.record_batch(&batch).await.expect("record");
    assert_eq!(first, outcome(count, 0));
    // A redelivery whose repeats straddle the write boundaries, plus one new event.
    batch.push(batch[MAX_EVENTS_PER_WRITE].clone());
    batch.push(event(EventType::JobCreated, "sleep", now));
    let again = test.counters.record_batch(&batch).await.expect("redeliver");
    assert_eq!(again, outcome(1, count + 1));
    let overview = test
        .counters
        .overview_at(now, 1, 1)
        .await
        .expect("overview");
    assert_eq!(overview.totals.submitted, count as u64 + 1);
    test.finish().await;
}

async fn counts_survive_reopening(backend: Backend) {
    let test = backend.open_durable().await;
    let now = Utc::now();
    let mut batch = lifecycle("resize-image", now);
    batch.push(event(EventType::JobDeadLettered, "fail", now));
    test.counters.record_batch(&batch).await.expect("record");
    let before = test.counters.overview_at(now, 10, 1).await.expect("before");

    let test = test.reopen().await;
    let after = test.counters.overview_at(now, 10, 1).await.expect("after");
    assert_eq!(after, before);
    assert_eq!(after.totals, counters(1, 2, 1, 1, 1, 1));
    // What was counted stays counted: a redelivery after the reopen is a duplicate.
    let again = test.counters.record_batch(&batch).await.expect("redeliver");
    assert_eq!(again, outcome(0, batch.len()));
    test.finish().await;
}

async fn a_reset_and_a_quiet_replay_rebuild_the_counters_without_news(backend: Backend) {
    let test = backend.open().await;
    let now = Utc::now();
    let mut history = lifecycle("sleep", now);
    history.extend(lifecycle("fail", now));
    history.extend(lifecycle("resize-image", now));
    test.counters.record_batch(&history).await.expect("record");
    let before = test
        .counters
        .overview_at(now, 3, 1)
        .await
        .expect("overview");

    // Everything is forgotten, including which events were counted...
    let token = test
        .counters
        .begin_rebuild()
        .await
        .expect("begin the rebuild");
    let empty = test
        .counters
        .overview_at(now, 3, 1)
        .await
        .expect("overview");
    assert_eq!(empty.totals, counters(0, 0, 0, 0, 0, 0));
    assert!(
        by_type(&empty)
            .values()
            .all(|c| *c == counters(0, 0, 0, 0, 0, 0))
    );
    assert!(
        empty
            .throughput
            .iter()
            .all(|b| b.submitted + b.completed + b.failed == 0)
    );

    // ...so replaying the history counts every event again, once, and tells no subscriber.
    let mut feed = test.counters.subscribe().await.expect("subscribe");
    let replayed = test
        .counters
        .record(&history, Recording::Rebuild(&token))
        .await
        .expect("replay");
    assert_eq!(replayed, outcome(history.len(), 0));
    let again = test
        .counters
        .record(&history, Recording::Rebuild(&token))
        .await
        .expect("replay twice");
    assert_eq!(again, outcome(0, history.len()), "a replay is idempotent");
    let after = test
        .counters
        .overview_at(now, 3, 1)
        .await
        .expect("overview");
    assert_eq!(after.totals, before.totals);
    assert_eq!(by_type(&after), by_type(&before));
    assert_eq!(throughput(&after), throughput(&before));
    // The next live event is the first thing the feed says.
    let live = event(EventType::JobCreated, "sleep", now);
    test.counters
        .record_batch(std::slice::from_ref(&live))
        .await
        .expect("live");
    assert_eq!(next_event(&mut feed).await, live);
    test.finish().await;
}

async fn the_state_says_lost_rebuilding_or_intact_and_one_rebuild_wins(backend: Backend) {
    let test = backend.open().await;
    let store = &test.counters;
    assert_eq!(store.state().await.expect("state"), CountersState::Lost);
    let first = store.begin_rebuild().await.expect("begin");
    assert_eq!(
        store.state().await.expect("state"),
        CountersState::Rebuilding
    );
    assert!(store.renew_rebuild(&first).await.expect("renew"));

    // A second rebuild supersedes the first: its writes are refused, it cannot finish.
    let second = store.begin_rebuild().await.expect("begin again");
    let now = Utc::now();
    let history = lifecycle("sleep", now);
    let refused = store.record(&history, Recording::Rebuild(&first)).await;
    assert!(
        matches!(refused, Err(CountersError::RebuildSuperseded)),
        "{refused:?}"
    );
    assert!(!store.renew_rebuild(&first).await.expect("renew"));
    assert!(!store.finish_rebuild(&first).await.expect("finish"));
    assert_eq!(
        store
            .record(&history, Recording::Rebuild(&second))
            .await
            .expect("replay"),
        outcome(history.len(), 0)
    );
    assert!(store.finish_rebuild(&second).await.expect("finish"));
    let CountersState::Intact(mark) = store.state().await.expect("state") else {
        panic!("a finished rebuild leaves the counters intact");
    };
    assert_eq!(
        store.overview_at(now, 1, 1).await.expect("overview").totals,
        counters_of_lifecycle()
    );
    // A finished rebuild's token is spent; the next rebuild changes the intact mark.
    assert!(!store.renew_rebuild(&second).await.expect("renew"));
    let third = store.begin_rebuild().await.expect("begin");
    assert!(store.finish_rebuild(&third).await.expect("finish"));
    let CountersState::Intact(next) = store.state().await.expect("state") else {
        panic!("intact again");
    };
    assert_ne!(next, mark);
    assert!(matches!(
        store.record(&history, Recording::Rebuild(&second)).await,
        Err(CountersError::RebuildSuperseded)
    ));
    test.finish().await;
}

/// What one [`lifecycle`] counts.
fn counters_of_lifecycle() -> JobCounters {
    counters(1, 2, 1, 1, 1, 0)
}

async fn late_events_are_marked_when_recorded_live_and_not_in_a_rebuild(backend: Backend) {
    let test = backend.open().await;
    let store = &test.counters;
    let now = Utc::now();
    let window = chrono::Duration::from_std(test.config.dedup_window).expect("window");
    let late = event(EventType::JobCreated, "sleep", now - window * 2);
    assert!(test.config.is_late(late.occurred_at, now));
    let recent = event(EventType::JobCreated, "sleep", now);
    assert!(!test.config.is_late(recent.occurred_at, now));
    let both = [late.clone(), recent.clone()];

    // Live, a late event is marked like any other: a redelivery is a duplicate.
    assert_eq!(
        store.record_batch(&both).await.expect("live"),
        outcome(2, 0)
    );
    assert_eq!(
        store.record_batch(&both).await.expect("again"),
        outcome(0, 2)
    );

    // A rebuild replays the log, which holds each event once: it marks no late event (a
    // whole log of markers would not be bounded), and still dedupes recent ones.
    let token = store.begin_rebuild().await.expect("begin");
    let replay = |events: &'static [usize]| {
        let batch: Vec<EventEnvelope> = events.iter().map(|i| both[*i].clone()).collect();
        let token = &token;
        async move {
            store
                .record(&batch, Recording::Rebuild(token))
                .await
                .expect("replay")
        }
    };
    assert_eq!(replay(&[0, 1]).await, outcome(2, 0));
    assert_eq!(replay(&[1]).await, outcome(0, 1));
    assert!(store.finish_rebuild(&token).await.expect("finish"));
    assert_eq!(
        store.overview_at(now, 1, 1).await.expect("overview").totals,
        counters(2, 0, 0, 0, 0, 0)
    );
    // A late event recorded live during a rebuild would have been marked, and the replay
    // skips a marked late event.
    let token = store.begin_rebuild().await.expect("begin");
    store
        .record_batch(std::slice::from_ref(&late))
        .await
        .expect("live during the rebuild");
    assert_eq!(
        store
            .record(std::slice::from_ref(&late), Recording::Rebuild(&token))
            .await
            .expect("replay"),
        outcome(0, 1)
    );
    test.finish().await;
}

async fn markers_are_forgotten_once_the_window_has_passed(backend: Backend) {
    let test = backend
        .open_with(|config| CountersConfig {
            dedup_window: Duration::from_secs(120),
            ..config
        })
        .await;
    let store = &test.counters;
    let t = Utc::now();
    let batch: Vec<EventEnvelope> = (0..50)
        .map(|_| event(EventType::JobCreated, "sleep", t))
        .collect();
    let record = |at: DateTime<Utc>, events: Vec<EventEnvelope>| async move {
        store
            .record_at(&events, Recording::Live, at)
            .await
            .expect("record")
    };
    assert_eq!(record(t, batch.clone()).await, outcome(50, 0));
    // Within the window, the markers hold.
    let later = t + chrono::Duration::seconds(100);
    assert_eq!(record(later, batch.clone()).await, outcome(0, 50));

    // Long after the window, any write forgets the old markers: the same events, now late,
    // would count again, which is why the metrics engine records a late event only when the
    // event log stored it for the first time.
    let much_later = t + chrono::Duration::seconds(400);
    let unrelated = event(EventType::JobCreated, "sleep", much_later);
    assert_eq!(record(much_later, vec![unrelated]).await, outcome(1, 0));
    assert!(test.config.is_late(t, much_later));
    assert_eq!(record(much_later, batch.clone()).await, outcome(50, 0));
    test.finish().await;
}

async fn guarded_late_events_are_left_to_a_rebuild_that_began_since(backend: Backend) {
    let test = backend.open().await;
    let store = &test.counters;
    let token = store.begin_rebuild().await.expect("begin");
    assert!(store.finish_rebuild(&token).await.expect("finish"));
    let CountersState::Intact(mark) = store.state().await.expect("state") else {
        panic!("intact after a rebuild");
    };
    let now = Utc::now();
    let window = chrono::Duration::from_std(test.config.dedup_window).expect("window");
    let late = || event(EventType::JobCreated, "sleep", now - window * 2);
    let guarded = |events: Vec<EventEnvelope>, mark: IntactMark| async move {
        store
            .record(&events, Recording::LiveGuarded(&mark))
            .await
            .expect("record")
    };
    // While the mark holds, a guarded late event counts like a live one.
    assert_eq!(guarded(vec![late()], mark.clone()).await, outcome(1, 0));

    // Once a rebuild began, guarded late events are left to its replay; recent ones are not
    // guarded (their markers dedupe them).
    let _rebuild = store.begin_rebuild().await.expect("begin again");
    let recent = event(EventType::JobCreated, "sleep", now);
    assert_eq!(
        guarded(vec![late(), recent], mark.clone()).await,
        outcome(1, 1)
    );
    assert_eq!(
        store.overview_at(now, 1, 1).await.expect("overview").totals,
        counters(1, 0, 0, 0, 0, 0)
    );
    test.finish().await;
}
