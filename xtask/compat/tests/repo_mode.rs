//! Repo mode on temporary trees: versions, the release record, and the rules
//! described in `src/repo.rs`.

use std::fs;
use std::path::Path;

use contract_compat::{Level, RepoReport, check_repo, release, run_repo_cli_with};
use serde_json::{Value, json};
use tempfile::TempDir;

fn write(root: &Path, rel: &str, v: &Value) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    fs::write(&p, serde_json::to_string_pretty(v).expect("json")).expect("write");
}

fn write_text(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    fs::write(&p, text).expect("write");
}

fn job(version: &str, props: Value, required: Value) -> Value {
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": "https://example.invalid/schemas/domain/job.json",
        "$version": version,
        "title": "Job",
        "type": "object",
        "properties": props,
        "required": required,
    })
}

fn base_props() -> Value {
    json!({"id": {"type": "string"}, "kind": {"type": "string", "enum": ["sleep", "compute"]}})
}

const JOB: &str = "schemas/domain/job.json";

fn check(root: &Path) -> RepoReport {
    check_repo(root).expect("check")
}

fn errors(r: &RepoReport) -> Vec<String> {
    r.findings
        .iter()
        .filter(|f| f.level != Level::Info)
        .map(|f| format!("{}: {}", f.file, f.message))
        .collect()
}

fn assert_ok(r: &RepoReport) {
    assert!(r.ok(), "expected ok:\n{}", r.to_text());
    assert_eq!(r.exit_code(), 0);
}

fn assert_fails(r: &RepoReport, needle: &str) {
    assert_eq!(r.exit_code(), 1, "expected violations:\n{}", r.to_text());
    assert!(
        errors(r).iter().any(|e| e.contains(needle)),
        "expected `{needle}` in:\n{}",
        r.to_text()
    );
}

/// A tree with job.json 1.0.0 released.
fn released_tree() -> TempDir {
    let dir = TempDir::new().expect("tmp");
    write(dir.path(), JOB, &job("1.0.0", base_props(), json!(["id"])));
    let w = release(dir.path()).expect("release");
    assert_eq!(
        w,
        vec!["schemas/released/domain/job/1.0.0.json".to_string()]
    );
    dir
}

#[test]
fn unchanged_released_tree_passes() {
    let dir = released_tree();
    let r = check(dir.path());
    assert_ok(&r);
}

#[test]
fn new_document_is_reported_as_new() {
    let dir = TempDir::new().expect("tmp");
    write(dir.path(), JOB, &job("0.1.0", base_props(), json!([])));
    let r = check(dir.path());
    assert_ok(&r);
    assert!(
        r.findings
            .iter()
            .any(|f| f.level == Level::Info && f.message.contains("new document"))
    );
}

#[test]
fn change_without_bump_fails() {
    let dir = released_tree();
    let mut props = base_props();
    props["note"] = json!({"type": "string"});
    write(dir.path(), JOB, &job("1.0.0", props, json!(["id"])));
    assert_fails(&check(dir.path()), "changed without a version bump");
}

#[test]
fn even_a_description_change_needs_a_bump() {
    let dir = released_tree();
    let mut v = job("1.0.0", base_props(), json!(["id"]));
    v["description"] = json!("now documented");
    write(dir.path(), JOB, &v);
    assert_fails(&check(dir.path()), "changed without a version bump");
}

#[test]
fn reformatting_without_content_change_passes() {
    let dir = released_tree();
    let v = job("1.0.0", base_props(), json!(["id"]));
    write_text(dir.path(), JOB, &serde_json::to_string(&v).expect("json"));
    assert_ok(&check(dir.path()));
}

#[test]
fn breaking_change_with_minor_bump_fails() {
    let dir = released_tree();
    let mut props = base_props();
    props["priority"] = json!({"type": "integer"});
    write(
        dir.path(),
        JOB,
        &job("1.1.0", props, json!(["id", "priority"])),
    );
    let r = check(dir.path());
    assert_fails(&r, "needs a major bump");
    assert_fails(&r, "required-added");
    assert_fails(&r, "1.0.0 -> 1.1.0");
}

