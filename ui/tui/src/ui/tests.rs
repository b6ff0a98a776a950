//! Rendering: every view, in its empty, loading, loaded, offline and error states, at 80×24
//! and 160×48, as text snapshots of the whole screen (`src/ui/snapshots/`). Colours are checked
//! separately, with and without `NO_COLOR`.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Color;
use serde_json::json;

use crate::app::{Answer, App, Msg, Request, StreamMsg, View};
use crate::fixtures::{self, at, fetched, id, job};
use crate::theme::Theme;

const SIZES: [(u16, u16); 2] = [(80, 24), (160, 48)];

fn render(app: &App) -> Terminal<TestBackend> {
    let (width, height) = app.size;
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("a test terminal");
    terminal.draw(|f| super::draw(f, app)).expect("drawn");
    terminal
}

/// Snapshots `setup` at both sizes under `name`.
fn snapshot(name: &str, setup: impl Fn(&mut App)) {
    for size in SIZES {
        let mut app = fixtures::app(size);
        app.update(Msg::Stream(StreamMsg::Connected));
        setup(&mut app);
        let terminal = render(&app);
        insta::assert_snapshot!(format!("{name}_{}x{}", size.0, size.1), terminal.backend());
    }
}

fn press(app: &mut App, code: KeyCode) {
    app.update(Msg::Key(KeyEvent::from(code)));
}

fn overview_loaded(app: &mut App) {
    app.start();
    app.update(fetched(Request::Overview, Ok(fixtures::overview())));
    app.update(fetched(Request::Queues, Ok(fixtures::queues())));
    app.update(fetched(
        Request::Alerts,
        Ok(fixtures::alerts("alertmanager")),
    ));
}

fn jobs() -> Vec<crate::contracts::job::Job> {
    vec![
        job(id("c0ffee01", 1), "sleep", "RUNNING", at(2)),
        job(id("0b4bd3a4", 2), "fail", "RETRYING", at(5)),
        job(id("7c1e9f20", 3), "compute", "COMPLETED", at(9)),
        job(id("5f0c2a7e", 4), "fail", "DEAD_LETTERED", at(15)),
        job(id("a8d4f6b2", 5), "resize-image", "FAILED", at(30)),
        job(id("1f6a3d8c", 6), "sleep", "PENDING", at(61)),
    ]
}

fn jobs_loaded(app: &mut App) {
    press(app, KeyCode::Char('2'));
    app.update(fetched(
        fixtures::first_jobs(),
        Ok(fixtures::page(
            jobs(),
            Some("c1.1795435200000000.0b4bd3a494b44b4e9a353a1d6f6c9d11"),
        )),
    ));
    press(app, KeyCode::Down);
}

fn job_detail(app: &mut App, status: &str) {
    let job_id = id("0b4bd3a4", 2);
    let mut job = job(job_id, "fail", status, at(20));
    job.payload =
        serde_json::from_value(json!({"failFirstAttempts": 1, "message": "downstream timeout"}))
            .expect("a payload");
    let detail = json!({
        "job": job,
        "attempts": [
            {"jobId": job_id, "attempt": 1, "outcome": "FAILED", "startedAt": at(19), "finishedAt": at(18), "durationMs": 1000.4,
             "error": {"code": "intentional-failure", "message": "downstream timeout", "attempt": 1}, "worker": "processor-5b8c7d9f4"},
            {"jobId": job_id, "attempt": 2, "outcome": "RUNNING", "startedAt": at(3), "worker": "processor-5b8c7d9f4"}
        ],
        "events": [
            fixtures::created(job_id, at(20)),
            fixtures::started(job_id, 1, at(19)),
            fixtures::event("job.failed", job_id, at(18), json!({"type": "fail", "attempt": 1, "maxAttempts": 3,
                "error": {"code": "intentional-failure", "message": "downstream timeout"}, "willRetry": true,
                "nextAttemptAt": at(3), "jobStatus": "RETRYING", "failedAt": at(18)})),
            fixtures::started(job_id, 2, at(3)),
        ]
    });
    app.update(fetched(
        fixtures::first_jobs(),
        Ok(fixtures::page(vec![job.clone()], None)),
    ));
    press(app, KeyCode::Char('2'));
    app.update(fetched(
        fixtures::first_jobs(),
        Ok(fixtures::page(vec![job], None)),
    ));
    press(app, KeyCode::Enter);
    app.update(fetched(
        Request::Job(job_id),
        Ok(Answer::Job(Box::new(
            serde_json::from_value(detail).expect("a job detail"),
        ))),
    ));
}

