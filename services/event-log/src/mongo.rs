//! The MongoDB adapter: one document per event in the [`COLLECTION`] collection.
//!
//! Key decisions:
//! - **`_id` is the eventId** (the UUID as its lowercase hyphenated string). Storing an event
//!   twice is therefore impossible by construction: a redelivered event fails with duplicate
//!   key error 11000, which [`EventLog::append_batch`] counts as a duplicate, not as an error.
//!   No second unique index is needed.
//! - **Documents keep the contract's field names** (`contractVersion`, `eventType`, `eventId`,
//!   `occurredAt`, `producer`, `correlationId`, `idempotencyKey`, `payload`), plus two derived
//!   fields: `jobId` (copied from `payload.jobId`, canonical lowercase UUID string) for the
//!   per-job index, and `occurredAtSubMillisNanos` (only when non-zero, see below).
//! - **`occurredAt` is a BSON date** so that MongoDB sorts and range-filters it natively.
//!   BSON dates have millisecond precision; the nanoseconds below the millisecond are kept in
//!   `occurredAtSubMillisNanos` so that a read gives back exactly the envelope that was written.
//!   Ordering, time filters and cursors work at millisecond precision, with eventId breaking
//!   ties.
//! - **UUIDs are strings** (`eventId`, `_id`, `jobId`, and everything inside the payload).
//! - **The payload is stored verbatim** (JSON → BSON with no interpretation). Date-time fields
//!   inside the payload (`submittedAt`, `failedAt`, ...) stay RFC 3339 strings: the payload is
//!   an open JSON object in the envelope contract, and converting its strings to BSON dates
//!   could not give back the producer's exact text (`12:00:00Z` vs `12:00:00.000Z`).
//! - **Pages are newest first** with an opaque keyset cursor on `(occurredAt, eventId)`, served
//!   by the indexes [`MongoEventLog::connect`] creates (see [`INDEX_NAMES`]).

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use mongodb::bson::{Bson, Document, RawDocumentBuf, doc};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, Collection, IndexModel};
use uuid::Uuid;

use crate::contracts::event_envelope::EventEnvelope;
use crate::contracts::event_page::EventPage;
use crate::contracts::page_cursor::PageCursor;
use crate::cursor::{CursorPosition, next_cursor};
use crate::document::{self, DocumentError};
use crate::{
    AppendOutcome, EventFilter, EventLog, EventLogError, MAX_PAGE_SIZE, RefusedEvent, Result,
};

/// Name of the collection holding the events.
pub const COLLECTION: &str = "events";

/// Index serving a job's timeline: `{jobId: 1, occurredAt: 1, _id: 1}`.
pub const JOB_TIMELINE_INDEX: &str = "jobId_occurredAt";
/// Index serving the unfiltered newest-first listing: `{occurredAt: -1, _id: -1}`.
pub const RECENT_INDEX: &str = "occurredAt_id";
/// Index serving the listing filtered by event type: `{eventType: 1, occurredAt: -1, _id: -1}`.
pub const EVENT_TYPE_INDEX: &str = "eventType_occurredAt";
/// Every index [`MongoEventLog::connect`] creates (besides MongoDB's own `_id_`, which is the
/// uniqueness of eventId).
pub const INDEX_NAMES: [&str; 3] = [JOB_TIMELINE_INDEX, RECENT_INDEX, EVENT_TYPE_INDEX];

/// Duplicate key: the event is already stored.
const DUPLICATE_KEY: i32 = 11000;

/// The event log in one MongoDB database.
#[derive(Clone, Debug)]
pub struct MongoEventLog {
    client: Client,
    database: String,
    events: Collection<Document>,
    /// The same collection, read as raw BSON: deserializing into `Document` would take a
    /// payload key such as `$date` for extended JSON and fail, so reads convert raw → Document
    /// directly (no serde).
    raw_events: Collection<RawDocumentBuf>,
}

