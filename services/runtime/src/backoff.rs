//! Exponential backoff with a cap and jitter, [`connect_with_retry`]: the one retry helper
//! for reconnecting to brokers and databases, and [`Dependency`]: how a service reaches one
//! of its stores, whichever adapter serves it.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

type Connect<T> = Arc<dyn Fn() -> BoxFuture<'static, Result<Arc<T>, String>> + Send + Sync>;

/// A store a service depends on, behind its port trait `T` (e.g. `dyn JobStore`): either one
/// to connect to (a server, retried with backoff until it answers) or one already open (an
/// embedded adapter shared by the roles of `observatory up`). Cheap to clone.
pub struct Dependency<T: ?Sized> {
    /// The name in `/readyz` and logs, e.g. `postgresql`.
    pub kind: &'static str,
    /// Where, without passwords, e.g. `PostgreSQL at postgres://u:***@host/db`.
    pub target: String,
    /// Opened by someone else and shared between roles: a role must not close it.
    pub shared: bool,
    connect: Connect<T>,
}

impl<T: ?Sized> Clone for Dependency<T> {
    fn clone(&self) -> Self {
        Self {
            kind: self.kind,
            target: self.target.clone(),
            shared: self.shared,
            connect: self.connect.clone(),
        }
    }
}

impl<T: ?Sized + Send + Sync + 'static> Dependency<T> {
    /// Connects by calling `connect` (again after each failure).
    pub fn connect<F, Fut, E>(kind: &'static str, target: impl Into<String>, connect: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Arc<T>, E>> + Send + 'static,
        E: std::fmt::Display,
    {
        let connect = Arc::new(connect);
        Self {
            kind,
            target: target.into(),
            shared: false,
            connect: Arc::new(move || {
                let attempt = connect();
                Box::pin(async move { attempt.await.map_err(|e| e.to_string()) })
            }),
        }
    }

    /// One already open, shared: whoever opened it closes it.
    pub fn open(kind: &'static str, target: impl Into<String>, value: Arc<T>) -> Self {
        Self {
            kind,
            target: target.into(),
            shared: true,
            connect: Arc::new(move || {
                let value = value.clone();
                Box::pin(async move { Ok(value) })
            }),
        }
    }

    /// Connects, retrying with backoff; `None` when `shutdown` fires first.
    pub async fn connect_with_retry(&self, shutdown: &CancellationToken) -> Option<Arc<T>> {
        connect_with_retry(self.kind, &self.target, shutdown, || (self.connect)()).await
    }
}

/// Calls `connect` until it succeeds, waiting with backoff between tries and logging each
/// wait (a service may start before its dependencies); `None` when `shutdown` fires first.
/// `target` names where (e.g. a URL without its password) for the logs.
pub async fn connect_with_retry<T, E, F, Fut>(
    what: &str,
    target: &str,
    shutdown: &CancellationToken,
    mut connect: F,
) -> Option<T>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut backoff = Backoff::default();
    loop {
        let attempt = tokio::select! {
            result = connect() => result,
            () = shutdown.cancelled() => return None,
        };
        match attempt {
            Ok(connected) => {
                tracing::info!(%target, "connected to {what}");
                return Some(connected);
            }
            Err(error) => {
                let delay = backoff.next_delay();
                tracing::warn!(%target, %error, retry_in = ?delay, "{what} unavailable; retrying");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = shutdown.cancelled() => return None,
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    /// Starts at `initial`, doubles per step, never exceeds `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self { next: initial, max }
    }

    /// The delay before the next try (with up to 20% jitter, so that many processes restarted
    /// together do not retry in lockstep).
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        let jitter_range = base.as_millis() as u64 / 5;
        let jitter = if jitter_range == 0 {
            0
        } else {
            uuid::Uuid::new_v4().as_u128() as u64 % jitter_range
        };
        base + Duration::from_millis(jitter)
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_millis(200), Duration::from_secs(10))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let delays: Vec<u128> = (0..4).map(|_| b.next_delay().as_millis()).collect();
        assert!((100..120).contains(&delays[0]), "{delays:?}");
        assert!((200..240).contains(&delays[1]), "{delays:?}");
        assert!((350..420).contains(&delays[2]), "{delays:?}");
        assert!((350..420).contains(&delays[3]), "{delays:?}");
    }
}
