//! The outbox relay: claims a batch of the events the job store wrote to the outbox (so that
//! relays of other processors take other batches), publishes them with confirms, and deletes
//! only what the broker confirmed; what failed is released for the next round. A crash
//! between publish and delete publishes an event again once its claim runs out; consumers
//! deduplicate on `eventId`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use observatory_job_store::{JobStore, OutboxEvent};
use observatory_messaging::{MessageMeta, Publisher, Topology};
use observatory_runtime::backoff::Backoff;
use observatory_runtime::shutdown::CancellationToken;
use serde_json::Value;

use crate::broker::BrokerSlot;
use crate::metrics::ProcessorMetrics;

/// Most events published per round (all in flight at once on one channel).
const BATCH: u32 = 256;
/// Pause when the outbox is empty.
const IDLE_PAUSE: Duration = Duration::from_millis(25);
/// How often the backlog gauge is refreshed.
const BACKLOG_EVERY: Duration = Duration::from_secs(1);
/// On shutdown, how long the relay keeps publishing what is left.
const FINAL_FLUSH: Duration = Duration::from_secs(5);
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claimed batch is this relay's: longer than a round with its confirms takes
/// (the confirm timeout), and the longest a dead relay's batch waits to be taken over.
const CLAIM: Duration = Duration::from_secs(12);

pub(crate) struct OutboxRelay {
    pub store: Arc<dyn JobStore>,
    pub broker: BrokerSlot,
    pub topology: Topology,
    pub metrics: ProcessorMetrics,
}

/// What one round achieved.
enum Round {
    /// Published and deleted this many events (fewer than a batch: the outbox is drained).
    Published(usize),
    /// Could not publish (no broker, or a publish failed).
    Stalled,
}

impl OutboxRelay {
    /// Relays until `stop` fires, then flushes what is left for a few seconds.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut publisher: Option<Publisher> = None;
        let mut failures = fresh_backoff();
        let mut backlog_refreshed: Option<Instant> = None;
        loop {
            if backlog_refreshed.is_none_or(|at| at.elapsed() >= BACKLOG_EVERY) {
                self.refresh_backlog().await;
                backlog_refreshed = Some(Instant::now());
            }
            let pause = match self.round(&mut publisher).await {
                Round::Published(n) if n >= BATCH as usize => Duration::ZERO,
                Round::Published(_) => {
                    failures = fresh_backoff();
                    IDLE_PAUSE
                }
                Round::Stalled => failures.next_delay(),
            };
            if pause.is_zero() && !stop.is_cancelled() {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.cancelled() => break,
            }
        }
        // Publish the events of the attempts that finished during shutdown.
        let deadline = Instant::now() + FINAL_FLUSH;
        while Instant::now() < deadline {
            match self.round(&mut publisher).await {
                Round::Published(n) if n < BATCH as usize => break,
                Round::Published(_) => {}
                Round::Stalled => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        self.refresh_backlog().await;
    }

    async fn refresh_backlog(&self) {
        match self.store.outbox_backlog().await {
            Ok(n) => self.metrics.outbox_backlog.set(n),
            Err(error) => tracing::debug!(%error, "cannot read the outbox backlog"),
        }
    }

    async fn round(&self, publisher: &mut Option<Publisher>) -> Round {
        let events = match self.store.claim_outbox(BATCH, CLAIM).await {
            Ok(events) => events,
            Err(error) => {
                tracing::warn!(%error, "cannot read the outbox; PostgreSQL unavailable?");
                return Round::Stalled;
            }
        };
        if events.is_empty() {
            return Round::Published(0);
        }
        let Some(channel) = self.publisher(publisher).await else {
            self.release(&events.iter().map(|e| e.id).collect::<Vec<_>>())
                .await;
            return Round::Stalled;
        };
        let exchange = self.topology.events_exchange();
        let publishes = events.iter().map(|event| {
            let channel = channel.clone();
            let exchange = exchange.as_str();
            async move {
                let body = serde_json::to_vec(&event.body);
                let result = match body {
                    Ok(body) => channel
                        .publish(exchange, &event.routing_key, &body, &meta(event))
                        .await
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(format!("serializing: {e}")),
                };
                (event.id, event.event_id, result)
            }
        });
        let results = join_all(publishes).await;
        let mut confirmed = Vec::with_capacity(results.len());
        let mut failed = Vec::new();
        for (id, event_id, result) in results {
            match result {
                Ok(()) => confirmed.push(id),
                Err(error) => {
                    failed.push(id);
                    tracing::warn!(%event_id, error, "publishing an event failed; it stays in the outbox");
                }
            }
        }
        self.release(&failed).await;
        if !confirmed.is_empty()
            && let Err(error) = self.store.delete_outbox(&confirmed).await
        {
            // They are published; deleting later republishes them, which consumers absorb.
            tracing::warn!(%error, "cannot delete published events from the outbox");
            return Round::Stalled;
        }
        if !failed.is_empty() {
            if !channel.is_open() {
                *publisher = None;
            }
            return Round::Stalled;
        }
        tracing::debug!(published = confirmed.len(), "relayed outbox events");
        Round::Published(confirmed.len())
    }

    /// Gives claimed events back for the next round (a failed release only delays them
    /// until the claim runs out).
    async fn release(&self, ids: &[i64]) {
        if !ids.is_empty()
            && let Err(error) = self.store.release_outbox(ids).await
        {
            tracing::debug!(%error, "cannot release outbox events; their claim will run out");
        }
    }

    /// The current publisher, opening one on the current broker connection when needed.
    async fn publisher(&self, current: &mut Option<Publisher>) -> Option<Publisher> {
        if let Some(p) = current.as_ref().filter(|p| p.is_open()) {
            return Some(p.clone());
        }
        *current = None;
        let broker = self.broker.get()?;
        match broker.publisher(CONFIRM_TIMEOUT).await {
            Ok(p) => {
                *current = Some(p.clone());
                Some(p)
            }
            Err(error) => {
                tracing::warn!(%error, "cannot open a publisher for the outbox relay");
                None
            }
        }
    }
}

fn fresh_backoff() -> Backoff {
    Backoff::new(Duration::from_millis(100), Duration::from_secs(5))
}

fn meta(event: &OutboxEvent) -> MessageMeta {
    MessageMeta {
        message_id: Some(event.event_id.to_string()),
        correlation_id: event
            .body
            .get("correlationId")
            .and_then(Value::as_str)
            .map(str::to_owned),
        headers: Vec::new(),
    }
}
