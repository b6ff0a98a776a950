//! The processor's Prometheus families, registered on the service registry (so each carries
//! `service="processor"`). Labels are bounded: job types are the built-ins or `other`,
//! dead-letter reasons are the contract's enum; never job ids.

use observatory_runtime::metrics::ServiceMetrics;
use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts};

use chrono::Utc;

use crate::contracts::dead_letter::DeadLetterReason;
use crate::contracts::job::Job;
use crate::executor::BUILT_IN_TYPES;

#[derive(Clone)]
pub struct ProcessorMetrics {
    /// Jobs that ended COMPLETED, by type.
    pub jobs_completed: IntCounterVec,
    /// Jobs that ended FAILED (not retryable: unknown type, invalid payload), by type.
    pub jobs_failed: IntCounterVec,
    /// Failed attempts after which a retry was scheduled, by type.
    pub jobs_retried: IntCounterVec,
    /// Jobs that ended DEAD_LETTERED (every attempt failed), by type.
    pub jobs_dead_lettered: IntCounterVec,
    /// Duration of attempts, by type and outcome (succeeded, failed).
    pub job_duration: HistogramVec,
    /// Attempts executing now.
    pub jobs_in_flight: IntGauge,
    /// Attempts interrupted (by shutdown, or taken over from a worker whose lease ran out):
    /// they ran again without using up an attempt.
    pub jobs_interrupted: IntCounter,
    /// Events in the outbox not yet published.
    pub outbox_backlog: IntGauge,
    /// Jobs parked because their type was at its concurrency limit.
    pub jobs_parked: IntCounter,
    /// Dead letters recorded by this processor, by reason.
    pub dead_letters: IntCounterVec,
    /// From submission (the job's `createdAt`, the gateway's `submittedAt`) to its terminal
    /// state being committed, by type and outcome (completed, failed, dead_lettered).
    pub job_end_to_end: HistogramVec,
}

impl ProcessorMetrics {
    /// Creates the families and registers them on `service`'s registry.
    pub fn register(service: &ServiceMetrics) -> Self {
        let counter = |name: &str, help: &str, label: &str| {
            IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid counter options")
        };
        let metrics = Self {
            jobs_completed: counter("jobs_completed_total", "Jobs completed, by type", "type"),
            jobs_failed: counter(
                "jobs_failed_total",
                "Jobs failed without retry (unknown type, invalid payload), by type",
                "type",
            ),
            jobs_retried: counter(
                "jobs_retried_total",
                "Failed attempts after which a retry was scheduled, by type",
                "type",
            ),
            jobs_dead_lettered: counter(
                "jobs_dead_lettered_total",
                "Jobs dead-lettered after every attempt failed, by type",
                "type",
            ),
            job_duration: HistogramVec::new(
                HistogramOpts::new(
                    "job_duration_seconds",
                    "Duration of job attempts, by type and outcome",
                )
                .buckets(vec![
                    0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                    300.0, 600.0,
                ]),
                &["type", "outcome"],
            )
            .expect("valid histogram options"),
            jobs_in_flight: IntGauge::new("jobs_in_flight", "Job attempts executing now")
                .expect("valid gauge options"),
            jobs_interrupted: IntCounter::new(
                "jobs_interrupted_total",
                "Attempts interrupted by a shutdown or taken over after their worker's lease ran out (they run again without using up an attempt)",
            )
            .expect("valid counter options"),
            outbox_backlog: IntGauge::new(
                "outbox_backlog",
                "Events in the outbox not yet published",
            )
            .expect("valid gauge options"),
            jobs_parked: IntCounter::new(
                "jobs_parked_total",
                "Jobs parked until a slot of their type freed up (the type was at --type-concurrency)",
            )
            .expect("valid counter options"),
            dead_letters: counter(
                "dead_letters_total",
                "Dead letters recorded, by reason",
                "reason",
            ),
            job_end_to_end: HistogramVec::new(
                HistogramOpts::new(
                    "job_end_to_end_seconds",
                    "From a job's submission to its terminal state, by type and outcome",
                )
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                    300.0, 600.0,
                ]),
                &["type", "outcome"],
            )
            .expect("valid histogram options"),
        };
        service.register(Box::new(metrics.jobs_completed.clone()));
        service.register(Box::new(metrics.jobs_failed.clone()));
        service.register(Box::new(metrics.jobs_retried.clone()));
        service.register(Box::new(metrics.jobs_dead_lettered.clone()));
        service.register(Box::new(metrics.job_duration.clone()));
        service.register(Box::new(metrics.jobs_in_flight.clone()));
        service.register(Box::new(metrics.jobs_interrupted.clone()));
        service.register(Box::new(metrics.outbox_backlog.clone()));
        service.register(Box::new(metrics.dead_letters.clone()));
        service.register(Box::new(metrics.jobs_parked.clone()));
        service.register(Box::new(metrics.job_end_to_end.clone()));
        // Every type series exists from the start, so rates work before the first job.
        for job_type in BUILT_IN_TYPES.into_iter().chain(["other"]) {
            for family in [
                &metrics.jobs_completed,
                &metrics.jobs_failed,
                &metrics.jobs_retried,
                &metrics.jobs_dead_lettered,
            ] {
                family.with_label_values(&[job_type]);
            }
            for outcome in END_TO_END_OUTCOMES {
                metrics
                    .job_end_to_end
                    .with_label_values(&[job_type, outcome]);
            }
        }
        // Likewise every reason, so that the first dead letter after a start is an increase.
        for reason in [
            DeadLetterReason::MalformedJson,
            DeadLetterReason::SchemaViolation,
            DeadLetterReason::AttemptsExhausted,
        ] {
            metrics
                .dead_letters
                .with_label_values(&[reason.to_string().as_str()]);
        }
        metrics
    }

    /// Records how long `job`, just committed in a terminal state, took since its submission.
    pub fn observe_end_to_end(&self, job: &Job, label: &str, outcome: &str) {
        let finished = job.finished_at.unwrap_or_else(Utc::now);
        let seconds = (finished - job.created_at).as_seconds_f64().max(0.0);
        self.job_end_to_end
            .with_label_values(&[label, outcome])
            .observe(seconds);
    }
}