fn events_loaded(app: &mut App) {
    press(app, KeyCode::Char('4'));
    let a = id("c0ffee01", 1);
    let b = id("0b4bd3a4", 2);
    let page = json!({"items": [
        fixtures::completed(a, at(4)),
        fixtures::event("job.failed", b, at(5), json!({"type": "fail", "attempt": 1, "maxAttempts": 3,
            "error": {"code": "intentional-failure", "message": "downstream timeout"}, "willRetry": true,
            "nextAttemptAt": at(3), "jobStatus": "RETRYING", "failedAt": at(5)})),
        fixtures::started(a, 1, at(6)),
        fixtures::started(b, 1, at(6)),
        fixtures::created(a, at(7)),
        fixtures::created(b, at(8)),
        fixtures::event("job.dead-lettered", id("5f0c2a7e", 4), at(9), json!({"type": "fail", "attempts": 3,
            "reason": "attempts-exhausted", "lastError": {"code": "intentional-failure", "message": "fails on purpose"},
            "deadLetteredAt": at(9)})),
    ], "nextCursor": "c1.1795435100000000.7c1e9f203a5b4d8cb2e194f0a6d3c572"});
    app.update(fetched(
        fixtures::first_events(),
        Ok(fixtures::event_page(page)),
    ));
}

fn dead_letters_loaded(app: &mut App) {
    press(app, KeyCode::Char('5'));
    let page = json!({"items": [
        {"id": id("d0000000", 1), "source": "processor", "queue": "observatory.jobs", "reason": "attempts-exhausted",
         "message": "3 attempts failed; last: intentional-failure: fails on purpose", "jobId": id("5f0c2a7e", 4),
         "attempts": 3, "receivedAt": at(9), "rawBody": "{\"eventType\":\"job.created\",\"payload\":{\"type\":\"fail\"}}"},
        {"id": id("d0000000", 2), "source": "metrics-engine", "queue": "observatory.metrics-engine", "reason": "malformed-json",
         "message": "expected value at line 1 column 1", "receivedAt": at(40), "rawBody": "not json \u{1b}[31m at all"}
    ]});
    app.update(fetched(
        fixtures::first_dead_letters(),
        Ok(fixtures::dead_letter_page(page)),
    ));
}

#[test]
fn overview() {
    snapshot("overview_loading", |app| {
        app.start();
    });
    snapshot("overview", overview_loaded);
    snapshot("overview_offline", |app| {
        overview_loaded(app);
        app.update(Msg::Tick(at(-12)));
        app.update(fixtures::unreachable(Request::Overview));
        app.update(Msg::Stream(StreamMsg::Down {
            reason: "refused".into(),
            retry_at: at(-16),
        }));
    });
    snapshot("overview_error", |app| {
        app.start();
        let error = fixtures::api_error(
            503,
            "counters-unavailable",
            "The counters are unavailable; retry later",
            json!([]),
        );
        app.update(fetched(Request::Overview, Err(error)));
        app.update(fetched(Request::Queues, Ok(fixtures::queues())));
        app.update(fetched(
            Request::Alerts,
            Ok(fixtures::alerts("not-configured")),
        ));
    });
}

#[test]
fn jobs_view() {
    snapshot("jobs_loading", |app| press(app, KeyCode::Char('2')));
    snapshot("jobs_empty", |app| {
        press(app, KeyCode::Char('2'));
        app.update(fetched(
            fixtures::first_jobs(),
            Ok(fixtures::page(vec![], None)),
        ));
    });
    snapshot("jobs", jobs_loaded);
    snapshot("jobs_filtered_and_searching", |app| {
        jobs_loaded(app);
        press(app, KeyCode::Char('f'));
        press(app, KeyCode::Char('/'));
        for c in "0b4b".chars() {
            press(app, KeyCode::Char(c));
        }
    });
    snapshot("jobs_error", |app| {
        press(app, KeyCode::Char('2'));
        app.update(fixtures::unreachable(fixtures::first_jobs()));
    });
}

