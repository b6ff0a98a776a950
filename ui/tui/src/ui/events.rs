//! The live tail of events: newest on top; paused, it stays still (new events are counted) and
//! older events page in from the event log as you scroll down.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Cell, Row, Table};
use serde_json::Value;

use super::{block, placeholder, row_style};
use crate::app::{App, Freshness, View};
use crate::contracts::event_envelope::{EventEnvelope, EventType};
use crate::contracts::job::JobStatus;
use crate::text::{clean, clock, count, short_id};
use crate::theme::Theme;

pub fn draw(frame: &mut Frame, app: &App, body: Rect) {
    let theme = &app.settings.theme;
    let events = &app.events;
    let mut title = String::from("Events");
    if let Some(t) = events.type_filter {
        title.push_str(&format!(" · {t}"));
    }
    title.push_str(if events.paused {
        " · PAUSED (space resumes)"
    } else {
        " · live, newest on top"
    });
    if !events.held.is_empty() {
        title.push_str(&format!(" · {} new", count(events.held.len() as u64)));
    }
    // The tail is as live as the stream; the first page says whether the log could be read.
    let freshness = match (&events.first.error, events.items.is_empty()) {
        (Some(error), true) => Freshness::Failed(error.clone()),
        (None, true) if events.first.loading => Freshness::Loading,
        _ => Freshness::Fresh,
    };
    let mut outer = block(theme, title, &freshness);
    if events.older.loading {
        outer = outer.title_bottom(Line::styled(" loading older… ", theme.dim()));
    } else if let Some(error) = &events.older.error {
        outer = outer.title_bottom(Line::styled(
            format!(" older events failed: {} ", clean(&error.to_string())),
            theme.error(),
        ));
    } else if events.paused && !events.more && !events.items.is_empty() {
        outer = outer.title_bottom(Line::styled(" the oldest event ", theme.dim()));
    }
    let visible = crate::ui::layout::list_rows(View::Events, app.size);
    let header = Row::new(["TIME", "EVENT", "JOB", "WHAT"]).style(theme.header());
    let rows = events
        .items
        .iter()
        .enumerate()
        .skip(events.cursor.offset)
        .take(visible)
        .map(|(i, e)| {
            let job = job_id(e).map(|id| short_id(&id)).unwrap_or_default();
            Row::new(vec![
                Cell::from(format!(
                    "{}.{:03}",
                    clock(&e.occurred_at),
                    e.occurred_at.timestamp_subsec_millis()
                )),
                Cell::from(e.event_type.to_string()).style(style(theme, e)),
                Cell::from(job),
                Cell::from(clean(&summary(e))),
            ])
            .style(row_style(
                theme,
                i == events.cursor.selected && events.paused,
            ))
        });
    let table = Table::new(
        rows,
        [
            Constraint::Length(12),
            Constraint::Length(17),
            Constraint::Length(8),
            Constraint::Min(10),
        ],
    )
    .header(header)
    .block(outer.clone());
    frame.render_widget(table, body);
    if events.items.is_empty() {
        let below = super::rows_area(body);
        placeholder(
            frame,
            theme,
            &freshness,
            "No events yet: they appear here as jobs move.",
            below,
        );
    }
}

fn job_id(event: &EventEnvelope) -> Option<uuid::Uuid> {
    event
        .payload
        .get("jobId")
        .and_then(Value::as_str)
        .and_then(|id| uuid::Uuid::try_parse(id).ok())
}

/// The colour of an event: that of the status it leads to.
pub fn style(theme: &Theme, event: &EventEnvelope) -> Style {
    match event.event_type {
        EventType::JobCreated => theme.status(JobStatus::Pending),
        EventType::JobStarted => theme.status(JobStatus::Running),
        EventType::JobCompleted => theme.status(JobStatus::Completed),
        EventType::JobFailed => theme.status(JobStatus::Failed),
        EventType::JobDeadLettered => theme.status(JobStatus::DeadLettered),
    }
}

/// What an event says, in a few words (from its payload, whatever version sent it).
pub fn summary(event: &EventEnvelope) -> String {
    let p = &event.payload;
    let text = |key: &str| p.get(key).and_then(Value::as_str).unwrap_or("?").to_owned();
    let number = |key: &str| p.get(key).and_then(Value::as_u64);
    let error = || {
        p.get("error")
            .or_else(|| p.get("lastError"))
            .map(|e| {
                format!(
                    "{}: {}",
                    e.get("code").and_then(Value::as_str).unwrap_or("?"),
                    e.get("message").and_then(Value::as_str).unwrap_or("")
                )
            })
            .unwrap_or_default()
    };
    match event.event_type {
        EventType::JobCreated => format!(
            "{}, up to {} attempts",
            text("type"),
            number("maxAttempts").unwrap_or(0)
        ),
        EventType::JobStarted => format!(
            "attempt {}/{} on {}",
            number("attempt").unwrap_or(0),
            number("maxAttempts").unwrap_or(0),
            p.get("worker").and_then(Value::as_str).unwrap_or("?")
        ),
        EventType::JobCompleted => format!(
            "attempt {} in {}",
            number("attempt").unwrap_or(0),
            p.get("durationMs")
                .and_then(Value::as_f64)
                .map(crate::text::duration)
                .unwrap_or_else(|| "?".into())
        ),
        EventType::JobFailed => {
            let then = match (
                p.get("willRetry").and_then(Value::as_bool),
                p.get("nextAttemptAt")
                    .and_then(Value::as_str)
                    .and_then(|t| t.parse::<chrono::DateTime<chrono::Utc>>().ok()),
            ) {
                (Some(true), Some(at)) => format!(" · retry at {}", clock(&at)),
                (Some(true), None) => " · will retry".to_owned(),
                _ => format!(" · {}", text("jobStatus")),
            };
            format!(
                "attempt {}: {}{then}",
                number("attempt").unwrap_or(0),
                error()
            )
        }
        EventType::JobDeadLettered => format!(
            "after {} attempts ({}) {}",
            number("attempts").unwrap_or(0),
            text("reason"),
            error()
        ),
    }
}
