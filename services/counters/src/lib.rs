//! Job counters, throughput buckets and the live event feed: the [`Counters`] port and its
//! adapters, [`RedisCounters`] (deployments) and [`SqliteCounters`] (`observatory up`, no
//! servers).
//!
//! The metrics engine records every lifecycle event it consumes; the read model builds the
//! contract's [`Overview`] from the counters and streams the feed to the UIs. Delivery is
//! at-least-once, so recording is idempotent: an event is counted (and published) once per
//! eventId, however often it is redelivered (see [`Counters`] for the window this holds in
//! and what callers do beyond it). The contract
//! every adapter keeps is documented on [`Counters`]; one conformance suite (`conformance`,
//! tests only) holds both adapters to it.
//!
//! Shared decisions (the adapters document how they store them):
//! - **Counters**, named as in the contract's `JobCounters`: `submitted` (job.created),
//!   `started`, `completed`, `failed` (every job.failed), `retried` (job.failed with
//!   `payload.willRetry = true`), `deadLettered`; kept in total and per job type.
//! - **Bounded type cardinality**: the built-in types (sleep, compute, fail) always have their
//!   own counters; the first [`CountersConfig::max_custom_types`] other types seen get theirs
//!   (decided atomically with the counting, so concurrent recorders agree); every later type,
//!   and anything that is not a valid type name, is counted under [`OTHER_TYPE`].
//! - **Throughput**: recorded in buckets of [`CountersConfig::bucket_seconds`] (submitted,
//!   completed, failed) keyed by the event's `occurredAt`, each kept
//!   [`CountersConfig::bucket_retention`] after its start. [`Counters::overview`] sums them
//!   into buckets of any multiple of that width.
//! - Batches above [`MAX_EVENTS_PER_WRITE`] are written in several atomic writes, so one
//!   write never blocks the store long; each event is still counted all or nothing.

pub mod contracts;
mod redis;
mod sqlite;

#[cfg(test)]
mod conformance;

use std::collections::BTreeMap;
use std::num::NonZeroU64;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use futures_util::Stream;

use crate::contracts::event_envelope::{EventEnvelope, EventType};
use crate::contracts::overview::{JobCounters, JobTypeCounters, Overview, ThroughputBucket};

pub use crate::redis::RedisCounters;
pub use crate::sqlite::{FEED_CAPACITY, SqliteCounters};

/// The job types that always have their own counters.
pub const BUILT_IN_TYPES: [&str; 3] = ["sleep", "compute", "fail"];
/// The type under which events of types beyond the cardinality cap are counted.
pub const OTHER_TYPE: &str = "other";
/// Largest number of events recorded by one atomic write (a Redis script call, a SQLite
/// transaction).
pub const MAX_EVENTS_PER_WRITE: usize = 500;

const SUBMITTED: &str = "submitted";
const STARTED: &str = "started";
const COMPLETED: &str = "completed";
const FAILED: &str = "failed";
const RETRIED: &str = "retried";
const DEAD_LETTERED: &str = "deadLettered";
/// The throughput bucket fields, in the order of [`BucketCounts`].
const BUCKET_FIELDS: [&str; 3] = [SUBMITTED, COMPLETED, FAILED];
/// Submitted, completed and failed events in one throughput bucket.
type BucketCounts = [u64; 3];

