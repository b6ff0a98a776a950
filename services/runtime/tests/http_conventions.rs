//! The HTTP conventions, checked in-process (`oneshot`) on a router built from the gateway's
//! real contract with a stand-in handler for `submit_job`.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::response::IntoResponse;
use futures_util::future::BoxFuture;
use http_body_util::BodyExt;
use observatory_runtime::contracts::job_submission::JobSubmission;
use observatory_runtime::http::{
    ApiError, ContractJson, ContractRouter, CorrelationId, Readiness, ReadinessCheck, RouterError,
};
use observatory_runtime::metrics::ServiceMetrics;
use observatory_validation::ContractValidator;
use serde_json::{Value, json};
use tower::ServiceExt;

const GATEWAY: &str = observatory_contracts::openapi::GATEWAY;

struct Broker {
    up: bool,
}

impl ReadinessCheck for Broker {
    fn name(&self) -> &'static str {
        "rabbitmq"
    }
    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            if self.up {
                Ok(())
            } else {
                Err("connection refused".into())
            }
        })
    }
}

async fn accept(
    correlation: CorrelationId,
    ContractJson(job): ContractJson<JobSubmission>,
) -> axum::response::Response {
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({"type": job.type_.to_string(), "correlation": correlation.0})),
    )
        .into_response()
}

fn app(broker_up: bool) -> axum::Router {
    ContractRouter::new("gateway", "test", GATEWAY, ServiceMetrics::new("gateway"))
        .unwrap()
        .operation("submit_job", accept)
        .unwrap()
        .operational(Readiness::default().with(Broker { up: broker_up }))
        .unwrap()
        .finish((), 1024)
        .unwrap()
}

async fn send(
    app: axum::Router,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let response = app.oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    (
        parts.status,
        parts.headers,
        body.collect().await.unwrap().to_bytes().to_vec(),
    )
}

