//! The conformance suite: every behaviour of the [`EventLog`] contract, written once against
//! `Arc<dyn EventLog>` and run against each adapter by [`conformance!`] (tests named
//! `conformance::mongo::<test>` and `conformance::sqlite::<test>`).
//!
//! MongoDB tests each use their own database on the wire-protocol server the test setup runs
//! (dropped when the test passes); SQLite tests each use a fresh in-memory database.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::contracts::event_envelope::{EventEnvelope, EventType};
use crate::contracts::page_cursor::PageCursor;
use crate::{AppendOutcome, EventFilter, EventLog, MAX_PAGE_SIZE, MongoEventLog, SqliteEventLog};

/// A bound on a test's duration, so that a hung server fails the test instead of the run.
const TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) async fn bounded<F: Future<Output = ()>>(body: F) {
    tokio::time::timeout(TIMEOUT, body)
        .await
        .expect("the test took too long");
}

/// The event log in a new MongoDB database of its own.
pub(crate) async fn mongo_log() -> MongoEventLog {
    let url = observatory_test_support::mongodb_url();
    let name = observatory_test_support::unique_name();
    MongoEventLog::connect(&url, &name)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "MongoDB at {url} is not reachable ({e}); run `cargo xtask test`, which starts it"
            )
        })
}

pub(crate) async fn sqlite_log() -> SqliteEventLog {
    SqliteEventLog::open(&observatory_sqlite::Location::Memory)
        .await
        .expect("open an in-memory SQLite event log")
}

/// Instantiates each named test body for every adapter.
macro_rules! conformance {
    ($($test:ident),+ $(,)?) => {
        mod mongo {
            $(
                #[tokio::test]
                async fn $test() {
                    let log = super::mongo_log().await;
                    let database = log.database();
                    super::bounded(super::$test(std::sync::Arc::new(log))).await;
                    database.drop().await.expect("drop the test database");
                }
            )+
        }
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    let log = super::sqlite_log().await;
                    super::bounded(super::$test(std::sync::Arc::new(log))).await;
                }
            )+
        }
    };
}

conformance!(
    ping_answers,
    duplicates_within_and_across_batches_are_stored_once,
    every_valid_example_round_trips_exactly,
    events_for_job_are_oldest_first,
    a_timeline_orders_within_a_millisecond_by_exact_instant_then_event_id,
    an_event_without_a_job_id_is_listed_but_in_no_timeline,
    each_filter_narrows_the_listing,
    listing_compares_and_orders_at_millisecond_precision,
    pagination_over_120_events_has_no_gaps_or_duplicates,
    pages_continue_after_their_cursor_while_newer_events_arrive,
    limit_is_clamped_to_one_and_the_maximum_page_size,
    a_malformed_cursor_is_a_clear_error,
);

// ---------------------------------------------------------------------------------------------
// Helpers shared with the adapter-specific tests.

