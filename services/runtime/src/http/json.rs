//! [`ContractJson`]: a request body, checked in the order a client can act on: content type
//! (415), size (413), well-formed JSON (400 `malformed-json`), then the schema of the target
//! type (400 `validation-failed`, with the JSON pointer and message of every violation), and
//! only then deserialized into the generated type.

use super::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use observatory_contracts::Contract;
use observatory_validation::ContractValidator;
use serde::de::DeserializeOwned;

pub struct ContractJson<T>(pub T);

impl<S, T> FromRequest<S> for ContractJson<T>
where
    S: Send + Sync,
    T: Contract + DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !is_json(content_type) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                format!(
                    "the body must be application/json, not {:?}",
                    if content_type.is_empty() {
                        "(none)"
                    } else {
                        content_type
                    }
                ),
            ));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload-too-large",
                        "the request body is larger than this service accepts",
                    )
                } else {
                    ApiError::bad_request("unreadable-body", rejection.body_text())
                }
            })?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::bad_request("malformed-json", format!("the body is not valid JSON: {e}"))
        })?;
        let validator =
            ContractValidator::for_type::<T>().map_err(|e| ApiError::internal(e.to_string()))?;
        if let Err(violations) = validator.validate(&value) {
            let details = violations
                .into_iter()
                .map(|v| (v.pointer, v.message))
                .collect();
            return Err(ApiError::bad_request(
                "validation-failed",
                format!("the body does not match {}", T::SCHEMA.path),
            )
            .with_details(details));
        }
        serde_json::from_value(value)
            .map(ContractJson)
            .map_err(|e| ApiError::bad_request("validation-failed", e.to_string()))
    }
}

/// `application/json`, any `+json` type, with or without parameters.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_content_types() {
        assert!(super::is_json("application/json"));
        assert!(super::is_json("application/json; charset=utf-8"));
        assert!(super::is_json("application/problem+json"));
        assert!(!super::is_json("text/plain"));
        assert!(!super::is_json(""));
    }
}
