//! The message broker seam and its RabbitMQ adapter (lapin).
//!
//! Topology (every name starts with a configurable prefix, default `observatory`, so that
//! deployments and test runs sharing a broker never see each other's messages):
//!
//! | name | kind | what flows |
//! |---|---|---|
//! | `P.jobs` | direct exchange → queues `P.jobs` and `P.metrics-engine` | `job.created` (new jobs) for the processor, and for the event log and counters |
//! | `P.events` | topic exchange → queue `P.metrics-engine` (`job.*`) | lifecycle events from the outbox relay |
//! | `P.dead-letters` | fanout exchange → queue `P.dead-letters` | messages no consumer could process, with a reason header |
//!
//! Retries do not wait in the broker: the job store keeps a failed job RETRYING with its
//! `next_attempt_at`, so a pending retry survives any restart and the read model can show it
//! (see `observatory-job-store`).
//!
//! Publishing is persistent, mandatory, and confirmed: [`Publisher::publish`] returns only
//! after the broker confirmed it stored (or routed) the message.

use futures_util::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use observatory_runtime::shutdown::CancellationToken;
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub use lapin::Consumer;
pub use lapin::message::Delivery;
pub use lapin::options::{BasicAckOptions, BasicNackOptions};

/// Routing key of job messages (new jobs and retries).
pub const JOB_CREATED: &str = "job.created";
/// Header carrying why a message was dead-lettered.
pub const REASON_HEADER: &str = "x-observatory-reason";

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("cannot reach the broker: {0}")]
    Connect(#[source] lapin::Error),
    #[error("broker operation failed: {0}")]
    Operation(#[from] lapin::Error),
    #[error("not connected to the broker")]
    NotConnected,
    #[error("the broker did not confirm the publish within {0:?}")]
    ConfirmTimeout(Duration),
    #[error("the broker refused the message (nack)")]
    Nacked,
    #[error("no queue is bound for routing key {0:?} on exchange {1:?}")]
    Unroutable(String, String),
}

/// Names and declarations of every exchange and queue.
#[derive(Debug, Clone)]
pub struct Topology {
    prefix: String,
}

impl Topology {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn jobs_exchange(&self) -> String {
        format!("{}.jobs", self.prefix)
    }

    pub fn jobs_queue(&self) -> String {
        format!("{}.jobs", self.prefix)
    }

    pub fn events_exchange(&self) -> String {
        format!("{}.events", self.prefix)
    }

    pub fn metrics_queue(&self) -> String {
        format!("{}.metrics-engine", self.prefix)
    }

    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.dead-letters", self.prefix)
    }

    pub fn dead_letter_queue(&self) -> String {
        format!("{}.dead-letters", self.prefix)
    }

    /// Every queue the system reads, for depth reporting.
    pub fn queues(&self) -> Vec<String> {
        vec![
            self.jobs_queue(),
            self.metrics_queue(),
            self.dead_letter_queue(),
        ]
    }

    /// Declares everything (idempotent: safe for every process to do at start).
    pub async fn declare(&self, channel: &Channel) -> Result<(), BrokerError> {
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        let queue = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        channel
            .exchange_declare(
                self.jobs_exchange().into(),
                ExchangeKind::Direct,
                durable,
                FieldTable::default(),
            )
            .await?;
        channel
            .exchange_declare(
                self.events_exchange().into(),
                ExchangeKind::Topic,
                durable,
                FieldTable::default(),
            )
            .await?;
        channel
            .exchange_declare(
                self.dead_letter_exchange().into(),
                ExchangeKind::Fanout,
                durable,
                FieldTable::default(),
            )
            .await?;

        // Consumer queues dead-letter what is rejected without requeue, so nothing is dropped
        // even when a consumer gives up on a message without publishing it itself.
        let mut consumer_args = FieldTable::default();
        consumer_args.insert(
            "x-dead-letter-exchange".into(),
            string(&self.dead_letter_exchange()),
        );
        channel
            .queue_declare(self.jobs_queue().into(), queue, consumer_args.clone())
            .await?;
        bind(
            channel,
            self.jobs_queue(),
            self.jobs_exchange(),
            JOB_CREATED,
        )
        .await?;
        channel
            .queue_declare(self.metrics_queue().into(), queue, consumer_args)
            .await?;
        bind(
            channel,
            self.metrics_queue(),
            self.events_exchange(),
            "job.*",
        )
        .await?;
        // The gateway's one confirmed publish of a job.created reaches both the processor and
        // the metrics engine (which logs and counts submissions).
        bind(
            channel,
            self.metrics_queue(),
            self.jobs_exchange(),
            JOB_CREATED,
        )
        .await?;
        channel
            .queue_declare(
                self.dead_letter_queue().into(),
                queue,
                FieldTable::default(),
            )
            .await?;
        bind(
            channel,
            self.dead_letter_queue(),
            self.dead_letter_exchange(),
            "",
        )
        .await?;
        Ok(())
    }

    /// Deletes every queue.
    pub async fn delete_queues(&self, channel: &Channel) -> Result<(), BrokerError> {
        for queue in self.queues() {
            channel
                .queue_delete(queue.into(), QueueDeleteOptions::default())
                .await?;
        }
        Ok(())
    }
}

