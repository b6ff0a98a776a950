//! Every way a command can fail, as one message a person can act on.

use std::fmt;

use crate::contracts::api_error::ApiError;

/// The two services the commands talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Gateway,
    ReadModel,
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Gateway => "gateway",
            Self::ReadModel => "read model",
        })
    }
}

/// Why a command failed. Each message stands alone (no variant has an error `source`), so
/// `{:#}` through anyhow prints it once.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("--payload is not valid JSON: {message} at line {line}, column {column}")]
    InvalidPayloadJson {
        message: String,
        line: usize,
        column: usize,
    },
    #[error("--payload must be a JSON object, such as '{{\"durationMs\": 1500}}', not {found}")]
    PayloadNotObject { found: &'static str },
    #[error(
        "--payload does not match the payload schema of `{job_type}` jobs ({schema}):{}\n(--no-payload-check sends it anyway, and the gateway answers what it finds wrong)",
        bullets(violations)
    )]
    PayloadRejected {
        job_type: String,
        schema: &'static str,
        violations: Vec<String>,
    },
    #[error("invalid --status `{value}`: expected one of {}", valid.join(", "))]
    InvalidStatus { value: String, valid: Vec<String> },
    #[error("invalid job type `{value}`: {reason} (built-in types: {})", built_in.join(", "))]
    InvalidType {
        value: String,
        reason: String,
        built_in: Vec<String>,
    },
    #[error(
        "invalid job id `{value}`: expected a UUID, such as 0b4bd3a4-94b4-4b4e-9a35-3a1d6f6c9d11"
    )]
    InvalidJobId { value: String },
    #[error("invalid --idempotency-key: {reason}")]
    InvalidIdempotencyKey { reason: String },
    #[error("invalid --cursor: {reason}")]
    InvalidCursor { reason: String },
    #[error("invalid --id `{value}`: expected the first hex digits of a job id, such as 0b4bd3a4")]
    InvalidIdPrefix { value: String },
    #[error("invalid {flag} `{value}`: {reason}")]
    InvalidUrl {
        flag: &'static str,
        value: String,
        reason: String,
    },
    #[error("cannot reach the {service} at {url}: {reason}; is `observatory up` running?")]
    Unreachable {
        service: Service,
        url: String,
        reason: String,
    },
    /// An error status with the contract's ApiError body.
    #[error("the {service} at {url} answered {}", describe_api_error(*status, error))]
    Api {
        service: Service,
        url: String,
        status: u16,
        error: ApiError,
    },
    #[error("job {id} not found (read model at {url})")]
    JobNotFound { id: uuid::Uuid, url: String },
    #[error("request to the {service} at {url} failed: {detail}")]
    RequestFailed {
        service: Service,
        url: String,
        detail: String,
    },
    #[error("unexpected answer from the {service} at {url}: {detail}")]
    UnexpectedResponse {
        service: Service,
        url: String,
        detail: String,
    },
    #[error("cannot write the output: {0}")]
    Output(std::io::Error),
}

impl From<std::io::Error> for CliError {
    fn from(error: std::io::Error) -> Self {
        Self::Output(error)
    }
}

impl From<serde_json::Error> for CliError {
    /// Only serializing the output can fail this way (writing it, or a contract type).
    fn from(error: serde_json::Error) -> Self {
        Self::Output(error.into())
    }
}

/// The error type of every generated client operation.
pub(crate) type ClientError = observatory_client::read_model::Error<ApiError>;

