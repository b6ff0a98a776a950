//! The built-in job types: what running one attempt of a job means.
//!
//! | type | payload (`schemas/job-types/`) | does |
//! |---|---|---|
//! | `sleep` | `{durationMs}` | waits that long (0: a no-op job) |
//! | `compute` | `{iterations, seed?}` | a deterministic hash chain on a blocking thread; result `{digest}` |
//! | `fail` | `{failFirstAttempts?, probability?, message?}` | fails on purpose (retryably) |
//!
//! A payload is validated against its schema before it is deserialized (the generated types
//! drop some bounds); an invalid payload or an unknown type fails the job for good: no retry
//! can fix either.

use std::sync::Arc;
use std::time::Duration;

use observatory_validation::{ContractValidator, SchemaError};
use serde_json::{Map, Value, json};

use crate::contracts::compute_job::ComputeJobPayload;
use crate::contracts::fail_job::FailJobPayload;
use crate::contracts::sleep_job::SleepJobPayload;

/// The built-in job types; anything else is counted as `other` in metrics.
pub const BUILT_IN_TYPES: [&str; 3] = ["sleep", "compute", "fail"];

/// Error codes of failed attempts.
pub mod codes {
    pub const INVALID_PAYLOAD: &str = "invalid-payload";
    pub const UNKNOWN_JOB_TYPE: &str = "unknown-job-type";
    pub const INTENTIONAL_FAILURE: &str = "intentional-failure";
    pub const TIMEOUT: &str = "timeout";
    pub const INTERRUPTED: &str = "interrupted";
    pub const INTERNAL: &str = "internal-error";
}

/// The `type` label of job metrics: a built-in type, or `other` (label values stay bounded).
pub fn type_label(job_type: &str) -> &'static str {
    BUILT_IN_TYPES
        .into_iter()
        .find(|t| *t == job_type)
        .unwrap_or("other")
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptResult {
    /// The job's result (the `result` of the job and of job.completed).
    Succeeded(Map<String, Value>),
    Failed(AttemptFailure),
}

/// Why an attempt failed, and whether another attempt could succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptFailure {
    pub code: &'static str,
    pub message: String,
    pub retryable: bool,
}

impl AttemptFailure {
    pub fn permanent(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retryable: false,
        }
    }

    pub fn transient(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retryable: true,
        }
    }
}

/// Runs attempts of the built-in job types. Cheap to clone.
#[derive(Clone)]
pub struct Executor {
    sleep: Arc<ContractValidator>,
    compute: Arc<ContractValidator>,
    fail: Arc<ContractValidator>,
}

impl Executor {
    /// Compiles the payload schemas of the built-in types.
    pub fn new() -> Result<Self, SchemaError> {
        Ok(Self {
            sleep: ContractValidator::for_type::<SleepJobPayload>()?,
            compute: ContractValidator::for_type::<ComputeJobPayload>()?,
            fail: ContractValidator::for_type::<FailJobPayload>()?,
        })
    }

    /// Runs attempt `attempt` (1-based) of a job of type `job_type` with `payload`.
    pub async fn execute(
        &self,
        job_type: &str,
        payload: &Map<String, Value>,
        attempt: u32,
    ) -> AttemptResult {
        match job_type {
            "sleep" => match parse::<SleepJobPayload>(&self.sleep, payload) {
                Ok(p) => run_sleep(p).await,
                Err(failure) => AttemptResult::Failed(failure),
            },
            "compute" => match parse::<ComputeJobPayload>(&self.compute, payload) {
                Ok(p) => run_compute(p).await,
                Err(failure) => AttemptResult::Failed(failure),
            },
            "fail" => match parse::<FailJobPayload>(&self.fail, payload) {
                Ok(p) => run_fail(&p, attempt),
                Err(failure) => AttemptResult::Failed(failure),
            },
            other => AttemptResult::Failed(AttemptFailure::permanent(
                codes::UNKNOWN_JOB_TYPE,
                format!(
                    "this processor cannot run jobs of type {other:?}; it knows {}",
                    BUILT_IN_TYPES.join(", ")
                ),
            )),
        }
    }
}

