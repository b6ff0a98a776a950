//! The gateway: the system's intake. `POST /jobs` validates a submission against its schema,
//! wraps it in a `job.created` event, publishes it persistently to the broker (RabbitMQ, or the
//! in-process broker of `observatory up`) and answers 202 only after the broker confirmed it.
//! It keeps no state, so it scales horizontally.
//!
//! Idempotency without state: the job id is the client's `jobId`, else derived from the
//! `Idempotency-Key` (UUID v5), else random; the event id is derived from the job id. A
//! resubmission therefore produces the same job and the same event, which the processor
//! (by job id) and the metrics engine (by event id) store once: the job runs once and is
//! counted once. The first submission's content wins.
//!
//! A payload of a built-in type (sleep, compute, fail) is checked against that type's payload
//! schema here, so a job that could only fail gets a 400 with the pointer of what is wrong
//! instead of a 202; other types are accepted as they are (they may be run by processors that
//! know them). Every payload keeps within the submission schema's `x-limits`, which make it
//! storable by every store and readable by every client.
//!
//! Load is shed, not queued without bound: the gateway watches the depth of the jobs queue, and
//! once `--max-queued-jobs` wait there (the processors are saturated), a submission
//! is answered 503 `overloaded` with `Retry-After` before anything is sent.
//!
//! When the broker is down, blocked or slow to confirm, the answer is 503 with
//! `Retry-After` — never a 202 for a job that is not safely stored. The publisher reconnects
//! by itself, and `/readyz` says whether it is connected.

pub mod contracts;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, Method, StatusCode};
use contracts::compute_job::ComputeJobPayload;
use contracts::event_envelope::{
    CorrelationId as EventCorrelationId, EventProducer, IdempotencyKey,
};
use contracts::fail_job::FailJobPayload;
use contracts::job::JobStatus;
use contracts::job_acceptance::JobAcceptance;
use contracts::job_created::{JobCreated, JobCreatedEventType, JobCreatedPayload};
use contracts::job_submission::JobSubmission;
use contracts::sleep_job::SleepJobPayload;
use observatory_messaging::{
    BrokerConnector, BrokerError, JOB_CREATED, MessageMeta, PublisherState, RabbitMq,
    ReconnectingPublisher, Topology,
};
use observatory_runtime::http::{
    ApiError, ContractJson, ContractRouter, CorrelationId, CorsOrigins, Readiness, RouterError,
    probe,
};
use observatory_runtime::metrics::ServiceMetrics;
use observatory_runtime::shutdown::CancellationToken;
use observatory_validation::ContractValidator;
use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts};
use std::net::SocketAddr;
use std::num::NonZeroU64;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Job types that get their own metric label and whose payloads are checked here; others are
/// counted as `other`.
const BUILT_IN_TYPES: &[&str] = &["sleep", "compute", "fail"];
/// Namespace of job ids derived from an `Idempotency-Key`.
const IDEMPOTENCY_NAMESPACE: Uuid = Uuid::from_u128(0x6f62_7365_7276_6174_6f72_792d_6964_656d);

