//! The RabbitMQ adapter (lapin): durable exchanges and queues, persistent mandatory
//! publishes with publisher confirms, consumers with prefetch.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};

use crate::{
    Acker, BrokerConnector, BrokerError, Delivery, ExchangeKind, MessageBroker, MessageMeta,
    MessagePublisher, Publisher, Subscription, Topology, redact,
};

/// Connects to RabbitMQ at a URL.
#[derive(Debug, Clone)]
pub struct RabbitMq {
    url: String,
    topology: Topology,
}

impl RabbitMq {
    pub fn new(url: impl Into<String>, topology: Topology) -> Self {
        Self {
            url: url.into(),
            topology,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

#[async_trait]
impl BrokerConnector for RabbitMq {
    async fn connect(&self) -> Result<Arc<dyn MessageBroker>, BrokerError> {
        let connection = Connection::connect(&self.url, ConnectionProperties::default())
            .await
            .map_err(BrokerError::Connect)?;
        let channel = connection.create_channel().await?;
        declare(&self.topology, &channel).await?;
        let _ = channel.close(200, "topology declared".into()).await;
        Ok(Arc::new(RabbitMqConnection {
            connection,
            topology: self.topology.clone(),
        }))
    }

    fn describe(&self) -> String {
        format!("RabbitMQ at {}", redact(&self.url))
    }

    fn kind(&self) -> &'static str {
        "rabbitmq"
    }

    fn topology(&self) -> &Topology {
        &self.topology
    }
}

/// Declares everything (idempotent: safe for every process to do at start).
async fn declare(topology: &Topology, channel: &Channel) -> Result<(), BrokerError> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    for (exchange, kind) in topology.exchanges() {
        let kind = match kind {
            ExchangeKind::Direct => lapin::ExchangeKind::Direct,
            ExchangeKind::Topic => lapin::ExchangeKind::Topic,
            ExchangeKind::Fanout => lapin::ExchangeKind::Fanout,
        };
        channel
            .exchange_declare(exchange.into(), kind, durable, FieldTable::default())
            .await?;
    }
    let dead_lettering = topology.dead_lettering_queues();
    for queue in topology.queues() {
        let mut arguments = FieldTable::default();
        if dead_lettering.contains(&queue) {
            arguments.insert(
                "x-dead-letter-exchange".into(),
                string(&topology.dead_letter_exchange()),
            );
        }
        let options = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        channel
            .queue_declare(queue.into(), options, arguments)
            .await?;
    }
    for binding in topology.bindings() {
        channel
            .queue_bind(
                binding.queue.into(),
                binding.exchange.into(),
                binding.key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}

fn string(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()))
}

/// A connection with the topology declared.
struct RabbitMqConnection {
    connection: Connection,
    topology: Topology,
}

#[async_trait]
impl MessageBroker for RabbitMqConnection {
    fn topology(&self) -> &Topology {
        &self.topology
    }

    fn is_connected(&self) -> bool {
        self.connection.status().connected()
    }

    fn is_blocked(&self) -> bool {
        self.connection.status().blocked()
    }

    async fn publisher(&self, confirm_timeout: Duration) -> Result<Publisher, BrokerError> {
        let channel = self.connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Arc::new(RabbitMqPublisher {
            channel,
            confirm_timeout,
        }))
    }

    async fn consume(
        &self,
        queue: &str,
        consumer_tag: &str,
        prefetch: u16,
    ) -> Result<Subscription, BrokerError> {
        let channel = self.connection.create_channel().await?;
        channel
            .basic_qos(prefetch, BasicQosOptions::default())
            .await?;
        let consumer = channel
            .basic_consume(
                queue.into(),
                consumer_tag.into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(Box::pin(consumer.map(|next| {
            next.map(delivery_from_lapin)
                .map_err(BrokerError::Operation)
        })))
    }

    async fn queue_depth(&self, queue: &str) -> Result<(u32, u32), BrokerError> {
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

    async fn delete_queues(&self) -> Result<(), BrokerError> {
        let channel = self.connection.create_channel().await?;
        for queue in self.topology.queues() {
            channel
                .queue_delete(queue.into(), QueueDeleteOptions::default())
                .await?;
        }
        Ok(())
    }

    async fn close(&self) {
        let _ = self.connection.close(200, "shutting down".into()).await;
    }
}

fn delivery_from_lapin(delivery: lapin::message::Delivery) -> Delivery {
    let properties = &delivery.properties;
    let headers = properties
        .headers()
        .as_ref()
        .map(|table| {
            table
                .inner()
                .iter()
                .filter_map(|(name, value)| match value {
                    AMQPValue::LongString(s) => Some((
                        name.as_str().to_owned(),
                        String::from_utf8_lossy(s.as_bytes()).into_owned(),
                    )),
                    AMQPValue::ShortString(s) => {
                        Some((name.as_str().to_owned(), s.as_str().to_owned()))
                    }
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let meta = MessageMeta {
        message_id: properties
            .message_id()
            .as_ref()
            .map(|id| id.as_str().to_owned()),
        correlation_id: properties
            .correlation_id()
            .as_ref()
            .map(|id| id.as_str().to_owned()),
        headers,
    };
    Delivery {
        exchange: delivery.exchange.as_str().to_owned(),
        routing_key: delivery.routing_key.as_str().to_owned(),
        redelivered: delivery.redelivered,
        meta,
        acker: Box::new(LapinAcker(delivery.acker)),
        data: delivery.data,
    }
}

struct LapinAcker(lapin::Acker);

/// lapin answers `false` when the delivery's channel is gone: the broker redelivers it.
fn settled(done: bool) -> Result<(), BrokerError> {
    if done {
        Ok(())
    } else {
        Err(BrokerError::NotConnected)
    }
}

#[async_trait]
impl Acker for LapinAcker {
    async fn ack(&self, multiple: bool) -> Result<(), BrokerError> {
        settled(self.0.ack(BasicAckOptions { multiple }).await?)
    }

    async fn nack(&self, multiple: bool, requeue: bool) -> Result<(), BrokerError> {
        settled(self.0.nack(BasicNackOptions { multiple, requeue }).await?)
    }
}

/// A channel in confirm mode.
struct RabbitMqPublisher {
    channel: Channel,
    confirm_timeout: Duration,
}

#[async_trait]
impl MessagePublisher for RabbitMqPublisher {
    async fn publish(
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

    fn is_open(&self) -> bool {
        self.channel.status().connected()
    }
}