/// Validates `payload` against its schema, then deserializes it.
fn parse<T: serde::de::DeserializeOwned>(
    validator: &ContractValidator,
    payload: &Map<String, Value>,
) -> Result<T, AttemptFailure> {
    let value = Value::Object(payload.clone());
    let invalid = |detail: String| {
        AttemptFailure::permanent(
            codes::INVALID_PAYLOAD,
            format!(
                "the payload does not match {}: {detail}",
                validator.info().path
            ),
        )
    };
    if let Err(violations) = validator.validate(&value) {
        let listed: Vec<String> = violations.iter().map(ToString::to_string).collect();
        return Err(invalid(listed.join("; ")));
    }
    serde_json::from_value(value).map_err(|e| invalid(e.to_string()))
}

async fn run_sleep(payload: SleepJobPayload) -> AttemptResult {
    // The schema bounds durationMs to 0..=60000; a negative value cannot pass validation.
    let millis = u64::try_from(payload.duration_ms).unwrap_or(0);
    if millis > 0 {
        tokio::time::sleep(Duration::from_millis(millis)).await;
    }
    AttemptResult::Succeeded(object(json!({ "sleptMs": millis })))
}

async fn run_compute(payload: ComputeJobPayload) -> AttemptResult {
    let iterations = payload.iterations.get();
    let seed = payload.seed.unwrap_or(0);
    match tokio::task::spawn_blocking(move || hash_chain(seed, iterations)).await {
        Ok(digest) => AttemptResult::Succeeded(object(json!({
            "digest": format!("{digest:016x}"),
            "iterations": iterations,
        }))),
        Err(error) => AttemptResult::Failed(AttemptFailure::transient(
            codes::INTERNAL,
            format!("the compute task did not finish: {error}"),
        )),
    }
}

