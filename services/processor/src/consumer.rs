//! The consumer of `<prefix>.jobs`: turns each job.created message into a stored job and runs
//! its first attempt; dead-letters what cannot be a job.
//!
//! A message is acknowledged only once its effect is in PostgreSQL (the job accepted and its
//! attempt's end recorded, or the dead letter stored and published). While PostgreSQL is
//! unavailable, messages are requeued after a short pause, never acknowledged.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use observatory_job_store::{JobStore, StoreError};
use observatory_messaging::{
    BrokerError, Delivery, MessageBroker, MessageMeta, Publisher, REASON_HEADER, Topology,
    next_delivery,
};
use observatory_runtime::shutdown::CancellationToken;
use observatory_validation::ContractValidator;
use serde_json::Value;
use tokio::sync::OwnedSemaphorePermit;
use uuid::Uuid;

use crate::contracts::dead_letter::{DeadLetter, DeadLetterReason};
use crate::contracts::event_envelope::CorrelationId;
use crate::contracts::job::JobStatus;
use crate::contracts::job_created::JobCreated;
use crate::fairness::Admission;
use crate::metrics::ProcessorMetrics;
use crate::runner::{JobRunner, RunOutcome};

/// Header naming the consumer that dead-lettered a message.
pub const SOURCE_HEADER: &str = "x-observatory-source";
/// How long a message waits before it is requeued while PostgreSQL is unavailable.
const REQUEUE_PAUSE: Duration = Duration::from_millis(500);
/// Most schema violations quoted in a dead letter's message.
const MAX_VIOLATIONS_QUOTED: usize = 20;

/// What the consumer needs besides the broker.
pub(crate) struct JobConsumer {
    pub runner: Arc<JobRunner>,
    pub store: Arc<dyn JobStore>,
    pub metrics: ProcessorMetrics,
    pub topology: Topology,
    pub job_created: Arc<ContractValidator>,
    pub prefetch: u16,
}

/// What to do with a delivery once handled.
enum Disposition {
    Ack,
    /// Put it back: its effect could not be stored now.
    Requeue(String),
}

/// A message that cannot become a job.
struct Poison {
    reason: DeadLetterReason,
    message: String,
    parsed: Option<Value>,
}

