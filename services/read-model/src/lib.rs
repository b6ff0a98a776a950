//! The read model: the one read-only HTTP surface for the terminal UI and the web dashboard
//! (`openapi/read-model.yaml`, served bundled at `/openapi.json`). Each store is reached
//! through its port ([`ReadModelBackends`]); the table names the real adapters, and under
//! `observatory up` the embedded ones (SQLite, the in-process broker) answer the same calls.
//!
//! | operation | answered from |
//! |---|---|
//! | `GET /overview` | Redis counters ([`observatory_counters::Counters::overview`]): totals, per type, and [`ReadModelOptions::overview_buckets`] throughput buckets |
//! | `GET /jobs`, `GET /dead-letters` | PostgreSQL ([`observatory_job_store::JobStore`]), keyset pages |
//! | `GET /jobs/{jobId}` | PostgreSQL (job and attempts) and MongoDB (its event timeline, oldest first) |
//! | `GET /events` | MongoDB ([`observatory_event_log::EventLog`]), keyset pages |
//! | `GET /queues` | RabbitMQ: passive declares of every queue of the [`Topology`] |
//! | `GET /alerts` | Alertmanager's `GET /api/v2/alerts?active=true`, when configured |
//! | `GET /stream` | the Redis live feed ([`observatory_counters::Counters::subscribe`]) as server-sent events |
//! | `GET /`, `GET /ui/{asset}` | the web dashboard ([`observatory_web`]), built into the binary |
//!
//! Everything else a service serves (`/healthz`, `/readyz`, `/metrics`, `/docs`, JSON errors,
//! correlation ids) comes from [`observatory_runtime::http::ContractRouter`]; [`router`]
//! registers every operation of the contract by its operationId, so the build of the router
//! fails if an operation lacks a handler.
//!
//! Decisions:
//! - **Serve first, connect in the background.** [`run`] binds and serves at once; each
//!   dependency is connected by its own task, retrying with backoff and logging every failure,
//!   and is put into the shared [`ReadModelState`] once connected. Until then `/healthz` is 200,
//!   `/readyz` is 503 naming what is missing, and an endpoint that needs a missing dependency
//!   answers 503 with `Retry-After`. A process therefore never crash-loops because a database
//!   starts later than it does, and its probes say exactly what is wrong. PostgreSQL (sqlx
//!   pool), Redis (connection manager) and MongoDB (driver) reconnect by themselves once
//!   connected; the RabbitMQ connection does not, so a supervisor task replaces it when it is
//!   lost.
//! - **Query parameters are parsed by hand** ([`params`]), never by axum's `Query`, so that a bad
//!   value is the contract's `ApiError` (400 `validation-failed`, one detail per bad parameter,
//!   its name as the pointer), not a text/plain rejection.
//! - **Dependency errors are 503 with `Retry-After`** (`postgres-unavailable`,
//!   `mongodb-unavailable`, `redis-unavailable`, `broker-unavailable`); a cursor the store did
//!   not issue is 400; anything else (a corrupt row) is 500. Details go to the log, not to the
//!   client.
//! - **Alerts degrade, they do not fail**: `/alerts` is always 200 and says where its answer came
//!   from (`alertmanager`, `not-configured`, or `unavailable` with the reason).
//! - **One subscription serves every live stream** (see `live`): events are encoded once and
//!   fanned out through a bounded buffer; a client too slow for it is cut off (it reconnects)
//!   instead of growing the read model's memory, and open streams are capped. Streams end on
//!   shutdown (so graceful shutdown does not wait for them), and when the feed's connection is
//!   lost: browsers' `EventSource` reconnects by itself, which subscribes again.

mod alerts;
mod connect;
pub mod contracts;
mod dashboard;
mod handlers;
mod live;
pub mod params;
mod readiness;
mod state;

use std::fmt;
use std::net::SocketAddr;

use observatory_messaging::redact;
use observatory_runtime::http::{ContractRouter, RouterError};
use observatory_runtime::shutdown::CancellationToken;
use tokio::net::TcpListener;

