//! [`ContractRouter`]: routes are registered by the contract's `operationId`, and their method
//! and path are read from the bundled OpenAPI document. A service therefore cannot serve a
//! route the contract lacks, and [`ContractRouter::finish`] refuses to build a router that
//! leaves any contract operation without a handler: the routes served are exactly the
//! contract's operations, by construction.

use super::error::ApiError;
use super::{correlation, docs};
use crate::contracts::health_status::{DependencyCheck, HealthState, HealthStatus};
use crate::metrics::ServiceMetrics;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::handler::Handler;
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{MethodFilter, on};
use futures_util::future::BoxFuture;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("the bundled OpenAPI document is not valid JSON: {0}")]
    Document(String),
    #[error("`{0}` is not an operationId of the contract")]
    UnknownOperation(String),
    #[error("operation `{0}` has two handlers")]
    Duplicate(String),
    #[error("operation `{operation}` uses the method {method}, which this router cannot serve")]
    Method { operation: String, method: String },
    #[error("the contract's operations {0:?} have no handler")]
    Missing(Vec<String>),
}

/// One dependency a service needs to be ready (broker, database, ...).
pub trait ReadinessCheck: Send + Sync {
    fn name(&self) -> &'static str;
    /// `Err` carries a one-line reason.
    fn check(&self) -> BoxFuture<'_, Result<(), String>>;
}

/// A readiness check from a cheap synchronous probe (e.g. "is the publisher connected?").
pub fn probe<F>(name: &'static str, probe: F) -> impl ReadinessCheck
where
    F: Fn() -> Result<(), String> + Send + Sync,
{
    struct Probe<F> {
        name: &'static str,
        probe: F,
    }
    impl<F: Fn() -> Result<(), String> + Send + Sync> ReadinessCheck for Probe<F> {
        fn name(&self) -> &'static str {
            self.name
        }
        fn check(&self) -> BoxFuture<'_, Result<(), String>> {
            let result = (self.probe)();
            Box::pin(async move { result })
        }
    }
    Probe { name, probe }
}

/// Everything `/readyz` checks; each check is bounded by a timeout and they run concurrently.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<Arc<dyn ReadinessCheck>>,
}

impl Readiness {
    pub fn with(mut self, check: impl ReadinessCheck + 'static) -> Self {
        self.checks.push(Arc::new(check));
        self
    }

    pub async fn evaluate(&self) -> Vec<DependencyCheck> {
        let runs = self.checks.iter().map(|c| async move {
            let started = Instant::now();
            let result = tokio::time::timeout(Duration::from_secs(2), c.check())
                .await
                .unwrap_or_else(|_| Err("no answer within 2 s".into()));
            DependencyCheck {
                name: c.name().to_string(),
                status: if result.is_ok() {
                    HealthState::Ok
                } else {
                    HealthState::Unavailable
                },
                detail: result.err(),
                latency_ms: Some(started.elapsed().as_secs_f64() * 1000.0),
            }
        });
        futures_util::future::join_all(runs).await
    }
}

pub struct ContractRouter<S> {
    service: &'static str,
    version: &'static str,
    document: Arc<Value>,
    /// operationId → (method, path template)
    operations: BTreeMap<String, (Method, String)>,
    /// operationId → the names of its query parameters
    query_parameters: BTreeMap<String, Arc<BTreeSet<String>>>,
    served: BTreeSet<String>,
    router: Router<S>,
    metrics: ServiceMetrics,
}