/// `iterations` rounds of a SplitMix64-style mix, each round feeding the next: the same input
/// always yields the same digest, and no round can be skipped.
pub fn hash_chain(seed: u64, iterations: u64) -> u64 {
    let mut state = seed;
    for round in 0..iterations {
        let mut z = state
            .wrapping_add(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(round);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        state = z ^ (z >> 31);
    }
    state
}

fn run_fail(payload: &FailJobPayload, attempt: u32) -> AttemptResult {
    let message = payload
        .message
        .as_ref()
        .map_or_else(|| "intentional failure".to_owned(), |m| m.to_string());
    // {} fails every attempt; failFirstAttempts N fails 1..=N; probability p fails each attempt
    // with probability p; both given, an attempt fails if either says so.
    let fails = match (payload.fail_first_attempts, payload.probability) {
        (None, None) => true,
        (first, probability) => {
            first.is_some_and(|n| u64::from(attempt) <= n)
                || probability.is_some_and(|p| random_unit() < p)
        }
    };
    if fails {
        AttemptResult::Failed(AttemptFailure::transient(
            codes::INTENTIONAL_FAILURE,
            format!("{message} (attempt {attempt})"),
        ))
    } else {
        AttemptResult::Succeeded(object(json!({ "succeededOnAttempt": attempt })))
    }
}

/// A uniformly distributed number in [0, 1).
fn random_unit() -> f64 {
    let bits = uuid::Uuid::new_v4().as_u128() as u64 >> 11;
    bits as f64 / (1u64 << 53) as f64
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(value: Value) -> Map<String, Value> {
        object(value)
    }

    fn executor() -> Executor {
        Executor::new().expect("the job-type schemas compile")
    }

    fn failure(result: AttemptResult) -> AttemptFailure {
        match result {
            AttemptResult::Failed(f) => f,
            AttemptResult::Succeeded(r) => panic!("expected a failure, got {r:?}"),
        }
    }

    fn success(result: AttemptResult) -> Map<String, Value> {
        match result {
            AttemptResult::Succeeded(r) => r,
            AttemptResult::Failed(f) => panic!("expected a success, got {f:?}"),
        }
    }

    #[tokio::test]
    async fn sleep_waits_and_zero_is_a_no_op() {
        let executor = executor();
        let started = tokio::time::Instant::now();
        let result = success(
            executor
                .execute("sleep", &payload(json!({"durationMs": 30})), 1)
                .await,
        );
        assert!(started.elapsed() >= Duration::from_millis(30));
        assert_eq!(result.get("sleptMs"), Some(&json!(30)));
        let result = success(
            executor
                .execute("sleep", &payload(json!({"durationMs": 0})), 1)
                .await,
        );
        assert_eq!(result.get("sleptMs"), Some(&json!(0)));
    }

    #[tokio::test]
    async fn compute_is_deterministic_and_depends_on_its_input() {
        let executor = executor();
        let run = |p: Value| {
            let executor = executor.clone();
            async move { success(executor.execute("compute", &payload(p), 1).await) }
        };
        let a = run(json!({"iterations": 1000, "seed": 42})).await;
        let b = run(json!({"iterations": 1000, "seed": 42})).await;
        let c = run(json!({"iterations": 1000, "seed": 43})).await;
        let d = run(json!({"iterations": 1001, "seed": 42})).await;
        assert_eq!(a, b);
        assert_ne!(a.get("digest"), c.get("digest"));
        assert_ne!(a.get("digest"), d.get("digest"));
        assert_eq!(
            a.get("digest"),
            Some(&json!(format!("{:016x}", hash_chain(42, 1000))))
        );
        // The seed defaults to 0.
        assert_eq!(
            run(json!({"iterations": 5})).await,
            run(json!({"iterations": 5, "seed": 0})).await
        );
    }

    #[tokio::test]
    async fn fail_follows_its_payload() {
        let executor = executor();
        let fail = |p: Value, attempt: u32| {
            let executor = executor.clone();
            async move { executor.execute("fail", &payload(p), attempt).await }
        };
        // {} fails every attempt, retryably, with the intentional-failure code.
        for attempt in 1..=3 {
            let f = failure(fail(json!({}), attempt).await);
            assert_eq!(f.code, codes::INTENTIONAL_FAILURE);
            assert!(f.retryable);
        }
        // failFirstAttempts: fails 1..=N, then succeeds.
        let first_two = json!({"failFirstAttempts": 2, "message": "downstream outage"});
        let f = failure(fail(first_two.clone(), 2).await);
        assert!(f.message.contains("downstream outage"), "{f:?}");
        assert_eq!(
            success(fail(first_two, 3).await).get("succeededOnAttempt"),
            Some(&json!(3))
        );
        // Probability 0 never fails, 1 always does.
        success(fail(json!({"probability": 0}), 1).await);
        failure(fail(json!({"probability": 1}), 7).await);
        // Both given: either may fail the attempt.
        failure(fail(json!({"failFirstAttempts": 1, "probability": 0}), 1).await);
        success(fail(json!({"failFirstAttempts": 1, "probability": 0}), 2).await);
    }

    #[tokio::test]
    async fn an_invalid_payload_fails_for_good_and_says_why() {
        let executor = executor();
        for (job_type, bad) in [
            ("sleep", json!({"durationMs": 600_001})),
            ("sleep", json!({})),
            ("compute", json!({"iterations": 0})),
            ("fail", json!({"probability": 1.5})),
        ] {
            let f = failure(executor.execute(job_type, &payload(bad.clone()), 1).await);
            assert_eq!(f.code, codes::INVALID_PAYLOAD, "{job_type} {bad}");
            assert!(!f.retryable);
            assert!(f.message.contains("schemas/job-types/"), "{}", f.message);
        }
    }

    #[tokio::test]
    async fn an_unknown_type_fails_for_good() {
        let f = failure(executor().execute("transcode", &Map::new(), 1).await);
        assert_eq!(f.code, codes::UNKNOWN_JOB_TYPE);
        assert!(!f.retryable);
        assert!(f.message.contains("transcode"), "{}", f.message);
    }

    #[test]
    fn metric_labels_are_bounded() {
        assert_eq!(type_label("sleep"), "sleep");
        assert_eq!(type_label("compute"), "compute");
        assert_eq!(type_label("fail"), "fail");
        assert_eq!(type_label("transcode"), "other");
    }
}