#[derive(clap::Args, Debug, Clone)]
pub struct GatewayConfig {
    /// Address the gateway's HTTP API listens on.
    #[arg(
        long,
        env = "OBSERVATORY_GATEWAY_ADDR",
        default_value = "127.0.0.1:3000"
    )]
    pub gateway_addr: SocketAddr,
    /// RabbitMQ to publish jobs to.
    #[arg(
        long,
        env = "OBSERVATORY_RABBITMQ_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    pub rabbitmq_url: String,
    /// Prefix of every exchange and queue name (separates deployments sharing a broker).
    #[arg(long, env = "OBSERVATORY_BROKER_PREFIX", default_value = "observatory")]
    pub broker_prefix: String,
    /// Largest accepted request body, in bytes (larger ones get 413). The default leaves room
    /// for a payload at its contract limit (65,536 bytes) and the submission around it.
    #[arg(long, env = "OBSERVATORY_GATEWAY_BODY_LIMIT", default_value_t = 128 * 1024,
          value_parser = observatory_runtime::config::body_limit)]
    pub body_limit: usize,
    /// How long to wait for the broker's publish confirm before answering 503.
    /// A confirm takes a few milliseconds, so 10 ms is the least that makes sense.
    #[arg(long, env = "OBSERVATORY_CONFIRM_TIMEOUT_MS", default_value_t = 5_000,
          value_parser = clap::value_parser!(u64).range(10..=120_000))]
    pub confirm_timeout_ms: u64,
    /// Attempts a job gets when its submission does not say.
    #[arg(long, env = "OBSERVATORY_DEFAULT_MAX_ATTEMPTS", default_value_t = 3,
          value_parser = clap::value_parser!(u64).range(1..=100))]
    pub default_max_attempts: u64,
    /// Most jobs waiting in the jobs queue before submissions are refused with 503
    /// `overloaded` and `Retry-After` (the processors are saturated); accepted again below
    /// nine tenths of it.
    #[arg(long, env = "OBSERVATORY_GATEWAY_MAX_QUEUED_JOBS", default_value_t = 50_000,
          value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub max_queued_jobs: u64,
    /// Identifies this process in events (default: a generated id).
    #[arg(long, env = "OBSERVATORY_INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// Origins allowed to submit from a browser (CORS), repeatable or comma-separated; empty
    /// for none. The default is the web dashboard at the read model's default address.
    #[arg(
        long = "cors-origin",
        env = "OBSERVATORY_GATEWAY_CORS_ORIGIN",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:8080,http://localhost:8080"
    )]
    pub cors_origins: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("building the router: {0}")]
    Router(#[from] RouterError),
    #[error("listening on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("serving HTTP: {0}")]
    Serve(std::io::Error),
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// Everything a request handler needs.
#[derive(Clone)]
pub struct GatewayState {
    inner: Arc<Inner>,
}

struct Inner {
    publisher: ReconnectingPublisher,
    /// The broker's name in `/readyz`.
    broker_kind: &'static str,
    topology: Topology,
    producer: EventProducer,
    default_max_attempts: NonZeroU64,
    /// Origins a browser may submit from (the dashboard's); `None`: same-origin only.
    cors: Option<CorsOrigins>,
    /// The payload schemas of the built-in types, by type name.
    payload_schemas: Vec<(&'static str, Arc<ContractValidator>)>,
    metrics: ServiceMetrics,
    submitted: IntCounterVec,
    publish_duration: HistogramVec,
    /// Jobs waiting in the jobs queue at the last look, and whether that is over the limit.
    queued: IntGauge,
    shed: IntCounter,
    overloaded: AtomicBool,
    max_queued_jobs: u64,
}

/// How often the depth of the jobs queue is read.
const QUEUE_WATCH_EVERY: Duration = Duration::from_millis(250);
/// How long a reading of the queue's depth may take.
const QUEUE_WATCH_TIMEOUT: Duration = Duration::from_secs(2);

impl GatewayState {
    pub fn new(
        config: &GatewayConfig,
        publisher: ReconnectingPublisher,
        broker_kind: &'static str,
    ) -> Result<Self, GatewayError> {
        let metrics = ServiceMetrics::new("gateway");
        let submitted = IntCounterVec::new(
            Opts::new("jobs_submitted_total", "Jobs accepted (202) by job type"),
            &["type"],
        )
        .map_err(|e| GatewayError::Config(e.to_string()))?;
        let publish_duration = HistogramVec::new(
            HistogramOpts::new(
                "publish_duration_seconds",
                "Publish-to-confirm time of job.created messages, by outcome",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
            ]),
            &["outcome"],
        )
        .map_err(|e| GatewayError::Config(e.to_string()))?;
        let queued = IntGauge::new(
            "gateway_jobs_queued",
            "Jobs waiting in the jobs queue at the gateway's last look",
        )
        .map_err(|e| GatewayError::Config(e.to_string()))?;
        let shed = IntCounter::new(
            "gateway_jobs_shed_total",
            "Submissions refused with 503 overloaded (too many jobs queued)",
        )
        .map_err(|e| GatewayError::Config(e.to_string()))?;
        metrics.register(Box::new(queued.clone()));
        metrics.register(Box::new(shed.clone()));
        metrics.register(Box::new(submitted.clone()));
        metrics.register(Box::new(publish_duration.clone()));
        // Every series exists from the start, so that rates and increases see the first one.
        for job_type in BUILT_IN_TYPES.iter().chain(&["other"]) {
            submitted.with_label_values(&[job_type]);
        }
        for outcome in ["confirmed", "failed"] {
            publish_duration.with_label_values(&[outcome]);
        }
        let instance = config
            .instance_id
            .clone()
            .unwrap_or_else(|| format!("gateway-{}", &Uuid::new_v4().simple().to_string()[..8]));
        let producer = EventProducer {
            service: "gateway"
                .parse()
                .map_err(|_| GatewayError::Config("service name".into()))?,
            instance_id: instance
                .parse()
                .map_err(|_| GatewayError::Config("--instance-id must not be empty".into()))?,
            version: env!("CARGO_PKG_VERSION")
                .parse()
                .map_err(|_| GatewayError::Config("version".into()))?,
        };
        let default_max_attempts = NonZeroU64::new(config.default_max_attempts)
            .filter(|n| n.get() <= 100)
            .ok_or_else(|| {
                GatewayError::Config("--default-max-attempts must be between 1 and 100".into())
            })?;
        let cors = CorsOrigins::parse(&config.cors_origins)
            .map_err(|e| GatewayError::Config(e.to_string()))?;
        let schema = |r: Result<Arc<ContractValidator>, _>| {
            r.map_err(|e: observatory_validation::SchemaError| GatewayError::Config(e.to_string()))
        };
        let payload_schemas = vec![
            (
                "sleep",
                schema(ContractValidator::for_type::<SleepJobPayload>())?,
            ),
            (
                "compute",
                schema(ContractValidator::for_type::<ComputeJobPayload>())?,
            ),
            (
                "fail",
                schema(ContractValidator::for_type::<FailJobPayload>())?,
            ),
        ];
        Ok(Self {
            inner: Arc::new(Inner {
                publisher,
                broker_kind,
                topology: Topology::new(config.broker_prefix.clone()),
                producer,
                default_max_attempts,
                cors,
                payload_schemas,
                metrics,
                submitted,
                publish_duration,
                queued,
                shed,
                overloaded: AtomicBool::new(false),
                max_queued_jobs: config.max_queued_jobs,
            }),
        })
    }

    pub fn metrics(&self) -> &ServiceMetrics {
        &self.inner.metrics
    }

    pub fn is_ready(&self) -> bool {
        self.inner.publisher.is_ready()
    }

    /// Reads the depth of the jobs queue every 250 ms until `shutdown`: over
    /// `--max-queued-jobs`, submissions are shed; below nine tenths of it, accepted again.
    /// While the depth cannot be read (no broker), nothing is shed for it: the publish fails.
    pub fn watch_queue(&self, shutdown: CancellationToken) {
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let queue = inner.topology.jobs_queue();
            let resume_below = inner.max_queued_jobs - inner.max_queued_jobs / 10;
            loop {
                // A broker that does not answer in time is not taken for a full queue: the
                // publish itself then answers 503 (and nothing is shed on a stale reading).
                let depth =
                    tokio::time::timeout(QUEUE_WATCH_TIMEOUT, inner.publisher.queue_depth(&queue));
                match depth.await {
                    Ok(Ok((ready, _))) => {
                        let ready = u64::from(ready);
                        inner.queued.set(i64::try_from(ready).unwrap_or(i64::MAX));
                        let was = inner.overloaded.load(Ordering::Relaxed);
                        let now = if was {
                            ready >= resume_below
                        } else {
                            ready >= inner.max_queued_jobs
                        };
                        if now != was {
                            inner.overloaded.store(now, Ordering::Relaxed);
                            if now {
                                tracing::warn!(
                                    queued = ready,
                                    limit = inner.max_queued_jobs,
                                    "the processors are saturated; refusing submissions until the queue drains"
                                );
                            } else {
                                tracing::info!(
                                    queued = ready,
                                    "the queue drained; accepting submissions again"
                                );
                            }
                        }
                    }
                    Ok(Err(_)) | Err(_) => inner.overloaded.store(false, Ordering::Relaxed),
                }
                tokio::select! {
                    _ = tokio::time::sleep(QUEUE_WATCH_EVERY) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
        });
    }
}

/// The gateway's router: exactly the operations of `openapi/gateway.yaml`, open to browsers
/// from the configured origins (the web dashboard's).
pub fn router(state: GatewayState, body_limit: usize) -> Result<axum::Router, RouterError> {
    let cors = state.inner.cors.as_ref().map(|origins| {
        origins.layer(
            &[Method::GET, Method::POST, Method::OPTIONS],
            &[HeaderName::from_static("idempotency-key")],
        )
    });
    let publisher = state.inner.publisher.clone();
    let kind = state.inner.broker_kind;
    let readiness = Readiness::default().with(probe(kind, move || match publisher.state() {
        PublisherState::Ready => Ok(()),
        PublisherState::NotConnected => Err(format!(
            "not connected to the broker ({kind}); reconnecting"
        )),
        PublisherState::Blocked => Err(format!(
            "the broker ({kind}) blocked publishing (memory or disk alarm)"
        )),
    }));
    ContractRouter::new(
        "gateway",
        env!("CARGO_PKG_VERSION"),
        observatory_contracts::openapi::GATEWAY,
        state.inner.metrics.clone(),
    )?
    .operation("submit_job", submit_job)?
    .operational(readiness)?
    .finish(state, body_limit)
    .map(|app| match cors {
        Some(cors) => app.layer(cors),
        None => app,
    })
}

/// Runs the gateway until `shutdown`, then stops accepting and finishes in-flight requests.
pub async fn run(config: GatewayConfig, shutdown: CancellationToken) -> Result<(), GatewayError> {
    let listener = tokio::net::TcpListener::bind(config.gateway_addr)
        .await
        .map_err(|source| GatewayError::Bind {
            addr: config.gateway_addr,
            source,
        })?;
    let broker = Arc::new(RabbitMq::new(
        config.rabbitmq_url.clone(),
        Topology::new(config.broker_prefix.clone()),
    ));
    serve(config, listener, broker, shutdown).await
}

/// [`run`] on an already bound listener (port 0 in tests and `observatory up`), publishing
/// through `broker` (its topology is the one used; `rabbitmq_url` and `broker_prefix` are
/// ignored).
pub async fn serve(
    config: GatewayConfig,
    listener: tokio::net::TcpListener,
    broker: Arc<dyn BrokerConnector>,
    shutdown: CancellationToken,
) -> Result<(), GatewayError> {
    let config = GatewayConfig {
        broker_prefix: broker.topology().prefix().to_owned(),
        ..config
    };
    let kind = broker.kind();
    let publisher = ReconnectingPublisher::start(
        broker,
        Duration::from_millis(config.confirm_timeout_ms),
        shutdown.clone(),
    );
    let state = GatewayState::new(&config, publisher, kind)?;
    state.watch_queue(shutdown.clone());
    let app = router(state, config.body_limit)?;
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "gateway listening");
    }
    observatory_runtime::http::serve(listener, app, shutdown.cancelled_owned())
        .await
        .map_err(GatewayError::Serve)
}