/// The valid instances of `schemas/events/<name>.examples.json`.
pub(crate) fn examples(name: &str) -> Vec<Value> {
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

pub(crate) const TYPES: [EventType; 5] = [
    EventType::JobCreated,
    EventType::JobStarted,
    EventType::JobCompleted,
    EventType::JobFailed,
    EventType::JobDeadLettered,
];

/// The first valid example of the event type's schema, with its own eventId, jobId and time.
pub(crate) fn event(
    event_type: EventType,
    job_id: Uuid,
    occurred_at: DateTime<Utc>,
) -> EventEnvelope {
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

/// A fixed instant plus `millis` milliseconds.
pub(crate) fn at(millis: i64) -> DateTime<Utc> {
    at_micros(millis * 1000)
}

/// A fixed instant plus `micros` microseconds.
fn at_micros(micros: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(1_795_435_200_000)
        .single()
        .expect("a valid instant")
        + chrono::Duration::microseconds(micros)
}

/// Everything stored, as the listing sees it.
async fn stored(log: &dyn EventLog) -> Vec<EventEnvelope> {
    all_pages(log, &EventFilter::default(), MAX_PAGE_SIZE).await
}

/// Reads every page of `filter` with `limit`, checking that each page respects the limit.
async fn all_pages(log: &dyn EventLog, filter: &EventFilter, limit: usize) -> Vec<EventEnvelope> {
    let mut items = Vec::new();
    let mut cursor: Option<PageCursor> = None;
    for _ in 0..1000 {
        let page = log
            .list_events(filter, limit, cursor.as_ref())
            .await
            .expect("page");
        assert!(page.items.len() <= limit.max(1));
        assert!(page.next_cursor.is_none() || !page.items.is_empty());
        items.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return items,
        }
    }
    panic!("pagination did not end");
}

/// The listing order: `(occurredAt at millisecond precision, eventId text)`, descending.
fn newest_first(mut selected: Vec<EventEnvelope>) -> Vec<EventEnvelope> {
    selected.sort_by_key(|e| {
        std::cmp::Reverse((e.occurred_at.timestamp_millis(), e.event_id.to_string()))
    });
    selected
}

fn job_of(event: &EventEnvelope) -> &str {
    event.payload["jobId"].as_str().unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// The suite.

async fn ping_answers(log: Arc<dyn EventLog>) {
    log.ping().await.expect("ping");
}

async fn duplicates_within_and_across_batches_are_stored_once(log: Arc<dyn EventLog>) {
    let job = Uuid::new_v4();
    let [a, b, c] = [0, 1, 2].map(|i| event(TYPES[i], job, at(i as i64)));

    let first = log
        .append_batch(&[a.clone(), b.clone(), a.clone()])
        .await
        .expect("first batch");
    assert_eq!(
        first,
        AppendOutcome {
            inserted: 2,
            duplicates: 1,
            already_stored: vec![2],
            refused: Vec::new(),
        }
    );
    let second = log
        .append_batch(&[b.clone(), c.clone()])
        .await
        .expect("second batch");
    assert_eq!(
        second,
        AppendOutcome {
            inserted: 1,
            duplicates: 1,
            already_stored: vec![0],
            refused: Vec::new(),
        }
    );
    let redelivered = log
        .append_batch(&[a.clone(), b.clone(), c.clone()])
        .await
        .expect("redelivery");
    assert_eq!(
        redelivered,
        AppendOutcome {
            inserted: 0,
            duplicates: 3,
            already_stored: vec![0, 1, 2],
            refused: Vec::new(),
        }
    );
    // A redelivery with different content is still the stored event (the eventId decides).
    let mut altered = a.clone();
    altered.correlation_id = "another-correlation".to_string().try_into().expect("valid");
    assert_eq!(
        log.append_batch(&[altered]).await.expect("altered"),
        AppendOutcome {
            inserted: 0,
            duplicates: 1,
            already_stored: vec![0],
            refused: Vec::new(),
        }
    );
    assert_eq!(
        log.append_batch(&[]).await.expect("empty"),
        AppendOutcome::default()
    );

    assert_eq!(stored(&*log).await.len(), 3);
    assert_eq!(log.events_for_job(job).await.expect("read"), vec![a, b, c]);
}

async fn every_valid_example_round_trips_exactly(log: Arc<dyn EventLog>) {
    let mut originals = Vec::new();
    for file in EVENT_FILES {
        for mut instance in examples(file) {
            // The examples share eventIds across files; each stored event needs its own.
            instance["eventId"] = Value::from(Uuid::new_v4().to_string());
            originals
                .push(serde_json::from_value::<EventEnvelope>(instance).expect("valid example"));
        }
    }
    // Instants with nanoseconds (as a Rust producer's Utc::now() gives), also before 1970.
    for instant in [
        "2026-11-23T12:00:00.123456789Z",
        "1969-12-31T23:59:59.999999999Z",
    ] {
        let mut precise = originals[0].clone();
        precise.event_id = Uuid::new_v4().into();
        precise.occurred_at = instant.parse().expect("instant");
        originals.push(precise);
    }
    // Floats and awkward keys in the payload come back unchanged.
    let mut odd = originals[0].clone();
    odd.event_id = Uuid::new_v4().into();
    odd.payload.insert(
        "extra".into(),
        serde_json::json!({"$date": "not a date", "f": 0.1, "g": 1e-300, "nested": [1, -2, 3.5, null, true]}),
    );
    originals.push(odd);

    let outcome = log.append_batch(&originals).await.expect("append");
    assert_eq!(
        outcome,
        AppendOutcome {
            inserted: originals.len(),
            duplicates: 0,
            already_stored: Vec::new(),
            refused: Vec::new(),
        }
    );

    let page = log
        .list_events(&EventFilter::default(), MAX_PAGE_SIZE, None)
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
}

async fn events_for_job_are_oldest_first(log: Arc<dyn EventLog>) {
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
    log.append_batch(&delivered).await.expect("append");

    assert_eq!(log.events_for_job(job).await.expect("timeline"), timeline);
    assert!(
        log.events_for_job(Uuid::new_v4())
            .await
            .expect("none")
            .is_empty()
    );
}

async fn a_timeline_orders_within_a_millisecond_by_exact_instant_then_event_id(
    log: Arc<dyn EventLog>,
) {
    let job = Uuid::new_v4();
    let previous_millisecond = event(TYPES[0], job, at_micros(-100));
    let early = event(TYPES[1], job, at_micros(200));
    let mut same_instant = [500, 500].map(|us| event(TYPES[2], job, at_micros(us)));
    same_instant.sort_by_key(|e| e.event_id.to_string());
    let late = event(TYPES[3], job, at_micros(700));
    let next_millisecond = event(TYPES[4], job, at_micros(1000));
    let expected = vec![
        previous_millisecond.clone(),
        early.clone(),
        same_instant[0].clone(),
        same_instant[1].clone(),
        late.clone(),
        next_millisecond.clone(),
    ];
    // Delivered in an order that neither time nor eventId gives.
    let delivered = [
        late,
        same_instant[1].clone(),
        next_millisecond,
        early,
        previous_millisecond,
        same_instant[0].clone(),
    ];
    for event in delivered {
        log.append_batch(&[event]).await.expect("append");
    }
    assert_eq!(log.events_for_job(job).await.expect("timeline"), expected);
}

async fn an_event_without_a_job_id_is_listed_but_in_no_timeline(log: Arc<dyn EventLog>) {
    let job = Uuid::new_v4();
    let mut not_a_uuid = event(TYPES[0], job, at(1));
    not_a_uuid
        .payload
        .insert("jobId".into(), Value::from("not-a-uuid"));
    let mut missing = event(TYPES[1], job, at(2));
    missing.payload.remove("jobId");
    // An upper-case jobId is the same job.
    let mut upper = event(TYPES[2], job, at(3));
    upper
        .payload
        .insert("jobId".into(), Value::from(job.to_string().to_uppercase()));
    log.append_batch(&[not_a_uuid.clone(), missing.clone(), upper.clone()])
        .await
        .expect("append");

    assert_eq!(
        stored(&*log).await,
        vec![upper.clone(), missing, not_a_uuid]
    );
    assert_eq!(
        log.events_for_job(job).await.expect("timeline"),
        vec![upper.clone()]
    );
    let by_job = EventFilter {
        job_id: Some(job),
        ..EventFilter::default()
    };
    assert_eq!(all_pages(&*log, &by_job, 10).await, vec![upper]);
}

async fn each_filter_narrows_the_listing(log: Arc<dyn EventLog>) {
    let jobs: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    let events: Vec<EventEnvelope> = (0..45)
        .map(|i| event(TYPES[i % 5], jobs[i % 3], at(i as i64 * 10)))
        .collect();
    log.append_batch(&events).await.expect("append");
    let expect = |keep: &dyn Fn(&EventEnvelope) -> bool| {
        newest_first(events.iter().filter(|e| keep(e)).cloned().collect())
    };
    let filters: Vec<(EventFilter, Vec<EventEnvelope>)> = vec![
        (
            EventFilter {
                job_id: Some(jobs[1]),
                ..EventFilter::default()
            },
            expect(&|e| job_of(e) == jobs[1].to_string()),
        ),
        (
            EventFilter {
                event_type: Some(EventType::JobCompleted),
                ..EventFilter::default()
            },
            expect(&|e| e.event_type == EventType::JobCompleted),
        ),
        // after is inclusive ...
        (
            EventFilter {
                after: Some(at(200)),
                ..EventFilter::default()
            },
            expect(&|e| e.occurred_at >= at(200)),
        ),
        // ... and before exclusive.
        (
            EventFilter {
                before: Some(at(200)),
                ..EventFilter::default()
            },
            expect(&|e| e.occurred_at < at(200)),
        ),
        (
            EventFilter {
                job_id: Some(jobs[2]),
                event_type: Some(EventType::JobFailed),
                after: Some(at(50)),
                before: Some(at(400)),
            },
            expect(&|e| {
                job_of(e) == jobs[2].to_string()
                    && e.event_type == EventType::JobFailed
                    && e.occurred_at >= at(50)
                    && e.occurred_at < at(400)
            }),
        ),
        (
            EventFilter {
                job_id: Some(Uuid::new_v4()),
                ..EventFilter::default()
            },
            Vec::new(),
        ),
        (
            EventFilter {
                after: Some(at(300)),
                before: Some(at(300)),
                ..EventFilter::default()
            },
            Vec::new(),
        ),
    ];
    for (filter, expected) in filters {
        for limit in [2, MAX_PAGE_SIZE] {
            assert_eq!(
                all_pages(&*log, &filter, limit).await,
                expected,
                "{filter:?}, limit {limit}"
            );
        }
    }
}

async fn listing_compares_and_orders_at_millisecond_precision(log: Arc<dyn EventLog>) {
    let job = Uuid::new_v4();
    // Five events in one millisecond (sub-millisecond instants in both orders relative to
    // their eventIds), one in the millisecond before and one after.
    let inside: Vec<EventEnvelope> = [100, 900, 300, 700, 500]
        .into_iter()
        .map(|us| event(TYPES[0], job, at_micros(us)))
        .collect();
    let before = event(TYPES[1], job, at_micros(-1));
    let after = event(TYPES[2], job, at_micros(1000));
    let mut all = inside.clone();
    all.extend([before.clone(), after.clone()]);
    log.append_batch(&all).await.expect("append");

    // Within the millisecond the eventId orders the listing, on every page size.
    let expected = newest_first(all.clone());
    assert_eq!(expected.first(), Some(&after));
    assert_eq!(expected.last(), Some(&before));
    for limit in [1, 2, 3, MAX_PAGE_SIZE] {
        assert_eq!(
            all_pages(&*log, &EventFilter::default(), limit).await,
            expected,
            "limit {limit}"
        );
    }

    // Bounds are truncated to the millisecond: `after` late in the millisecond still
    // includes all of it, `before` late in it still excludes all of it.
    let late_in_it = at_micros(950);
    let from = EventFilter {
        after: Some(late_in_it),
        ..EventFilter::default()
    };
    let mut expected_from = inside.clone();
    expected_from.push(after);
    assert_eq!(
        all_pages(&*log, &from, 2).await,
        newest_first(expected_from)
    );
    let until = EventFilter {
        before: Some(late_in_it),
        ..EventFilter::default()
    };
    assert_eq!(all_pages(&*log, &until, 2).await, vec![before]);
    let within = EventFilter {
        after: Some(at_micros(999)),
        before: Some(at_micros(1001)),
        ..EventFilter::default()
    };
    assert_eq!(all_pages(&*log, &within, 2).await, newest_first(inside));
}

async fn pagination_over_120_events_has_no_gaps_or_duplicates(log: Arc<dyn EventLog>) {
    let jobs: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
    // Three events per millisecond, so pages often end inside a run of equal timestamps.
    let events: Vec<EventEnvelope> = (0..120)
        .map(|i| event(TYPES[i % 5], jobs[i % 4], at((i / 3) as i64)))
        .collect();
    for batch in events.chunks(25) {
        log.append_batch(batch).await.expect("append");
    }

    let everything = EventFilter::default();
    for limit in [1, 7, 40, 119, 120, 500] {
        assert_eq!(
            all_pages(&*log, &everything, limit).await,
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
    assert_eq!(all_pages(&*log, &by_type, 5).await, expected);

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
    assert_eq!(all_pages(&*log, &window, 8).await, expected);

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
            .filter(|e| job_of(e) == jobs[1].to_string())
            .cloned()
            .collect(),
    );
    assert!(!expected.is_empty());
    assert_eq!(all_pages(&*log, &combined, 2).await, expected);

    // A full last page says there is nothing more (no empty trailing page).
    let page = log
        .list_events(&everything, 120, None)
        .await
        .expect("one page");
    assert_eq!(page.items.len(), 120);
    assert!(page.next_cursor.is_none());
}

async fn pages_continue_after_their_cursor_while_newer_events_arrive(log: Arc<dyn EventLog>) {
    let job = Uuid::new_v4();
    let events: Vec<EventEnvelope> = (0..10)
        .map(|i| event(TYPES[i % 5], job, at(i as i64)))
        .collect();
    log.append_batch(&events).await.expect("append");
    let everything = EventFilter::default();
    let first = log
        .list_events(&everything, 4, None)
        .await
        .expect("first page");
    let cursor = first.next_cursor.clone().expect("more pages");

    // Newer events (which an offset would shift the next page by) and one older event.
    let newer: Vec<EventEnvelope> = (0..3).map(|i| event(TYPES[0], job, at(100 + i))).collect();
    let older = event(TYPES[0], job, at(-1));
    let mut late = newer.clone();
    late.push(older.clone());
    log.append_batch(&late).await.expect("append late");

    let mut rest = Vec::new();
    let mut cursor = Some(cursor);
    while let Some(current) = cursor {
        let page = log
            .list_events(&everything, 4, Some(&current))
            .await
            .expect("page");
        rest.extend(page.items);
        cursor = page.next_cursor;
    }
    let mut seen = first.items.clone();
    seen.extend(rest);
    let mut expected = newest_first(events);
    expected.push(older);
    assert_eq!(seen, expected);
}

async fn limit_is_clamped_to_one_and_the_maximum_page_size(log: Arc<dyn EventLog>) {
    let job = Uuid::new_v4();
    let events: Vec<EventEnvelope> = (0..=MAX_PAGE_SIZE)
        .map(|i| event(TYPES[i % 5], job, at(i as i64)))
        .collect();
    log.append_batch(&events).await.expect("append");
    let expected = newest_first(events);
    let everything = EventFilter::default();

    let smallest = log
        .list_events(&everything, 0, None)
        .await
        .expect("limit 0");
    assert_eq!(smallest.items, expected[..1]);
    assert!(smallest.next_cursor.is_some());

    let largest = log
        .list_events(&everything, usize::MAX, None)
        .await
        .expect("huge limit");
    assert_eq!(largest.items, expected[..MAX_PAGE_SIZE]);
    let last = log
        .list_events(&everything, usize::MAX, largest.next_cursor.as_ref())
        .await
        .expect("last page");
    assert_eq!(last.items, expected[MAX_PAGE_SIZE..]);
    assert!(last.next_cursor.is_none());
}

async fn a_malformed_cursor_is_a_clear_error(log: Arc<dyn EventLog>) {
    log.append_batch(&[event(TYPES[0], Uuid::new_v4(), at(0))])
        .await
        .expect("append");
    // Text outside the contract's pattern is not a PageCursor at all.
    for text in [
        "garbage",
        "e1.12.5f0c2a7e1d3b4c8e9f6a2b7d8e9c0a14",
        "c1.x.5f0c",
    ] {
        assert!(PageCursor::try_from(text).is_err(), "{text}");
    }
    // Any text of the pattern is a position: a page starts after it, whoever made it. (Year 1:
    // MongoDB holds any BSON date, but its Python stand-in only years 1 to 9999.)
    let before_everything =
        PageCursor::try_from("c1.-62135596800000000.00000000000000000000000000000000")
            .expect("the pattern");
    let page = log
        .list_events(&EventFilter::default(), 10, Some(&before_everything))
        .await
        .expect("a page");
    assert!(page.items.is_empty());
    let after_everything =
        PageCursor::try_from("c1.253402300799999000.ffffffffffffffffffffffffffffffff")
            .expect("the pattern");
    let page = log
        .list_events(&EventFilter::default(), 10, Some(&after_everything))
        .await
        .expect("a page");
    assert_eq!(page.items.len(), 1);
}
