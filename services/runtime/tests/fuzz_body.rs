//! Fuzzing the body extractor and validator (`ContractJson<JobSubmission>`, what the gateway
//! runs on every `POST /jobs`): whatever the bytes, the answer is a 4xx with the contract error
//! body or a submission that is valid under its schema, x-limits included; never a panic or a
//! 5xx. Inputs: mutations of `tests/corpus/job-submission/`, and generated payloads of any shape
//! and depth. Cases: `cargo xtask fuzz` sets PROPTEST_CASES.

use axum::body::Body;
use axum::extract::FromRequest;
use axum::http::{Request, header};
use axum::response::IntoResponse;
use observatory_runtime::contracts::job_submission::JobSubmission;
use observatory_runtime::http::ContractJson;
use observatory_test_support::fuzz;
use observatory_validation::ContractValidator;
use proptest::prelude::*;
use serde_json::json;
use std::path::Path;

fn corpus() -> Vec<Vec<u8>> {
    fuzz::corpus(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/job-submission"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
}

/// Extracts a submission from `body` as the gateway does; panics if the answer breaks the rules.
fn extract(rt: &tokio::runtime::Runtime, body: Vec<u8>) -> Result<(), TestCaseError> {
    let request = Request::post("/jobs")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .expect("a request");
    match rt.block_on(ContractJson::<JobSubmission>::from_request(request, &())) {
        Ok(ContractJson(submission)) => {
            let value = serde_json::to_value(&submission).expect("a submission serializes");
            let validator = ContractValidator::for_type::<JobSubmission>().expect("the schema");
            prop_assert!(
                validator.is_valid(&value),
                "accepted but invalid: {value:.300}"
            );
        }
        Err(error) => {
            let status = error.into_response().status();
            prop_assert!(status.is_client_error(), "{status}");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(fuzz::config(5_000))]

    #[test]
    fn any_bytes_are_a_4xx_or_a_valid_submission(body in fuzz::mutated(corpus())) {
        extract(&runtime(), body)?;
    }

    #[test]
    fn any_payload_is_a_4xx_or_a_valid_submission(payload in fuzz::json_value(40)) {
        let body = serde_json::to_vec(&json!({"type": "resize-image", "payload": payload}))
            .expect("JSON");
        extract(&runtime(), body)?;
    }
}

#[test]
fn the_corpus_holds_accepted_and_refused_inputs() {
    let rt = runtime();
    let outcomes: Vec<bool> = corpus()
        .into_iter()
        .map(|body| {
            let request = Request::post("/jobs")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body))
                .expect("a request");
            rt.block_on(ContractJson::<JobSubmission>::from_request(request, &()))
                .is_ok()
        })
        .collect();
    assert!(
        outcomes.contains(&true) && outcomes.contains(&false),
        "{outcomes:?}"
    );
}
