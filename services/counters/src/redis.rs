//! The counters in Redis.
//!
//! - **One Lua script call per write** ([`Counters::record_batch`]): for each event it checks
//!   and sets the event's marker and only when the event is new increments the totals, the
//!   per-type counters and the throughput bucket and publishes the event. A script is
//!   atomic, so a crash never leaves an event half counted, and a write costs one round
//!   trip.
//! - **Markers, bounded**: an event within the deduplication window is marked in the set
//!   `<prefix>:seen:<minute>` of the minute it occurred in; the minutes are indexed in the
//!   sorted set `<prefix>:seen-minutes`, and each script call deletes the sets of minutes
//!   older than the window (plus that minute). A late event recorded live is marked in the
//!   sorted set `<prefix>:seen-late` (scored by when it was counted, trimmed after the
//!   window); a rebuild checks both and marks nothing. So markers hold about one member per
//!   event of the last window, in a few keys without a TTL: an eviction policy of
//!   `volatile-*` never takes them (Redis should not evict at all: `noeviction`, its
//!   default).
//! - **State**: `<prefix>:state` holds `intact`, or a rebuild's token with a TTL of
//!   [`REBUILD_LEASE`]; a Redis without persistence loses it with everything else, so a
//!   restart reads as [`CountersState::Lost`]. A rebuild's writes check the token inside
//!   the script.
//! - **Keys**: hash `<prefix>:totals`; hash `<prefix>:by-type` with fields
//!   `<type>:<counter>`; the admitted custom types in the set `<prefix>:custom-types`
//!   (decided inside the script so concurrent recorders agree); throughput hashes
//!   `<prefix>:throughput:<width>:<start>`, each expiring at its start plus the retention.
//! - **Live feed**: the script publishes each newly counted event (its envelope as JSON) on
//!   `<prefix>:events`, so the feed carries every event exactly once per recording; a
//!   subscriber sees the events published while it is subscribed (Redis pub/sub keeps no
//!   history). [`Counters::subscribe`] uses a dedicated pub/sub connection. A subscriber too
//!   slow for Redis's pub/sub output buffer limit is disconnected: its stream ends.
//! - Every key starts with the prefix, so deployments and tests share one Redis safely. The
//!   script assumes a single Redis (not Redis Cluster: its keys are in different slots).

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use redis::Script;
use redis::aio::ConnectionManager;

use crate::contracts::event_envelope::EventEnvelope;
use crate::contracts::overview::{JobCounters, Overview};
use crate::{
    BUCKET_FIELDS, BucketCounts, BucketPlan, Counters, CountersConfig, CountersError,
    CountersState, EventFeed, IntactMark, MAX_EVENTS_PER_WRITE, REBUILD_LEASE, RebuildToken,
    RecordOutcome, Recording, Result, TypeClass, bucket_field_of, by_type_list, classify_type,
    counter_slot, counters_of, zero_counters,
};

/// The counters of one key prefix in one Redis.
#[derive(Clone)]
pub struct RedisCounters {
    client: redis::Client,
    connection: ConnectionManager,
    config: CountersConfig,
}

impl std::fmt::Debug for RedisCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCounters")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Records up to [`MAX_EVENTS_PER_WRITE`] events; see the module documentation.
///
/// KEYS: totals, by-type, custom-types, seen-minutes, seen-late, state, then per event its
/// minute's marker set and its throughput bucket.
/// ARGV: custom type cap, channel ('' publishes nothing), now and window (Unix seconds),
/// the prefix of the marker sets, the rebuild token ('' when live), the intact mark late
/// events are guarded by ('' for none), then per event: mode (w within the window, l late and
/// live, r late in a rebuild), its minute, its eventId,
/// counters (space-separated), job type, type class (b built-in, c custom, o other),
/// bucket field ('' for none), bucket expiry (Unix seconds), the envelope as JSON ('' when
/// not published). Returns the number counted, or -1 when the rebuild was superseded.
static RECORD_SCRIPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local totals, by_type, custom_types = KEYS[1], KEYS[2], KEYS[3]
local minutes, late, state = KEYS[4], KEYS[5], KEYS[6]
local cap, channel = tonumber(ARGV[1]), ARGV[2]
local now, window, seen_prefix, token = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], ARGV[6]
local guard = ARGV[7]
if token ~= '' and redis.call('GET', state) ~= token then
  return -1
