//! Connecting the dependencies in the background: one task per dependency, each retrying with
//! backoff (and logging every failure) until it succeeds or shutdown. The broker connection is
//! then supervised: when it is lost it is taken out of the state and connected again.

use std::sync::Arc;
use std::time::Duration;

use observatory_counters::{Counters, RedisCounters};
use observatory_event_log::{EventLog, MongoEventLog};
use observatory_job_store::{JobStore, PostgresJobStore};
use observatory_messaging::{BrokerConnector, RabbitMq, Topology, connect_with_retry, redact};
use observatory_runtime::backoff::Dependency;
use observatory_runtime::shutdown::CancellationToken;

use crate::contracts::event_envelope::EventProducer;
use crate::{ReadModelConfig, ReadModelState, SERVICE};

/// PostgreSQL connections of the read model's pool.
const POSTGRES_CONNECTIONS: u32 = 8;
/// How often the broker connection is checked.
const BROKER_CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// What the read model reads: the job store, the event log, the counters and the broker's
/// queue depths, whichever adapters serve them.
pub struct ReadModelBackends {
    pub broker: Arc<dyn BrokerConnector>,
    pub job_store: Dependency<dyn JobStore>,
    pub event_log: Dependency<dyn EventLog>,
    pub counters: Dependency<dyn Counters>,
}

impl ReadModelBackends {
    /// RabbitMQ, PostgreSQL, MongoDB and Redis as `config` names them.
    pub fn from_config(config: &ReadModelConfig) -> Result<Self, serde_json::Error> {
        let producer = producer()?;
        let postgres_url = config.postgres_url.clone();
        let (mongodb_url, database) = (config.mongodb_url.clone(), config.mongodb_database.clone());
        let (redis_url, prefix) = (config.redis_url.clone(), config.redis_prefix.clone());
        Ok(Self {
            broker: Arc::new(RabbitMq::new(
                config.rabbitmq_url.clone(),
                Topology::new(config.broker_prefix.clone()),
            )),
            job_store: Dependency::connect(
                "postgresql",
                format!("PostgreSQL at {}", redact(&postgres_url)),
                move || {
                    let (url, producer) = (postgres_url.clone(), producer.clone());
                    async move {
                        let store =
                            PostgresJobStore::connect(&url, POSTGRES_CONNECTIONS, producer).await?;
                        Ok::<Arc<dyn JobStore>, observatory_job_store::StoreError>(Arc::new(store))
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
                        Ok::<Arc<dyn EventLog>, observatory_event_log::EventLogError>(Arc::new(log))
                    }
                },
            ),
            counters: Dependency::connect(
                "redis",
                format!("Redis at {}", redact(&redis_url)),
                move || {
                    let (url, prefix) = (redis_url.clone(), prefix.clone());
                    async move {
                        let counters = RedisCounters::connect(&url, &prefix).await?;
                        Ok::<Arc<dyn Counters>, observatory_counters::CountersError>(Arc::new(
                            counters,
                        ))
                    }
                },
            ),
        })
    }
}

pub(crate) async fn connect_all(
    backends: ReadModelBackends,
    state: ReadModelState,
    shutdown: CancellationToken,
) {
    let job_store = async {
        if let Some(store) = backends.job_store.connect_with_retry(&shutdown).await {
            state.provide_job_store(store);
        }
    };
    let event_log = async {
        if let Some(log) = backends.event_log.connect_with_retry(&shutdown).await {
            state.provide_event_log(log);
        }
    };
    let counters = async {
        if let Some(counters) = backends.counters.connect_with_retry(&shutdown).await {
            state.provide_counters(counters);
        }
    };
    let broker = supervise_broker(backends.broker.as_ref(), &state, &shutdown);
    tokio::join!(job_store, event_log, counters, broker);
}

/// The read model writes no events; the job store still wants to know who it is.
fn producer() -> Result<EventProducer, serde_json::Error> {
    let instance = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("{SERVICE}-{}", std::process::id()));
    serde_json::from_value(serde_json::json!({
        "service": SERVICE,
        "instanceId": instance,
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

async fn supervise_broker(
    connector: &dyn BrokerConnector,
    state: &ReadModelState,
    shutdown: &CancellationToken,
) {
    loop {
        let Some(broker) = connect_with_retry(connector, shutdown).await else {
            return;
        };
        state.set_broker(Some(broker.clone()));
        loop {
            tokio::select! {
                () = tokio::time::sleep(BROKER_CHECK_INTERVAL) => {}
                () = shutdown.cancelled() => return,
            }
            if !broker.is_connected() {
                tracing::warn!(broker = %connector.describe(), "lost the broker connection; reconnecting");
                state.set_broker(None);
                break;
            }
        }
    }
}
