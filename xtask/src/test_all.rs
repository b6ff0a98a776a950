//! `cargo xtask test`: the project's one test command (the README's, and what `.ci/run` runs).
//! Runs every gate in order of cost, printing each step and its duration, and stops at the
//! first failure with that step's name.

use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

pub fn run(root: &Path) -> Result<()> {
    let started = Instant::now();
    step("rustfmt", || cargo(root, &["fmt", "--all", "--check"]))?;
    step("codegen --check", || {
        let drift = crate::codegen::generate(root)?.check(root)?;
        if !drift.is_empty() {
            for d in &drift {
                eprintln!("  {d}");
            }
            bail!("generated/ is stale: run `cargo xtask codegen`");
        }
        Ok(())
    })?;
    step("check-compat", || {
        let report = contract_compat::check_repo(root)?;
        eprint!("{}", report.to_text());
        if !report.ok() {
            bail!("contract compatibility check failed (see above)");
        }
        Ok(())
    })?;
    step(
        "test servers (PostgreSQL, Redis, RabbitMQ, MongoDB stand-in)",
        || crate::test_infra::ensure(root),
    )?;
    step(
        "UI, API and monitoring test tools (Chromium, tmux, promtool, amtool, schemathesis, the dashboard's Node modules)",
        || crate::test_infra::ensure_ui_tools(root),
    )?;
    step("tsc --checkJs --strict (the dashboard)", || {
        // npx finds tsc in ui/web/node_modules when it runs there.
        command(
            &root.join("ui/web"),
            "npx",
            &["--no-install", "tsc", "-p", ".", "--checkJs", "--strict"],
        )
    })?;
    step("clippy -D warnings", || {
        cargo(
            root,
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--locked",
                "--",
                "-D",
                "warnings",
            ],
        )
    })?;
    step("tests", || {
        if has_nextest() {
            // nextest does not run doctests; run them first so that nextest's summary is
            // the run's closing line.
            cargo(
                root,
                &["test", "--workspace", "--locked", "--doc", "--quiet"],
            )?;
            cargo(
                root,
                &[
                    "nextest",
                    "run",
                    "--workspace",
                    "--locked",
                    "--no-fail-fast",
                ],
            )
        } else {
            cargo(root, &["test", "--workspace", "--locked", "--no-fail-fast"])
        }
    })?;
    // Last and alone: it restarts Redis and raises RabbitMQ's memory alarm for a moment.
    step(
        "fault matrix, short form (cargo xtask chaos --short)",
        || {
            crate::chaos::run(
                root,
                &crate::chaos::ChaosArgs {
                    short: true,
                    only: None,
                    rate: None,
                },
            )
        },
    )?;
    eprintln!("==> all checks passed in {:.0?}", started.elapsed());
    Ok(())
}

fn step(name: &str, f: impl FnOnce() -> Result<()>) -> Result<()> {
    eprintln!("==> {name}");
    let started = Instant::now();
    f().with_context(|| format!("step `{name}` failed"))?;
    eprintln!("==> {name}: ok ({:.1?})", started.elapsed());
    Ok(())
}

fn cargo(root: &Path, args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    command(root, &cargo, args)
}

fn command(dir: &Path, program: &str, args: &[&str]) -> Result<()> {
    let status = Command::new(program)
        .args(args)
        .current_dir(dir)
        .status()
        .with_context(|| format!("running {program} {}", args.join(" ")))?;
    if !status.success() {
        let name = Path::new(program)
            .file_name()
            .map_or(program.into(), |n| n.to_string_lossy());
        bail!("`{name} {}` exited with {status}", args.join(" "));
    }
    Ok(())
}

fn has_nextest() -> bool {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}
