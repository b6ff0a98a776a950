//! The pair CLI: exit codes, messages, output shapes.

use std::fs;
use std::path::Path;

use contract_compat::run_pair_cli_with;
use serde_json::{Value, json};
use tempfile::TempDir;

fn run(args: &[&str]) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_pair_cli_with(&args, &mut out, &mut err);
    (
        code,
        String::from_utf8(out).expect("utf8"),
        String::from_utf8(err).expect("utf8"),
    )
}

fn put(dir: &Path, name: &str, v: &Value) -> String {
    let p = dir.join(name);
    fs::write(&p, serde_json::to_string(v).expect("json")).expect("write");
    p.to_string_lossy().into_owned()
}

#[test]
fn compatible_incompatible_and_mode() {
    let d = TempDir::new().expect("tmp");
    let old = put(
        d.path(),
        "old.json",
        &json!({"type": "string", "enum": ["a"]}),
    );
    let new = put(
        d.path(),
        "new.json",
        &json!({"type": "string", "enum": ["a", "b"]}),
    );
    let (code, out, _) = run(&["--old", &old, "--new", &new]);
    assert_eq!(code, 1, "default mode is full: {out}");
    assert!(
        out.contains("enum-value-added") && out.contains("INCOMPATIBLE (full)"),
        "{out}"
    );
    let (code, out, _) = run(&["--old", &old, "--new", &new, "--mode", "backward"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.lines()
            .last()
            .is_some_and(|l| l.starts_with("compatible (backward)")),
        "{out}"
    );
    let (code, _, _) = run(&[
        "check-compat",
        "--old",
        &old,
        "--new",
        &new,
        "--mode=forward",
    ]);
    assert_eq!(code, 1);
}

#[test]
fn json_output_shape() {
    let d = TempDir::new().expect("tmp");
    let old = put(
        d.path(),
        "old.json",
        &json!({"type": "object", "properties": {"a": {"type": "string"}}}),
    );
    let new = put(
        d.path(),
        "new.json",
        &json!({"type": "object", "properties": {"a": {"type": "string", "maxLength": 3}}}),
    );
    let (code, out, _) = run(&[
        "--old", &old, "--new", &new, "--format", "json", "--mode", "forward",
    ]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).expect("json");
    let obj = v.as_object().expect("object");
    assert_eq!(obj.len(), 2);
    assert_eq!(v["compatible"], json!(true));
    let changes = v["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 1);
    let c = changes[0].as_object().expect("change");
    let mut keys: Vec<&str> = c.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["breaking", "kind", "message", "pointer"]);
    assert_eq!(
        c["pointer"],
        json!("old#/properties/a/maxLength -> new#/properties/a/maxLength")
    );
    assert_eq!(c["kind"], json!("max-length-added"));
    assert_eq!(c["breaking"], json!(false));
}

#[test]
fn unknown_keyword_exits_2_naming_keyword_and_pointer() {
    let d = TempDir::new().expect("tmp");
    let old = put(d.path(), "old.json", &json!({"type": "object"}));
    let new = put(
        d.path(),
        "new.json",
        &json!({"type": "object", "properties": {"a": {"oneOf": [{"type": "string"}, {"type": "null"}]}}}),
    );
    let (code, out, err) = run(&["--old", &old, "--new", &new]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(
        err.contains("`oneOf`") && err.contains("new#/properties/a"),
        "{err}"
    );
}

#[test]
fn unreadable_or_invalid_files_exit_2() {
    let d = TempDir::new().expect("tmp");
    let ok = put(d.path(), "ok.json", &json!({}));
    let missing = d.path().join("missing.json").to_string_lossy().into_owned();
    let (code, _, err) = run(&["--old", &missing, "--new", &ok]);
    assert_eq!(code, 2);
    assert!(
        err.contains("cannot read") && err.contains("missing.json"),
        "{err}"
    );
    let bad = d.path().join("bad.json");
    fs::write(&bad, "{ not json").expect("write");
    let (code, _, err) = run(&["--old", &ok, "--new", &bad.to_string_lossy()]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot parse"), "{err}");
    let not_schema = put(d.path(), "num.json", &json!(42));
    let (code, _, err) = run(&["--old", &ok, "--new", &not_schema]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(run(&[]).0, 2);
    assert_eq!(run(&["--old", "a.json"]).0, 2);
    assert_eq!(
        run(&["--old", "a", "--new", "b", "--mode", "sideways"]).0,
        2
    );
    assert_eq!(run(&["--old", "a", "--new", "b", "--format", "xml"]).0, 2);
    assert_eq!(run(&["--what"]).0, 2);
    assert_eq!(run(&["--help"]).0, 0);
}

#[test]
fn yaml_openapi_files_default_to_backward() {
    let d = TempDir::new().expect("tmp");
    let doc = |extra: &str| {
        format!(
            "openapi: 3.0.3\ninfo: {{title: t, version: 1.0.0}}\npaths:\n  /a:\n    get:\n      responses:\n        '200': {{description: ok}}\n{extra}"
        )
    };
    let old = d.path().join("old.yaml");
    let new = d.path().join("new.yaml");
    fs::write(&old, doc("")).expect("write");
    fs::write(
        &new,
        doc("  /b:\n    get:\n      responses:\n        '200': {description: ok}\n"),
    )
    .expect("write");
    let (o, n) = (
        old.to_string_lossy().into_owned(),
        new.to_string_lossy().into_owned(),
    );
    // Operation added: compatible for old clients (the default for OpenAPI).
    let (code, out, _) = run(&["--old", &o, "--new", &n]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("operation-added"), "{out}");
    // Operation removed.
    let (code, out, _) = run(&["--old", &n, "--new", &o]);
    assert_eq!(code, 1, "{out}");
    // Mixing kinds is a usage error.
    let s = put(d.path(), "s.json", &json!({}));
    assert_eq!(run(&["--old", &o, "--new", &s]).0, 2);
}
