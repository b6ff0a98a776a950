//! End to end: the four roles of the real `observatory` binary, as separate processes, against
//! the real PostgreSQL, RabbitMQ, Redis and MongoDB on this machine (each run under its own
//! database and prefixes). Jobs go in through the generated gateway client; every check reads
//! through the generated read-model client, and the stores and `/metrics` must agree.

use observatory_client::contracts::job_submission::JobSubmission;
use observatory_client::{gateway, read_model};
use observatory_messaging::{BrokerConnector, JOB_CREATED, MessageMeta, RabbitMq, Topology};
use observatory_test_support::{fresh_postgres_database, rabbitmq_url, unique_name};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use uuid::Uuid;

const ROLES: [&str; 4] = ["processor", "metrics-engine", "read-model", "gateway"];

struct System {
    name: String,
    env: Vec<(String, String)>,
    addrs: BTreeMap<&'static str, String>,
    children: BTreeMap<&'static str, Child>,
}

impl System {
    async fn start() -> Self {
        let name = unique_name();
        let postgres_url = fresh_postgres_database().await;
        let env = vec![
            ("OBSERVATORY_BROKER_PREFIX".to_string(), name.clone()),
            ("OBSERVATORY_POSTGRES_URL".to_string(), postgres_url),
            ("OBSERVATORY_REDIS_PREFIX".to_string(), name.clone()),
            ("OBSERVATORY_MONGODB_DATABASE".to_string(), name.clone()),
            ("RUST_LOG".to_string(), "warn".to_string()),
            // Jobs here take milliseconds; a short timeout lets attempts of a killed processor
            // be recovered within seconds.
            (
                "OBSERVATORY_ATTEMPT_TIMEOUT_SECS".to_string(),
                "2".to_string(),
            ),
        ];
        let mut system = System {
            name,
            env,
            addrs: BTreeMap::new(),
            children: BTreeMap::new(),
        };
        for role in ROLES {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .to_string();
            system.addrs.insert(role, port);
        }
        for role in ROLES {
            system.spawn(role);
        }
        for role in ROLES {
            system.wait_ready(role).await;
        }
        system
    }

    fn spawn(&mut self, role: &'static str) {
        let flag = format!("--{role}-addr");
        let child = Command::new(env!("CARGO_BIN_EXE_observatory"))
            .args([role, &flag, &self.addrs[role]])
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting observatory {role}: {e}"));
        self.children.insert(role, child);
    }

    async fn wait_ready(&self, role: &str) {
        let client = reqwest::Client::new();
        let url = format!("http://{}/readyz", self.addrs[role]);
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if client
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("observatory {role} not ready on {url} within 60 s");
    }

    fn kill(&mut self, role: &str) {
        if let Some(mut child) = self.children.remove(role) {
            let _ = child.kill(); // SIGKILL: no chance to finish anything
            let _ = child.wait();
        }
    }

    fn gateway(&self) -> gateway::Client {
        gateway::Client::new(&format!("http://{}", self.addrs["gateway"]))
    }

    fn read_model(&self) -> read_model::Client {
        read_model::Client::new(&format!("http://{}", self.addrs["read-model"]))
    }