#[derive(Debug, thiserror::Error)]
pub enum CountersError {
    #[error("Redis: {0}")]
    Redis(#[from] ::redis::RedisError),
    #[error("unexpected Redis reply: {0}")]
    UnexpectedReply(#[from] ::redis::ParsingError),
    #[error("SQLite: {0}")]
    Sqlite(#[from] sqlx::Error),
    #[error(transparent)]
    SqliteOpen(#[from] observatory_sqlite::OpenError),
    #[error("cannot migrate the counters' SQLite schema: {0}")]
    SqliteMigration(#[from] sqlx::migrate::MigrateError),
    /// The write was abandoned because the runtime is shutting down.
    #[error("the counters' write was cancelled (shutting down)")]
    Cancelled,
    #[error("event {event_id} cannot be published: {source}")]
    Serialize {
        event_id: String,
        source: serde_json::Error,
    },
    /// A message on the feed channel that is not an EventEnvelope (published by something
    /// else, or by an incompatible version).
    /// A rebuild's write after another rebuild began (or after the store lost the rebuild's
    /// mark): nothing of it was counted; the rebuild must stop.
    #[error(
        "this rebuild of the counters was superseded (another began, or the store lost its mark)"
    )]
    RebuildSuperseded,
    #[error("message on the live feed is not an EventEnvelope: {0}")]
    MalformedFeedMessage(serde_json::Error),
    /// The subscriber fell more than the feed's capacity behind (embedded adapter): `missed`
    /// events were skipped, the feed goes on with the next one.
    #[error("the live feed skipped {missed} events this subscriber did not read in time")]
    FeedLagged { missed: u64 },
    #[error(
        "invalid throughput buckets: {reason} (recorded width {recorded_seconds} s, retention {retention_seconds} s)"
    )]
    InvalidBuckets {
        reason: &'static str,
        recorded_seconds: u64,
        retention_seconds: u64,
    },
    #[error("counter {field} holds {value:?}, not a count")]
    CorruptCounter { field: String, value: String },
}

pub type Result<T, E = CountersError> = std::result::Result<T, E>;

/// Settings of one deployment (or test) of the counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountersConfig {
    /// The namespace: every Redis key and the feed channel start with `<key_prefix>:`; in
    /// SQLite every row is keyed by it.
    pub key_prefix: String,
    /// The deduplication window: an event whose `occurredAt` is within it is deduplicated by
    /// its eventId's marker, kept until the window has passed since it occurred; an older
    /// event is *late* (see [`Counters`]). Memory is about one marker per event of the
    /// last window.
    pub dedup_window: Duration,
    /// Width of the recorded throughput buckets, in seconds (at least 1).
    pub bucket_seconds: u64,
    /// How long a throughput bucket is kept after its start.
    pub bucket_retention: Duration,
    /// How many job types besides the built-in ones get their own counters.
    pub max_custom_types: usize,
}

impl CountersConfig {
    pub fn new(key_prefix: impl Into<String>) -> Self {
        Self {
            key_prefix: key_prefix.into(),
            dedup_window: Duration::from_secs(3600),
            bucket_seconds: 1,
            bucket_retention: Duration::from_secs(3600),
            max_custom_types: 20,
        }
    }

    /// The configuration an adapter runs with: a bucket width of at least 1 s.
    fn normalized(self) -> Self {
        Self {
            bucket_seconds: self.bucket_seconds.max(1),
            ..self
        }
    }

    /// The deduplication window in whole seconds (at least 1).
    fn window_seconds(&self) -> i64 {
        i64::try_from(self.dedup_window.as_secs().max(1)).unwrap_or(i64::MAX)
    }

    /// Whether an event that occurred at `occurred_at` is late at `now`: older than the
    /// deduplication window, so its marker may be gone. Callers record a late event live
    /// only when the event log stored it for the first time (see [`Counters`]).
    pub fn is_late(&self, occurred_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        occurred_at.timestamp() < now.timestamp().saturating_sub(self.window_seconds())
    }

    /// Start (Unix seconds) of the minute of markers holding an event of `occurred_at`; a
    /// minute's markers are kept until [`MARKER_MINUTE`] plus the window after its start.
    fn marker_minute(occurred_at: DateTime<Utc>) -> i64 {
        occurred_at.timestamp().div_euclid(MARKER_MINUTE) * MARKER_MINUTE
    }

    fn bucket_width(&self) -> i64 {
        i64::try_from(self.bucket_seconds).unwrap_or(i64::MAX)
    }

    fn retention_seconds(&self) -> i64 {
        i64::try_from(self.bucket_retention.as_secs()).unwrap_or(i64::MAX)
    }

    /// Start (Unix seconds) of the recorded bucket holding `instant`.
    fn bucket_start(&self, instant: DateTime<Utc>) -> i64 {
        let width = self.bucket_width();
        instant.timestamp().div_euclid(width) * width
    }
}

