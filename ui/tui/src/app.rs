//! The terminal UI as a state machine: [`App::update`] takes one [`Msg`] (a key, a resize, a
//! clock tick, a refresh tick, a request's answer, a live event) and returns the [`Cmd`]s it
//! needs run; [`crate::ui::draw`] only reads the state. Nothing here awaits or touches the
//! terminal, so the tests drive it with plain values.

pub mod events;
pub mod input;
pub mod jobs;
mod keys;
pub mod list;
pub mod overview;
pub mod protocol;
pub mod submit;

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use crossterm::event::KeyEventKind;
use uuid::Uuid;

use self::events::EventsState;
use self::input::LineInput;
use self::jobs::JobsState;
use self::list::ListCursor;
pub use self::protocol::{
    Answer, Cmd, FetchError, Fetched, JobsQuery, Msg, PageRole, Request, StreamMsg,
};
use self::submit::SubmitForm;
use crate::contracts::alert_list::AlertList;
use crate::contracts::dead_letter::DeadLetter;
use crate::contracts::event_envelope::{EventEnvelope, EventType};
use crate::contracts::job::JobStatus;
use crate::contracts::job_detail::JobDetail;
use crate::contracts::overview::Overview;
use crate::contracts::page_cursor::PageCursor;
use crate::contracts::queue_depths::QueueDepths;
use crate::ui::layout;

/// The views, in tab order (`1`–`6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    Overview,
    Jobs,
    Job,
    Events,
    DeadLetters,
    Alerts,
}

impl View {
    pub const ALL: [View; 6] = [
        View::Overview,
        View::Jobs,
        View::Job,
        View::Events,
        View::DeadLetters,
        View::Alerts,
    ];

    pub fn title(self) -> &'static str {
        match self {
            View::Overview => "Overview",
            View::Jobs => "Jobs",
            View::Job => "Job",
            View::Events => "Events",
            View::DeadLetters => "Dead letters",
            View::Alerts => "Alerts",
        }
    }

    /// The name `:` takes.
    pub fn command(self) -> &'static str {
        match self {
            View::Overview => "overview",
            View::Jobs => "jobs",
            View::Job => "job",
            View::Events => "events",
            View::DeadLetters => "dead",
            View::Alerts => "alerts",
        }
    }

    fn from_command(name: &str) -> Option<View> {
        Some(match name {
            "overview" | "o" | "home" => View::Overview,
            "jobs" | "j" => View::Jobs,
            "job" => View::Job,
            "events" | "e" | "ev" => View::Events,
            "dead" | "d" | "dead-letters" | "deadletters" | "dl" => View::DeadLetters,
            "alerts" | "a" => View::Alerts,
            _ => return None,
        })
    }

    fn index(self) -> usize {
        View::ALL.iter().position(|v| *v == self).unwrap_or(0)
    }
}

/// Something drawn over the current view.
#[derive(Debug, Clone)]
pub enum Overlay {
    Help,
    /// `:` — a view name, `q`, `job ID`, `submit`, `help`.
    Command(LineInput),
    /// `/` — the current view's filter or search.
    Filter(LineInput),
    Submit(Box<SubmitForm>),
    /// Text to read (and copy), e.g. a URL that could not be opened here.
    Message {
        title: String,
        lines: Vec<String>,
    },
}

/// A request's progress, and the last answer's time or error.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FetchState {
    pub fetched_at: Option<DateTime<Utc>>,
    pub error: Option<FetchError>,
    pub loading: bool,
}

impl FetchState {
    /// Marks the request as sent; `false` when one is already on its way.
    fn begin(&mut self) -> bool {
        !std::mem::replace(&mut self.loading, true)
    }

    fn succeeded(&mut self, now: DateTime<Utc>) {
        self.loading = false;
        self.error = None;
        self.fetched_at = Some(now);
    }

    fn failed(&mut self, error: FetchError) {
        self.loading = false;
        self.error = Some(error);
    }
}

