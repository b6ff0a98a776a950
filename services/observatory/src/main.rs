//! `observatory`: the one binary. It parses arguments, sets up logging and the shutdown
//! signal, and runs the chosen role; everything else lives in the service crates.

use clap::{Parser, Subcommand, ValueEnum};
use observatory_runtime::{shutdown, telemetry};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "observatory",
    version,
    about = "The Distributed Task Observatory: run it (`observatory up`), one of its roles, or talk to it"
)]
struct Cli {
    /// Log format: human-readable text, or one JSON object per line.
    #[arg(long, env = "OBSERVATORY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    role: Role,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Role {
    /// Runs everything in one process, on embedded adapters unless servers are named.
    Up(observatory_up::UpConfig),
    /// HTTP intake: validates job submissions and publishes them with publisher confirms.
    Gateway(observatory_gateway::GatewayConfig),
    /// Runs jobs: owns their state in PostgreSQL, retries, dead-letters, relays the outbox.
    Processor(observatory_processor::ProcessorConfig),
    /// Stores every job event once in MongoDB and counts it once in Redis.
    MetricsEngine(observatory_metrics_engine::MetricsEngineConfig),
    /// The read-only HTTP API of the UIs: jobs, events, dead letters, queues, alerts, live stream.
    ReadModel(observatory_read_model::ReadModelConfig),
    /// The terminal UI: overview, jobs, job detail, events, dead letters, alerts, submit.
    Tui(observatory_tui::TuiConfig),
    /// Rebuilds the counters (overview, throughput) from the event log, e.g. after a Redis
    /// without persistence restarted. Safe while the system runs.
    Reconcile(observatory_metrics_engine::ReconcileConfig),
    #[command(flatten)]
    Client(observatory_cli::Command),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Role::Tui(config) = cli.role {
        // The UI owns the terminal: no logs on it.
        return match observatory_tui::run(config).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
        };
    }
    if let Role::Reconcile(config) = &cli.role {
        return match observatory_metrics_engine::run_reconcile(config).await {
            Ok(done) => {
                println!(
                    "rebuilt the counters from {} events of the event log ({} counted now)",
                    done.events, done.counted
                );
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
        };
    }
    if let Role::Client(command) = cli.role {
        // A client command prints its answer; logs would only get in the way.
        return match observatory_cli::run(command, &mut std::io::stdout()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
        };
    }
    let format = match cli.log_format {
        LogFormat::Text => telemetry::LogFormat::Text,
        LogFormat::Json => telemetry::LogFormat::Json,
    };
    // `up` is what a newcomer watches: warnings and its own progress, not every job's logs
    // (RUST_LOG=info shows those).
    match cli.role {
        Role::Up(_) => telemetry::init_with_default(format, "warn,observatory_up=info"),
        _ => telemetry::init(format),
    }
    let shutdown = shutdown::on_signal();
    let result: anyhow::Result<()> = match cli.role {
        Role::Up(config) => observatory_up::run(config, shutdown)
            .await
            .map_err(Into::into),
        Role::Gateway(config) => observatory_gateway::run(config, shutdown)
            .await
            .map_err(Into::into),
        Role::Processor(config) => observatory_processor::run(config, shutdown)
            .await
            .map_err(Into::into),
        Role::MetricsEngine(config) => observatory_metrics_engine::run(config, shutdown)
            .await
            .map_err(Into::into),
        Role::ReadModel(config) => observatory_read_model::run(config, shutdown)
            .await
            .map_err(Into::into),
        Role::Client(_) | Role::Tui(_) | Role::Reconcile(_) => unreachable!("handled above"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
