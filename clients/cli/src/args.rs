//! The commands' arguments (clap), and their validation against the contracts before any
//! request is sent.

use std::num::NonZeroU64;

use observatory_contracts::SchemaInfo;
use observatory_validation::ContractValidator;
use serde_json::{Map, Value};

use crate::contracts::event_envelope::IdempotencyKey;
use crate::contracts::job::{JobStatus, JobType};
use crate::contracts::job_submission::JobSubmission;
use crate::contracts::page_cursor::PageCursor;
use crate::error::CliError;
use observatory_client::read_model::types::ListJobsIdPrefix;

/// The gateway's address when neither `--gateway` nor `OBSERVATORY_GATEWAY_URL` is given.
pub const DEFAULT_GATEWAY_URL: &str = "http://127.0.0.1:3000";
/// The read model's address when neither `--read-model` nor `OBSERVATORY_READ_MODEL_URL` is given.
pub const DEFAULT_READ_MODEL_URL: &str = "http://127.0.0.1:8080";

/// Every job status of the contract (`schemas/domain/job.json`), in its order.
pub const JOB_STATUSES: [JobStatus; 6] = {
    // Stops compiling when the contract gains a status, so that this list stays complete.
    const fn _every_status_is_listed(status: JobStatus) {
        match status {
            JobStatus::Pending
            | JobStatus::Running
            | JobStatus::Retrying
            | JobStatus::Completed
            | JobStatus::Failed
            | JobStatus::DeadLettered => {}
        }
    }
    [
        JobStatus::Pending,
        JobStatus::Running,
        JobStatus::Retrying,
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::DeadLettered,
    ]
};

/// The client commands of the `observatory` binary.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Submit a job through the gateway and print its id.
    Submit(SubmitArgs),
    /// List jobs from the read model, newest first, one page at a time.
    Jobs(JobsArgs),
    /// Show one job with its attempts and event timeline.
    Job(JobArgs),
}

/// `observatory submit`.
#[derive(Debug, Clone, clap::Args)]
pub struct SubmitArgs {
    /// Job type: a built-in one (sleep, compute, fail) or any other lowercase name (which the
    /// processor fails as unknown).
    #[arg(long = "type", value_name = "TYPE")]
    pub job_type: String,
    /// The job's input, a JSON object; for a built-in type it is checked against the type's
    /// schema (schemas/job-types/) before it is sent.
    #[arg(long, value_name = "JSON", default_value = "{}")]
    pub payload: String,
    /// Attempts before the job is dead-lettered (the gateway's default: 3).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=100))]
    pub max_attempts: Option<u64>,
    /// Makes resubmitting safe: the same key always maps to the same job.
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    /// Send the payload without checking it here first (the gateway checks it and answers 400).
    #[arg(long)]
    pub no_payload_check: bool,
    /// The gateway's base URL.
    #[arg(long, value_name = "URL", env = "OBSERVATORY_GATEWAY_URL", default_value = DEFAULT_GATEWAY_URL)]
    pub gateway: String,
    /// Print the gateway's answer (JobAcceptance) as JSON instead of the job id.
    #[arg(long)]
    pub json: bool,
}

