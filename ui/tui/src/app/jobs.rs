//! The jobs list: pages loaded as the user scrolls, refreshed from the first page, and updated
//! row by row from the live stream, with the selection following its job rather than its index.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::FetchState;
use super::list::ListCursor;
use super::protocol::JobsQuery;
use crate::contracts::event_envelope::{EventEnvelope, EventType};
use crate::contracts::job::{Job, JobStatus};
use crate::contracts::job_page::JobPage;
use crate::contracts::page_cursor::PageCursor;
use crate::contracts::{job_completed, job_created, job_dead_lettered, job_failed, job_started};

/// How long a job announced by the stream but absent from a refreshed first page is kept: the
/// processor may not have stored it yet.
const ANNOUNCED_GRACE_SECONDS: i64 = 5;

#[derive(Debug, Default)]
pub struct JobsState {
    pub query: JobsQuery,
    /// Newest first, as the read model pages them.
    pub rows: Vec<Job>,
    /// The cursor after the last row, when more pages exist.
    pub next_cursor: Option<PageCursor>,
    pub cursor: ListCursor,
    /// The first page (refreshes).
    pub first: FetchState,
    /// A next page being loaded, or its error.
    pub more: FetchState,
}

impl JobsState {
    pub fn selected(&self) -> Option<&Job> {
        self.rows.get(self.cursor.selected)
    }

    fn selected_id(&self) -> Option<Uuid> {
        self.selected().map(|j| j.id)
    }

    /// A new filter: everything loaded so far belongs to the old one.
    pub fn set_query(&mut self, query: JobsQuery) {
        *self = Self {
            query,
            ..Self::default()
        };
    }

    /// A refreshed first page: it replaces the rows it covers; the older rows loaded by
    /// scrolling stay (their updates come from the stream). Returns whether anything changed.
    pub fn first_page(&mut self, page: JobPage, now: DateTime<Utc>, height: usize) -> bool {
        let selected = self.selected_id();
        let before = (self.rows.clone(), self.next_cursor.clone());
        let boundary = page.items.last().map(key);
        let in_page: std::collections::HashSet<Uuid> = page.items.iter().map(|j| j.id).collect();
        let mut rows = page.items;
        match boundary {
            // Everything there is fits in the page: the rows are exactly the page, plus the
            // jobs just announced that the store does not list yet.
            _ if page.next_cursor.is_none() => {
                self.next_cursor = None;
                self.keep_announced(&mut rows, &in_page, None, now);
            }
            Some(boundary) => {
                let older_loaded = self.rows.iter().any(|j| key(j) < boundary);
                self.keep_announced(&mut rows, &in_page, Some(boundary), now);
                rows.extend(
                    self.rows
                        .iter()
                        .filter(|j| key(j) < boundary && !in_page.contains(&j.id))
                        .cloned(),
                );
                if !older_loaded {
                    self.next_cursor = page.next_cursor;
                }
            }
            None => self.next_cursor = page.next_cursor,
        }
        rows.sort_by_key(|j| std::cmp::Reverse(key(j)));
        self.rows = rows;
        self.reselect(selected, height);
        before != (self.rows.clone(), self.next_cursor.clone())
    }

    /// Rows the stream announced a moment ago that a page does not have yet.
    fn keep_announced(
        &self,
        rows: &mut Vec<Job>,
        in_page: &std::collections::HashSet<Uuid>,
        boundary: Option<(DateTime<Utc>, Uuid)>,
        now: DateTime<Utc>,
    ) {
        let recent = now - chrono::TimeDelta::seconds(ANNOUNCED_GRACE_SECONDS);
        rows.extend(
            self.rows
                .iter()
                .filter(|j| {
                    !in_page.contains(&j.id)
                        && j.status == JobStatus::Pending
                        && j.created_at >= recent
                        && boundary.is_none_or(|b| key(j) > b)
                })
                .cloned(),
        );
    }

    /// The next page, appended (rows already shown are not repeated).
    pub fn next_page(&mut self, page: JobPage, height: usize) -> bool {
        let selected = self.selected_id();
        let shown: std::collections::HashSet<Uuid> = self.rows.iter().map(|j| j.id).collect();
        let added = page.items.into_iter().filter(|j| !shown.contains(&j.id));
        let before = self.rows.len();
        self.rows.extend(added);
        self.next_cursor = page.next_cursor;
        self.reselect(selected, height);
        self.rows.len() != before
    }

    fn reselect(&mut self, selected: Option<Uuid>, height: usize) {
        let index = selected.and_then(|id| self.rows.iter().position(|j| j.id == id));
        self.cursor.follow(index, self.rows.len(), height);
    }

