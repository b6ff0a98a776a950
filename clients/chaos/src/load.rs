//! The load: jobs submitted at a steady rate through the generated gateway client, each with
//! a client-chosen id, resubmitted with the same id (so, idempotently) until a gateway accepts
//! it — through outages, refusals and unknown outcomes. The accepted ids are what the check
//! holds the system to. A sampler records the overview's completed count meanwhile, to tell
//! when jobs completed again after a fault.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use observatory_client::contracts::job_submission::JobSubmission;
use observatory_client::{gateway, read_model};
use serde_json::json;
use tokio::sync::Semaphore;
use uuid::Uuid;

/// Submissions in flight at once.
const IN_FLIGHT: usize = 64;
/// How long after the load stops a job keeps being resubmitted until accepted.
const RESUBMIT_FOR: Duration = Duration::from_secs(60);

/// Every accepted job, and how many were never accepted.
pub struct Accepted {
    pub ids: HashSet<Uuid>,
    pub never_accepted: usize,
}

pub struct Load {
    stop: Arc<AtomicBool>,
    ticker: tokio::task::JoinHandle<()>,
    permits: Arc<Semaphore>,
    accepted: Arc<Mutex<HashSet<Uuid>>>,
    given_up: Arc<AtomicUsize>,
}

/// The job of the `n`th submission: mostly sleeps with a single attempt (a crash must not
/// use it up), some that fail once and then succeed, some computations.
fn job(n: u64, id: Uuid) -> JobSubmission {
    let body = match n % 5 {
        0..=2 => {
            json!({"jobId": id, "type": "sleep", "payload": {"durationMs": 200}, "maxAttempts": 1})
        }
        3 => {
            json!({"jobId": id, "type": "fail", "payload": {"failFirstAttempts": 1}, "maxAttempts": 3})
        }
        _ => {
            json!({"jobId": id, "type": "compute", "payload": {"iterations": 20000}, "maxAttempts": 1})
        }
    };
    serde_json::from_value(body)
        .unwrap_or_else(|e| panic!("the chaos job template is invalid: {e}"))
}

impl Load {
    pub fn start(gateways: Vec<String>, rate: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let permits = Arc::new(Semaphore::new(IN_FLIGHT));
        let accepted = Arc::new(Mutex::new(HashSet::new()));
        let given_up = Arc::new(AtomicUsize::new(0));
        let clients: Vec<gateway::Client> =
            gateways.iter().map(|g| gateway::Client::new(g)).collect();
        let ticker = tokio::spawn({
            let (stop, permits, accepted, given_up) = (
                stop.clone(),
                permits.clone(),
                accepted.clone(),
                given_up.clone(),
            );
            async move {
                let mut tick =
                    tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
                let mut n: u64 = 0;
                while !stop.load(Ordering::SeqCst) {
                    tick.tick().await;
                    let Ok(permit) = permits.clone().acquire_owned().await else {
                        return;
                    };
                    let client = clients[(n as usize) % clients.len()].clone();
                    let (stop, accepted, given_up) =
                        (stop.clone(), accepted.clone(), given_up.clone());
                    let submission = job(n, Uuid::new_v4());
                    n += 1;
                    tokio::spawn(async move {
                        let id = submission.job_id.unwrap_or_default();
                        let mut stopped_at: Option<Instant> = None;
                        loop {
                            if let Ok(answer) = client.submit_job(None, None, &submission).await {
                                accepted
                                    .lock()
                                    .unwrap_or_else(|p| p.into_inner())
                                    .insert(answer.into_inner().job_id);
                                break;
                            }
                            if stop.load(Ordering::SeqCst) {
                                let since = *stopped_at.get_or_insert_with(Instant::now);
                                if since.elapsed() > RESUBMIT_FOR {
                                    given_up.fetch_add(1, Ordering::SeqCst);
                                    eprintln!("    job {id} was never accepted");
                                    break;
                                }
                            }
                            tokio::time::sleep(Duration::from_millis(300)).await;
                        }
                        drop(permit);
                    });
                }
            }
        });
        Self {
            stop,
            ticker,
            permits,
            accepted,
            given_up,
        }
    }

    /// Stops submitting new jobs and waits for the pending ones to be accepted (or given up).
    pub async fn stop(self) -> Accepted {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.ticker.await;
        let all = u32::try_from(IN_FLIGHT).unwrap_or(u32::MAX);
        let _ = self.permits.acquire_many(all).await;
        let ids = self
            .accepted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Accepted {
            ids,
            never_accepted: self.given_up.load(Ordering::SeqCst),
        }
    }
}

/// Samples the overview's completed count until stopped.
pub struct Progress {
    samples: Arc<Mutex<Vec<(Instant, u64)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    pub fn start(read_model: &str) -> Self {
        let client = read_model::Client::new(read_model);
        let samples = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn({
            let samples = samples.clone();
            async move {
                loop {
                    if let Ok(overview) = client.get_overview(None).await {
                        let completed = overview.into_inner().totals.completed;
                        samples
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push((Instant::now(), completed));
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        });
        Self { samples, task }
    }

    /// Seconds from `over` until the completed count next rose (jobs completed again).
    pub fn recovered_after(self, over: Instant) -> Option<f64> {
        self.task.abort();
        let samples = self
            .samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut last = samples
            .iter()
            .rev()
            .find(|(at, _)| *at <= over)
            .map(|(_, c)| *c)?;
        for (at, completed) in samples.iter().filter(|(at, _)| *at > over) {
            if *completed != last {
                return Some(at.duration_since(over).as_secs_f64());
            }
            last = *completed;
        }
        None
    }
}
