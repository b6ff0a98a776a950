//! The retry scheduler: runs RETRYING jobs once their `next_attempt_at` is due, and recovers
//! attempts left RUNNING by a processor that vanished.
//!
//! Retries wait in PostgreSQL, not in the broker (see `observatory-job-store`), so a pending
//! retry survives every restart. Several processors may poll at once: `start_attempt` is a
//! conditional update, so exactly one of them starts each due attempt.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use observatory_job_store::Retry;
use observatory_runtime::backoff::Backoff;
use observatory_runtime::shutdown::CancellationToken;
use tracing::Instrument;

use crate::executor::{AttemptFailure, codes};
use crate::runner::JobRunner;

/// How often the scheduler looks for due retries when the last look found few.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Most due retries read per look.
const BATCH: u32 = 100;
/// Largest margin beyond the attempt timeout after which a RUNNING attempt counts as
/// abandoned (its own worker would have timed it out by then). The margin is the attempt
/// timeout itself when that is shorter, so short timeouts recover quickly.
const MAX_ABANDON_MARGIN: Duration = Duration::from_secs(60);

pub(crate) async fn run_retry_scheduler(runner: Arc<JobRunner>, stop: CancellationToken) {
    let mut failures = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    let recovery_every =
        (runner.attempt_timeout / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let mut next_recovery = tokio::time::Instant::now();
    loop {
        if tokio::time::Instant::now() >= next_recovery {
            recover_abandoned(&runner).await;
            next_recovery = tokio::time::Instant::now() + recovery_every;
        }
        let pause = match start_due_retries(&runner, &stop).await {
            Ok(found) if found >= BATCH as usize => Duration::ZERO,
            Ok(_) => {
                failures = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
                POLL_INTERVAL
            }
            Err(error) => {
                let delay = failures.next_delay();
                tracing::warn!(%error, retry_in = ?delay, "cannot read due retries; PostgreSQL unavailable?");
                delay
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// Starts every due retry that this process is not already handling; returns how many were due.
async fn start_due_retries(
    runner: &Arc<JobRunner>,
    stop: &CancellationToken,
) -> Result<usize, observatory_job_store::StoreError> {
    let due = runner.store.due_retries(Utc::now(), BATCH).await?;
    let found = due.len();
    for job_id in due {
        let Some(claim) = runner.claims.try_claim(job_id) else {
            continue;
        };
        let permit = tokio::select! {
            permit = runner.permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return Ok(found),
            },
            _ = stop.cancelled() => return Ok(found),
        };
        let runner = runner.clone();
        tokio::spawn(
            async move {
                if let Err(error) = runner.run_next_attempt(job_id).await {
                    // The retry stays due (or RUNNING, then recovered as abandoned).
                    tracing::warn!(%job_id, %error, "running a due retry failed; it will be picked up again");
                }
                drop(claim);
                drop(permit);
            }
            .instrument(tracing::info_span!("retry")),
        );
    }
    Ok(found)
}

/// Fails attempts RUNNING for longer than the attempt timeout (plus a margin) that this
/// process is not running: their worker died. They are retried like any failed attempt.
async fn recover_abandoned(runner: &JobRunner) {
    let threshold = runner.attempt_timeout + runner.attempt_timeout.min(MAX_ABANDON_MARGIN);
    let Ok(threshold) = chrono::TimeDelta::from_std(threshold) else {
        return;
    };
    let Some(started_before) = Utc::now().checked_sub_signed(threshold) else {
        return;
    };
    let abandoned = match runner.store.abandoned_attempts(started_before, BATCH).await {
        Ok(abandoned) => abandoned,
        Err(error) => {
            tracing::warn!(%error, "cannot look for abandoned attempts");
            return;
        }
    };
    for running in abandoned {
        if runner.claims.is_claimed(running.job_id) {
            continue;
        }
        let failure = AttemptFailure::transient(
            codes::TIMEOUT,
            format!("the attempt was still running after {threshold}; its worker is presumed gone"),
        );
        let retry = Retry::After(runner.backoff.after_attempt(running.attempt));
        let duration_ms = threshold.num_milliseconds() as f64;
        let span =
            tracing::info_span!("abandoned", job_id = %running.job_id, attempt = running.attempt);
        // The job type is not known here; abandoned attempts are counted as `other`.
        match runner
            .record_failure(
                running.job_id,
                running.attempt,
                &failure,
                retry,
                duration_ms,
                "other",
            )
            .instrument(span)
            .await
        {
            Ok(outcome) => {
                tracing::warn!(job_id = %running.job_id, ?outcome, "recovered an abandoned attempt")
            }
            Err(error) => {
                tracing::warn!(job_id = %running.job_id, %error, "cannot recover an abandoned attempt")
            }
        }
    }
}
