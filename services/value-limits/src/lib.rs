//! The contracts' `x-limits` keyword: limits on a free-form JSON value (a job's `payload`) that
//! draft-07 cannot state, because they apply at every depth of the value: how deep it nests, how
//! large it is, how long its strings and keys are, whether they may hold NUL, and whether its
//! integers fit in 64 signed bits.
//!
//! They exist so that anything the gateway accepts can be stored by every adapter and read back
//! by every client: PostgreSQL's `jsonb` refuses `\u0000`; MongoDB refuses documents nested
//! beyond 100 levels, NUL in keys and integers beyond int64; serde_json (every Rust client)
//! stops at 128 levels, and the value is wrapped in an event and in list pages.
//!
//! One definition serves both sides of the contract: the validator enforces it (the services'
//! `observatory-validation` registers it as a jsonschema keyword) and the compatibility checker
//! compares it (a tighter limit narrows what a value may be).
//!
//! ```json
//! "payload": { "type": "object",
//!              "x-limits": { "maxDepth": 32, "maxBytes": 65536, "maxStringLength": 16384,
//!                            "maxKeyLength": 256, "noNul": true, "int64": true } }
//! ```

use serde_json::{Map, Value};
use std::fmt::Write as _;

/// The keyword's name in a schema.
pub const KEYWORD: &str = "x-limits";

/// The limits of one `x-limits` keyword. `None` / `false`: no limit of that kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ValueLimits {
    /// Levels of objects and arrays, the value itself being level 1 (a scalar has depth 0).
    pub max_depth: Option<u64>,
    /// Bytes of the value written as compact JSON, every number counted at its width in plain
    /// decimal notation (`1e300` as 301 digits: PostgreSQL's `jsonb` stores and returns numbers
    /// so, and a short exponent must not let a small request become a large row).
    pub max_bytes: Option<u64>,
    /// Characters (Unicode scalar values) of every string in the value.
    pub max_string_length: Option<u64>,
    /// Characters of every object key in the value.
    pub max_key_length: Option<u64>,
    /// No U+0000 in any string or key.
    pub no_nul: bool,
    /// Every integer lies in -2^63 ..= 2^63 - 1.
    pub int64: bool,
}

/// The first part of a value beyond a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitViolation {
    /// JSON pointer from the limited value to the offending part ("" for the value itself).
    pub pointer: String,
    pub message: String,
}

/// One limit of [`ValueLimits`], for the compatibility checker's reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    MaxDepth,
    MaxBytes,
    MaxStringLength,
    MaxKeyLength,
    NoNul,
    Int64,
}

impl Limit {
    pub const ALL: [Limit; 6] = [
        Limit::MaxDepth,
        Limit::MaxBytes,
        Limit::MaxStringLength,
        Limit::MaxKeyLength,
        Limit::NoNul,
        Limit::Int64,
    ];

    /// Whether it is on or off rather than a count.
    pub fn is_flag(self) -> bool {
        matches!(self, Limit::NoNul | Limit::Int64)
    }

    /// Its name inside the keyword.
    pub fn name(self) -> &'static str {
        match self {
            Limit::MaxDepth => "maxDepth",
            Limit::MaxBytes => "maxBytes",
            Limit::MaxStringLength => "maxStringLength",
            Limit::MaxKeyLength => "maxKeyLength",
            Limit::NoNul => "noNul",
            Limit::Int64 => "int64",
        }
    }
}