/// How current the data of a part of the screen is.
#[derive(Debug, Clone, PartialEq)]
pub enum Freshness {
    /// Nothing yet; a request is on its way.
    Loading,
    /// Nothing, because the request failed.
    Failed(FetchError),
    Fresh,
    /// What is shown is from `since` and could not be refreshed.
    Stale {
        since: Option<DateTime<Utc>>,
        error: Option<FetchError>,
    },
}

/// Data and its fetch state.
#[derive(Debug, Clone)]
pub struct Loadable<T> {
    pub data: Option<T>,
    pub fetch: FetchState,
}

impl<T> Default for Loadable<T> {
    fn default() -> Self {
        Self {
            data: None,
            fetch: FetchState::default(),
        }
    }
}

impl<T: PartialEq> Loadable<T> {
    /// Stores an answer; returns whether what is shown changed.
    fn answer(&mut self, answer: Result<T, FetchError>, now: DateTime<Utc>) -> bool {
        let before = self.fetch.clone();
        match answer {
            Ok(data) => {
                self.fetch.succeeded(now);
                let changed = self.data.as_ref() != Some(&data);
                self.data = Some(data);
                changed || before.error.is_some()
            }
            Err(error) => {
                let changed = before.error.as_ref() != Some(&error);
                self.fetch.failed(error);
                changed
            }
        }
    }
}

/// The live stream's state, as the connection indicator shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamState {
    Connecting,
    Live,
    Down {
        reason: String,
        retry_at: DateTime<Utc>,
    },
}

/// Whether the read model answers, and the live stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    pub stream: StreamState,
    /// Since when requests get no answer at all.
    pub offline_since: Option<DateTime<Utc>>,
    pub offline_reason: Option<String>,
    /// The stream has been down once: the next `Connected` must catch up.
    was_down: bool,
}

impl Default for Connection {
    fn default() -> Self {
        Self {
            stream: StreamState::Connecting,
            offline_since: None,
            offline_reason: None,
            was_down: false,
        }
    }
}

/// A line in the status bar for a few seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub text: String,
    pub error: bool,
    pub until: DateTime<Utc>,
}

/// How the UI was started.
#[derive(Debug, Clone)]
pub struct Settings {
    pub read_model_url: String,
    pub gateway_url: String,
    pub refresh: Duration,
    pub read_only: bool,
    /// A browser can be opened here (a display, not over SSH).
    pub can_open_browser: bool,
    pub theme: crate::theme::Theme,
}

/// The job detail view.
#[derive(Debug, Default)]
pub struct JobView {
    pub id: Option<Uuid>,
    pub detail: Loadable<Box<JobDetail>>,
    pub scroll: usize,
    /// A live event for this job arrived while its detail was loading: load again after.
    again: bool,
}

impl JobView {
    /// Whether the job and its timeline have reached their end (no more following).
    pub fn finished(&self) -> bool {
        self.detail.data.as_ref().is_some_and(|d| {
            let terminal = matches!(
                d.job.status,
                JobStatus::Completed | JobStatus::Failed | JobStatus::DeadLettered
            );
            terminal && d.events.iter().any(is_terminal_event)
        })
    }
}

fn is_terminal_event(event: &EventEnvelope) -> bool {
    match event.event_type {
        EventType::JobCompleted | EventType::JobDeadLettered => true,
        EventType::JobFailed => {
            event.payload.get("jobStatus").and_then(|s| s.as_str()) == Some("FAILED")
        }
        EventType::JobCreated | EventType::JobStarted => false,
    }
}

/// The dead letters list.
#[derive(Debug, Default)]
pub struct DeadLettersState {
    pub rows: Vec<DeadLetter>,
    pub next_cursor: Option<PageCursor>,
    pub cursor: ListCursor,
    /// Shown rows contain this text (case-insensitive), when set.
    pub text_filter: Option<String>,
    pub first: FetchState,
    pub more: FetchState,
}

impl DeadLettersState {
    pub fn visible(&self) -> Vec<&DeadLetter> {
        let needle = self.text_filter.as_deref().map(str::to_lowercase);
        self.rows
            .iter()
            .filter(|d| {
                needle.as_ref().is_none_or(|n| {
                    [
                        d.reason.to_string(),
                        d.source.clone(),
                        d.message.clone().unwrap_or_default(),
                        d.job_id.map(|id| id.to_string()).unwrap_or_default(),
                    ]
                    .iter()
                    .any(|field| field.to_lowercase().contains(n))
                })
            })
            .collect()
    }

