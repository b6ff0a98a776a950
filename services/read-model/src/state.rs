//! [`ReadModelState`]: what the handlers share. Each dependency is a slot that is empty until
//! it is connected; a handler that needs an empty slot answers 503 with `Retry-After`.

use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use axum::http::Method;
use observatory_counters::Counters;
use observatory_event_log::EventLog;
use observatory_job_store::JobStore;
use observatory_messaging::{MessageBroker, Topology};
use observatory_runtime::http::{ApiError, CorsOrigins};
use observatory_runtime::metrics::ServiceMetrics;
use observatory_runtime::shutdown::CancellationToken;
use tower_http::cors::CorsLayer;

use crate::alerts::AlertClient;
use crate::dashboard::Dashboard;
use crate::live::LiveHub;
use crate::{ReadModelError, SERVICE};

/// Seconds a client is asked to wait (`Retry-After`) when a dependency is unavailable.
pub(crate) const RETRY_AFTER_SECONDS: u32 = 5;

/// Settings of the HTTP surface (the dependencies are provided separately).
#[derive(Debug, Clone)]
pub struct ReadModelOptions {
    /// Alertmanager's base URL; `None`: `/alerts` answers `not-configured`.
    pub alertmanager_url: Option<String>,
    /// How long Alertmanager may take to answer before `/alerts` says `unavailable`.
    pub alertmanager_timeout: Duration,
    /// CORS origins (`*` for any); empty: no CORS headers.
    pub cors_origins: Vec<String>,
    /// Largest request body, in bytes.
    pub body_limit: usize,
    /// Where the web dashboard submits jobs (the gateway's base URL); `None`: read-only.
    pub gateway_url: Option<String>,
    /// Throughput buckets in `/overview` (the last is the current one).
    pub overview_buckets: usize,
    /// Width of each throughput bucket, a multiple of the counters' recorded width.
    pub overview_bucket_seconds: u64,
    /// Cancelled on shutdown: ends the live streams.
    pub shutdown: CancellationToken,
}

impl Default for ReadModelOptions {
    fn default() -> Self {
        Self {
            alertmanager_url: None,
            alertmanager_timeout: Duration::from_secs(3),
            cors_origins: Vec::new(),
            body_limit: 65_536,
            gateway_url: None,
            overview_buckets: 60,
            overview_bucket_seconds: 1,
            shutdown: CancellationToken::new(),
        }
    }
}

/// How `/readyz` names each dependency: after the adapter that serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DependencyNames {
    pub job_store: &'static str,
    pub event_log: &'static str,
    pub counters: &'static str,
    pub broker: &'static str,
}

impl Default for DependencyNames {
    fn default() -> Self {
        Self {
            job_store: "postgresql",
            event_log: "mongodb",
            counters: "redis",
            broker: "rabbitmq",
        }
    }
}

/// The state every handler shares; cheap to clone.
#[derive(Clone)]
pub struct ReadModelState {
    inner: Arc<Inner>,
}

struct Inner {
    options: ReadModelOptions,
    names: DependencyNames,
    topology: Topology,
    metrics: ServiceMetrics,
    alerts: AlertClient,
    dashboard: Dashboard,
    cors_origins: Option<CorsOrigins>,
    jobs: OnceLock<Arc<dyn JobStore>>,
    events: OnceLock<Arc<dyn EventLog>>,
    counters: OnceLock<Arc<dyn Counters>>,
    broker: RwLock<Option<Arc<dyn MessageBroker>>>,
    live: LiveHub,
}

impl ReadModelState {
    /// A state with no dependency connected yet; `topology` names the queues `/queues`
    /// reports. Fails on an invalid CORS origin or when the HTTP client cannot be built.
    pub fn new(options: ReadModelOptions, topology: Topology) -> Result<Self, ReadModelError> {
        let cors_origins = CorsOrigins::parse(&options.cors_origins)
            .map_err(|e| ReadModelError::Config(e.to_string()))?;
        let dashboard = Dashboard::new(options.gateway_url.as_deref())?;
        let alerts = AlertClient::new(
            options.alertmanager_url.clone(),
            options.alertmanager_timeout,
        )?;
        Ok(Self {
            inner: Arc::new(Inner {
                options,
                names: DependencyNames::default(),
                topology,
                metrics: ServiceMetrics::new(SERVICE),
                alerts,
                dashboard,
                cors_origins,
                jobs: OnceLock::new(),
                events: OnceLock::new(),
                counters: OnceLock::new(),
                broker: RwLock::new(None),
                live: LiveHub::default(),
            }),
        })
    }