impl ValueLimits {
    /// Reads the keyword's value; anything but the six known members is an error.
    pub fn parse(value: &Value) -> Result<Self, String> {
        let Value::Object(members) = value else {
            return Err(format!("`{KEYWORD}` must be an object"));
        };
        let mut limits = ValueLimits::default();
        for (name, v) in members {
            let count = || {
                v.as_u64()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("`{KEYWORD}.{name}` must be a positive integer"))
            };
            let flag = || {
                v.as_bool()
                    .ok_or_else(|| format!("`{KEYWORD}.{name}` must be true or false"))
            };
            match name.as_str() {
                "maxDepth" => limits.max_depth = Some(count()?),
                "maxBytes" => limits.max_bytes = Some(count()?),
                "maxStringLength" => limits.max_string_length = Some(count()?),
                "maxKeyLength" => limits.max_key_length = Some(count()?),
                "noNul" => limits.no_nul = flag()?,
                "int64" => limits.int64 = flag()?,
                other => {
                    return Err(format!(
                        "`{KEYWORD}` has no member `{other}` (it knows maxDepth, maxBytes, \
                         maxStringLength, maxKeyLength, noNul, int64)"
                    ));
                }
            }
        }
        Ok(limits)
    }

    /// The value of one limit as a number for comparison: a count, or 1/0 for a flag
    /// (`None` means unlimited).
    pub fn get(&self, limit: Limit) -> Option<u64> {
        match limit {
            Limit::MaxDepth => self.max_depth,
            Limit::MaxBytes => self.max_bytes,
            Limit::MaxStringLength => self.max_string_length,
            Limit::MaxKeyLength => self.max_key_length,
            Limit::NoNul => self.no_nul.then_some(1),
            Limit::Int64 => self.int64.then_some(1),
        }
    }

    /// Whether every value within `self` is within `other` for this one limit.
    pub fn implies(&self, other: &ValueLimits, limit: Limit) -> bool {
        match (self.get(limit), other.get(limit)) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(a), Some(b)) => a <= b,
        }
    }

    /// The first part of `value` beyond a limit, depth first.
    pub fn check(&self, value: &Value) -> Result<(), LimitViolation> {
        if let Some(max) = self.max_bytes {
            let bytes = encoded_len(value).saturating_add(plain_decimal_excess(value));
            if bytes > max {
                return Err(LimitViolation {
                    pointer: String::new(),
                    message: format!(
                        "the value is {bytes} bytes as JSON (numbers counted in plain decimal notation); at most {max} are allowed"
                    ),
                });
            }
        }
        let mut path: Vec<Step<'_>> = Vec::new();
        self.walk(value, 0, &mut path)
    }

    fn walk<'v>(
        &self,
        value: &'v Value,
        depth: u64,
        path: &mut Vec<Step<'v>>,
    ) -> Result<(), LimitViolation> {
        let fail = |path: &[Step<'_>], message: String| {
            Err(LimitViolation {
                pointer: pointer(path),
                message,
            })
        };
        match value {
            Value::Null | Value::Bool(_) => Ok(()),
            Value::Number(n) => {
                if self.int64 && n.is_u64() && !n.is_i64() {
                    return fail(
                        path,
                        format!("{n} is beyond the signed 64-bit integer range"),
                    );
                }
                Ok(())
            }
            Value::String(s) => {
                if let Some(message) = self.text_problem(s, self.max_string_length, "string") {
                    return fail(path, message);
                }
                Ok(())
            }
            Value::Array(items) => {
                let depth = self.deeper(depth, path)?;
                for (i, item) in items.iter().enumerate() {
                    path.push(Step::Index(i));
                    self.walk(item, depth, path)?;
                    path.pop();
                }
                Ok(())
            }
            Value::Object(members) => {
                let depth = self.deeper(depth, path)?;
                self.walk_members(members, depth, path)
            }
        }
    }

    fn walk_members<'v>(
        &self,
        members: &'v Map<String, Value>,
        depth: u64,
        path: &mut Vec<Step<'v>>,
    ) -> Result<(), LimitViolation> {
        for (key, item) in members {
            path.push(Step::Key(key));
            if let Some(message) = self.text_problem(key, self.max_key_length, "key") {
                return Err(LimitViolation {
                    pointer: pointer(path),
                    message,
                });
            }
            self.walk(item, depth, path)?;
            path.pop();
        }
        Ok(())
    }

    fn deeper(&self, depth: u64, path: &[Step<'_>]) -> Result<u64, LimitViolation> {
        let depth = depth + 1;
        match self.max_depth {
            Some(max) if depth > max => Err(LimitViolation {
                pointer: pointer(path),
                message: format!(
                    "objects and arrays nest {depth} levels deep here; at most {max} are allowed"
                ),
            }),
            _ => Ok(depth),
        }
    }

    fn text_problem(&self, text: &str, max: Option<u64>, what: &str) -> Option<String> {
        if self.no_nul && text.contains('\0') {
            return Some(format!("a {what} must not contain U+0000 (NUL)"));
        }
        let max = max?;
        // Cheap bound first: a string of at most `max` bytes has at most `max` characters.
        if text.len() as u64 <= max {
            return None;
        }
        let chars = text.chars().count() as u64;
        (chars > max).then(|| format!("a {what} of {chars} characters; at most {max} are allowed"))
    }
}

enum Step<'v> {
    Key(&'v str),
    Index(usize),
}

/// RFC 6901 pointer of `path`.
fn pointer(path: &[Step<'_>]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(k) => {
                out.push('/');
                out.push_str(&k.replace('~', "~0").replace('/', "~1"));
            }
            Step::Index(i) => {
                let _ = write!(out, "/{i}");
            }
        }
    }
    out
}

