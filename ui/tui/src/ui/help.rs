//! The `?` overlay: every key, as the README's key table lists them.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Block, Borders, Cell, Clear, Row, Table};

use crate::app::App;

/// Every key and what it does (k9s habits); the README's table is this list.
pub const KEYS: &[(&str, &str)] = &[
    ("?", "this help (any key closes it)"),
    (
        ":",
        "command: overview, jobs, job ID, events, dead, alerts, submit, q",
    ),
    ("/", "filter or search the current view (esc clears)"),
    ("1–6, Tab, Shift-Tab", "switch views"),
    ("↑ ↓, j k", "move the selection (scroll in the job view)"),
    ("g G, Home End", "first, last"),
    ("PgUp PgDn", "a page up, down (more rows load as you go)"),
    ("Enter", "open the selected job"),
    ("Esc", "back from the job view; clear the filter elsewhere"),
    ("f", "jobs: next status filter"),
    ("t", "jobs: next type filter; events: next event type"),
    (
        "space",
        "events: pause and resume (paused, older events load)",
    ),
    ("s", "submit a job (not with --read-only)"),
    ("r", "refresh now"),
    ("o", "open the selection or view in the web dashboard"),
    ("q, Ctrl-C", "quit"),
];

pub fn draw(frame: &mut Frame, app: &App, body: Rect) {
    let theme = &app.settings.theme;
    let height = u16::try_from(KEYS.len() + 3).unwrap_or(u16::MAX);
    let area = crate::ui::layout::centered(body, 76, height);
    frame.render_widget(Clear, area);
    let rows = KEYS.iter().map(|(key, what)| {
        Row::new(vec![
            Cell::from(Span::styled(*key, theme.key())),
            Cell::from(*what),
        ])
    });
    let table = Table::new(rows, [Constraint::Length(20), Constraint::Min(10)])
        .header(Row::new(["key", "does"]).style(theme.header()))
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(Span::styled(" Keys ", theme.title())),
        );
    frame.render_widget(table, area);
}
