//! The gateway against the real RabbitMQ on this machine: in-process (`oneshot`) for the
//! HTTP behaviour, and over a socket through the generated client. Each test uses its own
//! broker prefix.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use observatory_gateway::{GatewayConfig, GatewayState, router};
use observatory_messaging::{
    BrokerConnector, MessageBroker, RabbitMq, ReconnectingPublisher, Subscription, Topology,
    next_delivery,
};
use observatory_runtime::shutdown::CancellationToken;
use observatory_test_support::{rabbitmq_url, unique_name};
use observatory_validation::ContractValidator;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

fn config(prefix: &str, rabbitmq_url: String) -> GatewayConfig {
    GatewayConfig {
        gateway_addr: "127.0.0.1:0".parse().unwrap(),
        rabbitmq_url,
        broker_prefix: prefix.into(),
        body_limit: 128 * 1024,
        confirm_timeout_ms: 5_000,
        default_max_attempts: 3,
        max_queued_jobs: 50_000,
        instance_id: Some("gateway-test".into()),
        cors_origins: vec!["http://127.0.0.1:8080".into()],
    }
}

/// A gateway state with a connected publisher, and a broker to observe the jobs queue.
async fn connected(shutdown: &CancellationToken) -> (GatewayState, Arc<dyn MessageBroker>) {
    let prefix = unique_name();
    let connector = Arc::new(RabbitMq::new(rabbitmq_url(), Topology::new(prefix.clone())));
    let broker = connector
        .connect()
        .await
        .expect("RabbitMQ on 127.0.0.1:5672");
    let cfg = config(&prefix, rabbitmq_url());
    let publisher =
        ReconnectingPublisher::start(connector, Duration::from_secs(5), shutdown.clone());
    let state = GatewayState::new(&cfg, publisher, "rabbitmq").unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !state.is_ready() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the publisher connects");
    (state, broker)
}

/// A gateway whose broker never answers: nothing listens on port 1, so the publisher keeps
/// retrying in the background.
fn without_broker(shutdown: &CancellationToken) -> GatewayState {
    let cfg = config(&unique_name(), "amqp://guest:guest@127.0.0.1:1/%2f".into());
    let connector = Arc::new(RabbitMq::new(
        cfg.rabbitmq_url.clone(),
        Topology::new(cfg.broker_prefix.clone()),
    ));
    let publisher =
        ReconnectingPublisher::start(connector, Duration::from_secs(1), shutdown.clone());
    GatewayState::new(&cfg, publisher, "rabbitmq").unwrap()
}

async fn cleanup(broker: &Arc<dyn MessageBroker>) {
    broker.delete_queues().await.unwrap();
}

