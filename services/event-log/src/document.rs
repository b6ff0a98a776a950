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

/// MongoDB stores documents nested at most this deep, the stored document itself counting as
/// the first level (MongoDB's documented limit: "no more than 100 levels of nesting").
pub const MAX_NESTING: usize = 100;
/// MongoDB's largest document, in BSON bytes (16 MiB).
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("at {path}: nested deeper than MongoDB's {MAX_NESTING} levels")]
    TooDeep { path: String },
    #[error("at {path}: a key holds a NUL character, which BSON cannot represent")]
    NulInKey { path: String },
    #[error("the document takes {bytes} BSON bytes, beyond MongoDB's {MAX_DOCUMENT_BYTES}")]
    TooLarge { bytes: usize },
    /// The server refused the document with an error that MongoDB documents as a property of
    /// the document (retrying cannot help).
    #[error("MongoDB refused the document (code {code}): {message}")]
    Refused { code: i32, message: String },
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
        let converted = json_to_bson(&value, &Path::Key(&Path::Root, &key), 1)?;
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
    let bytes = encoded_len(&document);
    if bytes > MAX_DOCUMENT_BYTES {
        return Err(DocumentError::TooLarge { bytes });
    }
    Ok(document)
}

/// The BSON size of `document`, computed without encoding it.
fn encoded_len(document: &Document) -> usize {
    fn element(key_len: usize, value: &Bson) -> usize {
        1 + key_len + 1 + value_len(value)
    }
    fn value_len(value: &Bson) -> usize {
        match value {
            Bson::Null | Bson::Undefined | Bson::MinKey | Bson::MaxKey => 0,
            Bson::Boolean(_) => 1,
            Bson::Int32(_) => 4,
            Bson::String(s) => 4 + s.len() + 1,
            Bson::Document(d) => encoded_len(d),
            Bson::Array(items) => {
                4 + items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| element(decimal_len(i), item))
                    .sum::<usize>()
                    + 1
            }
            // Int64, Double, DateTime and the rest this module never writes: 8 bytes or more;
            // an estimate is enough for those.
            _ => 8,
        }
    }
    fn decimal_len(mut n: usize) -> usize {
        let mut digits = 1;
        while n >= 10 {
            n /= 10;
            digits += 1;
        }
        digits
    }
    4 + document
        .iter()
        .map(|(key, value)| element(key.len(), value))
        .sum::<usize>()
        + 1
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
    let mut fields = document_to_json(document, &Path::Root)?;
    fields.insert(
        OCCURRED_AT.to_string(),
        Value::String(occurred_at.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
    );
    Ok(serde_json::from_value(Value::Object(fields))?)
}

/// Where a value sits in a document: rendered as a JSON pointer only when an error names it,
/// so converting a deep document costs no string per level.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl std::fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Root => Ok(()),
            Self::Key(parent, key) => write!(f, "{parent}/{key}"),
            Self::Index(parent, index) => write!(f, "{parent}/{index}"),
        }
    }
}

/// `value` converted, as a field of a document at nesting level `level`.
fn json_to_bson(value: &Value, path: &Path<'_>, level: usize) -> Result<Bson, DocumentError> {
    if matches!(value, Value::Array(_) | Value::Object(_)) && level + 1 > MAX_NESTING {
        return Err(DocumentError::TooDeep {
            path: path.to_string(),
        });
    }
    Ok(match value {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(*b),
        Value::Number(n) => number_to_bson(n, path)?,
        Value::String(s) => Bson::String(s.clone()),
        Value::Array(items) => Bson::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| json_to_bson(item, &Path::Index(path, i), level + 1))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(fields) => {
            let mut document = Document::new();
            for (key, item) in fields {
                let item_path = Path::Key(path, key);
                if key.contains('\0') {
                    return Err(DocumentError::NulInKey {
                        path: item_path.to_string(),
                    });
                }
                document.insert(key.clone(), json_to_bson(item, &item_path, level + 1)?);
            }
            Bson::Document(document)
        }
    })
}

fn number_to_bson(number: &Number, path: &Path<'_>) -> Result<Bson, DocumentError> {
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

fn document_to_json(
    document: Document,
    path: &Path<'_>,
) -> Result<Map<String, Value>, DocumentError> {
    let mut fields = Map::new();
    for (key, value) in document {
        let converted = bson_to_json(value, &Path::Key(path, &key))?;
        fields.insert(key, converted);
    }
    Ok(fields)
}

fn bson_to_json(value: Bson, path: &Path<'_>) -> Result<Value, DocumentError> {
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
                .map(|(i, item)| bson_to_json(item, &Path::Index(path, i)))
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
