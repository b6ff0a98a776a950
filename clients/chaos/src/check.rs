//! The checker: what happened to every accepted job, read back through the generated read-model
//! client once the system settled. A job is *lost* when the store does not know it, *stuck*
//! when it is not finished two minutes after the load stopped, *duplicated* when it succeeded
//! in more than one attempt or its log holds more than one `job.created` or `job.completed`,
//! and *failed* when it used up its attempts (every job of the load succeeds within them, so a
//! failure is one the fault caused). The counters are checked too: the overview must come to
//! agree with the store on how many jobs were submitted and completed.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use observatory_client::contracts::event_envelope::EventType;
use observatory_client::contracts::job::JobStatus;
use observatory_client::contracts::job_attempt::AttemptOutcome;
use observatory_client::read_model::Client;
use uuid::Uuid;

use crate::load::Accepted;

/// How long after the load stopped a job may take to finish.
const SETTLE: Duration = Duration::from_secs(120);
/// How long the counters may take to agree with the store.
const COUNTERS_SETTLE: Duration = Duration::from_secs(30);

/// One line of the matrix.
pub struct Row {
    pub name: String,
    pub accepted: usize,
    pub never_accepted: usize,
    pub completed: usize,
    pub failed: usize,
    pub lost: usize,
    pub duplicated: usize,
    pub stuck: usize,
    /// What the counters got wrong, when they never agreed with the store.
    pub miscounted: Option<String>,
    /// Seconds from the end of the fault until jobs completed again.
    pub recovered_in: Option<f64>,
    /// Seconds the fault lasted (a restart included).
    pub fault_secs: f64,
    /// Why the scenario could not be checked at all.
    pub error: Option<String>,
}

impl Row {
    pub fn failed(name: &str, error: &str) -> Self {
        Self {
            name: name.to_owned(),
            accepted: 0,
            never_accepted: 0,
            completed: 0,
            failed: 0,
            lost: 0,
            duplicated: 0,
            stuck: 0,
            miscounted: None,
            recovered_in: None,
            fault_secs: 0.0,
            error: Some(error.to_owned()),
        }
    }

    /// Whether the system kept every promise in this scenario.
    pub fn ok(&self) -> bool {
        self.error.is_none()
            && self.never_accepted == 0
            && self.failed == 0
            && self.lost == 0
            && self.duplicated == 0
            && self.stuck == 0
            && self.miscounted.is_none()
    }

    fn cells(&self) -> Vec<String> {
        let recovered = self
            .recovered_in
            .map_or_else(|| "-".to_owned(), |s| format!("{s:.1} s"));
        vec![
            self.name.clone(),
            format!("{:.1} s", self.fault_secs),
            self.accepted.to_string(),
            self.never_accepted.to_string(),
            self.completed.to_string(),
            self.failed.to_string(),
            self.lost.to_string(),
            self.duplicated.to_string(),
            self.stuck.to_string(),
            self.miscounted
                .clone()
                .unwrap_or_else(|| "agree".to_owned()),
            recovered,
            match (&self.error, self.ok()) {
                (Some(error), _) => format!("ERROR: {error}"),
                (None, true) => "ok".to_owned(),
                (None, false) => "VIOLATED".to_owned(),
            },
        ]
    }

