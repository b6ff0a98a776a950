//! Makes the servers the tests talk to present before the tests run: PostgreSQL, Redis and
//! RabbitMQ on their standard ports (started with the machine's own commands when they are
//! installed but stopped), and a MongoDB wire-protocol server (the `secantusdb` stand-in from
//! PyPI, installed and started when nothing listens on the MongoDB port). Anything it cannot
//! provide fails with the exact command to run. Tests never skip for a missing server.
//!
//! Each server can be replaced by setting the URL the tests read (see
//! `services/test-support`); a server given that way is only probed, never started.
//!
//! The UIs' tests need tools too ([`ensure_ui_tools`]): Debian's Chromium (the dashboard's
//! browser tests) and tmux (the terminal UI's end-to-end test), installed with apt-get when
//! missing, and the dashboard's development modules from npm (TypeScript, playwright-core,
//! axe-core), installed with `npm ci` when `ui/web/node_modules` is missing or older than the
//! lock file.

use anyhow::{Context, Result, bail};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    name: &'static str,
    env: &'static str,
    default_addr: &'static str,
    /// Shell command that starts it on this kind of machine (Debian packages).
    start: &'static str,
    install: &'static str,
}

const SERVERS: &[Server] = &[
    Server {
        name: "PostgreSQL",
        env: "OBSERVATORY_TEST_POSTGRES_URL",
        default_addr: "127.0.0.1:5432",
        start: "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
        install: "apt-get install postgresql (trust auth for user postgres on 127.0.0.1)",
    },
    Server {
        name: "Redis",
        env: "OBSERVATORY_TEST_REDIS_URL",
        default_addr: "127.0.0.1:6379",
        start: "redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save '' --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log",
        install: "apt-get install redis-server",
    },
    Server {
        name: "RabbitMQ",
        env: "OBSERVATORY_TEST_RABBITMQ_URL",
        default_addr: "127.0.0.1:5672",
        start: "rabbitmq-server -detached",
        install: "apt-get install rabbitmq-server (user guest/guest)",
    },
];

const MONGODB_ADDR: &str = "127.0.0.1:27017";

pub fn ensure(root: &Path) -> Result<()> {
    for server in SERVERS {
        let addr = address_of(server.env, server.default_addr);
        if reachable(&addr) {
            continue;
        }
        if std::env::var_os(server.env).is_some() {
            bail!(
                "{} at {addr} (from {}) is not reachable",
                server.name,
                server.env
            );
        }
        eprintln!(
            "  {} is not running on {addr}; starting it: {}",
            server.name, server.start
        );
        let started = Command::new("sh").args(["-c", server.start]).status();
        if !started.is_ok_and(|s| s.success()) || !wait_for(&addr, Duration::from_secs(90)) {
            bail!(
                "{} is not reachable on {addr} and could not be started.\n  start it: {}\n  or install it: {}",
                server.name,
                server.start,
                server.install
            );
        }
    }
    drop_leftover_test_databases();
    ensure_mongodb(root)
}

/// Tests create one PostgreSQL database each (`obs_test_*`) and leave it behind, so that the
/// state of a failed test can be inspected; the next run drops them here. Best effort: without
/// `psql` nothing is dropped and nothing fails.
fn drop_leftover_test_databases() {
    let url = std::env::var("OBSERVATORY_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let list = Command::new("psql")
        .arg(&url)
        .args([
            "-Atc",
            "SELECT datname FROM pg_database WHERE datname LIKE 'obs\\_test\\_%'",
        ])
        .stderr(Stdio::null())
        .output();
    let Ok(list) = list else { return };
    let names = String::from_utf8_lossy(&list.stdout).into_owned();
    let names: Vec<&str> = names
        .lines()
        .filter(|n| n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .collect();
    if names.is_empty() {
        return;
    }
    eprintln!("  dropping {} leftover test database(s)", names.len());
    for name in names {
        let _ = Command::new("psql")
            .arg(&url)
            .args([
                "-qc",
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            ])
            .stderr(Stdio::null())
            .status();
    }
}

fn ensure_mongodb(root: &Path) -> Result<()> {
    let addr = address_of("OBSERVATORY_TEST_MONGODB_URL", MONGODB_ADDR);
    if reachable(&addr) {
        return Ok(());
    }
    if std::env::var_os("OBSERVATORY_TEST_MONGODB_URL").is_some() {
        bail!("MongoDB at {addr} (from OBSERVATORY_TEST_MONGODB_URL) is not reachable");
    }
    if !has_command("secantusd-py") {
        eprintln!(
            "  installing the MongoDB wire-protocol stand-in: python3 -m pip install --pre secantusdb"
        );
        let status = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "--pre", "secantusdb"])
            .status()
            .context("running python3 -m pip (install Python 3 with pip)")?;
        if !status.success() || !has_command("secantusd-py") {
            bail!(
                "could not install secantusdb: run `python3 -m pip install --pre secantusdb`, or point OBSERVATORY_TEST_MONGODB_URL at a mongod"
            );
        }
    }
    let storage = root.join("target/mongodb-standin");
    std::fs::create_dir_all(&storage).with_context(|| format!("creating {}", storage.display()))?;
    let log = std::fs::File::create(storage.join("server.log"))?;
    eprintln!(
        "  starting the MongoDB stand-in on {MONGODB_ADDR} (data in {})",
        storage.display()
    );
    // setsid: the server outlives this command, like the other servers, and is shared by
    // later runs.
    Command::new("setsid")
        .args([
            "secantusd-py",
            "--host",
            "127.0.0.1",
            "--port",
            "27017",
            "--storage-path",
        ])
        .arg(&storage)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting secantusd-py")?;
    if !wait_for(MONGODB_ADDR, Duration::from_secs(60)) {
        bail!(
            "the MongoDB stand-in did not start; see {}",
            storage.join("server.log").display()
        );
    }
    Ok(())
}

