//! The event log against a MongoDB wire-protocol server (each test in its own database).

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use mongodb::bson::{Bson, Document, doc};
use observatory_event_log::contracts::event_envelope::{EventEnvelope, EventType};
use observatory_event_log::contracts::page_cursor::PageCursor;
use observatory_event_log::{
    AppendOutcome, COLLECTION, EventFilter, EventLog, EventLogError, INDEX_NAMES,
};
use serde_json::Value;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(60);

/// A test's own database, dropped at the end of the test.
struct TestLog {
    log: EventLog,
    raw: mongodb::Collection<Document>,
    database: mongodb::Database,
}

impl TestLog {
    async fn new() -> Self {
        let url = observatory_test_support::mongodb_url();
        let name = observatory_test_support::unique_name();
        let log = EventLog::connect(&url, &name).await.unwrap_or_else(|e| {
            panic!(
                "MongoDB at {url} is not reachable ({e}); run `cargo xtask test`, which starts it"
            )
        });
        let client = mongodb::Client::with_uri_str(&url).await.expect("client");
        let database = client.database(&name);
        Self {
            log,
            raw: database.collection(COLLECTION),
            database,
        }
    }

    async fn stored_count(&self) -> u64 {
        self.raw.count_documents(doc! {}).await.expect("count")
    }

    async fn drop(self) {
        self.database.drop().await.expect("drop the test database");
    }
}

/// Runs a test body with a bound on its duration.
async fn bounded<F: std::future::Future<Output = ()>>(body: F) {
    tokio::time::timeout(TIMEOUT, body)
        .await
        .expect("the test took too long");
}

