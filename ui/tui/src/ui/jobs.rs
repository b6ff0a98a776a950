//! The jobs list: short id, type, status in colour, attempts, created, duration, last error.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row, Table};

use super::{block, placeholder, row_style};
use crate::app::{App, View};
use crate::contracts::job::{Job, JobStatus};
use crate::text::{clean, count, short_id, span, when};

pub fn draw(frame: &mut Frame, app: &App, body: Rect) {
    let theme = &app.settings.theme;
    let jobs = &app.jobs;
    let freshness = app.freshness(&jobs.first, jobs.first.fetched_at.is_some());
    let mut title = String::from("Jobs");
    if let Some(status) = jobs.query.status {
        title.push_str(&format!(" · status {status}"));
    }
    if let Some(job_type) = &jobs.query.job_type {
        title.push_str(&format!(" · type {}", clean(job_type.as_str())));
    }
    if let Some(prefix) = &jobs.query.id_prefix {
        title.push_str(&format!(" · id {prefix}…"));
    }
    if !jobs.rows.is_empty() {
        title.push_str(&format!(
            " · {}{}",
            count(jobs.rows.len() as u64),
            if jobs.next_cursor.is_some() { "+" } else { "" }
        ));
    }
    let mut outer = block(theme, title, &freshness);
    if jobs.more.loading {
        outer = outer.title_bottom(Line::styled(" loading more… ", theme.dim()));
    } else if let Some(error) = &jobs.more.error {
        outer = outer.title_bottom(Line::styled(
            format!(" next page failed: {} ", clean(&error.to_string())),
            theme.error(),
        ));
    }
    let rows_visible = crate::ui::layout::list_rows(View::Jobs, app.size);
    let header = Row::new([
        "ID",
        "TYPE",
        "STATUS",
        "ATT",
        "CREATED",
        "DURATION",
        "LAST ERROR",
    ])
    .style(theme.header());
    let rows = jobs
        .rows
        .iter()
        .enumerate()
        .skip(jobs.cursor.offset)
        .take(rows_visible)
        .map(|(i, job)| {
            Row::new(cells(app, job)).style(row_style(theme, i == jobs.cursor.selected))
        });
    let table = Table::new(
        rows,
        [
            Constraint::Length(8),
            Constraint::Length(10),
            Constraint::Length(13),
            Constraint::Length(5),
            Constraint::Length(11),
            Constraint::Length(9),
            Constraint::Min(10),
        ],
    )
    .header(header)
    .block(outer.clone());
    frame.render_widget(table, body);
    if jobs.rows.is_empty() {
        let below = super::rows_area(body);
        let empty = if jobs.query == Default::default() {
            "No jobs yet: press s to submit one."
        } else {
            "No job matches this filter (esc clears it)."
        };
        placeholder(frame, theme, &freshness, empty, below);
    }
}

fn cells<'a>(app: &App, job: &'a Job) -> Vec<Cell<'a>> {
    let theme = &app.settings.theme;
    let duration = match (job.started_at, job.finished_at) {
        (Some(start), Some(end)) => span(&start, &end),
        (Some(start), None) if job.status == JobStatus::Running => span(&start, &app.now),
        _ => "-".to_owned(),
    };
    let error = job
        .last_error
        .as_ref()
        .map(|e| clean(&format!("{}: {}", e.code, e.message)))
        .unwrap_or_default();
    vec![
        Cell::from(short_id(&job.id)),
        Cell::from(clean(job.type_.as_str())),
        Cell::from(Line::from(Span::styled(
            job.status.to_string(),
            theme.status(job.status),
        ))),
        Cell::from(format!("{}/{}", job.attempts, job.max_attempts)),
        Cell::from(when(&job.created_at, &app.now)),
        Cell::from(duration),
        Cell::from(error).style(theme.failed()),
    ]
}
