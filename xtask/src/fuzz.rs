//! `cargo xtask fuzz`: the fuzz targets (proptest properties over corpus mutations and
//! generated JSON, see `observatory_test_support::fuzz`) with many cases each, optimised.
//! `cargo xtask test` runs the same targets with a few thousand cases each.

use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// (package, nextest filter) of every fuzz target.
pub const TARGETS: &[(&str, &str)] = &[
    ("observatory-runtime", "binary(fuzz_body)"),
    ("observatory-keyset", "binary(fuzz_cursor)"),
    ("observatory-metrics-engine", "test(validate::fuzz::)"),
    ("contract-compat", "binary(fuzz_loader)"),
];

pub fn run(root: &Path, cases: u32) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let filter = TARGETS
        .iter()
        .map(|(_, f)| f.to_string())
        .collect::<Vec<_>>()
        .join(" | ");
    let mut args: Vec<String> = ["nextest", "run", "--release", "--locked", "--no-fail-fast"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for (package, _) in TARGETS {
        args.push("-p".into());
        args.push((*package).into());
    }
    args.extend(["-E".into(), filter]);
    eprintln!("==> {cases} cases per fuzz target (PROPTEST_CASES)");
    let started = Instant::now();
    let status = Command::new(&cargo)
        .args(&args)
        .current_dir(root)
        .env("PROPTEST_CASES", cases.to_string())
        .status()
        .context("running cargo nextest (cargo install cargo-nextest)")?;
    if !status.success() {
        bail!(
            "a fuzz target failed: its shrunk input is printed above and kept in proptest-regressions/"
        );
    }
    eprintln!(
        "==> every fuzz target held for {cases} cases ({:.0?})",
        started.elapsed()
    );
    Ok(())
}
