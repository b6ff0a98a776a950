//! Contract compatibility checker for JSON Schema (draft-07) and OpenAPI 3.0.3.
//!
//! Why this exists (DESIGN.md §3): JSON Schemas and OpenAPI documents are the
//! only source of truth, and compatibility has a precise meaning on the sets
//! of JSON instances a schema accepts. This crate decides it, reports every
//! difference with the direction(s) it breaks, and gates the release record
//! in "repo mode" (what CI runs).
//!
//! * [`compare_files`] compares two documents (JSON Schema or OpenAPI,
//!   detected by the `openapi` key; JSON or YAML).
//! * [`run_pair_cli`] is `check-compat --old OLD --new NEW [--mode ..] [--format ..]`.
//! * [`check_repo`], [`release`] and [`run_repo_cli`] implement repo mode.
//!
//! Modules: `schema` (the inclusion reasoning), `openapi` (operations,
//! parameters, bodies, responses), `repo` (versions and the release record),
//! `report` (changes and output), `cli` (argument parsing), `store`
//! (documents and `$ref` resolution).
//!
//! Change kinds (stable ids): see [`KINDS`].
//!
//! Decisions worth knowing (details in each module):
//! * Output pointers are `OLD -> NEW`, each `old#/json/pointer` /
//!   `new#/json/pointer` for the compared documents, or
//!   `relative/file.json#/pointer` for a node reached through a cross-file
//!   `$ref` (relative to the compared document's folder).
//! * Default mode: `full` for JSON Schema; `backward` for OpenAPI, whose
//!   directions are API-level (requests checked backward, responses forward).
//! * Sound, conservative where undecidable: a changed `pattern` breaks both
//!   ways; `pattern`/`format` are not evaluated on `enum` values (undecided
//!   counts as rejected); formats include each other only when equal (or for
//!   the integer formats `int8..int64`, `uint8..uint64` by range).
//! * Under the Emits semantics, closing an object that declares `properties`
//!   alters no emitted set, so it breaks neither direction (still reported).
//! * Keywords beside `$ref` (other than annotations and `definitions`) are an
//!   error: draft-07 ignores them, and silently ignoring intent is worse.
//! * `$version` (and OpenAPI `info.version`) changes are not reported.
//! * A `$ref` cycle through schemas (recursive types) is handled; a pure
//!   `$ref` loop is an error. Absolute-URI `$ref`s are an error.

mod cli;
mod openapi;
mod repo;
mod report;
mod schema;
mod store;

use std::path::{Path, PathBuf};

use serde_json::Value;

pub use cli::{run_pair_cli, run_pair_cli_with, run_repo_cli, run_repo_cli_with};
pub use repo::{Finding, Level, RepoReport, check_repo, release};
pub use report::{Breaks, Change, DocKind, Mode, Report};