    pub fn selected(&self) -> Option<&DeadLetter> {
        self.visible().get(self.cursor.selected).copied()
    }
}

/// The alerts list.
#[derive(Debug, Default)]
pub struct AlertsState {
    pub list: Loadable<AlertList>,
    pub cursor: ListCursor,
    pub text_filter: Option<String>,
}

/// Everything the UI shows, and how it reacts.
pub struct App {
    pub settings: Settings,
    pub now: DateTime<Utc>,
    pub view: View,
    /// Where Esc returns from the job view.
    pub back_to: View,
    pub overlay: Option<Overlay>,
    pub notice: Option<Notice>,
    pub connection: Connection,
    pub overview: Loadable<Overview>,
    pub queues: Loadable<QueueDepths>,
    pub alerts: AlertsState,
    pub jobs: JobsState,
    pub job: JobView,
    pub events: EventsState,
    pub dead_letters: DeadLettersState,
    /// The terminal's size (columns, rows).
    pub size: (u16, u16),
    dirty: bool,
    quit: bool,
}

/// How long a notice stays.
const NOTICE_SECONDS: i64 = 5;
/// Rows asked per page of a list.
pub const PAGE_SIZE: u64 = 100;

impl App {
    pub fn new(settings: Settings, now: DateTime<Utc>, size: (u16, u16)) -> Self {
        Self {
            settings,
            now,
            view: View::Overview,
            back_to: View::Jobs,
            overlay: None,
            notice: None,
            connection: Connection::default(),
            overview: Loadable::default(),
            queues: Loadable::default(),
            alerts: AlertsState::default(),
            jobs: JobsState::default(),
            job: JobView::default(),
            events: EventsState::default(),
            dead_letters: DeadLettersState::default(),
            size,
            dirty: true,
            quit: false,
        }
    }

    /// What to fetch first.
    pub fn start(&mut self) -> Vec<Cmd> {
        self.refresh(true)
    }

    pub fn should_quit(&self) -> bool {
        self.quit
    }

    /// Whether the screen must be drawn again; reading it clears it.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// After this many seconds without an answer, shown data is marked stale.
    fn stale_after(&self) -> TimeDelta {
        let refresh = TimeDelta::from_std(self.settings.refresh).unwrap_or(TimeDelta::seconds(1));
        refresh * 3 + TimeDelta::seconds(2)
    }

    /// How current data fetched with `fetch` is (`has_data`: something is shown).
    pub fn freshness(&self, fetch: &FetchState, has_data: bool) -> Freshness {
        match (has_data, &fetch.error) {
            (false, Some(error)) => Freshness::Failed(error.clone()),
            (false, None) => Freshness::Loading,
            (true, error) => {
                let old = fetch
                    .fetched_at
                    .is_none_or(|at| self.now - at > self.stale_after());
                // The live stream keeps the lists current between refreshes; without it, and
                // without answers, what is shown is only as current as its last answer.
                if error.is_some() || old || self.connection.offline_since.is_some() {
                    Freshness::Stale {
                        since: fetch.fetched_at,
                        error: error.clone(),
                    }
                } else {
                    Freshness::Fresh
                }
            }
        }
    }

    fn list_height(&self, view: View) -> usize {
        layout::list_rows(view, self.size)
    }

    fn notify(&mut self, text: impl Into<String>, error: bool) {
        self.notice = Some(Notice {
            text: text.into(),
            error,
            until: self.now + TimeDelta::seconds(NOTICE_SECONDS),
        });
        self.dirty = true;
    }

