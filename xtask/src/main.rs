//! `cargo xtask`: the project's developer commands. See `cargo xtask --help`.

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Developer commands for the Distributed Task Observatory"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate everything under generated/ from schemas/ and openapi/.
    Codegen {
        /// Do not write: exit 1, listing every file, when generated/ is stale or edited by hand.
        #[arg(long)]
        check: bool,
    },
    /// Run every check: rustfmt, codegen --check, check-compat, clippy, and the test suite.
    Test,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let root = xtask::repo_root();
    match cli.command {
        Command::Codegen { check } => {
            let started = std::time::Instant::now();
            let tree = xtask::codegen::generate(&root)?;
            if check {
                let drift = tree.check(&root)?;
                if drift.is_empty() {
                    eprintln!(
                        "generated/ is up to date ({} files, {:.1?})",
                        tree.len(),
                        started.elapsed()
                    );
                    return Ok(ExitCode::SUCCESS);
                }
                eprintln!("generated/ does not match the contracts:");
                for d in &drift {
                    eprintln!("  {d}");
                }
                eprintln!(
                    "run `cargo xtask codegen` to regenerate (never edit generated/ by hand)"
                );
                return Ok(ExitCode::from(1));
            }
            let (written, removed) = tree.write(&root)?;
            eprintln!(
                "codegen: {} files, {written} written, {removed} removed ({:.1?})",
                tree.len(),
                started.elapsed()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Test => {
            xtask::test_all::run(&root)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
