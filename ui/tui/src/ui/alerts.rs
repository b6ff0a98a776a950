//! Alerts, from the read model's `/alerts`: its source said plainly (Alertmanager, not
//! configured, unavailable), then each active alert with its severity in colour.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};

use super::{block, placeholder, row_style};
use crate::app::{App, View};
use crate::contracts::alert_list::AlertSource;
use crate::text::{clean, when};

pub fn draw(frame: &mut Frame, app: &App, body: Rect) {
    let theme = &app.settings.theme;
    let state = &app.alerts;
    let freshness = app.freshness(&state.list.fetch, state.list.data.is_some());
    let mut title = String::from("Alerts");
    if let Some(filter) = &state.text_filter {
        title.push_str(&format!(" · matching \"{}\"", clean(filter)));
    }
    let outer = block(theme, title, &freshness);
    let inner = outer.inner(body);
    let Some(list) = &state.list.data else {
        frame.render_widget(outer, body);
        placeholder(frame, theme, &freshness, "", inner);
        return;
    };
    let (source, style) = match list.source {
        AlertSource::Alertmanager => (
            format!("From Alertmanager: {} active.", list.alerts.len()),
            theme.dim(),
        ),
        AlertSource::NotConfigured => (
            "Alertmanager is not configured: start the read model with --alertmanager-url URL (or OBSERVATORY_ALERTMANAGER_URL) to see alerts here.".to_owned(),
            theme.warning(),
        ),
        AlertSource::Unavailable => (
            format!(
                "Alertmanager is unavailable, so no alerts can be shown: {}",
                list.detail.as_deref().unwrap_or("no detail")
            ),
            theme.error(),
        ),
    };
    frame.render_widget(outer, body);
    let [source_area, table_area] =
        Layout::vertical([Constraint::Length(2), Constraint::Min(0)]).areas(inner);
    frame.render_widget(
        Paragraph::new(Line::styled(clean(&source), style)).wrap(Wrap { trim: true }),
        source_area,
    );
    let alerts = app.visible_alerts();
    if alerts.is_empty() {
        if list.source == AlertSource::Alertmanager {
            placeholder(frame, theme, &freshness, "Nothing is firing.", table_area);
        }
        return;
    }
    let rows_visible = crate::ui::layout::list_rows(View::Alerts, app.size);
    let header = Row::new(["SEVERITY", "ALERT", "STATE", "SINCE", "SUMMARY"]).style(theme.header());
    let rows = alerts
        .iter()
        .enumerate()
        .skip(state.cursor.offset)
        .take(rows_visible)
        .map(|(i, a)| {
            Row::new(vec![
                Cell::from(a.severity.to_string()).style(theme.severity(a.severity)),
                Cell::from(clean(&a.name)),
                Cell::from(a.state.to_string()),
                Cell::from(when(&a.starts_at, &app.now)),
                Cell::from(clean(a.summary.as_deref().unwrap_or(""))),
            ])
            .style(row_style(theme, i == state.cursor.selected))
        });
    let table = Table::new(
        rows,
        [
            Constraint::Length(9),
            Constraint::Length(24),
            Constraint::Length(11),
            Constraint::Length(11),
            Constraint::Min(10),
        ],
    )
    .header(header);
    frame.render_widget(table, table_area);
}
