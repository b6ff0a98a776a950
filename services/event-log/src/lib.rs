//! The event log: every job lifecycle event, stored once per `eventId` in MongoDB.
//!
//! The metrics engine appends what it consumes from the broker (at-least-once, so the same
//! event can arrive twice); the read model reads the log back for a job's timeline and for the
//! paginated `GET /events`. Everything going in and out is the contract's
//! [`EventEnvelope`]; the stored document is an implementation detail of this crate.
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
//!   by the indexes [`EventLog::connect`] creates (see [`INDEX_NAMES`]).

pub mod contracts;

mod document;

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, Collection, IndexModel};
use uuid::Uuid;

use crate::contracts::event_envelope::{EventEnvelope, EventType};
use crate::contracts::event_page::EventPage;
use crate::contracts::page_cursor::PageCursor;

pub use crate::document::DocumentError;

/// Name of the collection holding the events.
pub const COLLECTION: &str = "events";

/// Index serving a job's timeline: `{jobId: 1, occurredAt: 1, _id: 1}`.
pub const JOB_TIMELINE_INDEX: &str = "jobId_occurredAt";
/// Index serving the unfiltered newest-first listing: `{occurredAt: -1, _id: -1}`.
pub const RECENT_INDEX: &str = "occurredAt_id";
/// Index serving the listing filtered by event type: `{eventType: 1, occurredAt: -1, _id: -1}`.
pub const EVENT_TYPE_INDEX: &str = "eventType_occurredAt";
/// Every index [`EventLog::connect`] creates (besides MongoDB's own `_id_`, which is the
/// uniqueness of eventId).
pub const INDEX_NAMES: [&str; 3] = [JOB_TIMELINE_INDEX, RECENT_INDEX, EVENT_TYPE_INDEX];

/// Largest page [`EventLog::list_events`] returns (the read model's `limit` maximum).
pub const MAX_PAGE_SIZE: usize = 500;

/// Duplicate key: the event is already stored.
const DUPLICATE_KEY: i32 = 11000;

#[derive(Debug, thiserror::Error)]
pub enum EventLogError {
    #[error("MongoDB: {0}")]
    Mongo(#[from] mongodb::error::Error),
    /// A cursor that this crate did not produce (or that was altered).
    #[error("malformed page cursor {cursor:?}: {reason}")]
    MalformedCursor {
        cursor: String,
        reason: &'static str,
    },
    /// An event that cannot be stored as BSON (e.g. an integer beyond the range of i64).
    #[error("event {event_id} cannot be stored: {source}")]
    Unstorable {
        event_id: Uuid,
        source: DocumentError,
    },
    /// A stored document that does not read back as an EventEnvelope (written by something
    /// else, or by an incompatible version).
    #[error("stored event {id} is not a valid EventEnvelope: {source}")]
    CorruptDocument { id: String, source: DocumentError },
}

pub type Result<T, E = EventLogError> = std::result::Result<T, E>;

/// What [`EventLog::append_batch`] did with a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AppendOutcome {
    /// Events stored by this call.
    pub inserted: usize,
    /// Events that were already stored (earlier, or earlier in the same batch).
    pub duplicates: usize,
}

/// Which events [`EventLog::list_events`] returns; every field narrows the selection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    pub job_id: Option<Uuid>,
    pub event_type: Option<EventType>,
    /// Only events that occurred at or after this instant (millisecond precision).
    pub after: Option<DateTime<Utc>>,
    /// Only events that occurred before this instant (millisecond precision).
    pub before: Option<DateTime<Utc>>,
}

/// The event log in one MongoDB database.
#[derive(Clone, Debug)]
pub struct EventLog {
    client: Client,
    database: String,
    events: Collection<Document>,
}

impl EventLog {
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

    /// Checks that the server answers.
    pub async fn ping(&self) -> Result<()> {
        self.client
            .database(&self.database)
            .run_command(doc! { "ping": 1 })
            .await?;
        Ok(())
    }

    /// Names of the indexes on the events collection, as the server reports them.
    pub async fn index_names(&self) -> Result<Vec<String>> {
        Ok(self.events.list_index_names().await?)
    }

