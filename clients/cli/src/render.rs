//! Human layouts of contract types: aligned columns, compact UTC times, `-` for what is absent.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::args::JobsArgs;
use crate::contracts::event_envelope::{EventEnvelope, EventType};
use crate::contracts::job::{Job, JobError};
use crate::contracts::job_attempt::JobAttempt;
use crate::contracts::job_detail::JobDetail;
use crate::contracts::job_page::JobPage;

/// A page of jobs as a table, then the command for the next page, if any. `args` are the
/// filters the page was fetched with (repeated in that command).
pub fn render_job_page(page: &JobPage, args: &JobsArgs) -> String {
    let mut text = if page.items.is_empty() {
        "No jobs found.\n".to_owned()
    } else {
        table(
            "",
            Some(&["ID", "TYPE", "STATUS", "ATTEMPTS", "CREATED", "UPDATED"]),
            page.items.iter().map(job_row).collect(),
        )
    };
    if let Some(cursor) = &page.next_cursor {
        let mut command = String::from("observatory jobs");
        for (flag, value) in [
            ("--status", args.status.clone()),
            ("--type", args.job_type.clone()),
            ("--limit", args.limit.map(|l| l.to_string())),
            ("--cursor", Some(cursor.to_string())),
        ] {
            if let Some(value) = value {
                command.push_str(&format!(" {flag} {}", shell_word(&value)));
            }
        }
        text.push_str(&format!("\nMore jobs: {command}\n"));
    }
    text
}

fn job_row(job: &Job) -> Vec<String> {
    vec![
        job.id.to_string(),
        clean(job.type_.as_str()),
        job.status.to_string(),
        format!("{}/{}", job.attempts, job.max_attempts),
        time(&job.created_at),
        time(&job.updated_at),
    ]
}

/// One job: a header block, its attempts as a table, and its events as a timeline.
pub fn render_job_detail(detail: &JobDetail) -> String {
    let job = &detail.job;
    let optional_time = |label: &str, t: &Option<DateTime<Utc>>| {
        t.as_ref().map(|t| vec![label.to_owned(), time(t)])
    };
    let header: Vec<Vec<String>> = [
        Some(vec!["Type:".into(), clean(job.type_.as_str())]),
        Some(vec!["Status:".into(), job.status.to_string()]),
        Some(vec![
            "Attempts:".into(),
            format!("{} of {}", job.attempts, job.max_attempts),
        ]),
        Some(vec!["Created:".into(), time(&job.created_at)]),
        Some(vec!["Updated:".into(), time(&job.updated_at)]),
        optional_time("Started:", &job.started_at),
        optional_time("Finished:", &job.finished_at),
        optional_time("Next attempt:", &job.next_attempt_at),
        job.last_error
            .as_ref()
            .map(|e| vec!["Last error:".into(), job_error(e)]),
        Some(vec![
            "Correlation:".into(),
            clean(job.correlation_id.as_str()),
        ]),
        Some(vec!["Payload:".into(), json(&job.payload)]),
        (!job.result.is_empty()).then(|| vec!["Result:".into(), json(&job.result)]),
    ]
    .into_iter()
    .flatten()
    .collect();

    let mut text = format!("Job {}\n", job.id);
    text.push_str(&table("  ", None, header));

    text.push_str("\nAttempts\n");
    if detail.attempts.is_empty() {
        text.push_str("  (none yet)\n");
    } else {
        let mut attempts: Vec<&JobAttempt> = detail.attempts.iter().collect();
        attempts.sort_by_key(|a| a.attempt);
        text.push_str(&table(
            "  ",
            Some(&[
                "#", "OUTCOME", "STARTED", "FINISHED", "DURATION", "WORKER", "ERROR",
            ]),
            attempts.into_iter().map(attempt_row).collect(),
        ));
    }

    text.push_str("\nTimeline\n");
    if detail.events.is_empty() {
        text.push_str("  (no events yet)\n");
    } else {
        let mut events: Vec<&EventEnvelope> = detail.events.iter().collect();
        events.sort_by_key(|e| e.occurred_at);
        text.push_str(&table(
            "  ",
            None,
            events
                .into_iter()
                .map(|e| {
                    vec![
                        precise_time(&e.occurred_at),
                        e.event_type.to_string(),
                        clean(e.producer.service.as_str()),
                        event_summary(e),
                    ]
                })
                .collect(),
        ));
    }
    text
}

