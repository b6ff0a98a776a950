//! Property-based API testing: schemathesis (from PyPI; `cargo xtask test` installs it) runs
//! every check against both OpenAPI documents on a running `observatory up`, with a fixed seed
//! and a bounded number of examples per operation. It fails on any 5xx, any response that
//! violates the contract, any request the contract calls valid that is refused (or invalid
//! that is accepted), and any request slower than the timeout. It runs on both adapter sets:
//! `up` on its embedded adapters, and `up` on this machine's RabbitMQ, PostgreSQL, Redis and
//! MongoDB stand-in.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use observatory_test_support::unique_name;
use support::{delete_queues, free_port, observatory, real_server_args};

/// Examples per operation and phase: about 1,000 requests in all, under a minute here.
const MAX_EXAMPLES: &str = "25";
const SEED: &str = "1";

struct Up(Child);

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until `url`'s /readyz answers 200 (its dependencies are connected).
fn wait_ready(url: &str) {
    use std::io::{Read, Write};
    let deadline = Instant::now() + Duration::from_secs(60);
    let port: u16 = url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port");
    while Instant::now() < deadline {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let asked = stream
                .write_all(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
            let mut answer = String::new();
            if asked.is_ok()
                && stream.read_to_string(&mut answer).is_ok()
                && answer.starts_with("HTTP/1.1 200")
            {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{url} did not become ready");
}

#[test]
fn both_apis_pass_schemathesis_with_every_check() {
    schemathesis_on_up(&[]);
}

#[tokio::test(flavor = "multi_thread")]
async fn both_apis_pass_schemathesis_with_every_check_on_the_real_servers() {
    let name = unique_name();
    let args = real_server_args(&name).await;
    tokio::task::spawn_blocking(move || schemathesis_on_up(&args))
        .await
        .expect("schemathesis ran");
    delete_queues(&name).await;
}

/// Runs schemathesis against both APIs of an `observatory up` started with `args`.
fn schemathesis_on_up(args: &[String]) {
    let st = Command::new("st").arg("--version").output();
    assert!(
        st.is_ok_and(|o| o.status.success()),
        "schemathesis is missing: python3 -m pip install schemathesis==4.32.5 (`cargo xtask test` installs it)"
    );
    let (gateway, read_model) = (free_port(), free_port());
    let up = Up(observatory()
        .args([
            "up",
            "--gateway-addr",
            &format!("127.0.0.1:{gateway}"),
            "--read-model-addr",
            &format!("127.0.0.1:{read_model}"),
            "--processor-addr",
            &format!("127.0.0.1:{}", free_port()),
            "--metrics-engine-addr",
            &format!("127.0.0.1:{}", free_port()),
        ])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting observatory up"));
    let reports = std::env::temp_dir().join(format!(
        "observatory-schemathesis-{}-{}",
        std::process::id(),
        unique_name()
    ));
    for (name, port) in [("gateway", gateway), ("read-model", read_model)] {
        let base = format!("http://127.0.0.1:{port}");
        wait_ready(&base);
        let output = Command::new("st")
            .args([
                "run",
                &format!("{base}/openapi.json"),
                "--url",
                &base,
                "--checks",
                "all",
                "--max-examples",
                MAX_EXAMPLES,
                "--seed",
                SEED,
                "--request-timeout",
                "10",
                "--no-color",
                // No example database: every run starts from the seed alone.
                "--generation-database",
                "none",
                "--report-dir",
            ])
            .arg(reports.join(name))
            .current_dir(std::env::temp_dir())
            .output()
            .expect("running schemathesis");
        let text = String::from_utf8_lossy(&output.stdout);
        // The summary's "Test cases: N generated, ..." line, for the log.
        if let Some(line) = text.lines().find(|l| l.contains(" generated")) {
            eprintln!("schemathesis on the {name}: {}", line.trim());
        }
        assert!(
            output.status.success(),
            "schemathesis found problems in the {name}:\n{text}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    drop(up);
    let _ = std::fs::remove_dir_all(reports);
}
