//! The processor: runs jobs, owns their state in the job store (PostgreSQL, or SQLite under
//! `observatory up`) and announces every change through a transactional outbox. It reaches
//! the broker and the store through their ports ([`ProcessorBackends`]), so the same code runs
//! on either adapter.
//!
//! **Why it exists.** The gateway only accepts jobs (a confirmed `job.created` message); the
//! processor turns each into a stored job, runs it, retries it with exponential backoff up to
//! its attempt limit, and dead-letters what cannot be processed. Every state change is written
//! together with the event that announces it (see `observatory-job-store`), so the rest of the
//! system (metrics engine, read model, UIs) sees exactly what happened, in order.
//!
//! **Its loops** ([`run`] starts them and stops them on shutdown):
//!
//! 1. *Consumer* of `<prefix>.jobs`, with a bounded prefetch and a semaphore of
//!    `--concurrency` jobs in flight. Each delivery is parsed (not JSON → dead letter
//!    `malformed-json`), validated against `job-created.json` (→ `schema-violation`, with the
//!    violations), accepted into the store, and its first attempt is started, executed and
//!    recorded; then the message is acknowledged.
//! 2. *Retry scheduler*: polls the store for RETRYING jobs whose retry is due (and, every few
//!    seconds, for jobs left PENDING because their message was lost) and runs them under the
//!    same semaphore.
//! 3. *Lease recovery*: a running attempt is a lease its worker renews (every third of
//!    `--attempt-lease-secs`, by the store's clock); an attempt whose lease ran out belonged to
//!    a worker that died or was cut off, and is interrupted so that it runs again, without
//!    using up an attempt. It needs no job slot, so a saturated processor still recovers.
//! 4. *Outbox relay*: claims a batch of the outbox (another relay skips it), publishes it to
//!    `<prefix>.events` with publisher confirms, all in flight at once, and deletes only
//!    confirmed events.
//!
//! Plus the operational HTTP endpoints (`/healthz`, `/readyz` checking PostgreSQL and
//! RabbitMQ, `/metrics`, `/openapi.json`, `/docs`).
//!
//! **Delivery guarantees.** A job message is acknowledged only after its effect is stored:
//! the job accepted and its attempt's end recorded, or the dead letter recorded *and*
//! published to `<prefix>.dead-letters` with the reason in
//! [`REASON_HEADER`](observatory_messaging::REASON_HEADER). While PostgreSQL is unavailable a
//! message is requeued after a short pause, never acknowledged, so nothing is lost; a poison
//! message is never requeued, so nothing loops forever. Events leave through the outbox at
//! least once.
//!
//! **Why redelivery is harmless.** Every store write is idempotent: `accept` stores a job once
//! per id (and creation idempotency key); `start_attempt` starts an attempt only of a PENDING
//! job or a due retry, so a redelivered `job.created` of a job that is running, waiting for a
//! retry or finished changes nothing; completing or failing an attempt applies only to the
//! attempt that is running; a dead letter derives its id from the message's id, so recording
//! it again changes nothing. Events published twice carry the same `eventId`, on which
//! consumers deduplicate.
//!
//! **Shutdown.** When the token is cancelled, no new delivery or retry is taken; running
//! attempts get `--shutdown-grace-secs` to finish and be recorded, then the rest are
//! interrupted (recorded with code `interrupted`; they run again without using up an
//! attempt). The relay publishes what those attempts wrote, and the connections close.
//! Unacknowledged messages are redelivered to the next processor. A crash is the same, later:
//! the attempts' leases run out and another processor (or this one, restarted) takes them over.

pub mod config;
pub mod contracts;
pub mod error;
pub mod executor;
pub mod metrics;

mod broker;
mod consumer;
mod fairness;
mod relay;
mod runner;
mod scheduler;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use observatory_job_store::{JobStore, PostgresJobStore, StoreError};
use observatory_messaging::{BrokerConnector, RabbitMq, Topology, redact};
use observatory_runtime::backoff::Dependency;
use observatory_runtime::http::{ContractRouter, Readiness};
use observatory_runtime::metrics::ServiceMetrics;
use observatory_runtime::shutdown::CancellationToken;
use observatory_validation::ContractValidator;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub use crate::config::{ProcessorConfig, RetryBackoff};
pub use crate::error::ProcessorError;
pub use crate::executor::{AttemptFailure, AttemptResult, Executor};
pub use crate::metrics::ProcessorMetrics;

use crate::broker::{BrokerReady, BrokerSlot, StoreReady, run_consumer_sessions};
use crate::consumer::JobConsumer;
use crate::contracts::event_envelope::EventProducer;
use crate::contracts::job_created::JobCreated;
use crate::fairness::TypeSlots;
use crate::relay::OutboxRelay;
use crate::runner::{Claims, JobRunner};

/// The service name in metrics, events and `/healthz`.
pub const SERVICE: &str = "processor";

