//! The state machine, driven by messages alone: no terminal, no network.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde_json::json;

use super::*;
use crate::fixtures::{self, app, at, fetched, id, job, page};

fn key(app: &mut App, code: KeyCode) -> Vec<Cmd> {
    app.update(Msg::Key(KeyEvent::from(code)))
}

fn keys(app: &mut App, text: &str) -> Vec<Cmd> {
    text.chars()
        .flat_map(|c| key(app, KeyCode::Char(c)))
        .collect()
}

fn fetches(cmds: &[Cmd]) -> Vec<&Request> {
    cmds.iter()
        .filter_map(|c| match c {
            Cmd::Fetch(r) => Some(r),
            Cmd::OpenUrl(_) => None,
        })
        .collect()
}

#[test]
fn the_first_screen_asks_for_its_data_once_at_a_time() {
    let mut app = app((80, 24));
    let cmds = app.start();
    assert_eq!(
        fetches(&cmds),
        [&Request::Overview, &Request::Queues, &Request::Alerts]
    );
    // Answers have not come yet: a refresh asks for nothing more.
    assert!(app.update(Msg::Refresh).is_empty());
    app.update(fetched(Request::Overview, Ok(fixtures::overview())));
    assert_eq!(fetches(&app.update(Msg::Refresh)), [&Request::Overview]);
}

#[test]
fn keys_switch_views_and_each_view_loads_what_it_shows() {
    let mut app = app((80, 24));
    app.start();
    assert_eq!(
        fetches(&key(&mut app, KeyCode::Char('2'))),
        [&fixtures::first_jobs()]
    );
    assert_eq!(app.view, View::Jobs);
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.view, View::Job);
    key(&mut app, KeyCode::BackTab);
    key(&mut app, KeyCode::BackTab);
    assert_eq!(app.view, View::Overview);
    let cmds = keys(&mut app, ":dead");
    assert!(cmds.is_empty() && matches!(app.overlay, Some(Overlay::Command(_))));
    let cmds = key(&mut app, KeyCode::Enter);
    assert_eq!(app.view, View::DeadLetters);
    assert!(matches!(fetches(&cmds)[..], [Request::DeadLetters { .. }]));
    keys(&mut app, ":nonsense");
    key(&mut app, KeyCode::Enter);
    assert!(
        app.notice
            .as_ref()
            .is_some_and(|n| n.error && n.text.contains("unknown command"))
    );
    key(&mut app, KeyCode::Char('?'));
    assert!(matches!(app.overlay, Some(Overlay::Help)));
    key(&mut app, KeyCode::Char('x'));
    assert!(app.overlay.is_none(), "any key closes the help");
    key(&mut app, KeyCode::Char('Q'));
    assert!(app.should_quit());
}

#[test]
fn ctrl_c_quits_even_from_a_form() {
    let mut app = app((80, 24));
    key(&mut app, KeyCode::Char('s'));
    assert!(matches!(app.overlay, Some(Overlay::Submit(_))));
    app.update(Msg::Key(KeyEvent::new(
        KeyCode::Char('c'),
        KeyModifiers::CONTROL,
    )));
    assert!(app.should_quit());
}

/// The jobs view with 150 jobs loaded as two pages (newest first).
fn jobs_app() -> (App, Vec<Uuid>) {
    let mut app = app((80, 24));
    key(&mut app, KeyCode::Char('2'));
    let jobs = fixtures::completed_jobs(150);
    let ids: Vec<Uuid> = jobs.iter().map(|j| j.id).collect();
    app.update(fetched(
        fixtures::first_jobs(),
        Ok(page(
            jobs[..100].to_vec(),
            Some("c1.1795435200000000.0b4bd3a494b44b4e9a353a1d6f6c9d11"),
        )),
    ));
    assert_eq!(app.jobs.rows.len(), 100);
    // Scrolling to the end loads the next page.
    let cmds = key(&mut app, KeyCode::Char('G'));
    let next = Request::Jobs {
        query: JobsQuery::default(),
        cursor: Some(
            "c1.1795435200000000.0b4bd3a494b44b4e9a353a1d6f6c9d11"
                .parse()
                .expect("a cursor"),
        ),
        role: PageRole::Next,
    };
    assert_eq!(fetches(&cmds), [&next]);
    assert!(
        key(&mut app, KeyCode::Char('k')).is_empty(),
        "one page at a time"
    );
    app.update(fetched(next, Ok(page(jobs[100..].to_vec(), None))));
    assert_eq!(app.jobs.rows.len(), 150);
    (app, ids)
}

