//! The in-process broker: the same topology, routing and settlement semantics as the RabbitMQ
//! adapter, in memory, for `observatory up` without a RabbitMQ server.
//!
//! A publish is confirmed once the message is in every bound queue. Each queue is a FIFO;
//! a consumer holds at most `prefetch` unsettled deliveries; a nack with requeue, or a
//! consumer whose connection closes (or that is dropped) with deliveries unsettled, puts
//! them back at the head of the queue marked `redelivered`; a nack without requeue routes
//! the message to the dead-letter exchange. Every connection (one per role) is its own
//! handle on the one shared broker, so closing one role's connection does not disturb the
//! others.
//!
//! **Durability.** [`EmbeddedBroker::open`] keeps a journal (a SQLite file, see [`journal`]):
//! a publish is confirmed only once every copy is committed there, and a copy is forgotten
//! when it is settled, so after a crash the reopened broker delivers again everything that
//! was not settled (marked `redelivered`). [`EmbeddedBroker::new`] keeps messages in memory
//! only: they are gone when the process ends, and `observatory up` says so.
//!
//! **Bounded memory.** A queue holds at most [`Limits::max_queue_length`] messages and
//! [`Limits::max_queue_bytes`] bytes of bodies (ready or delivered but unsettled); a publish
//! beyond either is refused ([`BrokerError::Nacked`]), which the gateway turns into 503 with
//! `Retry-After` — back-pressure instead of unbounded memory. The dead-letter queue, which
//! nothing consumes under `observatory up`, drops its oldest messages instead (the job store
//! keeps every dead letter).

mod journal;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use async_trait::async_trait;
use observatory_runtime::shutdown::CancellationToken;
use tokio::sync::Notify;

use observatory_sqlite::Location;

use self::journal::{Journal, JournalRow};
use crate::topology::{Binding, ExchangeKind};
use crate::{
    Acker, BrokerConnector, BrokerError, Delivery, MessageBroker, MessageMeta, MessagePublisher,
    Publisher, Subscription, Topology,
};

/// How much one queue may hold before publishes are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Messages (ready, or delivered and not settled).
    pub max_queue_length: usize,
    /// Bytes of message bodies (ready, or delivered and not settled).
    pub max_queue_bytes: usize,
}

impl Default for Limits {
    /// 200,000 messages or 128 MiB per queue, whichever comes first.
    fn default() -> Self {
        Self {
            max_queue_length: 200_000,
            max_queue_bytes: 128 << 20,
        }
    }
}

/// The broker itself; [`BrokerConnector::connect`] opens a connection to it. Cheap to clone.
#[derive(Clone)]
pub struct EmbeddedBroker {
    inner: Arc<Inner>,
}

struct Inner {
    topology: Topology,
    /// The topology's exchanges and bindings, computed once: routing runs on every publish.
    exchanges: Vec<(String, ExchangeKind)>,
    bindings: Vec<Binding>,
    limits: Limits,
    /// Where messages are kept until settled, when the broker is durable.
    journal: Option<Journal>,
    queues: Mutex<HashMap<String, Queue>>,
    consumers: Mutex<Vec<Weak<ConsumerState>>>,
}

struct Queue {
    ready: VecDeque<Message>,
    /// Messages held (ready and unsettled deliveries), and their bodies' bytes.
    held: usize,
    bytes: usize,
    /// When full: refuse the publish (consumer queues), or drop the oldest message (the
    /// dead-letter queue, a sink nothing consumes in `observatory up`; the job store keeps
    /// every dead letter).
    drop_oldest_when_full: bool,
    consumers: u32,
    /// Woken on every arrival and every settlement (a settlement frees a prefetch slot).
    notify: Arc<Notify>,
    dead_letter_exchange: Option<String>,
}

#[derive(Clone)]
struct Message {
    data: Vec<u8>,
    exchange: String,
    routing_key: String,
    meta: MessageMeta,
    redelivered: bool,
    /// Its row in the journal, when the broker is durable.
    journal_id: Option<i64>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave a queue half-updated in a way that
    // matters more than stopping would; keep serving.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl EmbeddedBroker {
    /// A broker in memory only, with the default limits.
    pub fn new(topology: Topology) -> Self {
        Self::with_limits(topology, Limits::default())
    }

    /// A broker in memory only.
    pub fn with_limits(topology: Topology, limits: Limits) -> Self {
        Self::build(topology, limits, None)
    }

