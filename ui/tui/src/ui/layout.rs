//! Where things go, shared by the drawing and by the state machine (which must know how many
//! rows a list shows to page and scroll it).

use ratatui::layout::{Constraint, Layout, Rect};

use crate::app::{App, View};

/// The tab bar, the view, the status line.
pub fn screen(area: Rect) -> [Rect; 3] {
    Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area)
}

/// `area` with `width` columns split off on the right.
pub fn split_right(area: Rect, width: u16) -> [Rect; 2] {
    Layout::horizontal([Constraint::Min(0), Constraint::Length(width)]).areas(area)
}

/// The dead letters view: the list on top, the selected one's details below.
pub fn dead_letters(body: Rect) -> [Rect; 2] {
    let detail = (body.height / 2).max(6).min(body.height);
    Layout::vertical([Constraint::Min(0), Constraint::Length(detail)]).areas(body)
}

/// A `width` × `height` rectangle in the middle of `area` (clipped to it).
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

/// How many rows of `view`'s list fit on a terminal of `size` (columns, rows).
pub fn list_rows(view: View, size: (u16, u16)) -> usize {
    let area = Rect::new(0, 0, size.0, size.1);
    let [_, body, _] = screen(area);
    // A bordered block (2) with a header row (1).
    let table = |rect: Rect| usize::from(rect.height.saturating_sub(3));
    match view {
        View::Jobs | View::Events => table(body),
        // The alerts table sits under two lines that say where the alerts come from.
        View::Alerts => table(body).saturating_sub(2),
        View::DeadLetters => table(dead_letters(body)[0]),
        View::Job => usize::from(body.height.saturating_sub(2)),
        View::Overview => 0,
    }
}

/// How many lines the job view has (for scrolling).
pub fn job_lines(app: &App) -> usize {
    let [_, body, _] = screen(Rect::new(0, 0, app.size.0, app.size.1));
    super::job_lines(app, body.width.saturating_sub(2)).len()
}