/// Runs the processor until `shutdown` is cancelled, serving its HTTP endpoints on
/// `config.processor_addr`.
pub async fn run(
    config: ProcessorConfig,
    shutdown: CancellationToken,
) -> Result<(), ProcessorError> {
    let listener = TcpListener::bind(config.processor_addr)
        .await
        .map_err(|source| ProcessorError::Bind {
            addr: config.processor_addr,
            source,
        })?;
    run_on(listener, config, shutdown).await
}

/// What the processor runs on: a broker and a job store, whichever adapters serve them.
pub struct ProcessorBackends {
    pub broker: Arc<dyn BrokerConnector>,
    pub store: Dependency<dyn JobStore>,
}

impl ProcessorBackends {
    /// RabbitMQ and PostgreSQL as `config` names them (the database is created when missing).
    pub fn from_config(config: &ProcessorConfig) -> Result<Self, ProcessorError> {
        let producer = event_producer(&config.worker_name())?;
        let (url, connections) = (config.postgres_url.clone(), config.db_connections);
        Ok(Self {
            broker: Arc::new(RabbitMq::new(
                config.rabbitmq_url.clone(),
                Topology::new(config.broker_prefix.clone()),
            )),
            store: Dependency::connect(
                "postgresql",
                format!("PostgreSQL at {}", redact(&url)),
                move || connect_postgres(url.clone(), connections, producer.clone()),
            ),
        })
    }
}

/// [`run`], serving the HTTP endpoints on an already bound `listener` (`processor_addr` is
/// ignored): lets a caller bind port 0 and know the address.
pub async fn run_on(
    listener: TcpListener,
    config: ProcessorConfig,
    shutdown: CancellationToken,
) -> Result<(), ProcessorError> {
    // One name for the worker and the producer of its events.
    let config = ProcessorConfig {
        instance_id: Some(config.worker_name()),
        ..config
    };
    let backends = ProcessorBackends::from_config(&config)?;
    run_with(listener, config, backends, shutdown).await
}

/// [`run_on`] with the given backends (`rabbitmq_url`, `broker_prefix` and `postgres_url`
/// are ignored): `observatory up` passes embedded ones.
pub async fn run_with(
    listener: TcpListener,
    config: ProcessorConfig,
    backends: ProcessorBackends,
    shutdown: CancellationToken,
) -> Result<(), ProcessorError> {
    let worker = config.worker_name();
    let executor = Executor::new()?;
    let job_created = ContractValidator::for_type::<JobCreated>()?;
    let concurrency = usize::try_from(config.concurrency)
        .map_err(|_| ProcessorError::Config("--concurrency is too large".into()))?;
    let per_type = usize::try_from(config.per_type_concurrency())
        .map_err(|_| ProcessorError::Config("--type-concurrency is too large".into()))?;
    let service_metrics = ServiceMetrics::new(SERVICE);
    let metrics = ProcessorMetrics::register(&service_metrics);
    tracing::info!(%worker, concurrency, per_type, prefetch = config.prefetch, "processor starting");

    let Some(store) = backends.store.connect_with_retry(&shutdown).await else {
        return Ok(());
    };
    let topology = backends.broker.topology().clone();
    let broker = BrokerSlot::default();

    // HTTP first: /healthz answers and /readyz says truthfully what is missing while the
    // broker connection is being established.
    let readiness = Readiness::default()
        .with(StoreReady(store.clone(), backends.store.kind))
        .with(BrokerReady(broker.clone(), backends.broker.kind()));
    let router = ContractRouter::new(
        SERVICE,
        env!("CARGO_PKG_VERSION"),
        observatory_contracts::openapi::OPERATIONS,
        service_metrics,
    )?
    .operational(readiness)?
    .finish((), 1 << 20)?;
    let http_stop = CancellationToken::new();
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving the operational endpoints");
    }
    let http = tokio::spawn(observatory_runtime::http::serve(
        listener,
        router,
        http_stop.clone().cancelled_owned(),
    ));

    let runner = Arc::new(JobRunner {
        store: store.clone(),
        executor,
        metrics: metrics.clone(),
        backoff: config.retry_backoff(),
        attempt_timeout: config.attempt_timeout(),
        lease: config.attempt_lease(),
        worker,
        permits: Arc::new(Semaphore::new(concurrency)),
        types: TypeSlots::new(per_type),
        claims: Claims::default(),
        interrupt: CancellationToken::new(),
    });
    let consumer = Arc::new(JobConsumer {
        runner: runner.clone(),
        store: store.clone(),
        metrics: metrics.clone(),
        topology: topology.clone(),
        job_created,
        prefetch: config.prefetch,
    });
    let relay = Arc::new(OutboxRelay {
        store: store.clone(),
        broker: broker.clone(),
        topology: topology.clone(),
        metrics,
    });
    let relay_stop = CancellationToken::new();

    let sessions = tokio::spawn(run_consumer_sessions(
        backends.broker.clone(),
        broker.clone(),
        consumer,
        shutdown.clone(),
    ));
    let scheduler = tokio::spawn(scheduler::run_retry_scheduler(
        runner.clone(),
        shutdown.clone(),
    ));
    let recovery_stop = CancellationToken::new();
    let recovery = tokio::spawn(scheduler::run_lease_recovery(
        runner.clone(),
        recovery_stop.clone(),
    ));
    let relay_task = tokio::spawn(relay.run(relay_stop.clone()));
    let dispatch_stop = CancellationToken::new();
    let dispatchers = tokio::spawn(fairness::run_dispatchers(
        runner.clone(),
        dispatch_stop.clone(),
    ));

    shutdown.cancelled().await;
    tracing::info!("shutting down: no new jobs; finishing the running ones");
    // Nothing new starts once both have returned.
    let sessions_result = sessions.await;
    let scheduler_result = scheduler.await;

    // Every permit back means every job task has finished (and settled its message).
    let all = u32::try_from(concurrency).unwrap_or(u32::MAX);
    // Parked jobs are started as slots free up, then every running one finishes.
    let drained = tokio::time::timeout(config.shutdown_grace(), async {
        loop {
            runner.types.wait_until_empty().await;
            let all_slots = runner.permits.acquire_many(all).await;
            // Nothing parks once the consumers and the scheduler have stopped; checked
            // anyway, since holding every slot would keep a parked job from ever starting.
            if runner.types.parked() == 0 || all_slots.is_err() {
                break all_slots;
            }
        }
    })
    .await;
    dispatch_stop.cancel();
    let _ = dispatchers.await;
    if runner.types.parked() > 0 {
        tracing::warn!(
            parked = runner.types.parked(),
            "jobs still parked after the grace period; they stay PENDING and are started after a restart"
        );
    }
    if drained.is_err() {
        tracing::warn!(grace = ?config.shutdown_grace(), "jobs still running after the grace period; interrupting them (they run again later, without using up an attempt)");
        runner.interrupt.cancel();
        if tokio::time::timeout(Duration::from_secs(10), runner.permits.acquire_many(all))
            .await
            .is_err()
        {
            tracing::warn!(
                "some interruptions could not be recorded; those attempts are taken over when their lease runs out"
            );
        }
    }
    drop(drained);
    runner.permits.close();
    recovery_stop.cancel();
    let recovery_result = recovery.await;

    relay_stop.cancel();
    let relay_result = relay_task.await;
    broker.close().await;
    http_stop.cancel();
    let http_result = http.await;
    if !backends.store.shared {
        store.close().await;
    }
    tracing::info!("processor stopped");

    sessions_result?;
    scheduler_result?;
    recovery_result?;
    relay_result?;
    http_result?.map_err(ProcessorError::Serve)?;
    Ok(())
}

