//! Keys: what each key does in each view and overlay, k9s style (`?` help, `:` commands,
//! `/` filters, Esc back or clear), and the `:` and `/` languages.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use uuid::Uuid;

use super::input::LineInput;
use super::list::{ListCursor, Move};
use super::submit::{self, FormAction};
use super::{App, Cmd, JobsQuery, Overlay, Request, View, event_types, jobs_url_query, next_in};
use crate::contracts::job::JobType;
use crate::ui::layout;

impl App {
    pub(super) fn key(&mut self, key: KeyEvent) -> Vec<Cmd> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(key.code, KeyCode::Char('c')) {
            self.quit = true;
            return Vec::new();
        }
        self.dirty = true;
        if let Some(overlay) = self.overlay.take() {
            return self.overlay_key(overlay, key);
        }
        let lower = match key.code {
            KeyCode::Char(c) if !ctrl => Some(c),
            _ => None,
        };
        match (key.code, lower) {
            (_, Some('q' | 'Q')) => self.quit = true,
            (_, Some('?')) => self.overlay = Some(Overlay::Help),
            (_, Some(':')) => self.overlay = Some(Overlay::Command(LineInput::default())),
            (_, Some('/')) => return self.open_filter(),
            (_, Some(c @ '1'..='6')) => {
                let index = usize::from(c as u8 - b'1');
                return self.show(View::ALL[index]);
            }
            (KeyCode::Tab, _) => return self.show(View::ALL[(self.view.index() + 1) % 6]),
            (KeyCode::BackTab, _) => return self.show(View::ALL[(self.view.index() + 5) % 6]),
            (_, Some('r' | 'R')) => {
                self.notify("refreshing", false);
                return self.refresh(true);
            }
            (_, Some('s' | 'S')) => {
                if self.settings.read_only {
                    self.notify(
                        "read-only: submitting is off (started with --read-only)",
                        true,
                    );
                } else {
                    self.overlay = Some(Overlay::Submit(Box::default()));
                }
            }
            (_, Some('o' | 'O')) => return self.open_in_browser(),
            (KeyCode::Esc, _) => return self.escape(),
            _ => return self.view_key(key),
        }
        Vec::new()
    }

    fn escape(&mut self) -> Vec<Cmd> {
        match self.view {
            View::Job => self.show(self.back_to),
            View::Jobs if self.jobs.query != JobsQuery::default() => {
                self.jobs.set_query(JobsQuery::default());
                self.refresh(false)
            }
            View::Events if self.events.type_filter.is_some() => {
                self.events.set_filter(None);
                self.refresh(false)
            }
            View::DeadLetters => {
                self.dead_letters.text_filter = None;
                self.dead_letters.cursor = ListCursor::default();
                Vec::new()
            }
            View::Alerts => {
                self.alerts.text_filter = None;
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn view_key(&mut self, key: KeyEvent) -> Vec<Cmd> {
        let movement = match key.code {
            KeyCode::Up | KeyCode::Char('k') => Some(Move::Up),
            KeyCode::Down | KeyCode::Char('j') => Some(Move::Down),
            KeyCode::PageUp => Some(Move::PageUp),
            KeyCode::PageDown | KeyCode::Char(' ') if self.view != View::Events => {
                Some(Move::PageDown)
            }
            KeyCode::PageDown => Some(Move::PageDown),
            KeyCode::Home | KeyCode::Char('g') => Some(Move::First),
            KeyCode::End | KeyCode::Char('G') => Some(Move::Last),
            _ => None,
        };
        if let Some(movement) = movement {
            return self.move_selection(movement);
        }
        match (self.view, key.code) {
            (View::Jobs, KeyCode::Enter) => {
                if let Some(id) = self.jobs.selected().map(|j| j.id) {
                    return self.open_job(id);
                }
            }
            (View::Jobs, KeyCode::Char('f' | 'F')) => {
                let next = next_in(&crate::app::jobs_statuses(), self.jobs.query.status);
                let query = JobsQuery {
                    status: next,
                    ..self.jobs.query.clone()
                };
                return self.filter_jobs(query);
            }
            (View::Jobs, KeyCode::Char('t' | 'T')) => {
                let types: Vec<JobType> = submit::built_in_types()
                    .into_iter()
                    .filter_map(|t| t.parse().ok())
                    .collect();
                let next = next_in(&types, self.jobs.query.job_type.clone());
                let query = JobsQuery {
                    job_type: next,
                    ..self.jobs.query.clone()
                };
                return self.filter_jobs(query);
            }
            (View::Events, KeyCode::Char(' ')) => {
                let rows = self.list_height(View::Events);
                self.events.toggle_pause(rows);
                return self.load_more();
            }
            (View::Events, KeyCode::Char('t' | 'T')) => {
                let next = next_in(&event_types(), self.events.type_filter);
                self.events.set_filter(next);
                return self.refresh(false);
            }
            (View::Events, KeyCode::Enter) => {
                let id = self.events.selected().and_then(|e| {
                    e.payload
                        .get("jobId")
                        .and_then(|id| id.as_str())
                        .and_then(|id| Uuid::try_parse(id).ok())
                });
                if let Some(id) = id {
                    return self.open_job(id);
                }
            }
            (View::DeadLetters, KeyCode::Enter) => {
                match self.dead_letters.selected().map(|d| d.job_id) {
                    Some(Some(id)) => return self.open_job(id),
                    Some(None) => self.notify("this message names no job", true),
                    None => {}
                }
            }
            _ => {}
        }
        Vec::new()
    }

    fn move_selection(&mut self, movement: Move) -> Vec<Cmd> {
        let rows = self.list_height(self.view);
        if self.view == View::Job {
            let lines = layout::job_lines(self);
            self.job.scroll = match movement {
                Move::Up => self.job.scroll.saturating_sub(1),
                Move::Down => self.job.scroll + 1,
                Move::PageUp => self.job.scroll.saturating_sub(rows),
                Move::PageDown => self.job.scroll + rows,
                Move::First => 0,
                Move::Last => usize::MAX,
            }
            .min(lines.saturating_sub(rows));
            return Vec::new();
        }
        let len = self.list_len(self.view);
        if let Some(cursor) = self.list_cursor(self.view) {
            cursor.apply(movement, len, rows);
        }
        self.load_more()
    }

    pub(super) fn list_len(&self, view: View) -> usize {
        match view {
            View::Jobs => self.jobs.rows.len(),
            View::Events => self.events.items.len(),
            View::DeadLetters => self.dead_letters.visible().len(),
            View::Alerts => self.visible_alerts().len(),
            View::Overview | View::Job => 0,
        }
    }

    pub(super) fn list_cursor(&mut self, view: View) -> Option<&mut ListCursor> {
        match view {
            View::Jobs => Some(&mut self.jobs.cursor),
            View::Events => Some(&mut self.events.cursor),
            View::DeadLetters => Some(&mut self.dead_letters.cursor),
            View::Alerts => Some(&mut self.alerts.cursor),
            View::Overview | View::Job => None,
        }
    }

    pub fn visible_alerts(&self) -> Vec<&crate::contracts::alert::Alert> {
        let needle = self.alerts.text_filter.as_deref().map(str::to_lowercase);
        self.alerts
            .list
            .data
            .iter()
            .flat_map(|l| l.alerts.iter())
            .filter(|a| {
                needle.as_ref().is_none_or(|n| {
                    a.name.to_lowercase().contains(n)
                        || a.summary
                            .as_deref()
                            .unwrap_or("")
                            .to_lowercase()
                            .contains(n)
                })
            })
            .collect()
    }

    fn filter_jobs(&mut self, query: JobsQuery) -> Vec<Cmd> {
        self.jobs.set_query(query);
        self.refresh(false)
    }

    /// `/`: the current view's filter, pre-filled with what is in force.
    fn open_filter(&mut self) -> Vec<Cmd> {
        let current = match self.view {
            View::Jobs => {
                let q = &self.jobs.query;
                let mut parts = Vec::new();
                if let Some(s) = q.status {
                    parts.push(format!("status:{}", s.to_string().to_lowercase()));
                }
                if let Some(t) = &q.job_type {
                    parts.push(format!("type:{}", t.as_str()));
                }
                if let Some(p) = &q.id_prefix {
                    parts.push(p.clone());
                }
                parts.join(" ")
            }
            View::Events => self
                .events
                .type_filter
                .map(|t| t.to_string())
                .unwrap_or_default(),
            View::DeadLetters => self.dead_letters.text_filter.clone().unwrap_or_default(),
            View::Alerts => self.alerts.text_filter.clone().unwrap_or_default(),
            View::Overview | View::Job => {
                self.notify(
                    "nothing to filter here: / works in jobs, events, dead letters and alerts",
                    false,
                );
                return Vec::new();
            }
        };
        let mut input = LineInput::with_text(&current);
        if !current.is_empty() {
            input.insert_str(" ");
        }
        self.overlay = Some(Overlay::Filter(input));
        Vec::new()
    }

    fn overlay_key(&mut self, overlay: Overlay, key: KeyEvent) -> Vec<Cmd> {
        match overlay {
            Overlay::Help | Overlay::Message { .. } => Vec::new(), // Any key closes it.
            Overlay::Command(mut input) => match key.code {
                KeyCode::Esc => Vec::new(),
                KeyCode::Enter => self.command(input.text().trim()),
                KeyCode::Tab => {
                    let typed = input.text().trim().to_owned();
                    if let Some(view) = View::ALL.iter().find(|v| v.command().starts_with(&typed)) {
                        input.set(view.command());
                    }
                    self.overlay = Some(Overlay::Command(input));
                    Vec::new()
                }
                _ => {
                    input.edit(&key);
                    self.overlay = Some(Overlay::Command(input));
                    Vec::new()
                }
            },
            Overlay::Filter(mut input) => match key.code {
                KeyCode::Esc => self.escape(),
                KeyCode::Enter => self.apply_filter(input.text().trim()),
                _ => {
                    input.edit(&key);
                    self.overlay = Some(Overlay::Filter(input));
                    Vec::new()
                }
            },
            Overlay::Submit(mut form) => match form.key(&key) {
                FormAction::Close => Vec::new(),
                FormAction::Nothing => {
                    self.overlay = Some(Overlay::Submit(form));
                    Vec::new()
                }
                FormAction::Send(submission, idempotency_key) => {
                    self.overlay = Some(Overlay::Submit(form));
                    vec![Cmd::Fetch(Request::Submit {
                        submission,
                        idempotency_key,
                    })]
                }
            },
        }
    }

    /// `:` commands.
    fn command(&mut self, line: &str) -> Vec<Cmd> {
        let mut words = line.split_whitespace();
        let Some(name) = words.next() else {
            return Vec::new();
        };
        let argument = words.next();
        match (name, argument) {
            ("q" | "q!" | "quit" | "exit", _) => self.quit = true,
            ("help" | "h", _) => self.overlay = Some(Overlay::Help),
            ("submit" | "s", _) if !self.settings.read_only => {
                self.overlay = Some(Overlay::Submit(Box::default()));
            }
            ("job", Some(id)) => return self.apply_filter_jobs(id, true),
            (name, None) if View::from_command(name).is_some() => {
                if let Some(view) = View::from_command(name) {
                    return self.show(view);
                }
            }
            _ => self.notify(
                format!("unknown command :{line} (views: overview jobs job events dead alerts; q quits; ? lists every key)"),
                true,
            ),
        }
        Vec::new()
    }

    /// Enter in the `/` prompt.
    fn apply_filter(&mut self, text: &str) -> Vec<Cmd> {
        match self.view {
            View::Jobs => self.apply_filter_jobs(text, false),
            View::Events => {
                let filter = if text.is_empty() {
                    None
                } else {
                    let wanted = text.to_lowercase();
                    match event_types().into_iter().find(|t| {
                        t.to_string() == wanted || t.to_string() == format!("job.{wanted}")
                    }) {
                        Some(t) => Some(t),
                        None => {
                            self.notify(format!("no event type {text}: created, started, completed, failed, dead-lettered"), true);
                            return Vec::new();
                        }
                    }
                };
                self.events.set_filter(filter);
                self.refresh(false)
            }
            View::DeadLetters => {
                self.dead_letters.text_filter = (!text.is_empty()).then(|| text.to_owned());
                self.dead_letters.cursor = ListCursor::default();
                Vec::new()
            }
            View::Alerts => {
                self.alerts.text_filter = (!text.is_empty()).then(|| text.to_owned());
                self.alerts.cursor = ListCursor::default();
                Vec::new()
            }
            View::Overview | View::Job => Vec::new(),
        }
    }

    /// The jobs filter: `status:S`, `type:T`, and a job id or its first hex digits.
    fn apply_filter_jobs(&mut self, text: &str, id_only: bool) -> Vec<Cmd> {
        let mut query = JobsQuery::default();
        let mut id = None;
        for word in text.split_whitespace() {
            let (key, value) = word.split_once(':').unwrap_or(("", word));
            match key {
                "status" | "s" if !id_only => match observatory_cli::parse_status(value) {
                    Ok(status) => query.status = Some(status),
                    Err(error) => {
                        self.notify(error.to_string().replace("--status", "status:"), true);
                        return Vec::new();
                    }
                },
                "type" | "t" if !id_only => match value.parse::<JobType>() {
                    Ok(job_type) => query.job_type = Some(job_type),
                    Err(_) => {
                        self.notify(format!("invalid type:{value}: a-z, 0-9 and -"), true);
                        return Vec::new();
                    }
                },
                "" | "id" => id = Some(value.to_owned()),
                _ => {
                    self.notify(
                        format!("unknown filter {word}: use status:S, type:T, or a job id"),
                        true,
                    );
                    return Vec::new();
                }
            }
        }
        if let Some(id) = id {
            if let Ok(uuid) = Uuid::try_parse(&id) {
                return self.open_job(uuid);
            }
            let digits = id.chars().filter(|c| *c != '-').count();
            if digits == 0 || digits > 32 || !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
            {
                self.notify(
                    format!("{id} is not a job id or its start (hex digits, such as 0b4bd3a4)"),
                    true,
                );
                return Vec::new();
            }
            let prefix = id.to_ascii_lowercase();
            if query == JobsQuery::default() {
                return vec![Cmd::Fetch(Request::FindJob(prefix))];
            }
            query.id_prefix = Some(prefix);
        }
        self.filter_jobs(query)
    }

    /// `o`: the selected job (or the current view) in the web dashboard.
    fn open_in_browser(&mut self) -> Vec<Cmd> {
        let base = self
            .settings
            .read_model_url
            .trim_end_matches('/')
            .to_owned();
        let fragment = match self.view {
            View::Job => self.job.id.map(|id| format!("/jobs/{id}")),
            View::Jobs => match self.jobs.selected() {
                Some(job) => Some(format!("/jobs/{}", job.id)),
                None => Some(format!("/jobs{}", jobs_url_query(&self.jobs.query))),
            },
            View::Events => Some(match self.events.type_filter {
                Some(t) => format!("/events?type={t}"),
                None => "/events".to_owned(),
            }),
            View::DeadLetters => Some("/dead-letters".to_owned()),
            View::Overview | View::Alerts => Some("/overview".to_owned()),
        }
        .unwrap_or_else(|| "/overview".to_owned());
        let url = format!("{base}/#{fragment}");
        if self.settings.can_open_browser {
            self.notify(format!("opening {url}"), false);
            vec![Cmd::OpenUrl(url)]
        } else {
            self.overlay = Some(Overlay::Message {
                title: "Open in a browser".into(),
                lines: vec![
                    "No display here (or an SSH session): open this address yourself:".into(),
                    String::new(),
                    url,
                ],
            });
            Vec::new()
        }
    }
}