impl MongoEventLog {
    /// Connects to `url`, uses `database`, and creates the indexes (idempotent: creating an
    /// index that exists with the same keys and name does nothing).
    pub async fn connect(url: &str, database: &str) -> Result<Self> {
        let mut options = ClientOptions::parse(url).await?;
        if options.app_name.is_none() {
            options.app_name = Some("observatory-event-log".to_string());
        }
        if options.server_selection_timeout.is_none() {
            options.server_selection_timeout = Some(Duration::from_secs(10));
        }
        let client = Client::with_options(options)?;
        let events = client.database(database).collection::<Document>(COLLECTION);
        let log = Self {
            client,
            database: database.to_string(),
            raw_events: events.clone_with_type(),
            events,
        };
        log.create_indexes().await?;
        Ok(log)
    }

    async fn create_indexes(&self) -> Result<()> {
        let index = |keys: Document, name: &str| {
            IndexModel::builder()
                .keys(keys)
                .options(IndexOptions::builder().name(name.to_string()).build())
                .build()
        };
        self.events
            .create_indexes([
                index(
                    doc! { "jobId": 1, "occurredAt": 1, "_id": 1 },
                    JOB_TIMELINE_INDEX,
                ),
                index(doc! { "occurredAt": -1, "_id": -1 }, RECENT_INDEX),
                index(
                    doc! { "eventType": 1, "occurredAt": -1, "_id": -1 },
                    EVENT_TYPE_INDEX,
                ),
            ])
            .await?;
        Ok(())
    }

    /// Names of the indexes on the events collection, as the server reports them.
    pub async fn index_names(&self) -> Result<Vec<String>> {
        Ok(self.events.list_index_names().await?)
    }

    /// The database this log uses (tests drop it when they are done).
    #[cfg(test)]
    pub(crate) fn database(&self) -> mongodb::Database {
        self.client.database(&self.database)
    }
}

#[async_trait::async_trait]
impl EventLog for MongoEventLog {
    async fn ping(&self) -> Result<()> {
        self.client
            .database(&self.database)
            .run_command(doc! { "ping": 1 })
            .await?;
        Ok(())
    }

    /// One unordered `insert_many` (the driver splits very large batches itself) of the events
    /// that MongoDB can hold; the others are refused before sending. Write errors that are
    /// duplicate keys (stored before) or documented refusals of one document are reported in
    /// the outcome; any other error fails the call, after the events that did not fail were
    /// stored (not atomic), so retrying the whole batch is still safe.
    async fn append_batch(&self, events: &[EventEnvelope]) -> Result<AppendOutcome> {
        if events.is_empty() {
            return Ok(AppendOutcome::default());
        }
        let mut refused = Vec::new();
        // Batch positions of the documents sent, by their position in `documents`.
        let mut sent = Vec::with_capacity(events.len());
        let mut documents = Vec::with_capacity(events.len());
        for (index, event) in events.iter().enumerate() {
            match document::to_document(event) {
                Ok(document) => {
                    sent.push(index);
                    documents.push(document);
                }
                Err(source) => refused.push(RefusedEvent {
                    index,
                    event_id: event.event_id.0,
                    reason: source.to_string(),
                }),
            }
        }
        let mut already_stored = Vec::new();
        if !documents.is_empty()
            && let Err(error) = self.events.insert_many(documents).ordered(false).await
        {
            let failures = settled_write_errors(&error).ok_or(error)?;
            for failure in failures {
                let Some(&index) = sent.get(failure.index) else {
                    continue;
                };
                match failure.verdict {
                    Verdict::Duplicate => already_stored.push(index),
                    Verdict::Refused => refused.push(RefusedEvent {
                        index,
                        event_id: events[index].event_id.0,
                        reason: DocumentError::Refused {
                            code: failure.code,
                            message: failure.message,
                        }
                        .to_string(),
                    }),
                }
            }
        }
        already_stored.sort_unstable();
        refused.sort_unstable_by_key(|r| r.index);
        Ok(AppendOutcome {
            inserted: events
                .len()
                .saturating_sub(already_stored.len() + refused.len()),
            duplicates: already_stored.len(),
            already_stored,
            refused,
        })
    }

