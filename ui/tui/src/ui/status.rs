//! The status line: how live the data is (always), then a notice or the view's keys; and the
//! `:` and `/` prompts, which take its place while typing.

use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::app::input::LineInput;
use crate::app::{App, StreamState, View};
use crate::text::clock;

/// The connection indicator: live, reconnecting in N s, or offline since HH:MM:SS.
pub fn connection(app: &App) -> (String, ratatui::style::Style) {
    let theme = &app.settings.theme;
    let retry = match &app.connection.stream {
        StreamState::Down { retry_at, .. } => {
            let seconds = (*retry_at - app.now).num_seconds().max(0);
            Some(format!("retry in {seconds} s"))
        }
        _ => None,
    };
    if let Some(since) = app.connection.offline_since {
        let mut text = format!("✕ offline since {}", clock(&since));
        if let Some(retry) = retry {
            text.push_str(&format!(" · {retry}"));
        }
        return (text, theme.error());
    }
    match &app.connection.stream {
        StreamState::Live => ("● live".to_owned(), theme.live()),
        StreamState::Connecting => ("◌ connecting…".to_owned(), theme.warning()),
        StreamState::Down { retry_at, .. } => (
            format!(
                "◌ reconnecting in {} s",
                (*retry_at - app.now).num_seconds().max(0)
            ),
            theme.warning(),
        ),
    }
}

fn hints(view: View, read_only: bool) -> &'static str {
    match (view, read_only) {
        (View::Overview, false) => "s submit · r refresh · o browser · : command · q quit",
        (View::Overview, true) => "r refresh · o browser · : command · q quit",
        (View::Jobs, _) => "⏎ open · f status · t type · / search · o browser",
        (View::Job, _) => "esc back · ↑↓ scroll · o browser · r refresh",
        (View::Events, _) => "space pause · t type · / type · ⏎ job",
        (View::DeadLetters, _) => "⏎ job · / filter · esc clear",
        (View::Alerts, _) => "/ filter · esc clear · r refresh",
    }
}

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let theme = &app.settings.theme;
    let (indicator, style) = connection(app);
    let mut spans = vec![Span::styled(indicator, style), Span::raw("  ")];
    match &app.notice {
        Some(notice) => spans.push(Span::styled(
            crate::text::clean(&notice.text),
            if notice.error {
                theme.error()
            } else {
                theme.title()
            },
        )),
        None => spans.push(Span::styled(
            hints(app.view, app.settings.read_only),
            theme.dim(),
        )),
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// `prefix` and the text being typed, with the cursor in it.
pub fn prompt(frame: &mut Frame, app: &App, area: Rect, prefix: &str, input: &LineInput) {
    let theme = &app.settings.theme;
    let help = match (prefix, app.view) {
        (":", _) => "  overview jobs job ID events dead alerts submit q  (Tab completes)",
        ("/", View::Jobs) => {
            "  job id or its start · status:failed · type:sleep  (⏎ apply, esc clear)"
        }
        ("/", View::Events) => "  created started completed failed dead-lettered",
        _ => "  text to look for  (⏎ apply, esc clear)",
    };
    let line = Line::from(vec![
        Span::styled(prefix.to_owned(), theme.key()),
        Span::raw(input.text().to_owned()),
        Span::styled(help, theme.dim()),
    ]);
    frame.render_widget(Paragraph::new(line), area);
    let before: String = input.text().chars().take(input.cursor()).collect();
    let column =
        u16::try_from(ratatui::text::Span::raw(before).width() + prefix.len()).unwrap_or(u16::MAX);
    frame.set_cursor_position(Position::new(
        area.x + column.min(area.width.saturating_sub(1)),
        area.y,
    ));
}
