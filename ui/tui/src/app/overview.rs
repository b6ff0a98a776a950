//! Keeps the overview current between refreshes: each live event adds itself to the totals,
//! its type's counters and its throughput bucket, unless the overview already counted it (an
//! event that occurred before the overview was generated may be in it already; the next
//! refresh settles those).

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

use crate::contracts::event_envelope::{EventEnvelope, EventType};
use crate::contracts::overview::{JobCounters, Overview, ThroughputBucket};

/// Adds `event` to `overview`; returns whether it did.
pub fn count_live_event(overview: &mut Overview, event: &EventEnvelope) -> bool {
    if event.occurred_at <= overview.generated_at {
        return false;
    }
    let retried = event.event_type == EventType::JobFailed
        && event.payload.get("willRetry").and_then(Value::as_bool) == Some(true);
    add(&mut overview.totals, event.event_type, retried);
    if let Some(job_type) = event.payload.get("type").and_then(Value::as_str)
        && let Some(entry) = overview.by_type.iter_mut().find(|t| t.type_ == job_type)
    {
        add(&mut entry.counters, event.event_type, retried);
    }
    if let Some(bucket) = bucket_for(&mut overview.throughput, event.occurred_at) {
        match event.event_type {
            EventType::JobCreated => bucket.submitted += 1,
            EventType::JobCompleted => bucket.completed += 1,
            EventType::JobFailed => bucket.failed += 1,
            EventType::JobStarted | EventType::JobDeadLettered => {}
        }
    }
    true
}

fn add(counters: &mut JobCounters, event_type: EventType, retried: bool) {
    match event_type {
        EventType::JobCreated => counters.submitted += 1,
        EventType::JobStarted => counters.started += 1,
        EventType::JobCompleted => counters.completed += 1,
        EventType::JobFailed => {
            counters.failed += 1;
            counters.retried += u64::from(retried);
        }
        EventType::JobDeadLettered => counters.dead_lettered += 1,
    }
}

/// The bucket that holds `at`, opening new buckets (and dropping as many old ones) when time
/// has moved past the last; `None` for an instant before the first bucket.
fn bucket_for(
    buckets: &mut Vec<ThroughputBucket>,
    at: DateTime<Utc>,
) -> Option<&mut ThroughputBucket> {
    let (start, seconds) = buckets.last().map(|b| (b.start, b.seconds))?;
    let width = TimeDelta::seconds(i64::try_from(seconds.get()).ok()?);
    let mut end = start + width;
    // At most a window's worth of new buckets: a long-idle chart restarts empty.
    let mut opened = 0;
    while at >= end && opened <= buckets.len() {
        buckets.push(ThroughputBucket {
            start: end,
            seconds,
            submitted: 0,
            completed: 0,
            failed: 0,
        });
        buckets.remove(0);
        end += width;
        opened += 1;
    }
    buckets
        .iter_mut()
        .rev()
        .find(|b| b.start <= at && at < b.start + width)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn overview(at: &str) -> Overview {
        serde_json::from_value(json!({
            "generatedAt": at,
            "totals": {"submitted": 1, "started": 1, "completed": 0, "failed": 0, "retried": 0, "deadLettered": 0},
            "byType": [{"type": "sleep", "counters": {"submitted": 1, "started": 1, "completed": 0, "failed": 0, "retried": 0, "deadLettered": 0}}],
            "throughput": [
                {"start": "2026-12-01T12:00:00Z", "seconds": 1, "submitted": 1, "completed": 0, "failed": 0},
                {"start": "2026-12-01T12:00:01Z", "seconds": 1, "submitted": 0, "completed": 0, "failed": 0}
            ]
        }))
        .expect("an overview")
    }

    fn event(event_type: &str, at: &str, payload: Value) -> EventEnvelope {
        serde_json::from_value(json!({
            "contractVersion": "1.0.0", "eventType": event_type,
            "eventId": uuid::Uuid::new_v4(), "occurredAt": at,
            "producer": {"service": "processor", "instanceId": "p-1", "version": "0.1.0"},
            "correlationId": "c-1", "idempotencyKey": "k", "payload": payload
        }))
        .expect("an envelope")
    }

    #[test]
    fn live_events_count_once_in_totals_types_and_buckets() {
        let mut o = overview("2026-12-01T12:00:01.500Z");
        let old = event(
            "job.completed",
            "2026-12-01T12:00:01.200Z",
            json!({"type": "sleep"}),
        );
        assert!(
            !count_live_event(&mut o, &old),
            "already counted by the overview"
        );
        let done = event(
            "job.completed",
            "2026-12-01T12:00:01.700Z",
            json!({"type": "sleep"}),
        );
        assert!(count_live_event(&mut o, &done));
        assert_eq!(o.totals.completed, 1);
        assert_eq!(o.by_type[0].counters.completed, 1);
        assert_eq!(o.throughput[1].completed, 1);
        let failed = event(
            "job.failed",
            "2026-12-01T12:00:03.100Z",
            json!({"type": "other", "willRetry": true}),
        );
        assert!(count_live_event(&mut o, &failed));
        assert_eq!((o.totals.failed, o.totals.retried), (1, 1));
        // Two seconds later: the window moved by two buckets.
        assert_eq!(o.throughput.len(), 2);
        assert_eq!(
            o.throughput[1].start.to_rfc3339(),
            "2026-12-01T12:00:03+00:00"
        );
        assert_eq!(o.throughput[1].failed, 1);
        assert_eq!(o.throughput[0].completed, 0);
    }
}