/// Every change kind the checker can report.
pub const KINDS: &[&str] = &[
    // any node
    "annotation-changed",
    "false-schema-added",
    "false-schema-removed",
    "type-added",
    "type-removed",
    "type-widened",
    "type-narrowed",
    "type-changed",
    "enum-added",
    "enum-removed",
    "enum-value-added",
    "enum-value-removed",
    "enum-value-rejected",
    "const-added",
    "const-removed",
    "const-changed",
    "format-added",
    "format-removed",
    "format-changed",
    // strings
    "pattern-added",
    "pattern-removed",
    "pattern-changed",
    "min-length-added",
    "min-length-removed",
    "min-length-increased",
    "min-length-decreased",
    "max-length-added",
    "max-length-removed",
    "max-length-increased",
    "max-length-decreased",
    // numbers
    "minimum-added",
    "minimum-removed",
    "minimum-increased",
    "minimum-decreased",
    "maximum-added",
    "maximum-removed",
    "maximum-increased",
    "maximum-decreased",
    "multiple-of-added",
    "multiple-of-removed",
    "multiple-of-changed",
    // arrays
    "items-form-changed",
    "min-items-added",
    "min-items-removed",
    "min-items-increased",
    "min-items-decreased",
    "max-items-added",
    "max-items-removed",
    "max-items-increased",
    "max-items-decreased",
    "unique-items-added",
    "unique-items-removed",
    // objects
    "property-added",
    "property-removed",
    "required-added",
    "required-removed",
    "additional-properties-closed",
    "additional-properties-opened",
    "additional-properties-changed",
    "min-properties-added",
    "min-properties-removed",
    "min-properties-increased",
    "min-properties-decreased",
    "max-properties-added",
    "max-properties-removed",
    "max-properties-increased",
    "max-properties-decreased",
    // x-limits (any value, at every depth)
    "limit-added",
    "limit-removed",
    "limit-tightened",
    "limit-loosened",
    // OpenAPI
    "operation-added",
    "operation-removed",
    "parameter-added",
    "parameter-removed",
    "parameter-required-added",
    "parameter-required-removed",
    "parameter-style-changed",
    "request-body-added",
    "request-body-removed",
    "request-body-required-added",
    "request-body-required-removed",
    "media-type-added",
    "media-type-removed",
    "response-added",
    "response-removed",
    "response-body-added",
    "response-body-removed",
    "response-header-added",
    "response-header-removed",
    "security-changed",
];

/// Everything that makes an input invalid (exit code 2 in the CLIs).
#[derive(Debug, thiserror::Error)]
pub enum CompatError {
    #[error("cannot read {path}: {message}", path = .path.display())]
    Io { path: PathBuf, message: String },
    #[error("cannot parse {path}: {message}", path = .path.display())]
    Parse { path: PathBuf, message: String },
    #[error(
        "unsupported keyword `{keyword}` at {pointer}: the checker cannot reason about it, so it refuses to guess"
    )]
    UnknownKeyword { keyword: String, pointer: String },
    #[error("invalid schema at {pointer}: {message}")]
    Invalid { pointer: String, message: String },
    #[error("cannot resolve $ref `{reference}` at {pointer}: {message}")]
    Ref {
        reference: String,
        pointer: String,
        message: String,
    },
    #[error("{0}")]
    Usage(String),
}

/// Compares two documents on disk. JSON Schema vs OpenAPI is detected by the
/// `openapi` key; both must be of the same kind.
pub fn compare_files(old: &Path, new: &Path) -> Result<Report, CompatError> {
    let ov = store::read_document(old)?;
    let nv = store::read_document(new)?;
    compare_values(ov, old, nv, new)
}

/// Compares two parsed documents; each is treated as located at its path
/// (relative `$ref`s resolve against that path's folder).
pub fn compare_values(
    old: Value,
    old_path: &Path,
    new: Value,
    new_path: &Path,
) -> Result<Report, CompatError> {
    let o_api = old.get("openapi").is_some();
    let n_api = new.get("openapi").is_some();
    if o_api != n_api {
        return Err(CompatError::Usage(format!(
            "cannot compare an OpenAPI document with a JSON Schema ({} vs {})",
            old_path.display(),
            new_path.display()
        )));
    }
    if o_api {
        openapi::compare(old, old_path, new, new_path)
    } else {
        compare_schemas(old, old_path, new, new_path)
    }
}

fn compare_schemas(
    old: Value,
    old_path: &Path,
    new: Value,
    new_path: &Path,
) -> Result<Report, CompatError> {
    schema::check_tree(&old, store::Dialect::Draft07, "old")?;
    schema::check_tree(&new, store::Dialect::Draft07, "new")?;
    let mut os = store::Store::new(old, old_path, "old");
    let mut ns = store::Store::new(new, new_path, "new");
    let (or, nr) = (os.root(), ns.root());
    let mut cmp = schema::Comparer::new(&mut os, &mut ns);
    cmp.compare(&or, &nr, Breaks::Both)?;
    Ok(Report {
        doc_kind: DocKind::JsonSchema,
        changes: report::dedupe(cmp.changes),
    })
}