impl JobConsumer {
    /// Consumes until `stop` fires (`Ok`) or the broker connection fails (`Err`). Returns as
    /// soon as no new delivery will be taken; deliveries being handled finish in their own
    /// tasks, each holding a permit of the runner's semaphore.
    pub async fn consume(
        self: &Arc<Self>,
        broker: &dyn MessageBroker,
        stop: &CancellationToken,
    ) -> Result<(), BrokerError> {
        let dead_letters = broker.publisher(Duration::from_secs(10)).await?;
        let tag = format!("{}-{}", self.runner.worker, Uuid::new_v4().simple());
        let mut consumer = broker
            .consume(&self.topology.jobs_queue(), &tag, self.prefetch)
            .await?;
        tracing::info!(queue = %self.topology.jobs_queue(), prefetch = self.prefetch, "consuming jobs");
        loop {
            // Take a delivery only when a job slot is free: prefetch bounds what the broker
            // sends ahead, the semaphore bounds what runs.
            let permit = tokio::select! {
                permit = self.runner.permits.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => return Ok(()),
                },
                _ = stop.cancelled() => return Ok(()),
            };
            match next_delivery(&mut consumer, stop).await {
                None if stop.is_cancelled() => return Ok(()),
                None => return Err(BrokerError::NotConnected),
                Some(Err(error)) => return Err(error),
                Some(Ok(delivery)) => {
                    let this = self.clone();
                    let dead_letters = dead_letters.clone();
                    let stop = stop.clone();
                    tokio::spawn(async move {
                        this.handle(delivery, &dead_letters, &stop, permit).await;
                    });
                }
            }
        }
    }

    async fn handle(
        &self,
        delivery: Delivery,
        dead_letters: &Publisher,
        stop: &CancellationToken,
        permit: OwnedSemaphorePermit,
    ) {
        let mut permit = Some(permit);
        let disposition = self
            .process(&delivery, dead_letters, &mut permit, stop)
            .await;
        drop(permit);
        let settled = match disposition {
            Disposition::Ack => delivery.ack().await,
            Disposition::Requeue(why) => {
                tracing::warn!(why, "requeueing the message");
                tokio::select! {
                    _ = tokio::time::sleep(REQUEUE_PAUSE) => {}
                    _ = stop.cancelled() => {}
                }
                delivery.nack(true).await
            }
        };
        if let Err(error) = settled {
            // The channel is gone; the broker redelivers the message, and redelivery is harmless.
            tracing::warn!(%error, "could not settle a delivery; it will be redelivered");
        }
    }

    /// Stores the job and runs its first attempt under `job_slot` and a slot of its type, or
    /// parks it (stored, so the message is acknowledged) until its type has a free slot.
    async fn process(
        &self,
        delivery: &Delivery,
        dead_letters: &Publisher,
        job_slot: &mut Option<OwnedSemaphorePermit>,
        stop: &CancellationToken,
    ) -> Disposition {
        let created = match self.read_job_created(&delivery.data) {
            Ok(created) => created,
            Err(poison) => return self.dead_letter(delivery, poison, dead_letters).await,
        };
        let job_id = created.payload.job_id;
        let correlation_id = created.correlation_id.as_str();
        let accepted = match self.store.accept(&created).await {
            Ok(accepted) => accepted,
            Err(error @ StoreError::Database(_)) => {
                return Disposition::Requeue(format!("accepting job {job_id}: {error}"));
            }
            Err(error) => {
                // The message itself cannot be stored (e.g. a NUL inside the payload).
                let poison = Poison {
                    reason: DeadLetterReason::SchemaViolation,
                    message: format!("the job cannot be stored: {error}"),
                    parsed: serde_json::from_slice(&delivery.data).ok(),
                };
                return self.dead_letter(delivery, poison, dead_letters).await;
            }
        };
        tracing::info!(%job_id, correlation_id, new = accepted.is_new(), redelivered = delivery.redelivered, "job.created received");
        if !accepted.is_new() && accepted.job().status != JobStatus::Pending {
            // A redelivery of a job that already started: its retries are the scheduler's,
            // and a finished job has nothing left to run. Not parked: it would only hold a
            // place in the queue of its type.
            tracing::info!(%job_id, correlation_id, status = %accepted.job().status, "nothing to run: the job already started");
            return Disposition::Ack;
        }
        let Some(claim) = self.runner.claims.try_claim(job_id) else {
            // Stored, and this process is already running or has parked it.
            return Disposition::Ack;
        };
        let job_type = created.payload.type_.as_str();
        let (type_slot, _claim) = match self.runner.types.admit(job_type, job_id, claim) {
            Admission::Now(slot, claim) => (slot, claim),
            Admission::Parked => {
                self.metrics.jobs_parked.inc();
                tracing::info!(%job_id, job_type, "its type is at its concurrency limit: parked until a slot frees up");
                return Disposition::Ack;
            }
            Admission::Full(claim) => {
                // Wait for the type's slot without holding a job slot meanwhile.
                *job_slot = None;
                let slots = async {
                    let slot = self.runner.types.slot(job_type).await?;
                    let job = self.runner.permits.clone().acquire_owned().await.ok()?;
                    Some((slot, job))
                };
                let (type_slot, job) = tokio::select! {
                    slots = slots => match slots {
                        Some(slots) => slots,
                        None => return Disposition::Requeue("stopping".into()),
                    },
                    () = stop.cancelled() => return Disposition::Requeue("stopping".into()),
                };
                *job_slot = Some(job);
                (type_slot, claim)
            }
        };
        let ran = self.runner.run_next_attempt(job_id).await;
        drop(type_slot);
        match ran {
            Ok(RunOutcome::NothingToRun) => {
                tracing::info!(%job_id, correlation_id, status = %accepted.job().status, "nothing to run: the job is already running, waiting for a retry, or finished");
                Disposition::Ack
            }
            Ok(_) => Disposition::Ack,
            Err(error @ StoreError::Database(_)) => {
                Disposition::Requeue(format!("running job {job_id}: {error}"))
            }
            Err(error) => {
                // Not transient: requeueing would loop. The job's state in PostgreSQL is what
                // counts; an attempt left RUNNING is taken over when its lease runs out.
                tracing::error!(%job_id, correlation_id, %error, "the job store refused a write; acknowledging");
                Disposition::Ack
            }
        }
    }

    /// Parses, validates and deserializes a job.created message.
    fn read_job_created(&self, body: &[u8]) -> Result<JobCreated, Poison> {
        let value: Value = serde_json::from_slice(body).map_err(|e| Poison {
            reason: DeadLetterReason::MalformedJson,
            message: format!("the message is not JSON: {e}"),
            parsed: None,
        })?;
        if let Err(violations) = self.job_created.validate(&value) {
            let quoted: Vec<String> = violations
                .iter()
                .take(MAX_VIOLATIONS_QUOTED)
                .map(ToString::to_string)
                .collect();
            let more = violations.len().saturating_sub(MAX_VIOLATIONS_QUOTED);
            let mut message = format!(
                "the message does not match {}: {}",
                self.job_created.info().path,
                quoted.join("; ")
            );
            if more > 0 {
                message.push_str(&format!(" (and {more} more)"));
            }
            return Err(Poison {
                reason: DeadLetterReason::SchemaViolation,
                message,
                parsed: Some(value),
            });
        }
        serde_json::from_value(value.clone()).map_err(|e| Poison {
            reason: DeadLetterReason::SchemaViolation,
            message: format!("the message does not fit the JobCreated type: {e}"),
            parsed: Some(value),
        })
    }

    /// Stores the dead letter, publishes the message to the dead-letter exchange with its
    /// reason, then acknowledges. Requeues when either cannot be done now.
    async fn dead_letter(
        &self,
        delivery: &Delivery,
        poison: Poison,
        dead_letters: &Publisher,
    ) -> Disposition {
        let letter = dead_letter_for(delivery, &poison, &self.topology.jobs_queue());
        let reason = letter.reason.to_string();
        tracing::warn!(%reason, detail = %poison.message, job_id = ?letter.job_id, correlation_id = ?letter.correlation_id.as_deref(), "dead-lettering a message");
        match self.store.record_dead_letter(&letter).await {
            Ok(true) => self
                .metrics
                .dead_letters
                .with_label_values(&[reason.as_str()])
                .inc(),
            Ok(false) => {
                tracing::info!(id = %letter.id, "dead letter already recorded (redelivery)")
            }
            Err(error @ StoreError::Database(_)) => {
                return Disposition::Requeue(format!("recording a dead letter: {error}"));
            }
            Err(error) => {
                // Cannot happen for a lossy-decoded body; still, never drop silently: the
                // broker's dead-letter queue keeps the message.
                tracing::error!(%error, "the dead letter cannot be stored; publishing it only");
            }
        }
        let meta = MessageMeta {
            message_id: Some(letter.id.to_string()),
            correlation_id: letter.correlation_id.as_ref().map(|c| c.to_string()),
            headers: vec![
                (REASON_HEADER.to_owned(), reason.clone()),
                (SOURCE_HEADER.to_owned(), "processor".to_owned()),
            ],
        };
        if let Err(error) = dead_letters
            .publish(
                &self.topology.dead_letter_exchange(),
                "",
                &delivery.data,
                &meta,
            )
            .await
        {
            return Disposition::Requeue(format!("publishing a dead letter: {error}"));
        }
        Disposition::Ack
    }
}

