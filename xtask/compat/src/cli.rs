//! Argument handling for the two command-line entry points. Kept free of any
//! argument-parsing dependency so a thin wrapper (`cargo xtask check-compat`)
//! can forward its arguments verbatim and exit with the returned code.
//!
//! Exit codes: 0 compatible / ok, 1 incompatible / violations, 2 invalid input
//! or usage (with a message on stderr).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::report::Mode;
use crate::{check_repo, compare_files, release};

const PAIR_USAGE: &str = "usage: check-compat --old OLD --new NEW [--mode backward|forward|full] [--format text|json]\n\
  default mode: full for JSON Schema, backward for OpenAPI (API-level: requests backward, responses forward)";

const REPO_USAGE: &str = "usage: check-compat [--format text|json] [--release]\n\
  checks schemas/ and openapi/ against the release record; --release then records current versions";

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Text,
    Json,
}

/// Splits `--key value` and `--key=value`.
fn take_value(args: &[String], i: &mut usize, key: &str) -> Result<String, String> {
    let a = &args[*i];
    if let Some(v) = a.strip_prefix(&format!("{key}=")) {
        return Ok(v.to_string());
    }
    *i += 1;
    args.get(*i)
        .cloned()
        .ok_or_else(|| format!("`{key}` needs a value"))
}

fn parse_format(s: &str) -> Result<Format, String> {
    match s {
        "text" => Ok(Format::Text),
        "json" => Ok(Format::Json),
        other => Err(format!("unknown format `{other}` (text or json)")),
    }
}

struct PairArgs {
    old: PathBuf,
    new: PathBuf,
    mode: Option<Mode>,
    format: Format,
}

fn parse_pair(args: &[String]) -> Result<Option<PairArgs>, String> {
    let (mut old, mut new, mut mode, mut format) = (None, None, None, Format::Text);
    let mut i = 0;
    // Tolerate the subcommand name being forwarded too.
    if args.first().map(String::as_str) == Some("check-compat") {
        i = 1;
    }
    while i < args.len() {
        let a = args[i].as_str();
        let key = a.split('=').next().unwrap_or(a);
        match key {
            "-h" | "--help" => return Ok(None),
            "--old" => old = Some(PathBuf::from(take_value(args, &mut i, key)?)),
            "--new" => new = Some(PathBuf::from(take_value(args, &mut i, key)?)),
            "--mode" => {
                let v = take_value(args, &mut i, key)?;
                mode =
                    Some(Mode::parse(&v).ok_or_else(|| {
                        format!("unknown mode `{v}` (backward, forward or full)")
                    })?);
            }
            "--format" => format = parse_format(&take_value(args, &mut i, key)?)?,
            _ => return Err(format!("unexpected argument `{a}`")),
        }
        i += 1;
    }
    match (old, new) {
        (Some(old), Some(new)) => Ok(Some(PairArgs {
            old,
            new,
            mode,
            format,
        })),
        _ => Err("both --old and --new are required".into()),
    }
}

/// `check-compat --old OLD --new NEW [--mode ..] [--format ..]`, printing
/// to stdout/stderr. Returns the exit code.
pub fn run_pair_cli(args: &[String]) -> i32 {
    run_pair_cli_with(args, &mut std::io::stdout(), &mut std::io::stderr())
}

/// [`run_pair_cli`] with explicit output streams (for tests and wrappers).
pub fn run_pair_cli_with(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let parsed = match parse_pair(args) {
        Ok(Some(p)) => p,
        Ok(None) => {
            let _ = writeln!(out, "{PAIR_USAGE}");
            return 0;
        }
        Err(e) => {
            let _ = writeln!(err, "error: {e}\n{PAIR_USAGE}");
            return 2;
        }
    };
    let report = match compare_files(&parsed.old, &parsed.new) {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return 2;
        }
    };
    let mode = parsed.mode.unwrap_or(report.doc_kind.default_mode());
    match parsed.format {
        Format::Text => {
            let _ = write!(out, "{}", report.to_text(mode));
        }
        Format::Json => {
            let _ = writeln!(out, "{}", report.to_json(mode));
        }
    }
    if report.compatible(mode) { 0 } else { 1 }
}

/// Repo mode: `[--format text|json] [--release]`. With `--release`, current
/// versions are recorded only when the check passes.
pub fn run_repo_cli(root: &Path, args: &[String]) -> i32 {
    run_repo_cli_with(root, args, &mut std::io::stdout(), &mut std::io::stderr())
}

/// [`run_repo_cli`] with explicit output streams (for tests and wrappers).
pub fn run_repo_cli_with(
    root: &Path,
    args: &[String],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let mut format = Format::Text;
    let mut do_release = false;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let key = a.split('=').next().unwrap_or(a);
        match key {
            "-h" | "--help" => {
                let _ = writeln!(out, "{REPO_USAGE}");
                return 0;
            }
            "--release" => do_release = true,
            "--format" => match take_value(args, &mut i, key).and_then(|v| parse_format(&v)) {
                Ok(f) => format = f,
                Err(e) => {
                    let _ = writeln!(err, "error: {e}\n{REPO_USAGE}");
                    return 2;
                }
            },
            _ => {
                let _ = writeln!(err, "error: unexpected argument `{a}`\n{REPO_USAGE}");
                return 2;
            }
        }
        i += 1;
    }
    let report = match check_repo(root) {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return 2;
        }
    };
    match format {
        Format::Text => {
            let _ = write!(out, "{}", report.to_text());
        }
        Format::Json => {
            let _ = writeln!(out, "{}", report.to_json());
        }
    }
    let code = report.exit_code();
    if code == 0 && do_release {
        match release(root) {
            Ok(written) => {
                for w in &written {
                    let _ = writeln!(out, "released: {w}");
                }
                if written.is_empty() {
                    let _ = writeln!(out, "released: nothing new to record");
                }
            }
            Err(e) => {
                let _ = writeln!(err, "error: {e}");
                return 2;
            }
        }
    }
    code
}
