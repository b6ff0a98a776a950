//! The metrics engine against real RabbitMQ, Redis and a MongoDB wire-protocol server: each
//! test runs `run(..)` under its own broker prefix, Redis prefix and Mongo database.

use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use observatory_counters::{Counters, RedisCounters};
use observatory_event_log::{EventFilter, EventLog, MongoEventLog};
use observatory_messaging::{
    BrokerConnector, MessageBroker, MessageMeta, Publisher, REASON_HEADER, RabbitMq, Topology,
    next_delivery,
};
use observatory_metrics_engine::{MetricsEngineConfig, MetricsEngineError, run};
use observatory_runtime::shutdown::CancellationToken;
use observatory_test_support::{mongodb_url, rabbitmq_url, redis_url, unique_name};
use serde_json::Value;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// Upper bound of every wait in these tests.
const TIMEOUT: Duration = Duration::from_secs(60);
/// How often a condition is polled.
const POLL: Duration = Duration::from_millis(50);

const EXAMPLES: [&str; 5] = [
    include_str!("../../../schemas/events/job-created.examples.json"),
    include_str!("../../../schemas/events/job-started.examples.json"),
    include_str!("../../../schemas/events/job-completed.examples.json"),
    include_str!("../../../schemas/events/job-failed.examples.json"),
    include_str!("../../../schemas/events/job-dead-lettered.examples.json"),
];

/// Every valid instance of the typed event examples.
fn valid_examples() -> Vec<Value> {
    EXAMPLES
        .iter()
        .flat_map(|text| {
            let file: Value = serde_json::from_str(text).expect("an examples file is JSON");
            file["valid"]
                .as_array()
                .expect("examples have a valid list")
                .iter()
                .map(|example| example["instance"].clone())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `n` valid events (cycling through the examples), each with a fresh eventId.
fn fresh_events(n: usize) -> Vec<Value> {
    let examples = valid_examples();
    (0..n)
        .map(|i| {
            let mut event = examples[i % examples.len()].clone();
            event["eventId"] = Value::from(Uuid::new_v4().to_string());
            event
        })
        .collect()
}

/// One of each example, each with a fresh eventId, that occurred three hours ago: older
/// than the counters' deduplication window.
fn late_events() -> Vec<Value> {
    let hours_ago = (chrono::Utc::now() - chrono::Duration::hours(3)).to_rfc3339();
    let mut events = fresh_events(valid_examples().len());
    for event in &mut events {
        event["occurredAt"] = Value::from(hours_ago.clone());
    }
    events
}

fn event_id(event: &Value) -> Uuid {
    event["eventId"]
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok())
        .expect("an event with an eventId")
}

fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address")
}

/// Polls `condition` until it holds; panics with `what` after [`TIMEOUT`].
async fn wait_until<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if condition().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// One test's isolated world: config with unique prefixes, a broker connection for
/// publishing, and read access to both stores.
struct World {
    config: MetricsEngineConfig,
    topology: Topology,
    broker: Arc<dyn MessageBroker>,
    publisher: Publisher,
    event_log: MongoEventLog,
    counters: RedisCounters,
}

/// A running engine.
struct Engine {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), MetricsEngineError>>,
}

impl Engine {
    async fn stop(self) {
        self.shutdown.cancel();
        let result = tokio::time::timeout(TIMEOUT, self.task)
            .await
            .expect("the engine stops within the timeout")
            .expect("the engine task does not panic");
        assert!(result.is_ok(), "the engine stops cleanly: {result:?}");
    }
}

