//! The message broker port, with two adapters: RabbitMQ ([`RabbitMq`], lapin) and an
//! in-process broker ([`EmbeddedBroker`]) for `observatory up` without servers.
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
//! What every adapter promises (held by `tests/conformance.rs`, run against both):
//! - [`MessagePublisher::publish`] returns only after the broker stored the message in every
//!   bound queue; a message no queue is bound for is an error ([`BrokerError::Unroutable`]),
//!   never a silent drop.
//! - One consumer of a queue receives its messages in publish order (requeued messages come
//!   back first, marked `redelivered`); at most `prefetch` deliveries are unacknowledged at once.
//! - A delivery is settled by [`Delivery::ack`] or [`Delivery::nack`]; a nack with requeue
//!   redelivers it, a nack without requeue dead-letters it (consumer queues route rejected
//!   messages to `P.dead-letters`). Deliveries left unsettled when their connection closes
//!   are redelivered.

mod embedded;
mod rabbitmq;
mod topology;

use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::{Stream, StreamExt};
use observatory_runtime::shutdown::CancellationToken;

pub use crate::embedded::{EmbeddedBroker, Limits as EmbeddedLimits};
pub use crate::rabbitmq::RabbitMq;
pub use crate::topology::{Binding, ExchangeKind, Topology};

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
    #[error("the broker blocked publishing (a memory or disk alarm)")]
    Blocked,
    #[error("no queue is bound for routing key {0:?} on exchange {1:?}")]
    Unroutable(String, String),
    #[error("queue {0:?} does not exist")]
    NoSuchQueue(String),
    #[error("the delivery was already acknowledged or rejected")]
    AlreadySettled,
    #[error("the embedded broker's journal failed: {0}")]
    Journal(String),
}

/// What a message says about itself besides its body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageMeta {
    pub message_id: Option<String>,
    pub correlation_id: Option<String>,
    /// Extra string headers (e.g. the dead-letter reason).
    pub headers: Vec<(String, String)>,
}

impl MessageMeta {
    /// The value of header `name`, if the message has it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Settles one delivery with the adapter that delivered it.
#[async_trait]
pub trait Acker: Send + Sync {
    /// `multiple`: also every earlier unsettled delivery of the same consumer.
    async fn ack(&self, multiple: bool) -> Result<(), BrokerError>;
    async fn nack(&self, multiple: bool, requeue: bool) -> Result<(), BrokerError>;
}

/// A received message, to be settled exactly once.
pub struct Delivery {
    pub data: Vec<u8>,
    pub exchange: String,
    pub routing_key: String,
    /// Delivered before and returned to the queue unsettled (or nacked with requeue).
    pub redelivered: bool,
    pub meta: MessageMeta,
    acker: Box<dyn Acker>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("exchange", &self.exchange)
            .field("routing_key", &self.routing_key)
            .field("redelivered", &self.redelivered)
            .field("meta", &self.meta)
            .field("bytes", &self.data.len())
            .finish_non_exhaustive()
    }
}

impl Delivery {
    pub async fn ack(&self) -> Result<(), BrokerError> {
        self.acker.ack(false).await
    }

    /// Acknowledges this delivery and every earlier unsettled one of the same consumer.
    pub async fn ack_up_to(&self) -> Result<(), BrokerError> {
        self.acker.ack(true).await
    }

    /// Rejects it: back to the queue when `requeue`, else to the dead-letter exchange.
    pub async fn nack(&self, requeue: bool) -> Result<(), BrokerError> {
        self.acker.nack(false, requeue).await
    }

    /// Rejects this delivery and every earlier unsettled one of the same consumer.
    pub async fn nack_up_to(&self, requeue: bool) -> Result<(), BrokerError> {
        self.acker.nack(true, requeue).await
    }
}

/// The deliveries of one consumer; ends when its connection closes.
pub type Subscription = Pin<Box<dyn Stream<Item = Result<Delivery, BrokerError>> + Send>>;

/// Publishes with confirms. Concurrent publishes on one publisher are pipelined: each waits
/// for its own confirm.
#[async_trait]
pub trait MessagePublisher: Send + Sync {
    /// Publishes a persistent JSON message and waits until the broker confirms it.
    async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        meta: &MessageMeta,
    ) -> Result<(), BrokerError>;

    fn is_open(&self) -> bool;
}

/// A publisher handle; cheap to clone.
pub type Publisher = Arc<dyn MessagePublisher>;

/// One connection to a broker, with the topology declared.
#[async_trait]
pub trait MessageBroker: Send + Sync {
    fn topology(&self) -> &Topology;

    fn is_connected(&self) -> bool;

    /// Whether the broker has blocked this connection's publishers (RabbitMQ's memory or disk
    /// alarm: `connection.blocked`). A publish would hang until it is unblocked.
    fn is_blocked(&self) -> bool {
        false
    }

    /// A publisher with confirms; a confirm not received within `confirm_timeout` is an error.
    async fn publisher(&self, confirm_timeout: Duration) -> Result<Publisher, BrokerError>;

    /// Consumes `queue` with at most `prefetch` unacknowledged deliveries.
    async fn consume(
        &self,
        queue: &str,
        consumer_tag: &str,
        prefetch: u16,
    ) -> Result<Subscription, BrokerError>;

    /// (ready messages, consumers) of a queue.
    async fn queue_depth(&self, queue: &str) -> Result<(u32, u32), BrokerError>;

    /// Deletes every queue of the topology (tests clean up with this).
    async fn delete_queues(&self) -> Result<(), BrokerError>;

