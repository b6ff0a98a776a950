//! The overview: totals, the throughput chart (completed and failed per bucket, moving with the
//! live stream), counters per type, queue depths and the active alerts.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Cell, Chart, Dataset, GraphType, Paragraph, Row, Table};

use super::{block, placeholder};
use crate::app::App;
use crate::contracts::alert_list::AlertSource;
use crate::text::{clean, count, fit};

pub fn draw(frame: &mut Frame, app: &App, body: Rect) {
    let types = app.overview.data.as_ref().map_or(0, |o| o.by_type.len());
    let queues = app.queues.data.as_ref().map_or(0, |q| q.queues.len());
    let bottom = u16::try_from(types.max(queues).max(1) + 3)
        .unwrap_or(u16::MAX)
        .min(9);
    let alerts = u16::try_from(app.visible_alerts().len().clamp(1, 4) + 2).unwrap_or(3);
    let [totals, chart, lists, alert_area] = Layout::vertical([
        Constraint::Length(4),
        Constraint::Min(6),
        Constraint::Length(bottom),
        Constraint::Length(alerts),
    ])
    .areas(body);
    draw_totals(frame, app, totals);
    draw_chart(frame, app, chart);
    let [by_type, queue_area] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(lists);
    draw_types(frame, app, by_type);
    draw_queues(frame, app, queue_area);
    draw_alerts(frame, app, alert_area);
}

fn draw_totals(frame: &mut Frame, app: &App, area: Rect) {
    let theme = &app.settings.theme;
    let freshness = app.freshness(&app.overview.fetch, app.overview.data.is_some());
    let outer = block(theme, "Totals", &freshness);
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    let Some(overview) = &app.overview.data else {
        placeholder(frame, theme, &freshness, "", inner);
        return;
    };
    let t = &overview.totals;
    let cells = [
        ("submitted", t.submitted, theme.submitted()),
        ("started", t.started, Style::new()),
        ("completed", t.completed, theme.completed()),
        ("failed", t.failed, theme.failed()),
        ("retried", t.retried, theme.warning()),
        (
            "dead-lettered",
            t.dead_lettered,
            theme.status(crate::contracts::job::JobStatus::DeadLettered),
        ),
    ];
    let columns = Layout::horizontal([Constraint::Ratio(1, 6); 6]).split(inner);
    for ((label, value, style), column) in cells.iter().zip(columns.iter()) {
        let text = vec![
            Line::styled(
                count(*value),
                style.add_modifier(ratatui::style::Modifier::BOLD),
            ),
            Line::styled(*label, theme.dim()),
        ];
        frame.render_widget(Paragraph::new(text), *column);
    }
}

fn draw_chart(frame: &mut Frame, app: &App, area: Rect) {
    let theme = &app.settings.theme;
    let freshness = app.freshness(&app.overview.fetch, app.overview.data.is_some());
    let Some(overview) = &app.overview.data else {
        let outer = block(theme, "Throughput", &freshness);
        let inner = outer.inner(area);
        frame.render_widget(outer, area);
        placeholder(frame, theme, &freshness, "", inner);
        return;
    };
    let buckets = &overview.throughput;
    let width = buckets.first().map_or(1, |b| b.seconds.get());
    #[allow(clippy::cast_precision_loss)] // counts per bucket are small
    let series =
        |pick: fn(&crate::contracts::overview::ThroughputBucket) -> u64| -> Vec<(f64, f64)> {
            buckets
                .iter()
                .enumerate()
                .map(|(i, b)| (i as f64, pick(b) as f64))
                .collect()
        };
    let completed = series(|b| b.completed);
    let failed = series(|b| b.failed);
    let peak = buckets
        .iter()
        .map(|b| b.completed.max(b.failed))
        .max()
        .unwrap_or(0)
        .max(1);
    let span = width * buckets.len() as u64;
    // Without colour the two lines differ by their marks; the title is the legend.
    let (completed_mark, failed_mark) = if theme.uses_color() {
        (Marker::Braille, Marker::Braille)
    } else {
        (Marker::Braille, Marker::Dot)
    };
    let mut title = block(
        theme,
        format!("Throughput per {width} s, last {span} s"),
        &freshness,
    );
    title = title.title(Line::from(vec![
        Span::styled(
            format!(" {} completed ", if theme.uses_color() { "━" } else { "⣿" }),
            theme.completed(),
        ),
        Span::raw(count(buckets.iter().map(|b| b.completed).sum())),
        Span::styled(
            format!(" · {} failed ", if theme.uses_color() { "━" } else { "•" }),
            theme.failed(),
        ),
        Span::raw(format!(
            "{} ",
            count(buckets.iter().map(|b| b.failed).sum())
        )),
    ]));
    let datasets = vec![
        Dataset::default()
            .name("completed")
            .marker(completed_mark)
            .graph_type(GraphType::Line)
            .style(theme.completed())
            .data(&completed),
        Dataset::default()
            .name("failed")
            .marker(failed_mark)
            .graph_type(GraphType::Line)
            .style(theme.failed())
            .data(&failed),
    ];
    #[allow(clippy::cast_precision_loss)]
    let (x_max, y_max) = (buckets.len().saturating_sub(1).max(1) as f64, peak as f64);
    let chart = Chart::new(datasets)
        .block(title)
        .x_axis(
            Axis::default()
                .bounds([0.0, x_max])
                .labels([format!("-{span}s"), "now".to_owned()])
                .style(theme.dim()),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, y_max])
                .labels(["0".to_owned(), count(peak)])
                .style(theme.dim()),
        )
        .legend_position(None);
    frame.render_widget(chart, area);
}

