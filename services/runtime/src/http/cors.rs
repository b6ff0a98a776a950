//! Cross-origin access for browsers (the web dashboard, served by the read model, submits to
//! the gateway): an allowlist of origins from configuration, turned into a CORS layer.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::CORRELATION_HEADER;

/// A configured origin is neither `*` nor an `http(s)://host[:port]` origin.
#[derive(Debug, thiserror::Error)]
#[error("CORS origin {origin:?} {reason}")]
pub struct InvalidOrigin {
    pub origin: String,
    pub reason: &'static str,
}

/// Which origins may call a service from a browser, and with which methods.
#[derive(Debug, Clone)]
pub struct CorsOrigins {
    origins: AllowOrigin,
}

impl CorsOrigins {
    /// Parses a list of origins (`*` for any); `None` when the list is empty, which means
    /// same-origin only (no CORS headers at all). Trailing slashes are ignored.
    pub fn parse(origins: &[String]) -> Result<Option<Self>, InvalidOrigin> {
        let origins: Vec<&str> = origins
            .iter()
            .map(|o| o.trim())
            .filter(|o| !o.is_empty())
            .collect();
        if origins.is_empty() {
            return Ok(None);
        }
        if origins.contains(&"*") {
            return Ok(Some(Self {
                origins: AllowOrigin::any(),
            }));
        }
        let values = origins
            .iter()
            .map(|origin| {
                let origin = origin.trim_end_matches('/');
                let invalid = |reason| InvalidOrigin {
                    origin: origin.to_owned(),
                    reason,
                };
                let Some(rest) = origin
                    .strip_prefix("http://")
                    .or_else(|| origin.strip_prefix("https://"))
                else {
                    return Err(invalid("must be * or start with http:// or https://"));
                };
                if rest.is_empty() || rest.contains('/') {
                    return Err(invalid("must be scheme://host[:port], without a path"));
                }
                HeaderValue::from_str(origin).map_err(|_| invalid("is not a valid header value"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Self {
            origins: AllowOrigin::list(values),
        }))
    }

    /// The layer: these origins, these methods, the request headers the contracts define
    /// (plus `extra_headers`), and the response headers a client reads.
    pub fn layer(&self, methods: &[Method], extra_headers: &[HeaderName]) -> CorsLayer {
        let mut headers = vec![
            header::CONTENT_TYPE,
            HeaderName::from_static(CORRELATION_HEADER),
        ];
        headers.extend_from_slice(extra_headers);
        CorsLayer::new()
            .allow_origin(self.origins.clone())
            .allow_methods(methods.to_vec())
            .allow_headers(headers)
            .expose_headers([
                HeaderName::from_static(CORRELATION_HEADER),
                header::RETRY_AFTER,
            ])
            .max_age(Duration::from_secs(600))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(origins: &[&str]) -> Result<Option<CorsOrigins>, InvalidOrigin> {
        CorsOrigins::parse(&origins.iter().map(|o| o.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn origins_are_checked() {
        assert!(parse(&[]).expect("empty").is_none());
        assert!(parse(&[" ", ""]).expect("blank").is_none());
        assert!(parse(&["*"]).expect("any").is_some());
        assert!(
            parse(&["http://127.0.0.1:8080/", "https://example.org"])
                .expect("two")
                .is_some()
        );
        for bad in ["127.0.0.1:8080", "http://", "http://a/b", "ftp://a"] {
            let error = parse(&[bad]).expect_err(bad);
            assert!(error.to_string().starts_with("CORS origin"), "{error}");
        }
    }
}