/// `observatory jobs`.
#[derive(Debug, Clone, clap::Args)]
pub struct JobsArgs {
    /// Only jobs in this status: PENDING, RUNNING, RETRYING, COMPLETED, FAILED or DEAD_LETTERED
    /// (case-insensitive; dead-lettered also works).
    #[arg(long, value_name = "STATUS")]
    pub status: Option<String>,
    /// Only jobs of this type.
    #[arg(long = "type", value_name = "TYPE")]
    pub job_type: Option<String>,
    /// Only jobs whose id starts with these hex digits (a short id, as the tables show it).
    #[arg(long = "id", value_name = "PREFIX")]
    pub id_prefix: Option<String>,
    /// Jobs per page (the read model's default: 50).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=500))]
    pub limit: Option<u64>,
    /// Continue after a previous page (the cursor it printed).
    #[arg(long, value_name = "CURSOR")]
    pub cursor: Option<String>,
    /// The read model's base URL.
    #[arg(long, value_name = "URL", env = "OBSERVATORY_READ_MODEL_URL", default_value = DEFAULT_READ_MODEL_URL)]
    pub read_model: String,
    /// Print the page (JobPage) as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `observatory job`.
#[derive(Debug, Clone, clap::Args)]
pub struct JobArgs {
    /// The job's id (a UUID).
    #[arg(value_name = "ID")]
    pub id: String,
    /// The read model's base URL.
    #[arg(long, value_name = "URL", env = "OBSERVATORY_READ_MODEL_URL", default_value = DEFAULT_READ_MODEL_URL)]
    pub read_model: String,
    /// Print the detail (JobDetail) as JSON instead of the human layout.
    #[arg(long)]
    pub json: bool,
}

/// The request body and Idempotency-Key header `submit` sends, or why they are invalid.
pub fn build_submission(
    args: &SubmitArgs,
) -> Result<(JobSubmission, Option<IdempotencyKey>), CliError> {
    let type_ = parse_job_type(&args.job_type)?;
    let payload = parse_payload(&args.payload)?;
    if !args.no_payload_check {
        check_payload(&type_, &payload)?;
    }
    let key = args
        .idempotency_key
        .as_deref()
        .map(|k| {
            k.parse::<IdempotencyKey>()
                .map_err(|e| CliError::InvalidIdempotencyKey {
                    reason: e.to_string(),
                })
        })
        .transpose()?;
    let submission = JobSubmission {
        job_id: None,
        max_attempts: args.max_attempts.and_then(NonZeroU64::new),
        payload,
        type_,
    };
    Ok((submission, key))
}

/// `--payload`: JSON, and an object.
pub fn parse_payload(text: &str) -> Result<Map<String, Value>, CliError> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        let full = e.to_string();
        let position = format!(" at line {} column {}", e.line(), e.column());
        CliError::InvalidPayloadJson {
            message: full.strip_suffix(&position).unwrap_or(&full).to_owned(),
            line: e.line(),
            column: e.column(),
        }
    })?;
    match value {
        Value::Object(map) => Ok(map),
        Value::Null => Err(CliError::PayloadNotObject { found: "null" }),
        Value::Bool(_) => Err(CliError::PayloadNotObject { found: "a boolean" }),
        Value::Number(_) => Err(CliError::PayloadNotObject { found: "a number" }),
        Value::String(_) => Err(CliError::PayloadNotObject { found: "a string" }),
        Value::Array(_) => Err(CliError::PayloadNotObject { found: "an array" }),
    }
}

/// A job type, as the contract's JobType accepts it.
pub fn parse_job_type(text: &str) -> Result<JobType, CliError> {
    text.parse().map_err(
        |e: crate::contracts::job::error::ConversionError| CliError::InvalidType {
            value: text.to_owned(),
            reason: e.to_string(),
            built_in: built_in_job_types()
                .map(|(name, _)| name.to_owned())
                .collect(),
        },
    )
}

/// A job status, case-insensitively and with `-` for `_`.
pub fn parse_status(text: &str) -> Result<JobStatus, CliError> {
    text.trim()
        .to_ascii_uppercase()
        .replace('-', "_")
        .parse()
        .map_err(|_| CliError::InvalidStatus {
            value: text.to_owned(),
            valid: JOB_STATUSES.iter().map(ToString::to_string).collect(),
        })
}

pub fn parse_job_id(text: &str) -> Result<uuid::Uuid, CliError> {
    uuid::Uuid::try_parse(text.trim()).map_err(|_| CliError::InvalidJobId {
        value: text.to_owned(),
    })
}

pub fn parse_cursor(text: &str) -> Result<PageCursor, CliError> {
    text.parse()
        .map_err(|e: crate::contracts::page_cursor::error::ConversionError| {
            CliError::InvalidCursor {
                reason: e.to_string(),
            }
        })
}

