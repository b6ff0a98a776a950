//! Prometheus metrics: one registry per service whose every family carries a constant
//! `service` label, and the HTTP request-duration histogram labelled by route template
//! (never by raw path, so job ids cannot become label values).

use prometheus::{Encoder, HistogramOpts, HistogramVec, Registry, TextEncoder};
use std::collections::HashMap;

#[derive(Clone)]
pub struct ServiceMetrics {
    registry: Registry,
    pub http_request_duration: HistogramVec,
}

impl ServiceMetrics {
    pub fn new(service: &str) -> Self {
        let labels = HashMap::from([("service".to_string(), service.to_string())]);
        let registry = Registry::new_custom(Some("observatory".into()), Some(labels))
            .expect("a fixed, valid prefix and label");
        let http_request_duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request duration by route and status",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["method", "route", "status"],
        )
        .expect("valid histogram options");
        let metrics = Self {
            registry,
            http_request_duration,
        };
        metrics.register(Box::new(metrics.http_request_duration.clone()));
        // CPU time, resident memory, open descriptors and threads of this process (under
        // `observatory up` every role reports the same process).
        #[cfg(target_os = "linux")]
        metrics.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ));
        metrics
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Registers a collector; registering the same family twice is a programming error.
    pub fn register(&self, collector: Box<dyn prometheus::core::Collector>) {
        if let Err(error) = self.registry.register(collector) {
            panic!("registering a metric family: {error}");
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::error!(%error, "encoding metrics");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_has_the_service_label() {
        let m = ServiceMetrics::new("gateway");
        m.http_request_duration
            .with_label_values(&["GET", "/healthz", "200"])
            .observe(0.001);
        let text = m.render();
        assert!(text.contains("observatory_http_request_duration_seconds_count{method=\"GET\",route=\"/healthz\",status=\"200\",service=\"gateway\"} 1"), "{text}");
        #[cfg(target_os = "linux")]
        for family in [
            "observatory_process_cpu_seconds_total{service=\"gateway\"}",
            "observatory_process_resident_memory_bytes{service=\"gateway\"}",
        ] {
            assert!(text.contains(family), "{family} in\n{text}");
        }
    }
}
