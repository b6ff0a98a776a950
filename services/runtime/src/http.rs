//! The HTTP conventions every service follows (DESIGN.md §6). A service builds its router
//! with [`ContractRouter`], returns [`ApiError`] from handlers, reads bodies with
//! [`ContractJson`], and wraps everything with [`ContractRouter::finish`], which adds the
//! correlation-id layer, the JSON fallbacks for unknown routes and methods, and metrics.

mod correlation;
mod cors;
mod docs;
mod error;
mod json;
mod router;
mod serve;

pub use correlation::{CORRELATION_HEADER, CorrelationId};
pub use cors::{CorsOrigins, InvalidOrigin};
pub use error::ApiError;
pub use json::ContractJson;
pub use router::{ContractRouter, Readiness, ReadinessCheck, RouterError, probe};
pub use serve::{
    BODY_READ_TIMEOUT, HEADER_READ_TIMEOUT, SlowClientLimits, serve, serve_with_limits,
};