    /// Handles one message.
    pub fn update(&mut self, msg: Msg) -> Vec<Cmd> {
        match msg {
            Msg::Key(key) if key.kind != KeyEventKind::Release => self.key(key),
            Msg::Key(_) => Vec::new(),
            Msg::Paste(text) => {
                if let Some(Overlay::Submit(form)) = &mut self.overlay {
                    form.paste(&text);
                    self.dirty = true;
                } else if let Some(Overlay::Command(input) | Overlay::Filter(input)) =
                    &mut self.overlay
                {
                    input.insert_str(&text);
                    self.dirty = true;
                }
                Vec::new()
            }
            Msg::Resize { width, height } => {
                self.size = (width, height);
                for view in [View::Jobs, View::Events, View::DeadLetters, View::Alerts] {
                    let rows = self.list_height(view);
                    let len = self.list_len(view);
                    if let Some(cursor) = self.list_cursor(view) {
                        cursor.keep_visible(len, rows);
                    }
                }
                self.dirty = true;
                Vec::new()
            }
            Msg::Tick(now) => {
                self.now = now;
                if self.notice.as_ref().is_some_and(|n| n.until <= now) {
                    self.notice = None;
                    self.dirty = true;
                }
                if self.clock_visible() {
                    self.dirty = true;
                }
                Vec::new()
            }
            Msg::Refresh => self.refresh(false),
            Msg::Fetched(fetched) => self.fetched(*fetched),
            Msg::Stream(stream) => self.stream(stream),
            Msg::OpenFailed { url, reason } => {
                self.overlay = Some(Overlay::Message {
                    title: "Open in a browser".into(),
                    lines: vec![
                        format!(
                            "The browser did not start ({reason}); open this address yourself:"
                        ),
                        String::new(),
                        url,
                    ],
                });
                self.dirty = true;
                Vec::new()
            }
        }
    }

    /// Whether the screen shows something that changes with the clock alone.
    fn clock_visible(&self) -> bool {
        let connection = !matches!(self.connection.stream, StreamState::Live)
            || self.connection.offline_since.is_some();
        let running =
            |status: JobStatus| matches!(status, JobStatus::Running | JobStatus::Retrying);
        let view = match self.view {
            View::Jobs => {
                let rows = self.list_height(View::Jobs);
                self.jobs
                    .rows
                    .iter()
                    .skip(self.jobs.cursor.offset)
                    .take(rows)
                    .any(|j| running(j.status))
            }
            View::Job => !self.job.finished(),
            _ => false,
        };
        // Staleness appears with time: redraw while anything shown could turn stale.
        connection || view || self.any_stale_soon()
    }

    fn any_stale_soon(&self) -> bool {
        let fetch = match self.view {
            View::Overview => &self.overview.fetch,
            View::Jobs => &self.jobs.first,
            View::Job => &self.job.detail.fetch,
            View::Events => return false,
            View::DeadLetters => &self.dead_letters.first,
            View::Alerts => &self.alerts.list.fetch,
        };
        fetch
            .fetched_at
            .is_some_and(|at| self.now - at > self.stale_after() - TimeDelta::seconds(2))
    }

    // ----- refreshing ---------------------------------------------------------------------

    /// Requests for what the current view shows (`force`: even what is already complete).
    fn refresh(&mut self, force: bool) -> Vec<Cmd> {
        let mut cmds = Vec::new();
        match self.view {
            View::Overview => {
                if self.overview.fetch.begin() {
                    cmds.push(Cmd::Fetch(Request::Overview));
                }
                if self.queues.fetch.begin() {
                    cmds.push(Cmd::Fetch(Request::Queues));
                }
                if self.alerts.list.fetch.begin() {
                    cmds.push(Cmd::Fetch(Request::Alerts));
                }
            }
            View::Jobs => {
                if self.jobs.first.begin() {
                    cmds.push(Cmd::Fetch(Request::Jobs {
                        query: self.jobs.query.clone(),
                        cursor: None,
                        role: PageRole::First,
                    }));
                }
            }
            View::Job => {
                if let Some(id) = self.job.id
                    && (force || !self.job.finished())
                    && self.job.detail.fetch.begin()
                {
                    cmds.push(Cmd::Fetch(Request::Job(id)));
                }
            }
            View::Events => {
                // Once: the newest stored events under the live ones (later, the stream).
                if (force || self.events.first.fetched_at.is_none()) && self.events.first.begin() {
                    cmds.push(Cmd::Fetch(Request::Events {
                        event_type: self.events.type_filter,
                        cursor: None,
                        after: None,
                        before: None,
                        role: PageRole::First,
                    }));
                }
            }
            View::DeadLetters => {
                if self.dead_letters.first.begin() {
                    cmds.push(Cmd::Fetch(Request::DeadLetters {
                        cursor: None,
                        role: PageRole::First,
                    }));
                }
            }
            View::Alerts => {
                if self.alerts.list.fetch.begin() {
                    cmds.push(Cmd::Fetch(Request::Alerts));
                }
            }
        }
        cmds
    }

