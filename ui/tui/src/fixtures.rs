//! Contract values for the tests: an app at a fixed instant, jobs, events, pages and answers,
//! each valid under its schema (they deserialize through the generated types).

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::app::{Answer, App, FetchError, Fetched, Msg, Request, Settings};
use crate::contracts::api_error::ApiError;
use crate::contracts::event_envelope::EventEnvelope;
use crate::contracts::job::Job;
use crate::theme::Theme;

pub const READ_MODEL: &str = "http://127.0.0.1:8080";

/// The tests' "now": 2026-12-01 12:00:30 UTC.
pub fn now() -> DateTime<Utc> {
    "2026-12-01T12:00:30Z".parse().expect("an instant")
}

pub fn at(seconds_before_now: i64) -> DateTime<Utc> {
    now() - TimeDelta::seconds(seconds_before_now)
}

pub fn settings() -> Settings {
    Settings {
        read_model_url: READ_MODEL.into(),
        gateway_url: "http://127.0.0.1:3000".into(),
        refresh: Duration::from_secs(1),
        read_only: false,
        can_open_browser: false,
        theme: Theme::COLOR,
    }
}

pub fn app(size: (u16, u16)) -> App {
    App::new(settings(), now(), size)
}

/// A job id whose short form is `short` (8 hex digits) and the rest `n`.
pub fn id(short: &str, n: u32) -> Uuid {
    Uuid::parse_str(&format!("{short}-0000-4000-8000-{n:012}")).expect("a uuid")
}

pub fn job(id: Uuid, job_type: &str, status: &str, created: DateTime<Utc>) -> Job {
    let mut value = json!({
        "id": id, "type": job_type, "status": status, "payload": {"durationMs": 1500},
        "attempts": 0, "maxAttempts": 3, "createdAt": created, "updatedAt": created,
        "correlationId": "req-1",
    });
    let started = created + TimeDelta::milliseconds(20);
    let finished = started + TimeDelta::milliseconds(1500);
    match status {
        "RUNNING" => {
            value["attempts"] = json!(1);
            value["startedAt"] = json!(started);
        }
        "COMPLETED" => {
            value["attempts"] = json!(1);
            value["startedAt"] = json!(started);
            value["finishedAt"] = json!(finished);
            value["result"] = json!({"sleptMs": 1500});
        }
        "RETRYING" | "DEAD_LETTERED" | "FAILED" => {
            value["attempts"] = json!(if status == "RETRYING" { 1 } else { 3 });
            value["startedAt"] = json!(started);
            value["lastError"] = json!({"code": "intentional-failure", "message": "fail job: fails on purpose", "attempt": 1});
            if status == "RETRYING" {
                value["nextAttemptAt"] = json!(finished + TimeDelta::seconds(2));
            } else {
                value["finishedAt"] = json!(finished);
            }
        }
        _ => {}
    }
    serde_json::from_value(value).expect("a valid job")
}

pub fn event(event_type: &str, job_id: Uuid, at: DateTime<Utc>, payload: Value) -> EventEnvelope {
    let mut payload = payload;
    payload["jobId"] = json!(job_id);
    if payload.get("type").is_none() {
        payload["type"] = json!("sleep");
    }
    serde_json::from_value(json!({
        "contractVersion": "1.0.0", "eventType": event_type,
        // Deterministic: the order of events at the same instant follows their ids.
        "eventId": Uuid::new_v5(&job_id, format!("{event_type}@{at}").as_bytes()),
        "occurredAt": at,
        "producer": {"service": "processor", "instanceId": "processor-1", "version": "0.1.0"},
        "correlationId": "req-1", "idempotencyKey": format!("{job_id}:{event_type}"),
        "payload": payload,
    }))
    .expect("a valid envelope")
}

pub fn created(job_id: Uuid, at: DateTime<Utc>) -> EventEnvelope {
    event(
        "job.created",
        job_id,
        at,
        json!({"payload": {"durationMs": 1500}, "maxAttempts": 3, "submittedAt": at}),
    )
}

pub fn started(job_id: Uuid, attempt: u64, at: DateTime<Utc>) -> EventEnvelope {
    event(
        "job.started",
        job_id,
        at,
        json!({"attempt": attempt, "maxAttempts": 3, "startedAt": at, "worker": "processor-1"}),
    )
}

pub fn completed(job_id: Uuid, at: DateTime<Utc>) -> EventEnvelope {
    event(
        "job.completed",
        job_id,
        at,
        json!({"attempt": 1, "completedAt": at, "durationMs": 1500.0, "result": {"sleptMs": 1500}}),
    )
}

