//! The RabbitMQ adapter against the real broker on this machine. Each test declares its own
//! topology under a unique prefix and deletes its queues at the end.

use lapin::options::BasicNackOptions;
use observatory_messaging::{
    BasicAckOptions, Broker, BrokerError, JOB_CREATED, MessageMeta, Topology, next_delivery,
};
use observatory_runtime::shutdown::CancellationToken;
use observatory_test_support::{rabbitmq_url, unique_name};
use std::time::Duration;

async fn broker() -> Broker {
    Broker::connect(&rabbitmq_url(), Topology::new(unique_name()))
        .await
        .expect("RabbitMQ on 127.0.0.1:5672 (run `cargo xtask test`, which starts it)")
}

async fn cleanup(broker: &Broker) {
    broker.delete_queues().await.unwrap();
}

fn header(delivery: &lapin::message::Delivery, name: &str) -> Option<String> {
    delivery
        .properties
        .headers()
        .as_ref()?
        .inner()
        .get(name)
        .and_then(|v| match v {
            lapin::types::AMQPValue::LongString(s) => {
                Some(String::from_utf8_lossy(s.as_bytes()).into_owned())
            }
            _ => None,
        })
}

#[tokio::test]
async fn a_confirmed_publish_is_delivered_persistently_with_its_metadata() {
    let broker = broker().await;
    let topology = broker.topology().clone();
    let publisher = broker.publisher(Duration::from_secs(5)).await.unwrap();
    let meta = MessageMeta {
        message_id: Some("m-1".into()),
        correlation_id: Some("req-1".into()),
        headers: vec![("x-test".into(), "yes".into())],
    };
    publisher
        .publish(&topology.jobs_exchange(), JOB_CREATED, br#"{"n":1}"#, &meta)
        .await
        .unwrap();
    assert_eq!(
        broker.queue_depth(&topology.jobs_queue()).await.unwrap(),
        (1, 0)
    );

    let shutdown = CancellationToken::new();
    let mut consumer = broker
        .consume(&topology.jobs_queue(), "test", 10)
        .await
        .unwrap();
    let delivery = tokio::time::timeout(
        Duration::from_secs(5),
        next_delivery(&mut consumer, &shutdown),
    )
    .await
    .unwrap()
    .unwrap()
    .unwrap();
    assert_eq!(delivery.data, br#"{"n":1}"#);
    assert_eq!(delivery.properties.delivery_mode(), &Some(2), "persistent");
    assert_eq!(
        delivery
            .properties
            .message_id()
            .as_ref()
            .map(|s| s.as_str()),
        Some("m-1")
    );
    assert_eq!(
        delivery
            .properties
            .correlation_id()
            .as_ref()
            .map(|s| s.as_str()),
        Some("req-1")
    );
    assert_eq!(header(&delivery, "x-test").as_deref(), Some("yes"));
    delivery.ack(BasicAckOptions::default()).await.unwrap();
    cleanup(&broker).await;
}

#[tokio::test]
async fn an_unroutable_message_is_an_error_not_a_silent_drop() {
    let broker = broker().await;
    let publisher = broker.publisher(Duration::from_secs(5)).await.unwrap();
    let result = publisher
        .publish(
            &broker.topology().jobs_exchange(),
            "no.such.key",
            b"{}",
            &MessageMeta::default(),
        )
        .await;
    assert!(
        matches!(result, Err(BrokerError::Unroutable(..))),
        "{result:?}"
    );
    cleanup(&broker).await;
}

#[tokio::test]
async fn a_rejected_message_lands_in_the_dead_letter_queue() {
    let broker = broker().await;
    let topology = broker.topology().clone();
    let publisher = broker.publisher(Duration::from_secs(5)).await.unwrap();
    publisher
        .publish(
            &topology.jobs_exchange(),
            JOB_CREATED,
            b"not json",
            &MessageMeta::default(),
        )
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let mut consumer = broker
        .consume(&topology.jobs_queue(), "test", 1)
        .await
        .unwrap();
    let delivery = tokio::time::timeout(
        Duration::from_secs(5),
        next_delivery(&mut consumer, &shutdown),
    )
    .await
    .unwrap()
    .unwrap()
    .unwrap();
    delivery
        .nack(BasicNackOptions {
            requeue: false,
            ..Default::default()
        })
        .await
        .unwrap();

    let mut dead = broker
        .consume(&topology.dead_letter_queue(), "test-dlq", 1)
        .await
        .unwrap();
    let letter = tokio::time::timeout(Duration::from_secs(5), next_delivery(&mut dead, &shutdown))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(letter.data, b"not json");
    letter.ack(BasicAckOptions::default()).await.unwrap();
    cleanup(&broker).await;
}

#[tokio::test]
async fn shutdown_ends_a_consumer_wait() {
    let broker = broker().await;
    let shutdown = CancellationToken::new();
    let mut consumer = broker
        .consume(&broker.topology().jobs_queue(), "test", 1)
        .await
        .unwrap();
    shutdown.cancel();
    assert!(next_delivery(&mut consumer, &shutdown).await.is_none());
    cleanup(&broker).await;
}
