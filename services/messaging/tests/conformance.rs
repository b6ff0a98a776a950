//! One conformance suite for every broker adapter: each behaviour runs against the real
//! RabbitMQ on this machine (`rabbitmq::…`) and against the in-process broker (`embedded::…`).
//! Each test declares its own topology under a unique prefix and deletes its queues at the end.

use std::sync::Arc;
use std::time::Duration;

use observatory_messaging::{
    BrokerConnector, BrokerError, Delivery, JOB_CREATED, MessageBroker, MessageMeta, Subscription,
    next_delivery,
};
use observatory_runtime::shutdown::CancellationToken;

/// Bounds every wait, so a broken adapter fails the test instead of hanging it.
const WAIT: Duration = Duration::from_secs(10);

async fn connect(connector: &Arc<dyn BrokerConnector>) -> Arc<dyn MessageBroker> {
    connector
        .connect()
        .await
        .expect("RabbitMQ on 127.0.0.1:5672 (run `cargo xtask test`, which starts it)")
}

async fn next(consumer: &mut Subscription) -> Delivery {
    tokio::time::timeout(WAIT, next_delivery(consumer, &CancellationToken::new()))
        .await
        .expect("a delivery within the time limit")
        .expect("the consumer is open")
        .expect("a delivery, not an error")
}

async fn publish(broker: &dyn MessageBroker, exchange: &str, key: &str, body: &[u8]) {
    broker
        .publisher(WAIT)
        .await
        .expect("publisher")
        .publish(exchange, key, body, &MessageMeta::default())
        .await
        .expect("confirmed publish");
}

async fn ready(broker: &dyn MessageBroker, queue: &str) -> u32 {
    broker.queue_depth(queue).await.expect("queue depth").0
}