/// The `outcome` label values of `job_end_to_end_seconds`.
const END_TO_END_OUTCOMES: [&str; 3] = ["completed", "failed", "dead_lettered"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_carry_the_service_label_and_bounded_labels() {
        let service = ServiceMetrics::new("processor");
        let metrics = ProcessorMetrics::register(&service);
        metrics.jobs_completed.with_label_values(&["sleep"]).inc();
        metrics
            .dead_letters
            .with_label_values(&["malformed-json"])
            .inc();
        metrics.jobs_in_flight.set(3);
        let text = service.render();
        assert!(
            text.contains(
                "observatory_jobs_completed_total{type=\"sleep\",service=\"processor\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("observatory_jobs_failed_total{type=\"other\",service=\"processor\"} 0"),
            "{text}"
        );
        assert!(
            text.contains(
                "observatory_dead_letters_total{reason=\"malformed-json\",service=\"processor\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("observatory_jobs_in_flight{service=\"processor\"} 3"),
            "{text}"
        );
        // Present before the first job (rates and increases work from the start).
        for series in [
            "observatory_job_end_to_end_seconds_count{outcome=\"dead_lettered\",type=\"other\",service=\"processor\"} 0",
            "observatory_dead_letters_total{reason=\"attempts-exhausted\",service=\"processor\"} 0",
        ] {
            assert!(text.contains(series), "{series} in\n{text}");
        }
    }

    #[test]
    fn end_to_end_runs_from_submission_to_the_terminal_state() {
        let service = ServiceMetrics::new("processor");
        let metrics = ProcessorMetrics::register(&service);
        let created = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .expect("a date")
            .to_utc();
        let job: Job = serde_json::from_value(serde_json::json!({
            "id": "6c1f4a34-2f8e-4a53-9d4e-5b1c2d3e4f50", "type": "sleep", "status": "COMPLETED",
            "payload": {}, "attempts": 1, "maxAttempts": 3, "correlationId": "req-1",
            "createdAt": created, "updatedAt": created + chrono::TimeDelta::seconds(3),
            "startedAt": created, "finishedAt": created + chrono::TimeDelta::seconds(3)
        }))
        .expect("a job");
        metrics.observe_end_to_end(&job, "sleep", "completed");
        let text = service.render();
        assert!(
            text.contains("observatory_job_end_to_end_seconds_sum{outcome=\"completed\",type=\"sleep\",service=\"processor\"} 3"),
            "{text}"
        );
    }
}