#[test]
fn breaking_change_with_major_bump_passes() {
    let dir = released_tree();
    let mut props = base_props();
    props["priority"] = json!({"type": "integer"});
    write(
        dir.path(),
        JOB,
        &job("2.0.0", props, json!(["id", "priority"])),
    );
    let r = check(dir.path());
    assert_ok(&r);
    assert!(
        r.findings
            .iter()
            .any(|f| f.message.contains("new major version"))
    );
}

#[test]
fn version_going_down_fails() {
    let dir = released_tree();
    let mut props = base_props();
    props["note"] = json!({"type": "string"});
    write(dir.path(), JOB, &job("1.1.0", props.clone(), json!(["id"])));
    assert_ok(&check(dir.path()));
    release(dir.path()).expect("release");
    write(dir.path(), JOB, &job("1.0.1", props, json!(["id"])));
    assert_fails(
        &check(dir.path()),
        "lower than the highest released version 1.1.0",
    );
    // Going back to the exact released 1.0.0 is also lower than 1.1.0.
    write(dir.path(), JOB, &job("1.0.0", base_props(), json!(["id"])));
    assert_fails(&check(dir.path()), "lower than");
}

#[test]
fn compatible_change_with_minor_bump_passes() {
    let dir = released_tree();
    let mut props = base_props();
    props["note"] = json!({"type": "string"});
    write(dir.path(), JOB, &job("1.1.0", props, json!(["id"])));
    assert_ok(&check(dir.path()));
}

#[test]
fn compatible_change_with_patch_bump_fails() {
    let dir = released_tree();
    let mut props = base_props();
    props["note"] = json!({"type": "string"});
    write(dir.path(), JOB, &job("1.0.1", props, json!(["id"])));
    assert_fails(&check(dir.path()), "needs at least a minor bump");
}

#[test]
fn annotation_only_change_passes_with_patch_bump() {
    let dir = released_tree();
    let mut v = job("1.0.1", base_props(), json!(["id"]));
    v["description"] = json!("A job as stored by the processor.");
    v["properties"]["id"]["title"] = json!("Job id");
    write(dir.path(), JOB, &v);
    assert_ok(&check(dir.path()));
}

#[test]
fn break_against_an_older_release_of_the_same_major_fails() {
    // 1.0.0 has `note: string`. 1.1.0 drops the optional `note` (compatible
    // both ways: the objects are open). 1.2.0 re-adds `note` as an integer:
    // compatible with 1.1.0 (which neither emits nor constrains `note`), but
    // an old 1.0.0 reader still in the queue rejects an integer `note`, and a
    // 1.0.0 producer's string `note` is rejected by 1.2.0.
    let dir = TempDir::new().expect("tmp");
    let mut p1 = base_props();
    p1["note"] = json!({"type": "string"});
    write(dir.path(), JOB, &job("1.0.0", p1, json!(["id"])));
    release(dir.path()).expect("release 1.0.0");
    write(dir.path(), JOB, &job("1.1.0", base_props(), json!(["id"])));
    assert_ok(&check(dir.path()));
    release(dir.path()).expect("release 1.1.0");
    let mut p3 = base_props();
    p3["note"] = json!({"type": "integer"});
    write(dir.path(), JOB, &job("1.2.0", p3, json!(["id"])));
    let r = check(dir.path());
    assert_fails(&r, "1.0.0 -> 1.2.0 breaks full compatibility");
    assert!(
        !errors(&r).iter().any(|e| e.contains("1.1.0 -> 1.2.0")),
        "1.2.0 is compatible with 1.1.0:\n{}",
        r.to_text()
    );
}

#[test]
fn release_records_then_check_passes_and_never_overwrites() {
    let dir = TempDir::new().expect("tmp");
    write(dir.path(), JOB, &job("1.0.0", base_props(), json!(["id"])));
    write_text(dir.path(), "openapi/gateway.yaml", &api("1.0.0", ""));
    let w = release(dir.path()).expect("release");
    assert_eq!(
        w,
        vec![
            "schemas/released/domain/job/1.0.0.json".to_string(),
            "openapi/released/gateway/1.0.0.yaml".to_string()
        ]
    );
    let recorded =
        fs::read_to_string(dir.path().join("openapi/released/gateway/1.0.0.yaml")).expect("read");
    assert_eq!(recorded, api("1.0.0", ""), "exact text is recorded");
    assert_ok(&check(dir.path()));
    assert!(release(dir.path()).expect("again").is_empty());
}

