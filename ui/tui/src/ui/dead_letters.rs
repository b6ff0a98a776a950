//! Dead letters: why each message or job was given up on, and below, the selected one in full
//! with its raw body (pretty when it is JSON, as received when it is not).

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, Wrap};

use super::{block, placeholder, row_style};
use crate::app::{App, View};
use crate::text::{clean, count, json_lines, precise, short_id, when};

pub fn draw(frame: &mut Frame, app: &App, body: Rect) {
    let theme = &app.settings.theme;
    let dead = &app.dead_letters;
    let [list, detail] = crate::ui::layout::dead_letters(body);
    let freshness = app.freshness(&dead.first, dead.first.fetched_at.is_some());
    let visible = dead.visible();
    let mut title = format!("Dead letters · {}", count(visible.len() as u64));
    if dead.next_cursor.is_some() {
        title.push('+');
    }
    if let Some(filter) = &dead.text_filter {
        title.push_str(&format!(" · matching \"{}\"", clean(filter)));
    }
    let mut outer = block(theme, title, &freshness);
    if dead.more.loading {
        outer = outer.title_bottom(Line::styled(" loading more… ", theme.dim()));
    }
    let rows_visible = crate::ui::layout::list_rows(View::DeadLetters, app.size);
    let header =
        Row::new(["RECEIVED", "REASON", "FROM", "JOB", "ATT", "MESSAGE"]).style(theme.header());
    let rows = visible
        .iter()
        .enumerate()
        .skip(dead.cursor.offset)
        .take(rows_visible)
        .map(|(i, d)| {
            Row::new(vec![
                Cell::from(when(&d.received_at, &app.now)),
                Cell::from(d.reason.to_string()).style(theme.failed()),
                Cell::from(clean(&d.source)),
                Cell::from(
                    d.job_id
                        .map(|id| short_id(&id))
                        .unwrap_or_else(|| "-".into()),
                ),
                Cell::from(
                    d.attempts
                        .map(|a| a.to_string())
                        .unwrap_or_else(|| "-".into()),
                ),
                Cell::from(clean(d.message.as_deref().unwrap_or(""))),
            ])
            .style(row_style(theme, i == dead.cursor.selected))
        });
    let table = Table::new(
        rows,
        [
            Constraint::Length(11),
            Constraint::Length(18),
            Constraint::Length(10),
            Constraint::Length(8),
            Constraint::Length(3),
            Constraint::Min(10),
        ],
    )
    .header(header)
    .block(outer.clone());
    frame.render_widget(table, list);
    if visible.is_empty() {
        let below = super::rows_area(list);
        let empty = if dead.text_filter.is_some() {
            "No dead letter matches (esc clears the filter)."
        } else {
            "No dead letters: every message and job was processed."
        };
        placeholder(frame, theme, &freshness, empty, below);
    }

    let detail_block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(" Selected ", theme.title()));
    let Some(d) = dead.selected() else {
        frame.render_widget(detail_block, detail);
        return;
    };
    let field = |label: &str, value: String| {
        Line::from(vec![
            Span::styled(format!("{label:<12}"), theme.dim()),
            Span::raw(value),
        ])
    };
    let mut lines = vec![
        field("reason", d.reason.to_string()),
        field(
            "from",
            match &d.queue {
                Some(queue) => format!("{}, queue {}", clean(&d.source), clean(queue)),
                None => clean(&d.source),
            },
        ),
        field("received", precise(&d.received_at)),
    ];
    if let Some(job) = d.job_id {
        lines.push(field("job", format!("{job}  (⏎ opens it)")));
    }
    if let Some(message) = &d.message {
        lines.push(field("message", clean(message)));
    }
    lines.push(Line::styled("raw body", theme.dim()));
    // A JSON body reads best pretty-printed; anything else is shown as received (cleaned).
    let body_lines = match serde_json::from_str::<serde_json::Value>(&d.raw_body) {
        Ok(value) => json_lines(&value),
        Err(_) => d.raw_body.lines().map(clean).collect(),
    };
    lines.extend(body_lines.into_iter().map(|l| Line::from(format!("  {l}"))));
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(detail_block),
        detail,
    );
}
