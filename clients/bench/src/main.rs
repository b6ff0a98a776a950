//! `observatory-bench`: the load generator behind `cargo xtask bench`. It submits jobs through
//! the generated gateway client (at a target rate, or as fast as the system accepts them),
//! counts finished jobs from the read model's overview (its idempotent counters, so the count
//! is exact), takes each job's submit→finished latency from the read model's live stream, and
//! prints one line per figure: intake throughput, end-to-end throughput, and latency
//! percentiles. It is a benchmark, not a test: it
//! asserts nothing about speed, but it exits non-zero when an accepted job never finishes
//! (a lost job).

use anyhow::{Context, Result, bail};
use clap::Parser;
use futures_util::StreamExt;
use observatory_client::contracts::event_envelope::EventType;
use observatory_client::contracts::job_submission::JobSubmission;
use observatory_client::{gateway, read_model};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

#[derive(Parser, Debug)]
#[command(
    name = "observatory-bench",
    about = "Submit jobs and measure throughput and latency"
)]
struct Args {
    /// The gateway's base URL.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    gateway: String,
    /// The read model's base URL (its live stream tells when jobs finish).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    read_model: String,
    /// Jobs to submit.
    #[arg(long, default_value_t = 10_000)]
    jobs: usize,
    /// Target submissions per second; 0 submits as fast as the gateway accepts.
    #[arg(long, default_value_t = 0)]
    rate: u32,
    /// Submissions in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// The job each submission carries (default: a no-op sleep).
    #[arg(long, default_value = r#"{"type":"sleep","payload":{"durationMs":0}}"#)]
    job: String,
    /// How long to wait for the last job to finish after the last submission.
    #[arg(long, default_value_t = 120)]
    drain_timeout_secs: u64,
}

#[derive(Default)]
struct Ledger {
    submitted: HashMap<Uuid, Instant>,
    finished: HashMap<Uuid, Instant>,
    rejected: usize,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.jobs == 0 || args.concurrency == 0 {
        bail!("--jobs and --concurrency must be at least 1");
    }
    let template: serde_json::Value =
        serde_json::from_str(&args.job).context("--job is not JSON")?;
    let gateway = gateway::Client::new(&args.gateway);
    let read_model = read_model::Client::new(&args.read_model);
    let ledger = Arc::new(Mutex::new(Ledger::default()));

