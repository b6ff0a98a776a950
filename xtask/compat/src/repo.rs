//! Repo mode: versions, the release record, and the gate CI runs.
//!
//! Layout (paths relative to the repo root):
//! * `schemas/**.json` are schemas, except `*.examples.json` and everything
//!   under `schemas/released/`. Each has a unique `$id` and a SemVer
//!   `$version`, and may say `"x-compatibility": "full" | "backward" |
//!   "forward"` (absent: full).
//! * `openapi/*.yaml` are OpenAPI documents with a SemVer `info.version`
//!   (`openapi/released/` excluded). Their required mode is API-level
//!   backward (requests backward, responses forward; see `openapi`).
//! * The release record: `schemas/released/<path without .json>/<version>.json`
//!   and `openapi/released/<stem>/<version>.yaml` hold the exact released
//!   text. Released versions are immutable.
//!
//! Rules, and why:
//! * A document whose parsed content differs from the record of the same
//!   version fails: released versions are immutable.
//! * A version lower than the highest released fails.
//! * An unreleased version is compared with EVERY released version of the same
//!   major, not only the latest: compatibility must hold transitively, and a
//!   chain of individually compatible steps can still break an old reader
//!   (DESIGN.md §3). A break in the required mode needs a major bump; a
//!   compatible change that alters an instance set needs at least a minor bump
//!   over the latest released; an annotation-only change may be a patch.
//!   A new major needs no compatibility with older majors.
//! * A document with no record is new (info). A record without a document is
//!   reported as info, not a failure (removal is a review decision).
//!
//! Cross-file `$ref`s, in both the released copy and the current document,
//! are resolved against the CURRENT tree relative to the document's current
//! path: the released copy is compared as if it lived at the current path. So
//! a change in `job.json` is attributed to `job.json` only (its own record
//! and version), not to every document that references it.

use std::fs;
use std::path::{Path, PathBuf};

use semver::Version;
use serde::Serialize;
use serde_json::Value;

use crate::report::{DocKind, Mode};
use crate::{CompatError, compare_values, store};

/// Severity of a repo-mode finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// A rule violation (exit 1).
    Error,
    /// The input cannot be analysed (exit 2).
    Invalid,
    /// For the reader; never fails.
    Info,
}

/// One repo-mode finding.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub level: Level,
    /// Path relative to the repo root.
    pub file: String,
    pub message: String,
}

/// All findings of a repo check.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RepoReport {
    pub findings: Vec<Finding>,
}

impl RepoReport {
    /// No violation and nothing invalid.
    pub fn ok(&self) -> bool {
        self.findings.iter().all(|f| f.level == Level::Info)
    }

    /// 0 ok, 1 violations, 2 invalid input.
    pub fn exit_code(&self) -> i32 {
        if self.findings.iter().any(|f| f.level == Level::Invalid) {
            2
        } else if self.findings.iter().any(|f| f.level == Level::Error) {
            1
        } else {
            0
        }
    }

    pub fn errors(&self) -> Vec<&Finding> {
        self.findings
            .iter()
            .filter(|f| f.level != Level::Info)
            .collect()
    }

    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for f in &self.findings {
            let tag = match f.level {
                Level::Error => "error",
                Level::Invalid => "invalid",
                Level::Info => "info",
            };
            s.push_str(&format!("{tag}: {}: {}\n", f.file, f.message));
        }
        let count = |l: Level| self.findings.iter().filter(|f| f.level == l).count();
        s.push_str(&format!(
            "{} violation(s), {} invalid, {} info\n",
            count(Level::Error),
            count(Level::Invalid),
            count(Level::Info)
        ));
        s
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".into())
    }

    fn push(&mut self, level: Level, file: &str, message: String) {
        self.findings.push(Finding {
            level,
            file: file.to_string(),
            message,
        });
    }
}

/// A current document and where its record lives.
struct DocInfo {
    kind: DocKind,
    path: PathBuf,
    rel: String,
    record_dir: PathBuf,
    ext: &'static str,
}