pub fn page(jobs: Vec<Job>, next: Option<&str>) -> Answer {
    let mut value = json!({ "items": jobs });
    if let Some(next) = next {
        value["nextCursor"] = json!(next);
    }
    Answer::Jobs(serde_json::from_value(value).expect("a job page"))
}

/// An overview generated `now`, with 60 one-second buckets.
pub fn overview() -> Answer {
    let buckets: Vec<Value> = (0..60)
        .map(|i| {
            let start = now() - TimeDelta::seconds(59 - i);
            json!({"start": start, "seconds": 1, "submitted": (i % 7) * 3, "completed": (i % 5) * 4, "failed": i64::from(i % 11 == 0)})
        })
        .collect();
    Answer::Overview(
        serde_json::from_value(json!({
            "generatedAt": now(),
            "totals": {"submitted": 1250, "started": 1262, "completed": 1190, "failed": 48, "retried": 36, "deadLettered": 12},
            "byType": [
                {"type": "sleep", "counters": {"submitted": 900, "started": 900, "completed": 900, "failed": 0, "retried": 0, "deadLettered": 0}},
                {"type": "compute", "counters": {"submitted": 300, "started": 300, "completed": 290, "failed": 0, "retried": 0, "deadLettered": 0}},
                {"type": "fail", "counters": {"submitted": 50, "started": 62, "completed": 0, "failed": 48, "retried": 36, "deadLettered": 12}}
            ],
            "throughput": buckets,
        }))
        .expect("an overview"),
    )
}

pub fn queues() -> Answer {
    Answer::Queues(
        serde_json::from_value(json!({
            "observedAt": now(),
            "queues": [
                {"name": "observatory.jobs", "messages": 12, "consumers": 1},
                {"name": "observatory.metrics-engine", "messages": 0, "consumers": 1},
                {"name": "observatory.dead-letters", "messages": 3, "consumers": 0}
            ]
        }))
        .expect("queue depths"),
    )
}

pub fn alerts(source: &str) -> Answer {
    let alerts = if source == "alertmanager" {
        json!([
            {"name": "ObservatoryDeadLettersIncreasing", "severity": "warning", "state": "active",
             "summary": "Dead letters are increasing", "startsAt": at(600), "labels": {}, "annotations": {}},
            {"name": "ObservatoryProcessorDown", "severity": "critical", "state": "active",
             "summary": "No processor has been up for 2 minutes", "startsAt": at(120), "labels": {}, "annotations": {}}
        ])
    } else {
        json!([])
    };
    let mut value = json!({"source": source, "alerts": alerts});
    if source == "unavailable" {
        value["detail"] = json!("GET http://127.0.0.1:9093/api/v2/alerts: connection refused");
    }
    Answer::Alerts(serde_json::from_value(value).expect("an alert list"))
}

pub fn api_error(status: u16, code: &str, message: &str, details: Value) -> FetchError {
    let error: ApiError = serde_json::from_value(json!({
        "code": code, "message": message, "correlationId": "req-1", "details": details,
    }))
    .expect("an api error");
    FetchError::Api { status, error }
}

pub fn fetched(request: Request, answer: Result<Answer, FetchError>) -> Msg {
    Msg::Fetched(Box::new(Fetched { request, answer }))
}

pub fn unreachable(request: Request) -> Msg {
    fetched(
        request,
        Err(FetchError::Unreachable(
            "Connection refused (os error 111)".into(),
        )),
    )
}

/// The first page of the unfiltered jobs list.
pub fn first_jobs() -> Request {
    Request::Jobs {
        query: crate::app::JobsQuery::default(),
        cursor: None,
        role: crate::app::PageRole::First,
    }
}

/// The newest page of the unfiltered event log.
pub fn first_events() -> Request {
    Request::Events {
        event_type: None,
        cursor: None,
        after: None,
        before: None,
        role: crate::app::PageRole::First,
    }
}

pub fn first_dead_letters() -> Request {
    Request::DeadLetters {
        cursor: None,
        role: crate::app::PageRole::First,
    }
}

/// An event page of `value` (`{"items": [...], "nextCursor": ...}`).
pub fn event_page(value: Value) -> Answer {
    Answer::Events(serde_json::from_value(value).expect("an event page"))
}

/// A dead letter page of `value`.
pub fn dead_letter_page(value: Value) -> Answer {
    Answer::DeadLetters(serde_json::from_value(value).expect("a dead letter page"))
}

/// `count` completed sleep jobs, newest first, ten seconds and more ago.
pub fn completed_jobs(count: u32) -> Vec<Job> {
    (0..count)
        .map(|i| {
            job(
                id("0b4bd3a4", i),
                "sleep",
                "COMPLETED",
                at(i64::from(i) + 10),
            )
        })
        .collect()
}
