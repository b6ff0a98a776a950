//! `cargo xtask bench`: builds the release binaries, starts the whole system (the four roles
//! of `observatory`, as separate processes, against the local PostgreSQL, RabbitMQ, Redis and
//! MongoDB, under a fresh prefix and database), waits until every role is ready, runs the
//! load generator (`observatory-bench`), and stops the roles. With `--up` it measures
//! `observatory up` on its embedded adapters instead; with `--gateway` and `--read-model`, a
//! system that is already running; with `--dashboard`, the web dashboard in Chromium
//! (`bench_dashboard`).

use crate::system::{Ports, System, free_port};
use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::Command;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Measure an already running system: its gateway URL (requires --read-model).
    #[arg(long, requires = "read_model")]
    gateway: Option<String>,
    /// Measure an already running system: its read model URL.
    #[arg(long, requires = "gateway")]
    read_model: Option<String>,
    /// Measure `observatory up` (one process, embedded broker and SQLite stores) instead of the
    /// four roles on the servers.
    #[arg(long, conflicts_with = "gateway")]
    up: bool,
    /// Measure the web dashboard instead (size as served, time to the first interactive view,
    /// a 500-row jobs table) in headless Chromium against `observatory up`; arguments after
    /// `--` go to ui/web/tests/bench.mjs (`--runs N`, `--jobs N`).
    #[arg(long, conflicts_with_all = ["gateway", "up"])]
    dashboard: bool,
    /// Measure the terminal UI instead: time to its first screen and its idle CPU, against
    /// `observatory up` with `--tui-jobs` jobs in the store.
    #[arg(long, conflicts_with_all = ["gateway", "up"])]
    tui: bool,
    /// Jobs in the store for `--tui`.
    #[arg(long, default_value_t = 100_000, requires = "tui")]
    tui_jobs: u64,
    /// Arguments for the load generator (see `cargo run -p observatory-bench -- --help`),
    /// e.g. `-- --jobs 120000 --rate 2000`.
    #[arg(last = true)]
    load: Vec<String>,
}

pub fn run(root: &Path, args: BenchArgs) -> Result<()> {
    if args.dashboard {
        return crate::bench_dashboard::run(root, &args.load);
    }
    eprintln!("==> building release binaries (observatory, observatory-bench)");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            "observatory",
            "-p",
            "observatory-bench",
        ])
        .current_dir(root)
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("building the release binaries failed");
    }
    let bin = root.join("target/release");
    if args.tui {
        return crate::bench_tui::run(root, &bin, args.tui_jobs);
    }
    let (gateway, read_model, mut system) = match (args.gateway, args.read_model) {
        (Some(g), Some(r)) => (g, r, System::default()),
        _ if args.up => {
            let ports = Ports {
                gateway: free_port()?,
                read_model: free_port()?,
                processor: free_port()?,
                metrics_engine: free_port()?,
            };
            let system = System::start_up(root, &bin, &ports, "warn")?;
            (
                format!("http://{}", system.gateway),
                format!("http://{}", system.read_model),
                system,
            )
        }
        _ => {
            crate::test_infra::ensure(root)?;
            let name = format!("bench_{}", std::process::id());
            let ports = Ports {
                gateway: free_port()?,
                read_model: free_port()?,
                processor: free_port()?,
                metrics_engine: free_port()?,
            };
            let system = System::start(root, &bin, &name, &ports, "warn")?;
            (
                format!("http://{}", system.gateway),
                format!("http://{}", system.read_model),
                system,
            )
        }
    };
    eprintln!(
        "==> load: {}",
        if args.load.is_empty() {
            "defaults".to_string()
        } else {
            args.load.join(" ")
        }
    );
    let status = Command::new(bin.join("observatory-bench"))
        .args(["--gateway", &gateway, "--read-model", &read_model])
        .args(&args.load)
        .status()
        .context("running observatory-bench")?;
    system.stop();
    if !status.success() {
        bail!("the benchmark failed (see above)");
    }
    Ok(())
}