impl World {
    async fn new(configure: impl FnOnce(&mut MetricsEngineConfig)) -> Self {
        let name = unique_name();
        let mut config = MetricsEngineConfig::local();
        config.rabbitmq_url = rabbitmq_url();
        config.redis_url = redis_url();
        config.mongodb_url = mongodb_url();
        config.mongodb_database = name.clone();
        config.redis_prefix = name.clone();
        config.broker_prefix = name.clone();
        configure(&mut config);
        let topology = Topology::new(name.clone());
        let broker = RabbitMq::new(config.rabbitmq_url.clone(), topology.clone())
            .connect()
            .await
            .expect("RabbitMQ is reachable (run `cargo xtask test`, which starts it)");
        let publisher = broker
            .publisher(Duration::from_secs(10))
            .await
            .expect("a publisher");
        let event_log = MongoEventLog::connect(&mongodb_url(), &config.mongodb_database)
            .await
            .expect("the MongoDB stand-in is reachable");
        let counters = RedisCounters::connect(&config.redis_url, &config.redis_prefix)
            .await
            .expect("Redis is reachable");
        Self {
            config,
            topology,
            broker,
            publisher,
            event_log,
            counters,
        }
    }

    /// Starts `run` on a free port and waits until it is ready (consuming, stores reachable).
    async fn start(&self) -> Engine {
        let mut config = self.config.clone();
        let addr = free_addr();
        config.metrics_engine_addr = addr;
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(config, shutdown.clone()));
        wait_until("the engine is ready", || async move {
            matches!(http_get(addr, "/readyz").await, Some((200, _)))
        })
        .await;
        Engine {
            addr,
            shutdown,
            task,
        }
    }

    async fn publish_raw(&self, routing_key: &str, body: &[u8]) {
        self.publisher
            .publish(
                &self.topology.events_exchange(),
                routing_key,
                body,
                &MessageMeta::default(),
            )
            .await
            .expect("the broker confirms the publish");
    }

    /// Publishes every event (pipelined) with its eventType as routing key.
    async fn publish(&self, events: &[Value]) {
        let exchange = self.topology.events_exchange();
        let publishes = events.iter().map(|event| {
            let routing_key = event["eventType"].as_str().unwrap_or("job.unknown");
            let body = event.to_string();
            let meta = MessageMeta {
                message_id: Some(event_id(event).to_string()),
                correlation_id: event["correlationId"].as_str().map(String::from),
                headers: vec![],
            };
            let publisher = self.publisher.clone();
            let exchange = exchange.clone();
            async move {
                publisher
                    .publish(&exchange, routing_key, body.as_bytes(), &meta)
                    .await
            }
        });
        for result in futures_util::future::join_all(publishes).await {
            result.expect("the broker confirms the publish");
        }
    }

    /// The eventId of every stored event, as often as it is stored.
    async fn stored_ids(&self) -> Vec<Uuid> {
        let mut ids = Vec::new();
        let mut cursor = None;
        loop {
            let page = self
                .event_log
                .list_events(&EventFilter::default(), 500, cursor.as_ref())
                .await
                .expect("reading the event log");
            ids.extend(page.items.iter().map(|event| event.event_id.0));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return ids,
            }
        }
    }

    /// How many events the counters counted (each event type increments exactly one of these).
    async fn counted(&self) -> u64 {
        let totals = self
            .counters
            .overview(1, 1)
            .await
            .expect("reading the counters")
            .totals;
        totals.submitted + totals.started + totals.completed + totals.failed + totals.dead_lettered
    }

    /// Waits until exactly `expected` is stored and counted, each once.
    async fn wait_stored_and_counted(&self, expected: &[Value]) {
        let want: BTreeSet<Uuid> = expected.iter().map(event_id).collect();
        wait_until("every event is stored and counted", || async {
            self.stored_ids().await.len() >= want.len() && self.counted().await >= want.len() as u64
        })
        .await;
        self.assert_stored_and_counted_once(&want).await;
    }

    async fn assert_stored_and_counted_once(&self, want: &BTreeSet<Uuid>) {
        let stored = self.stored_ids().await;
        assert_eq!(
            stored.len(),
            want.len(),
            "each event is stored exactly once"
        );
        let stored: BTreeSet<Uuid> = stored.into_iter().collect();
        assert_eq!(&stored, want, "the stored events are the published ones");
        assert_eq!(
            self.counted().await,
            want.len() as u64,
            "each event is counted exactly once"
        );
    }
}

