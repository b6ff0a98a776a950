//! `observatory-chaos`: the fault matrix of `cargo xtask chaos`. For each scenario it starts a
//! fresh system (its own database and prefixes), submits jobs at a steady rate through the
//! generated gateway client, injects one fault while they flow, lets the system settle, and
//! checks every accepted job in the store, the event log and the counters, in the manner of
//! Jepsen's queue checker: accepted, completed, lost, duplicated (run twice or counted twice),
//! stuck, and the seconds until jobs completed again after the fault. It exits non-zero when
//! any lost, duplicated or stuck cell is not 0.
//!
//! Everything runs on loopback against this machine's servers; the server faults (restarts,
//! the RabbitMQ memory alarm) disturb anything else using them, so run it alone.

mod check;
mod faults;
mod load;
mod system;

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Parser;

use crate::check::Row;
use crate::faults::Fault;
use crate::system::Shape;

#[derive(Parser, Debug)]
#[command(name = "observatory-chaos", about = "Run the fault matrix")]
struct Args {
    /// The `observatory` binary to run.
    #[arg(long)]
    observatory: std::path::PathBuf,
    /// The short form (what `cargo xtask test` runs): a killed processor, a killed `up`, the
    /// memory alarm, a Redis restart and the replicas.
    #[arg(long)]
    short: bool,
    /// Only the scenarios whose name contains this.
    #[arg(long)]
    only: Option<String>,
    /// Jobs submitted per second during each scenario.
    #[arg(long, default_value_t = 40)]
    rate: u32,
}

/// One line of the matrix: a system shape and the fault it suffers.
struct Scenario {
    name: &'static str,
    shape: Shape,
    fault: Fault,
    short: bool,
}

fn scenarios() -> Vec<Scenario> {
    use system::Role::*;
    let one = Shape::Servers {
        gateways: 1,
        processors: 1,
        metrics_engines: 1,
    };
    let scenario = |name, shape, fault, short| Scenario {
        name,
        shape,
        fault,
        short,
    };
    vec![
        scenario("no fault (baseline)", one, Fault::None, false),
        scenario("SIGKILL gateway", one, Fault::Kill(Gateway), false),
        scenario("SIGKILL processor", one, Fault::Kill(Processor), true),
        scenario(
            "SIGKILL metrics engine",
            one,
            Fault::Kill(MetricsEngine),
            false,
        ),
        scenario("SIGKILL read model", one, Fault::Kill(ReadModel), false),
        scenario(
            "SIGKILL observatory up --data-dir",
            Shape::Up,
            Fault::KillUp,
            true,
        ),
        scenario(
            "RabbitMQ app stop/start",
            one,
            Fault::RabbitMqRestartApp,
            false,
        ),
        scenario(
            "RabbitMQ node killed, restarted",
            one,
            Fault::RabbitMqKillNode,
            false,
        ),
        scenario(
            "RabbitMQ memory alarm on/off",
            one,
            Fault::RabbitMqMemoryAlarm,
            true,
        ),
        scenario(
            "PostgreSQL restart (immediate)",
            one,
            Fault::PostgresRestart,
            false,
        ),
        scenario("Redis restart (data lost)", one, Fault::RedisRestart, true),
        scenario(
            "MongoDB wire server restart",
            one,
            Fault::MongoRestart,
            false,
        ),
        scenario(
            "2 gateways, 3 processors, 2 metrics engines; SIGKILL a processor",
            Shape::Servers {
                gateways: 2,
                processors: 3,
                metrics_engines: 2,
            },
            Fault::Kill(Processor),
            true,
        ),
    ]
}

/// How long jobs flow before the fault, and after it is over.
const BEFORE: Duration = Duration::from_secs(4);
const AFTER: Duration = Duration::from_secs(8);

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<()> {
    let mut rows = Vec::new();
    for (index, scenario) in scenarios()
        .into_iter()
        .filter(|s| !args.short || s.short)
        .filter(|s| args.only.as_deref().is_none_or(|o| s.name.contains(o)))
        .enumerate()
    {
        eprintln!("==> {}", scenario.name);
        // obs_test_: `cargo xtask test` drops such leftover databases.
        let name = format!("obs_test_chaos_{}_{index}", std::process::id());
        let mut system = match system::System::start(&args.observatory, &name, scenario.shape).await
        {
            Ok(system) => system,
            Err(error) => {
                eprintln!("    could not start the system: {error:#}");
                rows.push(Row::failed(scenario.name, &format!("{error:#}")));
                continue;
            }
        };
        let load = load::Load::start(system.gateways(), args.rate);
        let progress = load::Progress::start(&system.read_model);
        tokio::time::sleep(BEFORE).await;
        let fault_started = Instant::now();
        let row = match scenario.fault.inject(&mut system).await {
            Ok(over) => {
                let fault_secs = fault_started.elapsed().as_secs_f64();
                tokio::time::sleep(AFTER).await;
                let accepted = load.stop().await;
                let recovered_in = progress.recovered_after(over);
                check::check(
                    scenario.name,
                    &system.read_model,
                    &accepted,
                    recovered_in,
                    fault_secs,
                )
                .await
            }
            Err(error) => {
                load.stop().await;
                Err(error.context("injecting the fault"))
            }
        };
        system.stop().await;
        match row {
            Ok(row) => {
                eprintln!("    {}", row.line());
                if row.ok() {
                    // The processes' logs are kept only where something went wrong.
                    let _ = std::fs::remove_dir_all(system::logs_of(&name));
                } else {
                    eprintln!("    logs: {}", system::logs_of(&name).display());
                }
                rows.push(row);
            }
            Err(error) => {
                eprintln!("    could not run: {error:#}");
                eprintln!("    logs: {}", system::logs_of(&name).display());
                rows.push(Row::failed(scenario.name, &error.to_string()));
            }
        }
    }
    println!("{}", check::table(&rows));
    let bad: Vec<&Row> = rows.iter().filter(|r| !r.ok()).collect();
    if !bad.is_empty() {
        bail!(
            "{} of {} scenarios broke a promise or could not run (see the table)",
            bad.len(),
            rows.len()
        );
    }
    Ok(())
}