    async fn events_for_job(&self, job_id: Uuid) -> Result<Vec<EventEnvelope>> {
        let documents: Vec<RawDocumentBuf> = self
            .raw_events
            .find(doc! { "jobId": job_id.to_string() })
            .sort(doc! { "occurredAt": 1, "_id": 1 })
            .await?
            .try_collect()
            .await?;
        let mut events = documents
            .into_iter()
            .map(from_stored)
            .collect::<Result<Vec<_>>>()?;
        // Within one millisecond, order by the exact instant (kept below the millisecond);
        // the sort is stable, so equal instants stay in _id order.
        events.sort_by_key(|event| event.occurred_at);
        Ok(events)
    }

    async fn list_events(
        &self,
        filter: &EventFilter,
        limit: usize,
        cursor: Option<&PageCursor>,
    ) -> Result<EventPage> {
        let limit = limit.clamp(1, MAX_PAGE_SIZE);
        let mut conditions = Vec::new();
        if let Some(job_id) = filter.job_id {
            conditions.push(doc! { "jobId": job_id.to_string() });
        }
        if let Some(event_type) = filter.event_type {
            conditions.push(doc! { "eventType": event_type.to_string() });
        }
        if let Some(after) = filter.after {
            conditions.push(doc! { "occurredAt": { "$gte": bson_date(after) } });
        }
        if let Some(before) = filter.before {
            conditions.push(doc! { "occurredAt": { "$lt": bson_date(before) } });
        }
        if let Some(cursor) = cursor {
            let position = CursorPosition::decode(cursor)?;
            let at = Bson::DateTime(mongodb::bson::DateTime::from_millis(position.millis));
            conditions.push(doc! { "$or": [
                { "occurredAt": { "$lt": at.clone() } },
                { "occurredAt": at, "_id": { "$lt": position.event_id.to_string() } },
            ] });
        }
        let query = match conditions.len() {
            0 => Document::new(),
            1 => conditions.remove(0),
            _ => doc! { "$and": conditions },
        };
        let fetch = i64::try_from(limit + 1).unwrap_or(i64::MAX);
        let documents: Vec<RawDocumentBuf> = self
            .raw_events
            .find(query)
            .sort(doc! { "occurredAt": -1, "_id": -1 })
            .limit(fetch)
            .await?
            .try_collect()
            .await?;
        let has_more = documents.len() > limit;
        let items = documents
            .into_iter()
            .take(limit)
            .map(from_stored)
            .collect::<Result<Vec<_>>>()?;
        let next_cursor = next_cursor(&items, has_more);
        Ok(EventPage { items, next_cursor })
    }
}

fn bson_date(instant: DateTime<Utc>) -> Bson {
    Bson::DateTime(mongodb::bson::DateTime::from_millis(
        instant.timestamp_millis(),
    ))
}

fn from_stored(stored: RawDocumentBuf) -> Result<EventEnvelope> {
    let id = stored
        .get_str("_id")
        .map_or_else(|_| "<no string _id>".to_string(), str::to_string);
    Document::try_from(stored)
        .map_err(DocumentError::from)
        .and_then(document::from_document)
        .map_err(|source| EventLogError::CorruptDocument { id, source })
}

