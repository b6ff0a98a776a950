//! The version gate, end to end: in a copy of the repository, bump a schema's version, run
//! codegen, and build the consumers with cargo. Every consumer that acknowledges the schema
//! must fail with a message naming the schema, both versions and its acknowledgement file;
//! acknowledging makes the build pass again; a major bump removes the old module path.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// `cargo check` of every crate but xtask; returns (success, stderr).
fn check(copy: &Path) -> (bool, String) {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("version-gate-target");
    let output = Command::new(env!("CARGO"))
        .args([
            "check",
            "--workspace",
            "--exclude",
            "xtask",
            "--offline",
            "--keep-going",
            "--message-format",
            "short",
        ])
        .current_dir(copy)
        .env("CARGO_TARGET_DIR", target)
        .env_remove("RUSTFLAGS")
        .output()
        .expect("cargo runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn regenerate(copy: &Path) {
    xtask::codegen::generate(copy).unwrap().write(copy).unwrap();
}

/// Acknowledgement files (repo-relative) that name `schema`.
fn acknowledging(copy: &Path, schema: &str) -> Vec<String> {
    let mut found = Vec::new();
    for dir in ["clients", "services", "ui"] {
        let mut stack: Vec<PathBuf> = vec![copy.join(dir)];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.file_name().is_some_and(|n| n == "contracts.rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    if text.contains("reviewed_against!") && text.contains(&format!(" {schema}::v"))
                    {
                        found.push(
                            path.strip_prefix(copy)
                                .unwrap()
                                .to_string_lossy()
                                .into_owned(),
                        );
                    }
                }
            }
        }
    }
    found.sort();
    found
}

#[test]
fn a_version_bump_fails_every_consumer_until_it_acknowledges() {
    let copy = common::copy_repo("version-gate", None);
    let consumers = acknowledging(&copy, "job");
    assert!(
        consumers.len() >= 5,
        "expected the clients, services and TUI to use `job`: {consumers:?}"
    );
    let (ok, stderr) = check(&copy);
    assert!(ok, "the unmodified copy must build:\n{stderr}");

    // Minor bump: every consumer of `job` fails with its own message until it acknowledges.
    // Cargo stops at the first failing crate of a dependency chain (the processor depends on
    // the job store, which also uses `job`), so acknowledge round by round: each round's
    // failures must name the schema, both versions and their own file, and by the end every
    // consumer must have failed for itself.
    common::edit(
        &copy.join("schemas/domain/job.json"),
        "\"$version\": \"1.0.0\"",
        "\"$version\": \"1.1.0\"",
    );
    regenerate(&copy);
    let mut reported = Vec::new();
    loop {
        let (ok, stderr) = check(&copy);
        if ok {
            break;
        }
        for line in stderr
            .lines()
            .filter(|l| l.contains("error:") && !l.contains("could not compile"))
        {
            assert!(
                line.contains("contract schema `job`"),
                "unexpected error: {line}"
            );
        }
        let failing: Vec<&String> = consumers
            .iter()
            .filter(|f| !reported.contains(*f) && stderr.contains(&format!("in {f}")))
            .collect();
        assert!(
            !failing.is_empty(),
            "the build fails but names no consumer:\n{stderr}"
        );
        for file in failing {
            let expected = format!(
                "contract schema `job` (schemas/domain/job.json) is now version 1.1.0, but this crate was reviewed against 1.0.0. \
                 Review how this crate uses it, then acknowledge the new version: `job::v1 = \"1.1.0\"` in {file}"
            );
            assert!(
                stderr.contains(&expected),
                "wrong message for {file}; expected:\n{expected}\ngot:\n{stderr}"
            );
            common::edit(
                &copy.join(file),
                " job::v1 = \"1.0.0\"",
                " job::v1 = \"1.1.0\"",
            );
            reported.push(file.clone());
        }
    }
    reported.sort();
    assert_eq!(
        reported, consumers,
        "every consumer of `job` must have failed for itself before acknowledging"
    );

    // Major bump: the old module path is gone.
    common::edit(
        &copy.join("schemas/domain/job.json"),
        "\"$version\": \"1.1.0\"",
        "\"$version\": \"2.0.0\"",
    );
    regenerate(&copy);
    assert!(copy.join("generated/contracts/src/job.rs").exists());
    let module = std::fs::read_to_string(copy.join("generated/contracts/src/job.rs")).unwrap();
    assert!(module.contains("pub mod v2") && !module.contains("pub mod v1"));
    // Every consumer fails for itself, then builds again once it acknowledges `job::v2`.
    let mut reported = Vec::new();
    loop {
        let (ok, stderr) = check(&copy);
        if ok {
            break;
        }
        let failing: Vec<&String> = consumers
            .iter()
            .filter(|f| !reported.contains(*f) && stderr.contains(&format!("in {f}")))
            .collect();
        assert!(
            !failing.is_empty(),
            "the build fails but names no consumer:\n{stderr}"
        );
        for file in failing {
            let expected = format!(
                "contract schema `job` (schemas/domain/job.json) is now version 2.0.0 (module `job::v2`); `job::v1` no longer exists. \
                 Update this crate to the new major version, then acknowledge it: `job::v2 = \"2.0.0\"` in {file}"
            );
            assert!(
                stderr.contains(&expected),
                "wrong message for {file}; expected:\n{expected}\ngot:\n{stderr}"
            );
            common::edit(
                &copy.join(file),
                " job::v1 = \"1.1.0\"",
                " job::v2 = \"2.0.0\"",
            );
            reported.push(file.clone());
        }
    }
    reported.sort();
    assert_eq!(
        reported, consumers,
        "every consumer of `job` must have failed for itself after the major bump"
    );
}