/// `GET path` over plain HTTP/1.1: (status, body), or `None` when nothing answers.
async fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let path = path.to_string();
    tokio::task::spawn_blocking(move || {
        let mut stream =
            std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let status = response.split(' ').nth(1)?.parse().ok()?;
        let body = response.split_once("\r\n\r\n")?.1.to_string();
        Some((status, body))
    })
    .await
    .ok()
    .flatten()
}

/// The value of the sample of `family` whose labels include every one of `labels`.
fn sample(metrics: &str, family: &str, labels: &[&str]) -> Option<f64> {
    metrics
        .lines()
        .filter(|line| line.starts_with(&format!("{family}{{")))
        .find(|line| labels.iter().all(|label| line.contains(label)))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

async fn scrape(engine: &Engine) -> String {
    match http_get(engine.addr, "/metrics").await {
        Some((200, body)) => body,
        other => panic!("/metrics answered {other:?}"),
    }
}

/// The reason header of every message in the dead-letter queue, by body, reading `n`.
async fn dead_letters(world: &World, n: usize) -> HashMap<String, String> {
    let mut consumer = world
        .broker
        .consume(&world.topology.dead_letter_queue(), "test-reader", 16)
        .await
        .expect("consuming the dead-letter queue");
    let never = CancellationToken::new();
    let mut found = HashMap::new();
    while found.len() < n {
        let delivery = tokio::time::timeout(TIMEOUT, next_delivery(&mut consumer, &never))
            .await
            .expect("a dead letter arrives in time")
            .expect("the consumer is open")
            .expect("a delivery");
        let reason = delivery
            .meta
            .header(REASON_HEADER)
            .unwrap_or_default()
            .to_owned();
        delivery.ack().await.expect("ack");
        found.insert(String::from_utf8_lossy(&delivery.data).into_owned(), reason);
    }
    found
}

#[tokio::test]
async fn every_event_is_stored_once_and_counted_once_even_when_redelivered() {
    let world = World::new(|_| {}).await;
    let engine = world.start().await;
    let events = fresh_events(valid_examples().len());

    world.publish(&events).await;
    world.wait_stored_and_counted(&events).await;
    let overview = world.counters.overview(1, 1).await.expect("overview");
    let of_type = |t: &str| events.iter().filter(|e| e["eventType"] == t).count() as u64;
    assert_eq!(overview.totals.submitted, of_type("job.created"));
    assert_eq!(overview.totals.started, of_type("job.started"));
    assert_eq!(overview.totals.completed, of_type("job.completed"));
    assert_eq!(overview.totals.failed, of_type("job.failed"));
    assert_eq!(overview.totals.dead_lettered, of_type("job.dead-lettered"));

    // The same events again, as a redelivery would bring them: wait until the engine has
    // handled them (its duplicate counters say so), then nothing has changed.
    world.publish(&events).await;
    let n = events.len() as f64;
    wait_until("the redelivered events are handled", || async {
        let metrics = scrape(&engine).await;
        let duplicates = |store: &str| {
            sample(
                &metrics,
                "observatory_metrics_engine_duplicates_total",
                &[&format!("store=\"{store}\"")],
            )
        };
        duplicates("event_log") == Some(n) && duplicates("counters") == Some(n)
    })
    .await;
    world
        .assert_stored_and_counted_once(&events.iter().map(event_id).collect())
        .await;
    engine.stop().await;
}

/// An event older than the counters' deduplication window may outlive its marker (markers
/// are bounded by the window); when it is redelivered then, the event log, which already has
/// it, keeps it from being counted twice.
#[tokio::test]
async fn a_late_redelivery_is_not_counted_again_after_its_marker_is_gone() {
    let world = World::new(|_| {}).await;
    let engine = world.start().await;
    let events = late_events();
    world.publish(&events).await;
    world.wait_stored_and_counted(&events).await;

    // Every marker gone, as once the window has passed.
    let client = redis::Client::open(redis_url()).expect("Redis URL");
    let mut redis = client
        .get_multiplexed_async_connection()
        .await
        .expect("Redis is reachable");
    let prefix = &world.config.redis_prefix;
    let mut markers: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:seen*"))
        .query_async(&mut redis)
        .await
        .expect("keys");
    assert!(!markers.is_empty(), "the late events were marked");
    markers.sort();
    redis::cmd("DEL")
        .arg(&markers)
        .query_async::<()>(&mut redis)
        .await
        .expect("forget the markers");

    world.publish(&events).await;
    let n = events.len() as f64;
    wait_until("the late redeliveries are handled", || async {
        let metrics = scrape(&engine).await;
        sample(
            &metrics,
            "observatory_metrics_engine_late_duplicates_total",
            &[],
        ) == Some(n)
    })
    .await;
    world
        .assert_stored_and_counted_once(&events.iter().map(event_id).collect())
        .await;
    engine.stop().await;
}

/// A rebuild replays the log without marking events older than the window, so the engine
/// stores such events only while the counters are intact: during a rebuild they wait, and
/// are then stored and counted once.
#[tokio::test]
async fn late_events_wait_for_a_rebuild_and_are_counted_once() {
    let world = World::new(|_| {}).await;
    let engine = world.start().await;
    // Let the engine's own first check settle the new counters, then rebuild by hand.
    wait_until("the counters are intact", || async {
        matches!(
            world.counters.state().await,
            Ok(observatory_counters::CountersState::Intact(_))
        )
    })
    .await;
    let rebuild = world
        .counters
        .begin_rebuild()
        .await
        .expect("begin a rebuild");

    let events = late_events();
    world.publish(&events).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        world.stored_ids().await.is_empty(),
        "late events wait while the counters are rebuilt"
    );

    assert!(
        world
            .counters
            .finish_rebuild(&rebuild)
            .await
            .expect("finish")
    );
    world.wait_stored_and_counted(&events).await;
    engine.stop().await;
}

