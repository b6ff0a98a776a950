//! What every Observatory service runs on, so that each service crate holds only its own
//! behaviour:
//!
//! - [`http`]: the HTTP conventions of DESIGN.md §6 — one error body ([`http::ApiError`]) for
//!   every 4xx/5xx including malformed JSON, wrong content type, oversized bodies, unknown
//!   routes and wrong methods; `X-Correlation-Id` accepted, generated and echoed; request
//!   bodies validated against their schema ([`http::ContractJson`]); a router built from the
//!   contract's operation ids ([`http::ContractRouter`]), so a service serves exactly the
//!   operations of its OpenAPI document; `/healthz`, `/readyz`, `/metrics`, `/openapi.json`
//!   and an offline `/docs` page.
//! - [`metrics`]: a Prometheus registry whose every family carries a `service` label, and
//!   the HTTP request-duration histogram.
//! - [`shutdown`]: one cancellation token, cancelled on SIGTERM or Ctrl-C.
//! - [`telemetry`]: `tracing` set-up.
//! - [`backoff`]: the one exponential-backoff helper for reconnecting to dependencies.

pub mod backoff;
pub mod config;
pub mod contracts;
pub mod http;
pub mod metrics;
pub mod shutdown;
pub mod telemetry;