fn post_jobs(content_type: &str, body: &str) -> Request<Body> {
    Request::post("/jobs")
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// Asserts the contract error body and returns it.
fn error_body(
    status: StatusCode,
    headers: &axum::http::HeaderMap,
    body: &[u8],
    expected_status: StatusCode,
    code: &str,
) -> Value {
    assert_eq!(status, expected_status, "{}", String::from_utf8_lossy(body));
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    let value: Value = serde_json::from_slice(body).unwrap();
    let validator = ContractValidator::by_name("api_error").unwrap().unwrap();
    assert!(validator.is_valid(&value), "not an ApiError: {value}");
    assert_eq!(value["code"], code);
    assert_eq!(
        value["correlationId"].as_str(),
        headers["x-correlation-id"].to_str().ok(),
        "error body and header carry the same id"
    );
    value
}

#[tokio::test]
async fn a_valid_submission_reaches_the_handler_with_a_generated_correlation_id() {
    let (status, headers, body) = send(
        app(true),
        post_jobs("application/json", r#"{"type":"sleep"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let id = headers["x-correlation-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body, json!({"type": "sleep", "correlation": id}));
}

#[tokio::test]
async fn a_supplied_correlation_id_is_echoed_and_an_invalid_one_is_refused() {
    let mut request = post_jobs("application/json", r#"{"type":"sleep"}"#);
    request
        .headers_mut()
        .insert("x-correlation-id", "req-42".parse().unwrap());
    let (status, headers, _) = send(app(true), request).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(headers["x-correlation-id"], "req-42");

    let mut request = post_jobs("application/json", r#"{"type":"sleep"}"#);
    request
        .headers_mut()
        .insert("x-correlation-id", "has spaces".parse().unwrap());
    let (status, headers, body) = send(app(true), request).await;
    error_body(
        status,
        &headers,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid-correlation-id",
    );
    assert_ne!(headers["x-correlation-id"], "has spaces");
}

#[tokio::test]
async fn bad_bodies_get_the_contract_error_body() {
    let (s, h, b) = send(
        app(true),
        post_jobs("application/json", r#"{"type": "sleep""#),
    )
    .await;
    error_body(s, &h, &b, StatusCode::BAD_REQUEST, "malformed-json");

    let (s, h, b) = send(app(true), post_jobs("text/plain", r#"{"type":"sleep"}"#)).await;
    error_body(
        s,
        &h,
        &b,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
    );

    let big = format!(
        r#"{{"type":"sleep","payload":{{"pad":"{}"}}}}"#,
        "x".repeat(2048)
    );
    let (s, h, b) = send(app(true), post_jobs("application/json", &big)).await;
    error_body(
        s,
        &h,
        &b,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload-too-large",
    );

    let (s, h, b) = send(
        app(true),
        post_jobs(
            "application/json",
            r#"{"type":"Sleep!","maxAttempts":0,"extra":1}"#,
        ),
    )
    .await;
    let body = error_body(s, &h, &b, StatusCode::BAD_REQUEST, "validation-failed");
    let pointers: Vec<&str> = body["details"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["pointer"].as_str())
        .collect();
    assert!(
        pointers.contains(&"/type") && pointers.contains(&"/maxAttempts") && pointers.contains(&""),
        "{body}"
    );
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_get_json_errors() {
    let (s, h, b) = send(
        app(true),
        Request::get("/nope").body(Body::empty()).unwrap(),
    )
    .await;
    error_body(s, &h, &b, StatusCode::NOT_FOUND, "not-found");
    let (s, h, b) = send(
        app(true),
        Request::delete("/jobs").body(Body::empty()).unwrap(),
    )
    .await;
    error_body(
        s,
        &h,
        &b,
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
    );
}

#[tokio::test]
async fn operational_endpoints() {
    let (s, _, b) = send(
        app(true),
        Request::get("/healthz").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let health: Value = serde_json::from_slice(&b).unwrap();
    assert!(
        ContractValidator::by_name("health_status")
            .unwrap()
            .unwrap()
            .is_valid(&health),
        "{health}"
    );

    let (s, _, b) = send(
        app(true),
        Request::get("/readyz").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let (s, h, b) = send(
        app(false),
        Request::get("/readyz").body(Body::empty()).unwrap(),
    )
    .await;
    let body = error_body(s, &h, &b, StatusCode::SERVICE_UNAVAILABLE, "not-ready");
    assert_eq!(h[header::RETRY_AFTER], "5");
    assert_eq!(
        body["details"][0],
        json!({"pointer": "rabbitmq", "message": "connection refused"})
    );

    let (s, _, b) = send(
        app(true),
        Request::get("/openapi.json").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        serde_json::from_slice::<Value>(&b).unwrap(),
        serde_json::from_str::<Value>(GATEWAY).unwrap()
    );

    let (s, h, b) = send(
        app(true),
        Request::get("/docs").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        h[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(String::from_utf8_lossy(&b).contains("<code>/jobs</code>"));
}

#[tokio::test]
async fn request_durations_are_labelled_by_route_template_and_service() {
    let app = app(true);
    let _ = send(
        app.clone(),
        post_jobs("application/json", r#"{"type":"sleep"}"#),
    )
    .await;
    let _ = send(
        app.clone(),
        Request::get("/jobs/123/nope").body(Body::empty()).unwrap(),
    )
    .await;
    let (_, _, b) = send(app, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    let text = String::from_utf8(b).unwrap();
    assert!(text.contains(r#"observatory_http_request_duration_seconds_count{method="POST",route="/jobs",status="202",service="gateway"} 1"#), "{text}");
    assert!(
        text.contains(r#"route="unmatched",status="404",service="gateway""#),
        "{text}"
    );
    assert!(
        !text.contains("/jobs/123"),
        "raw paths must not become labels"
    );
}

#[test]
fn the_router_serves_exactly_the_contract() {
    let incomplete =
        ContractRouter::new("gateway", "test", GATEWAY, ServiceMetrics::new("gateway"))
            .unwrap()
            .operation("submit_job", accept)
            .unwrap()
            .finish((), 1024);
    assert!(
        matches!(incomplete, Err(RouterError::Missing(m)) if m == ["api_docs", "health", "metrics", "openapi_document", "ready"])
    );

    let unknown =
        ContractRouter::<()>::new("gateway", "test", GATEWAY, ServiceMetrics::new("gateway"))
            .unwrap()
            .operation("delete_everything", || async { ApiError::internal("no") });
    assert!(matches!(unknown, Err(RouterError::UnknownOperation(_))));
}

/// Slow and oversized clients over real TCP: a head that never ends is disconnected, a body
/// that stalls gets the contract's 400, a huge head gets 431; others are served meanwhile.
#[tokio::test]
async fn slow_or_oversized_clients_are_cut_off_and_others_are_served() {
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let limits = observatory_runtime::http::SlowClientLimits {
        header_read: Duration::from_secs(1),
        body_read: Duration::from_secs(1),
    };
    let server = tokio::spawn(observatory_runtime::http::serve_with_limits(
        listener,
        app(true),
        stop.clone().cancelled_owned(),
        limits,
    ));
    let read_all = |mut stream: TcpStream| async move {
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
            .await
            .expect("the server ends the connection in time");
        String::from_utf8_lossy(&answer).into_owned()
    };

    // A slowloris: half a head, then silence.
    let started = Instant::now();
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // Meanwhile a normal client is served.
    let mut normal = TcpStream::connect(addr).await.unwrap();
    normal
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    assert!(read_all(normal).await.starts_with("HTTP/1.1 200"));
    let answer = read_all(slow).await;
    assert!(!answer.contains("200"), "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(900));

    // A body that stalls after 10 of its 100 bytes.
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    stalled
        .write_all(
            b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"type\": \"",
        )
        .await
        .unwrap();
    let answer = read_all(stalled).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("unreadable-body"), "{answer}");

    // A head of a megabyte.
    let mut huge = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let _ = huge.write_all(head.as_bytes()).await;
    let answer = read_all(huge).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    stop.cancel();
    server.await.unwrap().unwrap();
}