/// Write error codes that MongoDB documents as properties of the document itself, so a retry
/// can only fail the same way (<https://www.mongodb.com/docs/manual/reference/error-codes/>).
const REFUSALS: &[(i32, &str)] = &[
    (2, "BadValue"),
    (9, "FailedToParse"),
    (14, "TypeMismatch"),
    (15, "Overflow"), // nested deeper than 100 levels
    (22, "InvalidBSON"),
    (52, "DollarPrefixedFieldName"),
    (53, "InvalidIdField"),
    (55, "InvalidDBRef"),
    (56, "EmptyFieldName"),
    (57, "DottedFieldName"),
    (121, "DocumentValidationFailure"),
    (10334, "BSONObjectTooLarge"),
    (17280, "KeyTooLong"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// The document was stored before.
    Duplicate,
    /// MongoDB will never store this document.
    Refused,
}

/// What MongoDB said of one document of an `insert_many`.
#[derive(Debug)]
struct WriteFailure {
    /// The document's position in what was sent.
    index: usize,
    code: i32,
    message: String,
    verdict: Verdict,
}

/// The verdict on a write error's code, or `None` when the error may pass (the server is
/// stepping down, shutting down, interrupted, out of time or space): a reason to retry.
fn verdict(code: i32) -> Option<Verdict> {
    if code == DUPLICATE_KEY {
        Some(Verdict::Duplicate)
    } else if REFUSALS.iter().any(|&(refusal, _)| refusal == code) {
        Some(Verdict::Refused)
    } else {
        None
    }
}

/// The write errors `error` holds, when each is a duplicate key or a documented refusal of
/// its document; `None` when anything else went wrong (the batch is retried).
fn settled_write_errors(error: &mongodb::error::Error) -> Option<Vec<WriteFailure>> {
    let mongodb::error::ErrorKind::InsertMany(failure) = error.kind.as_ref() else {
        return None;
    };
    if failure.write_concern_error.is_some() {
        return None;
    }
    let write_errors = failure.write_errors.as_deref().unwrap_or_default();
    if write_errors.is_empty() {
        return None;
    }
    write_errors
        .iter()
        .map(|e| {
            Some(WriteFailure {
                index: e.index,
                code: e.code,
                message: e.message.clone(),
                verdict: verdict(e.code)?,
            })
        })
        .collect()
}

/// What only the MongoDB adapter promises: its indexes and its document layout.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{TYPES, at, bounded, event, mongo_log};
    use crate::contracts::event_envelope::EventType;
    use crate::document::MAX_DOCUMENT_BYTES;

    #[tokio::test]
    async fn connect_creates_the_indexes_by_name_idempotently() {
        let log = mongo_log().await;
        let database = log.database();
        bounded(async {
            // A second connect (another process starting) must not fail on existing indexes.
            let again =
                MongoEventLog::connect(&observatory_test_support::mongodb_url(), database.name())
                    .await
                    .expect("connect again");
            again.ping().await.expect("ping");
            let names = log.index_names().await.expect("index names");
            for name in INDEX_NAMES.iter().chain(&["_id_"]) {
                assert!(
                    names.iter().any(|n| n == name),
                    "index {name} missing from {names:?}"
                );
            }
            let indexes: Vec<IndexModel> = log
                .events
                .list_indexes()
                .await
                .expect("list indexes")
                .try_collect()
                .await
                .expect("index specs");
            let specs: Vec<Document> = indexes.into_iter().map(|index| index.keys).collect();
            for keys in [
                doc! { "jobId": 1, "occurredAt": 1, "_id": 1 },
                doc! { "occurredAt": -1, "_id": -1 },
                doc! { "eventType": 1, "occurredAt": -1, "_id": -1 },
            ] {
                assert!(specs.contains(&keys), "{keys} missing from {specs:?}");
            }
        })
        .await;
        database.drop().await.expect("drop the test database");
    }

    #[tokio::test]
    async fn stored_documents_keep_contract_names_with_bson_dates() {
        let log = mongo_log().await;
        let database = log.database();
        bounded(async {
            let job = Uuid::new_v4();
            let stored = event(EventType::JobFailed, job, at(1));
            log.append_batch(std::slice::from_ref(&stored))
                .await
                .expect("append");

            let document = log
                .events
                .find_one(doc! { "_id": stored.event_id.to_string() })
                .await
                .expect("find")
                .expect("the event is stored under _id = eventId");
            assert_eq!(document.get("occurredAt"), Some(&bson_date(at(1))));
            assert_eq!(
                document.get_str("eventId").ok(),
                Some(stored.event_id.to_string().as_str())
            );
            assert_eq!(
                document.get_str("jobId").ok(),
                Some(job.to_string().as_str())
            );
            assert_eq!(document.get_str("eventType").ok(), Some("job.failed"));
            for field in [
                "contractVersion",
                "producer",
                "correlationId",
                "idempotencyKey",
                "payload",
            ] {
                assert!(
                    document.contains_key(field),
                    "{field} missing from {document}"
                );
            }
            let payload = document
                .get_document("payload")
                .expect("payload is a document");
            assert_eq!(payload.get_bool("willRetry").ok(), Some(true));
            assert_eq!(
                payload
                    .get_document("error")
                    .and_then(|e| e.get_str("code"))
                    .ok(),
                Some("intentional-failure")
            );
            // Found by a date range query, which only matches BSON dates.
            let in_range = log
                .events
                .count_documents(doc! { "occurredAt": { "$gte": bson_date(at(0)) } })
                .await
                .expect("count");
            assert_eq!(in_range, 1);
        })
        .await;
        database.drop().await.expect("drop the test database");
    }

    /// What MongoDB can never hold is refused before sending, one event at a time; the rest
    /// of the batch is stored. (The SQLite adapter stores all of these.)
    #[tokio::test]
    async fn events_beyond_mongodb_limits_are_refused_and_the_rest_is_stored() {
        let log = mongo_log().await;
        let database = log.database();
        bounded(async {
            let with = |key: &str, value: serde_json::Value| {
                let mut e = event(TYPES[0], Uuid::new_v4(), at(0));
                e.payload.insert(key.into(), value);
                e
            };
            // The stored document is level 1 and `payload` level 2: 98 more objects reach 100.
            let nested = |levels: usize| {
                (0..levels).fold(
                    serde_json::json!(1),
                    |inner, _| serde_json::json!({"a": inner}),
                )
            };
            let deepest = with("deep", nested(98));
            let too_deep = with("deep", nested(99));
            let nul_key = with("x", serde_json::json!({"a\u{0}b": 1}));
            let huge_integer = with("huge", serde_json::json!(u64::MAX));
            let too_large = with("big", serde_json::json!("x".repeat(MAX_DOCUMENT_BYTES)));
            let fine = event(TYPES[1], Uuid::new_v4(), at(1));
            let batch = [
                fine,
                too_deep,
                nul_key,
                deepest.clone(),
                huge_integer,
                too_large,
            ];
            let outcome = log.append_batch(&batch).await.expect("append");
            let refused: Vec<(usize, &str)> = outcome
                .refused
                .iter()
                .map(|r| (r.index, r.reason.as_str()))
                .collect();
            assert_eq!(
                refused.iter().map(|r| r.0).collect::<Vec<_>>(),
                [1, 2, 4, 5],
                "{refused:?}"
            );
            assert!(refused[0].1.contains("/payload/deep/a/"), "{refused:?}");
            assert!(refused[0].1.contains("100 levels"), "{refused:?}");
            assert!(refused[1].1.contains("NUL"), "{refused:?}");
            assert!(refused[2].1.contains("int64"), "{refused:?}");
            assert!(refused[3].1.contains("BSON bytes"), "{refused:?}");
            for (r, e) in outcome.refused.iter().zip([1, 2, 4, 5]) {
                assert_eq!(r.event_id, batch[e].event_id.0);
            }
            assert_eq!((outcome.inserted, outcome.duplicates), (2, 0));
            assert_eq!(log.events.count_documents(doc! {}).await.expect("count"), 2);
            let back = log
                .events_for_job(crate::job_id_of(&deepest).expect("a job id"))
                .await
                .expect("read back");
            assert_eq!(back, [deepest]);

            // Sent again: the stored ones are duplicates, the others refused again.
            let again = log.append_batch(&batch).await.expect("append again");
            assert_eq!(again.already_stored, [0, 3]);
            assert_eq!(again.refused.len(), 4);
            assert_eq!(again.inserted, 0);
        })
        .await;
        database.drop().await.expect("drop the test database");
    }

    /// Which write errors settle a document for good, by MongoDB's documented codes: a
    /// duplicate key was stored before, a refusal never will be, anything else is retried.
    #[test]
    fn write_errors_are_classified_by_mongodb_documented_codes() {
        assert_eq!(verdict(11000), Some(Verdict::Duplicate));
        for (code, name) in REFUSALS {
            assert_eq!(verdict(*code), Some(Verdict::Refused), "{name}");
        }
        // Transient by MongoDB's documentation: interrupted, stepping down, shutting down,
        // not primary, out of time, write conflicts, network and disk trouble.
        for code in [
            6, 7, 50, 64, 89, 91, 112, 189, 262, 9001, 10107, 11600, 11601, 11602, 13435, 13436,
            14031,
        ] {
            assert_eq!(verdict(code), None, "code {code} must be retried");
        }
    }
}