#[tokio::test]
async fn invalid_messages_are_dead_lettered_with_a_reason_and_neither_stored_nor_counted() {
    let world = World::new(|_| {}).await;
    let engine = world.start().await;

    let malformed = "{this is not json".to_string();
    let mut unknown = fresh_events(1).remove(0);
    unknown["eventType"] = Value::from("job.paused");
    let unknown = unknown.to_string();
    let mut schema_invalid = fresh_events(1).remove(0);
    schema_invalid["payload"]["maxAttempts"] = Value::from(0);
    let schema_invalid_key = schema_invalid["eventType"]
        .as_str()
        .expect("eventType")
        .to_string();
    let schema_invalid = schema_invalid.to_string();
    world.publish_raw("job.created", malformed.as_bytes()).await;
    world.publish_raw("job.paused", unknown.as_bytes()).await;
    world
        .publish_raw(&schema_invalid_key, schema_invalid.as_bytes())
        .await;
    // A valid event after them: once it is stored, the invalid ones have been handled.
    let valid = fresh_events(1);
    world.publish(&valid).await;
    world.wait_stored_and_counted(&valid).await;

    let reasons = dead_letters(&world, 3).await;
    let reason_of = |body: &str| {
        reasons
            .get(body)
            .unwrap_or_else(|| panic!("{body} is not in the dead-letter queue: {reasons:?}"))
    };
    assert!(
        reason_of(&malformed).starts_with("malformed-json: "),
        "{reasons:?}"
    );
    assert!(
        reason_of(&unknown).starts_with("unknown-event-type: "),
        "{reasons:?}"
    );
    assert!(
        reason_of(&schema_invalid).starts_with("schema-violation: "),
        "{reasons:?}"
    );
    let metrics = scrape(&engine).await;
    for code in ["malformed-json", "unknown-event-type", "schema-violation"] {
        assert_eq!(
            sample(
                &metrics,
                "observatory_metrics_engine_dead_lettered_total",
                &[&format!("reason=\"{code}\"")]
            ),
            Some(1.0),
            "{code}"
        );
    }
    // Only the valid event is stored and counted (checked again after the dead letters).
    world
        .assert_stored_and_counted_once(&valid.iter().map(event_id).collect())
        .await;
    engine.stop().await;
}

