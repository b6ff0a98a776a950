//! Job counters, throughput buckets and the live event feed, in Redis.
//!
//! The metrics engine records every lifecycle event it consumes; the read model builds the
//! contract's [`Overview`] from the counters and streams the feed to the UIs. Delivery is
//! at-least-once, so recording is idempotent: an event is counted (and published) once per
//! eventId, however often it is redelivered within the deduplication window.
//!
//! Key decisions:
//! - **One Lua script call per batch** ([`Counters::record_batch`]): for each event it runs
//!   `SET <prefix>:seen:<eventId> 1 NX EX <ttl>` and only when that succeeds increments the
//!   totals, the per-type counters and the throughput bucket and publishes the event. A script
//!   is atomic, so a crash never leaves an event half counted, and a batch costs one round trip
//!   (batches above [`MAX_EVENTS_PER_SCRIPT`] are split, so one call never blocks Redis long).
//! - **Deduplication window**: the seen-markers expire after [`CountersConfig::seen_ttl`]
//!   (default 7 days): a redelivery later than that would be counted again.
//! - **Counters** (hash `<prefix>:totals`; hash `<prefix>:by-type` with fields
//!   `<type>:<counter>`), named as in the contract's `JobCounters`: `submitted` (job.created),
//!   `started`, `completed`, `failed` (every job.failed), `retried` (job.failed with
//!   `payload.willRetry = true`), `deadLettered`.
//! - **Bounded type cardinality**: the built-in types (sleep, compute, fail) always have their
//!   own counters; the first [`CountersConfig::max_custom_types`] other types seen get theirs
//!   (remembered in the set `<prefix>:custom-types`, decided inside the script so concurrent
//!   recorders agree); every later type, and anything that is not a valid type name, is counted
//!   under [`OTHER_TYPE`].
//! - **Throughput**: per-[`CountersConfig::bucket_seconds`] hashes
//!   `<prefix>:throughput:<width>:<start>` (submitted, completed, failed) keyed by the event's
//!   `occurredAt`, each expiring [`CountersConfig::bucket_retention`] after its start.
//!   [`Counters::overview`] sums them into buckets of any multiple of that width.
//! - **Live feed**: the script publishes each newly counted event (its envelope as JSON) on
//!   `<prefix>:events`, so the feed carries every event exactly once per recording; a
//!   subscriber sees the events published while it is subscribed (Redis pub/sub keeps no
//!   history). [`Counters::subscribe`] uses a dedicated pub/sub connection.
//! - Every key starts with the prefix, so deployments and tests share one Redis safely. The
//!   script assumes a single Redis (not Redis Cluster: its keys are in different slots).

pub mod contracts;

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::LazyLock;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use futures_util::{Stream, StreamExt};
use redis::Script;
use redis::aio::ConnectionManager;

use crate::contracts::event_envelope::{EventEnvelope, EventType};
use crate::contracts::overview::{JobCounters, JobTypeCounters, Overview, ThroughputBucket};

/// The job types that always have their own counters.
pub const BUILT_IN_TYPES: [&str; 3] = ["sleep", "compute", "fail"];
/// The type under which events of types beyond the cardinality cap are counted.
pub const OTHER_TYPE: &str = "other";
/// Largest number of events recorded by one script call.
pub const MAX_EVENTS_PER_SCRIPT: usize = 500;

const SUBMITTED: &str = "submitted";
const STARTED: &str = "started";
const COMPLETED: &str = "completed";
const FAILED: &str = "failed";
const RETRIED: &str = "retried";
const DEAD_LETTERED: &str = "deadLettered";
/// The throughput bucket fields, in the order [`Counters::overview`] reads them.
const BUCKET_FIELDS: [&str; 3] = [SUBMITTED, COMPLETED, FAILED];
/// The values of [`BUCKET_FIELDS`] in one recorded bucket (absent when nothing was counted).
type BucketFields = Vec<Option<String>>;

#[derive(Debug, thiserror::Error)]
pub enum CountersError {
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("unexpected Redis reply: {0}")]
    UnexpectedReply(#[from] redis::ParsingError),
    #[error("event {event_id} cannot be published: {source}")]
    Serialize {
        event_id: String,
        source: serde_json::Error,
    },
    /// A message on the feed channel that is not an EventEnvelope (published by something
    /// else, or by an incompatible version).
    #[error("message on the live feed is not an EventEnvelope: {0}")]
    MalformedFeedMessage(serde_json::Error),
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
    /// Every key and the feed channel start with `<key_prefix>:`.
    pub key_prefix: String,
    /// How long an eventId is remembered as counted (the deduplication window).
    pub seen_ttl: Duration,
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
            seen_ttl: Duration::from_secs(7 * 24 * 3600),
            bucket_seconds: 1,
            bucket_retention: Duration::from_secs(3600),
            max_custom_types: 20,
        }
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