end
local late_allowed = guard == '' or redis.call('GET', state) == guard
for _, minute in ipairs(redis.call('ZRANGEBYSCORE', minutes, '-inf', '(' .. (now - window - 60), 'LIMIT', 0, 32)) do
  redis.call('UNLINK', seen_prefix .. minute)
  redis.call('ZREM', minutes, minute)
end
redis.call('ZREMRANGEBYSCORE', late, '-inf', '(' .. (now - window))
local counted = 0
for i = 0, (#KEYS - 6) / 2 - 1 do
  local marker, bucket = KEYS[7 + 2 * i], KEYS[8 + 2 * i]
  local a = 8 + 9 * i
  local mode, minute, event_id = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local counters, job_type, class = ARGV[a + 3], ARGV[a + 4], ARGV[a + 5]
  local bucket_field, bucket_expiry, event = ARGV[a + 6], ARGV[a + 7], ARGV[a + 8]
  local new
  if mode == 'w' then
    new = redis.call('SADD', marker, event_id) == 1
    if new then
      redis.call('ZADD', minutes, minute, minute)
    end
  elseif mode == 'l' and not late_allowed then
    new = false
  else
    new = redis.call('SISMEMBER', marker, event_id) == 0 and not redis.call('ZSCORE', late, event_id)
    if new and mode == 'l' then
      redis.call('ZADD', late, now, event_id)
    end
  end
  if new then
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
    if channel ~= '' then
      redis.call('PUBLISH', channel, event)
    end
  end
end
return counted
",
    )
});

/// Begins a rebuild in one atomic step, so that no write lands between the mark and the
/// wipe: sets the state (KEYS[1]) to the token ARGV[1] for ARGV[2] ms, deletes the other
/// KEYS and every key matching the patterns ARGV[3..] (the markers' minutes and the
/// throughput buckets: a few thousand keys at most, as both are bounded).
static BEGIN_REBUILD_SCRIPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
for i = 2, #KEYS do
  redis.call('UNLINK', KEYS[i])
end
for p = 3, #ARGV do
  local keys = redis.call('KEYS', ARGV[p])
  for i = 1, #keys, 1000 do
    redis.call('UNLINK', unpack(keys, i, math.min(i + 999, #keys)))
  end
end
return 1
",
    )
});

/// Renews (ARGV[2] = lease in ms) or finishes (ARGV[2] = '') the rebuild whose token is
/// ARGV[1] (finishing sets the intact mark ARGV[3]); 1 when it still held the state, 0 when
/// not.
static REBUILD_SCRIPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[2] == '' then
  redis.call('SET', KEYS[1], ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 1
",
    )
});

impl RedisCounters {
    /// Connects with the default settings ([`CountersConfig::new`]).
    pub async fn connect(url: &str, key_prefix: &str) -> Result<Self> {
        Self::connect_with(url, CountersConfig::new(key_prefix)).await
    }

