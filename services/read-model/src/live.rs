//! The live stream's fan-out: one subscription to the counters' live feed serves every
//! `/stream` client, through a bounded broadcast buffer. Memory stays bounded whatever the
//! clients do: a client that reads too slowly falls behind the buffer and its stream ends
//! (a browser's `EventSource` reconnects by itself; the TUI reconnects and catches up from
//! `/events`), instead of the read model queueing events for it without limit. The number of
//! open streams is capped too.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use observatory_counters::{Counters, CountersError};
use tokio::sync::{Mutex, broadcast};

/// Events buffered for the slowest client before it is cut off.
pub(crate) const BUFFER: usize = 4096;
/// Streams open at once; one more is refused (503).
pub(crate) const MAX_STREAMS: usize = 512;
/// How long opening the feed may take.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(5);

/// One event as every client sends it: its type (the SSE `event:`) and its JSON (`data:`),
/// encoded once.
#[derive(Debug, Clone)]
pub(crate) struct LiveEvent {
    pub event_type: String,
    pub json: Arc<str>,
}

/// Why no stream could be opened.
#[derive(Debug)]
pub(crate) enum OpenError {
    Counters(CountersError),
    TimedOut,
    TooMany,
}

/// The shared subscription, opened by the first client. Only its forwarding task holds the
/// sender, so that when the feed ends every stream ends, and the next client subscribes anew.
#[derive(Default)]
pub(crate) struct LiveHub {
    current: Mutex<Option<broadcast::WeakSender<LiveEvent>>>,
    open_streams: Arc<AtomicUsize>,
}

/// Counts an open stream until dropped.
pub(crate) struct StreamSlot(Arc<AtomicUsize>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What a client receives: events, or the end of its stream.
pub(crate) enum Item {
    Event(LiveEvent),
    /// The client fell behind by this many events; its stream ends here.
    Lagged(u64),
}

impl LiveHub {
    /// A receiver of the live feed (subscribing to the counters when no one is), and the slot
    /// that counts the stream as open.
    pub async fn open(
        &self,
        counters: Arc<dyn Counters>,
    ) -> Result<(impl Stream<Item = Item> + Send + use<>, StreamSlot), OpenError> {
        if self.open_streams.fetch_add(1, Ordering::SeqCst) >= MAX_STREAMS {
            self.open_streams.fetch_sub(1, Ordering::SeqCst);
            return Err(OpenError::TooMany);
        }
        let slot = StreamSlot(self.open_streams.clone());
        let receiver = {
            // Held while subscribing, so that concurrent first clients open one subscription.
            let mut current = self.current.lock().await;
            match current.as_ref().and_then(broadcast::WeakSender::upgrade) {
                Some(sender) => sender.subscribe(),
                None => {
                    let feed = tokio::time::timeout(SUBSCRIBE_TIMEOUT, counters.subscribe())
                        .await
                        .map_err(|_| OpenError::TimedOut)?
                        .map_err(OpenError::Counters)?;
                    let (sender, receiver) = broadcast::channel(BUFFER);
                    *current = Some(sender.downgrade());
                    tokio::spawn(forward(feed, sender));
                    receiver
                }
            }
        };
        let stream = futures_util::stream::unfold(Some(receiver), |receiver| async move {
            let mut receiver = receiver?;
            match receiver.recv().await {
                Ok(event) => Some((Item::Event(event), Some(receiver))),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    Some((Item::Lagged(missed), None))
                }
                Err(broadcast::error::RecvError::Closed) => None,
            }
        });
        Ok((stream, slot))
    }
}

/// Encodes each event of the feed once and hands it to every receiver, until the feed ends or
/// no one listens any more (then the subscription is closed; the next client opens another).
async fn forward(mut feed: observatory_counters::EventFeed, sender: broadcast::Sender<LiveEvent>) {
    while let Some(item) = feed.next().await {
        let envelope = match item {
            Ok(envelope) => envelope,
            Err(error) => {
                tracing::warn!(%error, "skipping a message of the live feed");
                continue;
            }
        };
        let json = match serde_json::to_string(&envelope) {
            Ok(json) => json,
            Err(error) => {
                tracing::warn!(%error, event_id = %envelope.event_id, "cannot encode an event for the stream");
                continue;
            }
        };
        let event = LiveEvent {
            event_type: envelope.event_type.to_string(),
            json: json.into(),
        };
        if sender.send(event).is_err() {
            // Every stream is gone.
            return;
        }
    }
    tracing::warn!(
        "the live feed ended (its connection was lost); open streams end and clients reconnect"
    );
}