fn attempt_row(attempt: &JobAttempt) -> Vec<String> {
    vec![
        attempt.attempt.to_string(),
        attempt.outcome.to_string(),
        time(&attempt.started_at),
        attempt.finished_at.as_ref().map_or_else(dash, time),
        attempt.duration_ms.map_or_else(dash, duration),
        attempt.worker.as_deref().map_or_else(dash, clean),
        attempt.error.as_ref().map_or_else(dash, job_error),
    ]
}

/// What an event says beyond its type, read from its payload (`schemas/events/`).
fn event_summary(event: &EventEnvelope) -> String {
    let payload = &event.payload;
    let number = |key: &str| payload.get(key).and_then(Value::as_u64);
    let text = |key: &str| payload.get(key).and_then(Value::as_str).map(clean);
    let error = |key: &str| {
        payload.get(key).and_then(Value::as_object).map(|e| {
            let field = |k: &str| e.get(k).and_then(Value::as_str).map(clean);
            match (field("code"), field("message")) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (code, message) => code.or(message).unwrap_or_else(|| "error".into()),
            }
        })
    };
    let attempt = number("attempt").map(|n| format!("attempt {n}"));
    let parts: Vec<Option<String>> = match event.event_type {
        EventType::JobCreated => vec![
            text("type").map(|t| format!("type {t}")),
            number("maxAttempts").map(|n| format!("up to {n} attempts")),
        ],
        EventType::JobStarted => vec![attempt],
        EventType::JobCompleted => vec![
            attempt,
            payload
                .get("durationMs")
                .and_then(Value::as_f64)
                .map(duration),
        ],
        EventType::JobFailed => vec![
            attempt,
            error("error"),
            payload
                .get("willRetry")
                .and_then(Value::as_bool)
                .map(|retry| if retry { "will retry" } else { "no retry" }.to_owned()),
        ],
        EventType::JobDeadLettered => vec![
            number("attempts").map(|n| format!("after {n} attempts")),
            text("reason"),
            error("lastError"),
        ],
    };
    parts.into_iter().flatten().collect::<Vec<_>>().join(", ")
}

fn job_error(error: &JobError) -> String {
    let text = format!("{}: {}", clean(&error.code), clean(&error.message));
    match error.attempt {
        // Some messages say which attempt already.
        Some(attempt) if !text.contains(&format!("(attempt {attempt})")) => {
            format!("{text} (attempt {attempt})")
        }
        _ => text,
    }
}