/// What [`Counters::record_batch`] did with a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecordOutcome {
    /// Events counted (and published) by this call.
    pub counted: usize,
    /// Events that had been counted before (earlier, or earlier in the same batch).
    pub duplicates: usize,
}

/// Markers are grouped by the minute their event occurred in.
const MARKER_MINUTE: i64 = 60;
/// How long a rebuild's mark lasts unless renewed ([`Counters::renew_rebuild`]): a rebuilder
/// that died is replaced after this.
pub const REBUILD_LEASE: Duration = Duration::from_secs(60);

/// How events are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recording<'a> {
    /// As they happen: published on the live feed; a late event is marked as counted.
    Live,
    /// [`Recording::Live`], except that a late event is counted (and marked) only while the
    /// counters are still in the intact state `mark` (read before its events were appended
    /// to the event log): once a rebuild began, its replay counts them, so it is left to it.
    LiveGuarded(&'a IntactMark),
    /// A replay of the event log by the rebuild holding this token (from
    /// [`Counters::begin_rebuild`]): nothing is published and late events are not marked
    /// (the log holds each event once); refused with [`CountersError::RebuildSuperseded`]
    /// once another rebuild began.
    Rebuild(&'a RebuildToken),
}

/// The mark of one rebuild of the counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildToken(String);

impl RebuildToken {
    fn new() -> Self {
        Self(format!("rebuilding:{}", uuid::Uuid::new_v4()))
    }

    fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether the counters hold everything counted since they began.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CountersState {
    /// Built (or rebuilt) and kept since; the mark changes with every rebuild.
    Intact(IntactMark),
    /// A rebuild is under way (its lease has not run out).
    Rebuilding,
    /// Never built, or the store lost them (a Redis without persistence restarted): rebuild
    /// them from the event log.
    Lost,
}

/// The mark of intact counters, new with every rebuild (see [`Recording::LiveGuarded`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntactMark(String);

impl IntactMark {
    fn new() -> Self {
        Self(format!("{INTACT}{}", uuid::Uuid::new_v4()))
    }

    fn as_str(&self) -> &str {
        &self.0
    }

    /// The mark a stored state value names, if it is one of intact counters.
    fn parse(state: &str) -> Option<Self> {
        state.starts_with(INTACT).then(|| Self(state.to_owned()))
    }
}

/// The state values: an [`IntactMark`] starts with this; a rebuild's token does not.
const INTACT: &str = "intact:";

/// The live feed: each newly counted event, in the order they were counted.
pub type EventFeed = Pin<Box<dyn Stream<Item = Result<EventEnvelope>> + Send>>;

/// The counters port. Consumers hold an `Arc<dyn Counters>`.
///
/// The contract every adapter keeps (checked by the conformance suite):
/// - **Idempotence**: an event whose `occurredAt` is within the deduplication window
///   ([`CountersConfig::dedup_window`]) is counted, and published on the feed, at most once
///   per eventId, however often and however concurrently it is recorded (repeats inside one
///   batch included): its marker is kept until the window has passed since it occurred.
///   A *late* event ([`CountersConfig::is_late`]) may have lost its marker, so the caller
///   decides: it records a late event live only when the event log stored it for the first
///   time (an event stored before was counted then), and guarded
///   ([`Recording::LiveGuarded`]) so that it is left to a rebuild that began meanwhile; a
///   late event recorded live is marked for another window, so a rebuild does not count it
///   again. Each event is counted all or nothing: a crash never leaves it half counted.
///   Markers are therefore bounded by the events of one window, whatever the uptime.
/// - **State**: [`Counters::state`] says whether the counters are intact; a store that lost
///   them (or never had them) says [`CountersState::Lost`]. A rebuild
///   ([`Counters::begin_rebuild`], replays with [`Recording::Rebuild`], renewed at least
///   every [`REBUILD_LEASE`], [`Counters::finish_rebuild`]) is exclusive: beginning one
///   supersedes any other, whose later writes are refused.
/// - **Counters**: `submitted` (job.created), `started`, `completed`, `failed` (every
///   job.failed), `retried` (job.failed with `payload.willRetry = true`), `deadLettered`, in
///   total and per job type. The built-in types always have their own counters, the first
///   [`CountersConfig::max_custom_types`] other valid type names get theirs, everything
///   else is counted under [`OTHER_TYPE`]; the overview lists types alphabetically with
///   `other` last.
/// - **Throughput**: job.created, job.completed and job.failed are counted in the recorded
///   bucket holding their `occurredAt` (not the time of recording); a bucket is kept
///   [`CountersConfig::bucket_retention`] after its start (events older than that are not
///   in the throughput).
/// - **Feed**: a subscriber receives every event counted while it is subscribed, once, in
///   the order counted, and nothing counted before [`Counters::subscribe`] returned (no
///   history). Duplicates are never published. A subscriber too slow for the adapter's
///   buffer loses events: Redis disconnects it (the stream ends), SQLite yields one
///   [`CountersError::FeedLagged`] item and goes on.
#[async_trait::async_trait]
pub trait Counters: Send + Sync + 'static {
    /// Checks that the store answers.
    async fn ping(&self) -> Result<()>;

    fn config(&self) -> &CountersConfig;

    /// Counts and publishes each event whose eventId was not counted before, in atomic
    /// writes of at most [`MAX_EVENTS_PER_WRITE`] events ([`Recording::Live`]).
    async fn record_batch(&self, events: &[EventEnvelope]) -> Result<RecordOutcome> {
        self.record(events, Recording::Live).await
    }

    /// Records `events` live or as part of a rebuild (see [`Recording`]).
    async fn record(
        &self,
        events: &[EventEnvelope],
        recording: Recording<'_>,
    ) -> Result<RecordOutcome> {
        self.record_at(events, recording, Utc::now()).await
    }

    /// [`Counters::record`] as of `now` (which decides what is late and which markers are
    /// old enough to forget).
    async fn record_at(
        &self,
        events: &[EventEnvelope],
        recording: Recording<'_>,
        now: DateTime<Utc>,
    ) -> Result<RecordOutcome>;

    /// Whether the counters are intact, being rebuilt, or lost.
    async fn state(&self) -> Result<CountersState>;

    /// Forgets everything of this prefix (counters, types, throughput, markers) and marks
    /// the counters as being rebuilt by the returned token, superseding any other rebuild.
    /// Followed by a replay of the whole event log, it rebuilds the counters.
    async fn begin_rebuild(&self) -> Result<RebuildToken>;

    /// Extends the rebuild's lease by [`REBUILD_LEASE`]; `false` when it was superseded (or
    /// the store lost its mark), and the rebuild must stop.
    async fn renew_rebuild(&self, token: &RebuildToken) -> Result<bool>;

    /// Marks the counters intact; `false` when the rebuild was superseded (or the store lost
    /// its mark meanwhile), and nothing was marked.
    async fn finish_rebuild(&self, token: &RebuildToken) -> Result<bool>;

    /// Subscribes to the live feed: every event counted after this returns is delivered.
    /// The stream ends when the subscription is lost (subscribe again to resume).
    async fn subscribe(&self) -> Result<EventFeed>;

    /// The overview now: totals, per-type counters and the last `buckets` throughput buckets
    /// of `bucket_seconds` each (the last one is the current, still filling bucket).
    async fn overview(&self, buckets: usize, bucket_seconds: u64) -> Result<Overview> {
        self.overview_at(Utc::now(), buckets, bucket_seconds).await
    }

    /// The overview as of `now` (whose bucket is the last throughput bucket).
    /// `bucket_seconds` must be a positive multiple of the recorded width, and the buckets
    /// must not reach back further than the retention ([`CountersError::InvalidBuckets`]).
    async fn overview_at(
        &self,
        now: DateTime<Utc>,
        buckets: usize,
        bucket_seconds: u64,
    ) -> Result<Overview>;
}

/// Which throughput buckets an overview reports, and how they are summed from the recorded
/// ones.
struct BucketPlan {
    /// Starts (Unix seconds) of the reported buckets, oldest first.
    starts: Vec<i64>,
    width: i64,
    seconds: NonZeroU64,
    recorded_width: i64,
}

impl BucketPlan {
    /// The `buckets` buckets of `bucket_seconds` ending with the one holding `now`.
    fn new(
        config: &CountersConfig,
        now: DateTime<Utc>,
        buckets: usize,
        bucket_seconds: u64,
    ) -> Result<Self> {
        let invalid = |reason| CountersError::InvalidBuckets {
            reason,
            recorded_seconds: config.bucket_seconds,
            retention_seconds: config.bucket_retention.as_secs(),
        };
        let seconds = NonZeroU64::new(bucket_seconds)
            .filter(|s| s.get().is_multiple_of(config.bucket_seconds))
            .ok_or_else(|| {
                invalid("bucket_seconds must be a positive multiple of the recorded width")
            })?;
        let span = u64::try_from(buckets)
            .ok()
            .and_then(|n| n.checked_mul(bucket_seconds));
        if span.is_none_or(|span| span > config.bucket_retention.as_secs()) {
            return Err(invalid("the buckets reach back beyond the retention"));
        }
        // Both fit an i64: bounded by the retention, checked above.
        let width = i64::try_from(bucket_seconds).unwrap_or(i64::MAX);
        let count = i64::try_from(buckets).unwrap_or(0);
        let current = now.timestamp().div_euclid(width) * width;
        Ok(Self {
            starts: (0..count)
                .rev()
                .map(|back| current - back * width)
                .collect(),
            width,
            seconds,
            recorded_width: config.bucket_width(),
        })
    }

    /// Starts of the recorded buckets the reported ones consist of, oldest first.
    fn recorded_starts(&self) -> impl Iterator<Item = i64> + '_ {
        let parts = self.width / self.recorded_width;
        self.starts
            .iter()
            .flat_map(move |start| (0..parts).map(move |k| start + k * self.recorded_width))
    }

    /// The reported range of recorded bucket starts, `[from, until)`.
    fn range(&self) -> (i64, i64) {
        match (self.starts.first(), self.starts.last()) {
            (Some(first), Some(last)) => (*first, last + self.width),
            _ => (0, 0),
        }
    }

    /// The reported buckets, summing `recorded` (by recorded bucket start).
    fn throughput(&self, recorded: &BTreeMap<i64, BucketCounts>) -> Vec<ThroughputBucket> {
        self.starts
            .iter()
            .map(|&start| {
                let mut sums: BucketCounts = [0; 3];
                for counts in recorded.range(start..start + self.width).map(|(_, c)| c) {
                    for (sum, count) in sums.iter_mut().zip(counts) {
                        *sum += count;
                    }
                }
                let [submitted, completed, failed] = sums;
                ThroughputBucket {
                    start: Utc
                        .timestamp_opt(start, 0)
                        .single()
                        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
                    seconds: self.seconds,
                    submitted,
                    completed,
                    failed,
                }
            })
            .collect()
    }
}

