//! `/readyz`: each dependency is checked with a real round trip (e.g. PostgreSQL `SELECT 1`,
//! Redis `PING`, MongoDB `ping`, a passive declare of the jobs queue on RabbitMQ; the embedded
//! adapters answer the same calls). A dependency that is not connected yet is reported as such.

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use observatory_runtime::http::{Readiness, ReadinessCheck};

use crate::state::ReadModelState;

#[derive(Clone, Copy)]
enum Dependency {
    Postgres,
    Redis,
    MongoDb,
    RabbitMq,
}

struct Check {
    dependency: Dependency,
    state: ReadModelState,
}

const NOT_CONNECTED: &str = "not connected yet";

impl ReadinessCheck for Check {
    fn name(&self) -> &'static str {
        let names = self.state.dependency_names();
        match self.dependency {
            Dependency::Postgres => names.job_store,
            Dependency::Redis => names.counters,
            Dependency::MongoDb => names.event_log,
            Dependency::RabbitMq => names.broker,
        }
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        async move {
            match self.dependency {
                Dependency::Postgres => match self.state.job_store_if_connected() {
                    Some(store) => store.ping().await.map_err(|e| e.to_string()),
                    None => Err(NOT_CONNECTED.into()),
                },
                Dependency::Redis => match self.state.counters_if_connected() {
                    Some(counters) => counters.ping().await.map_err(|e| e.to_string()),
                    None => Err(NOT_CONNECTED.into()),
                },
                Dependency::MongoDb => match self.state.event_log_if_connected() {
                    Some(log) => log.ping().await.map_err(|e| e.to_string()),
                    None => Err(NOT_CONNECTED.into()),
                },
                Dependency::RabbitMq => match self.state.broker_if_connected() {
                    Some(broker) if broker.is_connected() => broker
                        .queue_depth(&self.state.topology().jobs_queue())
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                    Some(_) => Err("connection lost; reconnecting".into()),
                    None => Err(NOT_CONNECTED.into()),
                },
            }
        }
        .boxed()
    }
}

pub(crate) fn readiness(state: &ReadModelState) -> Readiness {
    [
        Dependency::Postgres,
        Dependency::Redis,
        Dependency::MongoDb,
        Dependency::RabbitMq,
    ]
    .into_iter()
    .fold(Readiness::default(), |readiness, dependency| {
        readiness.with(Check {
            dependency,
            state: state.clone(),
        })
    })
}