    pub async fn connect_with(url: &str, config: CountersConfig) -> Result<Self> {
        let client = redis::Client::open(url)?;
        let connection = client.get_connection_manager().await?;
        Ok(Self {
            client,
            connection,
            config: config.normalized(),
        })
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

    async fn record_chunk(
        &self,
        events: &[EventEnvelope],
        recording: Recording<'_>,
        now: DateTime<Utc>,
    ) -> Result<usize> {
        let (publish, token, guard) = match recording {
            Recording::Live => (true, "", ""),
            Recording::LiveGuarded(mark) => (true, "", mark.as_str()),
            Recording::Rebuild(token) => (false, token.as_str(), ""),
        };
        let mut invocation = RECORD_SCRIPT.prepare_invoke();
        invocation
            .key(self.key("totals"))
            .key(self.key("by-type"))
            .key(self.key("custom-types"))
            .key(self.key("seen-minutes"))
            .key(self.key("seen-late"))
            .key(self.key("state"))
            .arg(self.config.max_custom_types)
            .arg(if publish {
                self.channel()
            } else {
                String::new()
            })
            .arg(now.timestamp())
            .arg(self.config.window_seconds())
            .arg(self.key("seen:"))
            .arg(token)
            .arg(guard);
        let retention = self.config.retention_seconds();
        for event in events {
            let json = if publish {
                serde_json::to_string(event).map_err(|source| CountersError::Serialize {
                    event_id: event.event_id.to_string(),
                    source,
                })?
            } else {
                String::new()
            };
            let mode = match (self.config.is_late(event.occurred_at, now), publish) {
                (false, _) => "w",
                (true, true) => "l",
                (true, false) => "r",
            };
            let minute = CountersConfig::marker_minute(event.occurred_at);
            let bucket_start = self.config.bucket_start(event.occurred_at);
            let (job_type, class) = classify_type(event);
            let class = match class {
                TypeClass::BuiltIn => "b",
                TypeClass::Custom => "c",
                TypeClass::Other => "o",
            };
            let bucket_field = bucket_field_of(event.event_type).map_or("", |i| BUCKET_FIELDS[i]);
            invocation
                .key(self.key(&format!("seen:{minute}")))
                .key(self.bucket_key(bucket_start))
                .arg(mode)
                .arg(minute)
                .arg(event.event_id.to_string())
                .arg(counters_of(event).join(" "))
                .arg(job_type)
                .arg(class)
                .arg(bucket_field)
                .arg(bucket_start.saturating_add(retention))
                .arg(json);
        }
        let mut connection = self.connection.clone();
        let counted: i64 = invocation.invoke_async(&mut connection).await?;
        usize::try_from(counted).map_err(|_| CountersError::RebuildSuperseded)
    }

    async fn rebuild_step(&self, token: &RebuildToken, lease: Option<Duration>) -> Result<bool> {
        let mut connection = self.connection.clone();
        let held: i64 = REBUILD_SCRIPT
            .key(self.key("state"))
            .arg(token.as_str())
            .arg(lease.map_or(String::new(), |l| l.as_millis().to_string()))
            .arg(IntactMark::new().as_str())
            .invoke_async(&mut connection)
            .await?;
        Ok(held == 1)
    }
}

#[async_trait::async_trait]
impl Counters for RedisCounters {
    async fn ping(&self) -> Result<()> {
        let mut connection = self.connection.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await?;
        Ok(())
    }

    fn config(&self) -> &CountersConfig {
        &self.config
    }

    async fn record_at(
        &self,
        events: &[EventEnvelope],
        recording: Recording<'_>,
        now: DateTime<Utc>,
    ) -> Result<RecordOutcome> {
        let mut outcome = RecordOutcome::default();
        for chunk in events.chunks(MAX_EVENTS_PER_WRITE) {
            let counted = self.record_chunk(chunk, recording, now).await?;
            outcome.counted += counted;
            outcome.duplicates += chunk.len().saturating_sub(counted);
        }
        Ok(outcome)
    }

    async fn state(&self) -> Result<CountersState> {
        let mut connection = self.connection.clone();
        let state: Option<String> = redis::cmd("GET")
            .arg(self.key("state"))
            .query_async(&mut connection)
            .await?;
        Ok(match state {
            Some(state) => {
                IntactMark::parse(&state).map_or(CountersState::Rebuilding, CountersState::Intact)
            }
            None => CountersState::Lost,
        })
    }

    async fn begin_rebuild(&self) -> Result<RebuildToken> {
        let token = RebuildToken::new();
        let mut connection = self.connection.clone();
        BEGIN_REBUILD_SCRIPT
            .key(self.key("state"))
            .key(self.key("totals"))
            .key(self.key("by-type"))
            .key(self.key("custom-types"))
            .key(self.key("seen-minutes"))
            .key(self.key("seen-late"))
            .arg(token.as_str())
            .arg(REBUILD_LEASE.as_millis().to_string())
            .arg(self.key("seen:*"))
            .arg(self.key("throughput:*"))
            .invoke_async::<i64>(&mut connection)
            .await?;
        Ok(token)
    }

    async fn renew_rebuild(&self, token: &RebuildToken) -> Result<bool> {
        self.rebuild_step(token, Some(REBUILD_LEASE)).await
    }

    async fn finish_rebuild(&self, token: &RebuildToken) -> Result<bool> {
        self.rebuild_step(token, None).await
    }