async fn a_confirmed_publish_is_delivered_with_its_metadata(connector: Arc<dyn BrokerConnector>) {
    let broker = connect(&connector).await;
    let topology = broker.topology().clone();
    let publisher = broker.publisher(WAIT).await.expect("publisher");
    let meta = MessageMeta {
        message_id: Some("m-1".into()),
        correlation_id: Some("req-1".into()),
        headers: vec![("x-test".into(), "yes".into())],
    };
    publisher
        .publish(&topology.jobs_exchange(), JOB_CREATED, br#"{"n":1}"#, &meta)
        .await
        .expect("publish");
    assert_eq!(
        broker
            .queue_depth(&topology.jobs_queue())
            .await
            .expect("depth"),
        (1, 0)
    );
    let mut consumer = broker
        .consume(&topology.jobs_queue(), "test", 10)
        .await
        .expect("consume");
    let delivery = next(&mut consumer).await;
    assert_eq!(delivery.data, br#"{"n":1}"#);
    assert_eq!(delivery.meta, meta);
    assert_eq!(delivery.meta.header("x-test"), Some("yes"));
    assert_eq!(delivery.routing_key, JOB_CREATED);
    assert_eq!(delivery.exchange, topology.jobs_exchange());
    assert!(!delivery.redelivered);
    delivery.ack().await.expect("ack");
    broker.delete_queues().await.expect("cleanup");
}

async fn an_unroutable_message_is_an_error_not_a_silent_drop(connector: Arc<dyn BrokerConnector>) {
    let broker = connect(&connector).await;
    let publisher = broker.publisher(WAIT).await.expect("publisher");
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
    broker.delete_queues().await.expect("cleanup");
}

async fn job_created_reaches_the_processor_and_the_metrics_engine_and_events_only_the_latter(
    connector: Arc<dyn BrokerConnector>,
) {
    let broker = connect(&connector).await;
    let topology = broker.topology().clone();
    publish(&*broker, &topology.jobs_exchange(), JOB_CREATED, b"created").await;
    publish(
        &*broker,
        &topology.events_exchange(),
        "job.started",
        b"started",
    )
    .await;
    assert_eq!(ready(&*broker, &topology.jobs_queue()).await, 1);
    assert_eq!(ready(&*broker, &topology.metrics_queue()).await, 2);
    assert_eq!(ready(&*broker, &topology.dead_letter_queue()).await, 0);
    broker.delete_queues().await.expect("cleanup");
}

async fn one_consumer_receives_messages_in_publish_order(connector: Arc<dyn BrokerConnector>) {
    let broker = connect(&connector).await;
    let topology = broker.topology().clone();
    for n in 0..50 {
        publish(
            &*broker,
            &topology.jobs_exchange(),
            JOB_CREATED,
            n.to_string().as_bytes(),
        )
        .await;
    }
    let mut consumer = broker
        .consume(&topology.jobs_queue(), "order", 10)
        .await
        .expect("consume");
    for n in 0..50 {
        let delivery = next(&mut consumer).await;
        assert_eq!(delivery.data, n.to_string().as_bytes());
        delivery.ack().await.expect("ack");
    }
    broker.delete_queues().await.expect("cleanup");
}

async fn a_nack_with_requeue_redelivers_first_marked_redelivered(
    connector: Arc<dyn BrokerConnector>,
) {
    let broker = connect(&connector).await;
    let topology = broker.topology().clone();
    publish(&*broker, &topology.jobs_exchange(), JOB_CREATED, b"a").await;
    publish(&*broker, &topology.jobs_exchange(), JOB_CREATED, b"b").await;
    let mut consumer = broker
        .consume(&topology.jobs_queue(), "requeue", 1)
        .await
        .expect("consume");
    let first = next(&mut consumer).await;
    assert_eq!(first.data, b"a");
    first.nack(true).await.expect("nack");
    let again = next(&mut consumer).await;
    assert_eq!(
        again.data, b"a",
        "a requeued message comes back before later ones"
    );
    assert!(again.redelivered);
    again.ack().await.expect("ack");
    let second = next(&mut consumer).await;
    assert_eq!(second.data, b"b");
    assert!(!second.redelivered);
    second.ack().await.expect("ack");
    broker.delete_queues().await.expect("cleanup");
}

async fn a_rejected_message_lands_in_the_dead_letter_queue(connector: Arc<dyn BrokerConnector>) {
    let broker = connect(&connector).await;
    let topology = broker.topology().clone();
    publish(
        &*broker,
        &topology.jobs_exchange(),
        JOB_CREATED,
        b"not json",
    )
    .await;
    let mut consumer = broker
        .consume(&topology.jobs_queue(), "test", 1)
        .await
        .expect("consume");
    next(&mut consumer).await.nack(false).await.expect("nack");
    let mut dead = broker
        .consume(&topology.dead_letter_queue(), "test-dlq", 1)
        .await
        .expect("consume dead letters");
    let letter = next(&mut dead).await;
    assert_eq!(letter.data, b"not json");
    letter.ack().await.expect("ack");
    assert_eq!(ready(&*broker, &topology.jobs_queue()).await, 0);
    broker.delete_queues().await.expect("cleanup");
}

async fn prefetch_bounds_the_unsettled_deliveries(connector: Arc<dyn BrokerConnector>) {
    let broker = connect(&connector).await;
    let topology = broker.topology().clone();
    for body in [b"1", b"2", b"3"] {
        publish(&*broker, &topology.jobs_exchange(), JOB_CREATED, body).await;
    }
    let mut consumer = broker
        .consume(&topology.jobs_queue(), "prefetch", 2)
        .await
        .expect("consume");
    let one = next(&mut consumer).await;
    let two = next(&mut consumer).await;
    // With two unsettled, the third is not delivered and stays in the queue…
    let third = tokio::time::timeout(
        Duration::from_millis(300),
        next_delivery(&mut consumer, &CancellationToken::new()),
    )
    .await;
    assert!(third.is_err(), "a third delivery beyond the prefetch");
    assert_eq!(ready(&*broker, &topology.jobs_queue()).await, 1);
    // …until one is settled.
    one.ack().await.expect("ack");
    let three = next(&mut consumer).await;
    assert_eq!(three.data, b"3");
    two.ack().await.expect("ack");
    three.ack().await.expect("ack");
    broker.delete_queues().await.expect("cleanup");
}

async fn unsettled_deliveries_return_when_the_connection_closes(
    connector: Arc<dyn BrokerConnector>,
) {
    let broker = connect(&connector).await;
    let topology = broker.topology().clone();
    for body in [b"1", b"2", b"3"] {
        publish(&*broker, &topology.jobs_exchange(), JOB_CREATED, body).await;
    }
    let worker = connect(&connector).await;
    let mut consumer = worker
        .consume(&topology.jobs_queue(), "crashing", 10)
        .await
        .expect("consume");
    let one = next(&mut consumer).await;
    let _two = next(&mut consumer).await;
    let _three = next(&mut consumer).await;
    one.ack().await.expect("ack");
    worker.close().await;
    assert!(!worker.is_connected());

    let mut consumer = broker
        .consume(&topology.jobs_queue(), "successor", 10)
        .await
        .expect("consume");
    for body in [b"2", b"3"] {
        let delivery = next(&mut consumer).await;
        assert_eq!(delivery.data, body);
        assert!(delivery.redelivered);
        delivery.ack().await.expect("ack");
    }
    broker.delete_queues().await.expect("cleanup");
}

async fn ack_up_to_settles_every_earlier_delivery(connector: Arc<dyn BrokerConnector>) {
    let broker = connect(&connector).await;
    let topology = broker.topology().clone();
    for body in [b"1", b"2", b"3", b"4"] {
        publish(&*broker, &topology.jobs_exchange(), JOB_CREATED, body).await;
    }
    let worker = connect(&connector).await;
    let mut consumer = worker
        .consume(&topology.jobs_queue(), "batch", 10)
        .await
        .expect("consume");
    let mut batch = Vec::new();
    for _ in 0..3 {
        batch.push(next(&mut consumer).await);
    }
    batch[2].ack_up_to().await.expect("ack multiple");
    let fourth = next(&mut consumer).await;
    fourth.nack_up_to(true).await.expect("nack multiple");
    worker.close().await;
    // Only the nacked fourth is back; the three acknowledged together are gone.
    let mut consumer = broker
        .consume(&topology.jobs_queue(), "check", 10)
        .await
        .expect("consume");
    let back = next(&mut consumer).await;
    assert_eq!(back.data, b"4");
    assert!(back.redelivered);
    back.ack().await.expect("ack");
    assert_eq!(ready(&*broker, &topology.jobs_queue()).await, 0);
    broker.delete_queues().await.expect("cleanup");
}

async fn shutdown_ends_a_consumer_wait(connector: Arc<dyn BrokerConnector>) {
    let broker = connect(&connector).await;
    let shutdown = CancellationToken::new();
    let mut consumer = broker
        .consume(&broker.topology().jobs_queue(), "test", 1)
        .await
        .expect("consume");
    shutdown.cancel();
    assert!(next_delivery(&mut consumer, &shutdown).await.is_none());
    broker.delete_queues().await.expect("cleanup");
}

async fn a_closed_connection_refuses_work(connector: Arc<dyn BrokerConnector>) {
    let broker = connect(&connector).await;
    let publisher = broker.publisher(WAIT).await.expect("publisher");
    let topology = broker.topology().clone();
    let cleanup = connect(&connector).await;
    broker.close().await;
    assert!(!publisher.is_open());
    let result = publisher
        .publish(
            &topology.jobs_exchange(),
            JOB_CREATED,
            b"{}",
            &MessageMeta::default(),
        )
        .await;
    assert!(result.is_err(), "{result:?}");
    cleanup.delete_queues().await.expect("cleanup");
}

macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod rabbitmq {
            use super::*;
            use observatory_messaging::{RabbitMq, Topology};
            use observatory_test_support::{rabbitmq_url, unique_name};

            fn connector() -> Arc<dyn BrokerConnector> {
                Arc::new(RabbitMq::new(rabbitmq_url(), Topology::new(unique_name())))
            }

            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(connector()).await;
                }
            )*
        }

        mod embedded {
            use super::*;
            use observatory_messaging::{EmbeddedBroker, Topology};

            fn connector() -> Arc<dyn BrokerConnector> {
                Arc::new(EmbeddedBroker::new(Topology::new("embedded")))
            }

            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(connector()).await;
                }
            )*
        }

        /// The embedded broker with its journal: the same behaviour, and durable.
        mod journaled {
            use super::*;

            $(
                #[tokio::test]
                async fn $test() {
                    let (broker, dir) = super::journaled("journaled").await;
                    super::$test(Arc::new(broker)).await;
                    let _ = std::fs::remove_dir_all(dir);
                }
            )*
        }
    };
}

