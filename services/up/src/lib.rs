//! `observatory up`: the gateway, processor, metrics engine and read model in one process.
//!
//! With no configuration every part runs on an embedded adapter: the in-process broker, and
//! SQLite for the job store, the event log and the counters (files under `--data-dir`, or
//! memory). Naming a server (`--rabbitmq-url`, `--postgres-url`, `--redis-url`,
//! `--mongodb-url`, or their `OBSERVATORY_*` variables) swaps in the real adapter for that
//! part alone; everything above the adapters is the same code as the separate roles run.
//!
//! Shutdown (Ctrl-C or SIGTERM) stops the gateway first, lets the other roles drain what was
//! accepted (bounded by `--drain-timeout-secs`), then stops them: with the embedded broker,
//! whose queues live in memory, that is what keeps an accepted job from being lost.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use observatory_counters::{Counters, CountersConfig, SqliteCounters};
use observatory_event_log::{EventLog, SqliteEventLog};
use observatory_gateway::GatewayConfig;
use observatory_job_store::contracts::job::JobStatus;
use observatory_job_store::{JobStore, SqliteJobStore};
use observatory_messaging::{BrokerConnector, EmbeddedBroker, EmbeddedLimits, RabbitMq, Topology};
use observatory_metrics_engine::{MetricsEngineBackends, MetricsEngineConfig};
use observatory_processor::{ProcessorBackends, ProcessorConfig};
use observatory_read_model::{ReadModelBackends, ReadModelConfig};
use observatory_runtime::backoff::Dependency;
use observatory_runtime::shutdown::CancellationToken;
use observatory_sqlite::Location;
use tokio::net::TcpListener;

/// Configuration of `observatory up` (flags, or the environment variables named in `--help`).
/// The roles' other settings (concurrency, retry backoff, Alertmanager, CORS, …) come from
/// the same `OBSERVATORY_*` variables the separate roles read.
#[derive(Debug, Clone, clap::Args)]
pub struct UpConfig {
    /// Address of the gateway (job submission API).
    #[arg(
        long,
        env = "OBSERVATORY_GATEWAY_ADDR",
        default_value = "127.0.0.1:3000"
    )]
    pub gateway_addr: SocketAddr,
    /// Address of the read model (the API of the UIs).
    #[arg(
        long,
        env = "OBSERVATORY_READ_MODEL_ADDR",
        default_value = "127.0.0.1:8080"
    )]
    pub read_model_addr: SocketAddr,
    /// Address of the processor's operational endpoints (/metrics, /readyz).
    #[arg(
        long,
        env = "OBSERVATORY_PROCESSOR_ADDR",
        default_value = "127.0.0.1:9101"
    )]
    pub processor_addr: SocketAddr,
    /// Address of the metrics engine's operational endpoints (/metrics, /readyz).
    #[arg(
        long,
        env = "OBSERVATORY_METRICS_ENGINE_ADDR",
        default_value = "127.0.0.1:9102"
    )]
    pub metrics_engine_addr: SocketAddr,
    /// Keep the embedded stores' state in this directory (created when missing); without it
    /// they live in memory and are gone when the process stops.
    #[arg(long, env = "OBSERVATORY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Use this RabbitMQ instead of the embedded broker.
    #[arg(long, env = "OBSERVATORY_RABBITMQ_URL")]
    pub rabbitmq_url: Option<String>,
    /// Use this PostgreSQL for the job store instead of SQLite.
    #[arg(long, env = "OBSERVATORY_POSTGRES_URL")]
    pub postgres_url: Option<String>,
    /// Use this Redis for the counters and live feed instead of SQLite.
    #[arg(long, env = "OBSERVATORY_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Use this MongoDB for the event log instead of SQLite.
    #[arg(long, env = "OBSERVATORY_MONGODB_URL")]
    pub mongodb_url: Option<String>,
    /// Prefix of every exchange and queue name.
    #[arg(long, env = "OBSERVATORY_BROKER_PREFIX", default_value = "observatory")]
    pub broker_prefix: String,
    /// Prefix of every counters key and of the live feed.
    #[arg(long, env = "OBSERVATORY_REDIS_PREFIX", default_value = "observatory")]
    pub redis_prefix: String,
    /// MongoDB database of the event log.
    #[arg(
        long,
        env = "OBSERVATORY_MONGODB_DATABASE",
        default_value = "observatory"
    )]
    pub mongodb_database: String,
    /// On shutdown, how long the roles may take to finish what was accepted.
    #[arg(long, env = "OBSERVATORY_DRAIN_TIMEOUT_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(0..=3_600))]
    pub drain_timeout_secs: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum UpError {
    #[error(
        "cannot listen on {addr} for the {role}: {source}\n  (is another `observatory up` running? choose another address with --{flag})"
    )]
    Bind {
        role: &'static str,
        flag: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("reading the roles' settings from the environment: {0}")]
    Settings(String),
    #[error("opening the embedded {part}: {message}")]
    Embedded { part: &'static str, message: String },
    #[error("the {role} stopped: {message}")]
    Role { role: &'static str, message: String },
}

/// Where each part runs, as the banner says it.
struct Plan {
    broker: Arc<dyn BrokerConnector>,
    /// The embedded broker, when it is the one in use (drained on shutdown).
    embedded_broker: Option<EmbeddedBroker>,
    job_store: Option<Dependency<dyn JobStore>>,
    event_log: Option<Dependency<dyn EventLog>>,
    counters: Option<Dependency<dyn Counters>>,
}

/// Parses a role's configuration from the environment and its defaults alone (the same
/// `OBSERVATORY_*` variables the separate role reads).
fn from_environment<T: clap::Args>() -> Result<T, UpError> {
    #[derive(Parser)]
    struct Only<T: clap::Args> {
        #[command(flatten)]
        config: T,
    }
    Only::<T>::try_parse_from(["observatory-up"])
        .map(|only| only.config)
        .map_err(|e| UpError::Settings(e.to_string()))
}

async fn bind(
    role: &'static str,
    flag: &'static str,
    addr: SocketAddr,
) -> Result<TcpListener, UpError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| UpError::Bind {
            role,
            flag,
            addr,
            source,
        })
}

