//! The faults, one at a time: a role killed with SIGKILL and started again, or a server of
//! this machine restarted (with the machine's own commands, as `cargo xtask test` starts
//! them), or RabbitMQ's memory alarm raised for a while. Each returns when the fault is over:
//! the instant from which the system should recover.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::system::{Role, System};

#[derive(Debug, Clone, Copy)]
pub enum Fault {
    None,
    Kill(Role),
    KillUp,
    RabbitMqRestartApp,
    RabbitMqKillNode,
    RabbitMqMemoryAlarm,
    PostgresRestart,
    RedisRestart,
    MongoRestart,
}

/// How long a server stays down, or an alarm raised.
const OUTAGE: Duration = Duration::from_secs(3);

fn sh(script: &str) -> Result<()> {
    let status = Command::new("sh")
        .args(["-c", script])
        .status()
        .with_context(|| format!("running {script}"))?;
    if !status.success() {
        bail!("`{script}` exited with {status}");
    }
    Ok(())
}

/// Waits until something listens on `addr` again.
async fn listening(addr: &str) -> Result<()> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(120) {
        if std::net::TcpStream::connect(addr).is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("nothing listens on {addr} two minutes after the restart")
}

/// Stops a server, leaves it down for [`OUTAGE`], starts it and waits until it listens.
async fn restart(stop: &str, start: &str, addr: &str) -> Result<()> {
    sh(stop)?;
    tokio::time::sleep(OUTAGE).await;
    sh(start)?;
    listening(addr).await
}

impl Fault {
    /// Injects the fault and ends it; returns when it ended.
    pub async fn inject(self, system: &mut System) -> Result<Instant> {
        match self {
            Fault::None => {}
            Fault::Kill(role) => system.kill_and_restart(Some(role)).await?,
            Fault::KillUp => system.kill_and_restart(None).await?,
            Fault::RabbitMqRestartApp => {
                restart(
                    "rabbitmqctl -q stop_app",
                    "rabbitmqctl -q start_app",
                    "127.0.0.1:5672",
                )
                .await?;
            }
            Fault::RabbitMqKillNode => {
                restart(
                    "pkill -9 -x beam.smp || true",
                    "rabbitmq-server -detached",
                    "127.0.0.1:5672",
                )
                .await?;
                sh("rabbitmqctl -q await_startup")?;
            }
            Fault::RabbitMqMemoryAlarm => {
                sh("rabbitmqctl -q set_vm_memory_high_watermark absolute 1")?;
                let noticed = system.wait_gateways_unready(OUTAGE).await;
                tokio::time::sleep(OUTAGE.saturating_sub(noticed.unwrap_or(OUTAGE))).await;
                // Lifted whatever happened: the machine's RabbitMQ must not stay blocked.
                sh("rabbitmqctl -q set_vm_memory_high_watermark 0.4")?;
                if noticed.is_none() {
                    bail!(
                        "no gateway became not-ready while RabbitMQ's memory alarm blocked publishing"
                    );
                }
            }
            Fault::PostgresRestart => {
                let cluster = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main";
                restart(
                    &format!("{cluster} stop -m immediate"),
                    &format!("{cluster} start"),
                    "127.0.0.1:5432",
                )
                .await?;
            }
            Fault::RedisRestart => {
                restart(
                    "redis-cli shutdown nosave || true",
                    "redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save '' --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log",
                    "127.0.0.1:6379",
                )
                .await?;
            }
            Fault::MongoRestart => {
                restart(
                    "pkill -9 -f '[s]ecantusd-py' || true",
                    "mkdir -p target/mongodb-standin && setsid secantusd-py --host 127.0.0.1 --port 27017 --storage-path target/mongodb-standin >> target/mongodb-standin/server.log 2>&1 < /dev/null &",
                    "127.0.0.1:27017",
                )
                .await?;
            }
        }
        let over = Instant::now();
        system.wait_all_ready().await?;
        Ok(over)
    }
}