/// The per-type counters in the overview's order: alphabetical, with the catch-all last.
fn by_type_list(counters: BTreeMap<String, JobCounters>) -> Vec<JobTypeCounters> {
    let mut list: Vec<JobTypeCounters> = counters
        .into_iter()
        .map(|(type_, counters)| JobTypeCounters { type_, counters })
        .collect();
    list.sort_by_key(|t| (t.type_ == OTHER_TYPE, t.type_.clone()));
    list
}

/// The counters an event increments.
fn counters_of(event: &EventEnvelope) -> Vec<&'static str> {
    match event.event_type {
        EventType::JobCreated => vec![SUBMITTED],
        EventType::JobStarted => vec![STARTED],
        EventType::JobCompleted => vec![COMPLETED],
        EventType::JobFailed => {
            let will_retry = event
                .payload
                .get("willRetry")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false);
            if will_retry {
                vec![FAILED, RETRIED]
            } else {
                vec![FAILED]
            }
        }
        EventType::JobDeadLettered => vec![DEAD_LETTERED],
    }
}

/// The throughput field an event increments, as an index into [`BUCKET_FIELDS`], if any.
fn bucket_field_of(event_type: EventType) -> Option<usize> {
    match event_type {
        EventType::JobCreated => Some(0),
        EventType::JobCompleted => Some(1),
        EventType::JobFailed => Some(2),
        EventType::JobStarted | EventType::JobDeadLettered => None,
    }
}

