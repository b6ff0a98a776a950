//! The engine's Prometheus families, on the service registry (which adds the `service` label
//! to each). Labels are bounded: event types, stores and rejection codes, never ids.

use observatory_runtime::metrics::ServiceMetrics;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
};

use crate::validate::{EVENT_TYPES, Rejection};

/// Label value of the MongoDB event log.
pub(crate) const EVENT_LOG: &str = "event_log";
/// Label value of the Redis counters.
pub(crate) const COUNTERS: &str = "counters";

#[derive(Clone)]
pub(crate) struct EngineMetrics {
    /// Valid events consumed and stored, by event type (redeliveries included).
    pub(crate) consumed: IntCounterVec,
    /// Events a store already had (redeliveries), by store.
    pub(crate) duplicates: IntCounterVec,
    /// Messages dead-lettered, by rejection code.
    pub(crate) dead_lettered: IntCounterVec,
    /// Failed store writes (the batch is requeued), by store.
    pub(crate) store_failures: IntCounterVec,
    /// Deliveries per batch.
    pub(crate) batch_size: Histogram,
    /// Duration of one batch write, by store.
    pub(crate) store_write_duration: HistogramVec,
    /// From an event's occurredAt to its storage.
    pub(crate) event_lag: Histogram,
    /// Ready messages waiting in the metrics queue (refreshed every few seconds).
    pub(crate) queue_depth: IntGauge,
    /// Redelivered events older than the deduplication window, not counted again.
    pub(crate) late_duplicates: IntCounter,
    /// Rebuilds of the counters from the event log this engine completed.
    pub(crate) rebuilds: IntCounter,
}

fn valid<T>(result: prometheus::Result<T>) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("a fixed, valid metric definition: {error}"),
    }
}

impl EngineMetrics {
    pub(crate) fn register(service: &ServiceMetrics) -> Self {
        let consumed = valid(IntCounterVec::new(
            Opts::new(
                "metrics_engine_events_consumed_total",
                "Valid job events consumed and stored, by event type (redeliveries included)",
            ),
            &["event_type"],
        ));
        let duplicates = valid(IntCounterVec::new(
            Opts::new(
                "metrics_engine_duplicates_total",
                "Events a store already had (redeliveries), by store",
            ),
            &["store"],
        ));
        let dead_lettered = valid(IntCounterVec::new(
            Opts::new(
                "metrics_engine_dead_lettered_total",
                "Messages dead-lettered because they are not valid events, by reason",
            ),
            &["reason"],
        ));
        let store_failures = valid(IntCounterVec::new(
            Opts::new(
                "metrics_engine_store_failures_total",
                "Failed batch writes (the batch is requeued), by store",
            ),
            &["store"],
        ));
        let batch_size = valid(Histogram::with_opts(
            HistogramOpts::new("metrics_engine_batch_size", "Deliveries per consumed batch")
                .buckets(vec![
                    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
                ]),
        ));
        let store_write_duration = valid(HistogramVec::new(
            HistogramOpts::new(
                "metrics_engine_store_write_duration_seconds",
                "Duration of one batch write, by store",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["store"],
        ));
        let event_lag = valid(Histogram::with_opts(
            HistogramOpts::new(
                "metrics_engine_event_lag_seconds",
                "Consumer lag: time from an event's occurredAt until it is stored and counted",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
            ]),
        ));
        let queue_depth = valid(IntGauge::new(
            "metrics_engine_queue_depth",
            "Ready messages waiting in the metrics-engine queue",
        ));

        let late_duplicates = valid(IntCounter::new(
            "metrics_engine_late_duplicates_total",
            "Redelivered events older than the counters' deduplication window, which the event log already had: not counted again",
        ));
        let rebuilds = valid(IntCounter::new(
            "metrics_engine_counters_rebuilds_total",
            "Rebuilds of the counters from the event log (at start or after the counters' store lost them)",
        ));

        // Every label value exists from the start, so each family is exposed (at zero)
        // before the first event.
        for event_type in EVENT_TYPES {
            consumed.with_label_values(&[event_type.to_string().as_str()]);
        }
        for store in [EVENT_LOG, COUNTERS] {
            duplicates.with_label_values(&[store]);
            store_failures.with_label_values(&[store]);
            store_write_duration.with_label_values(&[store]);
        }
        for code in Rejection::CODES {
            dead_lettered.with_label_values(&[code]);
        }

        service.register(Box::new(consumed.clone()));
        service.register(Box::new(duplicates.clone()));
        service.register(Box::new(dead_lettered.clone()));
        service.register(Box::new(store_failures.clone()));
        service.register(Box::new(batch_size.clone()));
        service.register(Box::new(store_write_duration.clone()));
        service.register(Box::new(event_lag.clone()));
        service.register(Box::new(queue_depth.clone()));
        service.register(Box::new(late_duplicates.clone()));
        service.register(Box::new(rebuilds.clone()));
        Self {
            consumed,
            duplicates,
            dead_lettered,
            store_failures,
            batch_size,
            store_write_duration,
            event_lag,
            queue_depth,
            late_duplicates,
            rebuilds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_exposed_with_the_service_label() {
        let service = ServiceMetrics::new("metrics-engine");
        let metrics = EngineMetrics::register(&service);
        metrics.batch_size.observe(3.0);
        metrics.event_lag.observe(0.2);
        let text = service.render();
        for family in [
            "observatory_metrics_engine_events_consumed_total{event_type=\"job.created\",service=\"metrics-engine\"} 0",
            "observatory_metrics_engine_duplicates_total{store=\"counters\",service=\"metrics-engine\"} 0",
            "observatory_metrics_engine_dead_lettered_total{reason=\"malformed-json\",service=\"metrics-engine\"} 0",
            "observatory_metrics_engine_batch_size_count{service=\"metrics-engine\"} 1",
            "observatory_metrics_engine_store_write_duration_seconds_count{store=\"event_log\",service=\"metrics-engine\"} 0",
            "observatory_metrics_engine_event_lag_seconds_count{service=\"metrics-engine\"} 1",
            "observatory_metrics_engine_queue_depth{service=\"metrics-engine\"} 0",
        ] {
            assert!(text.contains(family), "{family} missing from\n{text}");
        }
    }
}