/// How many more bytes the numbers of `value` take in plain decimal notation than in JSON's
/// shortest form (`1e300`: 301 digits rather than 5). Integers are written in full either way.
fn plain_decimal_excess(value: &Value) -> u64 {
    match value {
        Value::Number(n) if n.is_f64() => n.as_f64().map_or(0, |f| {
            // Display writes an f64 in plain decimal notation, as PostgreSQL's numeric does.
            let plain = format!("{f}").len() as u64;
            plain.saturating_sub(n.to_string().len() as u64)
        }),
        Value::Array(items) => items.iter().map(plain_decimal_excess).sum(),
        Value::Object(members) => members.values().map(plain_decimal_excess).sum(),
        _ => 0,
    }
}

/// Length of `value` as compact JSON, without building the text.
fn encoded_len(value: &Value) -> u64 {
    struct Count(u64);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Value` into a sink that never fails cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn limits() -> ValueLimits {
        ValueLimits::parse(
            &json!({"maxDepth": 3, "maxBytes": 200, "maxStringLength": 5,
                                   "maxKeyLength": 4, "noNul": true, "int64": true}),
        )
        .unwrap()
    }

    fn nested(levels: usize) -> Value {
        (1..levels).fold(json!({}), |inner, _| json!({ "a": inner }))
    }

    #[test]
    fn each_limit_holds_at_its_boundary_and_breaks_one_past_it() {
        let l = limits();
        assert_eq!(l.check(&nested(3)), Ok(()));
        let e = l.check(&nested(4)).unwrap_err();
        assert_eq!(e.pointer, "/a/a/a", "{e:?}");
        assert_eq!(l.check(&json!({"s": "ééééé"})), Ok(()));
        assert_eq!(
            l.check(&json!({"s": ["123456"]})).unwrap_err().pointer,
            "/s/0"
        );
        assert_eq!(l.check(&json!({"abcd": 1})), Ok(()));
        assert_eq!(l.check(&json!({"abcde": 1})).unwrap_err().pointer, "/abcde");
        assert_eq!(l.check(&json!({"k": "a\u{0}"})).unwrap_err().pointer, "/k");
        assert_eq!(
            l.check(&json!({"k\u{0}": 1})).unwrap_err().pointer,
            "/k\u{0}"
        );
        assert_eq!(l.check(&json!({"n": i64::MAX, "m": i64::MIN})), Ok(()));
        let big: Value = serde_json::from_str(r#"{"n": 9223372036854775808}"#).unwrap();
        assert_eq!(l.check(&big).unwrap_err().pointer, "/n");
        let bytes = ValueLimits {
            max_bytes: Some(200),
            ..ValueLimits::default()
        };
        let at_limit = json!(["x".repeat(196)]);
        assert_eq!(encoded_len(&at_limit), 200);
        assert_eq!(bytes.check(&at_limit), Ok(()));
        assert_eq!(
            bytes.check(&json!(["x".repeat(197)])).unwrap_err().pointer,
            ""
        );
    }

    #[test]
    fn numbers_count_at_their_plain_decimal_width() {
        let bytes = ValueLimits {
            max_bytes: Some(400),
            ..ValueLimits::default()
        };
        assert_eq!(bytes.check(&json!([1.5e2, 12345678901234567_i64])), Ok(()));
        // Five characters in JSON, 301 digits in PostgreSQL: twice is beyond 400 bytes.
        assert_eq!(bytes.check(&json!([1e300])), Ok(()));
        let error = bytes.check(&json!([1e300, 1e300])).unwrap_err();
        assert!(error.message.contains("plain decimal"), "{error:?}");
        assert!(bytes.check(&json!([1e-300, 1e-300])).is_err());
    }

    #[test]
    fn pointers_escape_keys() {
        let l = limits();
        assert_eq!(
            l.check(&json!({"a/~": "123456"})).unwrap_err().pointer,
            "/a~1~0"
        );
    }

    #[test]
    fn parse_refuses_what_it_does_not_know() {
        assert!(ValueLimits::parse(&json!({"maxDepht": 3})).is_err());
        assert!(ValueLimits::parse(&json!({"maxDepth": 0})).is_err());
        assert!(ValueLimits::parse(&json!({"noNul": "yes"})).is_err());
        assert!(ValueLimits::parse(&json!([])).is_err());
        assert_eq!(ValueLimits::parse(&json!({})), Ok(ValueLimits::default()));
    }

    #[test]
    fn implication_is_per_limit() {
        let tight = limits();
        let none = ValueLimits::default();
        for limit in Limit::ALL {
            assert!(tight.implies(&none, limit));
            assert!(!none.implies(&tight, limit));
            assert!(tight.implies(&tight, limit));
        }
    }
}