    /// Names the dependencies after their adapters (before the state is shared).
    pub fn with_dependency_names(self, names: DependencyNames) -> Self {
        match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                inner.names = names;
                Self {
                    inner: Arc::new(inner),
                }
            }
            Err(inner) => Self { inner },
        }
    }

    pub fn dependency_names(&self) -> DependencyNames {
        self.inner.names
    }

    /// Provides the job store (once; a second one is ignored and `false` returned).
    pub fn provide_job_store(&self, store: Arc<dyn JobStore>) -> bool {
        self.inner.jobs.set(store).is_ok()
    }

    /// Provides the event log (once; a second one is ignored and `false` returned).
    pub fn provide_event_log(&self, log: Arc<dyn EventLog>) -> bool {
        self.inner.events.set(log).is_ok()
    }

    /// Provides the counters (once; a second one is ignored and `false` returned).
    pub fn provide_counters(&self, counters: Arc<dyn Counters>) -> bool {
        self.inner.counters.set(counters).is_ok()
    }

    /// Replaces the broker connection (`None` when it was lost).
    pub fn set_broker(&self, broker: Option<Arc<dyn MessageBroker>>) {
        *self
            .inner
            .broker
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = broker;
    }

    pub fn options(&self) -> &ReadModelOptions {
        &self.inner.options
    }

    pub fn topology(&self) -> &Topology {
        &self.inner.topology
    }

    /// The registry `/metrics` renders.
    pub fn metrics(&self) -> &ServiceMetrics {
        &self.inner.metrics
    }

    pub(crate) fn dashboard(&self) -> &Dashboard {
        &self.inner.dashboard
    }

    pub(crate) fn alerts(&self) -> &AlertClient {
        &self.inner.alerts
    }

    pub(crate) fn shutdown(&self) -> &CancellationToken {
        &self.inner.options.shutdown
    }

    pub(crate) fn job_store_if_connected(&self) -> Option<&dyn JobStore> {
        self.inner.jobs.get().map(|s| s.as_ref())
    }

    pub(crate) fn event_log_if_connected(&self) -> Option<&dyn EventLog> {
        self.inner.events.get().map(|l| l.as_ref())
    }

    pub(crate) fn counters_if_connected(&self) -> Option<&dyn Counters> {
        self.inner.counters.get().map(|c| c.as_ref())
    }

    pub(crate) fn broker_if_connected(&self) -> Option<Arc<dyn MessageBroker>> {
        self.inner
            .broker
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub(crate) fn job_store(&self) -> Result<&dyn JobStore, ApiError> {
        self.job_store_if_connected().ok_or_else(|| {
            not_connected(
                "postgres-unavailable",
                "job store",
                self.inner.names.job_store,
            )
        })
    }

    pub(crate) fn event_log(&self) -> Result<&dyn EventLog, ApiError> {
        self.event_log_if_connected().ok_or_else(|| {
            not_connected(
                "mongodb-unavailable",
                "event log",
                self.inner.names.event_log,
            )
        })
    }

    pub(crate) fn live(&self) -> &LiveHub {
        &self.inner.live
    }

    /// The counters, shared (the live feed's subscription outlives the request).
    pub(crate) fn counters_handle(&self) -> Result<Arc<dyn Counters>, ApiError> {
        self.inner.counters.get().cloned().ok_or_else(|| {
            not_connected("redis-unavailable", "counters", self.inner.names.counters)
        })
    }

    pub(crate) fn counters(&self) -> Result<&dyn Counters, ApiError> {
        self.counters_if_connected().ok_or_else(|| {
            not_connected("redis-unavailable", "counters", self.inner.names.counters)
        })
    }

    pub(crate) fn broker(&self) -> Result<Arc<dyn MessageBroker>, ApiError> {
        self.broker_if_connected()
            .ok_or_else(|| not_connected("broker-unavailable", "broker", self.inner.names.broker))
    }

    /// The CORS layer, when origins are configured.
    pub(crate) fn cors(&self) -> Option<CorsLayer> {
        let origins = self.inner.cors_origins.as_ref()?;
        Some(origins.layer(&[Method::GET, Method::HEAD, Method::OPTIONS], &[]))
    }

    /// Closes the connections that need closing: the broker, and the job store's pool when
    /// `job_store` (not when the store is shared with other roles, as in `observatory up`).
    pub async fn close(&self, job_store: bool) {
        if job_store && let Some(store) = self.job_store_if_connected() {
            store.close().await;
        }
        let broker = self.broker_if_connected();
        self.set_broker(None);
        if let Some(broker) = broker {
            broker.close().await;
        }
    }
}

/// `code` stays what clients already match on; the message names the adapter in use.
fn not_connected(code: &'static str, what: &str, kind: &str) -> ApiError {
    ApiError::unavailable(
        code,
        format!("the {what} ({kind}) is not connected yet; retry later"),
        RETRY_AFTER_SECONDS,
    )
}
