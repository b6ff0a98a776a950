//! The counters in Redis.
//!
//! - **One Lua script call per write** ([`Counters::record_batch`]): for each event it runs
//!   `SET <prefix>:seen:<eventId> 1 NX EX <ttl>` and only when that succeeds increments the
//!   totals, the per-type counters and the throughput bucket and publishes the event. A script
//!   is atomic, so a crash never leaves an event half counted, and a write costs one round
//!   trip.
//! - **Deduplication window**: the seen-markers expire after [`CountersConfig::seen_ttl`]
//!   (default 7 days): a redelivery later than that would be counted again.
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

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use redis::Script;
use redis::aio::ConnectionManager;

use crate::contracts::event_envelope::EventEnvelope;
use crate::contracts::overview::{JobCounters, Overview};
use crate::{
    BUCKET_FIELDS, BucketCounts, BucketPlan, Counters, CountersConfig, CountersError, EventFeed,
    Feed, MAX_EVENTS_PER_WRITE, RecordOutcome, Result, TypeClass, bucket_field_of, by_type_list,
    classify_type, counter_slot, counters_of, zero_counters,
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
/// KEYS: totals, by-type, custom-types, then per event its seen-marker and its bucket.
/// ARGV: seen ttl (s), custom type cap, channel ('' publishes nothing), then per event:
/// counters (space-separated), job type, type class (b built-in, c custom, o other), bucket
/// field ('' for none), bucket expiry (Unix seconds), the envelope as JSON ('' when not
/// published).
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
    if channel ~= '' then
      redis.call('PUBLISH', channel, event)
    end
  end
end
return counted
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

    async fn record_chunk(&self, events: &[EventEnvelope], feed: Feed) -> Result<usize> {
        let publish = feed == Feed::Publish;
        let mut invocation = RECORD_SCRIPT.prepare_invoke();
        invocation
            .key(self.key("totals"))
            .key(self.key("by-type"))
            .key(self.key("custom-types"))
            .arg(self.config.seen_ttl_seconds())
            .arg(self.config.max_custom_types)
            .arg(if publish {
                self.channel()
            } else {
                String::new()
            });
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
            let bucket_start = self.config.bucket_start(event.occurred_at);
            let (job_type, class) = classify_type(event);
            let class = match class {
                TypeClass::BuiltIn => "b",
                TypeClass::Custom => "c",
                TypeClass::Other => "o",
            };
            let bucket_field = bucket_field_of(event.event_type).map_or("", |i| BUCKET_FIELDS[i]);
            invocation
                .key(self.key(&format!("seen:{}", event.event_id)))
                .key(self.bucket_key(bucket_start))
                .arg(counters_of(event).join(" "))
                .arg(job_type)
                .arg(class)
                .arg(bucket_field)
                .arg(bucket_start.saturating_add(retention))
                .arg(json);
        }
        let mut connection = self.connection.clone();
        let counted: usize = invocation.invoke_async(&mut connection).await?;
        Ok(counted)
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

    async fn record(&self, events: &[EventEnvelope], feed: Feed) -> Result<RecordOutcome> {
        let mut outcome = RecordOutcome::default();
        for chunk in events.chunks(MAX_EVENTS_PER_WRITE) {
            let counted = self.record_chunk(chunk, feed).await?;
            outcome.counted += counted;
            outcome.duplicates += chunk.len().saturating_sub(counted);
        }
        Ok(outcome)
    }

    /// Subscribes on a dedicated connection; the subscription is confirmed by Redis when
    /// this returns. The stream ends when that connection is lost (pub/sub has no replay).
    async fn reset(&self) -> Result<()> {
        let mut connection = self.connection.clone();
        let mut doomed = vec![
            self.key("totals"),
            self.key("by-type"),
            self.key("custom-types"),
        ];
        for pattern in [self.key("seen:*"), self.key("throughput:*")] {
            let mut cursor: u64 = 0;
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut connection)
                    .await?;
                doomed.extend(keys);
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        for chunk in doomed.chunks(1000) {
            redis::cmd("UNLINK")
                .arg(chunk)
                .query_async::<i64>(&mut connection)
                .await?;
        }
        Ok(())
    }

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
