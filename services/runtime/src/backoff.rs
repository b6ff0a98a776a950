//! Exponential backoff with a cap and jitter: the one retry helper for reconnecting to
//! brokers and databases.

use std::time::Duration;

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