fn draw_types(frame: &mut Frame, app: &App, area: Rect) {
    let theme = &app.settings.theme;
    let freshness = app.freshness(&app.overview.fetch, app.overview.data.is_some());
    let outer = block(theme, "By type", &freshness);
    let Some(overview) = &app.overview.data else {
        let inner = outer.inner(area);
        frame.render_widget(outer, area);
        placeholder(frame, theme, &freshness, "", inner);
        return;
    };
    let header = Row::new(["type", "submitted", "done", "failed", "dead"]).style(theme.header());
    let rows = overview.by_type.iter().map(|t| {
        let c = &t.counters;
        Row::new(vec![
            Cell::from(fit(&clean(&t.type_), 14)),
            Cell::from(count(c.submitted)),
            Cell::from(count(c.completed)).style(theme.completed()),
            Cell::from(count(c.failed)).style(theme.failed()),
            Cell::from(count(c.dead_lettered)),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Min(8),
            Constraint::Length(9),
            Constraint::Length(8),
            Constraint::Length(7),
            Constraint::Length(6),
        ],
    )
    .header(header)
    .block(outer);
    frame.render_widget(table, area);
    if overview.by_type.is_empty() {
        let below_header = super::rows_area(area);
        placeholder(
            frame,
            theme,
            &freshness,
            "No jobs yet: press s to submit one.",
            below_header,
        );
    }
}

fn draw_queues(frame: &mut Frame, app: &App, area: Rect) {
    let theme = &app.settings.theme;
    let freshness = app.freshness(&app.queues.fetch, app.queues.data.is_some());
    let outer = block(theme, "Queues", &freshness);
    let Some(queues) = &app.queues.data else {
        let inner = outer.inner(area);
        frame.render_widget(outer, area);
        placeholder(frame, theme, &freshness, "", inner);
        return;
    };
    let header = Row::new(["queue", "ready", "cons."]).style(theme.header());
    let rows = queues.queues.iter().map(|q| {
        // Names carry the deployment prefix; the part after it says what the queue is.
        let name = q.name.rsplit('.').next().unwrap_or(&q.name);
        Row::new(vec![
            Cell::from(fit(&clean(name), 16)),
            Cell::from(count(q.messages)),
            Cell::from(count(q.consumers)),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Min(6),
            Constraint::Length(8),
            Constraint::Length(5),
        ],
    )
    .header(header)
    .block(outer);
    frame.render_widget(table, area);
}

fn draw_alerts(frame: &mut Frame, app: &App, area: Rect) {
    let theme = &app.settings.theme;
    let freshness = app.freshness(&app.alerts.list.fetch, app.alerts.list.data.is_some());
    let outer = block(theme, "Active alerts", &freshness);
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    let Some(list) = &app.alerts.list.data else {
        placeholder(frame, theme, &freshness, "", inner);
        return;
    };
    let lines: Vec<Line> = if list.alerts.is_empty() {
        vec![Line::styled(
            match list.source {
                AlertSource::Alertmanager => "None: every alert rule is quiet.".to_owned(),
                AlertSource::NotConfigured => {
                    "Alertmanager is not configured (see :alerts).".to_owned()
                }
                AlertSource::Unavailable => "Alertmanager is unavailable (see :alerts).".to_owned(),
            },
            theme.dim(),
        )]
    } else {
        list.alerts
            .iter()
            .take(usize::from(inner.height))
            .map(|a| {
                Line::from(vec![
                    Span::styled(format!("{:<8} ", a.severity), theme.severity(a.severity)),
                    Span::styled(clean(&a.name), theme.title()),
                    Span::raw(format!("  {}", clean(a.summary.as_deref().unwrap_or("")))),
                ])
            })
            .collect()
    };
    frame.render_widget(Paragraph::new(lines), inner);
}