#[test]
fn job_view() {
    snapshot("job_none", |app| press(app, KeyCode::Char('3')));
    snapshot("job_following", |app| job_detail(app, "RUNNING"));
    snapshot("job_not_found", |app| {
        press(app, KeyCode::Char('/'));
        let missing = id("deadbeef", 1);
        app.update(Msg::Key(KeyEvent::from(KeyCode::Char('2'))));
        press(app, KeyCode::Char('/'));
        for c in missing.to_string().chars() {
            press(app, KeyCode::Char(c));
        }
        press(app, KeyCode::Enter);
        let error = fixtures::api_error(404, "not-found", &format!("no job {missing}"), json!([]));
        app.update(fetched(Request::Job(missing), Err(error)));
    });
}

#[test]
fn events_view() {
    snapshot("events_empty", |app| {
        press(app, KeyCode::Char('4'));
        app.update(fetched(
            fixtures::first_events(),
            Ok(fixtures::event_page(json!({"items": []}))),
        ));
    });
    snapshot("events", events_loaded);
    snapshot("events_paused", |app| {
        events_loaded(app);
        press(app, KeyCode::Char(' '));
        app.update(Msg::Stream(StreamMsg::Event(Box::new(fixtures::created(
            id("99999999", 9),
            at(1),
        )))));
        press(app, KeyCode::Down);
    });
}

#[test]
fn dead_letters_view() {
    snapshot("dead_letters_empty", |app| {
        press(app, KeyCode::Char('5'));
        app.update(fetched(
            fixtures::first_dead_letters(),
            Ok(fixtures::dead_letter_page(json!({"items": []}))),
        ));
    });
    snapshot("dead_letters", dead_letters_loaded);
}

#[test]
fn alerts_view() {
    for source in ["alertmanager", "not-configured", "unavailable"] {
        snapshot(&format!("alerts_{source}"), |app| {
            press(app, KeyCode::Char('6'));
            app.update(fetched(Request::Alerts, Ok(fixtures::alerts(source))));
        });
    }
}

#[test]
fn overlays() {
    snapshot("help", |app| {
        overview_loaded(app);
        press(app, KeyCode::Char('?'));
    });
    snapshot("submit_with_problems", |app| {
        press(app, KeyCode::Char('s'));
        press(app, KeyCode::Tab);
        for _ in 0..3 {
            press(app, KeyCode::Backspace);
        }
        for c in "-5".chars() {
            press(app, KeyCode::Char(c));
        }
    });
    snapshot("command", |app| {
        overview_loaded(app);
        press(app, KeyCode::Char(':'));
        press(app, KeyCode::Char('j'));
    });
    snapshot("open_without_a_display", |app| {
        jobs_loaded(app);
        press(app, KeyCode::Char('o'));
    });
}

#[test]
fn nothing_from_the_network_reaches_the_terminal_as_an_escape() {
    let mut app = fixtures::app((160, 48));
    dead_letters_loaded(&mut app);
    press(&mut app, KeyCode::Down);
    let terminal = render(&app);
    let buffer = terminal.backend().buffer();
    assert!(
        buffer
            .content
            .iter()
            .all(|cell| !cell.symbol().contains('\u{1b}'))
    );
}

#[test]
fn statuses_have_colours_unless_no_color() {
    for (theme, expect_colour) in [(Theme::COLOR, true), (Theme::PLAIN, false)] {
        let mut app = crate::app::App::new(
            crate::app::Settings {
                theme,
                ..fixtures::settings()
            },
            fixtures::now(),
            (80, 24),
        );
        jobs_loaded(&mut app);
        assert_eq!(app.view, View::Jobs);
        let terminal = render(&app);
        let buffer = terminal.backend().buffer();
        // Row 3 is the first job (RUNNING), its status column starts at 21.
        let cell = &buffer[(21, 3)];
        assert_eq!(cell.symbol(), "R");
        assert_eq!(
            cell.fg != Color::Reset,
            expect_colour,
            "{theme:?}: {cell:?}"
        );
        // The selected row stands out either way.
        let selected = &buffer[(2, 4)];
        assert!(
            selected
                .modifier
                .contains(ratatui::style::Modifier::REVERSED)
        );
    }
}

#[test]
fn the_readme_lists_every_key_as_the_help_does() {
    let readme = include_str!("../../../../README.md");
    let rows: Vec<String> = super::help::KEYS
        .iter()
        .map(|(key, does)| format!("| `{key}` | {does} |"))
        .collect();
    for row in &rows {
        assert!(
            readme.contains(row.as_str()),
            "README.md lacks the key row {row}"
        );
    }
    let table_rows = readme
        .lines()
        .skip_while(|l| *l != "| key | does |")
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .count();
    assert_eq!(
        table_rows,
        rows.len(),
        "README.md's key table has keys the help lacks"
    );
}
