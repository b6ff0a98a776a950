//! The RabbitMQ connection: kept in a slot that the consumer session fills (reconnecting with
//! backoff after a loss) and that the relay and `/readyz` read.

use std::sync::{Arc, RwLock};

use futures_util::future::BoxFuture;
use observatory_job_store::JobStore;
use observatory_messaging::{BrokerConnector, MessageBroker, connect_with_retry};
use observatory_runtime::http::ReadinessCheck;
use observatory_runtime::shutdown::CancellationToken;

use crate::consumer::JobConsumer;

/// The current broker connection, if any. Cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct BrokerSlot {
    current: Arc<RwLock<Option<Arc<dyn MessageBroker>>>>,
}

impl BrokerSlot {
    pub fn get(&self) -> Option<Arc<dyn MessageBroker>> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .filter(|b| b.is_connected())
    }

    fn set(&self, broker: Option<Arc<dyn MessageBroker>>) -> Option<Arc<dyn MessageBroker>> {
        std::mem::replace(
            &mut *self.current.write().unwrap_or_else(|p| p.into_inner()),
            broker,
        )
    }

    /// Closes the connection (after in-flight deliveries were settled).
    pub async fn close(&self) {
        if let Some(broker) = self.set(None) {
            broker.close().await;
        }
    }
}

/// Connects (retrying), consumes until `stop` fires, and reconnects after a lost connection.
/// The last connection stays open in the slot so that in-flight deliveries can be settled.
pub(crate) async fn run_consumer_sessions(
    connector: Arc<dyn BrokerConnector>,
    slot: BrokerSlot,
    consumer: Arc<JobConsumer>,
    stop: CancellationToken,
) {
    while let Some(broker) = connect_with_retry(connector.as_ref(), &stop).await {
        if let Some(previous) = slot.set(Some(broker.clone())) {
            previous.close().await;
        }
        match consumer.consume(&*broker, &stop).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, broker = connector.kind(), "lost the job consumer; reconnecting");
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
                    _ = stop.cancelled() => return,
                }
            }
        }
    }
}

/// `/readyz`: the job store answers (named by its kind, e.g. `postgresql`).
pub(crate) struct StoreReady(pub Arc<dyn JobStore>, pub &'static str);

impl ReadinessCheck for StoreReady {
    fn name(&self) -> &'static str {
        self.1
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move { self.0.ping().await.map_err(|e| e.to_string()) })
    }
}

/// `/readyz`: connected to the broker (named by its kind, e.g. `rabbitmq`).
pub(crate) struct BrokerReady(pub BrokerSlot, pub &'static str);

impl ReadinessCheck for BrokerReady {
    fn name(&self) -> &'static str {
        self.1
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            match self.0.get() {
                Some(_) => Ok(()),
                None => Err(format!("not connected to the broker ({})", self.1)),
            }
        })
    }
}
