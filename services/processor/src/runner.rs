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
use crate::fairness::TypeSlots;
use crate::metrics::ProcessorMetrics;

/// Jobs this process is handling now (so the scheduler does not start a job twice and the
/// recovery of expired leases leaves this process's own running attempts alone).
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

/// How an attempt's execution ended.
enum Ended {
    Ran(AttemptResult),
    /// Shutdown's grace period ran out.
    Interrupted,
    /// Another processor took the attempt over.
    LeaseLost,
}

/// What [`JobRunner::run_next_attempt`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunOutcome {
    /// No attempt was due (already running, finished, or a retry not yet due): nothing changed.
    NothingToRun,
    /// An attempt ran and its end is recorded; the job is now in this status.
    Recorded(JobStatus),
    /// The attempt ran but its end was already recorded by someone else (another processor
    /// took it over when its lease ran out); nothing changed.
    AlreadyFinished,
    /// The attempt was interrupted (shutdown) and recorded so: it runs again without using
    /// up an attempt.
    Interrupted,
}

pub(crate) struct JobRunner {
    pub store: Arc<dyn JobStore>,
    pub executor: Executor,
    pub metrics: ProcessorMetrics,
    pub backoff: RetryBackoff,
    pub attempt_timeout: Duration,
    /// How long a running attempt is this process's without a renewal.
    pub lease: Duration,
    pub worker: String,
    /// One permit per job in flight.
    pub permits: Arc<Semaphore>,
    /// At most `--type-concurrency` attempts per job type, and the jobs parked until then.
    pub types: TypeSlots,
    pub claims: Claims,
    /// Cancelled when the shutdown grace period ends: running attempts stop and are recorded
    /// as interrupted (run again, without using up an attempt).
    pub interrupt: CancellationToken,
}

impl JobRunner {
    /// Starts the next attempt of `job_id` if one is due, executes it, and records how it
    /// ended. `Err` means the store could not be reached to start the attempt, or to record
    /// its end before the shutdown grace period ran out (the attempt then stays RUNNING until
    /// its lease runs out, and is taken over).
    pub async fn run_next_attempt(&self, job_id: Uuid) -> Result<RunOutcome, StoreError> {
        let started = self
            .store
            .start_attempt(job_id, &self.worker, self.lease)
            .await?;
        let Some(started) = started else {
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
        let ended = tokio::select! {
            result = tokio::time::timeout(
                self.attempt_timeout,
                self.executor.execute(job.type_.as_str(), &job.payload, attempt),
            ) => Ended::Ran(result.unwrap_or_else(|_| AttemptResult::Failed(AttemptFailure::transient(
                codes::TIMEOUT,
                format!("the attempt ran longer than {:?}", self.attempt_timeout),
            )))),
            _ = self.interrupt.cancelled() => Ended::Interrupted,
            () = self.keep_lease(job.id, attempt) => Ended::LeaseLost,
        };
        self.metrics.jobs_in_flight.dec();
        let elapsed = began.elapsed();
        let duration_ms = elapsed.as_secs_f64() * 1000.0;

        let result = match ended {
            Ended::Ran(result) => result,
            Ended::Interrupted => return self.record_interruption(job.id, attempt).await,
            Ended::LeaseLost => {
                tracing::warn!(
                    "the attempt's lease was taken over (this process was cut off from the store); its result is dropped"
                );
                return Ok(RunOutcome::AlreadyFinished);
            }
        };
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
                    Some(done) => {
                        self.metrics
                            .jobs_completed
                            .with_label_values(&[label])
                            .inc();
                        self.metrics.observe_end_to_end(&done, label, "completed");
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

    /// Renews the lease of a running attempt every third of its length; returns only when the
    /// store says the attempt is no longer this worker's (it was taken over). A store that
    /// does not answer is tried again: the lease may still hold when it answers.
    async fn keep_lease(&self, job_id: Uuid, attempt: u32) {
        let every = self.lease / 3;
        loop {
            tokio::time::sleep(every).await;
            match self
                .store
                .renew_lease(job_id, attempt, &self.worker, self.lease)
                .await
            {
                Ok(true) => {}
                Ok(false) => return,
                Err(error) => {
                    tracing::warn!(%error, "cannot renew the attempt's lease; trying again");
                }
            }
        }
    }

    /// Records an attempt stopped by shutdown as interrupted: it runs again later, here or
    /// elsewhere, without using up an attempt. When the store cannot be reached in time, the
    /// attempt's lease runs out and another processor records the same.
    async fn record_interruption(
        &self,
        job_id: Uuid,
        attempt: u32,
    ) -> Result<RunOutcome, StoreError> {
        let reason = "the processor shut down while the attempt was running";
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            match self.store.interrupt_attempt(job_id, attempt, reason).await {
                Ok(Some(_)) => {
                    self.metrics.jobs_interrupted.inc();
                    tracing::warn!("attempt interrupted by shutdown; it will run again");
                    return Ok(RunOutcome::Interrupted);
                }
                Ok(None) => return Ok(RunOutcome::AlreadyFinished),
                Err(error @ StoreError::Database(_)) if Instant::now() < deadline => {
                    tracing::warn!(%error, "cannot record the interruption yet");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                Err(error) => return Err(error),
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
            FailOutcome::Failed(job) => {
                self.metrics.jobs_failed.with_label_values(&[label]).inc();
                self.metrics.observe_end_to_end(job, label, "failed");
                tracing::warn!(code, message, "job failed; no retry");
            }
            FailOutcome::DeadLettered(job) => {
                self.metrics
                    .jobs_dead_lettered
                    .with_label_values(&[label])
                    .inc();
                self.metrics.observe_end_to_end(job, label, "dead_lettered");
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