/// Rows in aligned columns separated by two spaces, each line starting with `indent`; the last
/// column is not padded.
fn table(indent: &str, header: Option<&[&str]>, rows: Vec<Vec<String>>) -> String {
    let mut lines: Vec<Vec<String>> = Vec::with_capacity(rows.len() + 1);
    if let Some(header) = header {
        lines.push(header.iter().map(|h| (*h).to_owned()).collect());
    }
    lines.extend(rows);
    let columns = lines.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            lines
                .iter()
                .filter_map(|l| l.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for line in &lines {
        let mut out = String::from(indent);
        for (c, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if c + 1 < line.len() {
                let pad = widths[c].saturating_sub(cell.chars().count()) + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        text.push_str(out.trim_end());
        text.push('\n');
    }
    text
}

/// `2026-11-23 12:00:04Z`.
fn time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// `2026-11-23 12:00:04.500Z`, for the order of events within a second.
fn precise_time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.3fZ").to_string()
}

/// `350 ms`, `1.5 s`.
pub fn duration(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

fn json(map: &Map<String, Value>) -> String {
    clean(&Value::Object(map.clone()).to_string())
}

fn dash() -> String {
    "-".to_owned()
}

/// Server-provided text on one line, without control characters (no terminal escapes).
pub fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `value` as one shell word (quoted unless it is made of safe characters only).
fn shell_word(value: &str) -> String {
    let safe = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.=:/+,".contains(c));
    if safe {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn jobs_args(status: Option<&str>, limit: Option<u64>) -> JobsArgs {
        JobsArgs {
            status: status.map(str::to_owned),
            job_type: None,
            id_prefix: None,
            limit,
            cursor: None,
            read_model: crate::DEFAULT_READ_MODEL_URL.to_owned(),
            json: false,
        }
    }

    fn page(value: Value) -> JobPage {
        serde_json::from_value(value).expect("a valid JobPage")
    }

    fn detail(value: Value) -> JobDetail {
        serde_json::from_value(value).expect("a valid JobDetail")
    }

    /// From schemas/read-model/job-page.examples.json.
    fn example_page() -> JobPage {
        page(json!({
            "items": [
                {"id": "e3a9c5d1-6b2f-4f7a-8c0e-1d5b9a2f4e83", "type": "compute", "status": "COMPLETED",
                 "payload": {"iterations": 1000000, "seed": 42}, "attempts": 2, "maxAttempts": 5,
                 "createdAt": "2026-11-23T12:00:00Z", "updatedAt": "2026-11-23T12:00:04.500Z",
                 "startedAt": "2026-11-23T12:00:01Z", "finishedAt": "2026-11-23T12:00:04.500Z",
                 "lastError": {"code": "timeout", "message": "attempt exceeded 2000 ms", "attempt": 1},
                 "result": {"digest": "9f86d0"}, "correlationId": "req-8f14e45fceea167a"},
                {"id": "7c1e9f20-3a5b-4d8c-b2e1-94f0a6d3c572", "type": "fail", "status": "RETRYING",
                 "payload": {"failFirstAttempts": 1}, "attempts": 1, "maxAttempts": 3,
                 "createdAt": "2026-11-23T12:00:00Z", "updatedAt": "2026-11-23T12:00:01.350Z",
                 "correlationId": "req-8f14e45fceea167a"},
                {"id": "0b4bd3a4-94b4-4b4e-9a35-3a1d6f6c9d11", "type": "sleep", "status": "DEAD_LETTERED",
                 "payload": {}, "attempts": 10, "maxAttempts": 10,
                 "createdAt": "2026-11-22T23:59:59.999Z", "updatedAt": "2026-11-23T00:00:00Z",
                 "correlationId": "c"}
            ],
            "nextCursor": "c1.1795435200000000.0b4bd3a494b44b4e9a353a1d6f6c9d11"
        }))
    }

    #[test]
    fn job_page_renders_as_a_table_with_the_next_page_command() {
        assert_eq!(
            render_job_page(&example_page(), &jobs_args(Some("retrying"), Some(3))),
            "\
ID                                    TYPE     STATUS         ATTEMPTS  CREATED               UPDATED
e3a9c5d1-6b2f-4f7a-8c0e-1d5b9a2f4e83  compute  COMPLETED      2/5       2026-11-23 12:00:00Z  2026-11-23 12:00:04Z
7c1e9f20-3a5b-4d8c-b2e1-94f0a6d3c572  fail     RETRYING       1/3       2026-11-23 12:00:00Z  2026-11-23 12:00:01Z
0b4bd3a4-94b4-4b4e-9a35-3a1d6f6c9d11  sleep    DEAD_LETTERED  10/10     2026-11-22 23:59:59Z  2026-11-23 00:00:00Z

More jobs: observatory jobs --status retrying --limit 3 --cursor c1.1795435200000000.0b4bd3a494b44b4e9a353a1d6f6c9d11
"
        );
    }

    #[test]
    fn empty_and_last_pages_render() {
        let args = jobs_args(None, None);
        assert_eq!(
            render_job_page(&page(json!({"items": []})), &args),
            "No jobs found.\n"
        );
        assert_eq!(
            render_job_page(
                &page(
                    json!({"items": [], "nextCursor": "c1.1795435100000000.7c1e9f203a5b4d8cb2e194f0a6d3c572"})
                ),
                &args
            ),
            "No jobs found.\n\nMore jobs: observatory jobs --cursor c1.1795435100000000.7c1e9f203a5b4d8cb2e194f0a6d3c572\n"
        );
        let mut last = example_page();
        last.items.truncate(1);
        last.next_cursor = None;
        assert_eq!(
            render_job_page(&last, &args),
            "\
ID                                    TYPE     STATUS     ATTEMPTS  CREATED               UPDATED
e3a9c5d1-6b2f-4f7a-8c0e-1d5b9a2f4e83  compute  COMPLETED  2/5       2026-11-23 12:00:00Z  2026-11-23 12:00:04Z
"
        );
    }

    /// Built from schemas/read-model/job-detail.examples.json ("a retrying job"), with events
    /// out of order and one of each kind.
    fn example_detail() -> JobDetail {
        let producer = json!({"service": "processor", "instanceId": "processor-5b8c7d9f4-q7w2z", "version": "1.4.2"});
        let event = |t: &str, id: &str, at: &str, payload: Value| {
            json!({"contractVersion": "1.0.0", "eventType": t, "eventId": id, "occurredAt": at,
                   "producer": producer, "correlationId": "req-8f14e45fceea167a",
                   "idempotencyKey": format!("k:{t}"), "payload": payload})
        };
        let job_id = "7c1e9f20-3a5b-4d8c-b2e1-94f0a6d3c572";
        detail(json!({
            "job": {"id": job_id, "type": "fail", "status": "RETRYING",
                    "payload": {"failFirstAttempts": 1}, "attempts": 1, "maxAttempts": 3,
                    "createdAt": "2026-11-23T12:00:00Z", "updatedAt": "2026-11-23T12:00:01.350Z",
                    "startedAt": "2026-11-23T12:00:01Z", "nextAttemptAt": "2026-11-23T12:00:03Z",
                    "lastError": {"code": "intentional-failure",
                                  "message": "fail job: attempt 1 of 3 fails on purpose", "attempt": 1},
                    "correlationId": "req-8f14e45fceea167a"},
            "attempts": [
                {"jobId": job_id, "attempt": 2, "outcome": "RUNNING", "startedAt": "2026-11-23T12:00:03Z"},
                {"jobId": job_id, "attempt": 1, "outcome": "FAILED", "startedAt": "2026-11-23T12:00:01Z",
                 "finishedAt": "2026-11-23T12:00:01.350Z", "durationMs": 350.4,
                 "error": {"code": "intentional-failure", "message": "fail job: attempt 1 of 3 fails on purpose",
                           "attempt": 1},
                 "worker": "processor-5b8c7d9f4-q7w2z"}
            ],
            "events": [
                event("job.failed", "1f6a3d8c-2e9b-4c5f-a7d0-8b4e2c6f9a17", "2026-11-23T12:00:01.350Z",
                      json!({"jobId": job_id, "type": "fail", "attempt": 1, "maxAttempts": 3,
                             "error": {"code": "intentional-failure", "message": "fails\non purpose"},
                             "willRetry": true, "jobStatus": "RETRYING"})),
                event("job.created", "5f0c2a7e-1d3b-4c8e-9f6a-2b7d8e9c0a14", "2026-11-23T12:00:00.010Z",
                      json!({"jobId": job_id, "type": "fail", "payload": {}, "maxAttempts": 3})),
                event("job.started", "a8d4f6b2-9e1c-4a3b-8f5d-6c2e0b7a9d31", "2026-11-23T12:00:01Z",
                      json!({"jobId": job_id, "attempt": 1})),
                event("job.completed", "c2b7e9a4-5f8d-4e1a-9b3c-7d0f6a2e8b56", "2026-11-23T12:00:04.500Z",
                      json!({"jobId": job_id, "attempt": 2, "durationMs": 1500.3})),
                event("job.dead-lettered", "9d2e4b6f-8a1c-4f3e-b5d7-0c9a2e6f4b88", "2026-11-23T12:00:09Z",
                      json!({"jobId": job_id, "attempts": 3, "reason": "attempts-exhausted",
                             "lastError": {"code": "intentional-failure", "message": "fails on purpose"}}))
            ]
        }))
    }

    #[test]
    fn job_detail_renders_header_attempts_and_timeline() {
        assert_eq!(
            render_job_detail(&example_detail()),
            "\
Job 7c1e9f20-3a5b-4d8c-b2e1-94f0a6d3c572
  Type:          fail
  Status:        RETRYING
  Attempts:      1 of 3
  Created:       2026-11-23 12:00:00Z
  Updated:       2026-11-23 12:00:01Z
  Started:       2026-11-23 12:00:01Z
  Next attempt:  2026-11-23 12:00:03Z
  Last error:    intentional-failure: fail job: attempt 1 of 3 fails on purpose (attempt 1)
  Correlation:   req-8f14e45fceea167a
  Payload:       {\"failFirstAttempts\":1}

Attempts
  #  OUTCOME  STARTED               FINISHED              DURATION  WORKER                     ERROR
  1  FAILED   2026-11-23 12:00:01Z  2026-11-23 12:00:01Z  350 ms    processor-5b8c7d9f4-q7w2z  intentional-failure: fail job: attempt 1 of 3 fails on purpose (attempt 1)
  2  RUNNING  2026-11-23 12:00:03Z  -                     -         -                          -

Timeline
  2026-11-23 12:00:00.010Z  job.created        processor  type fail, up to 3 attempts
  2026-11-23 12:00:01.000Z  job.started        processor  attempt 1
  2026-11-23 12:00:01.350Z  job.failed         processor  attempt 1, intentional-failure: fails on purpose, will retry
  2026-11-23 12:00:04.500Z  job.completed      processor  attempt 2, 1.5 s
  2026-11-23 12:00:09.000Z  job.dead-lettered  processor  after 3 attempts, attempts-exhausted, intentional-failure: fails on purpose
"
        );
    }

    #[test]
    fn a_minimal_job_detail_renders_without_optional_fields() {
        let minimal = detail(json!({
            "job": {"id": "0b4bd3a4-94b4-4b4e-9a35-3a1d6f6c9d11", "type": "sleep", "status": "COMPLETED",
                    "payload": {}, "attempts": 0, "maxAttempts": 3,
                    "createdAt": "2026-11-23T12:00:00Z", "updatedAt": "2026-11-23T12:00:00Z",
                    "result": {"sleptMs": 0}, "correlationId": "req-1"},
            "attempts": [],
            "events": [{"contractVersion": "1.0.0", "eventType": "job.failed",
                        "eventId": "1f6a3d8c-2e9b-4c5f-a7d0-8b4e2c6f9a17",
                        "occurredAt": "2026-11-23T12:00:00Z",
                        "producer": {"service": "p", "instanceId": "i", "version": "1"},
                        "correlationId": "req-1", "idempotencyKey": "k", "payload": {}}]
        }));
        assert_eq!(
            render_job_detail(&minimal),
            "\
Job 0b4bd3a4-94b4-4b4e-9a35-3a1d6f6c9d11
  Type:         sleep
  Status:       COMPLETED
  Attempts:     0 of 3
  Created:      2026-11-23 12:00:00Z
  Updated:      2026-11-23 12:00:00Z
  Correlation:  req-1
  Payload:      {}
  Result:       {\"sleptMs\":0}

Attempts
  (none yet)

Timeline
  2026-11-23 12:00:00.000Z  job.failed  p
"
        );
        let mut empty = minimal;
        empty.events.clear();
        assert!(render_job_detail(&empty).ends_with("Timeline\n  (no events yet)\n"));
    }

    #[test]
    fn tables_tolerate_ragged_and_empty_input() {
        assert_eq!(table("", None, vec![]), "");
        assert_eq!(
            table("> ", Some(&["A", "B"]), vec![vec!["long".into()], vec![]]),
            "> A     B\n> long\n>\n"
        );
        assert_eq!(duration(999.4), "999 ms");
        assert_eq!(duration(61_000.0), "61.0 s");
    }
}
