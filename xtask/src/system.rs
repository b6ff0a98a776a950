//! Runs the whole system as child processes: the four roles of the `observatory` binary
//! against the local PostgreSQL, RabbitMQ, Redis and MongoDB, each deployment under its own
//! database and prefixes. `cargo xtask run` and `cargo xtask bench` both use it.

use anyhow::{Context, Result, bail};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the four roles listen.
pub struct Ports {
    pub gateway: String,
    pub read_model: String,
    pub processor: String,
    pub metrics_engine: String,
}

/// The four roles as child processes.
#[derive(Default)]
pub struct System {
    children: Vec<(String, Child)>,
    pub gateway: String,
    pub read_model: String,
}

impl System {
    /// Starts every role with its own database `name` (created when missing), broker prefix,
    /// Redis prefix and MongoDB database, logging to `target/<name>/<role>.log`.
    pub fn start(
        root: &Path,
        bin: &Path,
        name: &str,
        ports: &Ports,
        log_level: &str,
    ) -> Result<Self> {
        let logs = root.join("target").join(name);
        std::fs::create_dir_all(&logs)?;
        let postgres = std::env::var("OBSERVATORY_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let exists = Command::new("psql")
            .arg(&postgres)
            .args([
                "-Atc",
                &format!("SELECT 1 FROM pg_database WHERE datname = '{name}'"),
            ])
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"1"));
        if !exists {
            let created = Command::new("psql")
                .arg(&postgres)
                .args(["-qc", &format!("CREATE DATABASE {name}")])
                .status();
            if !created.is_ok_and(|s| s.success()) {
                bail!(
                    "could not create the database {name} (is psql installed and PostgreSQL running?)"
                );
            }
        }
        let postgres_url = format!(
            "{}/{name}",
            postgres
                .rsplit_once('/')
                .map_or(postgres.as_str(), |(b, _)| b)
        );
        let (gateway, read_model, processor, metrics_engine) = (
            ports.gateway.clone(),
            ports.read_model.clone(),
            ports.processor.clone(),
            ports.metrics_engine.clone(),
        );
        let mut system = System {
            children: Vec::new(),
            gateway: gateway.clone(),
            read_model: read_model.clone(),
        };
        let common = [
            ("OBSERVATORY_BROKER_PREFIX", name.to_string()),
            ("OBSERVATORY_POSTGRES_URL", postgres_url),
            ("OBSERVATORY_REDIS_PREFIX", name.to_string()),
            ("OBSERVATORY_MONGODB_DATABASE", name.to_string()),
            ("RUST_LOG", log_level.to_string()),
        ];
        for (role, flag, addr) in [
            ("processor", "--processor-addr", &processor),
            ("metrics-engine", "--metrics-engine-addr", &metrics_engine),
            ("read-model", "--read-model-addr", &read_model),
            ("gateway", "--gateway-addr", &gateway),
        ] {
            let log = std::fs::File::create(logs.join(format!("{role}.log")))?;
            let child = Command::new(bin.join("observatory"))
                .args([role, flag, addr])
                .envs(common.iter().map(|(k, v)| (*k, v.as_str())))
                .stdout(log.try_clone()?)
                .stderr(log)
                .stdin(Stdio::null())
                .spawn()
                .with_context(|| format!("starting observatory {role}"))?;
            system.children.push((role.to_string(), child));
            eprintln!("  started {role} on {addr} (log: target/{name}/{role}.log)");
        }
        for (role, addr) in [
            ("processor", &processor),
            ("metrics-engine", &metrics_engine),
            ("read-model", &read_model),
            ("gateway", &gateway),
        ] {
            if !wait_ready(addr, Duration::from_secs(60)) {
                system.stop();
                bail!(
                    "observatory {role} did not become ready on {addr}; see target/{name}/{role}.log"
                );
            }
        }
        eprintln!("  every role is ready");
        Ok(system)
    }

    /// Starts `observatory up` (all four roles in one process, on its embedded adapters: no
    /// server involved), logging to `target/up/up.log`, and waits until it is ready.
    pub fn start_up(root: &Path, bin: &Path, ports: &Ports, log_level: &str) -> Result<Self> {
        Self::start_up_in(root, bin, ports, log_level, None)
    }

    /// [`System::start_up`], keeping its state in `data_dir` when given (`--data-dir`).
    pub fn start_up_in(
        root: &Path,
        bin: &Path,
        ports: &Ports,
        log_level: &str,
        data_dir: Option<&Path>,
    ) -> Result<Self> {
        let logs = root.join("target").join("up");
        std::fs::create_dir_all(&logs)?;
        let log = std::fs::File::create(logs.join("up.log"))?;
        let mut command = Command::new(bin.join("observatory"));
        // A server named in the environment would replace an embedded adapter.
        for name in [
            "OBSERVATORY_RABBITMQ_URL",
            "OBSERVATORY_POSTGRES_URL",
            "OBSERVATORY_REDIS_URL",
            "OBSERVATORY_MONGODB_URL",
            "OBSERVATORY_DATA_DIR",
        ] {
            command.env_remove(name);
        }
        let child = command
            .args([
                "up",
                "--gateway-addr",
                &ports.gateway,
                "--read-model-addr",
                &ports.read_model,
                "--processor-addr",
                &ports.processor,
                "--metrics-engine-addr",
                &ports.metrics_engine,
            ])
            .args(
                data_dir
                    .map(|d| ["--data-dir".as_ref(), d.as_os_str()])
                    .into_iter()
                    .flatten(),
            )
            .env("RUST_LOG", log_level)
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .context("starting observatory up")?;
        let mut system = System {
            children: vec![("up".to_string(), child)],
            gateway: ports.gateway.clone(),
            read_model: ports.read_model.clone(),
        };
        eprintln!("  started observatory up (log: target/up/up.log)");
        for addr in [&ports.gateway, &ports.read_model] {
            if !wait_ready(addr, Duration::from_secs(60)) {
                system.stop();
                bail!("observatory up did not become ready on {addr}; see target/up/up.log");
            }
        }
        eprintln!("  observatory up is ready");
        Ok(system)
    }

    /// Waits until any role exits (e.g. after Ctrl-C, which reaches the whole process group).
    pub fn wait_any(&mut self) {
        loop {
            for (role, child) in &mut self.children {
                if let Ok(Some(status)) = child.try_wait() {
                    eprintln!("  {role} exited ({status}); stopping the others");
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGTERM to every role (graceful shutdown), then wait for them.
    pub fn stop(&mut self) {
        for (_, child) in &self.children {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        for (role, child) in &mut self.children {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(50))
                    }
                    _ => {
                        eprintln!("  {role} did not stop within 20 s; killing it");
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
        self.children.clear();
    }
}

impl Drop for System {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `cargo xtask run`: the whole system on its standard ports until Ctrl-C.
pub fn run_system(root: &Path, release: bool) -> Result<()> {
    crate::test_infra::ensure(root)?;
    eprintln!(
        "==> building observatory ({})",
        if release { "release" } else { "debug" }
    );
    let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    build
        .args(["build", "--locked", "-p", "observatory"])
        .current_dir(root);
    if release {
        build.arg("--release");
    }
    if !build.status().context("running cargo build")?.success() {
        bail!("building observatory failed");
    }
    let bin = root.join(if release {
        "target/release"
    } else {
        "target/debug"
    });
    let ports = Ports {
        gateway: "127.0.0.1:3000".into(),
        read_model: "127.0.0.1:8080".into(),
        processor: "127.0.0.1:9101".into(),
        metrics_engine: "127.0.0.1:9102".into(),
    };
    let mut system = System::start(root, &bin, "observatory", &ports, "info")?;
    eprintln!(
        "\nThe Observatory is running:\n  gateway     http://{g}   (docs: http://{g}/docs)\n  read model  http://{r}   (docs: http://{r}/docs)\n  processor   http://{p}/metrics\n  metrics     http://{m}/metrics\n\nSubmit a job:\n  curl -s -X POST http://{g}/jobs -H 'content-type: application/json' -d '{{\"type\":\"sleep\",\"payload\":{{\"durationMs\":500}}}}'\nThen look:\n  curl -s http://{r}/jobs\n\nLogs are in target/observatory/. Ctrl-C stops everything.",
        g = ports.gateway,
        r = ports.read_model,
        p = ports.processor,
        m = ports.metrics_engine
    );
    system.wait_any();
    system.stop();
    Ok(())
}

pub fn free_port() -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.to_string())
}

/// Polls `GET /readyz` until it answers 200.
fn wait_ready(addr: &str, limit: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Ok(mut stream) = TcpStream::connect(addr) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = write!(stream, "GET /readyz HTTP/1.0\r\nHost: {addr}\r\n\r\n");
            let mut head = [0u8; 12];
            if stream.read_exact(&mut head).is_ok() && head.ends_with(b"200") {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}