#[test]
fn compatibility_mode_comes_from_the_schema() {
    // Adding an enum value breaks forward: fails under full, passes under backward.
    let dir = TempDir::new().expect("tmp");
    let mut v = job("1.0.0", base_props(), json!(["id"]));
    v["x-compatibility"] = json!("backward");
    write(dir.path(), JOB, &v);
    release(dir.path()).expect("release");
    let mut props = base_props();
    props["kind"]["enum"] = json!(["sleep", "compute", "fail"]);
    let mut v2 = job("1.1.0", props.clone(), json!(["id"]));
    v2["x-compatibility"] = json!("backward");
    write(dir.path(), JOB, &v2);
    assert_ok(&check(dir.path()));
    write(dir.path(), JOB, &job("1.1.0", props, json!(["id"])));
    assert_fails(&check(dir.path()), "enum-value-added");
}

#[test]
fn cross_file_changes_are_attributed_to_the_referenced_file() {
    let dir = TempDir::new().expect("tmp");
    let root = dir.path();
    let status = |version: &str, values: Value| {
        json!({"$id": "status", "$version": version, "x-compatibility": "backward",
               "definitions": {"JobStatus": {"type": "string", "enum": values}}})
    };
    let event = |version: &str, extra: bool| {
        let mut props = json!({"status": {"$ref": "../domain/status.json#/definitions/JobStatus"}});
        if extra {
            props["note"] = json!({"type": "string"});
        }
        json!({"$id": "job-created", "$version": version, "x-compatibility": "backward", "type": "object", "properties": props})
    };
    write(
        root,
        "schemas/domain/status.json",
        &status("1.0.0", json!(["queued", "done"])),
    );
    write(
        root,
        "schemas/events/job-created.json",
        &event("1.0.0", false),
    );
    release(root).expect("release");
    // status gains a value (backward compatible, minor bump); the event also
    // changes compatibly. The event's released copy resolves its $ref
    // against the current status.json, so the enum change is not the event's.
    write(
        root,
        "schemas/domain/status.json",
        &status("1.1.0", json!(["queued", "done", "failed"])),
    );
    write(
        root,
        "schemas/events/job-created.json",
        &event("1.1.0", true),
    );
    let r = check(root);
    assert_ok(&r);
    // An unchanged event that refers to a changed file needs no bump.
    write(
        root,
        "schemas/events/job-created.json",
        &event("1.0.0", false),
    );
    assert_ok(&check(root));
}

#[test]
fn identity_and_version_rules() {
    let dir = TempDir::new().expect("tmp");
    let root = dir.path();
    write(
        root,
        "schemas/a.json",
        &json!({"$id": "same", "$version": "1.0.0"}),
    );
    write(
        root,
        "schemas/b.json",
        &json!({"$id": "same", "$version": "1.0.0"}),
    );
    write(
        root,
        "schemas/c.json",
        &json!({"$id": "c", "$version": "one"}),
    );
    write(root, "schemas/d.json", &json!({"$version": "1.0.0"}));
    write(
        root,
        "schemas/e.json",
        &json!({"$id": "e", "$version": "1.0.0", "x-compatibility": "sideways"}),
    );
    write(root, "schemas/a.examples.json", &json!({"not": "a schema"}));
    write_text(
        root,
        "openapi/api.yaml",
        "openapi: 3.0.3\ninfo: {title: t}\npaths: {}\n",
    );
    let r = check(root);
    assert_fails(&r, "`$id` `same` is also used by schemas/a.json");
    assert_fails(&r, "is not SemVer");
    assert_fails(&r, "missing `$id`");
    assert_fails(&r, "x-compatibility");
    assert_fails(&r, "missing `info.version`");
    assert!(
        !r.findings.iter().any(|f| f.file.contains("examples")),
        "{}",
        r.to_text()
    );
}