/// Binds `queue` to `exchange` for `routing_key`.
async fn bind(
    channel: &Channel,
    queue: String,
    exchange: String,
    routing_key: &str,
) -> Result<(), BrokerError> {
    channel
        .queue_bind(
            queue.into(),
            exchange.into(),
            routing_key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok(())
}

fn string(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()))
}

/// What a message says about itself besides its body.
#[derive(Debug, Clone, Default)]
pub struct MessageMeta {
    pub message_id: Option<String>,
    pub correlation_id: Option<String>,
    /// Extra string headers (e.g. the dead-letter reason).
    pub headers: Vec<(String, String)>,
}

/// A connection with the topology declared.
pub struct Broker {
    connection: Connection,
    topology: Topology,
}

impl Broker {
    /// Connects once and declares the topology.
    pub async fn connect(url: &str, topology: Topology) -> Result<Self, BrokerError> {
        let connection = Connection::connect(url, ConnectionProperties::default())
            .await
            .map_err(BrokerError::Connect)?;
        let channel = connection.create_channel().await?;
        topology.declare(&channel).await?;
        let _ = channel.close(200, "topology declared".into()).await;
        Ok(Self {
            connection,
            topology,
        })
    }

    /// Connects, retrying with backoff (and saying so) until it succeeds or `shutdown` fires.
    pub async fn connect_with_retry(
        url: &str,
        topology: Topology,
        shutdown: &CancellationToken,
    ) -> Option<Self> {
        observatory_runtime::backoff::connect_with_retry("RabbitMQ", &redact(url), shutdown, || {
            Self::connect(url, topology.clone())
        })
        .await
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    pub fn is_connected(&self) -> bool {
        self.connection.status().connected()
    }

    /// A publisher on its own channel, with publisher confirms enabled.
    pub async fn publisher(&self, confirm_timeout: Duration) -> Result<Publisher, BrokerError> {
        let channel = self.connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Publisher {
            channel,
            confirm_timeout,
        })
    }

    /// Consumes `queue` on its own channel with at most `prefetch` unacknowledged messages.
    pub async fn consume(
        &self,
        queue: &str,
        consumer_tag: &str,
        prefetch: u16,
    ) -> Result<lapin::Consumer, BrokerError> {
        let channel = self.connection.create_channel().await?;
        channel
            .basic_qos(prefetch, BasicQosOptions::default())
            .await?;
        Ok(channel
            .basic_consume(
                queue.into(),
                consumer_tag.into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?)
    }

    /// (ready messages, consumers) of a queue, without creating it.
    pub async fn queue_depth(&self, queue: &str) -> Result<(u32, u32), BrokerError> {
        let channel = self.connection.create_channel().await?;
        let declared = channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await;
        let _ = channel.close(200, "depth read".into()).await;
        let q = declared?;
        Ok((q.message_count(), q.consumer_count()))
    }

    /// Deletes every queue of the topology (tests clean up with this).
    pub async fn delete_queues(&self) -> Result<(), BrokerError> {
        let channel = self.connection.create_channel().await?;
        self.topology.delete_queues(&channel).await
    }

    pub async fn close(&self) {
        let _ = self.connection.close(200, "shutting down".into()).await;
    }
}

/// A channel in confirm mode. Concurrent publishes on one publisher are pipelined: each
/// waits for its own confirm.
#[derive(Clone)]
pub struct Publisher {
    channel: Channel,
    confirm_timeout: Duration,
}

impl Publisher {
    /// Publishes a persistent JSON message and waits until the broker confirms it.
    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        meta: &MessageMeta,
    ) -> Result<(), BrokerError> {
        let mut properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into());
        if let Some(id) = &meta.message_id {
            properties = properties.with_message_id(ShortString::from(id.as_str()));
        }
        if let Some(id) = &meta.correlation_id {
            properties = properties.with_correlation_id(ShortString::from(id.as_str()));
        }
        if !meta.headers.is_empty() {
            let mut headers = FieldTable::default();
            for (k, v) in &meta.headers {
                headers.insert(k.as_str().into(), string(v));
            }
            properties = properties.with_headers(headers);
        }
        let options = BasicPublishOptions {
            mandatory: true,
            ..Default::default()
        };
        let confirm = self
            .channel
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                options,
                body,
                properties,
            )
            .await?;
        match tokio::time::timeout(self.confirm_timeout, confirm).await {
            Err(_) => Err(BrokerError::ConfirmTimeout(self.confirm_timeout)),
            Ok(Err(error)) => Err(error.into()),
            Ok(Ok(Confirmation::Ack(Some(_returned)))) => {
                Err(BrokerError::Unroutable(routing_key.into(), exchange.into()))
            }
            Ok(Ok(Confirmation::Ack(None))) => Ok(()),
            Ok(Ok(Confirmation::Nack(_))) => Err(BrokerError::Nacked),
            Ok(Ok(Confirmation::NotRequested)) => Ok(()),
        }
    }

    pub fn is_open(&self) -> bool {
        self.channel.status().connected()
    }
}