fn local(listener: &TcpListener, fallback: SocketAddr) -> SocketAddr {
    listener.local_addr().unwrap_or(fallback)
}

/// Runs everything until `shutdown`; returns once every role has stopped.
pub async fn run(config: UpConfig, shutdown: CancellationToken) -> Result<(), UpError> {
    // Bind first: a taken port is reported before anything starts.
    let gateway_listener = bind("gateway", "gateway-addr", config.gateway_addr).await?;
    let read_model_listener = bind("read model", "read-model-addr", config.read_model_addr).await?;
    let processor_listener = bind("processor", "processor-addr", config.processor_addr).await?;
    let metrics_listener = bind(
        "metrics engine",
        "metrics-engine-addr",
        config.metrics_engine_addr,
    )
    .await?;

    let mut processor_config: ProcessorConfig = from_environment()?;
    processor_config.instance_id = Some(processor_config.worker_name());
    processor_config.broker_prefix = config.broker_prefix.clone();
    let mut metrics_config: MetricsEngineConfig = from_environment()?;
    metrics_config.broker_prefix = config.broker_prefix.clone();
    metrics_config.redis_prefix = config.redis_prefix.clone();
    metrics_config.mongodb_database = config.mongodb_database.clone();
    let mut read_model_config: ReadModelConfig = from_environment()?;
    read_model_config.broker_prefix = config.broker_prefix.clone();
    read_model_config.redis_prefix = config.redis_prefix.clone();
    read_model_config.mongodb_database = config.mongodb_database.clone();
    let mut gateway_config: GatewayConfig = from_environment()?;
    // The servers that were named; each role builds its real adapters from these.
    if let Some(url) = &config.postgres_url {
        processor_config.postgres_url = url.clone();
        read_model_config.postgres_url = url.clone();
    }
    if let Some(url) = &config.redis_url {
        metrics_config.redis_url = url.clone();
        read_model_config.redis_url = url.clone();
    }
    if let Some(url) = &config.mongodb_url {
        metrics_config.mongodb_url = url.clone();
        read_model_config.mongodb_url = url.clone();
    }

    let plan = plan(&config, &processor_config).await?;
    let mut processor_backends = ProcessorBackends::from_config(&processor_config)
        .map_err(|e| UpError::Settings(e.to_string()))?;
    let mut metrics_backends = MetricsEngineBackends::from_config(&metrics_config);
    let mut read_model_backends = ReadModelBackends::from_config(&read_model_config)
        .map_err(|e| UpError::Settings(e.to_string()))?;
    processor_backends.broker = plan.broker.clone();
    metrics_backends.broker = plan.broker.clone();
    read_model_backends.broker = plan.broker.clone();
    if let Some(store) = &plan.job_store {
        processor_backends.store = store.clone();
        read_model_backends.job_store = store.clone();
    }
    if let Some(log) = &plan.event_log {
        metrics_backends.event_log = log.clone();
        read_model_backends.event_log = log.clone();
    }
    if let Some(counters) = &plan.counters {
        metrics_backends.counters = counters.clone();
        read_model_backends.counters = counters.clone();
    }

    let addresses = Addresses {
        gateway: local(&gateway_listener, config.gateway_addr),
        read_model: local(&read_model_listener, config.read_model_addr),
        processor: local(&processor_listener, config.processor_addr),
        metrics_engine: local(&metrics_listener, config.metrics_engine_addr),
    };
    // The dashboard (served by the read model) submits to this gateway, which lets it, unless
    // the environment says otherwise.
    if std::env::var_os("OBSERVATORY_GATEWAY_URL").is_none() {
        read_model_config.gateway_url = browser_url(addresses.gateway);
    }
    if std::env::var_os("OBSERVATORY_GATEWAY_CORS_ORIGIN").is_none() {
        gateway_config.cors_origins = browser_origins(addresses.read_model);
    }
    println!(
        "{}",
        banner(
            &addresses,
            &plan,
            &processor_backends,
            &metrics_backends,
            &config
        )
    );

    // Each role has its own stop signal: they stop in the order that hands every accepted job
    // and event on before its consumer goes (see `stop_in_order`).
    let (intake, processing, recording) = (
        CancellationToken::new(),
        CancellationToken::new(),
        CancellationToken::new(),
    );
    let gateway = tokio::spawn({
        let (broker, stop) = (plan.broker.clone(), intake.clone());
        async move {
            observatory_gateway::serve(gateway_config, gateway_listener, broker, stop)
                .await
                .map_err(|e| e.to_string())
        }
    });
    let processor = tokio::spawn({
        let stop = processing.clone();
        async move {
            observatory_processor::run_with(
                processor_listener,
                processor_config,
                processor_backends,
                stop,
            )
            .await
            .map_err(|e| e.to_string())
        }
    });
    let metrics_engine = tokio::spawn({
        let stop = recording.clone();
        async move {
            observatory_metrics_engine::run_with(
                metrics_config,
                metrics_listener,
                metrics_backends,
                stop,
            )
            .await
            .map_err(|e| e.to_string())
        }
    });
    let read_model = tokio::spawn({
        let stop = recording.clone();
        async move {
            observatory_read_model::serve_with(
                read_model_listener,
                read_model_config,
                read_model_backends,
                stop,
            )
            .await
            .map_err(|e| e.to_string())
        }
    });
    let mut roles = Roles {
        gateway: Role::new("gateway", gateway),
        processor: Role::new("processor", processor),
        metrics_engine: Role::new("metrics engine", metrics_engine),
        read_model: Role::new("read model", read_model),
    };

    // Until shutdown, or until a role stops by itself (which stops everything).
    tokio::select! {
        () = shutdown.cancelled() => {}
        () = roles.gateway.stopped() => {}
        () = roles.processor.stopped() => {}
        () = roles.metrics_engine.stopped() => {}
        () = roles.read_model.stopped() => {}
    }
    let early = roles.early_stop();
    if let Some(role) = early {
        tracing::error!(role, "a role stopped by itself; stopping the others");
    }
    tracing::info!("stopping: no new jobs are accepted; finishing the accepted ones");
    let drain_timeout = Duration::from_secs(config.drain_timeout_secs);
    let durable = config.data_dir.is_some();
    // 1. No new jobs; the requests in flight get their answer.
    intake.cancel();
    roles.gateway.join().await;
    // 2. The processor takes every queued job and runs it, then stops (finishing what runs,
    //    within its grace period) and its relay flushes the outbox.
    if early.is_none() {
        drain(&plan, drain_timeout, durable).await;
    }
    processing.cancel();
    roles.processor.join().await;
    // 3. The metrics engine records the last events; then the read stack goes.
    if early.is_none() {
        drain(&plan, drain_timeout, durable).await;
    }
    recording.cancel();
    roles.metrics_engine.join().await;
    roles.read_model.join().await;

    // The roles leave shared stores open; the last writes are committed, this only tidies up.
    if let Some(store) = &plan.job_store
        && let Some(store) = store.connect_with_retry(&CancellationToken::new()).await
    {
        store.close().await;
    }
    match roles.first_error(early) {
        Some(error) => Err(error),
        None => {
            tracing::info!("observatory stopped");
            Ok(())
        }
    }
}

