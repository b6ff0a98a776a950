//! Rebuilding the counters from the event log. The event log keeps every event for good; the
//! counters (and their throughput buckets) are a projection of it, which a Redis without
//! persistence loses on restart. [`reconcile`] forgets the counters and replays the whole log
//! into them, quietly (the live feed hears nothing of old events), as one exclusive rebuild
//! of the counters port: beginning it supersedes any other rebuild, and the store's mark of
//! it (renewed every page) tells when the store lost it midway, which starts it over.
//!
//! It is safe while metrics engines run: they write the event log before they count; the
//! markers dedupe what both the replay and a live engine count; and an event older than the
//! markers' window (which the replay does not mark) is appended by an engine only while the
//! counters are intact and counted only if no rebuild began since (`Recording::LiveGuarded`),
//! so either the engine or the replay counts it.
//!
//! What it does not cover: a Redis with RDB or AOF persistence restores an older snapshot
//! that still says intact (run `observatory reconcile` after restoring one); and an event
//! older than the window whose count a crash interrupted after the append is counted by the
//! next rebuild only.
//!
//! The metrics engine checks the counters' state at start and every
//! [`CHECK_INTERVAL`] ([`watch_counters`]) and rebuilds them when the store lost them, so a
//! Redis restart loses nothing visible for longer than that and the replay.

use std::time::{Duration, Instant};

use observatory_counters::{Counters, CountersError, CountersState, Recording};
use observatory_event_log::{EventFilter, EventLog, EventLogError};
use observatory_runtime::shutdown::CancellationToken;

/// Events read from the log per page (and counted per write).
const PAGE: usize = 500;
/// How often the metrics engine checks that the counters are intact.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(10);
/// Rebuilds started over (the store lost the rebuild's mark) before giving up.
const ATTEMPTS: usize = 3;

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
    #[error("another rebuild of the counters took over (it rebuilds them)")]
    Superseded,
    #[error("the counters' store lost the rebuild's mark {ATTEMPTS} times in a row")]
    KeptLosingTheMark,
}

/// Rebuilds the counters from the event log (see the module documentation).
pub async fn reconcile(
    event_log: &dyn EventLog,
    counters: &dyn Counters,
) -> Result<Reconciled, ReconcileError> {
    for attempt in 1..=ATTEMPTS {
        match rebuild(event_log, counters).await {
            Err(ReconcileError::Counters(CountersError::RebuildSuperseded))
            | Err(ReconcileError::Superseded) => {
                // Another rebuild holds the mark: leave the work to it. No mark at all: the
                // store lost it (restarted) midway, so start over.
                if counters.state().await? != CountersState::Lost {
                    return Err(ReconcileError::Superseded);
                }
                tracing::warn!(
                    attempt,
                    "the counters' store lost the rebuild midway; starting over"
                );
            }
            done => return done,
        }
    }
    Err(ReconcileError::KeptLosingTheMark)
}

async fn rebuild(
    event_log: &dyn EventLog,
    counters: &dyn Counters,
) -> Result<Reconciled, ReconcileError> {
    let started = Instant::now();
    let token = counters.begin_rebuild().await?;
    let mut done = Reconciled::default();
    let mut cursor = None;
    loop {
        let page = event_log
            .list_events(&EventFilter::default(), PAGE, cursor.as_ref())
            .await?;
        let recorded = counters
            .record(&page.items, Recording::Rebuild(&token))
            .await?;
        done.events += page.items.len() as u64;
        done.counted += recorded.counted as u64;
        if !counters.renew_rebuild(&token).await? {
            return Err(ReconcileError::Superseded);
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    if !counters.finish_rebuild(&token).await? {
        return Err(ReconcileError::Superseded);
    }
    tracing::info!(events = done.events, counted = done.counted, took = ?started.elapsed(), "counters rebuilt from the event log");
    Ok(done)
}

/// When the counters' store lost them (or never had them: a new deployment), rebuilds them.
/// `Ok(None)` when they are intact, or another rebuild is under way.
pub async fn reconcile_if_lost(
    event_log: &dyn EventLog,
    counters: &dyn Counters,
) -> Result<Option<Reconciled>, ReconcileError> {
    if counters.state().await? != CountersState::Lost {
        return Ok(None);
    }
    tracing::info!(
        "the counters are not intact (new, or their store lost them); rebuilding them from the event log"
    );
    match reconcile(event_log, counters).await {
        Err(ReconcileError::Superseded) => Ok(None),
        done => done.map(Some),
    }
}

/// The metrics engine's watch: [`reconcile_if_lost`] now and every [`CHECK_INTERVAL`] until
/// `shutdown`; `on_rebuilt` hears of each completed rebuild.
pub async fn watch_counters(
    event_log: &dyn EventLog,
    counters: &dyn Counters,
    shutdown: &CancellationToken,
    on_rebuilt: impl Fn(&Reconciled),
) {
    loop {
        match reconcile_if_lost(event_log, counters).await {
            Ok(Some(done)) => on_rebuilt(&done),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%error, "could not check or rebuild the counters; trying again later")
            }
        }
        tokio::select! {
            () = tokio::time::sleep(CHECK_INTERVAL) => {}
            () = shutdown.cancelled() => return,
        }
    }
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
