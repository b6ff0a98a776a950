//! What the engine accepts from the broker: a JSON body that is a valid `EventEnvelope` and,
//! by its `eventType`, a valid typed event (`JobCreated`, `JobStarted`, ...). Everything else
//! is rejected with a [`Rejection`] that names why, and is dead-lettered.

use std::sync::Arc;

use observatory_validation::{ContractValidator, SchemaError, Violation};
use serde_json::Value;

use crate::contracts::event_envelope::{EventEnvelope, EventType};
use crate::contracts::job_completed::JobCompleted;
use crate::contracts::job_created::JobCreated;
use crate::contracts::job_dead_lettered::JobDeadLettered;
use crate::contracts::job_failed::JobFailed;
use crate::contracts::job_started::JobStarted;

/// Every event type, in a fixed order (for pre-initialised metric labels).
pub(crate) const EVENT_TYPES: [EventType; 5] = [
    EventType::JobCreated,
    EventType::JobStarted,
    EventType::JobCompleted,
    EventType::JobFailed,
    EventType::JobDeadLettered,
];

/// Longest detail text carried in the dead-letter reason header.
const MAX_DETAIL: usize = 480;

/// Why a message cannot be stored; [`Rejection::code`] is a bounded metric label, the
/// [`Rejection::reason`] (code and detail) goes into the dead-letter header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// The body is not JSON.
    MalformedJson(String),
    /// `eventType` names no event this contract version knows.
    UnknownEventType(String),
    /// The body is JSON but not a valid `EventEnvelope`.
    InvalidEnvelope(String),
    /// A valid envelope whose typed event schema (by `eventType`) rejects it.
    SchemaViolation(String),
    /// A valid event the event log cannot store (e.g. an integer beyond the range of BSON's
    /// i64): retrying would never succeed, so it must not block the queue.
    Unstorable(String),
}

impl Rejection {
    /// Every code, for pre-initialised metric labels.
    pub(crate) const CODES: [&'static str; 5] = [
        "malformed-json",
        "unknown-event-type",
        "invalid-envelope",
        "schema-violation",
        "unstorable",
    ];

    pub(crate) fn code(&self) -> &'static str {
        match self {
            Self::MalformedJson(_) => Self::CODES[0],
            Self::UnknownEventType(_) => Self::CODES[1],
            Self::InvalidEnvelope(_) => Self::CODES[2],
            Self::SchemaViolation(_) => Self::CODES[3],
            Self::Unstorable(_) => Self::CODES[4],
        }
    }

    fn detail(&self) -> &str {
        match self {
            Self::MalformedJson(d)
            | Self::UnknownEventType(d)
            | Self::InvalidEnvelope(d)
            | Self::SchemaViolation(d)
            | Self::Unstorable(d) => d,
        }
    }

    /// `code: detail`, bounded in length.
    pub(crate) fn reason(&self) -> String {
        let mut detail = self.detail().to_string();
        if detail.len() > MAX_DETAIL {
            let mut end = MAX_DETAIL;
            while !detail.is_char_boundary(end) {
                end -= 1;
            }
            detail.truncate(end);
            detail.push('…');
        }
        format!("{}: {detail}", self.code())
    }
}

/// The compiled schemas of the envelope and of every typed event.
#[derive(Clone)]
pub(crate) struct Validators {
    envelope: Arc<ContractValidator>,
    created: Arc<ContractValidator>,
    started: Arc<ContractValidator>,
    completed: Arc<ContractValidator>,
    failed: Arc<ContractValidator>,
    dead_lettered: Arc<ContractValidator>,
}

impl Validators {
    pub(crate) fn new() -> Result<Self, SchemaError> {
        Ok(Self {
            envelope: ContractValidator::for_type::<EventEnvelope>()?,
            created: ContractValidator::for_type::<JobCreated>()?,
            started: ContractValidator::for_type::<JobStarted>()?,
            completed: ContractValidator::for_type::<JobCompleted>()?,
            failed: ContractValidator::for_type::<JobFailed>()?,
            dead_lettered: ContractValidator::for_type::<JobDeadLettered>()?,
        })
    }

    fn typed(&self, event_type: EventType) -> &ContractValidator {
        match event_type {
            EventType::JobCreated => &self.created,
            EventType::JobStarted => &self.started,
            EventType::JobCompleted => &self.completed,
            EventType::JobFailed => &self.failed,
            EventType::JobDeadLettered => &self.dead_lettered,
        }
    }

    /// The event in `body`, or why it is not one.
    pub(crate) fn check(&self, body: &[u8]) -> Result<EventEnvelope, Rejection> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|error| Rejection::MalformedJson(error.to_string()))?;
        if let Some(name) = value.get("eventType").and_then(Value::as_str)
            && name.parse::<EventType>().is_err()
        {
            return Err(Rejection::UnknownEventType(format!(
                "eventType {name:?} is not a known event type"
            )));
        }
        self.envelope
            .validate(&value)
            .map_err(|violations| Rejection::InvalidEnvelope(describe(&violations)))?;
        let event: EventEnvelope = serde_json::from_value(value.clone())
            .map_err(|error| Rejection::InvalidEnvelope(error.to_string()))?;
        self.typed(event.event_type)
            .validate(&value)
            .map_err(|violations| {
                Rejection::SchemaViolation(format!(
                    "not a valid {} event: {}",
                    event.event_type,
                    describe(&violations)
                ))
            })?;
        Ok(event)
    }
}