    /// A durable broker journaling to `location` (a file under `--data-dir`): it starts with
    /// the messages a previous process left unsettled there, each marked redelivered.
    pub async fn open(
        topology: Topology,
        location: &Location,
        limits: Limits,
    ) -> Result<Self, BrokerError> {
        let (journal, stored) = Journal::open(location).await?;
        let broker = Self::build(topology, limits, Some(journal.clone()));
        let mut foreign = Vec::new();
        {
            let mut queues = lock(&broker.inner.queues);
            for (id, row) in stored {
                let Some(queue) = queues.get_mut(&row.queue) else {
                    // A queue of another topology (another prefix): not this broker's.
                    foreign.push(id);
                    continue;
                };
                queue.push(Message {
                    data: row.body,
                    exchange: row.exchange,
                    routing_key: row.routing_key,
                    meta: row.meta,
                    redelivered: true,
                    journal_id: Some(id),
                });
            }
        }
        if !foreign.is_empty() {
            tracing::warn!(
                messages = foreign.len(),
                "the broker journal held messages of queues this topology does not have; dropping them"
            );
            journal.delete(foreign);
        }
        let held = broker.unsettled();
        if held > 0 {
            tracing::info!(messages = held, journal = %location, "the embedded broker resumes with the messages left unsettled");
        }
        Ok(broker)
    }

    fn build(topology: Topology, limits: Limits, journal: Option<Journal>) -> Self {
        let dead_lettering = topology.dead_lettering_queues();
        let queues = topology
            .queues()
            .into_iter()
            .map(|name| {
                let queue = Queue {
                    ready: VecDeque::new(),
                    held: 0,
                    bytes: 0,
                    drop_oldest_when_full: name == topology.dead_letter_queue(),
                    consumers: 0,
                    notify: Arc::new(Notify::new()),
                    dead_letter_exchange: dead_lettering
                        .contains(&name)
                        .then(|| topology.dead_letter_exchange()),
                };
                (name, queue)
            })
            .collect();
        Self {
            inner: Arc::new(Inner {
                exchanges: topology.exchanges(),
                bindings: topology.bindings(),
                topology,
                limits: Limits {
                    max_queue_length: limits.max_queue_length.max(1),
                    max_queue_bytes: limits.max_queue_bytes.max(1),
                },
                journal,
                queues: Mutex::new(queues),
                consumers: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Whether it keeps a journal (a crash loses nothing confirmed).
    pub fn is_durable(&self) -> bool {
        self.inner.journal.is_some()
    }

    /// Messages that consumers still have to handle: ready in, or delivered but unsettled
    /// from, the consumer queues (the dead-letter queue is a sink and does not count).
    pub fn unsettled(&self) -> usize {
        let consumed = self.inner.topology.dead_lettering_queues();
        let ready: usize = lock(&self.inner.queues)
            .iter()
            .filter(|(name, _)| consumed.contains(name))
            .map(|(_, queue)| queue.ready.len())
            .sum();
        let delivered: usize = lock(&self.inner.consumers)
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|c| consumed.contains(&c.queue))
            .map(|c| lock(&c.unacked).len())
            .sum();
        ready + delivered
    }
}

#[async_trait]
impl BrokerConnector for EmbeddedBroker {
    async fn connect(&self) -> Result<Arc<dyn MessageBroker>, BrokerError> {
        Ok(Arc::new(EmbeddedConnection {
            inner: self.inner.clone(),
            closed: CancellationToken::new(),
        }))
    }

    fn describe(&self) -> String {
        match &self.inner.journal {
            Some(journal) => format!(
                "the embedded in-process broker, journaled to {}",
                journal.location()
            ),
            None => "the embedded in-process broker, in memory".to_owned(),
        }
    }

    fn kind(&self) -> &'static str {
        "broker"
    }

    fn topology(&self) -> &Topology {
        &self.inner.topology
    }
}

impl Queue {
    fn push(&mut self, message: Message) {
        self.held += 1;
        self.bytes += message.data.len();
        self.ready.push_back(message);
    }

    /// `count` messages of `bytes` bytes left the queue for good (settled or dropped).
    fn release(&mut self, count: usize, bytes: usize) {
        self.held = self.held.saturating_sub(count);
        self.bytes = self.bytes.saturating_sub(bytes);
    }
}

impl Inner {
    /// The queues `exchange` routes `routing_key` to.
    fn targets(&self, exchange: &str, routing_key: &str) -> Result<Vec<String>, BrokerError> {
        let unroutable = || BrokerError::Unroutable(routing_key.to_owned(), exchange.to_owned());
        let kind = self
            .exchanges
            .iter()
            .find(|(name, _)| name == exchange)
            .map(|(_, kind)| *kind)
            .ok_or_else(unroutable)?;
        let mut targets: Vec<String> = self
            .bindings
            .iter()
            .filter(|b| b.exchange == exchange && kind.routes(b.key, routing_key))
            .map(|b| b.queue.clone())
            .collect();
        targets.sort();
        targets.dedup();
        if targets.is_empty() {
            return Err(unroutable());
        }
        Ok(targets)
    }

    /// Puts `message` into every queue `exchange` routes `routing_key` to, all or nothing,
    /// journaled first when the broker is durable: confirmed means stored.
    async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        message: Message,
    ) -> Result<(), BrokerError> {
        let targets = self.targets(exchange, routing_key)?;
        {
            let queues = lock(&self.queues);
            for name in &targets {
                let queue = queues
                    .get(name)
                    .ok_or_else(|| BrokerError::NoSuchQueue(name.clone()))?;
                let full = queue.held >= self.limits.max_queue_length
                    || queue.bytes + message.data.len() > self.limits.max_queue_bytes;
                if full && !queue.drop_oldest_when_full {
                    tracing::warn!(queue = %name, messages = queue.held, bytes = queue.bytes, "queue full; refusing a publish");
                    return Err(BrokerError::Nacked);
                }
            }
        }
        let ids: Vec<Option<i64>> = match &self.journal {
            None => vec![None; targets.len()],
            Some(journal) => {
                let rows = targets
                    .iter()
                    .map(|queue| JournalRow {
                        queue: queue.clone(),
                        exchange: message.exchange.clone(),
                        routing_key: message.routing_key.clone(),
                        meta: message.meta.clone(),
                        body: message.data.clone(),
                    })
                    .collect();
                journal.insert(rows).await?.into_iter().map(Some).collect()
            }
        };
        let mut dropped = Vec::new();
        {
            let mut queues = lock(&self.queues);
            for (name, journal_id) in targets.iter().zip(ids) {
                let Some(queue) = queues.get_mut(name) else {
                    continue;
                };
                while queue.drop_oldest_when_full
                    && !queue.ready.is_empty()
                    && (queue.held >= self.limits.max_queue_length
                        || queue.bytes + message.data.len() > self.limits.max_queue_bytes)
                {
                    if let Some(old) = queue.ready.pop_front() {
                        queue.release(1, old.data.len());
                        dropped.extend(old.journal_id);
                    }
                }
                queue.push(Message {
                    journal_id,
                    ..message.clone()
                });
                queue.notify.notify_waiters();
            }
        }
        self.forget(dropped);
        Ok(())
    }

    /// Removes settled messages from the journal.
    fn forget(&self, ids: Vec<i64>) {
        if let Some(journal) = &self.journal {
            journal.delete(ids);
        }
    }
}

struct EmbeddedConnection {
    inner: Arc<Inner>,
    closed: CancellationToken,
}

#[async_trait]
impl MessageBroker for EmbeddedConnection {
    fn topology(&self) -> &Topology {
        &self.inner.topology
    }