    /// Applies a lifecycle event to its row (and adds a new job that fits the filter).
    /// Returns whether a row changed.
    pub fn apply(&mut self, event: &EventEnvelope, height: usize) -> bool {
        let payload = Value::Object(event.payload.clone());
        if event.event_type == EventType::JobCreated {
            return match serde_json::from_value::<job_created::JobCreatedPayload>(payload) {
                Ok(created) => self.announce(event, created, height),
                Err(_) => false,
            };
        }
        let Some(job_id) = event
            .payload
            .get("jobId")
            .and_then(Value::as_str)
            .and_then(|id| Uuid::try_parse(id).ok())
        else {
            return false;
        };
        let Some(job) = self.rows.iter_mut().find(|j| j.id == job_id) else {
            return false;
        };
        apply_to_job(job, event.event_type, payload)
    }

    fn announce(
        &mut self,
        event: &EventEnvelope,
        created: job_created::JobCreatedPayload,
        height: usize,
    ) -> bool {
        let query = &self.query;
        let fits = query.status.is_none_or(|s| s == JobStatus::Pending)
            && query.job_type.as_ref().is_none_or(|t| *t == created.type_)
            && query.id_prefix.as_ref().is_none_or(|p| {
                created
                    .job_id
                    .simple()
                    .to_string()
                    .starts_with(&p.replace('-', "").to_ascii_lowercase())
            });
        // Only at the top: a job older than the newest row belongs to pages already walked.
        let newest = self.rows.first().map(key);
        let candidate = (created.submitted_at, created.job_id);
        if !fits
            || self.rows.iter().any(|j| j.id == created.job_id)
            || newest.is_some_and(|n| candidate < n)
        {
            return false;
        }
        let Ok(correlation_id) = event.correlation_id.as_str().parse() else {
            return false;
        };
        let selected = self.selected_id();
        self.rows.insert(
            0,
            Job {
                id: created.job_id,
                type_: created.type_,
                status: JobStatus::Pending,
                payload: created.payload,
                attempts: 0,
                max_attempts: created.max_attempts,
                created_at: created.submitted_at,
                updated_at: created.submitted_at,
                started_at: None,
                finished_at: None,
                next_attempt_at: None,
                last_error: None,
                result: Map::new(),
                correlation_id,
            },
        );
        if selected.is_some() {
            self.reselect(selected, height);
        }
        true
    }
}

/// The keyset order of the jobs list.
fn key(job: &Job) -> (DateTime<Utc>, Uuid) {
    (job.created_at, job.id)
}

/// A job's row after one of its lifecycle events, as the processor changed the job. An event
/// older than what the row already shows (the row came from a later page, or the feed
/// delivered out of order) changes nothing.
pub fn apply_to_job(job: &mut Job, event_type: EventType, payload: Value) -> bool {
    let before = job.clone();
    let terminal = matches!(
        job.status,
        JobStatus::Completed | JobStatus::Failed | JobStatus::DeadLettered
    );
    match event_type {
        EventType::JobStarted => {
            if let Ok(p) = serde_json::from_value::<job_started::JobStartedPayload>(payload)
                && p.attempt.get() > job.attempts
                && !terminal
            {
                job.status = JobStatus::Running;
                job.attempts = job.attempts.max(p.attempt.get());
                job.started_at.get_or_insert(p.started_at);
                job.next_attempt_at = None;
                job.updated_at = job.updated_at.max(p.started_at);
            }
        }
        EventType::JobCompleted => {
            if let Ok(p) = serde_json::from_value::<job_completed::JobCompletedPayload>(payload) {
                job.status = JobStatus::Completed;
                job.finished_at = Some(p.completed_at);
                job.result = p.result;
                job.updated_at = job.updated_at.max(p.completed_at);
            }
        }
        EventType::JobFailed => {
            if let Ok(p) = serde_json::from_value::<job_failed::JobFailedPayload>(payload)
                && p.attempt.get() >= job.attempts
                && !terminal
            {
                job.status = p.job_status;
                job.last_error = Some(p.error);
                job.next_attempt_at = p.next_attempt_at;
                if p.job_status == JobStatus::Failed {
                    job.finished_at = Some(p.failed_at);
                }
                job.updated_at = job.updated_at.max(p.failed_at);
            }
        }
        EventType::JobDeadLettered => {
            if let Ok(p) =
                serde_json::from_value::<job_dead_lettered::JobDeadLetteredPayload>(payload)
            {
                job.status = JobStatus::DeadLettered;
                job.finished_at = Some(p.dead_lettered_at);
                if p.last_error.is_some() {
                    job.last_error = p.last_error;
                }
                job.updated_at = job.updated_at.max(p.dead_lettered_at);
            }
        }
        EventType::JobCreated => {}
    }
    *job != before
}
