//! The counters in SQLite, for `observatory up` without servers.
//!
//! - **One IMMEDIATE transaction per write** (up to [`MAX_EVENTS_PER_WRITE`] events): it
//!   takes SQLite's write lock up front, so the seen-markers, the admitted custom types and
//!   the counters read and written inside it cannot change underneath; a crash rolls the
//!   whole write back, so an event is never half counted. Writes of one process are also
//!   serialized by a mutex held until the events are published, so the feed's order is the
//!   order of the commits.
//! - **Tables** (`migrations/sqlite`): markers (eventIds with their expiry: the window after
//!   the minute the event occurred in, or, for a late event recorded live, the window after
//!   it was counted; a rebuild marks no late event), totals, per-type counters, admitted
//!   custom types, throughput buckets, the state (`intact` or a rebuild's token and lease);
//!   every row keyed by the key prefix. Expired markers and buckets are pruned lazily, at the
//!   start of each write. A bucket whose retention has already passed when its event is
//!   recorded is not written (in Redis it would expire at once).
//! - **Live feed**: an in-process [`broadcast`] channel; each newly counted event is sent on
//!   it after its transaction committed. A subscriber sees the events counted while it is
//!   subscribed, through this [`SqliteCounters`] (and its clones) only: the metrics engine
//!   and the read model must share one instance. A subscriber that falls more than
//!   [`FEED_CAPACITY`] events behind gets one [`CountersError::FeedLagged`] item saying how
//!   many it missed, then continues with the oldest event still buffered (the read model
//!   logs and skips error items). The feed ends when the last clone is dropped.
//! - The write runs in its own task, so a caller that gives up (a timeout, a shutdown)
//!   cannot stop it between the commit and the publication.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use observatory_sqlite::{Location, SqlitePool};
use tokio::sync::{Mutex, broadcast};

use crate::contracts::event_envelope::EventEnvelope;
use crate::contracts::overview::{JobCounters, Overview};
use crate::{
    BUCKET_FIELDS, BucketCounts, BucketPlan, Counters, CountersConfig, CountersError,
    CountersState, EventFeed, IntactMark, MARKER_MINUTE, MAX_EVENTS_PER_WRITE, OTHER_TYPE,
    REBUILD_LEASE, RebuildToken, RecordOutcome, Recording, Result, TypeClass, bucket_field_of,
    by_type_list, classify_type, counter_slot, counters_of, zero_counters,
};

/// How many events the live feed buffers for its slowest subscriber.
pub const FEED_CAPACITY: usize = 4096;
/// Connections of a file database: readers (overviews) run beside the one writer.
const MAX_CONNECTIONS: u32 = 4;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The counters of one key prefix in one SQLite database. Clones share the database and the
/// live feed.
#[derive(Clone)]
pub struct SqliteCounters {
    inner: Arc<Inner>,
}

struct Inner {
    pool: SqlitePool,
    config: CountersConfig,
    location: Location,
    feed: broadcast::Sender<EventEnvelope>,
    /// Serializes this process's writes from transaction to publication.
    write: Mutex<()>,
}

impl std::fmt::Debug for SqliteCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteCounters")
            .field("location", &self.inner.location)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl SqliteCounters {
    /// Opens (creating when missing) the counters at `location` and brings the schema up to
    /// date.
    pub async fn open(location: &Location, config: CountersConfig) -> Result<Self> {
        Self::open_with_feed_capacity(location, config, FEED_CAPACITY).await
    }

    pub(crate) async fn open_with_feed_capacity(
        location: &Location,
        config: CountersConfig,
        feed_capacity: usize,
    ) -> Result<Self> {
        let pool = observatory_sqlite::open(location, MAX_CONNECTIONS).await?;
        MIGRATOR.run(&pool).await?;
        let (feed, _) = broadcast::channel(feed_capacity.max(1));
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                config: config.normalized(),
                location: location.clone(),
                feed,
                write: Mutex::new(()),
            }),
        })
    }

    pub fn location(&self) -> &Location {
        &self.inner.location
    }

    /// Closes the database (for every clone); later calls fail.
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }
}