impl<S: Clone + Send + Sync + 'static> ContractRouter<S> {
    /// `openapi` is the bundled document the service implements (what it serves at
    /// `/openapi.json`), e.g. `observatory_contracts::openapi::GATEWAY`.
    pub fn new(
        service: &'static str,
        version: &'static str,
        openapi: &str,
        metrics: ServiceMetrics,
    ) -> Result<Self, RouterError> {
        let document: Value =
            serde_json::from_str(openapi).map_err(|e| RouterError::Document(e.to_string()))?;
        let mut operations = BTreeMap::new();
        let mut query_parameters = BTreeMap::new();
        if let Some(Value::Object(paths)) = document.get("paths") {
            for (path, item) in paths {
                let Value::Object(item) = item else { continue };
                for (method, op) in item {
                    let Some(id) = op.get("operationId").and_then(Value::as_str) else {
                        continue;
                    };
                    let names = [item.get("parameters"), op.get("parameters")]
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_array)
                        .flatten()
                        .filter_map(|parameter| resolve(&document, parameter))
                        .filter(|p| p.get("in").and_then(Value::as_str) == Some("query"))
                        .filter_map(|p| p.get("name").and_then(Value::as_str))
                        .map(str::to_owned)
                        .collect();
                    query_parameters.insert(id.to_string(), Arc::new(names));
                    let method =
                        Method::from_bytes(method.to_uppercase().as_bytes()).map_err(|_| {
                            RouterError::Method {
                                operation: id.into(),
                                method: method.clone(),
                            }
                        })?;
                    operations.insert(id.to_string(), (method, path.clone()));
                }
            }
        }
        Ok(Self {
            service,
            version,
            document: Arc::new(document),
            operations,
            query_parameters,
            served: BTreeSet::new(),
            router: Router::new(),
            metrics,
        })
    }

    /// Serves the contract operation `operation_id` with `handler`.
    pub fn operation<H, T>(mut self, operation_id: &str, handler: H) -> Result<Self, RouterError>
    where
        H: Handler<T, S>,
        T: 'static,
    {
        let (method, path) = self
            .operations
            .get(operation_id)
            .cloned()
            .ok_or_else(|| RouterError::UnknownOperation(operation_id.into()))?;
        if !self.served.insert(operation_id.to_string()) {
            return Err(RouterError::Duplicate(operation_id.into()));
        }
        let filter = MethodFilter::try_from(method.clone()).map_err(|_| RouterError::Method {
            operation: operation_id.into(),
            method: method.to_string(),
        })?;
        let known = self
            .query_parameters
            .get(operation_id)
            .cloned()
            .unwrap_or_default();
        let route = on(filter, handler).layer(middleware::from_fn(move |request, next| {
            refuse_unknown_query_parameters(known.clone(), request, next)
        }));
        self.router = self.router.route(&path, route);
        Ok(self)
    }

    /// Serves the operational endpoints every contract has: `health`, `ready`, `metrics`,
    /// `openapi_document` and `api_docs`.
    pub fn operational(self, readiness: Readiness) -> Result<Self, RouterError> {
        let (service, version) = (self.service, self.version);
        let metrics = self.metrics.clone();
        let document = self.document.clone();
        let docs_page = Arc::new(docs::render(&document));
        self.operation("health", move || async move {
            axum::Json(HealthStatus {
                status: HealthState::Ok,
                service: service.into(),
                version: Some(version.into()),
                checks: vec![],
            })
        })?
        .operation("ready", move || async move {
            let checks = readiness.evaluate().await;
            let failing: Vec<(String, String)> = checks
                .iter()
                .filter(|c| c.status != HealthState::Ok)
                .map(|c| (c.name.clone(), c.detail.clone().unwrap_or_default()))
                .collect();
            if failing.is_empty() {
                axum::Json(HealthStatus {
                    status: HealthState::Ok,
                    service: service.into(),
                    version: Some(version.into()),
                    checks,
                })
                .into_response()
            } else {
                let names: Vec<&str> = failing.iter().map(|(n, _)| n.as_str()).collect();
                ApiError::unavailable(
                    "not-ready",
                    format!("not ready: {} unavailable", names.join(", ")),
                    5,
                )
                .with_details(failing)
                .into_response()
            }
        })?
        .operation("metrics", move || async move {
            (
                [(
                    header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                )],
                metrics.render(),
            )
        })?
        .operation("openapi_document", move || async move {
            axum::Json(document.as_ref().clone())
        })?
        .operation("api_docs", move || async move {
            Html(docs_page.as_ref().clone())
        })
    }

    /// (method, path) of every operation served so far.
    pub fn served(&self) -> Vec<(String, String)> {
        self.served
            .iter()
            .filter_map(|id| self.operations.get(id))
            .map(|(m, p)| (m.to_string(), p.clone()))
            .collect()
    }

    /// The finished router: every contract operation served, JSON errors for unknown routes
    /// (404) and wrong methods (405), bodies limited to `body_limit` bytes (413), request
    /// durations measured, and correlation ids on everything.
    pub fn finish(self, state: S, body_limit: usize) -> Result<Router, RouterError> {
        let missing: Vec<String> = self
            .operations
            .keys()
            .filter(|id| !self.served.contains(*id))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(RouterError::Missing(missing));
        }
        Ok(self
            .router
            .fallback(|| async { ApiError::not_found("no such route; see /docs") })
            .method_not_allowed_fallback(|| async {
                ApiError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method-not-allowed",
                    "this route does not accept that method; see /docs",
                )
            })
            .layer(DefaultBodyLimit::max(body_limit))
            .layer(middleware::from_fn_with_state(self.metrics, track_duration))
            .layer(middleware::from_fn(correlation::layer))
            .with_state(state))
    }
}

/// `value`, or what its `$ref` (local to the document) points at.
fn resolve<'a>(document: &'a Value, value: &'a Value) -> Option<&'a Value> {
    match value.get("$ref").and_then(Value::as_str) {
        None => Some(value),
        Some(reference) => document.pointer(reference.strip_prefix('#')?),
    }
}

/// 400 naming every query parameter that the operation does not declare: a misspelt filter
/// (`?stauts=FAILED`) must not silently return everything.
async fn refuse_unknown_query_parameters(
    known: Arc<BTreeSet<String>>,
    request: Request,
    next: Next,
) -> Response {
    // A query string that does not parse is the handler's to report.
    let unknown: BTreeSet<String> =
        axum::extract::Query::<Vec<(String, String)>>::try_from_uri(request.uri())
            .map(|axum::extract::Query(pairs)| {
                pairs
                    .into_iter()
                    .map(|(name, _)| name)
                    .filter(|name| !known.contains(name))
                    .collect()
            })
            .unwrap_or_default();
    if unknown.is_empty() {
        return next.run(request).await;
    }
    let takes = if known.is_empty() {
        "this operation takes no query parameters".to_owned()
    } else {
        let names: Vec<&str> = known.iter().map(String::as_str).collect();
        format!("this operation takes {}", names.join(", "))
    };
    let names: Vec<&str> = unknown.iter().map(String::as_str).collect();
    ApiError::bad_request(
        "validation-failed",
        format!("unknown query parameter: {}", names.join(", ")),
    )
    .with_details(
        unknown
            .iter()
            .map(|name| (name.clone(), format!("unknown parameter; {takes}")))
            .collect(),
    )
    .into_response()
}

async fn track_duration(
    State(metrics): State<ServiceMetrics>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    // Methods outside the standard set would be unbounded label values.
    let method = match *request.method() {
        Method::GET
        | Method::POST
        | Method::PUT
        | Method::PATCH
        | Method::DELETE
        | Method::HEAD
        | Method::OPTIONS => request.method().to_string(),
        _ => "other".to_string(),
    };
    let started = Instant::now();
    let response = next.run(request).await;
    metrics
        .http_request_duration
        .with_label_values(&[method.as_str(), route.as_str(), response.status().as_str()])
        .observe(started.elapsed().as_secs_f64());
    response
}
