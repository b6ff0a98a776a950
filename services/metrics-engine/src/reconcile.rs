//! Rebuilding the counters from the event log. The event log keeps every event for good; the
//! counters (and their throughput buckets) are a projection of it, which a Redis without
//! persistence loses on restart. [`reconcile`] forgets the counters and replays the whole log
//! into them through the normal, idempotent recording (each event counted once by its
//! eventId), quietly: the live feed hears nothing of old events.
//!
//! It is safe while metrics engines run: they write the event log before they count, so an
//! event counted live before the reset is in the log and is counted again by the replay, and
//! one counted live after the reset is skipped by the replay (or the other way round).

use std::time::Instant;

use observatory_counters::{Counters, CountersError, Feed};
use observatory_event_log::{EventFilter, EventLog, EventLogError};

/// Events read from the log per page (and counted per write).
const PAGE: usize = 500;

/// What a reconciliation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reconciled {
    /// Events read from the event log.
    pub events: u64,
    /// Of those, events the counters counted (the rest were counted meanwhile, live).
    pub counted: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("reading the event log: {0}")]
    EventLog(#[from] EventLogError),
    #[error("writing the counters: {0}")]
    Counters(#[from] CountersError),
}

/// Rebuilds the counters from the event log (see the module documentation).
pub async fn reconcile(
    event_log: &dyn EventLog,
    counters: &dyn Counters,
) -> Result<Reconciled, ReconcileError> {
    let started = Instant::now();
    counters.reset().await?;
    let mut done = Reconciled::default();
    let mut cursor = None;
    loop {
        let page = event_log
            .list_events(&EventFilter::default(), PAGE, cursor.as_ref())
            .await?;
        let recorded = counters.record(&page.items, Feed::Quiet).await?;
        done.events += page.items.len() as u64;
        done.counted += recorded.counted as u64;
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    tracing::info!(events = done.events, counted = done.counted, took = ?started.elapsed(), "counters rebuilt from the event log");
    Ok(done)
}

/// At start: when the counters are empty but the event log is not (the counters' store lost
/// its data, e.g. a Redis without persistence restarted), rebuilds them. `Ok(None)` when
/// there was nothing to do.
pub async fn reconcile_if_lost(
    event_log: &dyn EventLog,
    counters: &dyn Counters,
) -> Result<Option<Reconciled>, ReconcileError> {
    let overview = counters
        .overview(1, counters.config().bucket_seconds)
        .await?;
    let t = &overview.totals;
    let counted = t.submitted + t.started + t.completed + t.failed + t.retried + t.dead_lettered;
    if counted > 0 {
        return Ok(None);
    }
    let logged = event_log
        .list_events(&EventFilter::default(), 1, None)
        .await?;
    if logged.items.is_empty() {
        return Ok(None);
    }
    tracing::warn!("the counters are empty but the event log is not; rebuilding them");
    reconcile(event_log, counters).await.map(Some)
}

/// `observatory reconcile`: which counters to rebuild from which event log (flags, or the
/// environment variables the metrics engine reads).
#[derive(Debug, Clone, clap::Args)]
pub struct ReconcileConfig {
    /// The embedded stores of `observatory up --data-dir DIR` (`counters.sqlite` and
    /// `events.sqlite` there) instead of Redis and MongoDB.
    #[arg(long, env = "OBSERVATORY_DATA_DIR")]
    pub data_dir: Option<std::path::PathBuf>,
    /// Redis URL of the counters.
    #[arg(
        long,
        env = "OBSERVATORY_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    pub redis_url: String,
    /// Prefix of every counters key.
    #[arg(long, env = "OBSERVATORY_REDIS_PREFIX", default_value = "observatory")]
    pub redis_prefix: String,
    /// MongoDB URL of the event log.
    #[arg(
        long,
        env = "OBSERVATORY_MONGODB_URL",
        default_value = "mongodb://127.0.0.1:27017/?directConnection=true"
    )]
    pub mongodb_url: String,
    /// MongoDB database of the event log.
    #[arg(
        long,
        env = "OBSERVATORY_MONGODB_DATABASE",
        default_value = "observatory"
    )]
    pub mongodb_database: String,
}

/// Opens the stores `config` names and rebuilds the counters.
pub async fn run_reconcile(config: &ReconcileConfig) -> Result<Reconciled, ReconcileError> {
    use observatory_counters::{CountersConfig, RedisCounters, SqliteCounters};
    use observatory_event_log::{MongoEventLog, SqliteEventLog};
    use observatory_sqlite::Location;
    match &config.data_dir {
        Some(dir) => {
            let log =
                SqliteEventLog::open(&Location::in_data_dir(Some(dir), "events.sqlite")).await?;
            let counters = SqliteCounters::open(
                &Location::in_data_dir(Some(dir), "counters.sqlite"),
                CountersConfig::new(config.redis_prefix.clone()),
            )
            .await?;
            reconcile(&log, &counters).await
        }
        None => {
            let log = MongoEventLog::connect(&config.mongodb_url, &config.mongodb_database).await?;
            let counters = RedisCounters::connect(&config.redis_url, &config.redis_prefix).await?;
            reconcile(&log, &counters).await
        }
    }
}
