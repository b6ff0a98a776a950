//! Property-based API testing: schemathesis (from PyPI; `cargo xtask test` installs it) runs
//! every check against both OpenAPI documents on a running `observatory up`, with a fixed seed
//! and a bounded number of examples per operation. It fails on any 5xx, any response that
//! violates the contract, any request the contract calls valid that is refused (or invalid
//! that is accepted), and any request slower than the timeout.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{free_port, observatory};

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

fn wait_ready(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let port: u16 = url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port");
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{url} did not start listening");
}

#[test]
fn both_apis_pass_schemathesis_with_every_check() {
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
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting observatory up"));
    let reports =
        std::env::temp_dir().join(format!("observatory-schemathesis-{}", std::process::id()));
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