    /// Subscribes on a dedicated connection; the subscription is confirmed by Redis when
    /// this returns. The stream ends when that connection is lost (pub/sub has no replay).
    async fn subscribe(&self) -> Result<EventFeed> {
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.subscribe(self.channel()).await?;
        let feed = pubsub.into_on_message().map(|message| {
            serde_json::from_slice::<EventEnvelope>(message.get_payload_bytes())
                .map_err(CountersError::MalformedFeedMessage)
        });
        Ok(Box::pin(feed))
    }

    async fn overview_at(
        &self,
        now: DateTime<Utc>,
        buckets: usize,
        bucket_seconds: u64,
    ) -> Result<Overview> {
        let plan = BucketPlan::new(&self.config, now, buckets, bucket_seconds)?;
        let recorded_starts: Vec<i64> = plan.recorded_starts().collect();

        let mut pipeline = redis::pipe();
        pipeline.hgetall(self.key("totals"));
        pipeline.hgetall(self.key("by-type"));
        for start in &recorded_starts {
            pipeline
                .cmd("HMGET")
                .arg(self.bucket_key(*start))
                .arg(&BUCKET_FIELDS[..]);
        }
        let mut connection = self.connection.clone();
        let mut replies: Vec<redis::Value> = pipeline.query_async(&mut connection).await?;
        let bucket_replies = replies.split_off(2.min(replies.len()));
        let mut hashes = replies.into_iter();
        let mut next_hash = || -> Result<BTreeMap<String, String>> {
            Ok(redis::from_redis_value(
                hashes.next().unwrap_or(redis::Value::Nil),
            )?)
        };
        let (totals, by_type) = (next_hash()?, next_hash()?);

        let mut total_counters = zero_counters();
        for (field, value) in &totals {
            if let Some(slot) = counter_slot(&mut total_counters, field) {
                *slot = parse_count(field, value)?;
            }
        }

        let mut per_type: BTreeMap<String, JobCounters> = BTreeMap::new();
        for (field, value) in &by_type {
            if let Some((job_type, counter)) = field.rsplit_once(':') {
                let counters = per_type
                    .entry(job_type.to_string())
                    .or_insert_with(zero_counters);
                if let Some(slot) = counter_slot(counters, counter) {
                    *slot = parse_count(field, value)?;
                }
            }
        }

        let mut recorded: BTreeMap<i64, BucketCounts> = BTreeMap::new();
        for (start, reply) in recorded_starts.iter().zip(bucket_replies) {
            let fields: Vec<Option<String>> = redis::from_redis_value(reply)?;
            let mut counts: BucketCounts = [0; 3];
            for ((count, value), field) in counts.iter_mut().zip(&fields).zip(BUCKET_FIELDS) {
                if let Some(value) = value {
                    *count = parse_count(field, value)?;
                }
            }
            recorded.insert(*start, counts);
        }

        Ok(Overview {
            generated_at: now,
            totals: total_counters,
            by_type: by_type_list(per_type),
            throughput: plan.throughput(&recorded),
        })
    }
}

fn parse_count(field: &str, value: &str) -> Result<u64> {
    value.parse().map_err(|_| CountersError::CorruptCounter {
        field: field.to_string(),
        value: value.to_string(),
    })
}

/// What only the Redis adapter promises: how few keys its markers take.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::contracts::event_envelope::EventType;

    #[tokio::test]
    async fn markers_take_one_key_per_minute_not_one_per_event() {
        let prefix = observatory_test_support::unique_name();
        let url = observatory_test_support::redis_url();
        let counters = RedisCounters::connect(&url, &prefix)
            .await
            .expect("connect");
        let now = Utc::now();
        let minute = chrono::Duration::seconds(60);
        let events: Vec<EventEnvelope> = (0..600)
            .map(|i| {
                crate::conformance::event(EventType::JobCreated, "sleep", now - minute * (i % 3))
            })
            .collect();
        let recorded = counters.record_batch(&events).await.expect("record");
        assert_eq!(recorded.counted, 600);

        let mut connection = counters.connection.clone();
        let mut keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}:*"))
            .query_async(&mut connection)
            .await
            .expect("keys");
        keys.sort();
        let markers = keys.iter().filter(|k| k.contains(":seen:")).count();
        assert_eq!(markers, 3, "600 events of 3 minutes: {keys:?}");
        assert!(keys.len() < 20, "{keys:?}");
        redis::cmd("DEL")
            .arg(&keys)
            .query_async::<()>(&mut connection)
            .await
            .expect("clean up");
    }
}