    /// Closes the connection: its consumers end and their unsettled deliveries are requeued.
    async fn close(&self);
}

/// How a service reaches its broker: it connects (again, after a loss) through this.
#[async_trait]
pub trait BrokerConnector: Send + Sync {
    /// Connects once and declares the topology.
    async fn connect(&self) -> Result<Arc<dyn MessageBroker>, BrokerError>;

    /// What it connects to, for logs and the start-up banner (no passwords).
    fn describe(&self) -> String;

    /// The name of the dependency in `/readyz` and in messages, e.g. `rabbitmq`.
    fn kind(&self) -> &'static str;

    fn topology(&self) -> &Topology;
}

/// Connects, retrying with backoff (and saying so) until it succeeds or `shutdown` fires.
pub async fn connect_with_retry(
    connector: &dyn BrokerConnector,
    shutdown: &CancellationToken,
) -> Option<Arc<dyn MessageBroker>> {
    observatory_runtime::backoff::connect_with_retry(
        connector.kind(),
        &connector.describe(),
        shutdown,
        || connector.connect(),
    )
    .await
}

/// A publisher that keeps itself connected: a background task connects (with backoff),
/// watches the connection, and reconnects after a loss. While it is down, or while the broker
/// blocks publishing (RabbitMQ's `connection.blocked`, on a memory or disk alarm), [`publish`]
/// fails fast with [`BrokerError::NotConnected`] or [`BrokerError::Blocked`], so that nothing
/// is sent (the gateway answers 503, not accepted), and [`is_ready`] says so.
///
/// [`publish`]: ReconnectingPublisher::publish
/// [`is_ready`]: ReconnectingPublisher::is_ready
#[derive(Clone)]
pub struct ReconnectingPublisher {
    current: Arc<RwLock<Option<Current>>>,
}

/// The open publisher and the connection it is on.
#[derive(Clone)]
struct Current {
    publisher: Publisher,
    broker: Arc<dyn MessageBroker>,
}

/// Why a [`ReconnectingPublisher`] cannot publish now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublisherState {
    Ready,
    NotConnected,
    Blocked,
}

impl ReconnectingPublisher {
    pub fn start(
        connector: Arc<dyn BrokerConnector>,
        confirm_timeout: Duration,
        shutdown: CancellationToken,
    ) -> Self {
        let current: Arc<RwLock<Option<Current>>> = Arc::default();
        let slot = current.clone();
        tokio::spawn(async move {
            while let Some(broker) = connect_with_retry(connector.as_ref(), &shutdown).await {
                match broker.publisher(confirm_timeout).await {
                    Ok(publisher) => set(
                        &slot,
                        Some(Current {
                            publisher,
                            broker: broker.clone(),
                        }),
                    ),
                    Err(error) => tracing::warn!(%error, "opening a publisher channel"),
                }
                // Watch for a lost connection (or channel), then start over.
                let mut blocked = false;
                loop {
                    let healthy =
                        broker.is_connected() && read(&slot).is_some_and(|c| c.publisher.is_open());
                    if !healthy {
                        tracing::warn!(
                            broker = connector.kind(),
                            "lost the broker connection; reconnecting"
                        );
                        break;
                    }
                    if broker.is_blocked() != blocked {
                        blocked = !blocked;
                        if blocked {
                            tracing::warn!(
                                broker = connector.kind(),
                                "the broker blocked publishing (memory or disk alarm); not accepting jobs until it unblocks"
                            );
                        } else {
                            tracing::info!(
                                broker = connector.kind(),
                                "the broker unblocked publishing"
                            );
                        }
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

    pub fn state(&self) -> PublisherState {
        match read(&self.current) {
            Some(c) if !c.publisher.is_open() => PublisherState::NotConnected,
            Some(c) if c.broker.is_blocked() => PublisherState::Blocked,
            Some(_) => PublisherState::Ready,
            None => PublisherState::NotConnected,
        }
    }

    pub fn is_ready(&self) -> bool {
        self.state() == PublisherState::Ready
    }

    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        meta: &MessageMeta,
    ) -> Result<(), BrokerError> {
        let current = read(&self.current).ok_or(BrokerError::NotConnected)?;
        if current.broker.is_blocked() {
            return Err(BrokerError::Blocked);
        }
        current
            .publisher
            .publish(exchange, routing_key, body, meta)
            .await
    }
}

impl ReconnectingPublisher {
    /// (ready messages, consumers) of `queue` on the current connection.
    pub async fn queue_depth(&self, queue: &str) -> Result<(u32, u32), BrokerError> {
        let current = read(&self.current).ok_or(BrokerError::NotConnected)?;
        current.broker.queue_depth(queue).await
    }
}

fn read(slot: &RwLock<Option<Current>>) -> Option<Current> {
    slot.read().unwrap_or_else(|p| p.into_inner()).clone()
}

fn set(slot: &RwLock<Option<Current>>, value: Option<Current>) {
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
    consumer: &mut Subscription,
    shutdown: &CancellationToken,
) -> Option<Result<Delivery, BrokerError>> {
    tokio::select! {
        next = consumer.next() => next,
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

    #[test]
    fn headers_are_found_by_name() {
        let meta = MessageMeta {
            headers: vec![("a".into(), "1".into()), ("b".into(), "2".into())],
            ..Default::default()
        };
        assert_eq!(meta.header("b"), Some("2"));
        assert_eq!(meta.header("c"), None);
    }
}
