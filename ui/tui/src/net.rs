//! The network side: every [`Request`] runs on its own task with a timeout and comes back as a
//! [`Msg::Fetched`]; the live stream runs on one task that reconnects with backoff and sends
//! [`Msg::Stream`]. Nothing here can block the screen.

use std::num::NonZeroU64;
use std::time::Duration;

use chrono::Utc;
use futures_util::StreamExt;
use observatory_client::live::SseParser;
use observatory_client::{gateway, read_model};
use tokio::sync::mpsc;

use crate::app::{Answer, FetchError, Fetched, Msg, PageRole, Request, StreamMsg};
use crate::contracts::event_envelope::IdempotencyKey;

/// The page size of every list request.
const PAGE: Option<NonZeroU64> = NonZeroU64::new(crate::app::PAGE_SIZE);
/// Backoff of the live stream: first retry after 1 s, doubling to at most 30 s.
const FIRST_RETRY: Duration = Duration::from_secs(1);
const LAST_RETRY: Duration = Duration::from_secs(30);
/// The read model sends a keep-alive comment every 15 s; silence this long means a dead link.
const STREAM_SILENCE: Duration = Duration::from_secs(45);

/// Runs requests for the UI.
#[derive(Clone)]
pub struct Network {
    read_model: read_model::Client,
    gateway: gateway::Client,
    timeout: Duration,
    tx: mpsc::Sender<Msg>,
}

