//! What flows into the application ([`Msg`]) and what it asks the outside world to do
//! ([`Cmd`]). The network runs on tasks that turn a [`Request`] into a [`Fetched`] message;
//! the state machine never awaits anything.

use chrono::{DateTime, Utc};
use crossterm::event::KeyEvent;
use uuid::Uuid;

use crate::contracts::alert_list::AlertList;
use crate::contracts::api_error::ApiError;
use crate::contracts::dead_letter_page::DeadLetterPage;
use crate::contracts::event_envelope::{EventEnvelope, EventType};
use crate::contracts::event_page::EventPage;
use crate::contracts::job::{JobStatus, JobType};
use crate::contracts::job_acceptance::JobAcceptance;
use crate::contracts::job_detail::JobDetail;
use crate::contracts::job_page::JobPage;
use crate::contracts::job_submission::JobSubmission;
use crate::contracts::overview::Overview;
use crate::contracts::page_cursor::PageCursor;
use crate::contracts::queue_depths::QueueDepths;

/// Everything the application reacts to.
#[derive(Debug, Clone)]
pub enum Msg {
    Key(KeyEvent),
    Paste(String),
    Resize {
        width: u16,
        height: u16,
    },
    /// The clock, once a second: countdowns, durations of running jobs, staleness.
    Tick(DateTime<Utc>),
    /// Time to refresh what the current view shows.
    Refresh,
    Fetched(Box<Fetched>),
    Stream(StreamMsg),
    /// The browser could not be started for this URL.
    OpenFailed {
        url: String,
        reason: String,
    },
}

/// Side effects the application asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Cmd {
    Fetch(Request),
    /// Open this URL in a browser (the caller decides whether there is one).
    OpenUrl(String),
}

/// The filters of the jobs list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobsQuery {
    pub status: Option<JobStatus>,
    pub job_type: Option<JobType>,
    /// Hex digits the job ids start with.
    pub id_prefix: Option<String>,
}

/// Whether a page replaces the first rows (a refresh) or extends the list (scrolling).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageRole {
    First,
    Next,
}

/// One request to the read model or the gateway.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Overview,
    Queues,
    Alerts,
    Jobs {
        query: JobsQuery,
        cursor: Option<PageCursor>,
        role: PageRole,
    },
    Job(Uuid),
    /// Jobs whose id starts with these digits (for `/`); two are enough to know if it is one.
    FindJob(String),
    Events {
        event_type: Option<EventType>,
        cursor: Option<PageCursor>,
        /// Events after this instant (catching up after the stream was down).
        after: Option<DateTime<Utc>>,
        /// Events before this instant (older than everything shown, when no cursor is left).
        before: Option<DateTime<Utc>>,
        role: PageRole,
    },
    DeadLetters {
        cursor: Option<PageCursor>,
        role: PageRole,
    },
    Submit {
        submission: JobSubmission,
        idempotency_key: Option<String>,
    },
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq)]
pub enum FetchError {
    /// No answer at all: refused, timed out, broken connection.
    Unreachable(String),
    /// An error status with the contract's error body.
    Api { status: u16, error: ApiError },
    /// An answer that is not what the contract says.
    Unexpected(String),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable(reason) => write!(f, "unreachable: {reason}"),
            Self::Api { status, error } => write!(
                f,
                "{status} {}: {}",
                error.code.as_str(),
                error.message.as_str()
            ),
            Self::Unexpected(reason) => write!(f, "unexpected answer: {reason}"),
        }
    }
}

/// A request's answer.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub request: Request,
    pub answer: Result<Answer, FetchError>,
}

#[derive(Debug, Clone)]
pub enum Answer {
    Overview(Overview),
    Queues(QueueDepths),
    Alerts(AlertList),
    Jobs(JobPage),
    Job(Box<JobDetail>),
    Events(EventPage),
    DeadLetters(DeadLetterPage),
    Accepted(JobAcceptance),
}

/// The live stream's life.
#[derive(Debug, Clone)]
pub enum StreamMsg {
    Connected,
    Event(Box<EventEnvelope>),
    /// The stream ended or could not be opened; the next try is at `retry_at`.
    Down {
        reason: String,
        retry_at: DateTime<Utc>,
    },
}
