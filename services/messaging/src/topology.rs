//! The names of every exchange and queue, and how they are bound: one description that each
//! adapter declares in its own way.

use crate::JOB_CREATED;

/// How an exchange routes (AMQP semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeKind {
    /// Routing key equals the binding key.
    Direct,
    /// Binding keys are dot-separated words with `*` (one word) and `#` (zero or more).
    Topic,
    /// Every bound queue, whatever the key.
    Fanout,
}

impl ExchangeKind {
    /// Whether a message with `routing_key` goes to a queue bound with `binding_key`.
    pub fn routes(self, binding_key: &str, routing_key: &str) -> bool {
        match self {
            Self::Direct => binding_key == routing_key,
            Self::Fanout => true,
            Self::Topic => {
                let pattern: Vec<&str> = binding_key.split('.').collect();
                let words: Vec<&str> = routing_key.split('.').collect();
                topic_matches(&pattern, &words)
            }
        }
    }
}

fn topic_matches(pattern: &[&str], words: &[&str]) -> bool {
    match pattern.split_first() {
        None => words.is_empty(),
        Some((&"#", rest)) => (0..=words.len()).any(|skip| topic_matches(rest, &words[skip..])),
        Some((&first, rest)) => match words.split_first() {
            Some((word, remaining)) => {
                (first == "*" || first == *word) && topic_matches(rest, remaining)
            }
            None => false,
        },
    }
}

/// `queue` receives what `exchange` routes for `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub exchange: String,
    pub queue: String,
    pub key: &'static str,
}

/// Names and bindings of every exchange and queue.
#[derive(Debug, Clone)]
pub struct Topology {
    prefix: String,
}

impl Topology {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn jobs_exchange(&self) -> String {
        format!("{}.jobs", self.prefix)
    }

    pub fn jobs_queue(&self) -> String {
        format!("{}.jobs", self.prefix)
    }

    pub fn events_exchange(&self) -> String {
        format!("{}.events", self.prefix)
    }

    pub fn metrics_queue(&self) -> String {
        format!("{}.metrics-engine", self.prefix)
    }

    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.dead-letters", self.prefix)
    }

    pub fn dead_letter_queue(&self) -> String {
        format!("{}.dead-letters", self.prefix)
    }

    /// Every queue the system reads, for depth reporting.
    pub fn queues(&self) -> Vec<String> {
        vec![
            self.jobs_queue(),
            self.metrics_queue(),
            self.dead_letter_queue(),
        ]
    }

    pub fn exchanges(&self) -> Vec<(String, ExchangeKind)> {
        vec![
            (self.jobs_exchange(), ExchangeKind::Direct),
            (self.events_exchange(), ExchangeKind::Topic),
            (self.dead_letter_exchange(), ExchangeKind::Fanout),
        ]
    }

    /// The queues whose rejected (nacked without requeue) messages go to the dead-letter
    /// exchange, so nothing is dropped even when a consumer gives up on a message without
    /// publishing it itself.
    pub fn dead_lettering_queues(&self) -> Vec<String> {
        vec![self.jobs_queue(), self.metrics_queue()]
    }

    pub fn bindings(&self) -> Vec<Binding> {
        let bind = |queue: String, exchange: String, key| Binding {
            exchange,
            queue,
            key,
        };
        vec![
            bind(self.jobs_queue(), self.jobs_exchange(), JOB_CREATED),
            bind(self.metrics_queue(), self.events_exchange(), "job.*"),
            // The gateway's one confirmed publish of a job.created reaches both the processor
            // and the metrics engine (which logs and counts submissions).
            bind(self.metrics_queue(), self.jobs_exchange(), JOB_CREATED),
            bind(self.dead_letter_queue(), self.dead_letter_exchange(), ""),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_patterns_match_like_amqp() {
        let topic = ExchangeKind::Topic;
        assert!(topic.routes("job.*", "job.started"));
        assert!(!topic.routes("job.*", "job.started.late"));
        assert!(!topic.routes("job.*", "job"));
        assert!(topic.routes("job.#", "job"));
        assert!(topic.routes("job.#", "job.a.b"));
        assert!(topic.routes("#.late", "job.started.late"));
        assert!(!topic.routes("jobs.*", "job.started"));
        assert!(ExchangeKind::Direct.routes("job.created", "job.created"));
        assert!(!ExchangeKind::Direct.routes("job.created", "job.started"));
        assert!(ExchangeKind::Fanout.routes("", "anything"));
    }

    #[test]
    fn every_binding_names_an_exchange_and_a_queue_of_the_topology() {
        let topology = Topology::new("p");
        for binding in topology.bindings() {
            assert!(
                topology
                    .exchanges()
                    .iter()
                    .any(|(name, _)| *name == binding.exchange)
            );
            assert!(topology.queues().contains(&binding.queue));
        }
    }
}