/// The clients could not be built (a TLS backend missing, never in practice).
#[derive(Debug, thiserror::Error)]
#[error("building the HTTP client: {0}")]
pub struct ClientError(#[from] reqwest::Error);

fn http_client(timeout: Option<Duration>) -> Result<reqwest::Client, ClientError> {
    let mut builder = reqwest::Client::builder().connect_timeout(Duration::from_secs(3));
    if let Some(timeout) = timeout {
        builder = builder.timeout(timeout);
    }
    Ok(builder.build()?)
}

impl Network {
    pub fn new(
        read_model_url: &str,
        gateway_url: &str,
        timeout: Duration,
        tx: mpsc::Sender<Msg>,
    ) -> Result<Self, ClientError> {
        Ok(Self {
            read_model: read_model::Client::new_with_client(
                read_model_url,
                http_client(Some(timeout))?,
            ),
            gateway: gateway::Client::new_with_client(gateway_url, http_client(Some(timeout))?),
            timeout,
            tx,
        })
    }

    /// Sends `request` on its own task; its answer arrives as a message.
    pub fn spawn(&self, request: Request) {
        let this = self.clone();
        tokio::spawn(async move {
            let answer = match tokio::time::timeout(this.timeout, this.answer(&request)).await {
                Ok(answer) => answer,
                Err(_) => Err(FetchError::Unreachable(format!(
                    "no answer within {} s",
                    this.timeout.as_secs_f32()
                ))),
            };
            // The UI is gone when this fails: nothing left to tell.
            let _ = this
                .tx
                .send(Msg::Fetched(Box::new(Fetched { request, answer })))
                .await;
        });
    }

    async fn answer(&self, request: &Request) -> Result<Answer, FetchError> {
        let rm = &self.read_model;
        Ok(match request {
            Request::Overview => {
                Answer::Overview(rm.get_overview(None).await.map_err(error)?.into_inner())
            }
            Request::Queues => {
                Answer::Queues(rm.get_queue_depths(None).await.map_err(error)?.into_inner())
            }
            Request::Alerts => {
                Answer::Alerts(rm.list_alerts(None).await.map_err(error)?.into_inner())
            }
            Request::Jobs { query, cursor, .. } => {
                let prefix = query
                    .id_prefix
                    .as_deref()
                    .map(|p| p.parse::<read_model::types::ListJobsIdPrefix>())
                    .transpose()
                    .map_err(|e| FetchError::Unexpected(e.to_string()))?;
                let page = rm
                    .list_jobs(
                        None,
                        None,
                        cursor.as_ref(),
                        prefix.as_ref(),
                        PAGE,
                        query.status.as_ref(),
                        query.job_type.as_ref(),
                        None,
                    )
                    .await
                    .map_err(error)?;
                Answer::Jobs(page.into_inner())
            }
            Request::FindJob(prefix) => {
                let prefix = prefix
                    .parse::<read_model::types::ListJobsIdPrefix>()
                    .map_err(|e| FetchError::Unexpected(e.to_string()))?;
                let page = rm
                    .list_jobs(
                        None,
                        None,
                        None,
                        Some(&prefix),
                        NonZeroU64::new(2),
                        None,
                        None,
                        None,
                    )
                    .await
                    .map_err(error)?;
                Answer::Jobs(page.into_inner())
            }
            Request::Job(id) => Answer::Job(Box::new(
                rm.get_job(id, None).await.map_err(error)?.into_inner(),
            )),
            Request::Events {
                event_type,
                cursor,
                after,
                before,
                role,
            } => {
                // Catching up after a gap wants everything since; a page wants the newest.
                let limit = match (role, after) {
                    (PageRole::First, Some(_)) => NonZeroU64::new(500),
                    _ => PAGE,
                };
                let page = rm
                    .list_events(
                        after.as_ref(),
                        before.as_ref(),
                        cursor.as_ref(),
                        event_type.as_ref(),
                        None,
                        limit,
                        None,
                    )
                    .await
                    .map_err(error)?;
                Answer::Events(page.into_inner())
            }
            Request::DeadLetters { cursor, .. } => Answer::DeadLetters(
                rm.list_dead_letters(cursor.as_ref(), PAGE, None)
                    .await
                    .map_err(error)?
                    .into_inner(),
            ),
            Request::Submit {
                submission,
                idempotency_key,
            } => {
                let key = idempotency_key
                    .as_deref()
                    .map(IdempotencyKey::try_from)
                    .transpose()
                    .map_err(|e| FetchError::Unexpected(e.to_string()))?;
                let accepted = self
                    .gateway
                    .submit_job(key.as_ref(), None, submission)
                    .await
                    .map_err(error)?;
                Answer::Accepted(accepted.into_inner())
            }
        })
    }
}

/// A client error as the UI tells it: no answer, an error body, or a broken answer.
fn error(e: read_model::Error<crate::contracts::api_error::ApiError>) -> FetchError {
    use read_model::Error;
    match e {
        Error::ErrorResponse(response) => FetchError::Api {
            status: response.status().as_u16(),
            error: response.into_inner(),
        },
        Error::CommunicationError(e) | Error::ResponseBodyError(e) | Error::InvalidUpgrade(e) => {
            FetchError::Unreachable(root_cause(&e))
        }
        Error::InvalidResponsePayload(_, e) => {
            FetchError::Unexpected(format!("the body does not match the contract: {e}"))
        }
        Error::UnexpectedResponse(response) => {
            FetchError::Unexpected(format!("HTTP {}", response.status()))
        }
        Error::InvalidRequest(detail) | Error::Custom(detail) => FetchError::Unexpected(detail),
    }
}

/// The innermost cause of `e` ("Connection refused (os error 111)"), which is what a person
/// needs; reqwest's outer messages only say that a request failed.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Keeps the live stream open (until the task is dropped): connects, forwards each event, and
/// after a failure waits (1 s, doubling to 30 s; back to 1 s once connected) before the next try.
pub async fn stream(read_model_url: String, tx: mpsc::Sender<Msg>) {
    let client = match http_client(None) {
        Ok(client) => read_model::Client::new_with_client(&read_model_url, client),
        Err(e) => {
            let down = StreamMsg::Down {
                reason: e.to_string(),
                retry_at: Utc::now() + chrono::TimeDelta::days(1),
            };
            let _ = tx.send(Msg::Stream(down)).await;
            return;
        }
    };
    let mut delay = FIRST_RETRY;
    loop {
        let reason = follow(&client, &tx, &mut delay).await;
        if tx.is_closed() {
            return;
        }
        let retry_at = Utc::now() + chrono::TimeDelta::from_std(delay).unwrap_or_default();
        if tx
            .send(Msg::Stream(StreamMsg::Down { reason, retry_at }))
            .await
            .is_err()
        {
            return;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(LAST_RETRY);
    }
}

/// One connection of the stream, until it breaks; returns why. Silence is timed on the bytes
/// (keep-alive comments count), not on events, which may be rare.
async fn follow(
    client: &read_model::Client,
    tx: &mpsc::Sender<Msg>,
    delay: &mut Duration,
) -> String {
    let response = match tokio::time::timeout(Duration::from_secs(10), client.stream_events()).await
    {
        Err(_) => return "the read model did not answer within 10 s".to_owned(),
        Ok(Err(e)) => return error(e).to_string(),
        Ok(Ok(response)) => response,
    };
    *delay = FIRST_RETRY;
    if tx.send(Msg::Stream(StreamMsg::Connected)).await.is_err() {
        return "the UI stopped".to_owned();
    }
    let mut bytes = response.into_inner();
    let mut parser = SseParser::default();
    loop {
        let chunk = match tokio::time::timeout(STREAM_SILENCE, bytes.next()).await {
            Err(_) => return format!("nothing heard for {} s", STREAM_SILENCE.as_secs()),
            Ok(None) => return "the read model closed the stream".to_owned(),
            Ok(Some(Err(e))) => return root_cause(&e),
            Ok(Some(Ok(chunk))) => chunk,
        };
        for message in parser.push(&chunk) {
            // An undecodable event (a newer server's) is skipped; the stream itself is fine.
            let Ok(event) = serde_json::from_str(&message.data) else {
                continue;
            };
            if tx
                .send(Msg::Stream(StreamMsg::Event(Box::new(event))))
                .await
                .is_err()
            {
                return "the UI stopped".to_owned();
            }
        }
    }
}
