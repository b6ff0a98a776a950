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
    /// Check contract compatibility.
    ///
    /// With no arguments (repo mode, what CI runs): every schema and OpenAPI document against
    /// every released version of the same major, in schemas/released/ and openapi/released/.
    /// Options: --format text|json.
    ///
    /// Pair mode: --old OLD --new NEW [--mode backward|forward|full] [--format text|json].
    ///
    /// Exit 0 compatible, 1 incompatible, 2 invalid input or usage.
    #[command(name = "check-compat", disable_help_flag = true)]
    CheckCompat {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Record the current version of every contract as released (after checking them).
    #[command(name = "release-contracts")]
    ReleaseContracts,
    /// Run every check: rustfmt, codegen --check, check-compat, clippy, and the test suite.
    Test,
    /// Start the whole system and measure throughput and latency with the load generator.
    Bench(xtask::bench::BenchArgs),
    /// Run the fault matrix: the system under load, one fault at a time (killed roles and
    /// `up`, restarted servers, a RabbitMQ memory alarm, many replicas), checking that no
    /// accepted job is lost, duplicated or stuck. Disturbs this machine's servers: run alone.
    Chaos(xtask::chaos::ChaosArgs),
    /// Run the fuzz targets (property tests of the parsers facing hostile input: the request
    /// body and its validator, the page cursor, the event envelope, the contract loader) for
    /// many more cases than `cargo xtask test` does, in release mode. A failing case is
    /// shrunk and kept in the target's proptest-regressions/ file.
    Fuzz {
        /// Cases per target.
        #[arg(long, default_value_t = 200_000)]
        cases: u32,
    },
    /// Run the whole system (four roles against local PostgreSQL, RabbitMQ, Redis and the
    /// MongoDB stand-in, all started when missing) on its standard ports until Ctrl-C.
    Run {
        /// Build with optimisations (slower first build, faster system).
        #[arg(long)]
        release: bool,
    },
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
        Command::CheckCompat { args } => {
            let pair = args.iter().any(|a| {
                a == "--old" || a == "--new" || a.starts_with("--old=") || a.starts_with("--new=")
            });
            let help = args.iter().any(|a| a == "--help" || a == "-h");
            let code = if pair || help {
                contract_compat::run_pair_cli(&args)
            } else {
                contract_compat::run_repo_cli(&root, &args)
            };
            Ok(exit_code(code))
        }
        Command::ReleaseContracts => Ok(exit_code(contract_compat::run_repo_cli(
            &root,
            &["--release".to_string()],
        ))),
        Command::Run { release } => {
            xtask::system::run_system(&root, release)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(args) => {
            xtask::bench::run(&root, args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Chaos(args) => {
            xtask::chaos::run(&root, &args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Fuzz { cases } => {
            xtask::fuzz::run(&root, cases)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Test => {
            xtask::test_all::run(&root)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(2))
}
