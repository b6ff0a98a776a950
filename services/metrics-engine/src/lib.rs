//! The metrics engine: stores every job lifecycle event once in the event log (MongoDB, or
//! SQLite under `observatory up`) and counts it once in the counters (Redis, or SQLite), which
//! also publish it on the live feed for the UIs. The stores and the broker are reached through
//! their ports ([`MetricsEngineBackends`]).
//!
//! **Why.** The processor owns the authoritative job state; the event log (a job's timeline,
//! `GET /events`) and the counters (the overview, throughput, live feed) are projections of
//! the `job.*` events it publishes. This service builds both from the broker, so the read model
//! serves them without touching the processor's database.
//!
//! **Batching.** [`run`] consumes the metrics queue (`<prefix>.metrics-engine`, bound to `job.*`
//! on the events exchange) with a prefetch of [`MetricsEngineConfig::prefetch`]. It collects up
//! to [`MetricsEngineConfig::batch_size`] deliveries, or whatever arrived within
//! [`MetricsEngineConfig::batch_wait_ms`] after the first of them, and then handles the batch
//! with one `insert_many` into MongoDB ([`observatory_event_log::EventLog::append_batch`]), one
//! Lua script call into Redis ([`observatory_counters::Counters::record_batch`]) and one
//! acknowledgement (`multiple` up to the last delivery tag). Under load that is three round
//! trips per batch instead of per event; when idle, an event waits at most `batch_wait_ms`.
//!
//! **Validation.** Each body must be JSON, a valid `EventEnvelope`, and valid against the
//! typed schema its `eventType` names (`job-created.json`, ...). Anything else (malformed JSON,
//! an unknown event type, a schema violation) is published to the dead-letter exchange with
//! the reason in [`observatory_messaging::REASON_HEADER`] (`<code>: <detail>`) and then acked:
//! it is never requeued forever and never dropped silently, and never stored or counted.
//!
//! **Delivery guarantees.** Delivery is at-least-once and storage effectively-once:
//! - a delivery is acked only after *both* stores have its event, so a crash at any point
//!   leaves it unacked and the broker redelivers it (to this process after a restart, or to
//!   another instance);
//! - both stores are idempotent per `eventId` (the event log's `_id` is the eventId; the
//!   counters keep a seen-marker per eventId inside the same atomic script that counts and
//!   publishes), so a redelivered event is stored once, counted once and published on the
//!   live feed once;
//! - when a store fails, the engine waits (exponential backoff) and nacks the batch with
//!   requeue, so nothing is lost and the retry double-counts nothing;
//! - on shutdown the engine finishes the batch in hand (stores and acks it), closes its
//!   connection, and the broker requeues whatever was prefetched but not yet handled.
//!
//! **Counters can be rebuilt.** The event log keeps every event; the counters are its
//! projection. The engine checks at start and every [`CHECK_INTERVAL`] that the counters'
//! store still holds them (its state mark; a restarted Redis without persistence lost it) and
//! rebuilds them from the log beside the consumption when not ([`reconcile_if_lost`]);
//! `observatory reconcile` rebuilds them on demand ([`reconcile`]). The counters' markers are
//! bounded by their deduplication window; an event older than that is counted only when this
//! engine's append stored it in the log for the first time (and no rebuild began since), so a
//! late redelivery is never counted twice.
//!
//! **Operations.** The HTTP server serves the contract's operational endpoints
//! (`openapi/operations.yaml`): `/healthz`, `/readyz` (RabbitMQ consuming, Redis and MongoDB
//! answering), `/metrics`, `/openapi.json` and `/docs`. Connections to the three servers are
//! retried with backoff (logging that it waits); a lost broker connection is re-established.

pub mod contracts;
mod engine;
mod metrics;
mod reconcile;
mod validate;

use std::net::SocketAddr;
use std::sync::Arc;

use observatory_counters::{Counters, RedisCounters};
use observatory_event_log::{EventLog, MongoEventLog};
use observatory_messaging::{BrokerConnector, RabbitMq, Topology, redact};
use observatory_runtime::backoff::Dependency;
use observatory_runtime::http::{ContractRouter, Readiness, RouterError};
use observatory_runtime::metrics::ServiceMetrics;
use observatory_runtime::shutdown::CancellationToken;
use observatory_validation::SchemaError;

pub use crate::reconcile::{
    CHECK_INTERVAL, ReconcileConfig, ReconcileError, Reconciled, reconcile, reconcile_if_lost,
    run_reconcile,
};

use crate::engine::{DependencyCheck, Shared};
use crate::metrics::EngineMetrics;
use crate::validate::Validators;

/// The service name: the `service` label of every metric, and what `/healthz` reports.
pub const SERVICE: &str = "metrics-engine";

/// Largest request body the operational endpoints accept.
const BODY_LIMIT: usize = 1 << 20;