/// The answer to a publish that was not confirmed. When the message surely did not reach the
/// broker, the job was not accepted (503, submit again). When it may have (the confirm did
/// not come in time, or the channel broke after the message was sent), the job may run: the
/// answer names the job id it was given, to resubmit with (`jobId`), which makes the retry
/// the same job, run once.
fn not_accepted(error: BrokerError, job_id: Uuid) -> ApiError {
    match error {
        BrokerError::NotConnected | BrokerError::Connect(_) => ApiError::unavailable(
            "broker-unavailable",
            "the message broker is unavailable; the job was not accepted",
            2,
        ),
        BrokerError::Blocked => ApiError::unavailable(
            "broker-blocked",
            "the message broker is refusing new messages (a memory or disk alarm); the job was not accepted",
            5,
        ),
        BrokerError::Nacked | BrokerError::Unroutable(..) | BrokerError::NoSuchQueue(_) => {
            ApiError::unavailable(
                "broker-refused",
                format!("the message broker did not store the job: {error}"),
                2,
            )
        }
        ambiguous => ApiError::unavailable(
            "outcome-unknown",
            format!(
                "the message broker did not confirm the job ({ambiguous}); it may have been accepted: \
                 submit it again with \"jobId\": \"{job_id}\" (the same id is the same job, run once)"
            ),
            1,
        )
        .with_details(vec![("/jobId".to_owned(), job_id.to_string())]),
    }
}

