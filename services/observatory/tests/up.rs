//! End to end: `observatory up` as a child process on free ports — once on its embedded
//! adapters (no server involved), once on the real RabbitMQ, PostgreSQL, Redis and MongoDB of
//! this machine — held to the same checks: jobs of every built-in type go in over HTTP (the
//! generated client and the `observatory submit` command) and the read model's answers (the
//! generated client and `observatory jobs` / `observatory job`) show each one's outcome and
//! timeline. Two more restart `up` on the same data directory: state survives, and stopping
//! finishes every accepted job first.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use observatory_client::contracts::job_submission::JobSubmission;
use observatory_client::{gateway, read_model};
use observatory_test_support::{mongodb_url, redis_url, unique_name};
use serde_json::{Value, json};
use uuid::Uuid;

mod support;
use support::{delete_queues, observatory, real_server_args};

/// Upper bound of every wait.
const WAIT: Duration = Duration::from_secs(60);

struct Up {
    child: Child,
    banner: String,
    gateway: String,
    read_model: String,
}

/// The first `http://…` address on the banner line that starts with `label`.
fn address(banner: &str, label: &str) -> String {
    banner
        .lines()
        .find(|line| line.trim_start().starts_with(label))
        .and_then(|line| line.split_whitespace().find(|w| w.starts_with("http://")))
        .unwrap_or_else(|| panic!("no {label} address in the banner:\n{banner}"))
        .to_owned()
}

impl Up {
    /// Starts `observatory up` with `args` on free ports and waits until it is ready.
    async fn start(args: &[String]) -> Self {
        Self::start_with_env(args, &[]).await
    }

