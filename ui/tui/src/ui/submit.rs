//! The submit form, over the current view: each problem is shown under the field it is about,
//! whether the local check found it or the gateway's answer pointed at it.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use crate::app::App;
use crate::app::input::LineInput;
use crate::app::submit::{Field, SubmitForm, built_in_types};
use crate::text::clean;
use crate::theme::Theme;

pub fn draw(frame: &mut Frame, app: &App, form: &SubmitForm, body: Rect) {
    let theme = &app.settings.theme;
    let area = crate::ui::layout::centered(body, 78, body.height);
    frame.render_widget(Clear, area);
    let outer = Block::default().borders(Borders::ALL).title(Span::styled(
        format!(" Submit a job to {} ", app.settings.gateway_url),
        theme.title(),
    ));
    let inner = outer.inner(area);
    frame.render_widget(outer, area);

    let problems = |field| form.problems_at(field).count();
    let payload_problems = u16::try_from(problems(Field::Payload).min(4)).unwrap_or(4);
    let line_problems = |field| u16::from(problems(field) > 0);
    let [
        type_row,
        type_problem,
        payload_label,
        payload,
        payload_problem,
        attempts,
        attempts_problem,
        key,
        key_problem,
        buttons,
        refused_area,
    ] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(line_problems(Field::Type)),
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(payload_problems),
        Constraint::Length(1),
        Constraint::Length(line_problems(Field::MaxAttempts)),
        Constraint::Length(1),
        Constraint::Length(line_problems(Field::IdempotencyKey)),
        Constraint::Length(1),
        Constraint::Length(if form.refused.is_some() { 2 } else { 0 }),
    ])
    .areas(inner);

    let built_in = built_in_types().join(" ");
    line_field(
        frame,
        theme,
        form,
        Field::Type,
        "type",
        &form.job_type,
        &format!("↑↓ built-in: {built_in}; any other name is allowed"),
        type_row,
    );
    problem_lines(frame, theme, form, Field::Type, type_problem);

    let schema = observatory_cli::built_in_job_types()
        .find(|(n, _)| *n == form.job_type.text().trim())
        .map(|(_, info)| format!("checked against {}", info.path))
        .unwrap_or_else(|| "not a built-in type: the processor will fail it as unknown".into());
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            label(theme, form, Field::Payload, "payload"),
            Span::styled(format!("JSON object, {schema}"), theme.dim()),
        ])),
        payload_label,
    );
    let editor =
        Block::default()
            .borders(Borders::ALL)
            .border_style(if form.focus == Field::Payload {
                theme.key()
            } else {
                theme.dim()
            });
    let editor_inner = editor.inner(payload);
    let (row, column) = form.payload.cursor();
    let scroll = row.saturating_sub(usize::from(editor_inner.height.saturating_sub(1)));
    let lines: Vec<Line> = form
        .payload
        .lines()
        .map(|l| Line::from(l.to_owned()))
        .collect();
    frame.render_widget(
        Paragraph::new(lines)
            .scroll((u16::try_from(scroll).unwrap_or(0), 0))
            .block(editor),
        payload,
    );
    if form.focus == Field::Payload {
        let before: String = form
            .payload
            .lines()
            .nth(row)
            .unwrap_or("")
            .chars()
            .take(column)
            .collect();
        let x = u16::try_from(Span::raw(before).width()).unwrap_or(u16::MAX);
        let y = u16::try_from(row - scroll).unwrap_or(0);
        frame.set_cursor_position(Position::new(
            (editor_inner.x + x).min(editor_inner.right().saturating_sub(1)),
            editor_inner.y + y,
        ));
    }
    problem_lines(frame, theme, form, Field::Payload, payload_problem);

    line_field(
        frame,
        theme,
        form,
        Field::MaxAttempts,
        "max attempts",
        &form.max_attempts,
        "1–100; empty: the gateway's default (3)",
        attempts,
    );
    problem_lines(frame, theme, form, Field::MaxAttempts, attempts_problem);
    line_field(
        frame,
        theme,
        form,
        Field::IdempotencyKey,
        "idempotency",
        &form.idempotency_key,
        "optional: the same key is the same job",
        key,
    );
    problem_lines(frame, theme, form, Field::IdempotencyKey, key_problem);

    let button_style = if form.focus == Field::Submit {
        theme
            .selected()
            .add_modifier(ratatui::style::Modifier::BOLD)
    } else {
        theme.title()
    };
    let button = if form.sending {
        "[ sending… ]"
    } else {
        "[ Submit ]"
    };
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(button, button_style),
            Span::styled("  Ctrl-S sends · Tab next field · Esc closes", theme.dim()),
        ])),
        buttons,
    );
    if let Some(refused) = &form.refused {
        frame.render_widget(
            Paragraph::new(Line::styled(clean(refused), theme.error())).wrap(Wrap { trim: true }),
            refused_area,
        );
    }
}

fn label<'a>(theme: &Theme, form: &SubmitForm, field: Field, text: &str) -> Span<'a> {
    let style = if form.focus == field {
        theme.key()
    } else {
        theme.title()
    };
    Span::styled(format!("{text:<14}"), style)
}

#[allow(clippy::too_many_arguments)]
fn line_field(
    frame: &mut Frame,
    theme: &Theme,
    form: &SubmitForm,
    field: Field,
    name: &str,
    input: &LineInput,
    hint: &str,
    area: Rect,
) {
    let value = if input.text().is_empty() && form.focus != field {
        "-".to_owned()
    } else {
        input.text().to_owned()
    };
    let value_style = if form.focus == field {
        Style::new().add_modifier(ratatui::style::Modifier::UNDERLINED)
    } else {
        Style::new()
    };
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            label(theme, form, field, name),
            Span::styled(value, value_style),
            Span::styled(format!("   {hint}"), theme.dim()),
        ])),
        area,
    );
    if form.focus == field {
        let before: String = input.text().chars().take(input.cursor()).collect();
        let x = u16::try_from(14 + Span::raw(before).width()).unwrap_or(u16::MAX);
        frame.set_cursor_position(Position::new(
            (area.x + x).min(area.right().saturating_sub(1)),
            area.y,
        ));
    }
}

fn problem_lines(frame: &mut Frame, theme: &Theme, form: &SubmitForm, field: Field, area: Rect) {
    if area.height == 0 {
        return;
    }
    let lines: Vec<Line> = form
        .problems_at(field)
        .take(usize::from(area.height))
        .map(|p| Line::styled(format!("  ✕ {}", clean(&p.message)), theme.error()))
        .collect();
    frame.render_widget(Paragraph::new(lines), area);
}
