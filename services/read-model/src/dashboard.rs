//! Serves the web dashboard ([`observatory_web`]): the page at `/`, its files under `/ui/`.
//! Every answer carries a Content-Security-Policy that allows scripts, styles and connections
//! only to this origin, plus the gateway's origin for connections (submissions), so that even
//! a rendering mistake cannot load or send anything elsewhere. The files are built into the
//! binary; an `ETag` lets a browser keep them until the binary changes.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use observatory_runtime::http::ApiError;

use crate::ReadModelError;
use crate::state::ReadModelState;

/// The page and the headers every dashboard answer carries, prepared once.
#[derive(Debug, Clone)]
pub(crate) struct Dashboard {
    page: String,
    policy: HeaderValue,
    etag: HeaderValue,
}

impl Dashboard {
    /// `gateway_url`: where the dashboard submits jobs (`None`: read-only).
    pub(crate) fn new(gateway_url: Option<&str>) -> Result<Self, ReadModelError> {
        let gateway_origin = gateway_url
            .map(|url| {
                let parsed = reqwest::Url::parse(url)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
                    .ok_or_else(|| {
                        ReadModelError::Config(format!(
                            "--gateway-url {url:?} must be an http:// or https:// URL"
                        ))
                    })?;
                Ok::<_, ReadModelError>(parsed.origin().ascii_serialization())
            })
            .transpose()?;
        let connect = match &gateway_origin {
            Some(origin) => format!("'self' {origin}"),
            None => "'self'".to_owned(),
        };
        let policy = format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src {connect}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        );
        let policy = HeaderValue::from_str(&policy).map_err(|_| {
            ReadModelError::Config(format!(
                "--gateway-url {gateway_url:?} is not usable in a header"
            ))
        })?;
        let etag = HeaderValue::from_str(&format!("\"{:016x}\"", observatory_web::version()))
            .map_err(|e| ReadModelError::Config(e.to_string()))?;
        // The page names the gateway by the URL it was given, trimmed of a trailing slash.
        let page = observatory_web::index_html(gateway_url.map(|u| u.trim_end_matches('/')));
        Ok(Self { page, policy, etag })
    }

    /// The answer for `body` of `content_type`, or 304 when the browser has this version.
    fn respond(&self, request: &HeaderMap, content_type: &'static str, body: Response) -> Response {
        let fresh = request
            .get(header::IF_NONE_MATCH)
            .is_some_and(|tag| tag.as_bytes() == self.etag.as_bytes());
        let mut response = if fresh {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            body
        };
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert(header::ETAG, self.etag.clone());
        headers.insert(header::CONTENT_SECURITY_POLICY, self.policy.clone());
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        response
    }
}

pub(crate) async fn page(State(state): State<ReadModelState>, request: HeaderMap) -> Response {
    let dashboard = state.dashboard();
    dashboard.respond(
        &request,
        "text/html; charset=utf-8",
        dashboard.page.clone().into_response(),
    )
}

pub(crate) async fn asset(
    State(state): State<ReadModelState>,
    request: HeaderMap,
    name: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(name) = name.map_err(|e| ApiError::not_found(e.body_text()))?;
    let asset = observatory_web::asset(&name)
        .ok_or_else(|| ApiError::not_found(format!("the dashboard has no file {name:?}")))?;
    Ok(state
        .dashboard()
        .respond(&request, asset.content_type, asset.body.into_response()))
}