pub use crate::connect::ReadModelBackends;
pub use observatory_messaging::Topology;
pub use state::{DependencyNames, ReadModelOptions, ReadModelState};

/// The service name: the `service` label of every metric and the `/healthz` answer.
pub const SERVICE: &str = "read-model";

/// Configuration of the read model, from flags or `OBSERVATORY_*` environment variables. The
/// defaults work with the servers of a local development machine.
#[derive(Clone, clap::Args)]
pub struct ReadModelConfig {
    /// Address the read model's HTTP server listens on.
    #[arg(
        long = "read-model-addr",
        env = "OBSERVATORY_READ_MODEL_ADDR",
        default_value = "127.0.0.1:8080"
    )]
    pub addr: SocketAddr,
    /// PostgreSQL (the job store: jobs, attempts, dead letters).
    #[arg(
        long,
        env = "OBSERVATORY_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/observatory"
    )]
    pub postgres_url: String,
    /// Redis (counters, throughput and the live feed).
    #[arg(
        long,
        env = "OBSERVATORY_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    pub redis_url: String,
    /// Prefix of every Redis key and channel (the metrics engine must use the same).
    #[arg(long, env = "OBSERVATORY_REDIS_PREFIX", default_value = "observatory")]
    pub redis_prefix: String,
    /// MongoDB (the event log).
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
    /// RabbitMQ (queue depths).
    #[arg(
        long,
        env = "OBSERVATORY_RABBITMQ_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    pub rabbitmq_url: String,
    /// Prefix of every exchange and queue name (the other services must use the same).
    #[arg(long, env = "OBSERVATORY_BROKER_PREFIX", default_value = "observatory")]
    pub broker_prefix: String,
    /// Alertmanager's base URL (e.g. http://127.0.0.1:9093); without it `/alerts` answers
    /// `not-configured`.
    #[arg(long, env = "OBSERVATORY_ALERTMANAGER_URL")]
    pub alertmanager_url: Option<String>,
    /// Origins allowed to call the API from a browser (CORS), repeatable or comma-separated;
    /// `*` allows any. None by default (same-origin only).
    #[arg(
        long = "cors-origin",
        env = "OBSERVATORY_CORS_ORIGIN",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,
    /// Largest request body accepted, in bytes (the API reads none; larger is 413).
    #[arg(long, env = "OBSERVATORY_BODY_LIMIT", default_value_t = 65_536,
          value_parser = observatory_runtime::config::body_limit)]
    pub body_limit: usize,
    /// The gateway's base URL as a browser reaches it: the web dashboard submits jobs there,
    /// and its Content-Security-Policy allows only that origin besides its own. Empty: the
    /// dashboard is read-only.
    #[arg(
        long = "gateway-url",
        env = "OBSERVATORY_GATEWAY_URL",
        default_value = "http://127.0.0.1:3000"
    )]
    pub gateway_url: String,
}

impl fmt::Debug for ReadModelConfig {
    /// URLs without their passwords.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadModelConfig")
            .field("addr", &self.addr)
            .field("postgres_url", &redact(&self.postgres_url))
            .field("redis_url", &redact(&self.redis_url))
            .field("redis_prefix", &self.redis_prefix)
            .field("mongodb_url", &redact(&self.mongodb_url))
            .field("mongodb_database", &self.mongodb_database)
            .field("rabbitmq_url", &redact(&self.rabbitmq_url))
            .field("broker_prefix", &self.broker_prefix)
            .field(
                "alertmanager_url",
                &self.alertmanager_url.as_deref().map(redact),
            )
            .field("cors_origins", &self.cors_origins)
            .field("body_limit", &self.body_limit)
            .field("gateway_url", &redact(&self.gateway_url))
            .finish()
    }
}

