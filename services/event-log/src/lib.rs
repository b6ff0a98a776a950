//! The event log: every job lifecycle event, stored once per `eventId`.
//!
//! The metrics engine appends what it consumes from the broker (at-least-once, so the same
//! event can arrive twice); the read model reads the log back for a job's timeline and for the
//! paginated `GET /events`. Everything going in and out is the contract's
//! [`EventEnvelope`]; how an adapter stores it is its own business.
//!
//! [`EventLog`] is the port; its contract is documented on the trait. Two adapters keep it:
//! - [`MongoEventLog`]: a MongoDB database, one document per event with `_id` = eventId
//!   (see the `mongo` module's documentation for the document layout and indexes).
//! - [`SqliteEventLog`]: an embedded SQLite database (a file, or memory) for
//!   `observatory up` without servers; one row per event with the envelope's JSON.
//!
//! One conformance suite (`conformance`, tests only) runs every behaviour test against both.

pub mod contracts;

#[cfg(test)]
mod conformance;
mod cursor;
mod document;
mod mongo;
mod sqlite;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::contracts::event_envelope::{EventEnvelope, EventType};
use crate::contracts::event_page::EventPage;
use crate::contracts::page_cursor::PageCursor;

pub use crate::document::DocumentError;
pub use crate::mongo::{
    COLLECTION, EVENT_TYPE_INDEX, INDEX_NAMES, JOB_TIMELINE_INDEX, MongoEventLog, RECENT_INDEX,
};
pub use crate::sqlite::SqliteEventLog;

/// Largest page [`EventLog::list_events`] returns (the read model's `limit` maximum).
pub const MAX_PAGE_SIZE: usize = 500;

/// The event log port. Consumers hold it as `Arc<dyn EventLog>`.
///
/// Every adapter keeps this contract (the conformance suite checks it against each one):
///
/// - **One record per eventId.** [`append_batch`](Self::append_batch) stores each event whose
///   eventId is not stored yet; an event already stored (by an earlier call, or earlier in the
///   same batch) is not stored again and is counted in [`AppendOutcome::duplicates`], never
///   reported as an error. Retrying a whole batch after an error is therefore always safe.
/// - **Exact round trip.** A read gives back the envelope that was written, `occurredAt`
///   included to the nanosecond and the payload verbatim.
/// - **Job index.** An event belongs to the job named by `payload.jobId` (a UUID, compared
///   case-insensitively). An event without a valid one is stored and listed, but belongs to no
///   job: it is in no timeline and never matches [`EventFilter::job_id`].
/// - **Timeline order.** [`events_for_job`](Self::events_for_job) returns a job's events
///   oldest first by the exact `occurredAt` (below the millisecond too); events with the very
///   same instant are ordered by eventId (lowercase hyphenated text, ascending).
/// - **Listing.** [`list_events`](Self::list_events) returns events matching every field of the
///   [`EventFilter`], newest first by `(occurredAt at millisecond precision, eventId text)`,
///   both descending: within one millisecond the eventId decides, not the sub-millisecond
///   remainder. `after` (inclusive) and `before` (exclusive) compare at millisecond
///   precision: both the event's instant and the bound are truncated to the millisecond
///   (towards the past) first. `limit` is clamped to `1..=`[`MAX_PAGE_SIZE`].
/// - **Keyset pagination.** `next_cursor` is present exactly when more events follow; passing
///   it back (with the same filter) continues right after the last item, so paging through a
///   log that is not written meanwhile yields every matching event once, with no gap. The
///   cursor is opaque, holds the last item's position (not an offset), has the same format for
///   every adapter, and a cursor this crate did not produce fails with
///   [`EventLogError::MalformedCursor`].
/// - **Errors.** Infrastructure failures are the adapter's variant ([`EventLogError::Mongo`],
///   [`EventLogError::Sqlite`]), retried by the caller; an event the store can never accept
///   (beyond MongoDB's documented limits, or refused by the server with an error code that
///   MongoDB documents as a property of the document) is not an error: it is listed in
///   [`AppendOutcome::refused`] and the rest of the batch is stored. A stored record that does
///   not read back as an envelope is [`EventLogError::CorruptDocument`].
#[async_trait::async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Checks that the store answers.
    async fn ping(&self) -> Result<()>;

    /// Stores each event whose eventId is not stored yet; see the trait's contract.
    async fn append_batch(&self, events: &[EventEnvelope]) -> Result<AppendOutcome>;

    /// Every stored event of one job, oldest first.
    async fn events_for_job(&self, job_id: Uuid) -> Result<Vec<EventEnvelope>>;

    /// One page of events matching `filter`, newest first. Pass the previous page's
    /// `next_cursor` (with the same filter) to get the next page.
    async fn list_events(
        &self,
        filter: &EventFilter,
        limit: usize,
        cursor: Option<&PageCursor>,
    ) -> Result<EventPage>;
}

#[derive(Debug, thiserror::Error)]
pub enum EventLogError {
    #[error("MongoDB: {0}")]
    Mongo(#[from] mongodb::error::Error),
    #[error("SQLite: {0}")]
    Sqlite(#[from] sqlx::Error),
    /// The SQLite database could not be opened (or its directory created).
    #[error(transparent)]
    SqliteOpen(#[from] observatory_sqlite::OpenError),
    /// A cursor that this crate did not produce (or that was altered).
    #[error("malformed page cursor {cursor:?}: {reason}")]
    MalformedCursor {
        cursor: String,
        reason: &'static str,
    },
    /// A stored record that does not read back as an EventEnvelope (written by something
    /// else, or by an incompatible version).
    #[error("stored event {id} is not a valid EventEnvelope: {source}")]
    CorruptDocument { id: String, source: DocumentError },
}

pub type Result<T, E = EventLogError> = std::result::Result<T, E>;

/// What [`EventLog::append_batch`] did with a batch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AppendOutcome {
    /// Events stored by this call.
    pub inserted: usize,
    /// Events that were already stored (earlier, or earlier in the same batch).
    pub duplicates: usize,
    /// The positions in the batch of those duplicates, ascending: the metrics engine counts
    /// an event older than the counters' deduplication window only when this call stored it.
    pub already_stored: Vec<usize>,
    /// Events the store refuses for good, ascending by position; the rest of the batch is
    /// stored. Retrying them cannot succeed, so the caller sets them aside (the metrics engine
    /// dead-letters them) instead of retrying the batch.
    pub refused: Vec<RefusedEvent>,
}

/// An event of a batch that the store will never accept, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedEvent {
    /// Its position in the batch.
    pub index: usize,
    pub event_id: Uuid,
    /// What the store objects to, for the dead letter's reason.
    pub reason: String,
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

/// `payload.jobId` as a UUID, when the event has one (every lifecycle event does).
pub(crate) fn job_id_of(event: &EventEnvelope) -> Option<Uuid> {
    let text = event.payload.get("jobId")?.as_str()?;
    match Uuid::try_parse(text) {
        Ok(job_id) => Some(job_id),
        Err(_) => {
            tracing::warn!(event_id = %event.event_id, job_id = text, "payload.jobId is not a UUID; the event is not indexed by job");
            None
        }
    }
}
