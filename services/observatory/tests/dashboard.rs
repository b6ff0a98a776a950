//! The web dashboard's browser tests, run by `cargo test`: `ui/web/tests/browser.test.mjs`
//! drives Debian's Chromium with playwright-core against this crate's `observatory up` (it
//! starts, stops and restarts `up` itself). Their output is streamed as it comes; the test
//! passes when every scenario does. Missing tools fail the test with the command that provides
//! them (`cargo xtask test` installs them all): tests never skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Upper bound of the whole browser run (about half a minute on two cores).
const LIMIT: Duration = Duration::from_secs(600);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("services/observatory sits two levels below the repository root")
        .to_path_buf()
}

/// What the browser tests need, each with the command that provides it.
fn missing_tools(web: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !node {
        missing.push("Node.js 20 or newer: apt-get install -y nodejs npm".to_owned());
    }
    let chromium =
        std::env::var("OBSERVATORY_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    if !Path::new(&chromium).exists() {
        missing.push(format!(
            "Chromium at {chromium}: apt-get install -y --no-install-recommends chromium"
        ));
    }
    for module in ["playwright-core", "axe-core"] {
        if !web
            .join("node_modules")
            .join(module)
            .join("package.json")
            .exists()
        {
            missing.push(format!(
                "{module} in ui/web/node_modules: (cd ui/web && npm ci)"
            ));
        }
    }
    missing
}

#[test]
fn the_dashboard_passes_its_browser_tests_against_observatory_up() {
    let root = repo_root();
    let web = root.join("ui/web");
    let missing = missing_tools(&web);
    assert!(
        missing.is_empty(),
        "the browser tests need:\n  {}\n(`cargo xtask test` installs all of them)",
        missing.join("\n  ")
    );
    let mut child = Command::new("node")
        .args(["--test-reporter=spec", "tests/browser.test.mjs"])
        .current_dir(&web)
        .env("OBSERVATORY_BIN", env!("CARGO_BIN_EXE_observatory"))
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting node");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for node") {
            break status;
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the browser tests did not finish within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        status.success(),
        "the browser tests failed ({status}); screenshots are in target/dashboard-screenshots/"
    );
}