    let finished_before = finished_count(&read_model).await?;
    // Watch the live stream before the first submission, so no completion is missed. The
    // generated client's default has a 15 s request timeout, which would cut the stream.
    let streaming = read_model::Client::new_with_client(&args.read_model, reqwest::Client::new());
    let stream = streaming
        .stream_events()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "opening the read model's live stream at {}: {e}",
                args.read_model
            )
        })?
        .into_inner();
    let watcher = tokio::spawn(watch(stream, ledger.clone()));

    eprintln!(
        "submitting {} jobs to {} ({})",
        args.jobs,
        args.gateway,
        if args.rate == 0 {
            "as fast as accepted".to_string()
        } else {
            format!("{} jobs/s", args.rate)
        }
    );
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..args.concurrency.min(args.jobs) {
        let (gateway, ledger, next, template) = (
            gateway.clone(),
            ledger.clone(),
            next.clone(),
            template.clone(),
        );
        let (jobs, rate) = (args.jobs, args.rate);
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= jobs {
                    return Ok::<_, anyhow::Error>(());
                }
                if rate > 0 {
                    let due = started + Duration::from_secs_f64(i as f64 / f64::from(rate));
                    tokio::time::sleep_until(due.into()).await;
                }
                let id = Uuid::new_v4();
                let mut body = template.clone();
                body["jobId"] = serde_json::Value::String(id.to_string());
                let submission: JobSubmission =
                    serde_json::from_value(body).context("--job is not a valid job submission")?;
                ledger
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .submitted
                    .insert(id, Instant::now());
                if let Err(error) = gateway.submit_job(None, None, &submission).await {
                    let mut l = ledger.lock().unwrap_or_else(|p| p.into_inner());
                    l.submitted.remove(&id);
                    l.rejected += 1;
                    if l.rejected <= 3 {
                        eprintln!("rejected: {error}");
                    }
                }
                if i > 0 && i % 10_000 == 0 {
                    eprintln!("  {i} submitted");
                }
            }
        }));
    }
    for worker in workers {
        worker.await.context("a submitter panicked")??;
    }
    let intake_elapsed = started.elapsed();
    let accepted = ledger
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .submitted
        .len();

    // Wait until the counters say every accepted job finished (or the drain timeout).
    let deadline = Instant::now() + Duration::from_secs(args.drain_timeout_secs);
    let mut finished = 0;
    let mut last_finish = Instant::now();
    while Instant::now() < deadline {
        finished = finished_count(&read_model)
            .await?
            .saturating_sub(finished_before);
        last_finish = Instant::now();
        if finished >= accepted as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    watcher.abort();
    let finished = finished as usize;

    let ledger = ledger.lock().unwrap_or_else(|p| p.into_inner());
    let mut latencies: Vec<Duration> = ledger
        .finished
        .iter()
        .filter_map(|(id, at)| {
            ledger
                .submitted
                .get(id)
                .map(|s| at.saturating_duration_since(*s))
        })
        .collect();
    latencies.sort();
    let e2e = last_finish.saturating_duration_since(started);
    println!(
        "intake: {accepted} accepted in {:.2} s = {:.0} jobs/s ({} rejected)",
        intake_elapsed.as_secs_f64(),
        accepted as f64 / intake_elapsed.as_secs_f64(),
        ledger.rejected
    );
    println!(
        "end-to-end: {finished} finished in {:.2} s = {:.0} jobs/s (counted by the read model's overview)",
        e2e.as_secs_f64(),
        finished as f64 / e2e.as_secs_f64().max(1e-9)
    );
    if !latencies.is_empty() {
        let p = |q: f64| {
            latencies[((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1]
        };
        println!(
            "latency submit->finished: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} of {accepted} jobs seen on the live stream)",
            ms(p(0.50)),
            ms(p(0.95)),
            ms(p(0.99)),
            ms(latencies[latencies.len() - 1]),
            latencies.len()
        );
    }
    if finished < accepted {
        bail!(
            "{} accepted jobs did not finish within {} s",
            accepted - finished,
            args.drain_timeout_secs
        );
    }
    Ok(())
}

/// Jobs that reached a terminal state, from the overview's counters.
async fn finished_count(read_model: &read_model::Client) -> Result<u64> {
    let overview = read_model
        .get_overview(None)
        .await
        .map_err(|e| anyhow::anyhow!("reading the overview: {e}"))?
        .into_inner();
    let t = &overview.totals;
    // A job that failed without retry counts as failed but neither retried nor dead-lettered.
    let failed_for_good = t
        .failed
        .saturating_sub(t.retried)
        .saturating_sub(t.dead_lettered);
    Ok(t.completed + t.dead_lettered + failed_for_good)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Reads the live stream and records when each job reached a terminal event.
async fn watch(response: read_model::ByteStream, ledger: Arc<Mutex<Ledger>>) {
    let mut events = std::pin::pin!(observatory_client::live::events(response));
    while let Some(Ok(event)) = events.next().await {
        let payload = &event.payload;
        let terminal = match event.event_type {
            EventType::JobCompleted | EventType::JobDeadLettered => true,
            EventType::JobFailed => {
                payload.get("jobStatus").and_then(|s| s.as_str()) == Some("FAILED")
            }
            _ => false,
        };
        let id = payload
            .get("jobId")
            .and_then(|id| id.as_str())
            .and_then(|s| Uuid::parse_str(s).ok());
        if let (true, Some(id)) = (terminal, id) {
            ledger
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .finished
                .entry(id)
                .or_insert_with(Instant::now);
        }
    }
}
