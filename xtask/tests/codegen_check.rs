//! `cargo xtask codegen --check` catches every way `generated/` can drift from the contracts,
//! and codegen is deterministic.

mod common;

use xtask::codegen::generate;
use xtask::output::Drift;

#[test]
fn the_checked_in_generated_tree_is_up_to_date() {
    let root = xtask::repo_root();
    let drift = generate(&root).unwrap().check(&root).unwrap();
    assert!(drift.is_empty(), "run `cargo xtask codegen`: {drift:?}");
}

#[test]
fn codegen_is_deterministic() {
    let root = xtask::repo_root();
    let first = generate(&root).unwrap();
    let second = generate(&root).unwrap();
    for path in [
        "generated/contracts/src/lib.rs",
        "generated/clients/read_model.rs",
        "generated/web/api.js",
        "generated/openapi/gateway.json",
    ] {
        assert_eq!(
            first.get(path),
            second.get(path),
            "{path} differs between two runs"
        );
        assert!(first.get(path).is_some(), "{path} is not generated");
    }
}

#[test]
fn editing_a_generated_file_or_a_schema_makes_the_check_fail_naming_the_file() {
    let copy = common::copy_repo("codegen-check", Some(&["schemas", "openapi", "generated"]));
    assert!(generate(&copy).unwrap().check(&copy).unwrap().is_empty());

    // A hand edit of a generated file.
    common::edit(
        &copy.join("generated/contracts/src/job.rs"),
        "pub struct Job {",
        "pub struct Job {\n    pub extra: u8,",
    );
    let drift = generate(&copy).unwrap().check(&copy).unwrap();
    assert_eq!(
        drift,
        vec![Drift::Stale("generated/contracts/src/job.rs".into())]
    );

    // A file nobody generates.
    std::fs::write(copy.join("generated/contracts/src/helper.rs"), "// mine\n").unwrap();
    let drift = generate(&copy).unwrap().check(&copy).unwrap();
    assert!(
        drift.contains(&Drift::Unexpected(
            "generated/contracts/src/helper.rs".into()
        )),
        "{drift:?}"
    );

    // A schema change without regenerating: the schema's own outputs are stale.
    let tree = generate(&copy).unwrap();
    tree.write(&copy).unwrap();
    common::edit(
        &copy.join("schemas/domain/alert.json"),
        "\"fingerprint\": { \"type\": \"string\" },",
        "\"fingerprint\": { \"type\": \"string\" },\n    \"silenced\": { \"type\": \"boolean\" },",
    );
    let drift = generate(&copy).unwrap().check(&copy).unwrap();
    for stale in [
        "generated/contracts/src/alert.rs",
        "generated/contracts/schemas/alert.json",
        "generated/openapi/read-model.json",
        "generated/web/api.js",
    ] {
        assert!(
            drift.contains(&Drift::Stale(stale.into())),
            "{stale} not reported: {drift:?}"
        );
    }
}

#[test]
fn a_broken_contract_is_a_clear_error() {
    let copy = common::copy_repo("codegen-broken", Some(&["schemas", "openapi"]));
    common::edit(
        &copy.join("schemas/read-model/job-page.json"),
        "../domain/job.json",
        "../domain/jobs.json",
    );
    let error = generate(&copy)
        .err()
        .expect("a dangling reference must fail");
    let message = format!("{error:#}");
    assert!(
        message.contains("schemas/read-model/job-page.json") && message.contains("jobs.json"),
        "{message}"
    );
}