async fn post(
    app: axum::Router,
    body: Value,
    extra: &[(&str, &str)],
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let mut request = Request::post("/jobs").header(header::CONTENT_TYPE, "application/json");
    for (k, v) in extra {
        request = request.header(*k, *v);
    }
    let response = app
        .oneshot(request.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn next_job_message(consumer: &mut Subscription) -> Value {
    let delivery = tokio::time::timeout(
        Duration::from_secs(5),
        next_delivery(consumer, &CancellationToken::new()),
    )
    .await
    .expect("a message within 5 s")
    .expect("consumer open")
    .unwrap();
    delivery.ack().await.unwrap();
    serde_json::from_slice(&delivery.data).unwrap()
}

#[tokio::test]
async fn an_accepted_job_is_a_confirmed_job_created_event() {
    let shutdown = CancellationToken::new();
    let (state, broker) = connected(&shutdown).await;
    let app = router(state, 64 * 1024).unwrap();
    let (status, headers, body) = post(
        app,
        json!({"type": "sleep", "payload": {"durationMs": 5}}),
        &[("x-correlation-id", "req-7")],
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(
        ContractValidator::by_name("job_acceptance")
            .unwrap()
            .unwrap()
            .is_valid(&body),
        "{body}"
    );
    assert_eq!(body["status"], "PENDING");
    assert_eq!(body["correlationId"], "req-7");
    assert_eq!(headers["x-correlation-id"], "req-7");

    let mut consumer = broker
        .consume(&broker.topology().jobs_queue(), "test", 10)
        .await
        .unwrap();
    let event = next_job_message(&mut consumer).await;
    let validator = ContractValidator::by_name("job_created").unwrap().unwrap();
    assert!(validator.is_valid(&event), "{event}");
    assert_eq!(event["eventId"], body["eventId"]);
    assert_eq!(
        event["correlationId"], "req-7",
        "the correlation id is carried into the event"
    );
    assert_eq!(event["payload"]["jobId"], body["jobId"]);
    assert_eq!(event["payload"]["maxAttempts"], 3, "the configured default");
    assert_eq!(
        event["idempotencyKey"],
        format!("{}:created", body["jobId"].as_str().unwrap())
    );
    shutdown.cancel();
    cleanup(&broker).await;
}

#[tokio::test]
async fn a_resubmission_with_the_same_key_or_job_id_is_the_same_job_and_event() {
    let shutdown = CancellationToken::new();
    let (state, broker) = connected(&shutdown).await;
    let app = router(state, 64 * 1024).unwrap();
    let submission = json!({"type": "compute", "payload": {"iterations": 10}});
    let (_, _, first) = post(
        app.clone(),
        submission.clone(),
        &[("idempotency-key", "order-42")],
    )
    .await;
    let (_, _, second) = post(
        app.clone(),
        submission.clone(),
        &[("idempotency-key", "order-42")],
    )
    .await;
    let (_, _, other) = post(app.clone(), submission, &[("idempotency-key", "order-43")]).await;
    assert_eq!(first["jobId"], second["jobId"]);
    assert_eq!(first["eventId"], second["eventId"]);
    assert_ne!(first["jobId"], other["jobId"]);

    let id = "0b4bd3a4-94b4-4b4e-9a35-3a1d6f6c9d11";
    let (status, _, chosen) = post(
        app,
        json!({"type": "sleep", "jobId": id, "payload": {"durationMs": 0}}),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(chosen["jobId"], id);
    shutdown.cancel();
    cleanup(&broker).await;
}

#[tokio::test]
async fn bad_input_is_a_4xx_with_the_error_body() {
    let shutdown = CancellationToken::new();
    let (state, broker) = connected(&shutdown).await;
    let app = router(state, 64 * 1024).unwrap();
    let (status, _, body) =
        post(app.clone(), json!({"type": "sleep", "maxAttempts": 0}), &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "validation-failed");
    assert_eq!(body["details"][0]["pointer"], "/maxAttempts");
    // A query parameter the contract does not declare is refused, not ignored.
    let response = app
        .clone()
        .oneshot(
            Request::post("/jobs?dryRun=true")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(
                    json!({"type": "sleep", "payload": {"durationMs": 0}}).to_string(),
                ))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["code"], "validation-failed");
    assert_eq!(body["details"][0]["pointer"], "dryRun");
    let long_key = "k".repeat(300);
    let (status, _, body) = post(
        app,
        json!({"type": "sleep", "payload": {"durationMs": 0}}),
        &[("idempotency-key", &long_key)],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invalid-idempotency-key");
    shutdown.cancel();
    cleanup(&broker).await;
}

#[tokio::test]
async fn payloads_of_built_in_types_and_every_payload_limit_are_checked_at_intake() {
    let shutdown = CancellationToken::new();
    let (state, broker) = connected(&shutdown).await;
    let app = router(state, 128 * 1024).unwrap();
    let refused = |body: Value| {
        let app = app.clone();
        async move {
            let (status, _, answer) = post(app, body.clone(), &[]).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body:.200} -> {answer}");
            assert_eq!(answer["code"], "validation-failed", "{answer}");
            answer["details"][0]["pointer"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }
    };
    // A built-in type's payload is checked against its schema: no 202 for a job that can only fail.
    assert_eq!(
        refused(json!({"type": "compute", "payload": {}})).await,
        "/payload"
    );
    assert_eq!(
        refused(json!({"type": "sleep", "payload": {"durationMs": 60_001}})).await,
        "/payload/durationMs"
    );
    assert_eq!(
        refused(json!({"type": "fail", "payload": {"probability": 2}})).await,
        "/payload/probability"
    );
    // Every limit of x-limits, one past it, for any type; the pointer names the part beyond it.
    let nested = |levels: usize| (1..levels).fold(json!({}), |inner, _| json!({ "a": inner }));
    let deep = format!("/payload/deep{}", "/a".repeat(31));
    assert_eq!(
        refused(json!({"type": "x", "payload": {"deep": nested(32)}})).await,
        deep
    );
    let long = "x".repeat(16_385);
    assert_eq!(
        refused(json!({"type": "x", "payload": {"s": [long]}})).await,
        "/payload/s/0"
    );
    let key = "k".repeat(257);
    assert_eq!(
        refused(json!({"type": "x", "payload": {key.clone(): 1}})).await,
        format!("/payload/{key}")
    );
    assert_eq!(
        refused(json!({"type": "x", "payload": {"s": "a\u{0}b"}})).await,
        "/payload/s"
    );
    assert_eq!(
        refused(json!({"type": "x", "payload": {"a\u{0}": 1}})).await,
        "/payload/a\u{0}"
    );
    assert_eq!(
        refused(json!({"type": "x", "payload": {"n": u64::MAX}})).await,
        "/payload/n"
    );
    let pad = "x".repeat(16_000);
    let big = json!({"type": "x", "payload": {"a": pad, "b": pad, "c": pad, "d": pad, "e": "x".repeat(1_600)}});
    assert_eq!(refused(big).await, "/payload");
    // At every limit at once, accepted.
    let at_limits = json!({"type": "fail", "payload": {
        "probability": 0, "deep": nested(31), "s": "x".repeat(16_384), "k".repeat(256): i64::MIN,
        "n": i64::MAX,
    }});
    let (status, _, answer) = post(app.clone(), at_limits, &[]).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    shutdown.cancel();
    cleanup(&broker).await;
}

#[tokio::test]
async fn a_full_jobs_queue_sheds_submissions_with_503_and_retry_after_until_it_drains() {
    let shutdown = CancellationToken::new();
    let prefix = unique_name();
    let connector = Arc::new(RabbitMq::new(rabbitmq_url(), Topology::new(prefix.clone())));
    let broker = connector.connect().await.expect("RabbitMQ");
    let cfg = GatewayConfig {
        max_queued_jobs: 5,
        ..config(&prefix, rabbitmq_url())
    };
    let publisher =
        ReconnectingPublisher::start(connector, Duration::from_secs(5), shutdown.clone());
    let state = GatewayState::new(&cfg, publisher, "rabbitmq").unwrap();
    state.watch_queue(shutdown.clone());
    let app = router(state, 128 * 1024).unwrap();
    let job = json!({"type": "sleep", "payload": {"durationMs": 0}});
    // Nothing consumes: submissions are accepted until the gateway sees five waiting.
    let mut accepted = 0;
    let shed = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let (status, headers, body) = post(app.clone(), job.clone(), &[]).await;
            match status {
                StatusCode::ACCEPTED => accepted += 1,
                StatusCode::SERVICE_UNAVAILABLE if body["code"] == "overloaded" => {
                    return (headers, body);
                }
                StatusCode::SERVICE_UNAVAILABLE => {} // not connected yet
                other => panic!("unexpected {other}: {body}"),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a full queue sheds submissions");
    assert_eq!(shed.0[header::RETRY_AFTER], "1");
    assert!(accepted >= 5, "{accepted} accepted before shedding");
    // Every accepted job is in the queue; the shed ones are not.
    let (ready, _) = broker
        .queue_depth(&Topology::new(prefix.clone()).jobs_queue())
        .await
        .unwrap();
    assert_eq!(u64::from(ready), accepted);
    // Drained below nine tenths of the limit, submissions are accepted again.
    let mut consumer = broker
        .consume(&Topology::new(prefix.clone()).jobs_queue(), "drain", 100)
        .await
        .unwrap();
    for _ in 0..accepted {
        let delivery = next_delivery(&mut consumer, &shutdown)
            .await
            .unwrap()
            .unwrap();
        delivery.ack().await.unwrap();
    }
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let (status, _, _) = post(app.clone(), job.clone(), &[]).await;
            if status == StatusCode::ACCEPTED {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("accepted again once drained");
    shutdown.cancel();
    cleanup(&broker).await;
}

#[tokio::test]
async fn without_a_broker_the_answer_is_503_with_retry_after_and_not_ready() {
    let shutdown = CancellationToken::new();
    let app = router(without_broker(&shutdown), 64 * 1024).unwrap();
    let (status, headers, body) = post(
        app.clone(),
        json!({"type": "sleep", "payload": {"durationMs": 0}}),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(headers[header::RETRY_AFTER], "2");
    assert_eq!(body["code"], "broker-unavailable");
    let response = app
        .oneshot(Request::get("/readyz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    shutdown.cancel();
}

#[tokio::test]
async fn accepted_jobs_are_counted_by_bounded_type() {
    let shutdown = CancellationToken::new();
    let (state, broker) = connected(&shutdown).await;
    let metrics = state.metrics().clone();
    let app = router(state, 64 * 1024).unwrap();
    post(
        app.clone(),
        json!({"type": "sleep", "payload": {"durationMs": 0}}),
        &[],
    )
    .await;
    post(app.clone(), json!({"type": "resize-image-7f3a"}), &[]).await;
    let text = metrics.render();
    assert!(
        text.contains(r#"observatory_jobs_submitted_total{type="sleep",service="gateway"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"observatory_jobs_submitted_total{type="other",service="gateway"} 1"#),
        "{text}"
    );
    assert!(
        !text.contains("resize-image"),
        "unbounded values never become labels"
    );
    shutdown.cancel();
    cleanup(&broker).await;
}

#[tokio::test]
async fn the_generated_client_submits_over_http() {
    let shutdown = CancellationToken::new();
    let prefix = unique_name();
    let connector = Arc::new(RabbitMq::new(rabbitmq_url(), Topology::new(prefix.clone())));
    let broker = connector.connect().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(observatory_gateway::serve(
        config(&prefix, rabbitmq_url()),
        listener,
        connector,
        shutdown.clone(),
    ));
    let client = observatory_client::gateway::Client::new(&format!("http://{addr}"));
    let submission: observatory_client::contracts::job_submission::JobSubmission =
        serde_json::from_value(json!({"type": "sleep", "payload": {"durationMs": 0}})).unwrap();
    // The publisher connects in the background; until then the answer is a 503.
    let accepted = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match client.submit_job(None, None, &submission).await {
                Ok(response) => return response.into_inner(),
                Err(observatory_client::gateway::Error::ErrorResponse(e)) if e.status() == 503 => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(other) => panic!("unexpected: {other}"),
            }
        }
    })
    .await
    .expect("accepted within 10 s");
    assert_eq!(accepted.status.to_string(), "PENDING");
    let ready = client.ready().await.unwrap().into_inner();
    assert_eq!(ready.checks[0].name, "rabbitmq");
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("graceful shutdown")
        .unwrap()
        .unwrap();
    cleanup(&broker).await;
}

#[tokio::test]
async fn browsers_may_submit_only_from_the_allowed_origins() {
    let shutdown = CancellationToken::new();
    // No broker needed: a preflight never reaches the handler.
    let app = router(without_broker(&shutdown), 1024).unwrap();
    let preflight = |origin: &'static str| {
        Request::options("/jobs")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                "content-type,idempotency-key,x-correlation-id",
            )
            .body(Body::empty())
            .unwrap()
    };
    let allowed = app
        .clone()
        .oneshot(preflight("http://127.0.0.1:8080"))
        .await
        .unwrap();
    let headers = allowed.headers();
    assert_eq!(
        headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "http://127.0.0.1:8080"
    );
    let methods = headers[header::ACCESS_CONTROL_ALLOW_METHODS]
        .to_str()
        .unwrap();
    assert!(methods.contains("POST"), "{methods}");
    let allowed_headers = headers[header::ACCESS_CONTROL_ALLOW_HEADERS]
        .to_str()
        .unwrap();
    assert!(
        allowed_headers.contains("idempotency-key"),
        "{allowed_headers}"
    );
    let other = app.oneshot(preflight("http://evil.example")).await.unwrap();
    assert!(
        !other
            .headers()
            .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN),
        "an origin outside the list gets no CORS grant"
    );
    shutdown.cancel();
}

#[tokio::test]
async fn an_unconfirmed_publish_names_the_job_id_to_resubmit_with() {
    let shutdown = CancellationToken::new();
    let prefix = unique_name();
    let connector = Arc::new(RabbitMq::new(rabbitmq_url(), Topology::new(prefix.clone())));
    let broker = connector.connect().await.expect("RabbitMQ");
    // No time at all for confirms: every publish is sent, and none is confirmed in time.
    let publisher = ReconnectingPublisher::start(connector, Duration::ZERO, shutdown.clone());
    let state = GatewayState::new(&config(&prefix, rabbitmq_url()), publisher, "rabbitmq").unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !state.is_ready() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the publisher connects");
    let app = router(state, 64 * 1024).unwrap();
    let (status, headers, body) = post(
        app.clone(),
        json!({"type": "sleep", "payload": {"durationMs": 0}}),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "outcome-unknown", "{body}");
    assert!(headers.contains_key(header::RETRY_AFTER));
    assert_eq!(body["details"][0]["pointer"], "/jobId");
    let job_id = body["details"][0]["message"]
        .as_str()
        .expect("the job id")
        .to_owned();
    assert!(
        body["message"].as_str().unwrap_or("").contains(&job_id),
        "{body}"
    );

    // The message did reach the broker: the job may run, under that id.
    let mut consumer = broker
        .consume(&broker.topology().jobs_queue(), "test", 10)
        .await
        .unwrap();
    let first = next_job_message(&mut consumer).await;
    assert_eq!(first["payload"]["jobId"], job_id);
    // Resubmitted with that id, it is the same job and the same event: consumers run and
    // count it once.
    // (With no time for confirms the answer is almost always "outcome unknown" again, but a
    // confirm can beat the zero timeout: then it is a 202 for the same job.)
    let (status, _, again) = post(
        app,
        json!({"type": "sleep", "jobId": job_id, "payload": {"durationMs": 0}}),
        &[],
    )
    .await;
    if status == StatusCode::ACCEPTED {
        assert_eq!(again["jobId"], job_id.as_str(), "{again}");
    } else {
        assert_eq!(again["details"][0]["message"], job_id.as_str(), "{again}");
    }
    let second = next_job_message(&mut consumer).await;
    assert_eq!(second["payload"]["jobId"], first["payload"]["jobId"]);
    assert_eq!(second["eventId"], first["eventId"]);
    cleanup(&broker).await;
    shutdown.cancel();
}
