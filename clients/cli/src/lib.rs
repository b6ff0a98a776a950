//! `observatory submit | jobs | job`: the command-line client of the Observatory, as a library
//! the `observatory` binary wires in. It talks to the services only through the generated
//! clients of `observatory-client` (the gateway's and the read model's OpenAPI contracts), and
//! writes to any [`std::io::Write`], so tests capture the output.
//!
//! ```no_run
//! # async fn demo() -> Result<(), observatory_cli::CliError> {
//! use clap::Parser;
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(subcommand)]
//!     command: observatory_cli::Command,
//! }
//! let cli = Cli::parse_from(["observatory", "submit", "--type", "sleep", "--payload", r#"{"durationMs": 10}"#]);
//! observatory_cli::run(cli.command, &mut std::io::stdout()).await
//! # }
//! ```

mod args;
pub mod contracts;
mod error;
mod render;

use std::io::Write;
use std::num::NonZeroU64;

use observatory_client::{gateway, read_model};

pub use args::{
    Command, DEFAULT_GATEWAY_URL, DEFAULT_READ_MODEL_URL, JOB_STATUSES, JobArgs, JobsArgs,
    SubmitArgs, build_submission, built_in_job_types, parse_base_url, parse_cursor,
    parse_id_prefix, parse_job_id, parse_job_type, parse_payload, parse_status,
};
pub use error::{CliError, Service};
pub use render::{clean, duration, render_job_detail, render_job_page};

/// Runs one client command, writing its output to `out`.
pub async fn run(command: Command, out: &mut impl Write) -> Result<(), CliError> {
    match command {
        Command::Submit(args) => submit(&args, out).await,
        Command::Jobs(args) => jobs(&args, out).await,
        Command::Job(args) => job(&args, out).await,
    }
}

/// Submits a job through the gateway; prints its id, or with `--json` the gateway's answer.
///
/// When the gateway cannot say whether it accepted the job (its broker did not confirm in
/// time: 503 `outcome-unknown`), it names the job id it used; the job is submitted again with
/// that id, which makes it the same job, run once (a few times at most).
pub async fn submit(args: &SubmitArgs, out: &mut impl Write) -> Result<(), CliError> {
    let url = parse_base_url("--gateway", &args.gateway)?;
    let (mut submission, key) = build_submission(args)?;
    let client = gateway::Client::new(&url);
    let mut tries = 0;
    let accepted = loop {
        tries += 1;
        match client.submit_job(key.as_ref(), None, &submission).await {
            Ok(accepted) => break accepted.into_inner(),
            Err(gateway::Error::ErrorResponse(answer))
                if tries < OUTCOME_UNKNOWN_TRIES
                    && answer.status().as_u16() == 503
                    && answer.code.as_str() == "outcome-unknown" =>
            {
                let Some(id) = answer
                    .details
                    .iter()
                    .find(|d| d.pointer.as_deref() == Some("/jobId"))
                    .and_then(|d| uuid::Uuid::try_parse(&d.message).ok())
                else {
                    return Err(CliError::from_client(
                        Service::Gateway,
                        &url,
                        gateway::Error::ErrorResponse(answer),
                    ));
                };
                eprintln!(
                    "the gateway could not confirm the job; submitting it again as job {id} (the same job, run once)"
                );
                submission.job_id = Some(id);
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            Err(error) => return Err(CliError::from_client(Service::Gateway, &url, error)),
        }
    };
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &accepted)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{}", accepted.job_id)?;
    }
    Ok(out.flush()?)
}

/// How many times `submit` tries when the gateway cannot say whether it accepted the job.
const OUTCOME_UNKNOWN_TRIES: u32 = 3;

