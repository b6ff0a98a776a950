//! `cargo xtask chaos`: the fault matrix. Builds `observatory` and `observatory-chaos`
//! (`clients/chaos`), makes sure the servers run, and runs the matrix from the repository
//! root (where the MongoDB stand-in keeps its data, so that a restart finds it again). The
//! short form (`--short`) is a step of `cargo xtask test`; it uses the debug build the tests
//! already made.

use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::Command;

#[derive(clap::Args, Debug)]
pub struct ChaosArgs {
    /// The short form: a few scenarios, debug binaries (what `cargo xtask test` runs).
    #[arg(long)]
    pub short: bool,
    /// Only the scenarios whose name contains this text.
    #[arg(long)]
    pub only: Option<String>,
    /// Jobs submitted per second during each scenario.
    #[arg(long)]
    pub rate: Option<u32>,
}

pub fn run(root: &Path, args: &ChaosArgs) -> Result<()> {
    crate::test_infra::ensure(root)?;
    let profile = if args.short { "debug" } else { "release" };
    eprintln!("==> building the {profile} binaries (observatory, observatory-chaos)");
    let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    build.args(["build", "--locked"]);
    if args.short {
        // What the tests built, with the same features, so only the missing binaries compile
        // (selecting two packages would unify features differently and rebuild their
        // dependencies: minutes and gigabytes).
        build.args(["--workspace", "--all-targets"]);
    } else {
        build.args(["--release", "-p", "observatory", "-p", "observatory-chaos"]);
    }
    let status = build
        .current_dir(root)
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("building the chaos binaries failed");
    }
    let bin = root.join("target").join(profile);
    let mut chaos = Command::new(bin.join("observatory-chaos"));
    chaos.arg("--observatory").arg(bin.join("observatory"));
    if args.short {
        chaos.arg("--short");
    }
    if let Some(only) = &args.only {
        chaos.args(["--only", only]);
    }
    if let Some(rate) = args.rate {
        chaos.args(["--rate", &rate.to_string()]);
    }
    let status = chaos
        .current_dir(root)
        .status()
        .context("running observatory-chaos")?;
    if !status.success() {
        bail!("the fault matrix found a violation or could not run (see above)");
    }
    Ok(())
}
