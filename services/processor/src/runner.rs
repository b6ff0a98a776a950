//! Running one attempt of a job: start it in the store, execute it, record how it ended.
//! Shared by the consumer (new jobs) and the retry scheduler (due retries), under one
//! semaphore that bounds the jobs in flight.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use observatory_job_store::{FailOutcome, JobStore, Retry, StartedAttempt, StoreError};
use observatory_runtime::backoff::Backoff;
use observatory_runtime::shutdown::CancellationToken;
use tokio::sync::Semaphore;
use tracing::Instrument;
use uuid::Uuid;

use crate::config::RetryBackoff;
use crate::contracts::dead_letter::DeadLetterReason;
use crate::contracts::job::{JobError, JobStatus};
use crate::executor::{AttemptFailure, AttemptResult, Executor, codes, type_label};
use crate::metrics::ProcessorMetrics;

/// Jobs this process is handling now (so the scheduler does not start a job twice and the
/// recovery of abandoned attempts leaves this process's own running attempts alone).
#[derive(Clone, Default)]
pub(crate) struct Claims {
    ids: Arc<Mutex<HashSet<Uuid>>>,
}

/// Releases its claim when dropped.
pub(crate) struct Claim {
    claims: Claims,
    id: Uuid,
}

impl Claims {
    pub fn try_claim(&self, id: Uuid) -> Option<Claim> {
        let inserted = self.lock().insert(id);
        inserted.then(|| Claim {
            claims: self.clone(),
            id,
        })
    }

    pub fn is_claimed(&self, id: Uuid) -> bool {
        self.lock().contains(&id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<Uuid>> {
        self.ids.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.claims.lock().remove(&self.id);
    }
}

/// What [`JobRunner::run_next_attempt`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunOutcome {
    /// No attempt was due (already running, finished, or a retry not yet due): nothing changed.
    NothingToRun,
    /// An attempt ran and its end is recorded; the job is now in this status.
    Recorded(JobStatus),
    /// The attempt ran but its end was already recorded by someone else (e.g. the recovery of
    /// abandoned attempts of another processor); nothing changed.
    AlreadyFinished,
}

pub(crate) struct JobRunner {
    pub store: Arc<dyn JobStore>,
    pub executor: Executor,
    pub metrics: ProcessorMetrics,
    pub backoff: RetryBackoff,
    pub attempt_timeout: Duration,
    pub worker: String,
    /// One permit per job in flight.
    pub permits: Arc<Semaphore>,
    pub claims: Claims,
    /// Cancelled when the shutdown grace period ends: running attempts stop and are recorded
    /// as interrupted (retryable).
    pub interrupt: CancellationToken,
}

impl JobRunner {
    /// Starts the next attempt of `job_id` if one is due, executes it, and records how it
    /// ended. `Err` means PostgreSQL could not be reached to start the attempt, or to record
    /// its end before the shutdown grace period ran out (the attempt then stays RUNNING and is
    /// recovered as abandoned later).
    pub async fn run_next_attempt(&self, job_id: Uuid) -> Result<RunOutcome, StoreError> {
        let Some(started) = self.store.start_attempt(job_id, &self.worker).await? else {
            return Ok(RunOutcome::NothingToRun);
        };
        let span = tracing::info_span!(
            "job",
            %job_id,
            correlation_id = %started.job.correlation_id.as_str(),
            job_type = %started.job.type_.as_str(),
            attempt = started.attempt,
        );
        self.run_started(started).instrument(span).await
    }