/// The valid instances of `schemas/events/<name>.examples.json`.
fn examples(name: &str) -> Vec<Value> {
    let path = format!(
        "{}/../../schemas/events/{name}.examples.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let examples: Value = serde_json::from_str(&text).expect("examples are JSON");
    examples["valid"]
        .as_array()
        .expect("a valid list")
        .iter()
        .map(|example| example["instance"].clone())
        .collect()
}

const EVENT_FILES: [&str; 5] = [
    "job-created",
    "job-started",
    "job-completed",
    "job-failed",
    "job-dead-lettered",
];

/// The first valid example of the event type's schema, with its own eventId, jobId and time.
fn event(event_type: EventType, job_id: Uuid, occurred_at: DateTime<Utc>) -> EventEnvelope {
    let file = match event_type {
        EventType::JobCreated => "job-created",
        EventType::JobStarted => "job-started",
        EventType::JobCompleted => "job-completed",
        EventType::JobFailed => "job-failed",
        EventType::JobDeadLettered => "job-dead-lettered",
    };
    let mut instance = examples(file).remove(0);
    instance["eventId"] = Value::from(Uuid::new_v4().to_string());
    instance["occurredAt"] = Value::from(occurred_at.to_rfc3339());
    instance["payload"]["jobId"] = Value::from(job_id.to_string());
    serde_json::from_value(instance).expect("the example is a valid EventEnvelope")
}

fn at(millis: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(1_795_435_200_000 + millis)
        .single()
        .expect("a valid instant")
}

const TYPES: [EventType; 5] = [
    EventType::JobCreated,
    EventType::JobStarted,
    EventType::JobCompleted,
    EventType::JobFailed,
    EventType::JobDeadLettered,
];

#[tokio::test]
async fn connect_creates_the_indexes_by_name_idempotently() {
    bounded(async {
        let test = TestLog::new().await;
        // A second connect (another process starting) must not fail on existing indexes.
        let again = EventLog::connect(
            &observatory_test_support::mongodb_url(),
            test.database.name(),
        )
        .await
        .expect("connect again");
        again.ping().await.expect("ping");
        let names = test.log.index_names().await.expect("index names");
        for name in INDEX_NAMES.iter().chain(&["_id_"]) {
            assert!(
                names.iter().any(|n| n == name),
                "index {name} missing from {names:?}"
            );
        }
        let specs: Vec<Document> = futures_util::TryStreamExt::try_collect(
            test.raw.list_indexes().await.expect("list indexes"),
        )
        .await
        .map(|indexes: Vec<mongodb::IndexModel>| {
            indexes.into_iter().map(|index| index.keys).collect()
        })
        .expect("index specs");
        assert!(
            specs.contains(&doc! { "jobId": 1, "occurredAt": 1, "_id": 1 }),
            "{specs:?}"
        );
        assert!(
            specs.contains(&doc! { "occurredAt": -1, "_id": -1 }),
            "{specs:?}"
        );
        assert!(
            specs.contains(&doc! { "eventType": 1, "occurredAt": -1, "_id": -1 }),
            "{specs:?}"
        );
        test.drop().await;
    })
    .await;
}

#[tokio::test]
async fn duplicates_within_and_across_batches_are_stored_once() {
    bounded(async {
        let test = TestLog::new().await;
        let job = Uuid::new_v4();
        let [a, b, c] = [0, 1, 2].map(|i| event(TYPES[i], job, at(i as i64)));

        let first = test
            .log
            .append_batch(&[a.clone(), b.clone(), a.clone()])
            .await
            .expect("first batch");
        assert_eq!(
            first,
            AppendOutcome {
                inserted: 2,
                duplicates: 1
            }
        );
        let second = test
            .log
            .append_batch(&[b.clone(), c.clone()])
            .await
            .expect("second batch");
        assert_eq!(
            second,
            AppendOutcome {
                inserted: 1,
                duplicates: 1
            }
        );
        let redelivered = test
            .log
            .append_batch(&[a.clone(), b.clone(), c.clone()])
            .await
            .expect("redelivery");
        assert_eq!(
            redelivered,
            AppendOutcome {
                inserted: 0,
                duplicates: 3
            }
        );
        assert_eq!(
            test.log.append_batch(&[]).await.expect("empty"),
            AppendOutcome::default()
        );

        assert_eq!(test.stored_count().await, 3);
        assert_eq!(
            test.log.events_for_job(job).await.expect("read"),
            vec![a, b, c]
        );
        test.drop().await;
    })
    .await;
}

#[tokio::test]
async fn stored_documents_keep_contract_names_with_bson_dates() {
    bounded(async {
        let test = TestLog::new().await;
        let job = Uuid::new_v4();
        let stored = event(EventType::JobFailed, job, at(1));
        test.log.append_batch(std::slice::from_ref(&stored)).await.expect("append");

        let document = test
            .raw
            .find_one(doc! { "_id": stored.event_id.to_string() })
            .await
            .expect("find")
            .expect("the event is stored under _id = eventId");
        assert_eq!(document.get("occurredAt"), Some(&Bson::DateTime(mongodb::bson::DateTime::from_millis(at(1).timestamp_millis()))));
        assert_eq!(document.get_str("eventId").ok(), Some(stored.event_id.to_string().as_str()));
        assert_eq!(document.get_str("jobId").ok(), Some(job.to_string().as_str()));
        assert_eq!(document.get_str("eventType").ok(), Some("job.failed"));
        for field in ["contractVersion", "producer", "correlationId", "idempotencyKey", "payload"] {
            assert!(document.contains_key(field), "{field} missing from {document}");
        }
        let payload = document.get_document("payload").expect("payload is a document");
        assert_eq!(payload.get_bool("willRetry").ok(), Some(true));
        assert_eq!(payload.get_document("error").and_then(|e| e.get_str("code")).ok(), Some("intentional-failure"));
        // Found by a date range query, which only matches BSON dates.
        let in_range = test
            .raw
            .count_documents(doc! { "occurredAt": { "$gte": Bson::DateTime(mongodb::bson::DateTime::from_millis(at(0).timestamp_millis())) } })
            .await
            .expect("count");
        assert_eq!(in_range, 1);
        test.drop().await;
    })
    .await;
}

#[tokio::test]
async fn every_valid_example_round_trips_exactly() {
    bounded(async {
        let test = TestLog::new().await;
        let mut originals = Vec::new();
        for file in EVENT_FILES {
            for mut instance in examples(file) {
                // The examples share eventIds across files; each stored event needs its own.
                instance["eventId"] = Value::from(Uuid::new_v4().to_string());
                originals.push(
                    serde_json::from_value::<EventEnvelope>(instance).expect("valid example"),
                );
            }
        }
        // An instant with nanoseconds, as a Rust producer's Utc::now() gives.
        let mut precise = originals[0].clone();
        precise.event_id = Uuid::new_v4().into();
        precise.occurred_at = "2026-11-23T12:00:00.123456789Z".parse().expect("instant");
        originals.push(precise);

        let outcome = test.log.append_batch(&originals).await.expect("append");
        assert_eq!(
            outcome,
            AppendOutcome {
                inserted: originals.len(),
                duplicates: 0
            }
        );

        let page = test
            .log
            .list_events(&EventFilter::default(), 500, None)
            .await
            .expect("list");
        assert_eq!(page.items.len(), originals.len());
        assert!(page.next_cursor.is_none());
        for original in &originals {
            let read = page
                .items
                .iter()
                .find(|e| e.event_id == original.event_id)
                .expect("every event is listed");
            assert_eq!(read, original);
            assert_eq!(
                serde_json::to_value(read).ok(),
                serde_json::to_value(original).ok()
            );
        }
        test.drop().await;
    })
    .await;
}

#[tokio::test]
async fn events_for_job_are_oldest_first() {
    bounded(async {
        let test = TestLog::new().await;
        let job = Uuid::new_v4();
        let timeline: Vec<EventEnvelope> = TYPES
            .iter()
            .enumerate()
            .map(|(i, t)| event(*t, job, at(i as i64 * 250)))
            .collect();
        // Another job's events interleaved, and the job's events delivered out of order.
        let other: Vec<EventEnvelope> = (0..3)
            .map(|i| event(TYPES[i], Uuid::new_v4(), at(i as i64 * 100)))
            .collect();
        let mut delivered: Vec<EventEnvelope> = timeline.iter().rev().cloned().collect();
        delivered.extend(other);
        test.log.append_batch(&delivered).await.expect("append");

        assert_eq!(
            test.log.events_for_job(job).await.expect("timeline"),
            timeline
        );
        assert!(
            test.log
                .events_for_job(Uuid::new_v4())
                .await
                .expect("none")
                .is_empty()
        );
        test.drop().await;
    })
    .await;
}

/// Reads every page of `filter` with `limit`, checking that each page respects the limit.
async fn all_pages(log: &EventLog, filter: &EventFilter, limit: usize) -> Vec<EventEnvelope> {
    let mut items = Vec::new();
    let mut cursor: Option<PageCursor> = None;
    for _ in 0..1000 {
        let page = log
            .list_events(filter, limit, cursor.as_ref())
            .await
            .expect("page");
        assert!(page.items.len() <= limit);
        items.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return items,
        }
    }
    panic!("pagination did not end");
}