/// A publisher that keeps itself connected: a background task connects (with backoff),
/// watches the connection, and reconnects after a loss. While it is down, [`publish`]
/// fails fast with [`BrokerError::NotConnected`] (the gateway answers 503).
///
/// [`publish`]: ReconnectingPublisher::publish
#[derive(Clone)]
pub struct ReconnectingPublisher {
    current: Arc<RwLock<Option<Publisher>>>,
}

impl ReconnectingPublisher {
    pub fn start(
        url: String,
        topology: Topology,
        confirm_timeout: Duration,
        shutdown: CancellationToken,
    ) -> Self {
        let current: Arc<RwLock<Option<Publisher>>> = Arc::default();
        let slot = current.clone();
        tokio::spawn(async move {
            while let Some(broker) =
                Broker::connect_with_retry(&url, topology.clone(), &shutdown).await
            {
                match broker.publisher(confirm_timeout).await {
                    Ok(publisher) => set(&slot, Some(publisher)),
                    Err(error) => tracing::warn!(%error, "opening a publisher channel"),
                }
                // Watch for a lost connection (or channel), then start over.
                loop {
                    let healthy = broker.is_connected() && read(&slot).is_some_and(|p| p.is_open());
                    if !healthy {
                        tracing::warn!("lost the RabbitMQ connection; reconnecting");
                        break;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                        _ = shutdown.cancelled() => {
                            set(&slot, None);
                            broker.close().await;
                            return;
                        }
                    }
                }
                set(&slot, None);
            }
        });
        Self { current }
    }

    pub fn is_ready(&self) -> bool {
        read(&self.current).is_some_and(|p| p.is_open())
    }

    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        meta: &MessageMeta,
    ) -> Result<(), BrokerError> {
        let publisher = read(&self.current).ok_or(BrokerError::NotConnected)?;
        publisher.publish(exchange, routing_key, body, meta).await
    }
}

fn read(slot: &RwLock<Option<Publisher>>) -> Option<Publisher> {
    slot.read().unwrap_or_else(|p| p.into_inner()).clone()
}

fn set(slot: &RwLock<Option<Publisher>>, value: Option<Publisher>) {
    *slot.write().unwrap_or_else(|p| p.into_inner()) = value;
}

/// The URL without its password, for logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

/// Reads the next delivery, or `None` when the consumer ended or `shutdown` fired.
pub async fn next_delivery(
    consumer: &mut lapin::Consumer,
    shutdown: &CancellationToken,
) -> Option<Result<Delivery, BrokerError>> {
    tokio::select! {
        next = consumer.next() => next.map(|r| r.map_err(BrokerError::from)),
        _ = shutdown.cancelled() => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("amqp://guest:secret@host:5672/%2f"),
            "amqp://guest:***@host:5672/%2f"
        );
        assert_eq!(redact("amqp://host"), "amqp://host");
    }
}