/// A built-in type's payload must match its schema (400 with a pointer under `/payload`).
fn check_payload(inner: &Inner, submission: &JobSubmission) -> Result<(), ApiError> {
    let job_type = submission.type_.as_str();
    let Some((_, schema)) = inner.payload_schemas.iter().find(|(t, _)| *t == job_type) else {
        return Ok(());
    };
    // The generated type holds the payload as a JSON map; the schema wants a value.
    let payload = serde_json::Value::Object(submission.payload.clone());
    schema.validate(&payload).map_err(|violations| {
        ApiError::bad_request(
            "validation-failed",
            format!(
                "the payload does not match the payload schema of `{job_type}` jobs ({})",
                schema.info().path
            ),
        )
        .with_details(
            violations
                .into_iter()
                .map(|v| (format!("/payload{}", v.pointer), v.message))
                .collect(),
        )
    })
}

async fn submit_job(
    State(state): State<GatewayState>,
    correlation: CorrelationId,
    headers: HeaderMap,
    ContractJson(submission): ContractJson<JobSubmission>,
) -> Result<(StatusCode, Json<JobAcceptance>), ApiError> {
    let inner = &state.inner;
    let idempotency_key = match headers.get("idempotency-key") {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| IdempotencyKey::try_from(v).ok())
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid-idempotency-key",
                        "Idempotency-Key must be 1 to 256 visible ASCII characters",
                    )
                })?,
        ),
    };
    check_payload(inner, &submission)?;
    if inner.overloaded.load(Ordering::Relaxed) {
        inner.shed.inc();
        return Err(ApiError::unavailable(
            "overloaded",
            format!(
                "more than {} jobs are waiting for the processors; the job was not accepted: submit it again later",
                inner.max_queued_jobs
            ),
            1,
        ));
    }
    let job_id = submission
        .job_id
        .or_else(|| {
            idempotency_key
                .as_ref()
                .map(|k| Uuid::new_v5(&IDEMPOTENCY_NAMESPACE, k.as_bytes()))
        })
        .unwrap_or_else(Uuid::new_v4);
    // The same job always announces itself with the same event.
    let event_id = Uuid::new_v5(&job_id, JOB_CREATED.as_bytes());
    let now = chrono::Utc::now();
    let correlation_id = EventCorrelationId::try_from(correlation.0.as_str())
        .map_err(|_| ApiError::internal("correlation id does not fit the contract"))?;
    let job_type = submission.type_.clone();
    let event = JobCreated {
        contract_version: contracts::job_created::VERSION
            .parse()
            .map_err(|_| ApiError::internal("contract version"))?,
        event_type: JobCreatedEventType::JobCreated,
        event_id: event_id
            .to_string()
            .parse()
            .map_err(|_| ApiError::internal("event id"))?,
        occurred_at: now,
        producer: inner.producer.clone(),
        correlation_id: correlation_id.clone(),
        idempotency_key: format!("{job_id}:created")
            .parse()
            .map_err(|_| ApiError::internal("idempotency key"))?,
        payload: JobCreatedPayload {
            job_id,
            type_: submission.type_,
            payload: submission.payload,
            max_attempts: submission
                .max_attempts
                .unwrap_or(inner.default_max_attempts),
            submitted_at: now,
        },
    };
    let body = serde_json::to_vec(&event)
        .map_err(|e| ApiError::internal(format!("encoding job.created: {e}")))?;
    let meta = MessageMeta {
        message_id: Some(event_id.to_string()),
        correlation_id: Some(correlation.0.clone()),
        headers: vec![],
    };

    let started = Instant::now();
    let published = inner
        .publisher
        .publish(&inner.topology.jobs_exchange(), JOB_CREATED, &body, &meta)
        .await;
    let outcome = if published.is_ok() {
        "confirmed"
    } else {
        "failed"
    };
    inner
        .publish_duration
        .with_label_values(&[outcome])
        .observe(started.elapsed().as_secs_f64());
    if let Err(error) = published {
        tracing::warn!(%error, %job_id, "job not confirmed by the broker");
        return Err(not_accepted(error, job_id));
    }
    let label = if BUILT_IN_TYPES.contains(&job_type.as_str()) {
        job_type.as_str()
    } else {
        "other"
    };
    inner.submitted.with_label_values(&[label]).inc();
    tracing::info!(%job_id, job_type = %job_type.as_str(), "job accepted");
    Ok((
        StatusCode::ACCEPTED,
        Json(JobAcceptance {
            job_id,
            status: JobStatus::Pending,
            event_id,
            correlation_id,
            accepted_at: now,
            duplicate: None,
        }),
    ))
}