/// How an event's job type is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TypeClass {
    /// A built-in type: always its own counters.
    BuiltIn,
    /// A valid type name that gets its own counters while the cap allows.
    Custom,
    /// Counted under [`OTHER_TYPE`].
    Other,
}

/// The event's job type and how it is counted; [`TypeClass::Other`] when it is missing or
/// not a valid type name (the JobType pattern `^[a-z][a-z0-9-]{0,63}$`).
fn classify_type(event: &EventEnvelope) -> (&str, TypeClass) {
    let Some(job_type) = event
        .payload
        .get("type")
        .and_then(serde_json::Value::as_str)
    else {
        return (OTHER_TYPE, TypeClass::Other);
    };
    if BUILT_IN_TYPES.contains(&job_type) {
        return (job_type, TypeClass::BuiltIn);
    }
    let mut chars = job_type.chars();
    let valid = job_type.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid && job_type != OTHER_TYPE {
        (job_type, TypeClass::Custom)
    } else {
        (OTHER_TYPE, TypeClass::Other)
    }
}

/// The slot of the counter `name`, if it is one.
fn counter_slot<'a>(counters: &'a mut JobCounters, name: &str) -> Option<&'a mut u64> {
    Some(match name {
        SUBMITTED => &mut counters.submitted,
        STARTED => &mut counters.started,
        COMPLETED => &mut counters.completed,
        FAILED => &mut counters.failed,
        RETRIED => &mut counters.retried,
        DEAD_LETTERED => &mut counters.dead_lettered,
        _ => return None,
    })
}