/// Configuration of the metrics engine (flags, or the environment variables named in `--help`).
#[derive(Debug, Clone, clap::Args)]
pub struct MetricsEngineConfig {
    /// RabbitMQ URL to consume job events from.
    #[arg(
        long,
        env = "OBSERVATORY_RABBITMQ_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    pub rabbitmq_url: String,

    /// Redis URL of the counters and the live event feed.
    #[arg(
        long,
        env = "OBSERVATORY_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    pub redis_url: String,

    /// MongoDB URL of the event log.
    #[arg(
        long,
        env = "OBSERVATORY_MONGODB_URL",
        default_value = "mongodb://127.0.0.1:27017/?directConnection=true"
    )]
    pub mongodb_url: String,

    /// MongoDB database holding the event log.
    #[arg(
        long,
        env = "OBSERVATORY_MONGODB_DATABASE",
        default_value = "observatory"
    )]
    pub mongodb_database: String,

    /// Prefix of every Redis key and of the live feed channel.
    #[arg(long, env = "OBSERVATORY_REDIS_PREFIX", default_value = "observatory")]
    pub redis_prefix: String,

    /// Prefix of every RabbitMQ exchange and queue name.
    #[arg(long, env = "OBSERVATORY_BROKER_PREFIX", default_value = "observatory")]
    pub broker_prefix: String,

    /// Address of the operational HTTP endpoints (/healthz, /readyz, /metrics, /docs).
    #[arg(
        long,
        env = "OBSERVATORY_METRICS_ENGINE_ADDR",
        default_value = "127.0.0.1:9102"
    )]
    pub metrics_engine_addr: SocketAddr,

    /// Most unacknowledged deliveries the broker hands this consumer at once.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u16).range(1..))]
    pub prefetch: u16,

    /// Most events stored and counted together in one batch.
    #[arg(long, default_value_t = 128, value_parser = batch_size)]
    pub batch_size: usize,

    /// How long to wait for more events after the first one of a batch, in milliseconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub batch_wait_ms: u64,
}

/// `--batch-size`: 1 to 10,000 events.
fn batch_size(raw: &str) -> Result<usize, String> {
    raw.parse::<usize>()
        .ok()
        .filter(|n| (1..=10_000).contains(n))
        .ok_or_else(|| format!("{raw:?} is not a batch size from 1 to 10000"))
}