impl CliError {
    /// Translates a generated client's error for a request to `service` at `url`.
    pub(crate) fn from_client(service: Service, url: &str, error: ClientError) -> Self {
        use observatory_client::read_model::Error;
        let url = url.to_owned();
        match error {
            Error::ErrorResponse(response) => Self::Api {
                service,
                url,
                status: response.status().as_u16(),
                error: response.into_inner(),
            },
            Error::CommunicationError(e) if e.is_connect() => Self::Unreachable {
                service,
                url,
                reason: root_cause(&e),
            },
            Error::CommunicationError(e) if e.is_timeout() => Self::RequestFailed {
                service,
                url,
                detail: "no answer within 15 s".to_owned(),
            },
            Error::CommunicationError(e)
            | Error::ResponseBodyError(e)
            | Error::InvalidUpgrade(e) => Self::RequestFailed {
                service,
                url,
                detail: chain(&e),
            },
            Error::InvalidRequest(detail) | Error::Custom(detail) => Self::RequestFailed {
                service,
                url,
                detail,
            },
            Error::InvalidResponsePayload(body, e) => Self::UnexpectedResponse {
                service,
                url,
                detail: format!(
                    "the body does not match the contract ({e}): {}",
                    snippet(&String::from_utf8_lossy(&body))
                ),
            },
            Error::UnexpectedResponse(response) => Self::UnexpectedResponse {
                service,
                url,
                detail: format!("HTTP status {}", response.status()),
            },
        }
    }
}

/// "400 Bad Request (validation-failed): message", then one line per detail and the
/// correlation id.
fn describe_api_error(status: u16, error: &ApiError) -> String {
    let status = match reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
    {
        Some(reason) => format!("{status} {reason}"),
        None => status.to_string(),
    };
    let mut text = format!(
        "{status} ({}): {}",
        error.code.as_str(),
        error.message.as_str()
    );
    for detail in &error.details {
        match detail.pointer.as_deref() {
            Some("") => text.push_str(&format!("\n  - (request body): {}", detail.message)),
            Some(pointer) => text.push_str(&format!("\n  - {pointer}: {}", detail.message)),
            None => text.push_str(&format!("\n  - {}", detail.message)),
        }
    }
    if let Some(id) = &error.correlation_id {
        text.push_str(&format!("\n  correlation id: {}", id.as_str()));
    }
    text
}

fn bullets(lines: &[String]) -> String {
    lines.iter().map(|l| format!("\n  - {l}")).collect()
}

/// The innermost cause, e.g. "Connection refused (os error 111)".
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// Every message of the chain, joined.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut current = error;
    while let Some(next) = current.source() {
        parts.push(next.to_string());
        current = next;
    }
    parts.join(": ")
}

/// The start of a response body, on one line.
fn snippet(body: &str) -> String {
    const MAX: usize = 200;
    let one_line: String = body
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let trimmed = one_line.trim();
    if trimmed.is_empty() {
        return "(empty body)".to_owned();
    }
    match trimmed.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &trimmed[..end]),
        None => trimmed.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn api_error(value: serde_json::Value) -> ApiError {
        serde_json::from_value(value).expect("a valid ApiError")
    }

    #[test]
    fn api_errors_show_status_code_message_details_and_correlation_id() {
        let error = CliError::Api {
            service: Service::Gateway,
            url: "http://127.0.0.1:3000".into(),
            status: 400,
            error: api_error(json!({
                "code": "validation-failed",
                "message": "The job submission does not match its schema.",
                "correlationId": "req-1",
                "details": [
                    {"pointer": "/maxAttempts", "message": "101 is greater than the maximum of 100"},
                    {"pointer": "", "message": "\"type\" is a required property"},
                    {"message": "no pointer"}
                ]
            })),
        };
        assert_eq!(
            error.to_string(),
            "the gateway at http://127.0.0.1:3000 answered 400 Bad Request (validation-failed): \
             The job submission does not match its schema.\n  \
             - /maxAttempts: 101 is greater than the maximum of 100\n  \
             - (request body): \"type\" is a required property\n  \
             - no pointer\n  \
             correlation id: req-1"
        );
    }

    #[test]
    fn minimal_api_errors_and_unknown_statuses_render() {
        let error = CliError::Api {
            service: Service::ReadModel,
            url: "http://h".into(),
            status: 599,
            error: api_error(json!({"code": "internal", "message": "Boom."})),
        };
        assert_eq!(
            error.to_string(),
            "the read model at http://h answered 599 (internal): Boom."
        );
    }

    #[test]
    fn snippets_are_one_bounded_line() {
        assert_eq!(snippet("  <html>\n<body>  "), "<html> <body>");
        assert_eq!(snippet(""), "(empty body)");
        let long = "é".repeat(300);
        assert_eq!(snippet(&long).chars().count(), 201);
    }
}