/// What can stop the read model.
#[derive(Debug, thiserror::Error)]
pub enum ReadModelError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("building the router: {0}")]
    Router(#[from] RouterError),
    #[error("building the HTTP client for Alertmanager: {0}")]
    HttpClient(#[source] reqwest::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// The finished router: every contract operation, the operational endpoints with readiness of
/// PostgreSQL, Redis, MongoDB and RabbitMQ, and CORS when origins are configured.
pub fn router(state: ReadModelState) -> Result<axum::Router, RouterError> {
    let router = ContractRouter::new(
        SERVICE,
        env!("CARGO_PKG_VERSION"),
        observatory_contracts::openapi::READ_MODEL,
        state.metrics().clone(),
    )?
    .operation("get_overview", handlers::get_overview)?
    .operation("list_jobs", handlers::list_jobs)?
    .operation("get_job", handlers::get_job)?
    .operation("list_events", handlers::list_events)?
    .operation("list_dead_letters", handlers::list_dead_letters)?
    .operation("get_queue_depths", handlers::get_queue_depths)?
    .operation("list_alerts", handlers::list_alerts)?
    .operation("stream_events", handlers::stream_events)?
    .operation("dashboard", dashboard::page)?
    .operation("dashboard_asset", dashboard::asset)?
    .operational(readiness::readiness(&state))?;
    let body_limit = state.options().body_limit;
    let cors = state.cors();
    let app = router.finish(state, body_limit)?;
    Ok(match cors {
        Some(cors) => app.layer(cors),
        None => app,
    })
}

/// Binds `config.addr` and runs the read model until `shutdown` is cancelled (see [`serve`]).
pub async fn run(
    config: ReadModelConfig,
    shutdown: CancellationToken,
) -> Result<(), ReadModelError> {
    let listener = TcpListener::bind(config.addr)
        .await
        .map_err(|source| ReadModelError::Bind {
            addr: config.addr,
            source,
        })?;
    serve(listener, config, shutdown).await
}

/// Runs the read model on `listener` (whose address wins over `config.addr`): serves at once,
/// connects the dependencies in the background (see the module documentation), and on
/// `shutdown` stops accepting connections, ends the live streams, finishes the requests in
/// flight and closes the connections.
pub async fn serve(
    listener: TcpListener,
    config: ReadModelConfig,
    shutdown: CancellationToken,
) -> Result<(), ReadModelError> {
    let backends = ReadModelBackends::from_config(&config)
        .map_err(|e| ReadModelError::Config(format!("describing this process: {e}")))?;
    serve_with(listener, config, backends, shutdown).await
}

/// [`serve`] with the given backends (the URLs and prefixes in `config` are then ignored):
/// `observatory up` passes embedded ones.
pub async fn serve_with(
    listener: TcpListener,
    config: ReadModelConfig,
    backends: ReadModelBackends,
    shutdown: CancellationToken,
) -> Result<(), ReadModelError> {
    // A child token: it is cancelled when the caller cancels, and by this function when the
    // server stops for another reason, so the background tasks never outlive it.
    let local = shutdown.child_token();
    let options = ReadModelOptions {
        alertmanager_url: config.alertmanager_url.clone(),
        cors_origins: config.cors_origins.clone(),
        body_limit: config.body_limit,
        gateway_url: Some(config.gateway_url.trim())
            .filter(|url| !url.is_empty())
            .map(str::to_owned),
        shutdown: local.clone(),
        ..ReadModelOptions::default()
    };
    let state = ReadModelState::new(options, backends.broker.topology().clone())?
        .with_dependency_names(DependencyNames {
            job_store: backends.job_store.kind,
            event_log: backends.event_log.kind,
            counters: backends.counters.kind,
            broker: backends.broker.kind(),
        });
    let app = router(state.clone())?;
    match listener.local_addr() {
        Ok(addr) => tracing::info!(%addr, "read model listening"),
        Err(error) => tracing::warn!(%error, "read model listening (address unknown)"),
    }
    let job_store_shared = backends.job_store.shared;
    let connecting = tokio::spawn(connect::connect_all(backends, state.clone(), local.clone()));
    let served =
        observatory_runtime::http::serve(listener, app, local.clone().cancelled_owned()).await;
    local.cancel();
    if let Err(error) = connecting.await {
        tracing::error!(%error, "the dependency connector failed");
    }
    state.close(!job_store_shared).await;
    tracing::info!("read model stopped");
    served.map_err(ReadModelError::Serve)
}