fn rel_str(p: &Path, root: &Path) -> String {
    p.strip_prefix(root)
        .unwrap_or(p)
        .to_string_lossy()
        .replace('\\', "/")
}

fn io_err(path: &Path, e: std::io::Error) -> CompatError {
    CompatError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, CompatError> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| io_err(dir, e))?
        .map(|e| e.map(|e| e.path()).map_err(|e| io_err(dir, e)))
        .collect::<Result<_, _>>()?;
    out.sort();
    Ok(out)
}

fn walk_schemas(dir: &Path, released: &Path, out: &mut Vec<PathBuf>) -> Result<(), CompatError> {
    for p in sorted_entries(dir)? {
        if p.is_dir() {
            if p != released {
                walk_schemas(&p, released, out)?;
            }
        } else {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".json") && !name.ends_with(".examples.json") {
                out.push(p);
            }
        }
    }
    Ok(())
}

fn documents(root: &Path) -> Result<Vec<DocInfo>, CompatError> {
    let mut docs = Vec::new();
    let schemas = root.join("schemas");
    let released = schemas.join("released");
    if schemas.is_dir() {
        let mut files = Vec::new();
        walk_schemas(&schemas, &released, &mut files)?;
        for path in files {
            let inner = path
                .strip_prefix(&schemas)
                .unwrap_or(&path)
                .with_extension("");
            docs.push(DocInfo {
                kind: DocKind::JsonSchema,
                rel: rel_str(&path, root),
                record_dir: released.join(inner),
                path,
                ext: "json",
            });
        }
    }
    let openapi = root.join("openapi");
    if openapi.is_dir() {
        for path in sorted_entries(&openapi)? {
            let is_yaml = path.extension().and_then(|e| e.to_str()) == Some("yaml");
            if path.is_file() && is_yaml {
                let stem = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or("")
                    .to_string();
                docs.push(DocInfo {
                    kind: DocKind::OpenApi,
                    rel: rel_str(&path, root),
                    record_dir: openapi.join("released").join(stem),
                    path,
                    ext: "yaml",
                });
            }
        }
    }
    Ok(docs)
}