/// Debian packages the UIs' tests need, each with the command that shows it is installed.
const UI_PACKAGES: &[(&str, &str)] = &[
    ("chromium", "chromium"),
    ("tmux", "tmux"),
    // promtool and amtool check the alerting rules and Alertmanager's configuration; the
    // servers themselves run in the alerts' end-to-end test.
    ("prometheus", "promtool"),
    ("prometheus-alertmanager", "amtool"),
];

/// The schemathesis release the API fuzzing test is pinned to (PyPI).
const SCHEMATHESIS: &str = "4.32.5";

/// Makes schemathesis (the property-based API tester) present at its pinned version.
fn ensure_schemathesis() -> Result<()> {
    let installed = Command::new("st").arg("--version").output().is_ok_and(|o| {
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains(SCHEMATHESIS)
    });
    if installed {
        return Ok(());
    }
    eprintln!("  installing schemathesis: python3 -m pip install schemathesis=={SCHEMATHESIS}");
    let status = Command::new("python3")
        .args(["-m", "pip", "install", "--quiet"])
        .arg(format!("schemathesis=={SCHEMATHESIS}"))
        .status()
        .context("running python3 -m pip (install Python 3 with pip)")?;
    if !status.success() || !has_command("st") {
        bail!(
            "could not install schemathesis: run `python3 -m pip install schemathesis=={SCHEMATHESIS}`"
        );
    }
    Ok(())
}

/// Makes the UI and API test tools present: the Debian packages, schemathesis, then the
/// dashboard's Node modules.
pub fn ensure_ui_tools(root: &Path) -> Result<()> {
    ensure_schemathesis()?;
    if !has_command("node") || !has_command("npm") {
        bail!(
            "Node.js 20 or newer with npm is needed for the dashboard's type check and browser tests: apt-get install -y nodejs npm"
        );
    }
    let missing: Vec<&str> = UI_PACKAGES
        .iter()
        .filter(|(_, command)| !has_command(command))
        .map(|(package, _)| *package)
        .collect();
    if !missing.is_empty() {
        install_debian_packages(&missing)?;
    }
    ensure_node_modules(&root.join("ui/web"))
}

/// `apt-get install`, with one `apt-get update` first when the install fails (a fresh machine's
/// package lists may be missing or old).
fn install_debian_packages(packages: &[&str]) -> Result<()> {
    let list = packages.join(" ");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    eprintln!("  installing {list}: apt-get install -y --no-install-recommends {list}");
    if install() {
        return Ok(());
    }
    eprintln!("  the install failed; apt-get update, then once more");
    let updated = Command::new("apt-get")
        .arg("update")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !updated || !install() {
        bail!(
            "could not install {list}: run `apt-get update && apt-get install -y --no-install-recommends {list}` as root"
        );
    }
    Ok(())
}

/// `npm ci` in `web` when its `node_modules` is missing or older than `package-lock.json`
/// (npm records each install in `node_modules/.package-lock.json`).
fn ensure_node_modules(web: &Path) -> Result<()> {
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let lock = modified(&web.join("package-lock.json"));
    let installed = modified(&web.join("node_modules/.package-lock.json"));
    if matches!((installed, lock), (Some(installed), Some(lock)) if installed >= lock) {
        return Ok(());
    }
    eprintln!("  installing the dashboard's development modules: (cd ui/web && npm ci)");
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(web)
        .status()
        .context("running npm ci")?;
    if !status.success() {
        bail!("`npm ci` in ui/web failed (see above): run `(cd ui/web && npm ci)`");
    }
    Ok(())
}

/// host:port from the URL in `env`, or the default.
fn address_of(env: &str, default: &str) -> String {
    std::env::var(env).map_or_else(|_| default.to_string(), |url| host_port(&url))
}

/// host:port of a URL such as `postgres://user@host:5432/db` (the first host of a list).
fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host_port = rest.split(['/', '?']).next().unwrap_or(rest);
    let host_port = host_port.rsplit_once('@').map_or(host_port, |(_, h)| h);
    host_port.split(',').next().unwrap_or(host_port).to_string()
}

fn reachable(addr: &str) -> bool {
    addr.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_millis(500)).is_ok())
}

fn wait_for(addr: &str, limit: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if reachable(addr) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    false
}

fn has_command(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_are_read_from_server_urls() {
        assert_eq!(
            host_port("postgres://postgres@127.0.0.1:5432/postgres"),
            "127.0.0.1:5432"
        );
        assert_eq!(
            host_port("amqp://guest:guest@localhost:5672/%2f"),
            "localhost:5672"
        );
        assert_eq!(
            host_port("mongodb://a:27017,b:27017/?directConnection=true"),
            "a:27017"
        );
        assert_eq!(host_port("redis://127.0.0.1:6379"), "127.0.0.1:6379");
        assert_eq!(
            address_of("OBSERVATORY_TEST_NEVER_SET", "127.0.0.1:1"),
            "127.0.0.1:1"
        );
    }
}