/// A durable embedded broker in a fresh directory (returned, to be removed).
async fn journaled(prefix: &str) -> (observatory_messaging::EmbeddedBroker, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "observatory-journal-{}",
        observatory_test_support::unique_name()
    ));
    let broker = reopen(
        prefix,
        &dir,
        observatory_messaging::EmbeddedLimits::default(),
    )
    .await;
    (broker, dir)
}

/// Opens the durable broker whose journal is in `dir`.
async fn reopen(
    prefix: &str,
    dir: &std::path::Path,
    limits: observatory_messaging::EmbeddedLimits,
) -> observatory_messaging::EmbeddedBroker {
    observatory_messaging::EmbeddedBroker::open(
        observatory_messaging::Topology::new(prefix),
        &observatory_sqlite::Location::File(dir.join("broker.sqlite")),
        limits,
    )
    .await
    .expect("the journal opens")
}

conformance!(
    a_confirmed_publish_is_delivered_with_its_metadata,
    an_unroutable_message_is_an_error_not_a_silent_drop,
    job_created_reaches_the_processor_and_the_metrics_engine_and_events_only_the_latter,
    one_consumer_receives_messages_in_publish_order,
    a_nack_with_requeue_redelivers_first_marked_redelivered,
    a_rejected_message_lands_in_the_dead_letter_queue,
    prefetch_bounds_the_unsettled_deliveries,
    unsettled_deliveries_return_when_the_connection_closes,
    ack_up_to_settles_every_earlier_delivery,
    shutdown_ends_a_consumer_wait,
    a_closed_connection_refuses_work,
);