#[test]
fn jobs_page_in_as_the_selection_nears_the_end() {
    let (mut app, ids) = jobs_app();
    assert_eq!(app.jobs.selected().map(|j| j.id), Some(ids[98]));
    key(&mut app, KeyCode::Char('G'));
    assert_eq!(app.jobs.selected().map(|j| j.id), Some(ids[149]));
    assert!(app.jobs.next_cursor.is_none());
    // A refresh of the first page keeps the pages loaded below it, and the selection.
    let cmds = app.update(Msg::Refresh);
    assert_eq!(fetches(&cmds), [&fixtures::first_jobs()]);
    let first = fixtures::completed_jobs(100);
    app.update(fetched(
        fixtures::first_jobs(),
        Ok(page(
            first,
            Some("c1.1795435200000000.0b4bd3a494b44b4e9a353a1d6f6c9d11"),
        )),
    ));
    assert_eq!(app.jobs.rows.len(), 150);
    assert_eq!(app.jobs.selected().map(|j| j.id), Some(ids[149]));
}

#[test]
fn live_events_update_rows_and_new_jobs_do_not_move_the_selection() {
    let (mut app, ids) = jobs_app();
    key(&mut app, KeyCode::Char('g'));
    for _ in 0..5 {
        key(&mut app, KeyCode::Char('j'));
    }
    let selected = app.jobs.selected().map(|j| j.id);
    let on_screen = app.jobs.cursor.selected - app.jobs.cursor.offset;
    // Two new jobs arrive on top.
    for (n, seconds) in [(900, 2), (901, 1)] {
        app.update(Msg::Stream(StreamMsg::Event(Box::new(fixtures::created(
            id("ffff0000", n),
            at(seconds),
        )))));
    }
    assert_eq!(app.jobs.rows.len(), 152);
    assert_eq!(app.jobs.rows[0].id, id("ffff0000", 901), "newest on top");
    assert_eq!(app.jobs.selected().map(|j| j.id), selected);
    assert_eq!(app.jobs.cursor.selected - app.jobs.cursor.offset, on_screen);
    // A lifecycle event updates its row in place.
    app.update(Msg::Stream(StreamMsg::Event(Box::new(fixtures::started(
        id("ffff0000", 901),
        1,
        at(0),
    )))));
    assert_eq!(app.jobs.rows[0].status, JobStatus::Running);
    assert_eq!(app.jobs.rows[0].attempts, 1);
    // An event older than the row (out of order) changes nothing.
    let done = ids[0];
    let before = app.jobs.rows.iter().find(|j| j.id == done).cloned();
    app.update(Msg::Stream(StreamMsg::Event(Box::new(fixtures::started(
        done,
        1,
        at(5),
    )))));
    assert_eq!(app.jobs.rows.iter().find(|j| j.id == done).cloned(), before);
}

#[test]
fn a_job_created_that_does_not_fit_the_filter_is_not_shown() {
    let mut app = app((80, 24));
    key(&mut app, KeyCode::Char('2'));
    let cmds = key(&mut app, KeyCode::Char('f'));
    let query = JobsQuery {
        status: Some(JobStatus::Pending),
        ..JobsQuery::default()
    };
    assert!(matches!(fetches(&cmds)[..], [Request::Jobs { query: q, .. }] if *q == query));
    key(&mut app, KeyCode::Char('f'));
    assert_eq!(app.jobs.query.status, Some(JobStatus::Running));
    app.update(Msg::Stream(StreamMsg::Event(Box::new(fixtures::created(
        id("aaaa0000", 1),
        at(1),
    )))));
    assert!(app.jobs.rows.is_empty());
    key(&mut app, KeyCode::Esc);
    assert_eq!(
        app.jobs.query,
        JobsQuery::default(),
        "esc clears the filter"
    );
}

