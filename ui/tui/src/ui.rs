//! Drawing: [`draw`] renders the whole screen from the [`App`] state and changes nothing.
//! Every view fits 80×24; larger terminals get more rows and wider columns.

pub mod layout;

mod alerts;
mod dead_letters;
mod events;
pub mod help;
mod job;
mod jobs;
mod overview;
mod status;
mod submit;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Tabs, Wrap};

use crate::app::{App, Freshness, Overlay, View};
use crate::theme::Theme;

pub use job::lines as job_lines;
pub use status::connection as status_connection;

/// Draws the screen.
pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let [tabs, body, status] = layout::screen(area);
    draw_tabs(frame, app, tabs);
    match app.view {
        View::Overview => overview::draw(frame, app, body),
        View::Jobs => jobs::draw(frame, app, body),
        View::Job => job::draw(frame, app, body),
        View::Events => events::draw(frame, app, body),
        View::DeadLetters => dead_letters::draw(frame, app, body),
        View::Alerts => alerts::draw(frame, app, body),
    }
    status::draw(frame, app, status);
    match &app.overlay {
        None => {}
        Some(Overlay::Help) => help::draw(frame, app, body),
        Some(Overlay::Command(input)) => status::prompt(frame, app, status, ":", input),
        Some(Overlay::Filter(input)) => status::prompt(frame, app, status, "/", input),
        Some(Overlay::Submit(form)) => submit::draw(frame, app, form, body),
        Some(Overlay::Message { title, lines }) => {
            message(frame, &app.settings.theme, title, lines, body)
        }
    }
}

fn draw_tabs(frame: &mut Frame, app: &App, area: Rect) {
    let theme = &app.settings.theme;
    let titles: Vec<Line> = View::ALL
        .iter()
        .enumerate()
        .map(|(i, view)| Line::from(format!("{} {}", i + 1, view.title())))
        .collect();
    let selected = View::ALL.iter().position(|v| *v == app.view);
    let tabs = Tabs::new(titles)
        .select(selected)
        .style(theme.dim())
        .highlight_style(theme.active_tab())
        .divider(" ")
        .padding("", "");
    let [left, right] = layout::split_right(area, 12);
    frame.render_widget(tabs, left);
    frame.render_widget(
        Paragraph::new(Line::from(vec![Span::styled("? help", theme.dim())]))
            .alignment(ratatui::layout::Alignment::Right),
        right,
    );
}

/// A bordered block titled `title`, its title saying when the data is not current.
fn block<'a>(theme: &Theme, title: impl Into<String>, freshness: &Freshness) -> Block<'a> {
    let mut spans = vec![Span::styled(format!(" {} ", title.into()), theme.title())];
    match freshness {
        Freshness::Stale { since, .. } => spans.push(Span::styled(
            match since {
                Some(t) => format!("STALE since {} ", crate::text::clock(t)),
                None => "STALE ".to_owned(),
            },
            theme.stale(),
        )),
        Freshness::Loading => spans.push(Span::styled("loading… ", theme.dim())),
        Freshness::Failed(_) | Freshness::Fresh => {}
    }
    Block::default()
        .borders(Borders::ALL)
        .title(Line::from(spans))
}

/// What a part of the screen shows instead of data: loading, or why nothing came.
fn placeholder(frame: &mut Frame, theme: &Theme, freshness: &Freshness, empty: &str, area: Rect) {
    let (text, style) = match freshness {
        Freshness::Loading => ("Loading…".to_owned(), theme.dim()),
        Freshness::Failed(error) => (format!("Could not load: {error}"), theme.error()),
        Freshness::Fresh | Freshness::Stale { .. } => (empty.to_owned(), theme.dim()),
    };
    frame.render_widget(
        Paragraph::new(crate::text::clean(&text))
            .style(style)
            .wrap(Wrap { trim: true }),
        area,
    );
}

/// Where a bordered table's rows go: inside the border, under the header row.
fn rows_area(area: Rect) -> Rect {
    let inner = Block::default().borders(Borders::ALL).inner(area);
    Rect {
        y: inner.y + 1,
        height: inner.height.saturating_sub(1),
        ..inner
    }
}

fn message(frame: &mut Frame, theme: &Theme, title: &str, lines: &[String], body: Rect) {
    let width = lines
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(20)
        .clamp(30, usize::from(body.width.saturating_sub(4)));
    let height = u16::try_from(lines.len() + 4).unwrap_or(u16::MAX);
    let area = layout::centered(body, u16::try_from(width + 4).unwrap_or(u16::MAX), height);
    frame.render_widget(Clear, area);
    let mut text: Vec<Line> = lines.iter().map(|l| Line::from(l.clone())).collect();
    text.push(Line::from(""));
    text.push(Line::styled("any key closes", theme.dim()));
    frame.render_widget(
        Paragraph::new(text).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .title(Span::styled(format!(" {title} "), theme.title())),
        ),
        area,
    );
}

/// A style for a table row: reversed when selected.
fn row_style(theme: &Theme, selected: bool) -> Style {
    if selected {
        theme.selected()
    } else {
        Style::new()
    }
}

#[cfg(test)]
mod tests;