/// The live feed: each newly counted event, in the order Redis published them.
pub type EventFeed = Pin<Box<dyn Stream<Item = Result<EventEnvelope>> + Send>>;

/// The counters of one key prefix in one Redis.
#[derive(Clone)]
pub struct Counters {
    client: redis::Client,
    connection: ConnectionManager,
    config: CountersConfig,
}

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counters")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Records a batch; see the module documentation and [`Counters::record_batch`].
///
/// KEYS: totals, by-type, custom-types, then per event its seen-marker and its bucket.
/// ARGV: seen ttl (s), custom type cap, channel, then per event: counters (space-separated),
/// job type, type class (b built-in, c custom, o other), bucket field ('' for none), bucket
/// expiry (Unix seconds), the envelope as JSON.
static RECORD_SCRIPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local totals, by_type, custom_types = KEYS[1], KEYS[2], KEYS[3]
local seen_ttl, cap, channel = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local counted = 0
for i = 0, (#KEYS - 3) / 2 - 1 do
  local seen, bucket = KEYS[4 + 2 * i], KEYS[5 + 2 * i]
  local a = 4 + 6 * i
  local counters, job_type, class = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local bucket_field, bucket_expiry, event = ARGV[a + 3], ARGV[a + 4], ARGV[a + 5]
  if redis.call('SET', seen, '1', 'NX', 'EX', seen_ttl) then
    counted = counted + 1
    if class == 'c' and redis.call('SISMEMBER', custom_types, job_type) == 0 then
      if redis.call('SCARD', custom_types) < cap then
        redis.call('SADD', custom_types, job_type)
      else
        job_type = 'other'
      end
    elseif class == 'o' then
      job_type = 'other'
    end
    for counter in string.gmatch(counters, '%S+') do
      redis.call('HINCRBY', totals, counter, 1)
      redis.call('HINCRBY', by_type, job_type .. ':' .. counter, 1)
    end
    if bucket_field ~= '' then
      redis.call('HINCRBY', bucket, bucket_field, 1)
      redis.call('EXPIREAT', bucket, bucket_expiry)
    end
    redis.call('PUBLISH', channel, event)
  end
end
return counted
",
    )
});

impl Counters {
    /// Connects with the default settings ([`CountersConfig::new`]).
    pub async fn connect(url: &str, key_prefix: &str) -> Result<Self> {
        Self::connect_with(url, CountersConfig::new(key_prefix)).await
    }

    pub async fn connect_with(url: &str, config: CountersConfig) -> Result<Self> {
        let client = redis::Client::open(url)?;
        let connection = client.get_connection_manager().await?;
        let config = CountersConfig {
            bucket_seconds: config.bucket_seconds.max(1),
            ..config
        };
        Ok(Self {
            client,
            connection,
            config,
        })
    }

    pub fn config(&self) -> &CountersConfig {
        &self.config
    }

    /// Checks that the server answers.
    pub async fn ping(&self) -> Result<()> {
        let mut connection = self.connection.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await?;
        Ok(())
    }

    /// The pub/sub channel of the live feed.
    pub fn channel(&self) -> String {
        self.key("events")
    }

    fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.config.key_prefix)
    }

    fn bucket_key(&self, start: i64) -> String {
        self.key(&format!(
            "throughput:{}:{start}",
            self.config.bucket_seconds
        ))
    }

    /// Counts and publishes each event whose eventId was not counted before, atomically per
    /// event, in one script call per [`MAX_EVENTS_PER_SCRIPT`] events.
    pub async fn record_batch(&self, events: &[EventEnvelope]) -> Result<RecordOutcome> {
        let mut outcome = RecordOutcome::default();
        for chunk in events.chunks(MAX_EVENTS_PER_SCRIPT) {
            let counted = self.record_chunk(chunk).await?;
            outcome.counted += counted;
            outcome.duplicates += chunk.len().saturating_sub(counted);
        }
        Ok(outcome)
    }

    async fn record_chunk(&self, events: &[EventEnvelope]) -> Result<usize> {
        let mut invocation = RECORD_SCRIPT.prepare_invoke();
        invocation
            .key(self.key("totals"))
            .key(self.key("by-type"))
            .key(self.key("custom-types"))
            .arg(self.config.seen_ttl.as_secs().max(1))
            .arg(self.config.max_custom_types)
            .arg(self.channel());
        let width = i64::try_from(self.config.bucket_seconds).unwrap_or(i64::MAX);
        let retention = i64::try_from(self.config.bucket_retention.as_secs()).unwrap_or(i64::MAX);
        for event in events {
            let json = serde_json::to_string(event).map_err(|source| CountersError::Serialize {
                event_id: event.event_id.to_string(),
                source,
            })?;
            let bucket_start = event.occurred_at.timestamp().div_euclid(width) * width;
            let (job_type, class) = classify_type(event);
            invocation
                .key(self.key(&format!("seen:{}", event.event_id)))
                .key(self.bucket_key(bucket_start))
                .arg(counters_of(event).join(" "))
                .arg(job_type)
                .arg(class)
                .arg(bucket_field_of(event.event_type).unwrap_or(""))
                .arg(bucket_start.saturating_add(retention))
                .arg(json);
        }
        let mut connection = self.connection.clone();
        let counted: usize = invocation.invoke_async(&mut connection).await?;
        Ok(counted)
    }

    /// Subscribes to the live feed on a dedicated connection. The subscription is confirmed
    /// by Redis when this returns: every event counted afterwards is delivered. The stream
    /// ends when that connection is lost (pub/sub has no replay): subscribe again to resume.
    pub async fn subscribe(&self) -> Result<EventFeed> {
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.subscribe(self.channel()).await?;
        let feed = pubsub.into_on_message().map(|message| {
            serde_json::from_slice::<EventEnvelope>(message.get_payload_bytes())
                .map_err(CountersError::MalformedFeedMessage)
        });
        Ok(Box::pin(feed))
    }

    /// The overview now: totals, per-type counters and the last `buckets` throughput buckets
    /// of `bucket_seconds` each (the last one is the current, still filling bucket).
    pub async fn overview(&self, buckets: usize, bucket_seconds: u64) -> Result<Overview> {
        self.overview_at(Utc::now(), buckets, bucket_seconds).await
    }

    /// The overview as of `now` (whose bucket is the last throughput bucket).
    /// `bucket_seconds` must be a multiple of the recorded width, and the buckets must not
    /// reach back further than the retention.
    pub async fn overview_at(
        &self,
        now: DateTime<Utc>,
        buckets: usize,
        bucket_seconds: u64,
    ) -> Result<Overview> {
        let starts = self.bucket_starts(now, buckets, bucket_seconds)?;
        let recorded = i64::try_from(self.config.bucket_seconds).unwrap_or(i64::MAX);
        let per_bucket = i64::try_from(bucket_seconds).unwrap_or(i64::MAX) / recorded;

        let mut pipeline = redis::pipe();
        pipeline.hgetall(self.key("totals"));
        pipeline.hgetall(self.key("by-type"));
        for start in &starts {
            for step in 0..per_bucket {
                pipeline
                    .cmd("HMGET")
                    .arg(self.bucket_key(start + step * recorded))
                    .arg(&BUCKET_FIELDS[..]);
            }
        }
        let mut connection = self.connection.clone();
        let mut replies: Vec<redis::Value> = pipeline.query_async(&mut connection).await?;
        let sub_buckets: Vec<BucketFields> = replies
            .split_off(2.min(replies.len()))
            .into_iter()
            .map(redis::from_redis_value)
            .collect::<Result<_, _>>()?;
        let mut hashes = replies.into_iter();
        let mut next_hash = || -> Result<BTreeMap<String, String>> {
            Ok(redis::from_redis_value(
                hashes.next().unwrap_or(redis::Value::Nil),
            )?)
        };
        let (totals, by_type) = (next_hash()?, next_hash()?);

        let totals = job_counters(totals.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;

        let mut per_type: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
        for (field, value) in &by_type {
            if let Some((job_type, counter)) = field.rsplit_once(':') {
                per_type
                    .entry(job_type)
                    .or_default()
                    .push((counter, value.as_str()));
            }
        }
        let mut by_type = per_type
            .into_iter()
            .map(|(job_type, fields)| {
                Ok(JobTypeCounters {
                    type_: job_type.to_string(),
                    counters: job_counters(fields.into_iter())?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        // Alphabetical, with the catch-all last.
        by_type.sort_by_key(|t| (t.type_ == OTHER_TYPE, t.type_.clone()));

        let seconds = std::num::NonZeroU64::new(bucket_seconds)
            .ok_or(self.invalid_buckets("bucket_seconds must be at least 1"))?;
        let per_bucket = usize::try_from(per_bucket).unwrap_or(usize::MAX).max(1);
        let mut throughput = Vec::with_capacity(starts.len());
        for (start, parts) in starts.iter().zip(sub_buckets.chunks(per_bucket)) {
            let mut sums = [0u64; BUCKET_FIELDS.len()];
            for part in parts {
                for ((sum, value), field) in sums.iter_mut().zip(part).zip(BUCKET_FIELDS) {
                    if let Some(value) = value {
                        *sum += parse_count(field, value)?;
                    }
                }
            }
            let [submitted, completed, failed] = sums;
            throughput.push(ThroughputBucket {
                start: Utc
                    .timestamp_opt(*start, 0)
                    .single()
                    .unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
                seconds,
                submitted,
                completed,
                failed,
            });
        }

        Ok(Overview {
            generated_at: now,
            totals,
            by_type,
            throughput,
        })
    }

    fn invalid_buckets(&self, reason: &'static str) -> CountersError {
        CountersError::InvalidBuckets {
            reason,
            recorded_seconds: self.config.bucket_seconds,
            retention_seconds: self.config.bucket_retention.as_secs(),
        }
    }

    /// Starts (Unix seconds) of the `buckets` buckets ending with the one holding `now`,
    /// oldest first.
    fn bucket_starts(
        &self,
        now: DateTime<Utc>,
        buckets: usize,
        bucket_seconds: u64,
    ) -> Result<Vec<i64>> {
        if bucket_seconds == 0 || !bucket_seconds.is_multiple_of(self.config.bucket_seconds) {
            return Err(self.invalid_buckets(
                "bucket_seconds must be a positive multiple of the recorded width",
            ));
        }
        let span = u64::try_from(buckets)
            .ok()
            .and_then(|n| n.checked_mul(bucket_seconds));
        match span {
            Some(span) if span <= self.config.bucket_retention.as_secs() => {}
            _ => {
                return Err(self.invalid_buckets("the buckets reach back beyond the retention"));
            }
        }
        // Both fit an i64: bounded by the retention, checked above.
        let width = i64::try_from(bucket_seconds).unwrap_or(i64::MAX);
        let count = i64::try_from(buckets).unwrap_or(0);
        let current = now.timestamp().div_euclid(width) * width;
        Ok((0..count)
            .rev()
            .map(|back| current - back * width)
            .collect())
    }
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

/// The throughput field an event increments, if any.
fn bucket_field_of(event_type: EventType) -> Option<&'static str> {
    match event_type {
        EventType::JobCreated => Some(SUBMITTED),
        EventType::JobCompleted => Some(COMPLETED),
        EventType::JobFailed => Some(FAILED),
        EventType::JobStarted | EventType::JobDeadLettered => None,
    }
}

/// The event's job type and its class for the script: `b` built-in, `c` a custom type that
/// may get its own counters, `o` counted under [`OTHER_TYPE`] (missing or not a valid type
/// name, per the JobType pattern `^[a-z][a-z0-9-]{0,63}$`).
fn classify_type(event: &EventEnvelope) -> (&str, &'static str) {
    let Some(job_type) = event
        .payload
        .get("type")
        .and_then(serde_json::Value::as_str)
    else {
        return (OTHER_TYPE, "o");
    };
    if BUILT_IN_TYPES.contains(&job_type) {
        return (job_type, "b");
    }
    let mut chars = job_type.chars();
    let valid = job_type.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid && job_type != OTHER_TYPE {
        (job_type, "c")
    } else {
        (OTHER_TYPE, "o")
    }
}

fn parse_count(field: &str, value: &str) -> Result<u64> {
    value.parse().map_err(|_| CountersError::CorruptCounter {
        field: field.to_string(),
        value: value.to_string(),
    })
}

fn job_counters<'a>(fields: impl Iterator<Item = (&'a str, &'a str)>) -> Result<JobCounters> {
    let mut counters = JobCounters {
        submitted: 0,
        started: 0,
        completed: 0,
        failed: 0,
        retried: 0,
        dead_lettered: 0,
    };
    for (field, value) in fields {
        let slot = match field {
            SUBMITTED => &mut counters.submitted,
            STARTED => &mut counters.started,
            COMPLETED => &mut counters.completed,
            FAILED => &mut counters.failed,
            RETRIED => &mut counters.retried,
            DEAD_LETTERED => &mut counters.dead_lettered,
            _ => continue,
        };
        *slot = parse_count(field, value)?;
    }
    Ok(counters)
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
            ("sleep", "b")
        );
        assert_eq!(
            classify_type(&event("job.created", json("resize-image"), false)),
            ("resize-image", "c")
        );
        assert_eq!(
            classify_type(&event("job.created", json("other"), false)),
            (OTHER_TYPE, "o")
        );
        assert_eq!(
            classify_type(&event("job.created", json("Bad Type"), false)),
            (OTHER_TYPE, "o")
        );
        assert_eq!(
            classify_type(&event("job.created", serde_json::json!(7), false)),
            (OTHER_TYPE, "o")
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
