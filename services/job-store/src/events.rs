//! The lifecycle events this store writes to the outbox, built from generated contract types.
//!
//! Every event gets a fresh `eventId` (consumers deduplicate on it) and an `idempotencyKey`
//! naming the state change it announces (`<jobId>:started:<attempt>`, ...), so that the same
//! change announced twice is recognised even under different event ids.

use std::fmt::Display;
use std::num::NonZeroU64;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::contracts::dead_letter::DeadLetterReason;
use crate::contracts::event_envelope::{ContractVersion, EventId, EventProducer, IdempotencyKey};
use crate::contracts::job::{Job, JobError};
use crate::contracts::{job_completed, job_dead_lettered, job_failed, job_started};
use crate::error::{Result, StoreError};

/// One event ready for the outbox table.
#[derive(Debug, Clone)]
pub(crate) struct NewOutboxEvent {
    pub event_id: Uuid,
    pub routing_key: String,
    pub body: Value,
}

fn contract_error(what: &str, error: impl Display) -> StoreError {
    StoreError::Contract(format!("{what}: {error}"))
}

fn contract_version(version: &str) -> Result<ContractVersion> {
    version
        .parse()
        .map_err(|e| contract_error("contractVersion", e))
}

fn idempotency_key(key: String) -> Result<IdempotencyKey> {
    key.parse().map_err(|e| contract_error("idempotencyKey", e))
}

fn body(event: serde_json::Result<Value>) -> Result<Value> {
    event.map_err(|e| contract_error("serializing", e))
}

/// What every event of one store shares.
pub(crate) struct EventFactory<'a> {
    pub producer: &'a EventProducer,
    pub at: DateTime<Utc>,
}

impl EventFactory<'_> {
    pub fn started(&self, job: &Job, attempt: NonZeroU64, worker: &str) -> Result<NewOutboxEvent> {
        let event = job_started::JobStarted {
            contract_version: contract_version(job_started::VERSION)?,
            event_type: job_started::JobStartedEventType::JobStarted,
            event_id: EventId(Uuid::new_v4()),
            occurred_at: self.at,
            producer: self.producer.clone(),
            correlation_id: job.correlation_id.clone(),
            idempotency_key: idempotency_key(format!("{}:started:{attempt}", job.id))?,
            payload: job_started::JobStartedPayload {
                job_id: job.id,
                type_: job.type_.clone(),
                attempt,
                max_attempts: job.max_attempts,
                started_at: self.at,
                worker: Some(worker.to_owned()),
            },
        };
        Ok(NewOutboxEvent {
            event_id: event.event_id.0,
            routing_key: event.event_type.to_string(),
            body: body(serde_json::to_value(&event))?,
        })
    }

    pub fn completed(
        &self,
        job: &Job,
        attempt: NonZeroU64,
        result: Map<String, Value>,
        duration_ms: f64,
    ) -> Result<NewOutboxEvent> {
        let event = job_completed::JobCompleted {
            contract_version: contract_version(job_completed::VERSION)?,
            event_type: job_completed::JobCompletedEventType::JobCompleted,
            event_id: EventId(Uuid::new_v4()),
            occurred_at: self.at,
            producer: self.producer.clone(),
            correlation_id: job.correlation_id.clone(),
            idempotency_key: idempotency_key(format!("{}:completed", job.id))?,
            payload: job_completed::JobCompletedPayload {
                job_id: job.id,
                type_: job.type_.clone(),
                attempt,
                completed_at: self.at,
                duration_ms,
                result,
            },
        };
        Ok(NewOutboxEvent {
            event_id: event.event_id.0,
            routing_key: event.event_type.to_string(),
            body: body(serde_json::to_value(&event))?,
        })
    }

    /// `job` is the job after the failure (its status, next attempt and last error).
    pub fn failed(
        &self,
        job: &Job,
        attempt: NonZeroU64,
        error: JobError,
        duration_ms: f64,
    ) -> Result<NewOutboxEvent> {
        let event = job_failed::JobFailed {
            contract_version: contract_version(job_failed::VERSION)?,
            event_type: job_failed::JobFailedEventType::JobFailed,
            event_id: EventId(Uuid::new_v4()),
            occurred_at: self.at,
            producer: self.producer.clone(),
            correlation_id: job.correlation_id.clone(),
            idempotency_key: idempotency_key(format!("{}:failed:{attempt}", job.id))?,
            payload: job_failed::JobFailedPayload {
                job_id: job.id,
                type_: job.type_.clone(),
                attempt,
                max_attempts: job.max_attempts,
                error,
                will_retry: job.next_attempt_at.is_some(),
                next_attempt_at: job.next_attempt_at,
                job_status: job.status,
                failed_at: self.at,
                duration_ms: Some(duration_ms),
            },
        };
        Ok(NewOutboxEvent {
            event_id: event.event_id.0,
            routing_key: event.event_type.to_string(),
            body: body(serde_json::to_value(&event))?,
        })
    }

    /// The dead-lettering is caused by the final failure, committed in the same transaction;
    /// it is stamped one millisecond later so that every store that keeps only milliseconds
    /// (MongoDB, JavaScript) still orders the timeline failure first.
    pub fn dead_lettered(&self, job: &Job) -> Result<NewOutboxEvent> {
        let at = self.at + chrono::TimeDelta::milliseconds(1);
        let event = job_dead_lettered::JobDeadLettered {
            contract_version: contract_version(job_dead_lettered::VERSION)?,
            event_type: job_dead_lettered::JobDeadLetteredEventType::JobDeadLettered,
            event_id: EventId(Uuid::new_v4()),
            occurred_at: at,
            producer: self.producer.clone(),
            correlation_id: job.correlation_id.clone(),
            idempotency_key: idempotency_key(format!("{}:dead-lettered", job.id))?,
            payload: job_dead_lettered::JobDeadLetteredPayload {
                job_id: job.id,
                type_: job.type_.clone(),
                attempts: job.attempts,
                reason: DeadLetterReason::AttemptsExhausted,
                last_error: job.last_error.clone(),
                dead_lettered_at: at,
            },
        };
        Ok(NewOutboxEvent {
            event_id: event.event_id.0,
            routing_key: event.event_type.to_string(),
            body: body(serde_json::to_value(&event))?,
        })
    }
}
