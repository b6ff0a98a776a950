//! Connecting the dependencies in the background: one task per dependency, each retrying with
//! backoff (and logging every failure) until it succeeds or shutdown. The broker connection is
//! then supervised: when it is lost it is taken out of the state and connected again.

use observatory_runtime::backoff::connect_with_retry;
use std::sync::Arc;
use std::time::Duration;

use crate::contracts::event_envelope::EventProducer;
use observatory_counters::Counters;
use observatory_event_log::EventLog;
use observatory_job_store::JobStore;
use observatory_messaging::{Broker, Topology, redact};
use observatory_runtime::shutdown::CancellationToken;

use crate::{ReadModelConfig, ReadModelState, SERVICE};

/// PostgreSQL connections of the read model's pool.
const POSTGRES_CONNECTIONS: u32 = 8;
/// How often the broker connection is checked.
const BROKER_CHECK_INTERVAL: Duration = Duration::from_secs(2);

pub(crate) async fn connect_all(
    config: ReadModelConfig,
    state: ReadModelState,
    shutdown: CancellationToken,
) {
    let postgres = async {
        let producer = match producer() {
            Ok(producer) => producer,
            Err(error) => {
                tracing::error!(%error, "cannot describe this process as an event producer");
                return;
            }
        };
        let (url, producer) = (config.postgres_url.as_str(), &producer);
        let store = connect_with_retry("PostgreSQL", &redact(url), &shutdown, move || {
            JobStore::connect(url, POSTGRES_CONNECTIONS, producer.clone())
        })
        .await;
        if let Some(store) = store {
            state.provide_job_store(store);
        }
    };
    let mongodb = async {
        let (url, database) = (
            config.mongodb_url.as_str(),
            config.mongodb_database.as_str(),
        );
        if let Some(log) = connect_with_retry("MongoDB", &redact(url), &shutdown, move || {
            EventLog::connect(url, database)
        })
        .await
        {
            state.provide_event_log(log);
        }
    };
    let redis = async {
        let (url, prefix) = (config.redis_url.as_str(), config.redis_prefix.as_str());
        if let Some(counters) = connect_with_retry("Redis", &redact(url), &shutdown, move || {
            Counters::connect(url, prefix)
        })
        .await
        {
            state.provide_counters(counters);
        }
    };
    let broker = supervise_broker(
        &config.rabbitmq_url,
        Topology::new(config.broker_prefix.clone()),
        &state,
        &shutdown,
    );
    tokio::join!(postgres, mongodb, redis, broker);
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
    url: &str,
    topology: Topology,
    state: &ReadModelState,
    shutdown: &CancellationToken,
) {
    loop {
        let Some(broker) = Broker::connect_with_retry(url, topology.clone(), shutdown).await else {
            return;
        };
        let broker = Arc::new(broker);
        state.set_broker(Some(broker.clone()));
        loop {
            tokio::select! {
                () = tokio::time::sleep(BROKER_CHECK_INTERVAL) => {}
                () = shutdown.cancelled() => return,
            }
            if !broker.is_connected() {
                tracing::warn!(broker = %redact(url), "lost the RabbitMQ connection; reconnecting");
                state.set_broker(None);
                break;
            }
        }
    }
}
