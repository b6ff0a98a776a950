//! [`ApiError`]: the one error body (`schemas/common/api-error.json`) for every 4xx and 5xx.
//! Handlers return it; the correlation layer fills in `correlationId` and renders it, so no
//! handler builds error JSON by hand.

use crate::contracts::api_error::{ApiError as ApiErrorBody, ApiErrorDetail};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    /// Stable kebab-case identifier, e.g. `validation-failed`.
    pub code: &'static str,
    pub message: String,
    /// (JSON pointer or parameter name, message) pairs.
    pub details: Vec<(String, String)>,
    /// Seconds for a `Retry-After` header (503s).
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
            retry_after: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", message)
    }

    /// 503 with `Retry-After`: a dependency is down; the client should retry.
    pub fn unavailable(
        code: &'static str,
        message: impl Into<String>,
        retry_after_seconds: u32,
    ) -> Self {
        Self {
            retry_after: Some(retry_after_seconds),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal-error", message)
    }

    pub fn with_details(mut self, details: Vec<(String, String)>) -> Self {
        self.details = details;
        self
    }

    /// The contract body, with the request's correlation id.
    pub fn body(&self, correlation_id: Option<&str>) -> ApiErrorBody {
        ApiErrorBody {
            code: self
                .code
                .parse()
                .unwrap_or_else(|_| "internal-error".parse().expect("valid code")),
            // The contract requires a non-empty message.
            message: self
                .message
                .parse()
                .unwrap_or_else(|_| self.code.parse().expect("codes are non-empty")),
            correlation_id: correlation_id.and_then(|c| c.parse().ok()),
            details: self
                .details
                .iter()
                .map(|(pointer, message)| ApiErrorDetail {
                    pointer: Some(pointer.clone()),
                    message: message.clone(),
                })
                .collect(),
        }
    }

    /// Renders the response; `correlation_id` is `None` only outside the correlation layer.
    pub fn render(&self, correlation_id: Option<&str>) -> Response {
        let body = serde_json::to_vec(&self.body(correlation_id)).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Carried in response extensions until the correlation layer renders it.
#[derive(Clone)]
pub(crate) struct PendingError(pub ApiError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.render(None);
        response.extensions_mut().insert(PendingError(self));
        response
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}
