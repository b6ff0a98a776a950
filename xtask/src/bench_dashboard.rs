//! `cargo xtask bench --dashboard`: measures the web dashboard as a person meets it. Builds
//! the release binary, makes the browser tools present (as `cargo xtask test` does), and runs
//! `ui/web/tests/bench.mjs`, which starts `observatory up` on free ports, seeds jobs, and with
//! headless Chromium reports the dashboard's size as served, the time from navigation start to
//! the first view showing data (median and p95 over fresh browser contexts), and how the jobs
//! table with a page of 500 rows renders and keeps up while jobs stream in. Figures only: the
//! tests never assert on speed.

use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::Command;

/// Builds, then measures; `args` go to the script (`--runs N`, `--jobs N`).
pub fn run(root: &Path, args: &[String]) -> Result<()> {
    crate::test_infra::ensure_ui_tools(root)?;
    eprintln!("==> building the release binary (observatory)");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--locked", "-p", "observatory"])
        .current_dir(root)
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("building the release binary failed");
    }
    let status = Command::new("node")
        .arg("tests/bench.mjs")
        .args(args)
        .current_dir(root.join("ui/web"))
        .env("OBSERVATORY_BIN", root.join("target/release/observatory"))
        .status()
        .context("running node ui/web/tests/bench.mjs")?;
    if !status.success() {
        bail!("the dashboard benchmark failed (see above)");
    }
    Ok(())
}