    fn is_connected(&self) -> bool {
        !self.closed.is_cancelled()
    }

    async fn publisher(&self, _confirm_timeout: Duration) -> Result<Publisher, BrokerError> {
        if self.closed.is_cancelled() {
            return Err(BrokerError::NotConnected);
        }
        Ok(Arc::new(EmbeddedPublisher {
            inner: self.inner.clone(),
            closed: self.closed.clone(),
        }))
    }

    async fn consume(
        &self,
        queue: &str,
        _consumer_tag: &str,
        prefetch: u16,
    ) -> Result<Subscription, BrokerError> {
        if self.closed.is_cancelled() {
            return Err(BrokerError::NotConnected);
        }
        {
            let mut queues = lock(&self.inner.queues);
            let state = queues
                .get_mut(queue)
                .ok_or_else(|| BrokerError::NoSuchQueue(queue.to_owned()))?;
            state.consumers += 1;
        }
        let consumer = Arc::new(ConsumerState {
            inner: self.inner.clone(),
            queue: queue.to_owned(),
            // As in AMQP, a prefetch of 0 means no limit.
            prefetch: if prefetch == 0 {
                usize::MAX
            } else {
                usize::from(prefetch)
            },
            unacked: Mutex::new(BTreeMap::new()),
            next_tag: AtomicU64::new(1),
            closed: self.closed.child_token(),
            cancelled: AtomicBool::new(false),
        });
        {
            let mut registry = lock(&self.inner.consumers);
            registry.retain(|c| c.strong_count() > 0);
            registry.push(Arc::downgrade(&consumer));
        }
        let guard = ConsumerGuard(consumer);
        Ok(Box::pin(futures_util::stream::unfold(
            guard,
            |guard| async move {
                let delivery = guard.0.next().await?;
                Some((Ok(delivery), guard))
            },
        )))
    }