/// Namespace of dead-letter ids derived from a message's identity.
const DEAD_LETTER_NAMESPACE: Uuid = Uuid::from_u128(0x6f62_7365_7276_6174_6f72_792d_646c_7121);

/// The dead letter of a poison message. Its id is derived from the message's identity (its
/// `message_id`, else its `eventId`) when it has one, so a redelivered message records the
/// same dead letter once; an anonymous message gets a random id.
fn dead_letter_for(delivery: &Delivery, poison: &Poison, queue: &str) -> DeadLetter {
    let parsed = poison.parsed.as_ref();
    let text = |pointer: &str| {
        parsed
            .and_then(|v| v.pointer(pointer))
            .and_then(Value::as_str)
    };
    let uuid_at = |pointer: &str| text(pointer).and_then(|s| Uuid::try_parse(s).ok());
    let message_id = delivery.meta.message_id.clone();
    let event_id = uuid_at("/eventId");
    let identity = message_id
        .map(|id| format!("message-id:{id}"))
        .or_else(|| event_id.map(|id| format!("event-id:{id}")));
    let id = identity.map_or_else(Uuid::new_v4, |identity| {
        Uuid::new_v5(
            &DEAD_LETTER_NAMESPACE,
            format!("{queue}\n{identity}").as_bytes(),
        )
    });
    let correlation_id = text("/correlationId")
        .and_then(|c| CorrelationId::try_from(c).ok())
        .or_else(|| {
            delivery
                .meta
                .correlation_id
                .as_deref()
                .and_then(|c| CorrelationId::try_from(c).ok())
        });
    DeadLetter {
        id,
        source: "processor".to_owned(),
        queue: Some(queue.to_owned()),
        reason: poison.reason,
        message: Some(poison.message.clone()),
        job_id: uuid_at("/payload/jobId"),
        event_id,
        attempts: None,
        received_at: Utc::now(),
        raw_body: String::from_utf8_lossy(&delivery.data).into_owned(),
        correlation_id,
    }
}
