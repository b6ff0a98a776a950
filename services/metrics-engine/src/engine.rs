//! The consumer: connections (with retries), batches, dead letters, stores, acknowledgements.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use chrono::Utc;
use futures_util::future::{BoxFuture, join_all};
use observatory_counters::{Counters, CountersError, CountersState, IntactMark, Recording};
use observatory_event_log::{EventLog, EventLogError, RefusedEvent};
use observatory_messaging::{
    BrokerError, Delivery, MessageBroker, MessageMeta, Publisher, REASON_HEADER, Topology,
    connect_with_retry, next_delivery,
};
use observatory_runtime::backoff::Backoff;
use observatory_runtime::http::ReadinessCheck;
use observatory_runtime::shutdown::CancellationToken;
use tokio::time::Instant;

use crate::contracts::event_envelope::EventEnvelope;
use crate::metrics::{COUNTERS, EVENT_LOG, EngineMetrics};
use crate::validate::{Rejection, Validators};
use crate::{MetricsEngineBackends, MetricsEngineConfig};

/// How long a dead-letter publish may wait for the broker's confirm.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the queue-depth gauge is refreshed.
const DEPTH_INTERVAL: Duration = Duration::from_secs(5);

/// What the readiness checks look at; filled in as the connections come up.
#[derive(Default)]
pub(crate) struct Shared {
    /// The broker connection, while the engine is consuming on it.
    broker: RwLock<Option<Arc<dyn MessageBroker>>>,
    counters: OnceLock<Arc<dyn Counters>>,
    event_log: OnceLock<Arc<dyn EventLog>>,
}

impl Shared {
    fn set_broker(&self, broker: Option<Arc<dyn MessageBroker>>) {
        *self.broker.write().unwrap_or_else(|p| p.into_inner()) = broker;
    }

    fn broker(&self) -> Option<Arc<dyn MessageBroker>> {
        self.broker
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[derive(Clone, Copy)]
enum Which {
    Broker,
    Counters,
    EventLog,
}

/// One dependency in `/readyz`, named by the adapter that serves it (e.g. `rabbitmq`).
pub(crate) struct DependencyCheck {
    name: &'static str,
    which: Which,
    shared: Arc<Shared>,
}

impl DependencyCheck {
    pub(crate) fn all(shared: &Arc<Shared>, backends: &MetricsEngineBackends) -> [Self; 3] {
        let check = |name, which| Self {
            name,
            which,
            shared: shared.clone(),
        };
        [
            check(backends.broker.kind(), Which::Broker),
            check(backends.counters.kind, Which::Counters),
            check(backends.event_log.kind, Which::EventLog),
        ]
    }
}

impl ReadinessCheck for DependencyCheck {
    fn name(&self) -> &'static str {
        self.name
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let name = self.name;
            match self.which {
                Which::Broker => match self.shared.broker() {
                    Some(broker) if broker.is_connected() => Ok(()),
                    Some(_) => Err(format!("the connection to the broker ({name}) is lost")),
                    None => Err(format!(
                        "not consuming from the broker ({name}); connecting"
                    )),
                },
                Which::Counters => match self.shared.counters.get() {
                    Some(counters) => counters.ping().await.map_err(|e| e.to_string()),
                    None => Err(format!("not connected to the counters ({name}) yet")),
                },
                Which::EventLog => match self.shared.event_log.get() {
                    Some(log) => log.ping().await.map_err(|e| e.to_string()),
                    None => Err(format!("not connected to the event log ({name}) yet")),
                },
            }
        })
    }
}