#[test]
fn search_opens_a_whole_id_lists_a_shared_prefix_and_says_when_nothing_matches() {
    let mut app = app((80, 24));
    key(&mut app, KeyCode::Char('2'));
    let other = id("0b4bd3a4", 9);
    key(&mut app, KeyCode::Char('/'));
    keys(&mut app, &other.to_string());
    let cmds = key(&mut app, KeyCode::Enter);
    assert_eq!(app.view, View::Job);
    assert_eq!(fetches(&cmds), [&Request::Job(other)]);
    let whole = id("0b4bd3a4", 7);

    key(&mut app, KeyCode::Char('2'));
    key(&mut app, KeyCode::Char('/'));
    keys(&mut app, "0B4B");
    let cmds = key(&mut app, KeyCode::Enter);
    let find = Request::FindJob("0b4b".into());
    assert_eq!(fetches(&cmds), [&find]);
    // One match opens it.
    let cmds = app.update(fetched(
        find.clone(),
        Ok(page(vec![job(whole, "sleep", "PENDING", at(3))], None)),
    ));
    assert_eq!((app.view, app.job.id), (View::Job, Some(whole)));
    assert_eq!(fetches(&cmds), [&Request::Job(whole)]);
    // Several: the jobs list, filtered by the prefix.
    let two = vec![
        job(whole, "sleep", "PENDING", at(3)),
        job(id("0b4b0000", 1), "sleep", "PENDING", at(4)),
    ];
    app.update(fetched(find.clone(), Ok(page(two, None))));
    assert_eq!(app.view, View::Jobs);
    assert_eq!(app.jobs.query.id_prefix.as_deref(), Some("0b4b"));
    // None: a notice, nothing else.
    app.update(fetched(find, Ok(page(vec![], None))));
    assert!(
        app.notice
            .as_ref()
            .is_some_and(|n| n.text == "no job id starts with 0b4b")
    );
    // Filters and an id prefix together filter the list.
    key(&mut app, KeyCode::Char('/'));
    key_event(&mut app, KeyCode::Char('u').with_ctrl());
    keys(&mut app, "status:failed type:fail 0b4b");
    let cmds = key(&mut app, KeyCode::Enter);
    let expected = JobsQuery {
        status: Some(JobStatus::Failed),
        job_type: Some("fail".parse().expect("a type")),
        id_prefix: Some("0b4b".into()),
    };
    assert!(matches!(fetches(&cmds)[..], [Request::Jobs { query, .. }] if *query == expected));
    // Nonsense is refused with a reason.
    key(&mut app, KeyCode::Char('/'));
    keys(&mut app, " zzz");
    key(&mut app, KeyCode::Enter);
    assert!(
        app.notice
            .as_ref()
            .is_some_and(|n| n.error && n.text.contains("not a job id"))
    );
}

trait Ctrl {
    fn with_ctrl(self) -> KeyEvent;
}

impl Ctrl for KeyCode {
    fn with_ctrl(self) -> KeyEvent {
        KeyEvent::new(self, KeyModifiers::CONTROL)
    }
}

fn key_event(app: &mut App, event: KeyEvent) -> Vec<Cmd> {
    app.update(Msg::Key(event))
}

#[test]
fn the_connection_indicator_follows_answers_and_the_stream() {
    let mut app = app((80, 24));
    app.start();
    assert_eq!(app.connection.stream, StreamState::Connecting);
    app.update(Msg::Stream(StreamMsg::Connected));
    assert_eq!(app.connection.stream, StreamState::Live);
    app.update(fetched(Request::Overview, Ok(fixtures::overview())));
    // The read model stops answering.
    app.update(Msg::Tick(at(-1)));
    app.update(fixtures::unreachable(Request::Queues));
    assert_eq!(app.connection.offline_since, Some(at(-1)));
    app.update(Msg::Stream(StreamMsg::Down {
        reason: "refused".into(),
        retry_at: at(-4),
    }));
    let (text, _) = crate::ui::status_connection(&app);
    assert_eq!(text, "✕ offline since 12:00:31 · retry in 3 s");
    // What is shown is marked stale, not presented as live.
    assert!(matches!(
        app.freshness(&app.overview.fetch, true),
        Freshness::Stale { .. }
    ));
    // It answers again; the stream comes back and catches up on what it missed.
    app.update(fetched(Request::Queues, Ok(fixtures::queues())));
    assert_eq!(app.connection.offline_since, None);
    key(&mut app, KeyCode::Char('4'));
    app.update(fetched(
        fixtures::first_events(),
        Ok(fixtures::event_page(
            json!({"items": [fixtures::created(id("00000000", 1), at(20))]}),
        )),
    ));
    let cmds = app.update(Msg::Stream(StreamMsg::Connected));
    assert!(
        fetches(&cmds)
            .iter()
            .any(|r| matches!(r, Request::Events { after: Some(t), .. } if *t == at(20))),
        "{cmds:?}"
    );
    let (text, _) = crate::ui::status_connection(&app);
    assert_eq!(text, "● live");
}