/// `--id`: the leading hex digits of a job id, as the read model's `idPrefix` takes them.
pub fn parse_id_prefix(text: &str) -> Result<ListJobsIdPrefix, CliError> {
    let invalid = || CliError::InvalidIdPrefix {
        value: text.to_owned(),
    };
    let hex_digits = text.chars().filter(|c| *c != '-').count();
    if hex_digits == 0 || hex_digits > 32 {
        return Err(invalid());
    }
    text.trim().parse().map_err(|_| invalid())
}

/// An http(s) base URL, without the trailing slash the generated clients would double.
pub fn parse_base_url(flag: &'static str, text: &str) -> Result<String, CliError> {
    let invalid = |reason: String| CliError::InvalidUrl {
        flag,
        value: text.to_owned(),
        reason,
    };
    let url = reqwest::Url::parse(text.trim()).map_err(|e| invalid(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
        return Err(invalid(
            "expected an http:// or https:// URL, such as http://127.0.0.1:3000".to_owned(),
        ));
    }
    Ok(text.trim().trim_end_matches('/').to_owned())
}

/// The built-in job types and their payload schemas: every `schemas/job-types/{type}-job.json`.
pub fn built_in_job_types() -> impl Iterator<Item = (&'static str, SchemaInfo)> {
    observatory_contracts::SCHEMAS.iter().filter_map(|info| {
        let name = info
            .path
            .strip_prefix("schemas/job-types/")?
            .strip_suffix("-job.json")?;
        Some((name, *info))
    })
}

/// Checks the payload of a built-in type against its schema, as the processor will.
fn check_payload(type_: &JobType, payload: &Map<String, Value>) -> Result<(), CliError> {
    let Some((_, info)) = built_in_job_types().find(|(name, _)| *name == type_.as_str()) else {
        return Ok(()); // Not a built-in type: nothing to check against.
    };
    // Every embedded schema compiles (observatory-validation's tests); should one not, the
    // processor still validates the payload.
    let Ok(validator) = ContractValidator::cached(info) else {
        return Ok(());
    };
    validator
        .validate(&Value::Object(payload.clone()))
        .map_err(|violations| CliError::PayloadRejected {
            job_type: type_.to_string(),
            schema: info.path,
            violations: violations.iter().map(ToString::to_string).collect(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        Cli::try_parse_from(std::iter::once("observatory").chain(args.iter().copied()))
            .map(|cli| cli.command)
    }

    fn submit_args(extra: &[&str]) -> SubmitArgs {
        let mut args = vec!["submit"];
        args.extend_from_slice(extra);
        match parse(&args) {
            Ok(Command::Submit(a)) => a,
            other => panic!("expected submit, got {other:?}"),
        }
    }

    #[test]
    fn submit_parses_every_flag() {
        let a = submit_args(&[
            "--type",
            "sleep",
            "--payload",
            r#"{"durationMs": 5}"#,
            "--max-attempts",
            "7",
            "--idempotency-key",
            "order-42",
            "--gateway",
            "http://gw:1",
            "--json",
        ]);
        assert_eq!(a.job_type, "sleep");
        assert_eq!(a.payload, r#"{"durationMs": 5}"#);
        assert_eq!(a.max_attempts, Some(7));
        assert_eq!(a.idempotency_key.as_deref(), Some("order-42"));
        assert_eq!(a.gateway, "http://gw:1");
        assert!(a.json && !a.no_payload_check);
    }

    #[test]
    fn submit_defaults() {
        let a = submit_args(&["--type", "fail"]);
        assert_eq!(a.payload, "{}");
        assert_eq!(a.max_attempts, None);
        assert_eq!(a.idempotency_key, None);
        assert!(!a.json);
        if std::env::var_os("OBSERVATORY_GATEWAY_URL").is_none() {
            assert_eq!(a.gateway, DEFAULT_GATEWAY_URL);
        }
    }

    #[test]
    fn submit_needs_a_type_and_bounds_max_attempts() {
        let missing = parse(&["submit"]).expect_err("--type is required");
        assert_eq!(
            missing.kind(),
            clap::error::ErrorKind::MissingRequiredArgument
        );
        for bad in ["0", "101", "three"] {
            assert!(
                parse(&["submit", "--type", "sleep", "--max-attempts", bad]).is_err(),
                "--max-attempts {bad}"
            );
        }
    }

    #[test]
    fn jobs_parses_filters_and_bounds_limit() {
        match parse(&[
            "jobs",
            "--status",
            "completed",
            "--type",
            "compute",
            "--limit",
            "20",
            "--cursor",
            "abc",
            "--read-model",
            "http://rm:2",
            "--json",
        ]) {
            Ok(Command::Jobs(a)) => {
                assert_eq!(a.status.as_deref(), Some("completed"));
                assert_eq!(a.job_type.as_deref(), Some("compute"));
                assert_eq!(a.limit, Some(20));
                assert_eq!(a.cursor.as_deref(), Some("abc"));
                assert_eq!(a.read_model, "http://rm:2");
                assert!(a.json);
            }
            other => panic!("expected jobs, got {other:?}"),
        }
        match parse(&["jobs"]) {
            Ok(Command::Jobs(a)) => {
                assert_eq!(
                    (a.status, a.job_type, a.limit, a.cursor),
                    (None, None, None, None)
                );
                if std::env::var_os("OBSERVATORY_READ_MODEL_URL").is_none() {
                    assert_eq!(a.read_model, DEFAULT_READ_MODEL_URL);
                }
            }
            other => panic!("expected jobs, got {other:?}"),
        }
        assert!(parse(&["jobs", "--limit", "0"]).is_err());
        assert!(parse(&["jobs", "--limit", "501"]).is_err());
    }

    #[test]
    fn job_takes_one_positional_id() {
        match parse(&["job", "0b4bd3a4-94b4-4b4e-9a35-3a1d6f6c9d11", "--json"]) {
            Ok(Command::Job(a)) => {
                assert_eq!(a.id, "0b4bd3a4-94b4-4b4e-9a35-3a1d6f6c9d11");
                assert!(a.json);
            }
            other => panic!("expected job, got {other:?}"),
        }
        assert!(parse(&["job"]).is_err());
    }

    #[test]
    fn invalid_payload_json_reports_serdes_position() {
        let error = parse_payload("{\"durationMs\": 15,\n}").expect_err("trailing comma");
        assert_eq!(
            error.to_string(),
            "--payload is not valid JSON: trailing comma at line 2, column 1"
        );
        let error = parse_payload("").expect_err("empty");
        assert_eq!(
            error.to_string(),
            "--payload is not valid JSON: EOF while parsing a value at line 1, column 0"
        );
    }

    #[test]
    fn payload_must_be_an_object() {
        for (text, found) in [
            ("[1]", "an array"),
            ("\"x\"", "a string"),
            ("3", "a number"),
            ("true", "a boolean"),
            ("null", "null"),
        ] {
            let error = parse_payload(text).expect_err(text);
            assert_eq!(
                error.to_string(),
                format!(
                    "--payload must be a JSON object, such as '{{\"durationMs\": 1500}}', not {found}"
                )
            );
        }
        assert_eq!(parse_payload(" {} ").map(|m| m.len()).ok(), Some(0));
    }

    #[test]
    fn built_in_payloads_are_checked_against_their_schema() {
        let error =
            build_submission(&submit_args(&["--type", "sleep"])).expect_err("no durationMs");
        assert_eq!(
            error.to_string(),
            "--payload does not match the payload schema of `sleep` jobs (schemas/job-types/sleep-job.json):\n  \
             - /: \"durationMs\" is a required property\n\
             (--no-payload-check sends it anyway, and the gateway answers what it finds wrong)"
        );
        let error = build_submission(&submit_args(&[
            "--type",
            "sleep",
            "--payload",
            r#"{"durationMs": 60001}"#,
        ]))
        .expect_err("too long");
        assert!(error.to_string().contains("- /durationMs: "), "{error}");

        // Skipped on request, and never for types the contracts do not describe.
        assert!(build_submission(&submit_args(&["--type", "sleep", "--no-payload-check"])).is_ok());
        assert!(
            build_submission(&submit_args(&[
                "--type",
                "resize-image",
                "--payload",
                "{\"w\":1}"
            ]))
            .is_ok()
        );
    }

    #[test]
    fn a_valid_submission_carries_every_field() {
        let (submission, key) = build_submission(&submit_args(&[
            "--type",
            "compute",
            "--payload",
            r#"{"iterations": 10, "seed": 1}"#,
            "--max-attempts",
            "5",
            "--idempotency-key",
            "k-1",
        ]))
        .expect("valid");
        assert_eq!(
            serde_json::to_value(&submission).ok(),
            Some(serde_json::json!({
                "type": "compute",
                "payload": {"iterations": 10, "seed": 1},
                "maxAttempts": 5
            }))
        );
        assert_eq!(key.as_deref().map(String::as_str), Some("k-1"));
    }

    #[test]
    fn invalid_type_status_id_key_and_url_name_what_is_valid() {
        assert_eq!(
            parse_job_type("Sleep")
                .map(|_| ())
                .expect_err("uppercase")
                .to_string(),
            "invalid job type `Sleep`: doesn't match pattern \"^[a-z][a-z0-9-]{0,63}$\" \
             (built-in types: compute, fail, sleep)"
        );
        assert_eq!(
            parse_status("DONE")
                .map(|_| ())
                .expect_err("not a status")
                .to_string(),
            "invalid --status `DONE`: expected one of \
             PENDING, RUNNING, RETRYING, COMPLETED, FAILED, DEAD_LETTERED"
        );
        assert_eq!(
            parse_status("dead-lettered").ok(),
            Some(JobStatus::DeadLettered)
        );
        assert_eq!(parse_status(" Running ").ok(), Some(JobStatus::Running));
        assert_eq!(
            parse_job_id("42")
                .map(|_| ())
                .expect_err("not a uuid")
                .to_string(),
            "invalid job id `42`: expected a UUID, such as 0b4bd3a4-94b4-4b4e-9a35-3a1d6f6c9d11"
        );
        let long_key = "k".repeat(257);
        let error = build_submission(&submit_args(&[
            "--type",
            "fail",
            "--idempotency-key",
            &long_key,
        ]))
        .map(|_| ())
        .expect_err("too long");
        assert_eq!(
            error.to_string(),
            "invalid --idempotency-key: longer than 256 characters"
        );
        assert_eq!(
            parse_cursor("").map(|_| ()).expect_err("empty").to_string(),
            "invalid --cursor: shorter than 1 characters"
        );
        assert_eq!(
            parse_base_url("--gateway", "localhost:3000")
                .expect_err("no scheme")
                .to_string(),
            "invalid --gateway `localhost:3000`: expected an http:// or https:// URL, \
             such as http://127.0.0.1:3000"
        );
        assert_eq!(
            parse_base_url("--gateway", "http://gw:3000/")
                .ok()
                .as_deref(),
            Some("http://gw:3000")
        );
    }

    /// How `observatory` wires the commands in beside its roles.
    #[test]
    fn commands_flatten_into_another_subcommand_enum() {
        #[derive(Debug, clap::Subcommand)]
        enum Role {
            Gateway,
            #[command(flatten)]
            Client(Command),
        }
        #[derive(Debug, Parser)]
        struct Binary {
            #[command(subcommand)]
            role: Role,
        }
        let parsed = Binary::try_parse_from(["observatory", "job", "x"]).map(|b| b.role);
        assert!(
            matches!(&parsed, Ok(Role::Client(Command::Job(a))) if a.id == "x"),
            "{parsed:?}"
        );
        let parsed = Binary::try_parse_from(["observatory", "gateway"]).map(|b| b.role);
        assert!(matches!(parsed, Ok(Role::Gateway)), "{parsed:?}");
    }

    #[test]
    fn job_statuses_match_the_contract() {
        for status in JOB_STATUSES {
            assert_eq!(parse_status(&status.to_string()).ok(), Some(status));
        }
    }
}