fn describe(violations: &[Violation]) -> String {
    let shown: Vec<String> = violations.iter().take(3).map(ToString::to_string).collect();
    let more = violations.len().saturating_sub(shown.len());
    if more == 0 {
        shown.join("; ")
    } else {
        format!("{} (and {more} more)", shown.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid() -> Value {
        json!({"contractVersion": "1.0.0", "eventType": "job.started",
            "eventId": "5f0c2a7e-1d3b-4c8e-9f6a-2b7d8e9c0a14", "occurredAt": "2026-11-23T12:00:00Z",
            "producer": {"service": "processor", "instanceId": "p-1", "version": "1.4.2"},
            "correlationId": "req-1", "idempotencyKey": "0b4bd3a4-94b4-4b4e-9a35-3a1d6f6c9d11:started:1",
            "payload": {"jobId": "0b4bd3a4-94b4-4b4e-9a35-3a1d6f6c9d11", "type": "sleep", "attempt": 1,
                "maxAttempts": 3, "startedAt": "2026-11-23T12:00:00Z"}})
    }

    fn check(value: &Value) -> Result<EventEnvelope, Rejection> {
        Validators::new()
            .expect("schemas compile")
            .check(value.to_string().as_bytes())
    }

    #[test]
    fn every_kind_of_rejection_is_named() {
        let validators = Validators::new().expect("schemas compile");
        assert_eq!(
            validators.check(b"{not json").map_err(|r| r.code()),
            Err("malformed-json")
        );

        let mut unknown = valid();
        unknown["eventType"] = json!("job.teleported");
        assert_eq!(
            check(&unknown).map_err(|r| r.code()),
            Err("unknown-event-type")
        );

        let mut no_id = valid();
        no_id.as_object_mut().map(|o| o.remove("eventId"));
        assert_eq!(check(&no_id).map_err(|r| r.code()), Err("invalid-envelope"));

        let mut bad_payload = valid();
        bad_payload["payload"] = json!({"jobId": "not-a-uuid"});
        let rejection = check(&bad_payload).expect_err("a payload that breaks job-started.json");
        assert_eq!(rejection.code(), "schema-violation");
        assert!(
            rejection
                .reason()
                .starts_with("schema-violation: not a valid job.started event"),
            "{}",
            rejection.reason()
        );
    }

    #[test]
    fn long_reasons_are_bounded() {
        let rejection = Rejection::InvalidEnvelope("é".repeat(1000));
        assert!(rejection.reason().len() < MAX_DETAIL + 40);
    }
}

/// Fuzzing the envelope parser: whatever a message's bytes, the engine gets an event valid under
/// its typed schema or a rejection whose reason fits the dead-letter header; never a panic.
/// Inputs: mutations of `tests/corpus/events/` (every example of `schemas/events/`) and generated
/// JSON. Cases: `cargo xtask fuzz` sets PROPTEST_CASES.
#[cfg(test)]
mod fuzz {
    use super::*;
    use observatory_test_support::fuzz;
    use proptest::prelude::*;
    use std::path::Path;

    fn corpus() -> Vec<Vec<u8>> {
        fuzz::corpus(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/events"))
    }

    fn holds(validators: &Validators, body: &[u8]) -> Result<(), TestCaseError> {
        match validators.check(body) {
            Ok(event) => {
                let value: Value = serde_json::from_slice(body).expect("it parsed once");
                prop_assert!(validators.typed(event.event_type).is_valid(&value));
            }
            Err(rejection) => {
                let reason = rejection.reason();
                prop_assert!(reason.len() <= MAX_DETAIL + 40, "{} bytes", reason.len());
                prop_assert!(Rejection::CODES.contains(&rejection.code()));
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(fuzz::config(5_000))]

        #[test]
        fn any_message_is_an_event_or_a_bounded_rejection(body in fuzz::mutated(corpus())) {
            holds(&Validators::new().expect("schemas"), &body)?;
        }

        #[test]
        fn any_json_is_an_event_or_a_bounded_rejection(value in fuzz::json_value(8)) {
            let body = serde_json::to_vec(&value).expect("JSON");
            holds(&Validators::new().expect("schemas"), &body)?;
        }
    }

    #[test]
    fn the_corpus_holds_valid_and_invalid_events() {
        let v = Validators::new().expect("schemas");
        let valid = corpus().iter().filter(|b| v.check(b).is_ok()).count();
        assert!(valid > 0 && valid < corpus().len(), "{valid} valid");
    }
}