    fn show(&mut self, view: View) -> Vec<Cmd> {
        if view != View::Job && self.view != View::Job {
            self.back_to = view;
        } else if view == View::Job && self.view != View::Job {
            self.back_to = self.view;
        }
        self.view = view;
        self.dirty = true;
        self.refresh(false)
    }

    /// Opens the job view on `id`.
    fn open_job(&mut self, id: Uuid) -> Vec<Cmd> {
        if self.job.id != Some(id) {
            self.job = JobView {
                id: Some(id),
                ..JobView::default()
            };
        }
        self.show(View::Job)
    }

    /// Asks for the next page of the current list when the selection nears its end.
    fn load_more(&mut self) -> Vec<Cmd> {
        let rows = self.list_height(self.view);
        match self.view {
            View::Jobs => {
                let jobs = &mut self.jobs;
                if let Some(cursor) = jobs.next_cursor.clone()
                    && jobs.cursor.near_end(jobs.rows.len(), rows)
                    && jobs.more.error.is_none()
                    && jobs.more.begin()
                {
                    return vec![Cmd::Fetch(Request::Jobs {
                        query: jobs.query.clone(),
                        cursor: Some(cursor),
                        role: PageRole::Next,
                    })];
                }
            }
            View::DeadLetters => {
                let dead = &mut self.dead_letters;
                let len = dead.visible().len();
                if let Some(cursor) = dead.next_cursor.clone()
                    && dead.cursor.near_end(len, rows)
                    && dead.more.error.is_none()
                    && dead.more.begin()
                {
                    return vec![Cmd::Fetch(Request::DeadLetters {
                        cursor: Some(cursor),
                        role: PageRole::Next,
                    })];
                }
            }
            View::Events => {
                let events = &mut self.events;
                // Older events page in when paused (live, the top is what matters).
                if events.paused
                    && events.cursor.near_end(events.items.len(), rows)
                    && events.older.error.is_none()
                    && let Some((cursor, before)) = events.older_request()
                    && events.older.begin()
                {
                    return vec![Cmd::Fetch(Request::Events {
                        event_type: events.type_filter,
                        cursor,
                        after: None,
                        before,
                        role: PageRole::Next,
                    })];
                }
            }
            _ => {}
        }
        Vec::new()
    }

    // ----- answers ------------------------------------------------------------------------