#[tokio::test]
async fn pagination_over_120_events_has_no_gaps_or_duplicates() {
    bounded(async {
        let test = TestLog::new().await;
        let jobs: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
        // Three events per millisecond, so pages often end inside a run of equal timestamps.
        let events: Vec<EventEnvelope> = (0..120)
            .map(|i| event(TYPES[i % 5], jobs[i % 4], at((i / 3) as i64)))
            .collect();
        for batch in events.chunks(25) {
            test.log.append_batch(batch).await.expect("append");
        }
        let newest_first = |mut selected: Vec<EventEnvelope>| {
            selected.sort_by(|a, b| {
                (b.occurred_at, b.event_id.to_string())
                    .cmp(&(a.occurred_at, a.event_id.to_string()))
            });
            selected
        };

        let everything = EventFilter::default();
        for limit in [1, 7, 40, 120, 500] {
            assert_eq!(
                all_pages(&test.log, &everything, limit).await,
                newest_first(events.clone()),
                "limit {limit}"
            );
        }

        let by_type = EventFilter {
            event_type: Some(EventType::JobFailed),
            ..EventFilter::default()
        };
        let expected = newest_first(
            events
                .iter()
                .filter(|e| e.event_type == EventType::JobFailed)
                .cloned()
                .collect(),
        );
        assert_eq!(expected.len(), 24);
        assert_eq!(all_pages(&test.log, &by_type, 5).await, expected);

        // after is inclusive, before exclusive.
        let window = EventFilter {
            after: Some(at(10)),
            before: Some(at(30)),
            ..EventFilter::default()
        };
        let expected = newest_first(
            events
                .iter()
                .filter(|e| e.occurred_at >= at(10) && e.occurred_at < at(30))
                .cloned()
                .collect(),
        );
        assert_eq!(expected.len(), 60);
        assert_eq!(all_pages(&test.log, &window, 8).await, expected);

        let combined = EventFilter {
            job_id: Some(jobs[1]),
            event_type: Some(EventType::JobStarted),
            after: Some(at(5)),
            before: None,
        };
        let expected = newest_first(
            events
                .iter()
                .filter(|e| e.event_type == EventType::JobStarted && e.occurred_at >= at(5))
                .filter(|e| e.payload["jobId"] == jobs[1].to_string())
                .cloned()
                .collect(),
        );
        assert!(!expected.is_empty());
        assert_eq!(all_pages(&test.log, &combined, 2).await, expected);

        let nothing = EventFilter {
            before: Some(at(0)),
            ..EventFilter::default()
        };
        let page = test
            .log
            .list_events(&nothing, 10, None)
            .await
            .expect("empty page");
        assert!(page.items.is_empty() && page.next_cursor.is_none());
        test.drop().await;
    })
    .await;
}

#[tokio::test]
async fn a_malformed_cursor_is_a_clear_error() {
    bounded(async {
        let test = TestLog::new().await;
        for text in [
            "garbage",
            "e1.12",
            "e1.x.5f0c2a7e1d3b4c8e9f6a2b7d8e9c0a14",
            "e1.12.nope",
        ] {
            let cursor = PageCursor::try_from(text).expect("valid PageCursor text");
            let result = test
                .log
                .list_events(&EventFilter::default(), 10, Some(&cursor))
                .await;
            match result {
                Err(EventLogError::MalformedCursor { cursor, .. }) => assert_eq!(cursor, text),
                other => panic!("{text}: expected MalformedCursor, got {other:?}"),
            }
        }
        test.drop().await;
    })
    .await;
}
