//! The handlers of the contract's read operations.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use chrono::Utc;
use futures_util::{Stream, StreamExt};
use observatory_counters::CountersError;
use observatory_event_log::{EventFilter, EventLogError};
use observatory_job_store::{JobFilter, JobIdPrefix, StoreError};
use observatory_runtime::http::ApiError;
use uuid::Uuid;

use crate::contracts::alert_list::AlertList;
use crate::contracts::dead_letter_page::DeadLetterPage;
use crate::contracts::event_envelope::EventType;
use crate::contracts::event_page::EventPage;
use crate::contracts::job::{JobStatus, JobType};
use crate::contracts::job_detail::JobDetail;
use crate::contracts::job_page::JobPage;
use crate::contracts::overview::Overview;
use crate::contracts::queue_depths::{QueueDepth, QueueDepths};
use crate::live::{Item, MAX_STREAMS, OpenError};
use crate::params::{QueryParams, invalid};
use crate::state::{RETRY_AFTER_SECONDS, ReadModelState};

/// How long the broker may take to report the depths before `/queues` is 503.
const QUEUE_DEPTH_TIMEOUT: Duration = Duration::from_secs(3);

const JOB_STATUSES: &str = "one of PENDING, RUNNING, RETRYING, COMPLETED, FAILED, DEAD_LETTERED";
const EVENT_TYPES: &str =
    "one of job.created, job.started, job.completed, job.failed, job.dead-lettered";

pub(crate) async fn get_overview(
    State(state): State<ReadModelState>,
) -> Result<Json<Overview>, ApiError> {
    let options = state.options();
    let overview = state
        .counters()?
        .overview(options.overview_buckets, options.overview_bucket_seconds)
        .await
        .map_err(counters_error)?;
    Ok(Json(overview))
}

/// `idPrefix` as the contract allows it: up to 36 hex digits and dashes. Dashes are ignored,
/// so a prefix of dashes alone is every job, and one of more digits than an id is none.
enum IdPrefix {
    Any,
    Of(JobIdPrefix),
    None,
}

impl IdPrefix {
    fn parse(raw: &str) -> Option<Self> {
        if raw.is_empty()
            || raw.len() > 36
            || !raw.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
        {
            return None;
        }
        match raw.chars().filter(char::is_ascii_hexdigit).count() {
            0 => Some(Self::Any),
            1..=32 => JobIdPrefix::parse(raw).map(Self::Of),
            _ => Some(Self::None),
        }
    }
}

pub(crate) async fn list_jobs(
    State(state): State<ReadModelState>,
    mut query: QueryParams,
) -> Result<Json<JobPage>, ApiError> {
    let mut filter = JobFilter {
        status: query.optional("status", JOB_STATUSES, |raw| raw.parse::<JobStatus>().ok()),
        job_type: query.optional(
            "type",
            "a job type name (a-z, 0-9 and -, starting with a letter, at most 64 characters)",
            |raw| raw.parse::<JobType>().ok(),
        ),
        created_after: query.date_time("createdAfter"),
        created_before: query.date_time("createdBefore"),
        id_prefix: None,
    };
    let id_prefix = query.optional("idPrefix", "1 to 36 hex digits and dashes", IdPrefix::parse);
    let limit = query.limit();
    let cursor = query.cursor();
    query.finish()?;
    match id_prefix {
        None | Some(IdPrefix::Any) => {}
        Some(IdPrefix::Of(prefix)) => filter.id_prefix = Some(prefix),
        // Longer than an id: no job has it.
        Some(IdPrefix::None) => {
            return Ok(Json(JobPage {
                items: Vec::new(),
                next_cursor: None,
            }));
        }
    }
    let page = state
        .job_store()?
        .list_jobs(&filter, limit, cursor.as_deref().map(String::as_str))
        .await
        .map_err(store_error)?;
    Ok(Json(page))
}