impl MetricsEngineConfig {
    /// The defaults (what `--help` shows), e.g. as a base for tests.
    pub fn local() -> Self {
        Self {
            rabbitmq_url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
            redis_url: "redis://127.0.0.1:6379".into(),
            mongodb_url: "mongodb://127.0.0.1:27017/?directConnection=true".into(),
            mongodb_database: "observatory".into(),
            redis_prefix: "observatory".into(),
            broker_prefix: "observatory".into(),
            metrics_engine_addr: SocketAddr::from(([127, 0, 0, 1], 9102)),
            prefetch: 256,
            batch_size: 128,
            batch_wait_ms: 10,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MetricsEngineError {
    #[error("invalid configuration: {0}")]
    Config(&'static str),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
    #[error("the HTTP server task failed: {0}")]
    ServerTask(String),
    #[error("building the HTTP router: {0}")]
    Router(#[from] RouterError),
    #[error("compiling the event schemas: {0}")]
    Schema(#[from] SchemaError),
}

/// What the metrics engine runs on: a broker, the counters and the event log, whichever
/// adapters serve them.
pub struct MetricsEngineBackends {
    pub broker: Arc<dyn BrokerConnector>,
    pub counters: Dependency<dyn Counters>,
    pub event_log: Dependency<dyn EventLog>,
}

impl MetricsEngineBackends {
    /// RabbitMQ, Redis and MongoDB as `config` names them.
    pub fn from_config(config: &MetricsEngineConfig) -> Self {
        let (redis_url, redis_prefix) = (config.redis_url.clone(), config.redis_prefix.clone());
        let (mongodb_url, database) = (config.mongodb_url.clone(), config.mongodb_database.clone());
        Self {
            broker: Arc::new(RabbitMq::new(
                config.rabbitmq_url.clone(),
                Topology::new(config.broker_prefix.clone()),
            )),
            counters: Dependency::connect(
                "redis",
                format!("Redis at {}", redact(&redis_url)),
                move || {
                    let (url, prefix) = (redis_url.clone(), redis_prefix.clone());
                    async move {
                        let counters = RedisCounters::connect(&url, &prefix).await?;
                        counters.ping().await?;
                        Ok::<Arc<dyn Counters>, observatory_counters::CountersError>(Arc::new(
                            counters,
                        ))
                    }
                },
            ),
            event_log: Dependency::connect(
                "mongodb",
                format!("MongoDB at {}", redact(&mongodb_url)),
                move || {
                    let (url, database) = (mongodb_url.clone(), database.clone());
                    async move {
                        let log = MongoEventLog::connect(&url, &database).await?;
                        log.ping().await?;
                        Ok::<Arc<dyn EventLog>, observatory_event_log::EventLogError>(Arc::new(log))
                    }
                },
            ),
        }
    }
}

/// Runs the metrics engine until `shutdown` is cancelled: listens on
/// [`MetricsEngineConfig::metrics_engine_addr`], connects to RabbitMQ, Redis and MongoDB (with
/// retries), and consumes the metrics queue. Returns `Ok` after a clean shutdown.
pub async fn run(
    config: MetricsEngineConfig,
    shutdown: CancellationToken,
) -> Result<(), MetricsEngineError> {
    let addr = config.metrics_engine_addr;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| MetricsEngineError::Bind { addr, source })?;
    run_on(config, listener, shutdown).await
}

/// [`run`] on a listener the caller bound (`metrics_engine_addr` is then ignored).
pub async fn run_on(
    config: MetricsEngineConfig,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> Result<(), MetricsEngineError> {
    let backends = MetricsEngineBackends::from_config(&config);
    run_with(config, listener, backends, shutdown).await
}

/// [`run_on`] with the given backends (the URLs and prefixes in `config` are then ignored):
/// `observatory up` passes embedded ones.
pub async fn run_with(
    config: MetricsEngineConfig,
    listener: tokio::net::TcpListener,
    backends: MetricsEngineBackends,
    shutdown: CancellationToken,
) -> Result<(), MetricsEngineError> {
    if config.batch_size == 0 {
        return Err(MetricsEngineError::Config(
            "--batch-size must be at least 1",
        ));
    }
    if config.prefetch == 0 {
        return Err(MetricsEngineError::Config("--prefetch must be at least 1"));
    }
    let validators = Validators::new()?;
    let service_metrics = ServiceMetrics::new(SERVICE);
    let metrics = EngineMetrics::register(&service_metrics);
    let shared = Arc::new(Shared::default());
    let readiness = DependencyCheck::all(&shared, &backends)
        .into_iter()
        .fold(Readiness::default(), |readiness, check| {
            readiness.with(check)
        });
    let app = ContractRouter::new(
        SERVICE,
        env!("CARGO_PKG_VERSION"),
        observatory_contracts::openapi::OPERATIONS,
        service_metrics,
    )?
    .operational(readiness)?
    .finish((), BODY_LIMIT)?;

    if let Ok(local) = listener.local_addr() {
        tracing::info!(addr = %local, "metrics engine: operational endpoints listening");
    }
    // The consumer stops on `stop`: on shutdown, or when the HTTP server fails.
    let stop = shutdown.child_token();
    let server_stop = stop.clone();
    let mut server = tokio::spawn(async move {
        observatory_runtime::http::serve(
            listener,
            app,
            async move { server_stop.cancelled().await },
        )
        .await
    });

    let consumer = engine::consume(config, backends, shared, validators, metrics, stop.clone());
    tokio::pin!(consumer);
    let server_result = tokio::select! {
        () = &mut consumer => {
            stop.cancel();
            (&mut server).await
        }
        result = &mut server => {
            // On shutdown the server may simply finish first.
            if !stop.is_cancelled() {
                tracing::error!("the HTTP server stopped; stopping the consumer");
            }
            stop.cancel();
            consumer.await;
            result
        }
    };
    match server_result {
        Ok(Ok(())) => {
            tracing::info!("metrics engine stopped");
            Ok(())
        }
        Ok(Err(error)) => Err(MetricsEngineError::Serve(error)),
        Err(error) => Err(MetricsEngineError::ServerTask(error.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: MetricsEngineConfig,
    }

    #[test]
    fn the_flag_defaults_are_the_local_defaults() {
        // The environment variables would override the defaults this test compares.
        if std::env::vars().any(|(k, _)| k.starts_with("OBSERVATORY_")) {
            return;
        }
        let parsed = Cli::try_parse_from(["metrics-engine"]).expect("defaults parse");
        let local = MetricsEngineConfig::local();
        assert_eq!(format!("{:?}", parsed.config), format!("{local:?}"));
    }

    #[test]
    fn flags_override_the_defaults() {
        let parsed = Cli::try_parse_from([
            "metrics-engine",
            "--batch-size",
            "7",
            "--batch-wait-ms",
            "3",
            "--prefetch",
            "9",
            "--metrics-engine-addr",
            "0.0.0.0:1234",
        ])
        .expect("flags parse");
        assert_eq!(parsed.config.batch_size, 7);
        assert_eq!(parsed.config.batch_wait_ms, 3);
        assert_eq!(parsed.config.prefetch, 9);
        assert_eq!(parsed.config.metrics_engine_addr.port(), 1234);
    }

    #[tokio::test]
    async fn a_zero_batch_size_is_refused() {
        let config = MetricsEngineConfig {
            batch_size: 0,
            ..MetricsEngineConfig::local()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let result = run_on(config, listener, CancellationToken::new()).await;
        assert!(
            matches!(result, Err(MetricsEngineError::Config(_))),
            "{result:?}"
        );
    }
}