    fn fetched(&mut self, fetched: Fetched) -> Vec<Cmd> {
        let now = self.now;
        // An answer equal to what is shown may still turn a stale view fresh.
        let shown = self.view_freshness();
        // The read model (or gateway) answered, or did not answer at all.
        match &fetched.answer {
            Err(FetchError::Unreachable(reason)) => {
                if !matches!(fetched.request, Request::Submit { .. })
                    && self.connection.offline_since.is_none()
                {
                    self.connection.offline_since = Some(now);
                    self.connection.offline_reason = Some(reason.clone());
                    self.dirty = true;
                }
            }
            _ => {
                if !matches!(fetched.request, Request::Submit { .. })
                    && self.connection.offline_since.take().is_some()
                {
                    self.connection.offline_reason = None;
                    self.dirty = true;
                }
            }
        }
        let Fetched { request, answer } = fetched;
        let mut cmds = Vec::new();
        let changed = match (request, answer) {
            (Request::Overview, answer) => {
                self.overview.answer(
                    answer.and_then(|a| match a {
                        Answer::Overview(o) => Ok(o),
                        other => Err(unexpected(&other)),
                    }),
                    now,
                ) && self.view == View::Overview
            }
            (Request::Queues, answer) => {
                self.queues.answer(
                    answer.and_then(|a| match a {
                        Answer::Queues(q) => Ok(q),
                        other => Err(unexpected(&other)),
                    }),
                    now,
                ) && self.view == View::Overview
            }
            (Request::Alerts, answer) => {
                let changed = self.alerts.list.answer(
                    answer.and_then(|a| match a {
                        Answer::Alerts(list) => Ok(list),
                        other => Err(unexpected(&other)),
                    }),
                    now,
                );
                changed && matches!(self.view, View::Overview | View::Alerts)
            }
            (Request::Jobs { query, role, .. }, answer) => {
                if query != self.jobs.query {
                    return Vec::new(); // An answer for a filter no longer shown.
                }
                let rows = self.list_height(View::Jobs);
                let changed = match (role, answer) {
                    (PageRole::First, Ok(Answer::Jobs(page))) => {
                        let recovered = self.jobs.first.error.is_some();
                        self.jobs.first.succeeded(now);
                        self.jobs.first_page(page, now, rows) || recovered
                    }
                    (PageRole::Next, Ok(Answer::Jobs(page))) => {
                        self.jobs.more.succeeded(now);
                        self.jobs.next_page(page, rows)
                    }
                    (role, answer) => {
                        let error = answer
                            .err()
                            .unwrap_or_else(|| FetchError::Unexpected("not a job page".into()));
                        match role {
                            PageRole::First => self.jobs.first.failed(error),
                            PageRole::Next => self.jobs.more.failed(error),
                        }
                        true
                    }
                };
                cmds.extend(self.load_more_if(View::Jobs));
                changed && self.view == View::Jobs
            }
            (Request::Job(id), answer) => {
                if self.job.id != Some(id) {
                    return Vec::new();
                }
                let changed = self.job.detail.answer(
                    answer.and_then(|a| match a {
                        Answer::Job(detail) => Ok(detail),
                        other => Err(unexpected(&other)),
                    }),
                    now,
                );
                if std::mem::take(&mut self.job.again) && self.job.detail.fetch.begin() {
                    cmds.push(Cmd::Fetch(Request::Job(id)));
                }
                changed && self.view == View::Job
            }
            (Request::FindJob(prefix), answer) => {
                self.found(&prefix, answer, &mut cmds);
                true
            }
            (
                Request::Events {
                    event_type, role, ..
                },
                answer,
            ) => {
                if event_type != self.events.type_filter {
                    return Vec::new();
                }
                let rows = self.list_height(View::Events);
                let state = match role {
                    PageRole::First => &mut self.events.first,
                    PageRole::Next => &mut self.events.older,
                };
                let changed = match answer {
                    Ok(Answer::Events(page)) => {
                        state.succeeded(now);
                        self.events.page(page, role == PageRole::Next, rows)
                    }
                    Ok(other) => {
                        state.failed(unexpected(&other));
                        true
                    }
                    Err(error) => {
                        state.failed(error);
                        true
                    }
                };
                changed && self.view == View::Events
            }
            (Request::DeadLetters { role, .. }, answer) => {
                let rows = self.list_height(View::DeadLetters);
                let dead = &mut self.dead_letters;
                let before = (
                    dead.rows.clone(),
                    dead.first.error.clone(),
                    dead.more.error.clone(),
                );
                let selected = dead.selected().map(|d| d.id);
                let state = match role {
                    PageRole::First => &mut dead.first,
                    PageRole::Next => &mut dead.more,
                };
                match answer {
                    Ok(Answer::DeadLetters(page)) => {
                        state.succeeded(now);
                        merge_dead_letters(dead, page, role);
                    }
                    Ok(other) => state.failed(unexpected(&other)),
                    Err(error) => state.failed(error),
                }
                let visible = dead.visible();
                let index = selected.and_then(|id| visible.iter().position(|d| d.id == id));
                let len = visible.len();
                dead.cursor.follow(index, len, rows);
                let changed = before
                    != (
                        dead.rows.clone(),
                        dead.first.error.clone(),
                        dead.more.error.clone(),
                    );
                cmds.extend(self.load_more_if(View::DeadLetters));
                changed && self.view == View::DeadLetters
            }
            (Request::Submit { .. }, answer) => {
                self.submitted(answer, &mut cmds);
                true
            }
        };
        if changed || self.view_freshness() != shown {
            self.dirty = true;
        }
        cmds
    }

