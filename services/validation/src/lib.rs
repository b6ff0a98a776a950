//! Validates JSON values against the contract schemas, using the bundled (self-contained)
//! schema documents that `observatory-contracts` embeds. Every service checks what it receives
//! with this before deserializing into a generated type: the generated types cannot express
//! every constraint (typify drops numeric maxima, `minItems`, `uniqueItems`, ...), the schema
//! can.
//!
//! Draft-07 has no `uuid` format, and jsonschema would silently accept anything under it;
//! this crate registers one so that `format: uuid` means what the schemas say. Likewise the
//! contracts' `x-limits` keyword ([`observatory_value_limits`]: depth, size, string lengths, NUL
//! and integer range of a free-form value) is registered as a keyword, so a value beyond a
//! limit is a violation with the pointer of the part that is beyond it.

use jsonschema::{Keyword, ValidationError};
use observatory_contracts::SchemaInfo;
use observatory_value_limits::ValueLimits;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// A schema could not be compiled (a defect in the contracts, caught by this crate's tests).
#[derive(Debug, thiserror::Error)]
#[error("schema {path} does not compile: {message}")]
pub struct SchemaError {
    pub path: &'static str,
    pub message: String,
}

/// One reason an instance is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer to the offending part of the instance ("" for the whole document).
    pub pointer: String,
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pointer = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(f, "{pointer}: {}", self.message)
    }
}

/// A compiled schema.
pub struct ContractValidator {
    info: SchemaInfo,
    validator: jsonschema::Validator,
}

impl ContractValidator {
    /// Compiles the embedded schema of `info`.
    pub fn new(info: SchemaInfo) -> Result<Self, SchemaError> {
        let error = |message: String| SchemaError {
            path: info.path,
            message,
        };
        let schema: Value = serde_json::from_str(info.schema).map_err(|e| error(e.to_string()))?;
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft7)
            .should_validate_formats(true)
            .with_format("uuid", |s: &str| uuid::Uuid::try_parse(s).is_ok())
            .with_keyword(observatory_value_limits::KEYWORD, |_, value, _| {
                ValueLimits::parse(value)
                    .map(|limits| Box::new(LimitsKeyword(limits)) as Box<dyn for<'i> Keyword<'i>>)
                    .map_err(ValidationError::schema)
            })
            .build(&schema)
            .map_err(|e| error(e.to_string()))?;
        Ok(Self { info, validator })
    }

    /// Compiles the schema whose module is called `name` (e.g. `job_submission`).
    pub fn by_name(name: &str) -> Option<Result<Self, SchemaError>> {
        observatory_contracts::SCHEMAS
            .iter()
            .find(|s| s.name == name)
            .map(|info| Self::new(*info))
    }

    /// The compiled validator of `info`, compiled once per process and shared.
    pub fn cached(info: SchemaInfo) -> Result<Arc<Self>, SchemaError> {
        static CACHE: OnceLock<Mutex<HashMap<&'static str, Arc<ContractValidator>>>> =
            OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        if let Some(v) = cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(info.name)
        {
            return Ok(v.clone());
        }
        let compiled = Arc::new(Self::new(info)?);
        cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(info.name, compiled.clone());
        Ok(compiled)
    }

    /// The validator of the schema a generated type came from.
    pub fn for_type<T: observatory_contracts::Contract>() -> Result<Arc<Self>, SchemaError> {
        Self::cached(T::SCHEMA)
    }

    pub fn info(&self) -> &SchemaInfo {
        &self.info
    }

    pub fn is_valid(&self, instance: &Value) -> bool {
        self.validator.is_valid(instance)
    }

    /// Every violation, in the order the validator reports them.
    pub fn validate(&self, instance: &Value) -> Result<(), Vec<Violation>> {
        let violations: Vec<Violation> = self
            .validator
            .iter_errors(instance)
            .map(|e| {
                let mut pointer = e.instance_path().as_str().to_owned();
                let mut message = e.to_string();
                // A limit names the part of the value beyond it, below the keyword's instance.
                if let jsonschema::error::ValidationErrorKind::Custom {
                    keyword,
                    message: m,
                } = e.kind()
                    && keyword == observatory_value_limits::KEYWORD
                    && let Some((below, text)) = split_limit_message(m)
                {
                    pointer.push_str(below);
                    message = text.to_owned();
                }
                Violation { pointer, message }
            })
            .collect();
        if violations.is_empty() {
            Ok(())
        } else {
            Err(violations)
        }
    }
}

/// Separates the length of the pointer below the keyword's instance from the pointer and the
/// message in a limit's error: `{length}\u{1f}{pointer}{message}`. The pointer holds the
/// submitted keys, whatever they contain, so it is measured rather than delimited.
const POINTER_LENGTH_END: char = '\u{1f}';

fn limit_message(pointer: &str, message: &str) -> String {
    format!("{}{POINTER_LENGTH_END}{pointer}{message}", pointer.len())
}

/// The pointer and the message of a limit's error (see [`limit_message`]).
fn split_limit_message(m: &str) -> Option<(&str, &str)> {
    let (length, rest) = m.split_once(POINTER_LENGTH_END)?;
    let length: usize = length.parse().ok()?;
    (rest.is_char_boundary(length)).then(|| rest.split_at(length))
}

/// `x-limits` as a jsonschema keyword.
struct LimitsKeyword(ValueLimits);

impl<'i> Keyword<'i> for LimitsKeyword {
    fn validate(&self, instance: &'i Value) -> Result<(), ValidationError<'i>> {
        self.0
            .check(instance)
            .map_err(|v| ValidationError::custom(limit_message(&v.pointer, &v.message)))
    }

    fn is_valid(&self, instance: &'i Value) -> bool {
        self.0.check(instance).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_limit_names_keys_holding_the_separator_exactly() {
        let v = ContractValidator::by_name("job_submission")
            .unwrap()
            .unwrap();
        let key = "a\u{1f}b".repeat(100);
        let errors = v
            .validate(&json!({"type": "other", "payload": {key.clone(): 1}}))
            .unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].pointer, format!("/payload/{key}"));
        assert!(!errors[0].message.contains('\u{1f}'), "{errors:?}");
    }

    #[test]
    fn every_embedded_schema_compiles() {
        for info in observatory_contracts::SCHEMAS {
            ContractValidator::new(*info).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[test]
    fn uuid_format_is_enforced_and_violations_carry_pointers() {
        let v = ContractValidator::by_name("job_submission")
            .unwrap()
            .unwrap();
        let errors = v
            .validate(&json!({"type": "sleep", "jobId": "not-a-uuid", "maxAttempts": 0}))
            .unwrap_err();
        let pointers: Vec<_> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert!(pointers.contains(&"/jobId"), "{errors:?}");
        assert!(pointers.contains(&"/maxAttempts"), "{errors:?}");
        assert!(
            v.is_valid(&json!({"type": "sleep", "jobId": "0b4bd3a4-94b4-4b4e-9a35-3a1d6f6c9d11"}))
        );
    }
}
