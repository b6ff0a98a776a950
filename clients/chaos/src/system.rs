//! The system under test, as child processes of `observatory`: the four roles on this
//! machine's servers (as many gateways, processors and metrics engines as the shape says), or
//! `observatory up --data-dir` alone. Each can be killed and started again with the same
//! flags, ports and data.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Gateway,
    Processor,
    MetricsEngine,
    ReadModel,
}

impl Role {
    fn command(self) -> &'static str {
        match self {
            Role::Gateway => "gateway",
            Role::Processor => "processor",
            Role::MetricsEngine => "metrics-engine",
            Role::ReadModel => "read-model",
        }
    }

    fn addr_flag(self) -> &'static str {
        match self {
            Role::Gateway => "--gateway-addr",
            Role::Processor => "--processor-addr",
            Role::MetricsEngine => "--metrics-engine-addr",
            Role::ReadModel => "--read-model-addr",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `observatory up --data-dir` on its embedded adapters.
    Up,
    /// The roles as separate processes on RabbitMQ, PostgreSQL, Redis and MongoDB.
    Servers {
        gateways: usize,
        processors: usize,
        metrics_engines: usize,
    },
}

/// What a process is, to find it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Up,
    Role(Role),
}

struct Process {
    kind: Kind,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
    /// Its HTTP address (where `/readyz` answers).
    addr: String,
}

pub struct System {
    bin: PathBuf,
    env: Vec<(String, String)>,
    processes: Vec<Process>,
    pub read_model: String,
    gateways: Vec<String>,
    data_dir: Option<PathBuf>,
}

/// Where the processes of scenario `name` write their logs (and `up` its data).
pub fn logs_of(name: &str) -> PathBuf {
    PathBuf::from("target/chaos").join(name)
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The servers' URLs, from the variables the tests read (or this machine's defaults).
fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