/// One role's task and how it ended.
struct Role {
    name: &'static str,
    task: tokio::task::JoinHandle<Result<(), String>>,
    outcome: Option<Result<(), String>>,
}

impl Role {
    fn new(name: &'static str, task: tokio::task::JoinHandle<Result<(), String>>) -> Self {
        Self {
            name,
            task,
            outcome: None,
        }
    }

    /// Resolves when the task ends (recording how); never when it already has.
    async fn stopped(&mut self) {
        if self.outcome.is_some() {
            return std::future::pending().await;
        }
        let ended = (&mut self.task).await;
        self.outcome = Some(ended.unwrap_or_else(|e| Err(format!("the task failed: {e}"))));
    }

    async fn join(&mut self) {
        if self.outcome.is_none() {
            self.stopped().await;
        }
    }
}

struct Roles {
    gateway: Role,
    processor: Role,
    metrics_engine: Role,
    read_model: Role,
}

impl Roles {
    fn all(&self) -> [&Role; 4] {
        [
            &self.gateway,
            &self.processor,
            &self.metrics_engine,
            &self.read_model,
        ]
    }

    /// The role that ended before shutdown was asked for, if any.
    fn early_stop(&self) -> Option<&'static str> {
        self.all()
            .into_iter()
            .find(|role| role.outcome.is_some())
            .map(|role| role.name)
    }

    /// The first failure, an early stop counting as one even when it returned `Ok`.
    fn first_error(&self, early: Option<&'static str>) -> Option<UpError> {
        let failed = self.all().into_iter().find_map(|role| match &role.outcome {
            Some(Err(message)) => Some(UpError::Role {
                role: role.name,
                message: message.clone(),
            }),
            _ => None,
        });
        failed.or_else(|| {
            early.map(|role| UpError::Role {
                role,
                message: "it stopped unexpectedly".into(),
            })
        })
    }
}

