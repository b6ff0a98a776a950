//! Command-line flags and environment variables of the processor, with defaults that work
//! against the servers of a local development machine.

use std::net::SocketAddr;
use std::time::Duration;

/// Configuration of the processor (`observatory processor --help`).
#[derive(Debug, Clone, clap::Args)]
pub struct ProcessorConfig {
    /// RabbitMQ URL (the processor consumes `<prefix>.jobs` and publishes events and dead letters).
    #[arg(
        long,
        env = "OBSERVATORY_RABBITMQ_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    pub rabbitmq_url: String,

    /// PostgreSQL URL of the job store; the database is created when it does not exist.
    #[arg(
        long,
        env = "OBSERVATORY_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/observatory"
    )]
    pub postgres_url: String,

    /// Prefix of every RabbitMQ exchange and queue name (deployments sharing a broker differ here).
    #[arg(long, env = "OBSERVATORY_BROKER_PREFIX", default_value = "observatory")]
    pub broker_prefix: String,

    /// Address of the operational HTTP endpoints (/healthz, /readyz, /metrics, /openapi.json, /docs).
    #[arg(
        long,
        env = "OBSERVATORY_PROCESSOR_ADDR",
        default_value = "127.0.0.1:9101"
    )]
    pub processor_addr: SocketAddr,

    /// Most job messages delivered but not yet acknowledged (RabbitMQ prefetch).
    #[arg(long, env = "OBSERVATORY_PROCESSOR_PREFETCH", default_value_t = 64,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub prefetch: u16,

    /// Most jobs executing at once (new jobs and retries together).
    #[arg(long, env = "OBSERVATORY_PROCESSOR_CONCURRENCY", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub concurrency: u32,

    /// Most attempts of one job type executing at once (default: half of --concurrency,
    /// rounded up), so that one type cannot take every slot from the others; jobs beyond it
    /// wait, stored, until a slot of their type frees up.
    #[arg(long, env = "OBSERVATORY_PROCESSOR_TYPE_CONCURRENCY", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub type_concurrency: Option<u32>,

    /// Size of the PostgreSQL connection pool.
    #[arg(long, env = "OBSERVATORY_PROCESSOR_DB_CONNECTIONS", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub db_connections: u32,

    /// Delay before the first retry of a failed job, in milliseconds; it doubles per attempt.
    #[arg(long, env = "OBSERVATORY_RETRY_BACKOFF_BASE_MS", default_value_t = 200,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub retry_backoff_base_ms: u64,

    /// Longest delay between two attempts of a job, in milliseconds.
    #[arg(
        long,
        env = "OBSERVATORY_RETRY_BACKOFF_MAX_MS",
        default_value_t = 30_000,
        value_parser = clap::value_parser!(u64).range(1..=86_400_000)
    )]
    pub retry_backoff_max_ms: u64,

    /// Longest an attempt may run, in seconds: a slower attempt fails (retryably) with code
    /// `timeout`, which uses up the attempt. Above the longest built-in job (a one-minute
    /// sleep) by default.
    #[arg(
        long,
        env = "OBSERVATORY_ATTEMPT_TIMEOUT_SECS",
        default_value_t = 90,
        value_parser = clap::value_parser!(u64).range(1..=86_400)
    )]
    pub attempt_timeout_secs: u64,

    /// How long a running attempt belongs to this process without a renewal, in seconds (the
    /// store's clock): it is renewed every third of that, and when this process dies, another
    /// takes the attempt over once it runs out. The interrupted attempt does not use up the
    /// job's attempts.
    #[arg(
        long,
        env = "OBSERVATORY_ATTEMPT_LEASE_SECS",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(2..=600)
    )]
    pub attempt_lease_secs: u64,

    /// On shutdown, how long running jobs may take to finish, in seconds; jobs still running
    /// then are interrupted and run again (the interruption does not use up an attempt).
    #[arg(long, env = "OBSERVATORY_SHUTDOWN_GRACE_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(0..=3_600))]
    pub shutdown_grace_secs: u64,

    /// Name of this process in events and attempts (`worker`); default `processor-<random>`.
    #[arg(long, env = "OBSERVATORY_INSTANCE_ID")]
    pub instance_id: Option<String>,
}

impl ProcessorConfig {
    /// The configuration with every default (what `observatory processor` runs with no flags).
    pub fn local() -> Self {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            config: ProcessorConfig,
        }
        <Defaults as clap::Parser>::parse_from(["processor"]).config
    }

    pub(crate) fn retry_backoff(&self) -> RetryBackoff {
        RetryBackoff {
            base: Duration::from_millis(self.retry_backoff_base_ms),
            max: Duration::from_millis(self.retry_backoff_max_ms.max(self.retry_backoff_base_ms)),
        }
    }

    /// Slots per job type: `--type-concurrency`, at most `--concurrency`.
    pub(crate) fn per_type_concurrency(&self) -> u32 {
        self.type_concurrency
            .unwrap_or(self.concurrency.div_ceil(2))
            .min(self.concurrency)
    }

    pub(crate) fn attempt_timeout(&self) -> Duration {
        Duration::from_secs(self.attempt_timeout_secs)
    }

    pub(crate) fn attempt_lease(&self) -> Duration {
        Duration::from_secs(self.attempt_lease_secs)
    }

    pub(crate) fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    pub fn worker_name(&self) -> String {
        self.instance_id.clone().unwrap_or_else(|| {
            let random = uuid::Uuid::new_v4().simple().to_string();
            format!("processor-{}", &random[..8])
        })
    }
}

/// Delay before the next attempt of a failed job: exponential from `base`, capped at `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryBackoff {
    pub base: Duration,
    pub max: Duration,
}

impl RetryBackoff {
    /// The delay after attempt `attempt` (1-based) failed: `base * 2^(attempt-1)`, at most `max`.
    pub fn after_attempt(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(32);
        self.base
            .checked_mul(1u32 << doublings.min(31))
            .map_or(self.max, |d| d.min(self.max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_attempt_up_to_the_cap() {
        let backoff = RetryBackoff {
            base: Duration::from_millis(200),
            max: Duration::from_secs(30),
        };
        let delays: Vec<u128> = (1..=10)
            .map(|a| backoff.after_attempt(a).as_millis())
            .collect();
        assert_eq!(
            delays,
            [200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000]
        );
        assert_eq!(backoff.after_attempt(0), Duration::from_millis(200));
        assert_eq!(backoff.after_attempt(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn defaults_work_locally() {
        let config = ProcessorConfig::local();
        assert_eq!(config.broker_prefix, "observatory");
        assert_eq!(config.processor_addr.port(), 9101);
        assert_eq!(config.prefetch, 64);
        assert_eq!(config.concurrency, 32);
        assert_eq!(config.db_connections, 16);
        assert_eq!(
            config.retry_backoff(),
            RetryBackoff {
                base: Duration::from_millis(200),
                max: Duration::from_secs(30)
            }
        );
        assert!(config.worker_name().starts_with("processor-"));
    }
}