#[test]
fn data_turns_stale_when_refreshes_stop_answering() {
    let mut app = app((80, 24));
    app.start();
    app.update(fetched(Request::Overview, Ok(fixtures::overview())));
    assert_eq!(app.freshness(&app.overview.fetch, true), Freshness::Fresh);
    app.update(Msg::Tick(at(-10)));
    assert!(matches!(
        app.freshness(&app.overview.fetch, true),
        Freshness::Stale { .. }
    ));
    // A failed refresh keeps the data, marked stale with the error.
    app.update(fetched(
        Request::Overview,
        Err(fixtures::api_error(
            503,
            "redis-unavailable",
            "Redis is unavailable; retry later",
            json!([]),
        )),
    ));
    assert!(app.overview.data.is_some());
    assert!(matches!(
        app.freshness(&app.overview.fetch, true),
        Freshness::Stale { error: Some(_), .. }
    ));
}

#[test]
fn the_event_tail_shows_each_event_once_and_holds_them_while_paused() {
    let mut app = app((80, 24));
    key(&mut app, KeyCode::Char('4'));
    let a = fixtures::created(id("00000000", 1), at(3));
    let b = fixtures::started(id("00000000", 1), 1, at(2));
    app.update(Msg::Stream(StreamMsg::Event(Box::new(a.clone()))));
    app.update(Msg::Stream(StreamMsg::Event(Box::new(a.clone()))));
    assert_eq!(
        app.events.items.len(),
        1,
        "the same eventId twice is one event"
    );
    key(&mut app, KeyCode::Char(' '));
    assert!(app.events.paused);
    app.update(Msg::Stream(StreamMsg::Event(Box::new(b.clone()))));
    assert_eq!((app.events.items.len(), app.events.held.len()), (1, 1));
    // The stored page repeats both: nothing is shown twice.
    let page = serde_json::from_value(json!({"items": [b, a]})).expect("a page");
    app.update(fetched(fixtures::first_events(), Ok(Answer::Events(page))));
    key(&mut app, KeyCode::Char(' '));
    assert_eq!(app.events.items.len(), 2);
    assert!(app.events.held.is_empty());
    assert_eq!(
        app.events.items[0].event_type,
        EventType::JobStarted,
        "newest on top"
    );
    // A type filter: only that type, and the log is asked again for it.
    let cmds = key(&mut app, KeyCode::Char('t'));
    assert_eq!(app.events.type_filter, Some(EventType::JobCreated));
    assert!(matches!(
        fetches(&cmds)[..],
        [Request::Events {
            event_type: Some(EventType::JobCreated),
            ..
        }]
    ));
}

#[test]
fn the_form_sends_once_and_the_new_job_opens() {
    let mut app = app((80, 24));
    key(&mut app, KeyCode::Char('s'));
    let cmds = key_event(&mut app, KeyCode::Char('s').with_ctrl());
    let [Request::Submit { submission, .. }] = fetches(&cmds)[..] else {
        panic!("expected a submission: {cmds:?}");
    };
    assert_eq!(submission.type_.as_str(), "sleep");
    let accepted = serde_json::from_value(json!({
        "jobId": id("12345678", 1), "status": "PENDING", "eventId": uuid::Uuid::new_v4(),
        "correlationId": "req-1", "acceptedAt": fixtures::now()
    }))
    .expect("an acceptance");
    let cmds = app.update(fetched(
        Request::Submit {
            submission: submission.clone(),
            idempotency_key: None,
        },
        Ok(Answer::Accepted(accepted)),
    ));
    assert!(app.overlay.is_none());
    assert_eq!((app.view, app.job.id), (View::Job, Some(id("12345678", 1))));
    assert_eq!(fetches(&cmds), [&Request::Job(id("12345678", 1))]);
}