/// Released versions recorded in `dir`, sorted ascending.
fn released_versions(
    dir: &Path,
    ext: &str,
    rep: &mut RepoReport,
    root: &Path,
) -> Result<Vec<(Version, PathBuf)>, CompatError> {
    let mut out = Vec::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    for p in sorted_entries(dir)? {
        if p.is_dir() {
            continue; // a nested document's record (e.g. released/domain/job/ vs released/domain/job/x/)
        }
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let Some(stem) = name.strip_suffix(&format!(".{ext}")) else {
            rep.push(
                Level::Invalid,
                &rel_str(&p, root),
                "unexpected file in the release record".into(),
            );
            continue;
        };
        match Version::parse(stem) {
            Ok(v) => out.push((v, p)),
            Err(e) => rep.push(
                Level::Invalid,
                &rel_str(&p, root),
                format!("release record file name is not a SemVer version: {e}"),
            ),
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn doc_version(kind: DocKind, v: &Value) -> Result<Version, String> {
    let (raw, what) = match kind {
        DocKind::JsonSchema => (v.get("$version"), "`$version`"),
        DocKind::OpenApi => (v.pointer("/info/version"), "`info.version`"),
    };
    match raw {
        None => Err(format!("missing {what}")),
        Some(Value::String(s)) => {
            Version::parse(s).map_err(|e| format!("{what} `{s}` is not SemVer: {e}"))
        }
        Some(other) => Err(format!("{what} must be a SemVer string, found {other}")),
    }
}

fn required_mode(kind: DocKind, v: &Value) -> Result<Mode, String> {
    match kind {
        DocKind::OpenApi => Ok(Mode::Backward),
        DocKind::JsonSchema => match v.get("x-compatibility") {
            None => Ok(Mode::Full),
            Some(Value::String(s)) => Mode::parse(s).ok_or_else(|| {
                format!("`x-compatibility` must be full, backward or forward, found `{s}`")
            }),
            Some(other) => Err(format!("`x-compatibility` must be a string, found {other}")),
        },
    }
}

/// Checks the whole repo. `Err` only when the tree cannot be read at all;
/// problems with individual documents are findings.
pub fn check_repo(root: &Path) -> Result<RepoReport, CompatError> {
    if !root.is_dir() {
        return Err(CompatError::Io {
            path: root.to_path_buf(),
            message: "not a directory".into(),
        });
    }
    let mut rep = RepoReport::default();
    let docs = documents(root)?;
    let mut ids: Vec<(String, String)> = Vec::new();
    for d in &docs {
        check_doc(root, d, &mut rep, &mut ids)?;
    }
    orphan_records(root, &docs, &mut rep)?;
    Ok(rep)
}

fn check_doc(
    root: &Path,
    d: &DocInfo,
    rep: &mut RepoReport,
    ids: &mut Vec<(String, String)>,
) -> Result<(), CompatError> {
    let current = match store::read_document(&d.path) {
        Ok(v) => v,
        Err(e) => {
            rep.push(Level::Invalid, &d.rel, e.to_string());
            return Ok(());
        }
    };
    if d.kind == DocKind::OpenApi && current.get("openapi").is_none() {
        rep.push(
            Level::Invalid,
            &d.rel,
            "not an OpenAPI document (no `openapi` key)".into(),
        );
        return Ok(());
    }
    if d.kind == DocKind::JsonSchema {
        if current.get("openapi").is_some() {
            rep.push(
                Level::Invalid,
                &d.rel,
                "an OpenAPI document under schemas/".into(),
            );
            return Ok(());
        }
        match current.get("$id") {
            Some(Value::String(id)) => {
                if let Some((_, other)) = ids.iter().find(|(i, _)| i == id) {
                    rep.push(
                        Level::Error,
                        &d.rel,
                        format!("`$id` `{id}` is also used by {other}"),
                    );
                } else {
                    ids.push((id.clone(), d.rel.clone()));
                }
            }
            Some(_) => rep.push(Level::Error, &d.rel, "`$id` must be a string".into()),
            None => rep.push(Level::Error, &d.rel, "missing `$id`".into()),
        }
    }
    let version = match doc_version(d.kind, &current) {
        Ok(v) => v,
        Err(m) => {
            rep.push(Level::Error, &d.rel, m);
            return Ok(());
        }
    };
    let mode = match required_mode(d.kind, &current) {
        Ok(m) => m,
        Err(m) => {
            rep.push(Level::Error, &d.rel, m);
            return Ok(());
        }
    };
    // Validate the document itself (unknown keywords, broken $refs).
    if let Err(e) = compare_values(current.clone(), &d.path, current.clone(), &d.path) {
        rep.push(Level::Invalid, &d.rel, e.to_string());
        return Ok(());
    }

    let released = released_versions(&d.record_dir, d.ext, rep, root)?;
    let Some((highest, _)) = released.last() else {
        rep.push(
            Level::Info,
            &d.rel,
            format!("new document at {version} (no released version yet)"),
        );
        return Ok(());
    };
    if version < *highest {
        rep.push(
            Level::Error,
            &d.rel,
            format!("version {version} is lower than the highest released version {highest}"),
        );
        return Ok(());
    }
    if let Some((_, p)) = released.iter().find(|(v, _)| *v == version) {
        match store::read_document(p) {
            Ok(rv) if rv == current => {}
            Ok(_) => rep.push(
                Level::Error,
                &d.rel,
                format!(
                    "changed without a version bump: content differs from the released {version} ({}); bump `{}`",
                    rel_str(p, root),
                    if d.kind == DocKind::OpenApi { "info.version" } else { "$version" }
                ),
            ),
            Err(e) => rep.push(Level::Invalid, &rel_str(p, root), e.to_string()),
        }
        return Ok(());
    }

    let same_major: Vec<&(Version, PathBuf)> = released
        .iter()
        .filter(|(v, _)| v.major == version.major)
        .collect();
    if same_major.is_empty() {
        rep.push(
            Level::Info,
            &d.rel,
            format!("new major version {version} (highest released {highest}); no compatibility required with older majors"),
        );
        return Ok(());
    }
    let mut failed = false;
    let mut latest_changes_instances = false;
    let latest = &same_major[same_major.len() - 1].0;
    for (rv, rp) in &same_major {
        let old = match store::read_document(rp) {
            Ok(v) => v,
            Err(e) => {
                rep.push(Level::Invalid, &rel_str(rp, root), e.to_string());
                failed = true;
                continue;
            }
        };
        // The released copy is compared as if it lived at the current path.
        let report = match compare_values(old, &d.path, current.clone(), &d.path) {
            Ok(r) => r,
            Err(e) => {
                rep.push(
                    Level::Invalid,
                    &d.rel,
                    format!("comparing with released {rv}: {e}"),
                );
                failed = true;
                continue;
            }
        };
        for c in report.breaking(mode) {
            failed = true;
            rep.push(
                Level::Error,
                &d.rel,
                format!(
                    "{rv} -> {version} breaks {} compatibility (needs a major bump): {} at {}: {}",
                    mode.as_str(),
                    c.kind,
                    c.pointer(),
                    c.message
                ),
            );
        }
        if rv == latest && !report.annotation_only() {
            latest_changes_instances = true;
        }
    }
    if failed {
        return Ok(());
    }
    if latest_changes_instances && !(version.major == latest.major && version.minor > latest.minor)
    {
        rep.push(
            Level::Error,
            &d.rel,
            format!("{latest} -> {version}: a compatible change that alters an instance set needs at least a minor bump (>= {}.{}.0)", latest.major, latest.minor + 1),
        );
        return Ok(());
    }
    let list: Vec<String> = same_major.iter().map(|(v, _)| v.to_string()).collect();
    rep.push(
        Level::Info,
        &d.rel,
        format!(
            "{version} is {} compatible with released {}",
            mode.as_str(),
            list.join(", ")
        ),
    );
    Ok(())
}

/// Record folders whose document no longer exists.
fn orphan_records(root: &Path, docs: &[DocInfo], rep: &mut RepoReport) -> Result<(), CompatError> {
    let known: Vec<&PathBuf> = docs.iter().map(|d| &d.record_dir).collect();
    for (base, ext) in [
        (root.join("schemas/released"), "json"),
        (root.join("openapi/released"), "yaml"),
    ] {
        if !base.is_dir() {
            continue;
        }
        let mut stack = vec![base.clone()];
        while let Some(dir) = stack.pop() {
            let entries = sorted_entries(&dir)?;
            let has_versions = entries
                .iter()
                .any(|p| p.is_file() && p.extension().and_then(|e| e.to_str()) == Some(ext));
            if has_versions && !known.contains(&&dir) {
                rep.push(
                    Level::Info,
                    &rel_str(&dir, root),
                    "released versions recorded, but the document no longer exists".into(),
                );
            }
            stack.extend(entries.into_iter().filter(|p| p.is_dir()));
        }
    }
    Ok(())
}

/// Records every current document whose current version is not yet in the
/// release record (never overwriting). Returns the written paths, relative to
/// `root`. Documents without a valid version are skipped (the check reports
/// them).
pub fn release(root: &Path) -> Result<Vec<String>, CompatError> {
    let mut written = Vec::new();
    for d in documents(root)? {
        let Ok(v) = store::read_document(&d.path) else {
            continue;
        };
        let Ok(version) = doc_version(d.kind, &v) else {
            continue;
        };
        let target = d.record_dir.join(format!("{version}.{}", d.ext));
        if target.exists() {
            continue;
        }
        fs::create_dir_all(&d.record_dir).map_err(|e| io_err(&d.record_dir, e))?;
        let text = fs::read(&d.path).map_err(|e| io_err(&d.path, e))?;
        fs::write(&target, text).map_err(|e| io_err(&target, e))?;
        written.push(rel_str(&target, root));
    }
    Ok(written)
}