/// Connects to the stores and consumes until `shutdown`, reconnecting to the broker when the
/// connection is lost.
pub(crate) async fn consume(
    config: MetricsEngineConfig,
    backends: MetricsEngineBackends,
    shared: Arc<Shared>,
    validators: Validators,
    metrics: EngineMetrics,
    shutdown: CancellationToken,
) {
    let (counters, event_log) = tokio::join!(
        backends.counters.connect_with_retry(&shutdown),
        backends.event_log.connect_with_retry(&shutdown),
    );
    let (Some(counters), Some(event_log)) = (counters, event_log) else {
        return;
    };
    let _ = shared.counters.set(counters.clone());
    let _ = shared.event_log.set(event_log.clone());
    // Counters lost while the log kept everything (a Redis restart): rebuilt now and whenever
    // the store loses them again, beside the consumption (both are idempotent).
    tokio::spawn({
        let (event_log, counters, shutdown) =
            (event_log.clone(), counters.clone(), shutdown.clone());
        let rebuilds = metrics.rebuilds.clone();
        async move {
            crate::reconcile::watch_counters(
                event_log.as_ref(),
                counters.as_ref(),
                &shutdown,
                |_| {
                    rebuilds.inc();
                },
            )
            .await;
        }
    });

    let topology = backends.broker.topology().clone();
    let mut engine = Engine {
        validators,
        metrics,
        counters,
        event_log,
        batch_size: config.batch_size,
        batch_wait: Duration::from_millis(config.batch_wait_ms),
        dead_letter_exchange: topology.dead_letter_exchange(),
        store_backoff: Backoff::default(),
    };
    let mut reconnect = Backoff::default();
    loop {
        let Some(broker) = connect_with_retry(backends.broker.as_ref(), &shutdown).await else {
            return;
        };
        let ended = engine
            .consume_connection(&broker, &topology, config.prefetch, &shared, &shutdown)
            .await;
        shared.set_broker(None);
        // Closing returns every unacknowledged delivery to the queue.
        broker.close().await;
        if ended == Ended::Shutdown || shutdown.is_cancelled() {
            tracing::info!("consumer stopped; unhandled deliveries return to the queue");
            return;
        }
        let delay = reconnect.next_delay();
        tracing::warn!(retry_in = ?delay, "lost the broker consumer; reconnecting");
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// Events this close to the deduplication window are treated as late (their batch waits for
/// intact counters), so that one turning late while its batch is stored is still guarded.
const LATE_MARGIN: chrono::Duration = chrono::Duration::minutes(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Shutdown,
    Lost,
}

struct Engine {
    validators: Validators,
    metrics: EngineMetrics,
    counters: Arc<dyn Counters>,
    event_log: Arc<dyn EventLog>,
    batch_size: usize,
    batch_wait: Duration,
    dead_letter_exchange: String,
    store_backoff: Backoff,
}

#[derive(Debug, thiserror::Error)]
enum StoreError {
    #[error("event log: {0}")]
    EventLog(#[from] EventLogError),
    #[error("counters: {0}")]
    Counters(#[from] CountersError),
}

impl Engine {
    /// Consumes on one broker connection until shutdown or until the connection fails.
    async fn consume_connection(
        &mut self,
        broker: &Arc<dyn MessageBroker>,
        topology: &Topology,
        prefetch: u16,
        shared: &Shared,
        shutdown: &CancellationToken,
    ) -> Ended {
        let publisher = match broker.publisher(CONFIRM_TIMEOUT).await {
            Ok(publisher) => publisher,
            Err(error) => {
                tracing::warn!(%error, "opening the dead-letter publisher");
                return Ended::Lost;
            }
        };
        let tag = format!("metrics-engine-{}", uuid::Uuid::new_v4().simple());
        let queue = topology.metrics_queue();
        let mut consumer = match broker.consume(&queue, &tag, prefetch).await {
            Ok(consumer) => consumer,
            Err(error) => {
                tracing::warn!(%error, %queue, "starting the consumer");
                return Ended::Lost;
            }
        };
        tracing::info!(%queue, prefetch, batch_size = self.batch_size, "consuming job events");
        shared.set_broker(Some(broker.clone()));

        let depth_stop = shutdown.child_token();
        let depth = tokio::spawn(refresh_queue_depth(
            broker.clone(),
            queue,
            self.metrics.clone(),
            depth_stop.clone(),
        ));
        let ended_by = |shutdown: &CancellationToken| {
            if shutdown.is_cancelled() {
                Ended::Shutdown
            } else {
                Ended::Lost
            }
        };
        let ended = loop {
            // A batch: wait for the first delivery, then at most `batch_wait` for more, up to
            // `batch_size`. When the consumer ends meanwhile, the batch in hand is still
            // handled (stored and acked) before stopping.
            let first = match next_delivery(&mut consumer, shutdown).await {
                Some(Ok(delivery)) => delivery,
                Some(Err(error)) => {
                    tracing::warn!(%error, "the consumer failed");
                    break Ended::Lost;
                }
                None => break ended_by(shutdown),
            };
            let deadline = Instant::now() + self.batch_wait;
            let mut batch = vec![first];
            let mut ended = None;
            while batch.len() < self.batch_size {
                match tokio::time::timeout_at(deadline, next_delivery(&mut consumer, shutdown))
                    .await
                {
                    Err(_waited_enough) => break,
                    Ok(Some(Ok(delivery))) => batch.push(delivery),
                    Ok(Some(Err(error))) => {
                        tracing::warn!(%error, "the consumer failed");
                        ended = Some(Ended::Lost);
                        break;
                    }
                    Ok(None) => {
                        ended = Some(ended_by(shutdown));
                        break;
                    }
                }
            }
            if !batch.is_empty()
                && let Err(error) = self.handle(batch, &publisher, shutdown).await
            {
                tracing::warn!(%error, "acknowledging a batch failed; the broker redelivers it");
                break Ended::Lost;
            }
            if let Some(ended) = ended {
                break ended;
            }
        };
        depth_stop.cancel();
        let _ = depth.await;
        ended
    }

    /// Dead-letters the invalid deliveries, stores the valid ones and acknowledges them; on a
    /// store failure, backs off and requeues them. `Err` only when the broker fails (the
    /// unacknowledged deliveries are then redelivered).
    async fn handle(
        &mut self,
        batch: Vec<Delivery>,
        publisher: &Publisher,
        shutdown: &CancellationToken,
    ) -> Result<(), BrokerError> {
        self.metrics.batch_size.observe(batch.len() as f64);
        let mut valid = Vec::with_capacity(batch.len());
        let mut invalid = Vec::new();
        for delivery in batch {
            match self.validators.check(&delivery.data) {
                Ok(event) => valid.push((delivery, event)),
                Err(rejection) => invalid.push((delivery, rejection)),
            }
        }
        let dead_letters = invalid
            .iter()
            .map(|(delivery, rejection)| self.dead_letter(delivery, rejection, publisher));
        for result in join_all(dead_letters).await {
            result?;
        }

        if valid.is_empty() {
            return Ok(());
        }
        let events: Vec<EventEnvelope> = valid.iter().map(|(_, event)| event.clone()).collect();
        let stored = self.store(&events, shutdown).await;
        // An event the log will never store would block the queue forever: it is dead-lettered
        // (and acked) alone, and the rest of the batch goes on.
        let refused = match &stored {
            Ok(refused) => refused.as_slice(),
            Err(_) => &[],
        };
        for refusal in refused {
            if let Some((delivery, _)) = valid.get(refusal.index) {
                let rejection = Rejection::Unstorable(refusal.reason.clone());
                self.dead_letter(delivery, &rejection, publisher).await?;
            }
        }
        let is_refused = |i: &usize| refused.binary_search_by_key(i, |r| r.index).is_ok();
        let Some((last, _)) = valid
            .iter()
            .enumerate()
            .rev()
            .find(|(i, _)| !is_refused(i))
            .map(|(_, delivery)| delivery)
        else {
            return Ok(());
        };
        let kept: Vec<EventEnvelope> = events
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !is_refused(i))
            .map(|(_, event)| event)
            .collect();
        self.settle(stored.map(drop), last, &kept, shutdown).await
    }

    /// Acks the batch ending with `last` once stored, or nacks it for redelivery after a pause.
    async fn settle(
        &mut self,
        stored: Result<(), StoreError>,
        last: &Delivery,
        events: &[EventEnvelope],
        shutdown: &CancellationToken,
    ) -> Result<(), BrokerError> {
        match stored {
            Ok(()) => {
                self.store_backoff = Backoff::default();
                last.ack_up_to().await?;
                let now = Utc::now();
                for event in events {
                    self.metrics
                        .consumed
                        .with_label_values(&[event.event_type.to_string().as_str()])
                        .inc();
                    let lag = (now - event.occurred_at).num_milliseconds().max(0) as f64 / 1000.0;
                    self.metrics.event_lag.observe(lag);
                    tracing::debug!(
                        correlation_id = %event.correlation_id.as_str(),
                        event_id = %event.event_id.0,
                        event_type = %event.event_type,
                        "event stored and counted"
                    );
                }
                Ok(())
            }
            Err(error) => {
                let delay = self.store_backoff.next_delay();
                let correlation_ids: Vec<&str> = events
                    .iter()
                    .take(5)
                    .map(|e| e.correlation_id.as_str())
                    .collect();
                tracing::warn!(
                    %error,
                    events = events.len(),
                    ?correlation_ids,
                    retry_in = ?delay,
                    "storing a batch failed; requeueing it after a pause"
                );
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    // On shutdown the connection closes and the broker requeues the batch.
                    () = shutdown.cancelled() => return Ok(()),
                }
                last.nack_up_to(true).await
            }
        }
    }

    /// Both stores; the event log first, so that a counted event is always in the log.
    ///
    /// An event older than the counters' deduplication window may have lost its marker, so
    /// the log decides: it is counted only when this append stored it. That makes the
    /// append's answer precious, so a failed count is retried here (not by a redelivery,
    /// which would find the event stored) until it succeeds or the engine stops. And a
    /// rebuild of the counters replays the log without marking such events, so a batch with
    /// one is appended only while the counters are intact, and counted only if no rebuild
    /// began since (one that did replays it).
    ///
    /// Returns the events the log refuses for good, which are neither stored nor counted.
    async fn store(
        &self,
        events: &[EventEnvelope],
        shutdown: &CancellationToken,
    ) -> Result<Vec<RefusedEvent>, StoreError> {
        let config = self.counters.config();
        let nearly_late = Utc::now() + LATE_MARGIN;
        let guard = if events
            .iter()
            .any(|e| config.is_late(e.occurred_at, nearly_late))
        {
            Some(self.intact_mark(shutdown).await?)
        } else {
            None
        };

        let started = Instant::now();
        let appended = self.event_log.append_batch(events).await;
        self.observe_write(EVENT_LOG, started, appended.is_ok());
        let appended = appended?;
        let refused: Vec<usize> = appended.refused.iter().map(|r| r.index).collect();

        let mut backoff = Backoff::default();
        let (recorded, stored_before) = loop {
            // Decided afresh on every try: a retried event may have become late meanwhile.
            let now = Utc::now();
            let stored_before: Vec<usize> = appended
                .already_stored
                .iter()
                .copied()
                .filter(|&i| {
                    events
                        .get(i)
                        .is_some_and(|e| config.is_late(e.occurred_at, now))
                })
                .collect();
            let to_count: Cow<'_, [EventEnvelope]> =
                if stored_before.is_empty() && refused.is_empty() {
                    Cow::Borrowed(events)
                } else {
                    Cow::Owned(
                        events
                            .iter()
                            .enumerate()
                            .filter(|(i, _)| {
                                stored_before.binary_search(i).is_err()
                                    && refused.binary_search(i).is_err()
                            })
                            .map(|(_, e)| e.clone())
                            .collect(),
                    )
                };
            let recording = guard
                .as_ref()
                .map_or(Recording::Live, Recording::LiveGuarded);
            let started = Instant::now();
            let recorded = self.counters.record_at(&to_count, recording, now).await;
            self.observe_write(COUNTERS, started, recorded.is_ok());
            match recorded {
                Ok(recorded) => break (recorded, stored_before),
                Err(error) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(%error, events = to_count.len(), retry_in = ?delay, "counting a stored batch failed; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = shutdown.cancelled() => return Err(error.into()),
                    }
                }
            }
        };
        self.metrics
            .late_duplicates
            .inc_by(stored_before.len() as u64);

        self.metrics
            .duplicates
            .with_label_values(&[EVENT_LOG])
            .inc_by(appended.duplicates as u64);
        self.metrics
            .duplicates
            .with_label_values(&[COUNTERS])
            .inc_by((recorded.duplicates + stored_before.len()) as u64);
        tracing::info!(
            events = events.len(),
            stored = appended.inserted,
            counted = recorded.counted,
            duplicates = (recorded.duplicates + stored_before.len()).max(appended.duplicates),
            refused = refused.len(),
            "batch stored"
        );
        Ok(appended.refused)
    }

    /// The counters' intact mark, waiting while they are rebuilt (or lost, until this or
    /// another engine rebuilt them).
    async fn intact_mark(&self, shutdown: &CancellationToken) -> Result<IntactMark, StoreError> {
        let mut waited = false;
        loop {
            if let CountersState::Intact(mark) = self.counters.state().await? {
                return Ok(mark);
            }
            if !waited {
                tracing::info!("late events wait until the counters' rebuild is over");
                waited = true;
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
                () = shutdown.cancelled() => return Err(CountersError::Cancelled.into()),
            }
        }
    }

    fn observe_write(&self, store: &str, started: Instant, ok: bool) {
        self.metrics
            .store_write_duration
            .with_label_values(&[store])
            .observe(started.elapsed().as_secs_f64());
        if !ok {
            self.metrics
                .store_failures
                .with_label_values(&[store])
                .inc();
        }
    }

    /// Publishes the message unchanged to the dead-letter exchange with the reason, then acks
    /// it. If the publish fails, the delivery is left for the broker to redeliver.
    async fn dead_letter(
        &self,
        delivery: &Delivery,
        rejection: &Rejection,
        publisher: &Publisher,
    ) -> Result<(), BrokerError> {
        let reason = rejection.reason();
        let correlation_id = delivery
            .meta
            .correlation_id
            .clone()
            .or_else(|| correlation_id_in(&delivery.data));
        let meta = MessageMeta {
            message_id: delivery.meta.message_id.clone(),
            correlation_id: correlation_id.clone(),
            headers: vec![(REASON_HEADER.to_string(), reason.clone())],
        };
        publisher
            .publish(
                &self.dead_letter_exchange,
                delivery.routing_key.as_str(),
                &delivery.data,
                &meta,
            )
            .await?;
        delivery.ack().await?;
        self.metrics
            .dead_lettered
            .with_label_values(&[rejection.code()])
            .inc();
        tracing::warn!(
            correlation_id = correlation_id.as_deref().unwrap_or("-"),
            routing_key = %delivery.routing_key,
            %reason,
            "dead-lettered a message that is not a valid job event"
        );
        Ok(())
    }
}

/// The correlation id of a body that is JSON with a `correlationId` string, for logs.
fn correlation_id_in(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value
        .get("correlationId")?
        .as_str()
        .map(|s| s.chars().take(128).collect())
}

/// Keeps the queue-depth gauge current until `stop`.
async fn refresh_queue_depth(
    broker: Arc<dyn MessageBroker>,
    queue: String,
    metrics: EngineMetrics,
    stop: CancellationToken,
) {
    loop {
        match broker.queue_depth(&queue).await {
            Ok((ready, _consumers)) => metrics.queue_depth.set(i64::from(ready)),
            Err(error) => tracing::debug!(%error, "reading the queue depth"),
        }
        tokio::select! {
            () = tokio::time::sleep(DEPTH_INTERVAL) => {}
            () = stop.cancelled() => return,
        }
    }
}
