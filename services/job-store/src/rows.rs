//! Rows as PostgreSQL returns them, and their conversion to contract types. A row that does
//! not convert is reported as [`StoreError::CorruptRow`], never unwrapped.

use std::num::NonZeroU64;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::contracts::dead_letter::DeadLetter;
use crate::contracts::job::{Job, JobError};
use crate::contracts::job_attempt::JobAttempt;
use crate::error::{Result, StoreError};

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct JobRow {
    pub id: Uuid,
    #[sqlx(rename = "type")]
    pub job_type: String,
    pub status: String,
    pub payload: Value,
    pub attempts: i32,
    pub max_attempts: i32,
    /// Attempts that ran, interrupted ones included (the running one is number `runs`).
    pub runs: i32,
    pub correlation_id: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<Value>,
    pub result: Option<Value>,
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct JobAttemptRow {
    pub job_id: Uuid,
    pub attempt: i32,
    pub outcome: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<f64>,
    pub error: Option<Value>,
    pub worker: Option<String>,
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct DeadLetterRow {
    pub id: Uuid,
    pub source: String,
    pub queue: Option<String>,
    pub reason: String,
    pub message: Option<String>,
    pub job_id: Option<Uuid>,
    pub event_id: Option<Uuid>,
    pub attempts: Option<i32>,
    pub received_at: DateTime<Utc>,
    pub raw_body: Vec<u8>,
    pub correlation_id: Option<String>,
}

/// Builds the `CorruptRow` error of one row.
struct RowContext {
    table: &'static str,
    key: String,
}

impl RowContext {
    fn corrupt(&self, field: &str, reason: impl std::fmt::Display) -> StoreError {
        StoreError::CorruptRow {
            table: self.table,
            key: self.key.clone(),
            reason: format!("{field}: {reason}"),
        }
    }

    fn parse<T>(&self, field: &str, text: String) -> Result<T>
    where
        T: TryFrom<String>,
        T::Error: std::fmt::Display,
    {
        T::try_from(text).map_err(|e| self.corrupt(field, e))
    }

    fn object(&self, field: &str, value: Value) -> Result<Map<String, Value>> {
        match value {
            Value::Object(map) => Ok(map),
            other => Err(self.corrupt(field, format!("expected an object, found {other}"))),
        }
    }

    fn job_error(&self, field: &str, value: Value) -> Result<JobError> {
        serde_json::from_value(value).map_err(|e| self.corrupt(field, e))
    }

    fn count(&self, field: &str, n: i32) -> Result<u64> {
        u64::try_from(n).map_err(|e| self.corrupt(field, e))
    }

    fn ordinal(&self, field: &str, n: i32) -> Result<NonZeroU64> {
        u64::try_from(n)
            .ok()
            .and_then(NonZeroU64::new)
            .ok_or_else(|| self.corrupt(field, format!("{n} is not positive")))
    }
}

impl TryFrom<JobRow> for Job {
    type Error = StoreError;

    fn try_from(row: JobRow) -> Result<Self> {
        let cx = RowContext {
            table: "jobs",
            key: row.id.to_string(),
        };
        Ok(Job {
            id: row.id,
            type_: cx.parse("type", row.job_type)?,
            status: cx.parse("status", row.status)?,
            payload: cx.object("payload", row.payload)?,
            attempts: cx.count("attempts", row.attempts)?,
            max_attempts: cx.ordinal("max_attempts", row.max_attempts)?,
            correlation_id: cx.parse("correlation_id", row.correlation_id)?,
            created_at: row.created_at,
            updated_at: row.updated_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
            next_attempt_at: row.next_attempt_at,
            last_error: row
                .last_error
                .map(|e| cx.job_error("last_error", e))
                .transpose()?,
            result: row
                .result
                .map(|r| cx.object("result", r))
                .transpose()?
                .unwrap_or_default(),
        })
    }
}

impl TryFrom<JobAttemptRow> for JobAttempt {
    type Error = StoreError;

    fn try_from(row: JobAttemptRow) -> Result<Self> {
        let cx = RowContext {
            table: "job_attempts",
            key: format!("{}/{}", row.job_id, row.attempt),
        };
        Ok(JobAttempt {
            job_id: row.job_id,
            attempt: cx.ordinal("attempt", row.attempt)?,
            outcome: cx.parse("outcome", row.outcome)?,
            started_at: row.started_at,
            finished_at: row.finished_at,
            duration_ms: row.duration_ms,
            error: row.error.map(|e| cx.job_error("error", e)).transpose()?,
            worker: row.worker,
        })
    }
}

impl TryFrom<DeadLetterRow> for DeadLetter {
    type Error = StoreError;

    fn try_from(row: DeadLetterRow) -> Result<Self> {
        let cx = RowContext {
            table: "dead_letters",
            key: row.id.to_string(),
        };
        Ok(DeadLetter {
            id: row.id,
            source: row.source,
            queue: row.queue,
            reason: cx.parse("reason", row.reason)?,
            message: row.message,
            job_id: row.job_id,
            event_id: row.event_id,
            attempts: row.attempts.map(|n| cx.count("attempts", n)).transpose()?,
            received_at: row.received_at,
            raw_body: String::from_utf8(row.raw_body).map_err(|e| cx.corrupt("raw_body", e))?,
            correlation_id: row
                .correlation_id
                .map(|c| cx.parse("correlation_id", c))
                .transpose()?,
        })
    }
}
