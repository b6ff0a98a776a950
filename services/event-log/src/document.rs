//! The MongoDB adapter's stored form of an event: the envelope's JSON turned into BSON field
//! by field (no extended-JSON interpretation, so a payload key such as `$date` stays a plain
//! key), with `_id`, `jobId`, a BSON-date `occurredAt` and the sub-millisecond remainder added.

use chrono::{DateTime, SecondsFormat, Utc};
use mongodb::bson::{self, Bson, Document};
use serde_json::{Map, Number, Value};

use crate::contracts::event_envelope::EventEnvelope;

/// Nanoseconds of `occurredAt` below the millisecond; stored only when non-zero.
pub(crate) const SUB_MILLIS_FIELD: &str = "occurredAtSubMillisNanos";
const OCCURRED_AT: &str = "occurredAt";
const JOB_ID: &str = "jobId";

#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("at {path}: the integer {value} does not fit a BSON int64")]
    IntegerOutOfRange { path: String, value: String },
    #[error("at {path}: unexpected BSON type {found:?}")]
    UnexpectedBson {
        path: String,
        found: bson::spec::ElementType,
    },
    #[error("field {0} is missing")]
    Missing(&'static str),
    #[error("the occurredAt instant is outside the range of BSON dates")]
    DateOutOfRange,
    #[error("the envelope does not serialize as a JSON object")]
    NotAnObject,
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// The stored bytes are not a well-formed BSON document.
    #[error("malformed BSON: {0}")]
    Bson(#[from] bson::raw::Error),
}

/// The document stored for `event`.
pub(crate) fn to_document(event: &EventEnvelope) -> Result<Document, DocumentError> {
    let Value::Object(fields) = serde_json::to_value(event)? else {
        return Err(DocumentError::NotAnObject);
    };
    let mut document = Document::new();
    document.insert("_id", event.event_id.0.to_string());
    for (key, value) in fields {
        if key == OCCURRED_AT {
            continue;
        }
        let converted = json_to_bson(&value, &key)?;
        document.insert(key, converted);
    }
    let occurred_at = event.occurred_at;
    let millis = occurred_at.timestamp_millis();
    let back =
        DateTime::<Utc>::from_timestamp_millis(millis).ok_or(DocumentError::DateOutOfRange)?;
    document.insert(
        OCCURRED_AT,
        Bson::DateTime(bson::DateTime::from_millis(millis)),
    );
    let sub_millis = (occurred_at - back).num_nanoseconds().unwrap_or(0);
    if sub_millis != 0 {
        document.insert(SUB_MILLIS_FIELD, sub_millis);
    }
    if let Some(job_id) = crate::job_id_of(event) {
        document.insert(JOB_ID, job_id.to_string());
    }
    Ok(document)
}

/// The envelope a stored document holds.
pub(crate) fn from_document(mut document: Document) -> Result<EventEnvelope, DocumentError> {
    document.remove("_id");
    document.remove(JOB_ID);
    let sub_millis = match document.remove(SUB_MILLIS_FIELD) {
        None => 0,
        Some(Bson::Int64(n)) => n,
        Some(Bson::Int32(n)) => i64::from(n),
        Some(other) => {
            return Err(DocumentError::UnexpectedBson {
                path: SUB_MILLIS_FIELD.to_string(),
                found: other.element_type(),
            });
        }
    };
    let occurred_at = match document.remove(OCCURRED_AT) {
        Some(Bson::DateTime(date)) => {
            DateTime::<Utc>::from_timestamp_millis(date.timestamp_millis())
                .ok_or(DocumentError::DateOutOfRange)?
                + chrono::Duration::nanoseconds(sub_millis)
        }
        Some(other) => {
            return Err(DocumentError::UnexpectedBson {
                path: OCCURRED_AT.to_string(),
                found: other.element_type(),
            });
        }
        None => return Err(DocumentError::Missing(OCCURRED_AT)),
    };
    let mut fields = document_to_json(document, "")?;
    fields.insert(
        OCCURRED_AT.to_string(),
        Value::String(occurred_at.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
    );
    Ok(serde_json::from_value(Value::Object(fields))?)
}

fn json_to_bson(value: &Value, path: &str) -> Result<Bson, DocumentError> {
    Ok(match value {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(*b),
        Value::Number(n) => number_to_bson(n, path)?,
        Value::String(s) => Bson::String(s.clone()),
        Value::Array(items) => Bson::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| json_to_bson(item, &format!("{path}/{i}")))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(fields) => {
            let mut document = Document::new();
            for (key, item) in fields {
                document.insert(key.clone(), json_to_bson(item, &format!("{path}/{key}"))?);
            }
            Bson::Document(document)
        }
    })
}

fn number_to_bson(number: &Number, path: &str) -> Result<Bson, DocumentError> {
    if let Some(i) = number.as_i64() {
        Ok(Bson::Int64(i))
    } else if number.is_u64() {
        // A positive integer beyond i64: BSON has no exact representation.
        Err(DocumentError::IntegerOutOfRange {
            path: path.to_string(),
            value: number.to_string(),
        })
    } else if let Some(f) = number.as_f64() {
        Ok(Bson::Double(f))
    } else {
        Err(DocumentError::IntegerOutOfRange {
            path: path.to_string(),
            value: number.to_string(),
        })
    }
}

fn document_to_json(document: Document, path: &str) -> Result<Map<String, Value>, DocumentError> {
    let mut fields = Map::new();
    for (key, value) in document {
        let item_path = format!("{path}/{key}");
        fields.insert(key, bson_to_json(value, &item_path)?);
    }
    Ok(fields)
}

fn bson_to_json(value: Bson, path: &str) -> Result<Value, DocumentError> {
    let unexpected = |found: bson::spec::ElementType| DocumentError::UnexpectedBson {
        path: path.to_string(),
        found,
    };
    Ok(match value {
        Bson::Null => Value::Null,
        Bson::Boolean(b) => Value::Bool(b),
        Bson::Int32(i) => Value::from(i),
        Bson::Int64(i) => Value::from(i),
        Bson::Double(f) => Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| unexpected(bson::spec::ElementType::Double))?,
        Bson::String(s) => Value::String(s),
        Bson::Array(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| bson_to_json(item, &format!("{path}/{i}")))
                .collect::<Result<_, _>>()?,
        ),
        Bson::Document(document) => Value::Object(document_to_json(document, path)?),
        other => return Err(unexpected(other.element_type())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(occurred_at: &str) -> EventEnvelope {
        serde_json::from_value(serde_json::json!({
            "contractVersion": "1.0.0", "eventType": "job.completed",
            "eventId": "a8d4f6b2-9e1c-4a3b-8f5d-6c2e0b7a9d31", "occurredAt": occurred_at,
            "producer": {"service": "processor", "instanceId": "processor-1", "version": "1.4.2"},
            "correlationId": "req-1", "idempotencyKey": "e3a9c5d1-6b2f-4f7a-8c0e-1d5b9a2f4e83:completed",
            "payload": {"jobId": "E3A9C5D1-6B2F-4F7A-8C0E-1D5B9A2F4E83", "type": "compute", "attempt": 2,
                "completedAt": "2026-11-23T12:00:04.500Z", "durationMs": 812.0,
                "result": {"$date": "not a date", "nested": [1, -2, 3.5, null, true, {"a": "b"}]}}
        }))
        .expect("a valid EventEnvelope")
    }

    #[test]
    fn documents_round_trip_with_nanosecond_instants() {
        for instant in [
            "2026-11-23T12:00:04.500Z",
            "2026-11-23T12:00:04.123456789Z",
            "1969-12-31T23:59:59.999999999Z",
        ] {
            let original = event(instant);
            let document = to_document(&original).expect("storable");
            assert!(matches!(document.get(OCCURRED_AT), Some(Bson::DateTime(_))));
            assert_eq!(
                document.get_str(JOB_ID).ok(),
                Some("e3a9c5d1-6b2f-4f7a-8c0e-1d5b9a2f4e83")
            );
            assert_eq!(
                from_document(document).expect("readable"),
                original,
                "{instant}"
            );
        }
    }

    #[test]
    fn integers_beyond_int64_are_refused() {
        let mut original = event("2026-11-23T12:00:04.500Z");
        original
            .payload
            .insert("huge".into(), serde_json::json!(u64::MAX));
        assert!(matches!(
            to_document(&original),
            Err(DocumentError::IntegerOutOfRange { .. })
        ));
    }
}