/// Events valid by the schema (a job's input is an open object) that MongoDB refuses: each is
/// dead-lettered alone with its reason, and the events around it and after it are counted.
#[tokio::test]
async fn events_the_log_refuses_are_dead_lettered_and_the_rest_goes_on() {
    let world = World::new(|_| {}).await;
    let engine = world.start().await;
    let created = valid_examples()
        .into_iter()
        .find(|e| e["eventType"] == "job.created")
        .expect("a job.created example");
    let refused_with = |input: Value| {
        let mut event = created.clone();
        event["eventId"] = Value::from(Uuid::new_v4().to_string());
        event["payload"]["payload"] = input;
        event
    };
    // The stored document is level 1, `payload` 2, the job's input 3: 99 objects reach 101.
    let too_deep = (0..99).fold(
        serde_json::json!(1),
        |inner, _| serde_json::json!({"a": inner}),
    );
    let refused = [
        refused_with(serde_json::json!({"n": u64::MAX})),
        refused_with(too_deep),
        refused_with(serde_json::json!({"nul\u{0}key": 1})),
    ];
    let mut events = fresh_events(4);
    events.insert(1, refused[0].clone());
    events.insert(3, refused[1].clone());
    events.push(refused[2].clone());
    world.publish(&events).await;

    let reasons = dead_letters(&world, 3).await;
    for (event, says) in refused.iter().zip(["int64", "100 levels", "NUL"]) {
        let reason = reasons
            .get(&event.to_string())
            .unwrap_or_else(|| panic!("a refused event is not dead-lettered: {reasons:?}"));
        assert!(reason.starts_with("unstorable: "), "{reason}");
        assert!(reason.contains(says), "{reason}");
    }
    events.retain(|e| !refused.contains(e));
    world.wait_stored_and_counted(&events).await;
    // The next event is counted promptly: nothing is left blocking the queue.
    let next = fresh_events(1);
    world.publish(&next).await;
    events.extend(next);
    world.wait_stored_and_counted(&events).await;
    let metrics = scrape(&engine).await;
    assert_eq!(
        sample(
            &metrics,
            "observatory_metrics_engine_dead_lettered_total",
            &["reason=\"unstorable\""]
        ),
        Some(3.0)
    );
    engine.stop().await;
}

#[tokio::test]
async fn the_live_feed_carries_each_newly_counted_event() {
    let world = World::new(|_| {}).await;
    let engine = world.start().await;
    let mut feed = world.counters.subscribe().await.expect("subscribing");

    let events = fresh_events(12);
    world.publish(&events).await;
    let want: BTreeSet<Uuid> = events.iter().map(event_id).collect();
    let mut seen = BTreeSet::new();
    while seen.len() < want.len() {
        let event = tokio::time::timeout(TIMEOUT, feed.next())
            .await
            .expect("the feed delivers in time")
            .expect("the feed is open")
            .expect("an EventEnvelope");
        assert!(
            seen.insert(event.event_id.0),
            "an event appears on the feed twice"
        );
    }
    assert_eq!(seen, want);
    engine.stop().await;
}

#[tokio::test]
async fn a_batch_of_500_events_is_all_stored_and_counted() {
    let world = World::new(|_| {}).await;
    let engine = world.start().await;
    let events = fresh_events(500);
    world.publish(&events).await;
    world.wait_stored_and_counted(&events).await;

    let metrics = scrape(&engine).await;
    let consumed: f64 = [
        "job.created",
        "job.started",
        "job.completed",
        "job.failed",
        "job.dead-lettered",
    ]
    .iter()
    .filter_map(|t| {
        sample(
            &metrics,
            "observatory_metrics_engine_events_consumed_total",
            &[&format!("event_type=\"{t}\"")],
        )
    })
    .sum();
    assert_eq!(consumed, 500.0);
    let batches = sample(
        &metrics,
        "observatory_metrics_engine_batch_size_count",
        &["service=\"metrics-engine\""],
    )
    .expect("the batch size histogram");
    assert!(
        batches < 500.0,
        "500 events arrive in fewer than 500 batches ({batches})"
    );
    engine.stop().await;
}

