//! Query parameters, parsed and validated per the contract without axum's `Query` (whose
//! rejection is a text/plain body). [`QueryParams`] collects every problem and reports them
//! together as one 400 `validation-failed` [`ApiError`], one detail per parameter with the
//! parameter's name as the pointer.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use observatory_runtime::http::ApiError;

/// Page size when `limit` is absent.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest `limit` the contract allows.
pub const MAX_LIMIT: u32 = 500;

/// The request's query parameters (an extractor) and the problems found so far.
#[derive(Debug)]
pub struct QueryParams {
    pairs: Vec<(String, String)>,
    problems: Vec<(String, String)>,
}

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Query(pairs) =
            Query::<Vec<(String, String)>>::try_from_uri(&parts.uri).map_err(|e| {
                ApiError::bad_request("validation-failed", "the query string is malformed")
                    .with_details(vec![(String::new(), e.body_text())])
            })?;
        Ok(Self::new(pairs))
    }
}

impl QueryParams {
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Self {
            pairs,
            problems: Vec::new(),
        }
    }

    /// The value of `name`, when given once; a repeated parameter is a problem.
    fn single(&mut self, name: &str) -> Option<String> {
        let mut values = self
            .pairs
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.clone());
        let first = values.next()?;
        if values.next().is_some() {
            self.problem(name, "must be given at most once");
            return None;
        }
        Some(first)
    }

    fn problem(&mut self, name: &str, message: impl Into<String>) {
        self.problems.push((name.to_string(), message.into()));
    }

    /// An optional parameter parsed by `parse`; `expected` completes "must be ..." when it
    /// does not parse.
    pub fn optional<T>(
        &mut self,
        name: &str,
        expected: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Option<T> {
        let raw = self.single(name)?;
        let parsed = parse(&raw);
        if parsed.is_none() {
            self.problem(name, format!("must be {expected}, not {raw:?}"));
        }
        parsed
    }

    /// An RFC 3339 date-time (a `+` of an offset that arrived as a space is accepted).
    pub fn date_time(&mut self, name: &str) -> Option<DateTime<Utc>> {
        self.optional(
            name,
            "an RFC 3339 date-time such as 2026-01-31T12:00:00Z",
            parse_date_time,
        )
    }

    /// `limit`: 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent.
    pub fn limit(&mut self) -> u32 {
        self.optional(
            "limit",
            &format!("an integer from 1 to {MAX_LIMIT}"),
            |raw| {
                raw.parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
            },
        )
        .unwrap_or(DEFAULT_LIMIT)
    }

    /// `cursor`: the contract's `PageCursor` (1 to 512 characters); whether the store issued
    /// it is the store's to say.
    pub fn cursor(&mut self) -> Option<crate::contracts::page_cursor::PageCursor> {
        self.optional("cursor", "the nextCursor of a previous page", |raw| {
            raw.parse().ok()
        })
    }

    /// `Ok` when every parameter was valid, else the 400 listing every problem.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.problems.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = self.problems.iter().map(|(n, _)| n.as_str()).collect();
        Err(ApiError::bad_request(
            "validation-failed",
            format!("invalid query parameter: {}", names.join(", ")),
        )
        .with_details(self.problems))
    }
}

fn parse_date_time(raw: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw)
        .or_else(|_| DateTime::parse_from_rfc3339(&raw.replace(' ', "+")))
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

/// A 400 about one parameter.
pub fn invalid(name: &str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request(
        "validation-failed",
        format!("invalid query parameter: {name}"),
    )
    .with_details(vec![(name.to_string(), message.into())])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> QueryParams {
        QueryParams::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn limit_defaults_and_bounds() {
        let mut p = params(&[]);
        assert_eq!(p.limit(), DEFAULT_LIMIT);
        assert!(p.finish().is_ok());
        for bad in ["0", "501", "-1", "ten", ""] {
            let mut p = params(&[("limit", bad)]);
            p.limit();
            let error = p.finish().expect_err(bad);
            assert_eq!(error.code, "validation-failed");
            assert_eq!(error.details[0].0, "limit");
        }
        let mut p = params(&[("limit", "500")]);
        assert_eq!(p.limit(), 500);
        assert!(p.finish().is_ok());
    }

    #[test]
    fn every_problem_is_reported_and_repeats_are_refused() {
        let mut p = params(&[
            ("limit", "0"),
            ("after", "yesterday"),
            ("cursor", "a"),
            ("cursor", "b"),
        ]);
        p.limit();
        p.date_time("after");
        p.cursor();
        let error = p.finish().expect_err("three problems");
        let pointers: Vec<&str> = error.details.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(pointers, ["limit", "after", "cursor"]);
    }

    #[test]
    fn date_times_accept_offsets_even_when_the_plus_was_decoded_as_a_space() {
        let expected: DateTime<Utc> = "2026-01-31T11:00:00Z".parse().expect("valid");
        for raw in [
            "2026-01-31T12:00:00+01:00",
            "2026-01-31T12:00:00 01:00",
            "2026-01-31T11:00:00Z",
        ] {
            let mut p = params(&[("after", raw)]);
            assert_eq!(p.date_time("after"), Some(expected), "{raw}");
            assert!(p.finish().is_ok());
        }
    }
}