/// What one write adds, summed per row so each row is updated once.
#[derive(Default)]
struct Increments {
    totals: BTreeMap<&'static str, i64>,
    by_type: BTreeMap<(String, &'static str), i64>,
    /// Per bucket start: its expiry and the counts to add.
    buckets: BTreeMap<i64, (i64, [i64; 3])>,
}

impl Inner {
    /// Counts the events not counted before in one transaction, then publishes them (unless
    /// quiet).
    async fn write(
        &self,
        events: Vec<EventEnvelope>,
        token: Option<RebuildToken>,
        guard: Option<IntactMark>,
        at: DateTime<Utc>,
    ) -> Result<usize> {
        let _serialized = self.write.lock().await;
        let prefix = self.config.key_prefix.as_str();
        let now = at.timestamp();
        let window = self.config.window_seconds();
        let retention = self.config.retention_seconds();

        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        if let Some(token) = &token
            && state_of(&mut tx, prefix, now).await?.as_deref() != Some(token.as_str())
        {
            return Err(CountersError::RebuildSuperseded);
        }
        let late_allowed = match &guard {
            Some(mark) => state_of(&mut tx, prefix, now).await?.as_deref() == Some(mark.as_str()),
            None => true,
        };
        sqlx::query("DELETE FROM counters_seen WHERE prefix = ? AND expires_at <= ?")
            .bind(prefix)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM counters_throughput WHERE prefix = ? AND expires_at <= ?")
            .bind(prefix)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        // Stable for the whole transaction: it holds the write lock.
        let mut custom_types: HashSet<String> =
            sqlx::query_scalar("SELECT job_type FROM counters_custom_types WHERE prefix = ?")
                .bind(prefix)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .collect();

        let mut increments = Increments::default();
        let mut counted = Vec::new();
        for event in events {
            let event_id = event.event_id.to_string();
            let late = self.config.is_late(event.occurred_at, at);
            if late && token.is_none() && !late_allowed {
                continue;
            }
            let first_time = if late {
                let marked: Option<i64> = sqlx::query_scalar(
                    "SELECT 1 FROM counters_seen WHERE prefix = ? AND event_id = ?",
                )
                .bind(prefix)
                .bind(&event_id)
                .fetch_optional(&mut *tx)
                .await?;
                marked.is_none()
            } else {
                true
            };
            // Within the window every event is marked; a late one only when recorded live.
            let expires_at = if !late {
                Some(
                    CountersConfig::marker_minute(event.occurred_at)
                        .saturating_add(MARKER_MINUTE)
                        .saturating_add(window),
                )
            } else if first_time && token.is_none() {
                Some(now.saturating_add(window))
            } else {
                None
            };
            let first_time =
                match expires_at {
                    Some(expires_at) => sqlx::query(
                        "INSERT INTO counters_seen (prefix, event_id, expires_at) VALUES (?, ?, ?)
                         ON CONFLICT (prefix, event_id) DO NOTHING",
                    )
                    .bind(prefix)
                    .bind(&event_id)
                    .bind(expires_at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                        == 1,
                    None => first_time,
                };
            if !first_time {
                continue;
            }
            let job_type = match classify_type(&event) {
                (job_type, TypeClass::BuiltIn) => job_type,
                (job_type, TypeClass::Custom) if custom_types.contains(job_type) => job_type,
                (job_type, TypeClass::Custom)
                    if custom_types.len() < self.config.max_custom_types =>
                {
                    sqlx::query(
                        "INSERT INTO counters_custom_types (prefix, job_type) VALUES (?, ?)",
                    )
                    .bind(prefix)
                    .bind(job_type)
                    .execute(&mut *tx)
                    .await?;
                    custom_types.insert(job_type.to_string());
                    job_type
                }
                _ => OTHER_TYPE,
            };
            for counter in counters_of(&event) {
                *increments.totals.entry(counter).or_default() += 1;
                *increments
                    .by_type
                    .entry((job_type.to_string(), counter))
                    .or_default() += 1;
            }
            if let Some(field) = bucket_field_of(event.event_type) {
                let start = self.config.bucket_start(event.occurred_at);
                let expires_at = start.saturating_add(retention);
                if expires_at > now {
                    increments
                        .buckets
                        .entry(start)
                        .or_insert((expires_at, [0; 3]))
                        .1[field] += 1;
                }
            }
            counted.push(event);
        }

        for (counter, value) in increments.totals {
            sqlx::query(
                "INSERT INTO counters_totals (prefix, counter, value) VALUES (?, ?, ?)
                 ON CONFLICT (prefix, counter) DO UPDATE SET value = value + excluded.value",
            )
            .bind(prefix)
            .bind(counter)
            .bind(value)
            .execute(&mut *tx)
            .await?;
        }
        for ((job_type, counter), value) in increments.by_type {
            sqlx::query(
                "INSERT INTO counters_by_type (prefix, job_type, counter, value) VALUES (?, ?, ?, ?)
                 ON CONFLICT (prefix, job_type, counter) DO UPDATE SET value = value + excluded.value",
            )
            .bind(prefix)
            .bind(job_type)
            .bind(counter)
            .bind(value)
            .execute(&mut *tx)
            .await?;
        }
        for (start, (expires_at, [submitted, completed, failed])) in increments.buckets {
            sqlx::query(
                "INSERT INTO counters_throughput
                     (prefix, width, start, submitted, completed, failed, expires_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (prefix, width, start) DO UPDATE SET
                     submitted = submitted + excluded.submitted,
                     completed = completed + excluded.completed,
                     failed = failed + excluded.failed",
            )
            .bind(prefix)
            .bind(self.config.bucket_width())
            .bind(start)
            .bind(submitted)
            .bind(completed)
            .bind(failed)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;

        let count = counted.len();
        if token.is_none() {
            for event in counted {
                // Fails only when nobody is subscribed, which is fine: the feed keeps no history.
                let _ = self.feed.send(event);
            }
        }
        Ok(count)
    }
}

/// The state row of `prefix` as of `now` (a rebuild's token whose lease ran out reads as no
/// state: lost).
async fn state_of(
    connection: &mut sqlx::SqliteConnection,
    prefix: &str,
    now: i64,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT state FROM counters_state
         WHERE prefix = ? AND (lease_until IS NULL OR lease_until > ?)",
    )
    .bind(prefix)
    .bind(now)
    .fetch_optional(connection)
    .await?)
}

async fn set_state(
    connection: &mut sqlx::SqliteConnection,
    prefix: &str,
    state: &str,
    lease_until: Option<i64>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO counters_state (prefix, state, lease_until) VALUES (?, ?, ?)
         ON CONFLICT (prefix) DO UPDATE SET state = excluded.state, lease_until = excluded.lease_until",
    )
    .bind(prefix)
    .bind(state)
    .bind(lease_until)
    .execute(connection)
    .await?;
    Ok(())
}

/// When a rebuild's lease taken now runs out (Unix seconds).
fn lease_end() -> i64 {
    let lease = i64::try_from(REBUILD_LEASE.as_secs()).unwrap_or(i64::MAX);
    Utc::now().timestamp().saturating_add(lease)
}

impl SqliteCounters {
    /// Renews (with the lease's end) or finishes (`None`) the rebuild of `token`.
    async fn rebuild_step(&self, token: &RebuildToken, lease_until: Option<i64>) -> Result<bool> {
        let _serialized = self.inner.write.lock().await;
        let prefix = self.inner.config.key_prefix.as_str();
        let mut tx = self.inner.pool.begin_with("BEGIN IMMEDIATE").await?;
        let now = Utc::now().timestamp();
        if state_of(&mut tx, prefix, now).await?.as_deref() != Some(token.as_str()) {
            return Ok(false);
        }
        match lease_until {
            Some(until) => set_state(&mut tx, prefix, token.as_str(), Some(until)).await?,
            None => set_state(&mut tx, prefix, IntactMark::new().as_str(), None).await?,
        }
        tx.commit().await?;
        Ok(true)
    }
}

#[async_trait::async_trait]
impl Counters for SqliteCounters {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.inner.pool).await?;
        Ok(())
    }

    fn config(&self) -> &CountersConfig {
        &self.inner.config
    }

    async fn record_at(
        &self,
        events: &[EventEnvelope],
        recording: Recording<'_>,
        now: DateTime<Utc>,
    ) -> Result<RecordOutcome> {
        let (token, guard) = match recording {
            Recording::Live => (None, None),
            Recording::LiveGuarded(mark) => (None, Some(mark.clone())),
            Recording::Rebuild(token) => (Some(token.clone()), None),
        };
        let mut outcome = RecordOutcome::default();
        for chunk in events.chunks(MAX_EVENTS_PER_WRITE) {
            let inner = Arc::clone(&self.inner);
            let write = tokio::spawn({
                let chunk = chunk.to_vec();
                let (token, guard) = (token.clone(), guard.clone());
                async move { inner.write(chunk, token, guard, now).await }
            });
            let counted = match write.await {
                Ok(counted) => counted?,
                Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                Err(_) => return Err(CountersError::Cancelled),
            };
            outcome.counted += counted;
            outcome.duplicates += chunk.len().saturating_sub(counted);
        }
        Ok(outcome)
    }

    async fn state(&self) -> Result<CountersState> {
        let mut connection = self.inner.pool.acquire().await?;
        let now = Utc::now().timestamp();
        Ok(
            match state_of(&mut connection, &self.inner.config.key_prefix, now).await? {
                Some(state) => IntactMark::parse(&state)
                    .map_or(CountersState::Rebuilding, CountersState::Intact),
                None => CountersState::Lost,
            },
        )
    }

    async fn begin_rebuild(&self) -> Result<RebuildToken> {
        let _serialized = self.inner.write.lock().await;
        let token = RebuildToken::new();
        let prefix = self.inner.config.key_prefix.as_str();
        let mut tx = self.inner.pool.begin_with("BEGIN IMMEDIATE").await?;
        for table in [
            "counters_seen",
            "counters_totals",
            "counters_by_type",
            "counters_custom_types",
            "counters_throughput",
        ] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE prefix = ?"
            )))
            .bind(prefix)
            .execute(&mut *tx)
            .await?;
        }
        set_state(&mut tx, prefix, token.as_str(), Some(lease_end())).await?;
        tx.commit().await?;
        Ok(token)
    }

    async fn renew_rebuild(&self, token: &RebuildToken) -> Result<bool> {
        self.rebuild_step(token, Some(lease_end())).await
    }

    async fn finish_rebuild(&self, token: &RebuildToken) -> Result<bool> {
        self.rebuild_step(token, None).await
    }

    async fn subscribe(&self) -> Result<EventFeed> {
        let receiver = self.inner.feed.subscribe();
        let feed = futures_util::stream::unfold(receiver, |mut receiver| async move {
            let item = match receiver.recv().await {
                Ok(event) => Ok(event),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    Err(CountersError::FeedLagged { missed })
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            Some((item, receiver))
        });
        Ok(Box::pin(feed))
    }

    async fn overview_at(
        &self,
        now: DateTime<Utc>,
        buckets: usize,
        bucket_seconds: u64,
    ) -> Result<Overview> {
        let plan = BucketPlan::new(&self.inner.config, now, buckets, bucket_seconds)?;
        let prefix = self.inner.config.key_prefix.as_str();
        // One read transaction: totals, types and buckets from the same snapshot.
        let mut tx = self.inner.pool.begin().await?;
        let totals: Vec<(String, i64)> =
            sqlx::query_as("SELECT counter, value FROM counters_totals WHERE prefix = ?")
                .bind(prefix)
                .fetch_all(&mut *tx)
                .await?;
        let by_type: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT job_type, counter, value FROM counters_by_type WHERE prefix = ?",
        )
        .bind(prefix)
        .fetch_all(&mut *tx)
        .await?;
        let (from, until) = plan.range();
        let rows: Vec<(i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT start, submitted, completed, failed FROM counters_throughput
             WHERE prefix = ? AND width = ? AND start >= ? AND start < ?",
        )
        .bind(prefix)
        .bind(self.inner.config.bucket_width())
        .bind(from)
        .bind(until)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;

        let mut total_counters = zero_counters();
        for (counter, value) in totals {
            if let Some(slot) = counter_slot(&mut total_counters, &counter) {
                *slot = count(&counter, value)?;
            }
        }
        let mut per_type: BTreeMap<String, JobCounters> = BTreeMap::new();
        for (job_type, counter, value) in by_type {
            let field = format!("{job_type}:{counter}");
            let counters = per_type.entry(job_type).or_insert_with(zero_counters);
            if let Some(slot) = counter_slot(counters, &counter) {
                *slot = count(&field, value)?;
            }
        }
        let mut recorded: BTreeMap<i64, BucketCounts> = BTreeMap::new();
        for (start, submitted, completed, failed) in rows {
            let mut counts: BucketCounts = [0; 3];
            for ((slot, value), field) in counts
                .iter_mut()
                .zip([submitted, completed, failed])
                .zip(BUCKET_FIELDS)
            {
                *slot = count(field, value)?;
            }
            recorded.insert(start, counts);
        }

        Ok(Overview {
            generated_at: now,
            totals: total_counters,
            by_type: by_type_list(per_type),
            throughput: plan.throughput(&recorded),
        })
    }
}