/// How events written by the processor named `worker` say who produced them.
pub fn event_producer(worker: &str) -> Result<EventProducer, ProcessorError> {
    serde_json::from_value(serde_json::json!({
        "service": SERVICE,
        "instanceId": worker,
        "version": env!("CARGO_PKG_VERSION"),
    }))
    .map_err(|e| ProcessorError::Config(format!("--instance-id {worker:?}: {e}")))
}

/// Connects to PostgreSQL, creating the database when it does not exist yet.
async fn connect_postgres(
    url: String,
    max_connections: u32,
    producer: EventProducer,
) -> Result<Arc<dyn JobStore>, String> {
    match PostgresJobStore::connect(&url, max_connections, producer.clone()).await {
        Ok(store) => Ok(Arc::new(store)),
        Err(StoreError::Database(error)) if is_missing_database(&error) => {
            let name = create_database(&url).await?;
            tracing::info!(database = %name, "created the job store database");
            let store = PostgresJobStore::connect(&url, max_connections, producer)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Arc::new(store))
        }
        Err(error) => Err(error.to_string()),
    }
}

/// SQLSTATE 3D000 invalid_catalog_name: the database does not exist.
fn is_missing_database(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "3D000")
}

/// Creates the database `url` names, connected to the `postgres` database of the same server.
async fn create_database(url: &str) -> Result<String, String> {
    let options = PgConnectOptions::from_str(url).map_err(|e| e.to_string())?;
    let name = options
        .get_database()
        .ok_or("the PostgreSQL URL names no database")?
        .to_owned();
    let mut admin = PgConnection::connect_with(&options.clone().database("postgres"))
        .await
        .map_err(|e| format!("connecting to the postgres database to create {name}: {e}"))?;
    let statement = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
    let created = sqlx::query(sqlx::AssertSqlSafe(statement))
        .execute(&mut admin)
        .await;
    let _ = admin.close().await;
    match created {
        Ok(_) => Ok(name),
        // 42P04 duplicate_database: another process created it first.
        Err(error)
            if error
                .as_database_error()
                .and_then(|e| e.code())
                .is_some_and(|code| code == "42P04") =>
        {
            Ok(name)
        }
        Err(error) => Err(format!("creating database {name}: {error}")),
    }
}
