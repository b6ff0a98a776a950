//! The retry scheduler: runs RETRYING jobs once their `next_attempt_at` is due, and jobs left
//! PENDING (their message lost); and, in a loop of its own, the recovery of attempts whose
//! worker stopped renewing their lease.
//!
//! Retries wait in the job store, not in the broker (see `observatory-job-store`), so a pending
//! retry survives every restart. Several processors may poll at once: `start_attempt` is a
//! conditional update, so exactly one of them starts each due attempt.
//!
//! Recovery needs no job slot (it only records the interruption; the retry then waits for a
//! slot like any other), so a saturated processor still takes over a dead peer's attempts.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use observatory_runtime::backoff::Backoff;
use observatory_runtime::shutdown::CancellationToken;
use tracing::Instrument;

use crate::fairness::Admission;
use crate::runner::JobRunner;
use observatory_job_store::DueJob;

/// How often the scheduler looks for due retries when the last look found few.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Most due retries read per look.
const BATCH: u32 = 100;
/// A job is started as soon as it is stored; one still PENDING after this lost its message.
const PENDING_GRACE: Duration = Duration::from_secs(30);
/// How often the jobs left PENDING are looked for.
const PENDING_SWEEP_EVERY: Duration = Duration::from_secs(10);

pub(crate) async fn run_retry_scheduler(runner: Arc<JobRunner>, stop: CancellationToken) {
    let mut failures = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    let mut next_pending_sweep = tokio::time::Instant::now();
    let (mut retries, mut pending) = (Scan::new(Kind::Retry), Scan::new(Kind::Pending));
    loop {
        let mut looked = retries.look(&runner, &stop).await;
        if tokio::time::Instant::now() >= next_pending_sweep {
            next_pending_sweep = tokio::time::Instant::now() + PENDING_SWEEP_EVERY;
            looked = match (looked, pending.look(&runner, &stop).await) {
                (Ok(a), Ok(b)) => Ok(a + b),
                (Err(e), _) | (_, Err(e)) => Err(e),
            };
        }
        let pause = match looked {
            // More may be due: look again at once (each start waited for a job slot).
            Ok(progressed) if progressed >= BATCH as usize => Duration::ZERO,
            Ok(_) => {
                failures = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
                POLL_INTERVAL
            }
            Err(error) => {
                let delay = failures.next_delay();
                tracing::warn!(%error, retry_in = ?delay, "cannot read due retries; the job store unavailable?");
                delay
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// Interrupts, every half lease, the attempts whose lease ran out (their worker died or was
/// cut off): they run again at once, without using up an attempt.
pub(crate) async fn run_lease_recovery(runner: Arc<JobRunner>, stop: CancellationToken) {
    let every = runner.lease / 2;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.cancelled() => return,
        }
        recover_expired_leases(&runner).await;
    }
}

#[derive(Clone, Copy)]
enum Kind {
    /// RETRYING jobs whose next attempt is due.
    Retry,
    /// Jobs left PENDING (their message was lost).
    Pending,
}

/// One kind of due job, read page by page. The jobs this process cannot start yet (already
/// running or parked here, or of a type at its limit with the parking full) stay due, so a
/// look that only found those goes on past them, at most `PAGES_PER_LOOK` pages, and the next
/// look goes on from where this one stopped; it starts from the oldest again once it reached
/// the end. A flood of one type thus neither keeps the scheduler busy finding the same jobs
/// nor hides the due jobs of other types behind them.
struct Scan {
    kind: Kind,
    after: Option<DueJob>,
}

/// Most pages of due jobs read per look.
const PAGES_PER_LOOK: usize = 10;

impl Scan {
    fn new(kind: Kind) -> Self {
        Self { kind, after: None }
    }

    /// Starts (or parks) the due jobs it finds; returns how many it started or parked.
    async fn look(
        &mut self,
        runner: &Arc<JobRunner>,
        stop: &CancellationToken,
    ) -> Result<usize, observatory_job_store::StoreError> {
        let mut progressed = 0;
        for _ in 0..PAGES_PER_LOOK {
            let page = match self.kind {
                Kind::Retry => {
                    runner
                        .store
                        .due_retries(Utc::now(), self.after.as_ref(), BATCH)
                        .await?
                }
                Kind::Pending => {
                    runner
                        .store
                        .stale_pending(PENDING_GRACE, self.after.as_ref(), BATCH)
                        .await?
                }
            };
            let full = page.len() >= BATCH as usize;
            self.after = if full { page.last().cloned() } else { None };
            let what = match self.kind {
                Kind::Retry => "retry",
                Kind::Pending => "pending",
            };
            let started = start_each(runner, stop, page, what).await;
            if started > 0 && matches!(self.kind, Kind::Pending) {
                tracing::warn!(jobs = started, grace = ?PENDING_GRACE, "started jobs left PENDING (their message was lost)");
            }
            progressed += started;
            if !full || progressed >= BATCH as usize || stop.is_cancelled() {
                break;
            }
        }
        Ok(progressed)
    }
}

/// Runs the next attempt of each job not already handled here, each under a job slot, or
/// parks it; returns how many it started or parked.
async fn start_each(
    runner: &Arc<JobRunner>,
    stop: &CancellationToken,
    jobs: Vec<DueJob>,
    what: &'static str,
) -> usize {
    let mut progressed = 0;
    for DueJob {
        id: job_id,
        job_type,
        ..
    } in jobs
    {
        let Some(claim) = runner.claims.try_claim(job_id) else {
            continue;
        };
        // Its type's limit first: parked (started when a slot frees up), or left due when the
        // parking is full (looked at again next time).
        let (type_slot, claim) = match runner.types.admit(&job_type, job_id, claim) {
            Admission::Now(slot, claim) => (slot, claim),
            Admission::Parked => {
                runner.metrics.jobs_parked.inc();
                progressed += 1;
                continue;
            }
            Admission::Full(_) => continue,
        };
        progressed += 1;
        let permit = tokio::select! {
            permit = runner.permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return progressed,
            },
            _ = stop.cancelled() => return progressed,
        };
        let runner = runner.clone();
        tokio::spawn(
            async move {
                if let Err(error) = runner.run_next_attempt(job_id).await {
                    // It stays due (or RUNNING until its lease runs out, then taken over).
                    tracing::warn!(%job_id, %error, "running a job failed; it will be picked up again");
                }
                drop(claim);
                drop(type_slot);
                drop(permit);
            }
            .instrument(tracing::info_span!("scheduled", what)),
        );
    }
    progressed
}

/// Interrupts the attempts whose lease ran out, except this process's own.
async fn recover_expired_leases(runner: &JobRunner) {
    let expired = match runner.store.expired_leases(BATCH).await {
        Ok(expired) => expired,
        Err(error) => {
            tracing::warn!(%error, "cannot look for expired leases");
            return;
        }
    };
    for running in expired {
        if runner.claims.is_claimed(running.job_id) {
            continue;
        }
        let reason = "its worker stopped renewing the attempt's lease (it crashed, stopped or lost the store)";
        match runner
            .store
            .interrupt_attempt(running.job_id, running.attempt, reason)
            .await
        {
            Ok(Some(_)) => {
                runner.metrics.jobs_interrupted.inc();
                tracing::warn!(job_id = %running.job_id, attempt = running.attempt, "took over an attempt whose lease ran out; it runs again");
            }
            Ok(None) => {} // Finished meanwhile.
            Err(error) => {
                tracing::warn!(job_id = %running.job_id, %error, "cannot take over an expired attempt")
            }
        }
    }
}