/// A stored count, which a negative value is not.
fn count(field: &str, value: i64) -> Result<u64> {
    u64::try_from(value).map_err(|_| CountersError::CorruptCounter {
        field: field.to_string(),
        value: value.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;
    use crate::conformance::event;
    use crate::contracts::event_envelope::EventType;

    /// The next item of the feed (waiting at most 10 s).
    async fn next(feed: &mut EventFeed) -> Option<Result<EventEnvelope>> {
        tokio::time::timeout(std::time::Duration::from_secs(10), feed.next())
            .await
            .expect("an item in time")
    }

    #[tokio::test]
    async fn a_lagging_subscriber_gets_one_lagged_item_then_the_newest_events() {
        let config = CountersConfig::new("lag");
        let counters = SqliteCounters::open_with_feed_capacity(&Location::Memory, config, 4)
            .await
            .expect("open");
        let mut feed = counters.subscribe().await.expect("subscribe");
        let now = Utc::now();
        let batch: Vec<EventEnvelope> = (0..10)
            .map(|_| event(EventType::JobCreated, "sleep", now))
            .collect();
        counters.record_batch(&batch).await.expect("record");

        match next(&mut feed).await {
            Some(Err(CountersError::FeedLagged { missed: 6 })) => {}
            other => panic!("expected one lagged item for 6 events, got {other:?}"),
        }
        for expected in &batch[6..] {
            let received = next(&mut feed).await.expect("open").expect("an event");
            assert_eq!(&received, expected);
        }
        // Caught up: the feed goes on with the next event counted.
        let later = event(EventType::JobCompleted, "sleep", now);
        counters
            .record_batch(std::slice::from_ref(&later))
            .await
            .expect("record later");
        let received = next(&mut feed).await.expect("open").expect("an event");
        assert_eq!(received, later);

        // The feed ends with the counters.
        drop(counters);
        assert!(next(&mut feed).await.is_none());
    }
}
