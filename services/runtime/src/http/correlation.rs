//! `X-Correlation-Id`: accepted when valid, generated when absent, echoed on every response,
//! put in the request's tracing span, and written into error bodies. An invalid one is a 400
//! (answered with a fresh id, so the error itself can be correlated).

use super::error::{ApiError, PendingError};
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// The request's correlation id (an extractor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrelationId(pub String);

impl CorrelationId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    /// Valid per `CorrelationId` in `schemas/events/event-envelope.json`.
    pub fn parse(value: &str) -> Option<Self> {
        crate::contracts::event_envelope::CorrelationId::try_from(value)
            .ok()
            .map(|_| Self(value.to_string()))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CorrelationId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<CorrelationId>()
            .cloned()
            .ok_or_else(|| ApiError::internal("the correlation layer is not installed"))
    }
}

/// The middleware (installed by `ContractRouter::finish`).
pub(crate) async fn layer(mut request: Request, next: Next) -> Response {
    let supplied = request
        .headers()
        .get(CORRELATION_HEADER)
        .map(|v| v.to_str().ok().and_then(CorrelationId::parse));
    let (id, rejected) = match supplied {
        None => (CorrelationId::generate(), false),
        Some(Some(id)) => (id, false),
        Some(None) => (CorrelationId::generate(), true),
    };
    let span = tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), correlation_id = %id.0);
    let mut response = if rejected {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-correlation-id",
            "X-Correlation-Id must be 1 to 128 characters of A-Z a-z 0-9 . _ : -",
        )
        .render(Some(&id.0))
    } else {
        request.extensions_mut().insert(id.clone());
        let response = next.run(request).instrument(span.clone()).await;
        match response.extensions().get::<PendingError>() {
            Some(PendingError(error)) => {
                if error.status.is_server_error() {
                    span.in_scope(|| tracing::error!(status = error.status.as_u16(), code = error.code, message = %error.message, "request failed"));
                }
                error.render(Some(&id.0))
            }
            None => response,
        }
    };
    if let Ok(value) = HeaderValue::from_str(&id.0) {
        response.headers_mut().insert(CORRELATION_HEADER, value);
    }
    response
}