    /// As `start`, with these environment variables (the roles' own settings).
    async fn start_with_env(args: &[String], env: &[(&str, &str)]) -> Self {
        let mut child = observatory()
            .arg("up")
            .args([
                "--gateway-addr",
                "127.0.0.1:0",
                "--read-model-addr",
                "127.0.0.1:0",
                "--processor-addr",
                "127.0.0.1:0",
                "--metrics-engine-addr",
                "127.0.0.1:0",
            ])
            .args(args)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting observatory up");
        // The banner ends with the line saying how to stop; read it on a thread so the wait is
        // bounded.
        let stdout = child.stdout.take().expect("stdout is piped");
        let (lines, banner_lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if lines.send(line).is_err() {
                    return;
                }
            }
        });
        let deadline = Instant::now() + WAIT;
        let mut banner = String::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = banner_lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no complete banner within {WAIT:?}:\n{banner}"));
            banner.push_str(&line);
            banner.push('\n');
            if line.contains("Stop with Ctrl-C") {
                break;
            }
        }
        let up = Self {
            gateway: address(&banner, "gateway"),
            read_model: address(&banner, "read model"),
            banner,
            child,
        };
        up.wait_ready(&up.gateway).await;
        up.wait_ready(&up.read_model).await;
        up
    }

    async fn wait_ready(&self, base: &str) {
        let url = format!("{base}/readyz");
        let started = Instant::now();
        while started.elapsed() < WAIT {
            if reqwest::get(&url).await.is_ok_and(|r| r.status() == 200) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{url} not ready within {WAIT:?}");
    }

    fn gateway_client(&self) -> gateway::Client {
        gateway::Client::new(&self.gateway)
    }

    fn read_model_client(&self) -> read_model::Client {
        read_model::Client::new(&self.read_model)
    }

    /// SIGTERM, as Ctrl-C would; `up` must stop cleanly and in time.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        let signalled = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(signalled.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for up") {
                assert!(status.success(), "observatory up exited with {status}");
                return;
            }
            assert!(
                started.elapsed() < WAIT,
                "observatory up did not stop within {WAIT:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Up {
    /// SIGKILL: nothing is drained, flushed or closed.
    fn kill(mut self) {
        self.child.kill().expect("kill -9 observatory up");
        self.child.wait().expect("reaped");
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        // Only reached when a test failed before `stop`.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn submit(up: &Up, body: Value) -> Uuid {
    let submission: JobSubmission = serde_json::from_value(body).expect("a valid submission");
    up.gateway_client()
        .submit_job(None, None, &submission)
        .await
        .expect("accepted")
        .into_inner()
        .job_id
}

/// Waits until the job has `status` and `events` timeline entries; returns its detail.
async fn wait_for(up: &Up, job: Uuid, status: &str, events: usize) -> Value {
    let client = up.read_model_client();
    let started = Instant::now();
    loop {
        let detail = match client.get_job(&job, None).await {
            Ok(detail) => serde_json::to_value(detail.into_inner()).expect("JSON"),
            Err(_) => Value::Null,
        };
        if detail["job"]["status"] == status
            && detail["events"].as_array().map_or(0, Vec::len) >= events
        {
            return detail;
        }
        assert!(
            started.elapsed() < WAIT,
            "job {job} did not reach {status} with {events} events within {WAIT:?}: {detail:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn event_types(detail: &Value) -> Vec<&str> {
    detail["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["eventType"].as_str())
        .collect()
}

fn cli(args: &[&str]) -> Output {
    observatory()
        .args(args)
        .output()
        .expect("running the observatory command")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Waits until the overview's totals equal `expected` (the counters are written
/// asynchronously, after the job store).
async fn wait_for_totals(up: &Up, expected: Value) -> Value {
    let started = Instant::now();
    loop {
        let overview = up
            .read_model_client()
            .get_overview(None)
            .await
            .map(|o| serde_json::to_value(o.into_inner()).expect("JSON"))
            .unwrap_or(Value::Null);
        let totals = &overview["totals"];
        let matches = expected
            .as_object()
            .expect("an object")
            .iter()
            .all(|(k, v)| &totals[k] == v);
        if matches {
            return overview;
        }
        assert!(
            started.elapsed() < WAIT,
            "totals {totals} never matched {expected}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The checks every configuration of `up` must pass.
async fn every_built_in_job_type_runs_and_the_read_model_shows_it(up: &Up) {
    let sleep = submit(up, json!({"type": "sleep", "payload": {"durationMs": 10}})).await;
    let compute = submit(
        up,
        json!({"type": "compute", "payload": {"iterations": 1000, "seed": 7}}),
    )
    .await;
    let flaky = submit(
        up,
        json!({"type": "fail", "payload": {"failFirstAttempts": 1}, "maxAttempts": 3}),
    )
    .await;
    let doomed = submit(up, json!({"type": "fail", "maxAttempts": 2})).await;
    let unknown = submit(up, json!({"type": "resize-image"})).await;
    // And through the command-line client, which prints the new job's id.
    let printed = stdout(&cli(&[
        "submit",
        "--type",
        "sleep",
        "--payload",
        r#"{"durationMs": 5}"#,
        "--gateway",
        &up.gateway,
    ]));
    let from_cli = Uuid::parse_str(printed.trim()).expect("submit prints the job id");

    let detail = wait_for(up, sleep, "COMPLETED", 3).await;
    assert_eq!(
        event_types(&detail),
        ["job.created", "job.started", "job.completed"]
    );
    wait_for(up, compute, "COMPLETED", 3).await;
    wait_for(up, from_cli, "COMPLETED", 3).await;
    let detail = wait_for(up, flaky, "COMPLETED", 5).await;
    assert_eq!(detail["attempts"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        event_types(&detail),
        [
            "job.created",
            "job.started",
            "job.failed",
            "job.started",
            "job.completed"
        ]
    );
    let detail = wait_for(up, doomed, "DEAD_LETTERED", 6).await;
    assert_eq!(
        event_types(&detail),
        [
            "job.created",
            "job.started",
            "job.failed",
            "job.started",
            "job.failed",
            "job.dead-lettered"
        ]
    );
    let detail = wait_for(up, unknown, "FAILED", 3).await;
    assert_eq!(detail["job"]["lastError"]["code"], "unknown-job-type");

    // Counted once each, as the store says.
    wait_for_totals(
        up,
        json!({"submitted": 6, "completed": 4, "deadLettered": 1, "retried": 2}),
    )
    .await;
    let letters = serde_json::to_value(
        up.read_model_client()
            .list_dead_letters(None, None, None)
            .await
            .expect("dead letters")
            .into_inner(),
    )
    .expect("JSON");
    assert!(
        letters["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|l| l["jobId"] == doomed.to_string()),
        "{letters:#}"
    );

    // The command-line client reads the same answers.
    let listed: Value = serde_json::from_str(&stdout(&cli(&[
        "jobs",
        "--read-model",
        &up.read_model,
        "--json",
    ])))
    .expect("jobs --json prints JSON");
    let ids: Vec<&str> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|j| j["id"].as_str())
        .collect();
    for job in [sleep, compute, flaky, doomed, unknown, from_cli] {
        assert!(ids.contains(&job.to_string().as_str()), "{job} in {ids:?}");
    }
    let shown = stdout(&cli(&[
        "job",
        &doomed.to_string(),
        "--read-model",
        &up.read_model,
    ]));
    assert!(shown.contains("DEAD_LETTERED"), "{shown}");
    assert!(shown.contains("job.dead-lettered"), "{shown}");
    let failed = stdout(&cli(&[
        "jobs",
        "--status",
        "failed",
        "--read-model",
        &up.read_model,
    ]));
    assert!(failed.contains(&unknown.to_string()), "{failed}");
    assert!(!failed.contains(&sleep.to_string()), "{failed}");
    let dead: Value = serde_json::from_str(&stdout(&cli(&[
        "jobs",
        "--status",
        "dead-lettered",
        "--type",
        "fail",
        "--limit",
        "5",
        "--read-model",
        &up.read_model,
        "--json",
    ])))
    .expect("JSON");
    let dead: Vec<&str> = dead["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|j| j["id"].as_str())
        .collect();
    assert_eq!(dead, [doomed.to_string()]);

    // The same idempotency key is the same job, however often it is submitted.
    let submit_keyed = || {
        stdout(&cli(&[
            "submit",
            "--type",
            "sleep",
            "--payload",
            r#"{"durationMs": 1}"#,
            "--max-attempts",
            "2",
            "--idempotency-key",
            "up-test-key",
            "--gateway",
            &up.gateway,
        ]))
    };
    assert_eq!(submit_keyed(), submit_keyed());

    let missing = cli(&[
        "job",
        &Uuid::new_v4().to_string(),
        "--read-model",
        &up.read_model,
    ]);
    assert!(!missing.status.success());
    let message = String::from_utf8_lossy(&missing.stderr);
    assert!(message.contains("not found"), "{message}");
}

/// `payload` with a `pad` array of strings that makes it exactly `bytes` long as compact JSON.
fn padded_to(mut payload: serde_json::Map<String, Value>, bytes: usize) -> Value {
    let mut pad: Vec<String> = Vec::new();
    loop {
        payload.insert("pad".into(), json!(pad));
        let len = serde_json::to_vec(&payload).expect("JSON").len();
        assert!(len <= bytes, "{len} > {bytes}");
        let missing = bytes - len;
        if missing == 0 {
            return Value::Object(payload);
        }
        match pad.last_mut() {
            Some(last) if last.len() < 16_000 => {
                let add = missing.min(16_000 - last.len());
                last.push_str(&"x".repeat(add));
            }
            _ => pad.push(String::new()),
        }
    }
}

/// Every limit of the submission's `x-limits`: a payload at all of them at once goes through
/// the whole pipeline (stored, logged, counted, read back unchanged by the generated client and
/// the CLI); one past each is a 400 naming the part beyond it, and nothing is stored.
async fn payload_limits_hold_through_the_pipeline(up: &Up) {
    let nested = |levels: usize| (1..levels).fold(json!({}), |inner, _| json!({ "a": inner }));
    let mut payload = serde_json::Map::new();
    payload.insert("probability".into(), json!(0)); // a fail job that succeeds
    payload.insert("deep".into(), nested(31)); // the payload is level 1: 32 in all
    payload.insert("s".into(), json!("é".repeat(16_384)));
    payload.insert("k".repeat(256), json!(i64::MIN));
    payload.insert("n".into(), json!(i64::MAX));
    payload.insert("x".into(), json!(-1.5e300));
    // The size limit counts numbers in plain decimal notation (as PostgreSQL stores them):
    // -1.5e300 takes 302 bytes, not 8.
    let plain_excess = format!("{}", -1.5e300_f64).len() - "-1.5e300".len();
    let payload = padded_to(payload, 65_536 - plain_excess);
    let job = submit(up, json!({"type": "fail", "payload": payload})).await;
    let detail = wait_for(up, job, "COMPLETED", 3).await;
    assert_eq!(
        detail["job"]["payload"], payload,
        "the job store gives the payload back"
    );
    let created = detail["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["eventType"] == "job.created")
        .expect("job.created in the timeline");
    assert_eq!(
        created["payload"]["payload"], payload,
        "the event log gives it back"
    );
    let page = up
        .read_model_client()
        .list_jobs(None, None, None, None, None, None, None, None)
        .await
        .expect("a jobs page with the job in it");
    let page = serde_json::to_value(page.into_inner()).expect("JSON");
    assert!(
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|j| j["payload"] == payload)
    );
    let listed: Value = serde_json::from_str(&stdout(&cli(&[
        "jobs",
        "--read-model",
        &up.read_model,
        "--json",
    ])))
    .expect("jobs --json reads the page");
    assert!(
        listed["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|j| j["id"] == job.to_string())
    );
    let shown: Value = serde_json::from_str(&stdout(&cli(&[
        "job",
        &job.to_string(),
        "--read-model",
        &up.read_model,
        "--json",
    ])))
    .expect("job --json reads the detail");
    assert_eq!(shown["job"]["payload"], payload);

    let http = reqwest::Client::new();
    let big_integer: Value = serde_json::from_str("9223372036854775808").expect("JSON");
    for (what, payload, pointer) in [
        (
            "33 levels",
            json!({"deep": nested(32)}),
            format!("/payload/deep{}", "/a".repeat(31)),
        ),
        (
            "a 16385-character string",
            json!({"s": "é".repeat(16_385)}),
            "/payload/s".into(),
        ),
        (
            "a 257-character key",
            json!({"k".repeat(257): 1}),
            format!("/payload/{}", "k".repeat(257)),
        ),
        (
            "a NUL in a string",
            json!({"s": ["\u{0}"]}),
            "/payload/s/0".into(),
        ),
        (
            "a NUL in a key",
            json!({"\u{0}": 1}),
            "/payload/\u{0}".into(),
        ),
        (
            "an integer beyond int64",
            json!({"n": big_integer}),
            "/payload/n".into(),
        ),
        (
            "65537 bytes",
            padded_to(serde_json::Map::new(), 65_537),
            "/payload".into(),
        ),
        (
            "1,800 bytes of 1e300s, 90,600 in plain decimal",
            json!({"x": vec![1e300; 300]}),
            "/payload".into(),
        ),
        (
            "a sleep over a minute",
            json!({"durationMs": 60_001}),
            "/payload/durationMs".into(),
        ),
    ] {
        let job_type = if what.starts_with("a sleep") {
            "sleep"
        } else {
            "fail"
        };
        let answer = http
            .post(format!("{}/jobs", up.gateway))
            .json(&json!({"type": job_type, "payload": payload}))
            .send()
            .await
            .expect("the gateway answers");
        assert_eq!(answer.status(), 400, "{what}");
        let body: Value = answer.json().await.expect("the error body");
        assert_eq!(body["code"], "validation-failed", "{what}: {body}");
        assert_eq!(body["details"][0]["pointer"], pointer, "{what}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn up_runs_every_job_type_on_its_embedded_adapters() {
    let up = Up::start(&[]).await;
    for part in [
        "the embedded in-process broker",
        "job store       SQLite in memory",
        "event log       SQLite in memory",
        "counters        SQLite in memory",
        "--data-dir",
    ] {
        assert!(up.banner.contains(part), "{part:?} in:\n{}", up.banner);
    }
    every_built_in_job_type_runs_and_the_read_model_shows_it(&up).await;
    payload_limits_hold_through_the_pipeline(&up).await;
    up.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn up_passes_the_same_checks_on_the_real_servers() {
    let name = unique_name();
    let up = Up::start(&real_server_args(&name).await).await;
    for part in ["RabbitMQ at", "PostgreSQL at", "MongoDB at", "Redis at"] {
        assert!(up.banner.contains(part), "{part:?} in:\n{}", up.banner);
    }
    assert!(!up.banner.contains("SQLite"), "{}", up.banner);
    every_built_in_job_type_runs_and_the_read_model_shows_it(&up).await;
    payload_limits_hold_through_the_pipeline(&up).await;
    up.stop();
    delete_queues(&name).await;
}

/// What a Redis without persistence loses on restart: every key of the prefix.
async fn forget_the_counters(prefix: &str) {
    let mut redis = redis::Client::open(redis_url())
        .expect("a Redis client")
        .get_multiplexed_async_connection()
        .await
        .expect("Redis");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut redis)
        .await
        .expect("KEYS");
    if !keys.is_empty() {
        redis::cmd("DEL")
            .arg(&keys)
            .query_async::<i64>(&mut redis)
            .await
            .expect("DEL");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn counters_lost_with_redis_are_rebuilt_from_the_event_log() {
    let name = unique_name();
    let args = real_server_args(&name).await;
    let up = Up::start(&args).await;
    every_built_in_job_type_runs_and_the_read_model_shows_it(&up).await;
    // Every job of the checks is done (the last one comes from the command-line client).
    let counted = wait_for_totals(
        &up,
        json!({"submitted": 7, "completed": 5, "deadLettered": 1, "retried": 2}),
    )
    .await["totals"]
        .clone();
    up.stop();

    // Redis restarts empty; `observatory reconcile` rebuilds the counters from MongoDB.
    forget_the_counters(&name).await;
    let rebuilt = stdout(&cli(&[
        "reconcile",
        "--redis-url",
        &redis_url(),
        "--redis-prefix",
        &name,
        "--mongodb-url",
        &mongodb_url(),
        "--mongodb-database",
        &name,
    ]));
    assert!(
        rebuilt.starts_with("rebuilt the counters from"),
        "{rebuilt}"
    );
    let up = Up::start(&args).await;
    let overview = wait_for_totals(&up, counted.clone()).await;
    assert_eq!(
        overview["totals"], counted,
        "the overview equals what the store says"
    );
    up.stop();

    // Lost again: the metrics engine rebuilds them by itself when it starts.
    forget_the_counters(&name).await;
    let up = Up::start(&args).await;
    wait_for_totals(&up, counted).await;
    up.stop();
    delete_queues(&name).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_data_directory_state_survives_a_restart() {
    let dir = std::env::temp_dir().join(format!("observatory-up-{}", unique_name()));
    let args = vec!["--data-dir".to_owned(), dir.display().to_string()];
    let up = Up::start(&args).await;
    assert!(
        up.banner.contains(&dir.display().to_string()),
        "{}",
        up.banner
    );
    let job = submit(&up, json!({"type": "sleep", "payload": {"durationMs": 1}})).await;
    wait_for(&up, job, "COMPLETED", 3).await;
    wait_for_totals(&up, json!({"submitted": 1, "completed": 1})).await;
    up.stop();

    let up = Up::start(&args).await;
    let detail = wait_for(&up, job, "COMPLETED", 3).await;
    assert_eq!(
        event_types(&detail),
        ["job.created", "job.started", "job.completed"]
    );
    wait_for_totals(&up, json!({"submitted": 1, "completed": 1})).await;
    let next = submit(&up, json!({"type": "sleep", "payload": {"durationMs": 1}})).await;
    wait_for(&up, next, "COMPLETED", 3).await;
    wait_for_totals(&up, json!({"submitted": 2, "completed": 2})).await;
    up.stop();
    std::fs::remove_dir_all(&dir).expect("remove the data directory");
}

#[test]
fn the_command_line_client_explains_bad_input_and_unreachable_servers() {
    let output = cli(&["job", "not-a-uuid"]);
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("not-a-uuid"), "{message}");

    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let url = format!("http://{}", free.local_addr().expect("address"));
    drop(free);
    let output = cli(&["jobs", "--read-model", &url]);
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("cannot reach"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn stopping_finishes_every_accepted_job_before_the_process_exits() {
    let dir = std::env::temp_dir().join(format!("observatory-up-{}", unique_name()));
    let args = vec!["--data-dir".to_owned(), dir.display().to_string()];
    let up = Up::start(&args).await;
    let mut jobs = Vec::new();
    for _ in 0..40 {
        jobs.push(
            submit(
                &up,
                json!({"type": "sleep", "payload": {"durationMs": 200}}),
            )
            .await,
        );
    }
    // Stop at once: the jobs are accepted (202) but most are still queued or running.
    up.stop();

    let up = Up::start(&args).await;
    for job in &jobs {
        let detail = wait_for(&up, *job, "COMPLETED", 3).await;
        assert_eq!(
            event_types(&detail),
            ["job.created", "job.started", "job.completed"]
        );
    }
    wait_for_totals(&up, json!({"submitted": 40, "completed": 40})).await;
    up.stop();
    std::fs::remove_dir_all(&dir).expect("remove the data directory");
}

/// The sum of a metric's samples (every label set) in a Prometheus text exposition.
fn metric_value(exposition: &str, name: &str) -> f64 {
    exposition
        .lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn stopping_waits_for_the_jobs_parked_by_the_per_type_limit() {
    // Two sleeps at a time and a one-second grace for the processor: most of the jobs are
    // parked (stored PENDING, their messages settled) when the stop begins, and only the
    // drain's wait for stored unfinished jobs gets them run before the process exits.
    let env = [
        ("OBSERVATORY_PROCESSOR_TYPE_CONCURRENCY", "2"),
        ("OBSERVATORY_SHUTDOWN_GRACE_SECS", "1"),
    ];
    let dir = std::env::temp_dir().join(format!("observatory-up-{}", unique_name()));
    let args = vec!["--data-dir".to_owned(), dir.display().to_string()];
    let up = Up::start_with_env(&args, &env).await;
    let mut jobs = Vec::new();
    for _ in 0..30 {
        jobs.push(
            submit(
                &up,
                json!({"type": "sleep", "payload": {"durationMs": 200}}),
            )
            .await,
        );
    }
    let metrics = reqwest::get(address(&up.banner, "processor"))
        .await
        .expect("processor metrics")
        .text()
        .await
        .expect("text");
    let parked = metric_value(&metrics, "observatory_jobs_parked_total");
    assert!(parked > 0.0, "no job was parked:\n{metrics}");
    up.stop();

    // Read once, without waiting: every job finished before the process exited.
    let up = Up::start_with_env(&args, &env).await;
    let client = up.read_model_client();
    for job in &jobs {
        let detail = client
            .get_job(job, None)
            .await
            .expect("job detail")
            .into_inner();
        let status = serde_json::to_value(detail.job.status).expect("JSON");
        assert_eq!(status, "COMPLETED", "job {job} at the restart");
    }
    up.stop();
    std::fs::remove_dir_all(&dir).expect("remove the data directory");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_up_with_a_data_directory_loses_and_repeats_no_accepted_job() {
    let dir = std::env::temp_dir().join(format!("observatory-up-{}", unique_name()));
    let args = vec!["--data-dir".to_owned(), dir.display().to_string()];
    let up = Up::start(&args).await;
    assert!(up.banner.contains("journaled to"), "{}", up.banner);
    // One attempt each: a crash must not use it up. Submitted at once: most wait in the
    // broker, some run, some are done when the process dies.
    let submissions = (0..120).map(|_| {
        submit(
            &up,
            json!({"type": "sleep", "payload": {"durationMs": 100}, "maxAttempts": 1}),
        )
    });
    let jobs: Vec<Uuid> = futures_util::future::join_all(submissions).await;
    let started = Instant::now();
    loop {
        let overview = up
            .read_model_client()
            .get_overview(None)
            .await
            .map(|o| o.into_inner().totals.completed)
            .unwrap_or(0);
        if overview >= 5 {
            break;
        }
        assert!(started.elapsed() < WAIT, "no job completed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    up.kill();

    let up = Up::start(&args).await;
    for job in &jobs {
        // COMPLETED, with job.completed in the timeline (the event log may lag the store).
        let mut detail = wait_for(&up, *job, "COMPLETED", 3).await;
        let started = Instant::now();
        while !event_types(&detail).contains(&"job.completed") {
            assert!(started.elapsed() < WAIT, "no job.completed in {detail:#}");
            tokio::time::sleep(Duration::from_millis(50)).await;
            detail = wait_for(&up, *job, "COMPLETED", 3).await;
        }
        assert_eq!(detail["job"]["attempts"], 1, "{detail:#}");
        let types = event_types(&detail);
        assert_eq!(
            types.iter().filter(|t| **t == "job.completed").count(),
            1,
            "completed once: {types:?}"
        );
        assert_eq!(types.iter().filter(|t| **t == "job.created").count(), 1);
    }
    // Counted once each: every event stored and counted by its eventId.
    wait_for_totals(
        &up,
        json!({"submitted": 120, "completed": 120, "deadLettered": 0}),
    )
    .await;
    up.stop();
    std::fs::remove_dir_all(&dir).expect("remove the data directory");
}

/// Values that make no sense are refused at start, naming the flag, before anything runs.
#[test]
fn configuration_that_makes_no_sense_is_refused_at_start() {
    let cases: &[(&[&str], &str)] = &[
        (&["processor", "--prefetch", "0"], "--prefetch"),
        (
            &[
                "processor",
                "--attempt-timeout-secs",
                "18446744073709551615",
            ],
            "--attempt-timeout-secs",
        ),
        (
            &["processor", "--retry-backoff-base-ms", "0"],
            "--retry-backoff-base-ms",
        ),
        (
            &["gateway", "--confirm-timeout-ms", "0"],
            "--confirm-timeout-ms",
        ),
        (&["gateway", "--body-limit", "0"], "--body-limit"),
        (
            &["gateway", "--default-max-attempts", "0"],
            "--default-max-attempts",
        ),
        (&["metrics-engine", "--prefetch", "0"], "--prefetch"),
        (&["metrics-engine", "--batch-size", "0"], "--batch-size"),
        (
            &["read-model", "--body-limit", "99999999999"],
            "--body-limit",
        ),
        (
            &["up", "--drain-timeout-secs", "99999"],
            "--drain-timeout-secs",
        ),
    ];
    for (args, flag) in cases {
        let mut child = observatory()
            .args(*args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("running the observatory command");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().expect("waiting") {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "`observatory {}` started instead of refusing",
                    args.join(" ")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut message = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().expect("stderr"), &mut message)
            .expect("reading stderr");
        assert_eq!(status.code(), Some(2), "{args:?}: {message}");
        assert!(message.contains(flag), "{args:?}: {message}");
    }
}