    async fn queue_depth(&self, queue: &str) -> Result<(u32, u32), BrokerError> {
        let queues = lock(&self.inner.queues);
        let state = queues
            .get(queue)
            .ok_or_else(|| BrokerError::NoSuchQueue(queue.to_owned()))?;
        let ready = u32::try_from(state.ready.len()).unwrap_or(u32::MAX);
        Ok((ready, state.consumers))
    }

    /// Empties every queue (the queues themselves are part of the process's broker).
    async fn delete_queues(&self) -> Result<(), BrokerError> {
        for queue in lock(&self.inner.queues).values_mut() {
            let (count, bytes) = (
                queue.ready.len(),
                queue.ready.iter().map(|m| m.data.len()).sum(),
            );
            queue.ready.clear();
            queue.release(count, bytes);
        }
        match &self.inner.journal {
            Some(journal) => journal.clear().await,
            None => Ok(()),
        }
    }

    async fn close(&self) {
        self.closed.cancel();
        let consumers: Vec<Arc<ConsumerState>> = lock(&self.inner.consumers)
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|c| c.closed.is_cancelled())
            .collect();
        for consumer in consumers {
            consumer.cancel();
            consumer.requeue_all();
        }
    }
}

struct EmbeddedPublisher {
    inner: Arc<Inner>,
    closed: CancellationToken,
}

#[async_trait]
impl MessagePublisher for EmbeddedPublisher {
    async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        meta: &MessageMeta,
    ) -> Result<(), BrokerError> {
        if self.closed.is_cancelled() {
            return Err(BrokerError::NotConnected);
        }
        let message = Message {
            data: body.to_vec(),
            exchange: exchange.to_owned(),
            routing_key: routing_key.to_owned(),
            meta: meta.clone(),
            redelivered: false,
            journal_id: None,
        };
        self.inner.publish(exchange, routing_key, message).await
    }

    fn is_open(&self) -> bool {
        !self.closed.is_cancelled()
    }
}

/// One consumer: its queue, prefetch and unsettled deliveries by tag.
struct ConsumerState {
    inner: Arc<Inner>,
    queue: String,
    prefetch: usize,
    unacked: Mutex<BTreeMap<u64, Message>>,
    next_tag: AtomicU64,
    /// Cancelled when the connection closes.
    closed: CancellationToken,
    /// Set once the consumer stopped counting as one of the queue's consumers.
    cancelled: AtomicBool,
}

/// Owned by the delivery stream: dropping the stream cancels the consumer (its unsettled
/// deliveries can still be settled, or return to the queue when their handles are dropped).
struct ConsumerGuard(Arc<ConsumerState>);

impl Drop for ConsumerGuard {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

impl Drop for ConsumerState {
    fn drop(&mut self) {
        // Nothing can settle them any more: back to the queue.
        self.requeue_all();
    }
}

impl ConsumerState {
    fn notify(&self) -> Option<Arc<Notify>> {
        lock(&self.inner.queues)
            .get(&self.queue)
            .map(|q| q.notify.clone())
    }

    async fn next(self: &Arc<Self>) -> Option<Delivery> {
        let notify = self.notify()?;
        loop {
            if self.closed.is_cancelled() {
                return None;
            }
            // Register for a wake-up before looking, so an arrival in between is not missed.
            let mut notified = pin!(notify.notified());
            notified.as_mut().enable();
            if let Some(delivery) = self.try_take() {
                return Some(delivery);
            }
            tokio::select! {
                () = notified => {}
                () = self.closed.cancelled() => return None,
            }
        }
    }