/// Embedded only: the bound on queued messages is back-pressure, not unbounded memory.
#[tokio::test]
async fn the_embedded_broker_refuses_a_publish_into_a_full_queue() {
    use observatory_messaging::{EmbeddedBroker, EmbeddedLimits, Topology};
    let embedded = EmbeddedBroker::with_limits(
        Topology::new("full"),
        EmbeddedLimits {
            max_queue_length: 2,
            ..EmbeddedLimits::default()
        },
    );
    let broker = embedded.connect().await.expect("connect");
    let topology = broker.topology().clone();
    let publisher = broker.publisher(WAIT).await.expect("publisher");
    let send = || async {
        publisher
            .publish(
                &topology.jobs_exchange(),
                JOB_CREATED,
                b"{}",
                &MessageMeta::default(),
            )
            .await
    };
    send().await.expect("first");
    send().await.expect("second");
    assert!(matches!(send().await, Err(BrokerError::Nacked)));
    // The dead-letter queue, which nothing consumes, keeps the newest instead of refusing.
    let dead = || async {
        publisher
            .publish(
                &topology.dead_letter_exchange(),
                "",
                b"dead",
                &MessageMeta::default(),
            )
            .await
    };
    for _ in 0..3 {
        dead().await.expect("the dead-letter queue never refuses");
    }
    assert_eq!(
        broker
            .queue_depth(&topology.dead_letter_queue())
            .await
            .expect("depth")
            .0,
        2
    );
    assert_eq!(embedded.unsettled(), 4, "two in each consumer queue");
}