pub(crate) async fn get_job(
    State(state): State<ReadModelState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<JobDetail>, ApiError> {
    let Path(raw) = path.map_err(|e| {
        ApiError::bad_request("validation-failed", "invalid path parameter: jobId")
            .with_details(vec![("jobId".into(), e.body_text())])
    })?;
    let job_id = Uuid::try_parse(&raw).map_err(|_| {
        ApiError::bad_request("validation-failed", "invalid path parameter: jobId").with_details(
            vec![("jobId".into(), format!("must be a UUID, not {raw:?}"))],
        )
    })?;
    let (jobs, events) = (state.job_store()?, state.event_log()?);
    let (detail, timeline) = tokio::join!(jobs.job_detail(job_id), events.events_for_job(job_id));
    let Some((job, attempts)) = detail.map_err(store_error)? else {
        return Err(ApiError::not_found(format!("no job {job_id}")));
    };
    let events = timeline.map_err(event_log_error)?;
    Ok(Json(JobDetail {
        job,
        attempts,
        events,
    }))
}

pub(crate) async fn list_events(
    State(state): State<ReadModelState>,
    mut query: QueryParams,
) -> Result<Json<EventPage>, ApiError> {
    let filter = EventFilter {
        job_id: query.optional("jobId", "a UUID", |raw| Uuid::try_parse(raw).ok()),
        event_type: query.optional("eventType", EVENT_TYPES, |raw| {
            raw.parse::<EventType>().ok()
        }),
        after: query.date_time("after"),
        before: query.date_time("before"),
    };
    let limit = query.limit();
    let cursor = query.cursor();
    query.finish()?;
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let page = state
        .event_log()?
        .list_events(&filter, limit, cursor.as_ref())
        .await
        .map_err(event_log_error)?;
    Ok(Json(page))
}

pub(crate) async fn list_dead_letters(
    State(state): State<ReadModelState>,
    mut query: QueryParams,
) -> Result<Json<DeadLetterPage>, ApiError> {
    let limit = query.limit();
    let cursor = query.cursor();
    query.finish()?;
    let page = state
        .job_store()?
        .list_dead_letters(limit, cursor.as_deref().map(String::as_str))
        .await
        .map_err(store_error)?;
    Ok(Json(page))
}

pub(crate) async fn get_queue_depths(
    State(state): State<ReadModelState>,
) -> Result<Json<QueueDepths>, ApiError> {
    let broker = state.broker()?;
    let names = state.topology().queues();
    let reads = names.iter().map(|name| broker.queue_depth(name));
    let depths = tokio::time::timeout(QUEUE_DEPTH_TIMEOUT, futures_util::future::join_all(reads))
        .await
        .map_err(|_| {
            tracing::warn!(timeout = ?QUEUE_DEPTH_TIMEOUT, "the broker did not report queue depths in time");
            broker_unavailable()
        })?;
    let queues = names
        .into_iter()
        .zip(depths)
        .map(|(name, depth)| {
            let (messages, consumers) = depth.map_err(|error| {
                tracing::warn!(queue = %name, %error, "reading a queue depth failed");
                broker_unavailable()
            })?;
            Ok(QueueDepth {
                name,
                messages: messages.into(),
                consumers: consumers.into(),
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(Json(QueueDepths {
        observed_at: Utc::now(),
        queues,
    }))
}

pub(crate) async fn list_alerts(State(state): State<ReadModelState>) -> Json<AlertList> {
    Json(state.alerts().active().await)
}

pub(crate) async fn stream_events(
    State(state): State<ReadModelState>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let counters = state.counters_handle()?;
    let (feed, slot) = state
        .live()
        .open(counters)
        .await
        .map_err(|error| match error {
            OpenError::TooMany => ApiError::unavailable(
                "too-many-streams",
                format!("{MAX_STREAMS} live streams are open already; retry later"),
                RETRY_AFTER_SECONDS,
            ),
            OpenError::TimedOut => {
                tracing::warn!("subscribing to the live feed timed out");
                redis_unavailable()
            }
            OpenError::Counters(error) => counters_error(error),
        })?;
    let events = feed
        .map(move |item| {
            // The stream holds its slot for as long as it lives.
            let _open = &slot;
            Ok::<Event, Infallible>(match item {
                Item::Event(event) => Event::default()
                    .event(event.event_type)
                    .data(event.json.as_ref()),
                Item::Lagged(missed) => {
                    tracing::info!(missed, "a live stream fell behind; ending it (the client reconnects)");
                    Event::default().comment(format!(
                        "this client fell {missed} events behind; reconnect and read /events for the gap"
                    ))
                }
            })
        })
        .take_until(state.shutdown().clone().cancelled_owned());
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

fn broker_unavailable() -> ApiError {
    ApiError::unavailable(
        "broker-unavailable",
        "RabbitMQ is unavailable; retry later",
        RETRY_AFTER_SECONDS,
    )
}

fn redis_unavailable() -> ApiError {
    ApiError::unavailable(
        "redis-unavailable",
        "Redis is unavailable; retry later",
        RETRY_AFTER_SECONDS,
    )
}

fn store_error(error: StoreError) -> ApiError {
    match error {
        StoreError::InvalidCursor(reason) => invalid("cursor", reason),
        StoreError::Database(error) => {
            tracing::warn!(%error, "PostgreSQL query failed");
            ApiError::unavailable(
                "postgres-unavailable",
                "PostgreSQL is unavailable; retry later",
                RETRY_AFTER_SECONDS,
            )
        }
        other => {
            tracing::error!(error = %other, "job store");
            ApiError::internal("reading the job store failed")
        }
    }
}

fn event_log_error(error: EventLogError) -> ApiError {
    match error {
        EventLogError::MalformedCursor { reason, .. } => invalid("cursor", reason),
        EventLogError::Mongo(error) => {
            tracing::warn!(%error, "MongoDB query failed");
            ApiError::unavailable(
                "mongodb-unavailable",
                "MongoDB is unavailable; retry later",
                RETRY_AFTER_SECONDS,
            )
        }
        EventLogError::Sqlite(error) => {
            tracing::warn!(%error, "event log query failed");
            ApiError::unavailable(
                "event-log-unavailable",
                "The event log is unavailable; retry later",
                RETRY_AFTER_SECONDS,
            )
        }
        other => {
            tracing::error!(error = %other, "event log");
            ApiError::internal("reading the event log failed")
        }
    }
}

fn counters_error(error: CountersError) -> ApiError {
    match error {
        CountersError::Redis(error) => {
            tracing::warn!(%error, "Redis command failed");
            redis_unavailable()
        }
        CountersError::Sqlite(error) => {
            tracing::warn!(%error, "counters query failed");
            ApiError::unavailable(
                "counters-unavailable",
                "The counters are unavailable; retry later",
                RETRY_AFTER_SECONDS,
            )
        }
        other => {
            tracing::error!(error = %other, "counters");
            ApiError::internal("reading the counters failed")
        }
    }
}
