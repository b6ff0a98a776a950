//! One job: every field, the payload and result pretty-printed, each attempt with its worker,
//! times and error, and the event timeline with the time between events. It follows the job
//! live until the job and its timeline have reached their end.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use serde_json::Value;

use super::{block, placeholder};
use crate::app::{App, FetchError, Freshness};
use crate::contracts::event_envelope::EventEnvelope;
use crate::contracts::job_detail::JobDetail;
use crate::text::{clean, json_lines, precise, span};

pub fn draw(frame: &mut Frame, app: &App, body: Rect) {
    let theme = &app.settings.theme;
    let view = &app.job;
    let freshness = app.freshness(&view.detail.fetch, view.detail.data.is_some());
    let Some(id) = view.id else {
        let outer = block(theme, "Job", &Freshness::Fresh);
        let inner = outer.inner(body);
        frame.render_widget(outer, body);
        placeholder(
            frame,
            theme,
            &Freshness::Fresh,
            "No job open: select one in Jobs (2) and press Enter, or type / and its id there.",
            inner,
        );
        return;
    };
    let following = if view.detail.data.is_none() {
        ""
    } else if view.finished() {
        " · finished"
    } else {
        " · following live"
    };
    let outer = block(theme, format!("Job {id}{following}"), &freshness);
    let inner = outer.inner(body);
    frame.render_widget(outer, body);
    if view.detail.data.is_none() {
        let freshness = match freshness {
            Freshness::Failed(FetchError::Api { status: 404, .. }) => {
                return placeholder(
                    frame,
                    theme,
                    &Freshness::Fresh,
                    &format!("No job {id} (yet): a job appears once the processor has stored it."),
                    inner,
                );
            }
            other => other,
        };
        placeholder(frame, theme, &freshness, "", inner);
        return;
    }
    let lines = lines(app, inner.width);
    let scroll = view.scroll.min(lines.len().saturating_sub(1));
    let scroll = u16::try_from(scroll).unwrap_or(u16::MAX);
    frame.render_widget(Paragraph::new(lines).scroll((scroll, 0)), inner);
}

/// The view's content, one entry per screen line (`width` columns).
pub fn lines(app: &App, width: u16) -> Vec<Line<'static>> {
    let Some(detail) = app.job.detail.data.as_deref() else {
        return Vec::new();
    };
    let theme = &app.settings.theme;
    let job = &detail.job;
    let mut out = Vec::new();
    let field = |label: &str, value: String| {
        Line::from(vec![
            Span::styled(format!("{label:<13}"), theme.dim()),
            Span::raw(value),
        ])
    };
    out.push(Line::from(vec![
        Span::styled(format!("{:<13}", "status"), theme.dim()),
        Span::styled(job.status.to_string(), theme.status(job.status)),
    ]));
    out.push(field("type", clean(job.type_.as_str())));
    out.push(field(
        "attempts",
        format!("{} of {}", job.attempts, job.max_attempts),
    ));
    out.push(field("created", precise(&job.created_at)));
    out.push(field("updated", precise(&job.updated_at)));
    if let Some(t) = &job.started_at {
        out.push(field("started", precise(t)));
    }
    if let Some(t) = &job.finished_at {
        out.push(field("finished", precise(t)));
    }
    match (&job.started_at, &job.finished_at) {
        (Some(a), Some(b)) => out.push(field("took", span(a, b))),
        (Some(a), None) => out.push(field("running for", span(a, &app.now))),
        _ => {}
    }
    if let Some(t) = &job.next_attempt_at {
        out.push(field(
            "next attempt",
            format!("{} (in {})", precise(t), span(&app.now, t)),
        ));
    }
    if let Some(e) = &job.last_error {
        out.push(Line::from(vec![
            Span::styled(format!("{:<13}", "last error"), theme.dim()),
            Span::styled(clean(&format!("{}: {}", e.code, e.message)), theme.failed()),
        ]));
    }
    out.push(field("correlation", clean(job.correlation_id.as_str())));
    section(&mut out, theme, "Payload");
    out.extend(indented(json_lines(&Value::Object(job.payload.clone()))));
    if !job.result.is_empty() {
        section(&mut out, theme, "Result");
        out.extend(indented(json_lines(&Value::Object(job.result.clone()))));
    }
    attempts(&mut out, app, detail);
    timeline(&mut out, app, detail, width);
    out
}

fn section(out: &mut Vec<Line<'static>>, theme: &crate::theme::Theme, title: &str) {
    out.push(Line::from(""));
    out.push(Line::styled(title.to_owned(), theme.header()));
}

fn indented(lines: Vec<String>) -> impl Iterator<Item = Line<'static>> {
    lines.into_iter().map(|l| Line::from(format!("  {l}")))
}

fn attempts(out: &mut Vec<Line<'static>>, app: &App, detail: &JobDetail) {
    let theme = &app.settings.theme;
    section(out, theme, "Attempts");
    if detail.attempts.is_empty() {
        out.push(Line::styled("  none yet", theme.dim()));
        return;
    }
    out.push(Line::styled(
        format!(
            "  {:<3} {:<10} {:<12} {:<12} {:<9} {}",
            "#", "outcome", "started", "finished", "took", "worker / error"
        ),
        theme.dim(),
    ));
    for a in &detail.attempts {
        let outcome = a.outcome.to_string();
        let style = match outcome.as_str() {
            "SUCCEEDED" => theme.completed(),
            "FAILED" => theme.failed(),
            _ => theme.status(crate::contracts::job::JobStatus::Running),
        };
        let finished = a
            .finished_at
            .as_ref()
            .map(time_of_day)
            .unwrap_or_else(|| "-".into());
        let took = a
            .duration_ms
            .map(crate::text::duration)
            .unwrap_or_else(|| "-".into());
        out.push(Line::from(vec![
            Span::raw(format!("  {:<3} ", a.attempt)),
            Span::styled(format!("{outcome:<10} "), style),
            Span::raw(format!(
                "{:<12} {:<12} {:<9} {}",
                time_of_day(&a.started_at),
                finished,
                took,
                clean(a.worker.as_deref().unwrap_or("-"))
            )),
        ]));
        if let Some(e) = &a.error {
            out.push(Line::styled(
                clean(&format!("      {}: {}", e.code, e.message)),
                theme.failed(),
            ));
        }
    }
}

fn timeline(out: &mut Vec<Line<'static>>, app: &App, detail: &JobDetail, width: u16) {
    let theme = &app.settings.theme;
    section(out, theme, "Timeline");
    if detail.events.is_empty() {
        out.push(Line::styled("  no events recorded yet", theme.dim()));
        return;
    }
    let mut previous: Option<&EventEnvelope> = None;
    for event in &detail.events {
        let gap = previous
            .map(|p| format!("+{}", span(&p.occurred_at, &event.occurred_at)))
            .unwrap_or_default();
        let summary = crate::ui::events::summary(event);
        let text = format!(
            "  {:<12} {:>10}  {:<18} {}",
            time_of_day(&event.occurred_at),
            gap,
            event.event_type,
            summary
        );
        let style = crate::ui::events::style(theme, event);
        out.push(Line::styled(
            crate::text::fit(&clean(&text), usize::from(width)),
            style,
        ));
        previous = Some(event);
    }
}

/// `12:00:04.500`.
fn time_of_day(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%H:%M:%S%.3f").to_string()
}
