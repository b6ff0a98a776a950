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
    SubmitArgs, build_submission, built_in_job_types, parse_base_url, parse_cursor, parse_job_id,
    parse_job_type, parse_payload, parse_status,
};
pub use error::{CliError, Service};
pub use render::{render_job_detail, render_job_page};

/// Runs one client command, writing its output to `out`.
pub async fn run(command: Command, out: &mut impl Write) -> Result<(), CliError> {
    match command {
        Command::Submit(args) => submit(&args, out).await,
        Command::Jobs(args) => jobs(&args, out).await,
        Command::Job(args) => job(&args, out).await,
    }
}

/// Submits a job through the gateway; prints its id, or with `--json` the gateway's answer.
pub async fn submit(args: &SubmitArgs, out: &mut impl Write) -> Result<(), CliError> {
    let url = parse_base_url("--gateway", &args.gateway)?;
    let (submission, key) = build_submission(args)?;
    let accepted = gateway::Client::new(&url)
        .submit_job(key.as_ref(), None, &submission)
        .await
        .map_err(|e| CliError::from_client(Service::Gateway, &url, e))?
        .into_inner();
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &accepted)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{}", accepted.job_id)?;
    }
    Ok(out.flush()?)
}

/// Lists one page of jobs from the read model: a table, or with `--json` the JobPage.
pub async fn jobs(args: &JobsArgs, out: &mut impl Write) -> Result<(), CliError> {
    let url = parse_base_url("--read-model", &args.read_model)?;
    let status = args.status.as_deref().map(parse_status).transpose()?;
    let job_type = args.job_type.as_deref().map(parse_job_type).transpose()?;
    let cursor = args.cursor.as_deref().map(parse_cursor).transpose()?;
    let page = read_model::Client::new(&url)
        .list_jobs(
            None,
            None,
            cursor.as_ref(),
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

    /// Serves one HTTP exchange with a canned answer on a thread; yields the request received.
    fn serve_once(status: &'static str, body: &'static str) -> (String, Server) {
        use std::io::Read;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let server = std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().expect("accept");
            let mut request = Vec::new();
            let mut buffer = [0u8; 4096];
            loop {
                let n = socket.read(&mut buffer).expect("read");
                request.extend_from_slice(&buffer[..n]);
                let text = String::from_utf8_lossy(&request).to_string();
                let complete = text.find("\r\n\r\n").is_some_and(|end| {
                    let length = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .and_then(|v| v.trim().parse::<usize>().ok())
                        })
                        .unwrap_or(0);
                    request.len() >= end + 4 + length
                });
                if n == 0 || complete {
                    break;
                }
            }
            let answer = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            socket.write_all(answer.as_bytes()).expect("write");
            String::from_utf8_lossy(&request).to_string()
        });
        (url, Server(server))
    }

    struct Server(std::thread::JoinHandle<String>);

    impl Server {
        fn request(self) -> String {
            self.0.join().expect("the fake server")
        }
    }

    #[tokio::test]
    async fn submit_sends_the_submission_and_prints_the_id() {
        let (url, server) = serve_once(
            "202 Accepted",
            r#"{"jobId": "0b4bd3a4-94b4-4b4e-9a35-3a1d6f6c9d11", "eventId": "5f0c2a7e-1d3b-4c8e-9f6a-2b7d8e9c0a14",
                "status": "PENDING", "acceptedAt": "2026-11-23T12:00:00Z", "correlationId": "req-1"}"#,
        );
        let args = SubmitArgs {
            job_type: "sleep".into(),
            payload: r#"{"durationMs": 1}"#.into(),
            max_attempts: Some(2),
            idempotency_key: Some("key-1".into()),
            no_payload_check: false,
            gateway: url,
            json: false,
        };
        let mut out = Vec::new();
        submit(&args, &mut out).await.expect("accepted");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "0b4bd3a4-94b4-4b4e-9a35-3a1d6f6c9d11\n"
        );
        let request = server.request().to_ascii_lowercase();
        assert!(request.starts_with("post /jobs http/1.1"), "{request}");
        assert!(request.contains("idempotency-key: key-1"), "{request}");
        assert!(
            request.ends_with(r#"{"maxattempts":2,"payload":{"durationms":1},"type":"sleep"}"#),
            "{request}"
        );
    }

    #[tokio::test]
    async fn api_errors_from_the_gateway_are_rendered() {
        let (url, server) = serve_once(
            "400 Bad Request",
            r#"{"code": "validation-failed", "message": "The submission is invalid.",
                "details": [{"pointer": "/type", "message": "bad"}]}"#,
        );
        let args = SubmitArgs {
            job_type: "x".into(),
            payload: "{}".into(),
            max_attempts: None,
            idempotency_key: None,
            no_payload_check: false,
            gateway: url.clone(),
            json: true,
        };
        let error = submit(&args, &mut Vec::new()).await.expect_err("rejected");
        server.request();
        assert_eq!(
            error.to_string(),
            format!(
                "the gateway at {url} answered 400 Bad Request (validation-failed): \
                 The submission is invalid.\n  - /type: bad"
            )
        );
    }

    #[tokio::test]
    async fn a_missing_job_is_not_found() {
        let (url, server) = serve_once(
            "404 Not Found",
            r#"{"code": "not-found", "message": "No such job."}"#,
        );
        let args = JobArgs {
            id: "0b4bd3a4-94b4-4b4e-9a35-3a1d6f6c9d11".into(),
            read_model: url.clone(),
            json: false,
        };
        let error = job(&args, &mut Vec::new()).await.expect_err("missing");
        let request = server.request();
        assert!(
            request.starts_with("GET /jobs/0b4bd3a4-94b4-4b4e-9a35-3a1d6f6c9d11 HTTP/1.1"),
            "{request}"
        );
        assert_eq!(
            error.to_string(),
            format!("job 0b4bd3a4-94b4-4b4e-9a35-3a1d6f6c9d11 not found (read model at {url})")
        );
    }

    #[tokio::test]
    async fn jobs_sends_the_filters_and_prints_the_page() {
        let (url, server) = serve_once("200 OK", r#"{"items": []}"#);
        let args = JobsArgs {
            status: Some("dead-lettered".into()),
            job_type: Some("fail".into()),
            limit: Some(5),
            cursor: Some("abc".into()),
            read_model: url,
            json: true,
        };
        let mut out = Vec::new();
        jobs(&args, &mut out).await.expect("a page");
        assert_eq!(String::from_utf8_lossy(&out), "{\n  \"items\": []\n}\n");
        let request = server.request();
        assert!(
            request.starts_with(
                "GET /jobs?cursor=abc&limit=5&status=DEAD_LETTERED&type=fail HTTP/1.1"
            ),
            "{request}"
        );
    }

    #[tokio::test]
    async fn a_body_outside_the_contract_is_an_unexpected_answer() {
        let (url, server) = serve_once("502 Bad Gateway", "<html>proxy error</html>");
        let args = JobArgs {
            id: "0b4bd3a4-94b4-4b4e-9a35-3a1d6f6c9d11".into(),
            read_model: url.clone(),
            json: false,
        };
        let error = job(&args, &mut Vec::new()).await.expect_err("not json");
        server.request();
        let message = error.to_string();
        assert!(
            message.starts_with(&format!("unexpected answer from the read model at {url}: "))
                && message.ends_with(": <html>proxy error</html>"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn local_input_is_checked_before_any_request() {
        // Port 9 (discard) would fail differently: the argument errors come first.
        let args = JobsArgs {
            status: Some("DONE".into()),
            job_type: None,
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