/// Embedded only: the bound holds on bytes too, so large messages cannot exhaust memory; a
/// settled message frees its room.
#[tokio::test]
async fn the_embedded_broker_bounds_each_queue_by_bytes() {
    use observatory_messaging::{EmbeddedBroker, EmbeddedLimits, Topology};
    let embedded = EmbeddedBroker::with_limits(
        Topology::new("bytes"),
        EmbeddedLimits {
            max_queue_bytes: 100 * 1024,
            ..EmbeddedLimits::default()
        },
    );
    let broker = embedded.connect().await.expect("connect");
    let topology = broker.topology().clone();
    let publisher = broker.publisher(WAIT).await.expect("publisher");
    let big = vec![b'x'; 40 * 1024];
    let exchange = topology.jobs_exchange();
    let meta = MessageMeta::default();
    let send = || publisher.publish(&exchange, JOB_CREATED, &big, &meta);
    send().await.expect("40 KiB");
    send().await.expect("80 KiB");
    assert!(
        matches!(send().await, Err(BrokerError::Nacked)),
        "120 KiB > 100 KiB"
    );
    // Delivered but unsettled still holds its bytes; settled, it frees them.
    let mut consumer = broker
        .consume(&topology.jobs_queue(), "test", 10)
        .await
        .expect("consume");
    let delivery = next(&mut consumer).await;
    assert!(matches!(send().await, Err(BrokerError::Nacked)));
    delivery.ack().await.expect("ack");
    // The metrics-engine queue, which nothing consumes here, is full too: free it as well.
    let mut metrics = broker
        .consume(&topology.metrics_queue(), "test-metrics", 10)
        .await
        .expect("consume");
    next(&mut metrics).await.ack().await.expect("ack");
    send().await.expect("room again");
}

/// Embedded only: a durable broker loses nothing confirmed when its process dies: what was
/// not settled is delivered again (redelivered), in order; what was settled is not.
#[tokio::test]
async fn the_journaled_broker_delivers_every_unsettled_message_after_a_crash() {
    let (broker, dir) = journaled("crash").await;
    let connection = broker.connect().await.expect("connect");
    let topology = connection.topology().clone();
    for n in 1..=4 {
        publish(
            &*connection,
            &topology.jobs_exchange(),
            JOB_CREATED,
            format!("job-{n}").as_bytes(),
        )
        .await;
    }
    let mut consumer = connection
        .consume(&topology.jobs_queue(), "test", 10)
        .await
        .expect("consume");
    let first = next(&mut consumer).await;
    first.ack().await.expect("ack");
    let second = next(&mut consumer).await;
    assert_eq!(second.data, b"job-2");
    // A rejected one moves to the dead-letter queue, durably too.
    let third = next(&mut consumer).await;
    third.nack(false).await.expect("reject");
    // The process dies: nothing is closed, drained or settled. (The deletes of the acks are
    // not waited for; give the journal's writer its moment, as the next commit would.)
    tokio::time::sleep(Duration::from_millis(200)).await;
    std::mem::forget(second);
    std::mem::forget(consumer);
    std::mem::forget(connection);
    std::mem::forget(broker);

    let reopened = reopen(
        "crash",
        &dir,
        observatory_messaging::EmbeddedLimits::default(),
    )
    .await;
    let connection = reopened.connect().await.expect("connect");
    assert_eq!(ready(&*connection, &topology.jobs_queue()).await, 2);
    let mut consumer = connection
        .consume(&topology.jobs_queue(), "test", 10)
        .await
        .expect("consume");
    let again = next(&mut consumer).await;
    assert_eq!(again.data, b"job-2", "the unsettled one first");
    assert!(again.redelivered);
    let last = next(&mut consumer).await;
    assert_eq!(last.data, b"job-4");
    again.ack().await.expect("ack");
    last.ack().await.expect("ack");
    assert_eq!(ready(&*connection, &topology.dead_letter_queue()).await, 1);
    // job.created also went to the metrics engine's queue: all four wait there.
    assert_eq!(ready(&*connection, &topology.metrics_queue()).await, 4);
    connection.delete_queues().await.expect("cleanup");
    let _ = std::fs::remove_dir_all(dir);
}