#[tokio::test]
async fn stopping_the_engine_mid_run_loses_nothing_and_double_counts_nothing() {
    let world = World::new(|config| {
        config.batch_size = 8;
        config.prefetch = 32;
    })
    .await;
    let first = world.start().await;
    let events = fresh_events(1000);
    world.publish(&events).await;
    wait_until("the first engine has stored some events", || async {
        !world.stored_ids().await.is_empty()
    })
    .await;
    first.stop().await;
    let after_first = world.stored_ids().await.len();
    eprintln!(
        "the first engine stored {after_first} of {} events before it stopped",
        events.len()
    );

    // The rest (including what the first engine had prefetched but not handled) is
    // redelivered to the second engine; what the first one stored is not counted again.
    let second = world.start().await;
    world.wait_stored_and_counted(&events).await;
    second.stop().await;
}

#[tokio::test]
async fn operational_endpoints_expose_the_families_with_the_service_label() {
    let world = World::new(|_| {}).await;
    let engine = world.start().await;
    let events = fresh_events(3);
    world.publish(&events).await;
    world.wait_stored_and_counted(&events).await;

    let (status, health) = http_get(engine.addr, "/healthz").await.expect("/healthz");
    assert_eq!(status, 200);
    assert!(health.contains("\"metrics-engine\""), "{health}");
    let (status, ready) = http_get(engine.addr, "/readyz").await.expect("/readyz");
    assert_eq!(status, 200, "{ready}");
    for dependency in ["rabbitmq", "redis", "mongodb"] {
        assert!(ready.contains(&format!("\"{dependency}\"")), "{ready}");
    }

    let metrics = scrape(&engine).await;
    let service = "service=\"metrics-engine\"";
    for family in [
        "observatory_metrics_engine_events_consumed_total",
        "observatory_metrics_engine_duplicates_total",
        "observatory_metrics_engine_dead_lettered_total",
        "observatory_metrics_engine_store_failures_total",
        "observatory_metrics_engine_batch_size_count",
        "observatory_metrics_engine_store_write_duration_seconds_count",
        "observatory_metrics_engine_event_lag_seconds_count",
        "observatory_metrics_engine_queue_depth",
    ] {
        assert!(
            sample(&metrics, family, &[service]).is_some(),
            "{family} with the service label is missing from\n{metrics}"
        );
    }
    for line in metrics.lines().filter(|l| l.starts_with("observatory_")) {
        assert!(
            line.contains(service),
            "a sample without the service label: {line}"
        );
    }
    let stores_written = sample(
        &metrics,
        "observatory_metrics_engine_store_write_duration_seconds_count",
        &["store=\"event_log\""],
    )
    .expect("event log writes");
    assert!(stores_written >= 1.0);
    engine.stop().await;
}

#[tokio::test]
async fn readiness_is_refused_while_a_dependency_is_unreachable() {
    let world = World::new(|config| {
        // Nothing listens here: the engine keeps waiting for "MongoDB".
        config.mongodb_url = format!(
            "mongodb://{}/?directConnection=true&serverSelectionTimeoutMS=200",
            free_addr()
        );
    })
    .await;
    let mut config = world.config.clone();
    let addr = free_addr();
    config.metrics_engine_addr = addr;
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run(config, shutdown.clone()));
    wait_until("the engine answers /healthz", || async {
        matches!(http_get(addr, "/healthz").await, Some((200, _)))
    })
    .await;
    let (status, body) = http_get(addr, "/readyz").await.expect("/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("mongodb"), "{body}");
    let engine = Engine {
        addr,
        shutdown,
        task,
    };
    engine.stop().await;
}
