//! `observatory`: the one binary. It parses arguments, sets up logging and the shutdown
//! signal, and runs the chosen role; everything else lives in the service crates.

use clap::{Parser, Subcommand, ValueEnum};
use observatory_runtime::{shutdown, telemetry};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "observatory",
    version,
    about = "The Distributed Task Observatory: run one of its roles"
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
    /// HTTP intake: validates job submissions and publishes them with publisher confirms.
    Gateway(observatory_gateway::GatewayConfig),
    /// Runs jobs: owns their state in PostgreSQL, retries, dead-letters, relays the outbox.
    Processor(observatory_processor::ProcessorConfig),
    /// Stores every job event once in MongoDB and counts it once in Redis.
    MetricsEngine(observatory_metrics_engine::MetricsEngineConfig),
    /// The read-only HTTP API of the UIs: jobs, events, dead letters, queues, alerts, live stream.
    ReadModel(observatory_read_model::ReadModelConfig),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(match cli.log_format {
        LogFormat::Text => telemetry::LogFormat::Text,
        LogFormat::Json => telemetry::LogFormat::Json,
    });
    let shutdown = shutdown::on_signal();
    let result: anyhow::Result<()> = match cli.role {
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
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