impl System {
    pub async fn start(bin: &Path, name: &str, shape: Shape) -> Result<Self> {
        let logs = logs_of(name);
        std::fs::create_dir_all(&logs).context("creating target/chaos")?;
        let admin = env_or(
            "OBSERVATORY_TEST_POSTGRES_URL",
            "postgres://postgres@127.0.0.1:5432/postgres",
        );
        let postgres = format!(
            "{}/{name}",
            admin
                .rsplit_once('/')
                .map_or(admin.as_str(), |(base, _)| base)
        );
        let env: Vec<(String, String)> = [
            ("OBSERVATORY_BROKER_PREFIX", name.to_owned()),
            ("OBSERVATORY_REDIS_PREFIX", name.to_owned()),
            ("OBSERVATORY_MONGODB_DATABASE", name.to_owned()),
            ("OBSERVATORY_POSTGRES_URL", postgres),
            (
                "OBSERVATORY_RABBITMQ_URL",
                env_or(
                    "OBSERVATORY_TEST_RABBITMQ_URL",
                    "amqp://guest:guest@127.0.0.1:5672/%2f",
                ),
            ),
            (
                "OBSERVATORY_REDIS_URL",
                env_or("OBSERVATORY_TEST_REDIS_URL", "redis://127.0.0.1:6379"),
            ),
            (
                "OBSERVATORY_MONGODB_URL",
                env_or(
                    "OBSERVATORY_TEST_MONGODB_URL",
                    "mongodb://127.0.0.1:27017/?directConnection=true",
                ),
            ),
            // Faster takeover of a killed processor's attempts than the default.
            ("OBSERVATORY_ATTEMPT_LEASE_SECS", "3".to_owned()),
            ("OBSERVATORY_RETRY_BACKOFF_BASE_MS", "100".to_owned()),
            ("OBSERVATORY_RETRY_BACKOFF_MAX_MS", "1000".to_owned()),
            ("RUST_LOG", "warn".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let mut system = Self {
            bin: bin.to_owned(),
            env,
            processes: Vec::new(),
            read_model: String::new(),
            gateways: Vec::new(),
            data_dir: None,
        };
        match shape {
            Shape::Up => {
                let dir = logs.join("data");
                let ports = [free_port()?, free_port()?, free_port()?, free_port()?];
                let addr = |p: u16| format!("127.0.0.1:{p}");
                let args = vec![
                    "up".to_owned(),
                    "--gateway-addr".to_owned(),
                    addr(ports[0]),
                    "--read-model-addr".to_owned(),
                    addr(ports[1]),
                    "--processor-addr".to_owned(),
                    addr(ports[2]),
                    "--metrics-engine-addr".to_owned(),
                    addr(ports[3]),
                    "--data-dir".to_owned(),
                    dir.display().to_string(),
                ];
                system.gateways.push(format!("http://{}", addr(ports[0])));
                system.read_model = format!("http://{}", addr(ports[1]));
                system.data_dir = Some(dir);
                system.processes.push(Process {
                    kind: Kind::Up,
                    args,
                    log: logs.join("up.log"),
                    child: None,
                    addr: addr(ports[1]),
                });
            }
            Shape::Servers {
                gateways,
                processors,
                metrics_engines,
            } => {
                // The processor first: it creates the database the read model reads.
                for (role, count) in [
                    (Role::Processor, processors),
                    (Role::MetricsEngine, metrics_engines),
                    (Role::ReadModel, 1),
                    (Role::Gateway, gateways),
                ] {
                    for i in 0..count {
                        let addr = format!("127.0.0.1:{}", free_port()?);
                        match role {
                            Role::Gateway => system.gateways.push(format!("http://{addr}")),
                            Role::ReadModel => system.read_model = format!("http://{addr}"),
                            _ => {}
                        }
                        system.processes.push(Process {
                            kind: Kind::Role(role),
                            args: vec![
                                role.command().to_owned(),
                                role.addr_flag().to_owned(),
                                addr.clone(),
                            ],
                            log: logs.join(format!("{}-{i}.log", role.command())),
                            child: None,
                            addr,
                        });
                    }
                }
            }
        }
        for index in 0..system.processes.len() {
            system.spawn(index)?;
        }
        for index in 0..system.processes.len() {
            system.wait_ready(index).await?;
        }
        Ok(system)
    }

    pub fn gateways(&self) -> Vec<String> {
        self.gateways.clone()
    }

    fn spawn(&mut self, index: usize) -> Result<()> {
        let process = &mut self.processes[index];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&process.log)?;
        let child = Command::new(&self.bin)
            .args(&process.args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting observatory {}", process.args.join(" ")))?;
        process.child = Some(child);
        Ok(())
    }

    async fn wait_ready(&self, index: usize) -> Result<()> {
        let process = &self.processes[index];
        let url = format!("http://{}/readyz", process.addr);
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(90) {
            if reqwest::get(&url)
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!(
            "observatory {} did not become ready; see {}",
            process.args.join(" "),
            process.log.display()
        )
    }

    fn find(&self, kind: Kind) -> Result<usize> {
        self.processes
            .iter()
            .position(|p| p.kind == kind)
            .with_context(|| format!("no {kind:?} in this system"))
    }

    /// SIGKILL of the first process of `role` (or of `up`), then the same process again.
    pub async fn kill_and_restart(&mut self, role: Option<Role>) -> Result<()> {
        let index = self.find(role.map_or(Kind::Up, Kind::Role))?;
        if let Some(mut child) = self.processes[index].child.take() {
            child.kill().context("kill -9")?;
            child.wait()?;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        self.spawn(index)?;
        self.wait_ready(index).await
    }

    /// Waits until every gateway answers `/readyz` with an error (it noticed an outage);
    /// how long that took, or `None` if one was still ready after `within`.
    pub async fn wait_gateways_unready(&self, within: Duration) -> Option<Duration> {
        let started = Instant::now();
        while started.elapsed() < within {
            let mut all = true;
            for gateway in &self.gateways {
                let ready = reqwest::get(format!("{gateway}/readyz"))
                    .await
                    .is_ok_and(|r| r.status().is_success());
                all &= !ready;
            }
            if all {
                return Some(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }

    /// Waits until every process answers `/readyz` (after a server came back).
    pub async fn wait_all_ready(&self) -> Result<()> {
        for index in 0..self.processes.len() {
            self.wait_ready(index).await?;
        }
        Ok(())
    }

    /// SIGTERM to every process, and the data directory removed.
    pub async fn stop(&mut self) {
        for process in &mut self.processes {
            if let Some(child) = &process.child {
                let _ = Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status();
            }
        }
        for process in &mut self.processes {
            if let Some(mut child) = process.child.take() {
                let started = Instant::now();
                while child.try_wait().ok().flatten().is_none() {
                    if started.elapsed() > Duration::from_secs(30) {
                        let _ = child.kill();
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                let _ = child.wait();
            }
        }
        if let Some(dir) = &self.data_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Drop for System {
    fn drop(&mut self) {
        for process in &mut self.processes {
            if let Some(mut child) = process.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