/// Waits (bounded) until nothing accepted is in flight: the embedded broker holds nothing
/// unsettled, the job store's outbox is empty and no stored job is waiting to start or running
/// (a job parked by the processor's per-type limit is stored PENDING and its message already
/// settled), three polls in a row (a message moves from the broker to the outbox and back
/// within one poll, so one quiet reading is not enough).
async fn drain(plan: &Plan, timeout: Duration, durable: bool) {
    let Some(broker) = &plan.embedded_broker else {
        // RabbitMQ keeps what is queued; the roles finish their in-flight work themselves.
        return;
    };
    let started = Instant::now();
    let store = match &plan.job_store {
        Some(store) => store.connect_with_retry(&CancellationToken::new()).await,
        None => None,
    };
    let mut reported = Instant::now();
    let mut quiet = 0;
    while quiet < 3 {
        let before = broker.unsettled();
        let (outbox, unfinished) = match &store {
            Some(store) => (
                store.outbox_backlog().await.unwrap_or(0),
                unfinished_jobs(store.as_ref()).await,
            ),
            None => (0, 0),
        };
        let queued = before.max(broker.unsettled());
        quiet = if queued == 0 && outbox == 0 && unfinished == 0 {
            quiet + 1
        } else {
            0
        };
        if quiet > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        if started.elapsed() >= timeout {
            if durable {
                tracing::warn!(
                    queued,
                    outbox,
                    unfinished,
                    "drain timeout: what is left is kept in --data-dir and goes on at the next start"
                );
            } else {
                tracing::warn!(
                    queued,
                    outbox,
                    unfinished,
                    "drain timeout: jobs not yet finished and events not yet recorded are lost (nothing is kept without --data-dir)"
                );
            }
            return;
        }
        if reported.elapsed() >= Duration::from_secs(2) {
            tracing::info!(queued, outbox, unfinished, "draining before shutdown");
            reported = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Stored jobs that are waiting to start (PENDING, parked ones included) or running. A job
/// waiting for a retry is not counted: its backoff may be longer than any drain, and it is
/// kept with the store. A store that cannot answer counts as drained (the warning about it
/// comes from the roles).
async fn unfinished_jobs(store: &dyn JobStore) -> i64 {
    match store.count_by_status().await {
        Ok(counts) => counts
            .iter()
            .filter(|(status, _)| matches!(status, JobStatus::Pending | JobStatus::Running))
            .map(|(_, n)| n)
            .sum(),
        Err(_) => 0,
    }
}

/// Decides, part by part, embedded or real, and opens the embedded stores once (the roles
/// that share a store share the one instance: an in-memory database or the live feed exists
/// only inside it).
async fn plan(config: &UpConfig, processor: &ProcessorConfig) -> Result<Plan, UpError> {
    let topology = Topology::new(config.broker_prefix.clone());
    let dir = config.data_dir.as_deref();
    let embedded = |part: &'static str| {
        move |error: String| UpError::Embedded {
            part,
            message: error,
        }
    };
    let (broker, embedded_broker): (Arc<dyn BrokerConnector>, _) = match &config.rabbitmq_url {
        Some(url) => (Arc::new(RabbitMq::new(url.clone(), topology)), None),
        None => {
            // With a data directory, a journal keeps every unsettled message on disk: a crash
            // loses nothing that was confirmed (a 202 means the job is on disk).
            let broker = match dir {
                Some(_) => {
                    let location = Location::in_data_dir(dir, "broker.sqlite");
                    EmbeddedBroker::open(topology, &location, EmbeddedLimits::default())
                        .await
                        .map_err(|e| embedded("broker")(e.to_string()))?
                }
                None => EmbeddedBroker::new(topology),
            };
            (Arc::new(broker.clone()), Some(broker))
        }
    };
    let job_store = match &config.postgres_url {
        Some(_) => None,
        None => {
            let location = Location::in_data_dir(dir, "jobs.sqlite");
            let producer = observatory_processor::event_producer(&processor.worker_name())
                .map_err(|e| embedded("job store")(e.to_string()))?;
            let store = SqliteJobStore::open(&location, producer)
                .await
                .map_err(|e| embedded("job store")(e.to_string()))?;
            Some(Dependency::open(
                "sqlite-jobs",
                sqlite_target(&location),
                Arc::new(store) as Arc<dyn JobStore>,
            ))
        }
    };
    let event_log = match &config.mongodb_url {
        Some(_) => None,
        None => {
            let location = Location::in_data_dir(dir, "events.sqlite");
            let log = SqliteEventLog::open(&location)
                .await
                .map_err(|e| embedded("event log")(e.to_string()))?;
            Some(Dependency::open(
                "sqlite-events",
                sqlite_target(&location),
                Arc::new(log) as Arc<dyn EventLog>,
            ))
        }
    };
    let counters = match &config.redis_url {
        Some(_) => None,
        None => {
            let location = Location::in_data_dir(dir, "counters.sqlite");
            let counters =
                SqliteCounters::open(&location, CountersConfig::new(config.redis_prefix.clone()))
                    .await
                    .map_err(|e| embedded("counters")(e.to_string()))?;
            Some(Dependency::open(
                "sqlite-counters",
                sqlite_target(&location),
                Arc::new(counters) as Arc<dyn Counters>,
            ))
        }
    };
    Ok(Plan {
        broker,
        embedded_broker,
        job_store,
        event_log,
        counters,
    })
}

fn sqlite_target(location: &Location) -> String {
    match location {
        Location::File(path) => format!("SQLite file {}", path.display()),
        Location::Memory => "SQLite in memory".to_owned(),
    }
}

/// How a browser on this machine reaches `addr` (an unspecified address is reached on
/// loopback).
fn browser_url(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("http://127.0.0.1:{}", addr.port())
    } else {
        format!("http://{addr}")
    }
}

/// The origins a browser shows for a page served at `addr`: its address, and `localhost` for
/// a loopback one.
fn browser_origins(addr: SocketAddr) -> Vec<String> {
    let mut origins = vec![browser_url(addr)];
    if addr.ip().is_loopback() || addr.ip().is_unspecified() {
        origins.push(format!("http://localhost:{}", addr.port()));
    }
    origins
}

struct Addresses {
    gateway: SocketAddr,
    read_model: SocketAddr,
    processor: SocketAddr,
    metrics_engine: SocketAddr,
}

/// What runs where, printed once at start.
fn banner(
    at: &Addresses,
    plan: &Plan,
    processor: &ProcessorBackends,
    metrics: &MetricsEngineBackends,
    config: &UpConfig,
) -> String {
    let gateway = browser_url(at.gateway);
    let read_model = browser_url(at.read_model);
    let mut lines = vec![
        format!(
            "Distributed Task Observatory {} is up.",
            env!("CARGO_PKG_VERSION")
        ),
        String::new(),
        format!("  dashboard       {read_model}/"),
        format!("  gateway         {gateway}    submit jobs: POST {gateway}/jobs"),
        format!("  read model      {read_model}    jobs, events, overview, live stream"),
        format!("  API docs        {gateway}/docs  and  {read_model}/docs"),
        format!("  processor       http://{}/metrics", at.processor),
        format!("  metrics engine  http://{}/metrics", at.metrics_engine),
        String::new(),
        format!("  broker          {}", plan.broker.describe()),
        format!("  job store       {}", processor.store.target),
        format!("  event log       {}", metrics.event_log.target),
        format!("  counters        {}", metrics.counters.target),
    ];
    let embedded = plan.embedded_broker.is_some()
        || plan.job_store.is_some()
        || plan.event_log.is_some()
        || plan.counters.is_some();
    if embedded && config.data_dir.is_none() {
        lines.push(
            "                  (state is in memory; pass --data-dir DIR to keep it across restarts)"
                .into(),
        );
    }
    lines.extend([
        String::new(),
        "  Next:".into(),
        format!("    observatory tui --read-model {read_model} --gateway {gateway}"),
        format!("    open {read_model}/ in a browser"),
        format!("    observatory submit --type sleep --payload '{{\"durationMs\":500}}' --gateway {gateway}"),
        format!("    observatory jobs --read-model {read_model}"),
        format!("    observatory job ID --read-model {read_model}"),
        "    Real servers: --rabbitmq-url, --postgres-url, --redis-url, --mongodb-url (each on its own).".into(),
        "  Stop with Ctrl-C.".into(),
    ]);
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        up: UpConfig,
    }

    #[test]
    fn flags_choose_each_server_independently() {
        let cli = Cli::try_parse_from([
            "up",
            "--postgres-url",
            "postgres://x/y",
            "--data-dir",
            "/tmp/d",
            "--gateway-addr",
            "127.0.0.1:0",
        ])
        .expect("parses");
        assert_eq!(cli.up.postgres_url.as_deref(), Some("postgres://x/y"));
        assert_eq!(cli.up.data_dir, Some(PathBuf::from("/tmp/d")));
        assert_eq!(cli.up.gateway_addr.port(), 0);
        if std::env::var_os("OBSERVATORY_RABBITMQ_URL").is_none() {
            assert_eq!(cli.up.rabbitmq_url, None);
        }
    }

    #[test]
    fn a_bad_address_is_a_clear_error() {
        let error = Cli::try_parse_from(["up", "--read-model-addr", "nowhere"])
            .err()
            .expect("fails");
        assert!(error.to_string().contains("--read-model-addr"), "{error}");
    }

    #[tokio::test]
    async fn a_taken_port_names_the_role_and_the_flag() {
        let taken = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let addr = taken.local_addr().expect("address");
        let error = bind("gateway", "gateway-addr", addr)
            .await
            .expect_err("taken");
        let message = error.to_string();
        assert!(
            message.contains("gateway") && message.contains("--gateway-addr"),
            "{message}"
        );
    }
}