    async fn run_started(&self, started: StartedAttempt) -> Result<RunOutcome, StoreError> {
        let StartedAttempt { job, attempt } = started;
        let label = type_label(job.type_.as_str());
        tracing::info!(max_attempts = job.max_attempts.get(), "attempt started");
        self.metrics.jobs_in_flight.inc();
        let began = Instant::now();
        let result = tokio::select! {
            result = tokio::time::timeout(
                self.attempt_timeout,
                self.executor.execute(job.type_.as_str(), &job.payload, attempt),
            ) => result.unwrap_or_else(|_| AttemptResult::Failed(AttemptFailure::transient(
                codes::TIMEOUT,
                format!("the attempt ran longer than {:?}", self.attempt_timeout),
            ))),
            _ = self.interrupt.cancelled() => AttemptResult::Failed(AttemptFailure::transient(
                codes::INTERRUPTED,
                "the processor shut down while the attempt was running",
            )),
        };
        self.metrics.jobs_in_flight.dec();
        let elapsed = began.elapsed();
        let duration_ms = elapsed.as_secs_f64() * 1000.0;

        match result {
            AttemptResult::Succeeded(output) => {
                self.metrics
                    .job_duration
                    .with_label_values(&[label, "succeeded"])
                    .observe(elapsed.as_secs_f64());
                let recorded = self
                    .persist("complete", || {
                        self.store
                            .complete_attempt(job.id, attempt, output.clone(), duration_ms)
                    })
                    .await?;
                match recorded {
                    Some(_) => {
                        self.metrics
                            .jobs_completed
                            .with_label_values(&[label])
                            .inc();
                        tracing::info!(duration_ms, "job completed");
                        Ok(RunOutcome::Recorded(JobStatus::Completed))
                    }
                    None => {
                        tracing::warn!(
                            "the attempt had already been ended elsewhere; its result is dropped"
                        );
                        Ok(RunOutcome::AlreadyFinished)
                    }
                }
            }
            AttemptResult::Failed(failure) => {
                self.metrics
                    .job_duration
                    .with_label_values(&[label, "failed"])
                    .observe(elapsed.as_secs_f64());
                let retry = if failure.retryable {
                    Retry::After(self.backoff.after_attempt(attempt))
                } else {
                    Retry::Never
                };
                self.record_failure(job.id, attempt, &failure, retry, duration_ms, label)
                    .await
            }
        }
    }

    /// Fails attempt `attempt` of `job_id` and counts the outcome.
    pub async fn record_failure(
        &self,
        job_id: Uuid,
        attempt: u32,
        failure: &AttemptFailure,
        retry: Retry,
        duration_ms: f64,
        label: &'static str,
    ) -> Result<RunOutcome, StoreError> {
        let error = JobError {
            attempt: None,
            code: failure.code.to_owned(),
            message: failure.message.clone(),
        };
        let recorded = self
            .persist("fail", || {
                self.store
                    .fail_attempt(job_id, attempt, error.clone(), retry, duration_ms)
            })
            .await?;
        let Some(outcome) = recorded else {
            tracing::warn!("the attempt had already been ended elsewhere; its failure is dropped");
            return Ok(RunOutcome::AlreadyFinished);
        };
        let code = failure.code;
        let message = failure.message.as_str();
        match &outcome {
            FailOutcome::Retrying(job) => {
                self.metrics.jobs_retried.with_label_values(&[label]).inc();
                tracing::warn!(code, message, next_attempt_at = ?job.next_attempt_at, "attempt failed; retry scheduled");
            }
            FailOutcome::Failed(_) => {
                self.metrics.jobs_failed.with_label_values(&[label]).inc();
                tracing::warn!(code, message, "job failed; no retry");
            }
            FailOutcome::DeadLettered(job) => {
                self.metrics
                    .jobs_dead_lettered
                    .with_label_values(&[label])
                    .inc();
                self.metrics
                    .dead_letters
                    .with_label_values(&[DeadLetterReason::AttemptsExhausted.to_string().as_str()])
                    .inc();
                tracing::warn!(
                    code,
                    message,
                    attempts = job.attempts,
                    "every attempt failed; job dead-lettered"
                );
            }
        }
        Ok(RunOutcome::Recorded(outcome.job().status))
    }

    /// Runs a store write until it succeeds: a job's outcome is worth waiting for PostgreSQL
    /// to come back. Gives up (returning the error) on a non-transient error, or when the
    /// shutdown grace period ends.
    async fn persist<T, F, Fut>(&self, what: &str, mut write: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        loop {
            match write().await {
                Ok(value) => return Ok(value),
                Err(error @ StoreError::Database(_)) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(%error, retry_in = ?delay, "cannot record the attempt ({what}); PostgreSQL unavailable, retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = self.interrupt.cancelled() => return Err(error),
                    }
                }
                Err(error) => {
                    tracing::error!(%error, "cannot record the attempt ({what})");
                    return Err(error);
                }
            }
        }
    }
}