fn zero_counters() -> JobCounters {
    JobCounters {
        submitted: 0,
        started: 0,
        completed: 0,
        failed: 0,
        retried: 0,
        dead_lettered: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event_type: &str, job_type: serde_json::Value, will_retry: bool) -> EventEnvelope {
        serde_json::from_value(serde_json::json!({
            "contractVersion": "1.0.0", "eventType": event_type,
            "eventId": "a8d4f6b2-9e1c-4a3b-8f5d-6c2e0b7a9d31", "occurredAt": "2026-11-23T12:00:00Z",
            "producer": {"service": "processor", "instanceId": "p-1", "version": "1.4.2"},
            "correlationId": "req-1", "idempotencyKey": "k",
            "payload": {"jobId": "e3a9c5d1-6b2f-4f7a-8c0e-1d5b9a2f4e83", "type": job_type, "willRetry": will_retry}
        }))
        .expect("a valid EventEnvelope")
    }

    #[test]
    fn types_are_classified() {
        let json = serde_json::Value::from;
        assert_eq!(
            classify_type(&event("job.created", json("sleep"), false)),
            ("sleep", TypeClass::BuiltIn)
        );
        assert_eq!(
            classify_type(&event("job.created", json("resize-image"), false)),
            ("resize-image", TypeClass::Custom)
        );
        assert_eq!(
            classify_type(&event("job.created", json("other"), false)),
            (OTHER_TYPE, TypeClass::Other)
        );
        assert_eq!(
            classify_type(&event("job.created", json("Bad Type"), false)),
            (OTHER_TYPE, TypeClass::Other)
        );
        assert_eq!(
            classify_type(&event("job.created", serde_json::json!(7), false)),
            (OTHER_TYPE, TypeClass::Other)
        );
    }

    #[test]
    fn failed_events_count_retries_only_when_retried() {
        let json = serde_json::Value::from;
        assert_eq!(
            counters_of(&event("job.failed", json("fail"), true)),
            [FAILED, RETRIED]
        );
        assert_eq!(
            counters_of(&event("job.failed", json("fail"), false)),
            [FAILED]
        );
        assert_eq!(
            counters_of(&event("job.dead-lettered", json("fail"), false)),
            [DEAD_LETTERED]
        );
    }
}