    /// The freshness of the current view's main data.
    fn view_freshness(&self) -> Freshness {
        match self.view {
            View::Overview => self.freshness(&self.overview.fetch, self.overview.data.is_some()),
            View::Jobs => self.freshness(&self.jobs.first, self.jobs.first.fetched_at.is_some()),
            View::Job => self.freshness(&self.job.detail.fetch, self.job.detail.data.is_some()),
            View::Events => self.freshness(&self.events.first, true),
            View::DeadLetters => self.freshness(
                &self.dead_letters.first,
                self.dead_letters.first.fetched_at.is_some(),
            ),
            View::Alerts => {
                self.freshness(&self.alerts.list.fetch, self.alerts.list.data.is_some())
            }
        }
    }

    fn load_more_if(&mut self, view: View) -> Vec<Cmd> {
        if self.view == view {
            self.load_more()
        } else {
            Vec::new()
        }
    }

    /// The answer to `/` with an id prefix: one job opens, several are listed, none is said.
    fn found(&mut self, prefix: &str, answer: Result<Answer, FetchError>, cmds: &mut Vec<Cmd>) {
        match answer {
            Ok(Answer::Jobs(page)) => match page.items.as_slice() {
                [] => self.notify(format!("no job id starts with {prefix}"), true),
                [only] => {
                    let id = only.id;
                    cmds.extend(self.open_job(id));
                }
                _ => {
                    self.jobs.set_query(JobsQuery {
                        id_prefix: Some(prefix.to_owned()),
                        ..JobsQuery::default()
                    });
                    cmds.extend(self.show(View::Jobs));
                    self.notify(format!("several jobs start with {prefix}"), false);
                }
            },
            Ok(other) => self.notify(unexpected(&other).to_string(), true),
            Err(error) => self.notify(format!("searching jobs: {error}"), true),
        }
    }

    fn submitted(&mut self, answer: Result<Answer, FetchError>, cmds: &mut Vec<Cmd>) {
        match answer {
            Ok(Answer::Accepted(accepted)) => {
                if matches!(self.overlay, Some(Overlay::Submit(_))) {
                    self.overlay = None;
                }
                let duplicate = if accepted.duplicate == Some(true) {
                    " (already submitted with this key)"
                } else {
                    ""
                };
                self.notify(
                    format!("job {} accepted{duplicate}", accepted.job_id),
                    false,
                );
                cmds.extend(self.open_job(accepted.job_id));
            }
            Ok(other) => self.refused(&unexpected(&other)),
            Err(error) => self.refused(&error),
        }
    }

    fn refused(&mut self, error: &FetchError) {
        match &mut self.overlay {
            Some(Overlay::Submit(form)) => form.refused_by_gateway(error),
            _ => self.notify(format!("the gateway refused the job: {error}"), true),
        }
        self.dirty = true;
    }

    // ----- the live stream ----------------------------------------------------------------

    fn stream(&mut self, msg: StreamMsg) -> Vec<Cmd> {
        match msg {
            StreamMsg::Connected => {
                self.connection.stream = StreamState::Live;
                self.dirty = true;
                if std::mem::take(&mut self.connection.was_down) {
                    return self.catch_up();
                }
                Vec::new()
            }
            StreamMsg::Down { reason, retry_at } => {
                self.connection.stream = StreamState::Down { reason, retry_at };
                self.connection.was_down = true;
                self.dirty = true;
                Vec::new()
            }
            StreamMsg::Event(event) => self.live_event(*event),
        }
    }

    /// After the stream was down: what happened meanwhile, without repeating anything. The
    /// event tail asks the log for what it missed since its newest event.
    fn catch_up(&mut self) -> Vec<Cmd> {
        let Some(newest) = self.events.newest() else {
            return self.refresh(true);
        };
        let mut cmds = if self.view == View::Events {
            Vec::new()
        } else {
            self.refresh(true)
        };
        if self.events.first.begin() {
            cmds.push(Cmd::Fetch(Request::Events {
                event_type: self.events.type_filter,
                cursor: None,
                after: Some(newest),
                before: None,
                role: PageRole::First,
            }));
        }
        cmds
    }