#[test]
fn orphaned_record_is_info() {
    let dir = released_tree();
    fs::remove_file(dir.path().join(JOB)).expect("rm");
    let r = check(dir.path());
    assert_ok(&r);
    assert!(
        r.findings
            .iter()
            .any(|f| f.message.contains("no longer exists")),
        "{}",
        r.to_text()
    );
}

#[test]
fn unknown_keyword_is_invalid_exit_2() {
    let dir = released_tree();
    let mut v = job("1.1.0", base_props(), json!(["id"]));
    v["properties"]["id"] = json!({"anyOf": [{"type": "string"}]});
    write(dir.path(), JOB, &v);
    let r = check(dir.path());
    assert_eq!(r.exit_code(), 2, "{}", r.to_text());
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_repo_cli_with(dir.path(), &[], &mut out, &mut err);
    assert_eq!(code, 2);
    let out = String::from_utf8(out).expect("utf8");
    assert!(
        out.contains("`anyOf`") && out.contains("#/properties/id"),
        "{out}"
    );
}

fn api(version: &str, extra_path: &str) -> String {
    format!(
        "openapi: 3.0.3
info:
  title: Gateway
  version: {version}
paths:
  /jobs/{{id}}:
    get:
      parameters:
        - {{ name: id, in: path, required: true, schema: {{ type: string }} }}
      responses:
        '200':
          description: ok
          content:
            application/json:
              schema: {{ type: object, properties: {{ id: {{ type: string }} }} }}
{extra_path}"
    )
}

#[test]
fn openapi_documents_in_repo_mode() {
    let dir = TempDir::new().expect("tmp");
    let root = dir.path();
    write_text(root, "openapi/gateway.yaml", &api("1.0.0", ""));
    release(root).expect("release");
    // Adding an operation: compatible (minor bump).
    let added = "  /jobs:\n    get:\n      responses:\n        '200': { description: ok }\n";
    write_text(root, "openapi/gateway.yaml", &api("1.1.0", added));
    assert_ok(&check(root));
    release(root).expect("release 1.1.0");
    // Removing it again: breaks old clients, a minor bump is not enough.
    write_text(root, "openapi/gateway.yaml", &api("1.2.0", ""));
    assert_fails(&check(root), "operation-removed");
    // Changed without a bump.
    write_text(
        root,
        "openapi/gateway.yaml",
        &api("1.1.0", "  /x:\n    get:\n      responses: {}\n"),
    );
    assert_fails(&check(root), "changed without a version bump");
}

#[test]
fn repo_cli_json_and_release_flag() {
    let dir = TempDir::new().expect("tmp");
    write(dir.path(), JOB, &job("1.0.0", base_props(), json!(["id"])));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_repo_cli_with(dir.path(), &["--release".into()], &mut out, &mut err);
    assert_eq!(code, 0);
    let out = String::from_utf8(out).expect("utf8");
    assert!(
        out.contains("released: schemas/released/domain/job/1.0.0.json"),
        "{out}"
    );
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_repo_cli_with(
        dir.path(),
        &["--format".into(), "json".into()],
        &mut out,
        &mut err,
    );
    assert_eq!(code, 0);
    let v: Value = serde_json::from_slice(&out).expect("json output");
    assert!(v["findings"].is_array());
    let (mut out, mut err) = (Vec::new(), Vec::new());
    assert_eq!(
        run_repo_cli_with(dir.path(), &["--bogus".into()], &mut out, &mut err),
        2
    );
}

#[test]
fn many_documents_with_two_releases_each() {
    // Smoke test of a tree larger than the project's (no wall-clock assertion).
    let dir = TempDir::new().expect("tmp");
    let root = dir.path();
    for i in 0..60 {
        let rel = format!("schemas/gen/s{i}.json");
        let mut v = job("1.0.0", base_props(), json!(["id"]));
        v["$id"] = json!(format!("s{i}"));
        write(root, &rel, &v);
    }
    release(root).expect("release");
    for i in 0..60 {
        let mut v = job("1.1.0", base_props(), json!(["id"]));
        v["$id"] = json!(format!("s{i}"));
        v["properties"]["note"] = json!({"type": "string"});
        write(root, &format!("schemas/gen/s{i}.json"), &v);
    }
    release(root).expect("release");
    let r = check(root);
    assert_ok(&r);
}