    async fn metrics(&self, role: &str) -> String {
        reqwest::get(format!("http://{}/metrics", self.addrs[role]))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

impl Drop for System {
    fn drop(&mut self) {
        for (_, child) in self.children.iter_mut() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        for (_, child) in self.children.iter_mut() {
            let _ = child.wait();
        }
    }
}

async fn submit(system: &System, body: Value) -> Uuid {
    let submission: JobSubmission = serde_json::from_value(body).unwrap();
    let response = system
        .gateway()
        .submit_job(None, None, &submission)
        .await
        .expect("accepted");
    response.into_inner().job_id
}

/// Waits (bounded) until the job reaches `status`, and returns its detail as JSON.
async fn wait_for_status(system: &System, job: Uuid, status: &str) -> Value {
    let client = system.read_model();
    let started = Instant::now();
    loop {
        if let Ok(detail) = client.get_job(&job, None).await {
            let detail = serde_json::to_value(detail.into_inner()).unwrap();
            if detail["job"]["status"] == status {
                return detail;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "job {job} did not reach {status} within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn event_types(detail: &Value) -> Vec<String> {
    detail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventType"].as_str().unwrap().to_string())
        .collect()
}

/// Waits until the job's event timeline has `count` events (events are stored asynchronously).
async fn wait_for_events(system: &System, job: Uuid, count: usize) -> Value {
    let started = Instant::now();
    loop {
        let detail = serde_json::to_value(
            system
                .read_model()
                .get_job(&job, None)
                .await
                .unwrap()
                .into_inner(),
        )
        .unwrap();
        if detail["events"].as_array().unwrap().len() >= count {
            return detail;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "job {job}: events {:?}, expected {count}",
            event_types(&detail)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn counter(metrics: &str, family: &str, labels: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(family) && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_job_type_runs_to_its_terminal_state_and_every_store_agrees() {
    let system = System::start().await;

    let sleep = submit(
        &system,
        json!({"type": "sleep", "payload": {"durationMs": 10}}),
    )
    .await;
    let compute = submit(
        &system,
        json!({"type": "compute", "payload": {"iterations": 1000, "seed": 7}}),
    )
    .await;
    let flaky = submit(
        &system,
        json!({"type": "fail", "payload": {"failFirstAttempts": 1}, "maxAttempts": 3}),
    )
    .await;
    let doomed = submit(&system, json!({"type": "fail", "maxAttempts": 2})).await;
    let unknown = submit(&system, json!({"type": "resize-image"})).await;
    let twice = Uuid::new_v4();
    submit(
        &system,
        json!({"type": "sleep", "jobId": twice, "payload": {"durationMs": 1}}),
    )
    .await;
    submit(
        &system,
        json!({"type": "sleep", "jobId": twice, "payload": {"durationMs": 1}}),
    )
    .await;

    // A poison message straight onto the jobs queue.
    let broker = RabbitMq::new(rabbitmq_url(), Topology::new(system.name.clone()))
        .connect()
        .await
        .unwrap();
    let publisher = broker.publisher(Duration::from_secs(5)).await.unwrap();
    publisher
        .publish(
            &broker.topology().jobs_exchange(),
            JOB_CREATED,
            b"{not json",
            &MessageMeta::default(),
        )
        .await
        .unwrap();

    wait_for_status(&system, sleep, "COMPLETED").await;
    let detail = wait_for_events(&system, sleep, 3).await;
    assert_eq!(
        event_types(&detail),
        ["job.created", "job.started", "job.completed"]
    );
    wait_for_status(&system, compute, "COMPLETED").await;

    let detail = wait_for_status(&system, flaky, "COMPLETED").await;
    assert_eq!(
        detail["attempts"].as_array().unwrap().len(),
        2,
        "failed once, retried, then completed"
    );
    let detail = wait_for_events(&system, flaky, 5).await;
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

    let detail = wait_for_status(&system, doomed, "DEAD_LETTERED").await;
    assert_eq!(detail["attempts"].as_array().unwrap().len(), 2);
    let detail = wait_for_events(&system, doomed, 6).await;
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

    let detail = wait_for_status(&system, unknown, "FAILED").await;
    assert_eq!(detail["job"]["lastError"]["code"], "unknown-job-type");
    assert_eq!(
        detail["attempts"].as_array().unwrap().len(),
        1,
        "an unknown type is not retried"
    );

    let detail = wait_for_status(&system, twice, "COMPLETED").await;
    assert_eq!(
        detail["attempts"].as_array().unwrap().len(),
        1,
        "a duplicate submission runs once"
    );
    let detail = wait_for_events(&system, twice, 3).await;
    assert_eq!(
        event_types(&detail),
        ["job.created", "job.started", "job.completed"],
        "and is stored once"
    );

    // The poison message and the exhausted job are in the dead letters, with reasons.
    let started = Instant::now();
    let letters = loop {
        let page = serde_json::to_value(
            system
                .read_model()
                .list_dead_letters(None, None, None)
                .await
                .unwrap()
                .into_inner(),
        )
        .unwrap();
        if page["items"].as_array().unwrap().len() >= 2
            || started.elapsed() > Duration::from_secs(30)
        {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let reasons: Vec<&str> = letters["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["reason"].as_str())
        .collect();
    assert!(
        reasons.contains(&"malformed-json") && reasons.contains(&"attempts-exhausted"),
        "{letters}"
    );
    let poison = letters["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["reason"] == "malformed-json")
        .unwrap();
    assert_eq!(poison["rawBody"], "{not json");

    // Counters (Redis), the event log (MongoDB), the job state (PostgreSQL) and /metrics agree.
    let started = Instant::now();
    let overview = loop {
        let o = serde_json::to_value(
            system
                .read_model()
                .get_overview(None)
                .await
                .unwrap()
                .into_inner(),
        )
        .unwrap();
        if o["totals"]["completed"] == 4 && o["totals"]["deadLettered"] == 1
            || started.elapsed() > Duration::from_secs(30)
        {
            break o;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let totals = &overview["totals"];
    assert_eq!(
        totals["submitted"], 6,
        "six distinct jobs, the duplicate counted once: {overview}"
    );
    assert_eq!(totals["completed"], 4, "{overview}");
    assert_eq!(totals["deadLettered"], 1, "{overview}");
    assert_eq!(
        totals["failed"], 4,
        "flaky once, doomed twice, unknown once: {overview}"
    );
    assert_eq!(totals["retried"], 2, "flaky once, doomed once: {overview}");
    let events = serde_json::to_value(
        system
            .read_model()
            .list_events(
                None,
                None,
                None,
                None,
                None,
                Some(std::num::NonZeroU64::new(500).unwrap()),
                None,
            )
            .await
            .unwrap()
            .into_inner(),
    )
    .unwrap();
    let completed_events = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["eventType"] == "job.completed")
        .count();
    assert_eq!(
        completed_events, 4,
        "one stored job.completed per completed job"
    );
    let processor_metrics = system.metrics("processor").await;
    assert_eq!(
        counter(
            &processor_metrics,
            "observatory_jobs_completed_total",
            "service=\"processor\""
        ),
        4.0,
        "{processor_metrics}"
    );
    let gateway_metrics = system.metrics("gateway").await;
    assert_eq!(
        counter(
            &gateway_metrics,
            "observatory_jobs_submitted_total",
            "service=\"gateway\""
        ),
        7.0,
        "seven submissions accepted"
    );
    let _ = broker.delete_queues().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn killing_the_processor_and_the_metrics_engine_mid_run_loses_nothing_and_counts_nothing_twice()
 {
    let mut system = System::start().await;
    // Submitted concurrently, so that most of the work is still ahead when the kill comes.
    let submissions = (0..120).map(|_| {
        submit(
            &system,
            json!({"type": "sleep", "payload": {"durationMs": 200}}),
        )
    });
    let mut ids: Vec<Uuid> = futures_util::future::join_all(submissions).await;
    // Kill both consumers (SIGKILL) while work is in flight, keep submitting, bring them back.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = serde_json::to_value(
        system
            .read_model()
            .get_overview(None)
            .await
            .unwrap()
            .into_inner(),
    )
    .unwrap();
    system.kill("processor");
    system.kill("metrics-engine");
    assert!(
        before["totals"]["completed"].as_u64().unwrap_or(0) < ids.len() as u64,
        "the kill must happen mid-run: {}",
        before["totals"]
    );
    for _ in 0..20 {
        ids.push(
            submit(
                &system,
                json!({"type": "sleep", "payload": {"durationMs": 1}}),
            )
            .await,
        );
    }
    system.spawn("processor");
    system.spawn("metrics-engine");
    system.wait_ready("processor").await;
    system.wait_ready("metrics-engine").await;

    for id in &ids {
        wait_for_status(&system, *id, "COMPLETED").await;
    }
    let started = Instant::now();
    let overview = loop {
        let o = serde_json::to_value(
            system
                .read_model()
                .get_overview(None)
                .await
                .unwrap()
                .into_inner(),
        )
        .unwrap();
        if o["totals"]["completed"].as_u64() >= Some(ids.len() as u64)
            || started.elapsed() > Duration::from_secs(60)
        {
            break o;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(overview["totals"]["submitted"], ids.len(), "{overview}");
    assert_eq!(
        overview["totals"]["completed"],
        ids.len(),
        "each job counted once: {overview}"
    );
    for id in &ids {
        let detail = wait_for_events(&system, *id, 3).await;
        let completed = event_types(&detail)
            .iter()
            .filter(|t| *t == "job.completed")
            .count();
        assert_eq!(completed, 1, "job {id}: {:?}", event_types(&detail));
    }
    let broker = RabbitMq::new(rabbitmq_url(), Topology::new(system.name.clone()))
        .connect()
        .await
        .unwrap();
    let _ = broker.delete_queues().await;
}