    fn live_event(&mut self, event: EventEnvelope) -> Vec<Cmd> {
        let mut cmds = Vec::new();
        let job_id = event
            .payload
            .get("jobId")
            .and_then(|id| id.as_str())
            .and_then(|id| Uuid::try_parse(id).ok());
        if let Some(overview) = &mut self.overview.data
            && overview::count_live_event(overview, &event)
            && self.view == View::Overview
        {
            self.dirty = true;
        }
        if self.jobs.apply(&event, self.list_height(View::Jobs)) && self.view == View::Jobs {
            self.dirty = true;
        }
        if job_id.is_some() && job_id == self.job.id {
            if self.job.detail.fetch.begin() {
                cmds.push(Cmd::Fetch(Request::Job(job_id.unwrap_or_default())));
            } else {
                self.job.again = true;
            }
        }
        let rows = self.list_height(View::Events);
        if self.events.live(event, rows) && self.view == View::Events {
            self.dirty = true;
        }
        cmds
    }
}

fn unexpected(answer: &Answer) -> FetchError {
    FetchError::Unexpected(format!("{answer:?}").chars().take(80).collect())
}

fn merge_dead_letters(
    dead: &mut DeadLettersState,
    page: crate::contracts::dead_letter_page::DeadLetterPage,
    role: PageRole,
) {
    let key = |d: &DeadLetter| (d.received_at, d.id);
    match role {
        PageRole::Next => {
            let shown: std::collections::HashSet<Uuid> = dead.rows.iter().map(|d| d.id).collect();
            dead.rows
                .extend(page.items.into_iter().filter(|d| !shown.contains(&d.id)));
            dead.next_cursor = page.next_cursor;
        }
        PageRole::First => {
            let boundary = page.items.last().map(key);
            let in_page: std::collections::HashSet<Uuid> =
                page.items.iter().map(|d| d.id).collect();
            let older: Vec<DeadLetter> = match boundary {
                Some(b) if page.next_cursor.is_some() => dead
                    .rows
                    .iter()
                    .filter(|d| key(d) < b && !in_page.contains(&d.id))
                    .cloned()
                    .collect(),
                _ => Vec::new(),
            };
            if older.is_empty() {
                dead.next_cursor = page.next_cursor;
            }
            dead.rows = page.items;
            dead.rows.extend(older);
        }
    }
}

/// Every status, in the contract's order.
pub fn jobs_statuses() -> Vec<JobStatus> {
    observatory_cli::JOB_STATUSES.to_vec()
}

/// Every event type, in the contract's order.
pub fn event_types() -> Vec<EventType> {
    // Stops compiling when the contract gains an event type, so that the list stays complete.
    const fn _every_type_is_listed(event_type: EventType) {
        match event_type {
            EventType::JobCreated
            | EventType::JobStarted
            | EventType::JobCompleted
            | EventType::JobFailed
            | EventType::JobDeadLettered => {}
        }
    }
    vec![
        EventType::JobCreated,
        EventType::JobStarted,
        EventType::JobCompleted,
        EventType::JobFailed,
        EventType::JobDeadLettered,
    ]
}

/// The value after `current` in `values`, and `None` after the last (no filter).
fn next_in<T: PartialEq + Clone>(values: &[T], current: Option<T>) -> Option<T> {
    match current.and_then(|c| values.iter().position(|v| *v == c)) {
        None => values.first().cloned(),
        Some(i) => values.get(i + 1).cloned(),
    }
}

/// The dashboard's jobs URL query for a filter.
fn jobs_url_query(query: &JobsQuery) -> String {
    let mut parts = Vec::new();
    if let Some(s) = query.status {
        parts.push(format!("status={s}"));
    }
    if let Some(t) = &query.job_type {
        parts.push(format!("type={}", t.as_str()));
    }
    if let Some(p) = &query.id_prefix {
        parts.push(format!("id={p}"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

#[cfg(test)]
mod tests;