#[test]
fn the_gateways_details_land_at_their_fields() {
    let mut app = app((80, 24));
    key(&mut app, KeyCode::Char('s'));
    let cmds = key_event(&mut app, KeyCode::Char('s').with_ctrl());
    let [Request::Submit { submission, .. }] = fetches(&cmds)[..] else {
        panic!("expected a submission");
    };
    let error = fixtures::api_error(
        400,
        "validation-failed",
        "the request body does not match the schema",
        json!([{"pointer": "/maxAttempts", "message": "0 is less than the minimum of 1"}]),
    );
    app.update(fetched(
        Request::Submit {
            submission: submission.clone(),
            idempotency_key: None,
        },
        Err(error),
    ));
    let Some(Overlay::Submit(form)) = &app.overlay else {
        panic!("the form stays open");
    };
    assert!(!form.sending);
    assert!(
        form.refused
            .as_deref()
            .is_some_and(|r| r.contains("validation-failed"))
    );
    let at_field: Vec<_> = form.problems_at(submit::Field::MaxAttempts).collect();
    assert_eq!(at_field.len(), 1);
    assert!(at_field[0].message.starts_with("/maxAttempts"));
}

#[test]
fn read_only_has_no_form() {
    let mut app = App::new(
        Settings {
            read_only: true,
            ..fixtures::settings()
        },
        fixtures::now(),
        (80, 24),
    );
    key(&mut app, KeyCode::Char('s'));
    assert!(app.overlay.is_none());
    assert!(
        app.notice
            .as_ref()
            .is_some_and(|n| n.text.contains("read-only"))
    );
}

#[test]
fn o_opens_the_dashboard_or_shows_its_address() {
    let mut app = app((80, 24));
    key(&mut app, KeyCode::Char('2'));
    app.update(fetched(
        fixtures::first_jobs(),
        Ok(page(
            vec![job(id("0b4bd3a4", 1), "sleep", "PENDING", at(1))],
            None,
        )),
    ));
    // Over SSH, or without a display: the address, to copy.
    key(&mut app, KeyCode::Char('o'));
    let Some(Overlay::Message { lines, .. }) = &app.overlay else {
        panic!("expected the address");
    };
    assert!(lines.contains(&format!(
        "{}/#/jobs/{}",
        fixtures::READ_MODEL,
        id("0b4bd3a4", 1)
    )));
    key(&mut app, KeyCode::Esc);
    // With a display: the browser.
    app.settings.can_open_browser = true;
    key(&mut app, KeyCode::Char('f'));
    let cmds = key(&mut app, KeyCode::Char('o'));
    assert!(cmds.contains(&Cmd::OpenUrl(format!(
        "{}/#/jobs?status=PENDING",
        fixtures::READ_MODEL
    ))));
}

#[test]
fn an_idle_screen_is_not_redrawn() {
    let mut app = app((80, 24));
    app.start();
    app.update(Msg::Stream(StreamMsg::Connected));
    app.update(fetched(Request::Overview, Ok(fixtures::overview())));
    app.update(fetched(Request::Queues, Ok(fixtures::queues())));
    app.update(fetched(
        Request::Alerts,
        Ok(fixtures::alerts("not-configured")),
    ));
    key(&mut app, KeyCode::Char('5'));
    app.update(fetched(
        fixtures::first_dead_letters(),
        Ok(fixtures::dead_letter_page(json!({"items": []}))),
    ));
    assert!(app.take_dirty());
    // A clock tick with nothing time-dependent on screen, and an unchanged answer.
    app.update(Msg::Tick(fixtures::now()));
    assert!(!app.take_dirty());
    app.update(Msg::Refresh);
    app.update(fetched(
        fixtures::first_dead_letters(),
        Ok(fixtures::dead_letter_page(json!({"items": []}))),
    ));
    assert!(!app.take_dirty());
    // A key is always answered.
    key(&mut app, KeyCode::Char('j'));
    assert!(app.take_dirty());
}