    fn try_take(self: &Arc<Self>) -> Option<Delivery> {
        let mut unacked = lock(&self.unacked);
        // Checked under the lock `close` requeues under, so nothing is handed out after it.
        if unacked.len() >= self.prefetch || self.closed.is_cancelled() {
            return None;
        }
        let message = lock(&self.inner.queues)
            .get_mut(&self.queue)?
            .ready
            .pop_front()?;
        let tag = self.next_tag.fetch_add(1, Ordering::Relaxed);
        unacked.insert(tag, message.clone());
        Some(Delivery {
            data: message.data,
            exchange: message.exchange,
            routing_key: message.routing_key,
            redelivered: message.redelivered,
            meta: message.meta,
            acker: Box::new(EmbeddedAcker {
                consumer: self.clone(),
                tag,
            }),
        })
    }

    fn cancel(&self) {
        if !self.cancelled.swap(true, Ordering::SeqCst)
            && let Some(queue) = lock(&self.inner.queues).get_mut(&self.queue)
        {
            queue.consumers = queue.consumers.saturating_sub(1);
        }
    }

    /// Takes the deliveries `tag` (and, with `multiple`, every earlier one) out of the
    /// unsettled set.
    fn take(&self, tag: u64, multiple: bool) -> Result<Vec<Message>, BrokerError> {
        if self.closed.is_cancelled() {
            return Err(BrokerError::NotConnected);
        }
        let mut unacked = lock(&self.unacked);
        if !unacked.contains_key(&tag) {
            return Err(BrokerError::AlreadySettled);
        }
        let taken = if multiple {
            let later = unacked.split_off(&(tag + 1));
            std::mem::replace(&mut *unacked, later)
                .into_values()
                .collect()
        } else {
            unacked.remove(&tag).into_iter().collect()
        };
        Ok(taken)
    }

    /// Returns `messages` (oldest first) to the head of the queue, marked redelivered.
    fn requeue(&self, messages: Vec<Message>) {
        if messages.is_empty() {
            return;
        }
        let mut queues = lock(&self.inner.queues);
        if let Some(queue) = queues.get_mut(&self.queue) {
            for mut message in messages.into_iter().rev() {
                message.redelivered = true;
                queue.ready.push_front(message);
            }
            queue.notify.notify_waiters();
        }
    }

    fn requeue_all(&self) {
        let messages: Vec<Message> = std::mem::take(&mut *lock(&self.unacked))
            .into_values()
            .collect();
        self.requeue(messages);
    }

    fn wake(&self) {
        if let Some(notify) = self.notify() {
            notify.notify_waiters();
        }
    }

    /// Settles `messages` for good: they leave the queue (and the journal).
    fn settle(&self, messages: &[Message]) {
        if messages.is_empty() {
            return;
        }
        if let Some(queue) = lock(&self.inner.queues).get_mut(&self.queue) {
            queue.release(messages.len(), messages.iter().map(|m| m.data.len()).sum());
        }
        self.inner
            .forget(messages.iter().filter_map(|m| m.journal_id).collect());
    }

    /// Routes rejected messages to the queue's dead-letter exchange, then settles them (a
    /// failed move keeps a message settled nowhere: it is requeued instead of lost).
    async fn dead_letter(&self, messages: Vec<Message>) {
        let exchange = lock(&self.inner.queues)
            .get(&self.queue)
            .and_then(|q| q.dead_letter_exchange.clone());
        for message in messages {
            let Some(exchange) = &exchange else {
                tracing::warn!(queue = %self.queue, "dropping a rejected message: the queue has no dead-letter exchange");
                self.settle(std::slice::from_ref(&message));
                continue;
            };
            let routing_key = message.routing_key.clone();
            let copy = Message {
                redelivered: false,
                journal_id: None,
                ..message.clone()
            };
            match self.inner.publish(exchange, &routing_key, copy).await {
                Ok(()) => self.settle(std::slice::from_ref(&message)),
                Err(error) => {
                    tracing::error!(%error, queue = %self.queue, "dead-lettering a rejected message failed; it goes back to its queue");
                    self.requeue(vec![message]);
                }
            }
        }
    }
}

struct EmbeddedAcker {
    consumer: Arc<ConsumerState>,
    tag: u64,
}

#[async_trait]
impl Acker for EmbeddedAcker {
    async fn ack(&self, multiple: bool) -> Result<(), BrokerError> {
        let settled = self.consumer.take(self.tag, multiple)?;
        self.consumer.settle(&settled);
        self.consumer.wake();
        Ok(())
    }

    async fn nack(&self, multiple: bool, requeue: bool) -> Result<(), BrokerError> {
        let messages = self.consumer.take(self.tag, multiple)?;
        if requeue {
            self.consumer.requeue(messages);
        } else {
            self.consumer.dead_letter(messages).await;
            self.consumer.wake();
        }
        Ok(())
    }
}