    /// The row as one progress line.
    pub fn line(&self) -> String {
        HEADER
            .iter()
            .zip(self.cells())
            .skip(1)
            .map(|(h, c)| format!("{h}: {c}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

const HEADER: [&str; 12] = [
    "scenario",
    "fault",
    "accepted",
    "never accepted",
    "completed",
    "failed",
    "lost",
    "duplicated",
    "stuck",
    "counters",
    "jobs complete again after",
    "result",
];

/// The matrix as a Markdown table (what the README shows).
pub fn table(rows: &[Row]) -> String {
    let mut out = format!("| {} |\n", HEADER.join(" | "));
    out.push_str(&format!("|{}\n", "---|".repeat(HEADER.len())));
    for row in rows {
        out.push_str(&format!("| {} |\n", row.cells().join(" | ")));
    }
    out
}

enum Seen {
    Finished { status: JobStatus, duplicated: bool },
    Unfinished,
    Unknown,
}

async fn look(client: &Client, id: &Uuid) -> Result<Seen> {
    let detail = match client.get_job(id, None).await {
        Ok(detail) => detail.into_inner(),
        Err(error) if error.status() == Some(reqwest::StatusCode::NOT_FOUND) => {
            return Ok(Seen::Unknown);
        }
        Err(error) => return Err(error).with_context(|| format!("reading job {id}")),
    };
    let status = detail.job.status;
    if !matches!(
        status,
        JobStatus::Completed | JobStatus::Failed | JobStatus::DeadLettered
    ) {
        return Ok(Seen::Unfinished);
    }
    let succeeded = detail
        .attempts
        .iter()
        .filter(|a| a.outcome == AttemptOutcome::Succeeded)
        .count();
    let events = |kind: EventType| {
        detail
            .events
            .iter()
            .filter(|e| e.event_type == kind)
            .count()
    };
    let duplicated =
        succeeded > 1 || events(EventType::JobCreated) > 1 || events(EventType::JobCompleted) > 1;
    Ok(Seen::Finished { status, duplicated })
}

/// How many jobs the store holds, in all and completed (paging through `/jobs`).
async fn store_counts(client: &Client) -> Result<(u64, u64)> {
    let mut counts = (0, 0);
    for status in [None, Some(JobStatus::Completed)] {
        let mut cursor = None;
        let mut count = 0;
        loop {
            let page = client
                .list_jobs(
                    None,
                    None,
                    cursor.as_ref(),
                    None,
                    std::num::NonZeroU64::new(500),
                    status.as_ref(),
                    None,
                    None,
                )
                .await
                .context("listing the jobs")?
                .into_inner();
            count += page.items.len() as u64;
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        if status.is_none() {
            counts.0 = count;
        } else {
            counts.1 = count;
        }
    }
    Ok(counts)
}

/// Checks every accepted job, then the counters.
pub async fn check(
    name: &str,
    read_model: &str,
    accepted: &Accepted,
    recovered_in: Option<f64>,
    fault_secs: f64,
) -> Result<Row> {
    let client = Client::new(read_model);
    let mut row = Row::failed(name, "");
    row.error = None;
    row.accepted = accepted.ids.len();
    row.never_accepted = accepted.never_accepted;
    row.recovered_in = recovered_in;
    row.fault_secs = fault_secs;

    let deadline = Instant::now() + SETTLE;
    let mut open: HashSet<Uuid> = accepted.ids.clone();
    let mut unknown = HashSet::new();
    loop {
        let mut still_open = HashSet::new();
        unknown.clear();
        for id in &open {
            match look(&client, id).await? {
                Seen::Finished { status, duplicated } => {
                    match status {
                        JobStatus::Completed => row.completed += 1,
                        _ => row.failed += 1,
                    }
                    row.duplicated += usize::from(duplicated);
                }
                Seen::Unfinished => {
                    still_open.insert(*id);
                }
                Seen::Unknown => {
                    // A job the processor has not stored yet; lost only if it never appears.
                    still_open.insert(*id);
                    unknown.insert(*id);
                }
            }
        }
        open = still_open;
        if open.is_empty() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    row.lost = unknown.len();
    row.stuck = open.len() - unknown.len();
    for id in open.iter().take(5) {
        let what = if unknown.contains(id) {
            "lost"
        } else {
            "stuck"
        };
        eprintln!("    {what}: job {id}");
    }

    let started = Instant::now();
    loop {
        let (jobs, completed) = store_counts(&client).await?;
        let totals = client
            .get_overview(None)
            .await
            .context("reading the overview")?
            .into_inner()
            .totals;
        if totals.submitted == jobs && totals.completed == completed {
            row.miscounted = None;
            break;
        }
        row.miscounted = Some(format!(
            "submitted {} of {jobs}, completed {} of {completed}",
            totals.submitted, totals.completed
        ));
        if started.elapsed() > COUNTERS_SETTLE {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(row)
}