/// Lists one page of jobs from the read model: a table, or with `--json` the JobPage.
pub async fn jobs(args: &JobsArgs, out: &mut impl Write) -> Result<(), CliError> {
    let url = parse_base_url("--read-model", &args.read_model)?;
    let status = args.status.as_deref().map(parse_status).transpose()?;
    let job_type = args.job_type.as_deref().map(parse_job_type).transpose()?;
    let cursor = args.cursor.as_deref().map(parse_cursor).transpose()?;
    let id_prefix = args.id_prefix.as_deref().map(parse_id_prefix).transpose()?;
    let page = read_model::Client::new(&url)
        .list_jobs(
            None,
            None,
            cursor.as_ref(),
            id_prefix.as_ref(),
            args.limit.and_then(NonZeroU64::new),
            status.as_ref(),
            job_type.as_ref(),
            None,
        )
        .await
        .map_err(|e| CliError::from_client(Service::ReadModel, &url, e))?
        .into_inner();
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &page)?;
        writeln!(out)?;
    } else {
        out.write_all(render_job_page(&page, args).as_bytes())?;
    }
    Ok(out.flush()?)
}

/// Shows one job with its attempts and timeline, or with `--json` the JobDetail.
pub async fn job(args: &JobArgs, out: &mut impl Write) -> Result<(), CliError> {
    let url = parse_base_url("--read-model", &args.read_model)?;
    let id = parse_job_id(&args.id)?;
    let detail = read_model::Client::new(&url)
        .get_job(&id, None)
        .await
        .map_err(|e| match e {
            read_model::Error::ErrorResponse(r) if r.status() == reqwest::StatusCode::NOT_FOUND => {
                CliError::JobNotFound {
                    id,
                    url: url.clone(),
                }
            }
            e => CliError::from_client(Service::ReadModel, &url, e),
        })?
        .into_inner();
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &detail)?;
        writeln!(out)?;
    } else {
        out.write_all(render_job_detail(&detail).as_bytes())?;
    }
    Ok(out.flush()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A local port nothing listens on.
    fn closed_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        listener.local_addr().expect("its address").port()
    }

    #[tokio::test]
    async fn an_unreachable_gateway_says_so() {
        let url = format!("http://127.0.0.1:{}", closed_port());
        let args = SubmitArgs {
            job_type: "sleep".into(),
            payload: r#"{"durationMs": 1}"#.into(),
            max_attempts: None,
            idempotency_key: None,
            no_payload_check: false,
            gateway: format!("{url}/"),
            json: false,
        };
        let mut out = Vec::new();
        let error = submit(&args, &mut out).await.expect_err("nothing listens");
        assert_eq!(
            error.to_string(),
            format!(
                "cannot reach the gateway at {url}: Connection refused (os error 111); \
                 is `observatory up` running?"
            )
        );
        assert!(out.is_empty());
    }

    #[tokio::test]
    async fn an_unreachable_read_model_says_so() {
        let url = format!("http://127.0.0.1:{}", closed_port());
        let command = Command::Job(JobArgs {
            id: "0b4bd3a4-94b4-4b4e-9a35-3a1d6f6c9d11".into(),
            read_model: url.clone(),
            json: true,
        });
        let error = run(command, &mut Vec::new())
            .await
            .expect_err("nothing listens");
        assert!(
            matches!(&error, CliError::Unreachable { service: Service::ReadModel, url: u, .. } if *u == url),
            "{error:?}"
        );
    }

    // Requests against the real gateway and read model (filters, idempotency key, not found,
    // the printed id) are exercised in services/observatory/tests/up.rs.

    #[tokio::test]
    async fn local_input_is_checked_before_any_request() {
        // Port 9 (discard) would fail differently: the argument errors come first.
        let args = JobsArgs {
            status: Some("DONE".into()),
            job_type: None,
            id_prefix: None,
            limit: None,
            cursor: None,
            read_model: "http://127.0.0.1:9".into(),
            json: false,
        };
        let error = jobs(&args, &mut Vec::new()).await.expect_err("bad status");
        assert!(matches!(error, CliError::InvalidStatus { .. }), "{error:?}");
        let args = JobArgs {
            id: "nope".into(),
            read_model: "http://127.0.0.1:9".into(),
            json: false,
        };
        let error = job(&args, &mut Vec::new()).await.expect_err("bad id");
        assert!(matches!(error, CliError::InvalidJobId { .. }), "{error:?}");
    }
}