    /// Stores each event whose eventId is not stored yet, in one unordered `insert_many`
    /// (the driver splits very large batches itself). Events already stored, or repeated
    /// within `events`, are counted as duplicates; any other write error fails the call
    /// (the events that were not duplicates and did not fail are stored, so retrying the
    /// whole batch is safe).
    pub async fn append_batch(&self, events: &[EventEnvelope]) -> Result<AppendOutcome> {
        if events.is_empty() {
            return Ok(AppendOutcome::default());
        }
        let documents = events
            .iter()
            .map(|event| {
                document::to_document(event).map_err(|source| EventLogError::Unstorable {
                    event_id: event.event_id.0,
                    source,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        match self.events.insert_many(documents).ordered(false).await {
            Ok(result) => Ok(AppendOutcome {
                inserted: result.inserted_ids.len(),
                duplicates: 0,
            }),
            Err(error) => {
                let duplicates = duplicates_only(&error).ok_or(error)?;
                Ok(AppendOutcome {
                    inserted: events.len().saturating_sub(duplicates),
                    duplicates,
                })
            }
        }
    }

    /// Every stored event of one job, oldest first.
    pub async fn events_for_job(&self, job_id: Uuid) -> Result<Vec<EventEnvelope>> {
        let documents: Vec<Document> = self
            .events
            .find(doc! { "jobId": job_id.to_string() })
            .sort(doc! { "occurredAt": 1, "_id": 1 })
            .await?
            .try_collect()
            .await?;
        let mut events = documents
            .into_iter()
            .map(from_stored)
            .collect::<Result<Vec<_>>>()?;
        // Within one millisecond, order by the exact instant (kept below the millisecond).
        events.sort_by_key(|event| event.occurred_at);
        Ok(events)
    }

    /// One page of events matching `filter`, newest first. `limit` is clamped to
    /// 1..=[`MAX_PAGE_SIZE`]. Pass the previous page's `next_cursor` (with the same filter) to
    /// get the next page; `next_cursor` is absent on the last page.
    pub async fn list_events(
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
        let documents: Vec<Document> = self
            .events
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
        let next_cursor = match items.last() {
            Some(last) if has_more => Some(CursorPosition::of(last).encode()),
            _ => None,
        };
        Ok(EventPage { items, next_cursor })
    }
}

fn bson_date(instant: DateTime<Utc>) -> Bson {
    Bson::DateTime(mongodb::bson::DateTime::from_millis(
        instant.timestamp_millis(),
    ))
}

fn from_stored(stored: Document) -> Result<EventEnvelope> {
    let id = stored
        .get("_id")
        .map_or_else(|| "<no _id>".to_string(), ToString::to_string);
    document::from_document(stored).map_err(|source| EventLogError::CorruptDocument { id, source })
}

/// How many write errors `error` holds if every one of them is a duplicate key (the events
/// were stored before), or `None` when anything else went wrong.
fn duplicates_only(error: &mongodb::error::Error) -> Option<usize> {
    match error.kind.as_ref() {
        mongodb::error::ErrorKind::InsertMany(failure) => {
            if failure.write_concern_error.is_some() {
                return None;
            }
            let write_errors = failure.write_errors.as_deref().unwrap_or_default();
            let all_duplicates =
                !write_errors.is_empty() && write_errors.iter().all(|e| e.code == DUPLICATE_KEY);
            all_duplicates.then_some(write_errors.len())
        }
        _ => None,
    }
}

/// The keyset position a page ends at: the last item's `(occurredAt, eventId)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CursorPosition {
    /// occurredAt in milliseconds since the Unix epoch (the stored precision).
    millis: i64,
    event_id: Uuid,
}

impl CursorPosition {
    /// Version tag, so that a later cursor format can tell old cursors apart.
    const TAG: &'static str = "e1";

    fn of(event: &EventEnvelope) -> Self {
        Self {
            millis: event.occurred_at.timestamp_millis(),
            event_id: event.event_id.0,
        }
    }

    fn encode(self) -> PageCursor {
        let text = format!("{}.{}.{}", Self::TAG, self.millis, self.event_id.simple());
        // 2 + 1 + at most 20 + 1 + 32 characters: always within the contract's 1..=512.
        PageCursor::try_from(text).expect("an encoded cursor is always a valid PageCursor")
    }

    fn decode(cursor: &PageCursor) -> Result<Self> {
        let text = cursor.as_str();
        let malformed = |reason| EventLogError::MalformedCursor {
            cursor: text.to_string(),
            reason,
        };
        let mut parts = text.split('.');
        let (Some(tag), Some(millis), Some(event_id), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("expected three dot-separated parts"));
        };
        if tag != Self::TAG {
            return Err(malformed("unknown cursor version"));
        }
        let millis = millis
            .parse::<i64>()
            .map_err(|_| malformed("the position is not a timestamp"))?;
        let event_id = Uuid::try_parse(event_id)
            .map_err(|_| malformed("the position does not name an event"))?;
        Ok(Self { millis, event_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_positions_round_trip() {
        let position = CursorPosition {
            millis: 1_795_435_200_123,
            event_id: Uuid::new_v4(),
        };
        assert_eq!(
            CursorPosition::decode(&position.encode()).ok(),
            Some(position)
        );
    }

    #[test]
    fn malformed_cursors_are_rejected() {
        for text in [
            "x",
            "e1.12",
            "e1.12.not-a-uuid",
            "e2.12.5f0c2a7e1d3b4c8e9f6a2b7d8e9c0a14",
            "e1.twelve.5f0c2a7e1d3b4c8e9f6a2b7d8e9c0a14",
            "e1.12.5f0c2a7e1d3b4c8e9f6a2b7d8e9c0a14.extra",
        ] {
            let cursor = PageCursor::try_from(text).expect("valid PageCursor text");
            assert!(
                matches!(
                    CursorPosition::decode(&cursor),
                    Err(EventLogError::MalformedCursor { .. })
                ),
                "{text}"
            );
        }
    }
}
