//! Table-driven OpenAPI pair cases. Verdicts are API-level (see
//! `src/openapi.rs`): backward = the new server serves old clients (the
//! default mode for OpenAPI), forward = an old server serves new clients.

use std::path::{Path, PathBuf};

use contract_compat::{CompatError, DocKind, Mode, Report, compare_values};
use serde_json::{Value, json};

fn doc_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/api/openapi/gateway.yaml")
}

fn base() -> Value {
    let text = std::fs::read_to_string(doc_path()).expect("fixture");
    serde_yaml::from_str(&text).expect("yaml")
}

fn with(f: impl FnOnce(&mut Value)) -> Value {
    let mut v = base();
    f(&mut v);
    v
}

fn at<'a>(v: &'a mut Value, ptr: &str) -> &'a mut Value {
    v.pointer_mut(ptr).unwrap_or_else(|| panic!("no {ptr}"))
}

fn remove(v: &mut Value, ptr: &str, key: &str) {
    at(v, ptr).as_object_mut().expect("object").remove(key);
}

const POST: &str = "/paths/~1jobs/post";
const GET: &str = "/paths/~1jobs~1{id}/get";

struct Case {
    name: &'static str,
    old: Value,
    new: Value,
    backward: bool,
    forward: bool,
    full: bool,
    kind: Option<&'static str>,
}

fn case(
    name: &'static str,
    old: Value,
    new: Value,
    bfu: (bool, bool, bool),
    kind: Option<&'static str>,
) -> Case {
    Case {
        name,
        old,
        new,
        backward: bfu.0,
        forward: bfu.1,
        full: bfu.2,
        kind,
    }
}

const OK: (bool, bool, bool) = (true, true, true);
const BREAKS_BW: (bool, bool, bool) = (false, true, false);
const BREAKS_FW: (bool, bool, bool) = (true, false, false);
const BREAKS_BOTH: (bool, bool, bool) = (false, false, false);

fn cases() -> Vec<Case> {
    vec![
        case("identical", base(), base(), OK, None),
        case(
            "summary, operationId and info.version changed",
            base(),
            with(|v| {
                at(v, POST)["summary"] = json!("Submit a job");
                at(v, POST)["operationId"] = json!("createJob");
                at(v, "/info")["version"] = json!("1.1.0");
            }),
            OK,
            Some("annotation-changed"),
        ),
        case(
            "operation removed",
            base(),
            with(|v| remove(v, "/paths", "/jobs/{id}")),
            BREAKS_BW,
            Some("operation-removed"),
        ),
        case(
            "operation added",
            base(),
            with(|v| {
                at(v, "/paths/~1jobs~1{id}")["delete"] =
                    json!({"responses": {"204": {"description": "gone"}}})
            }),
            BREAKS_FW,
            Some("operation-added"),
        ),
        case(
            "required query parameter added",
            base(),
            with(|v| {
                at(v, &format!("{GET}/parameters")).as_array_mut().expect("a").push(json!({"name": "fields", "in": "query", "required": true, "schema": {"type": "string"}}))
            }),
            BREAKS_BOTH,
            Some("parameter-added"),
        ),
        case(
            "optional query parameter added",
            base(),
            with(|v| {
                at(v, &format!("{GET}/parameters"))
                    .as_array_mut()
                    .expect("a")
                    .push(json!({"name": "fields", "in": "query", "schema": {"type": "string"}}))
            }),
            BREAKS_FW,
            Some("parameter-added"),
        ),
        case(
            "parameter removed",
            base(),
            with(|v| {
                at(v, &format!("{GET}/parameters"))
                    .as_array_mut()
                    .expect("a")
                    .remove(1);
            }),
            BREAKS_BW,
            Some("parameter-removed"),
        ),
        case(
            "parameter made required",
            base(),
            with(|v| at(v, &format!("{GET}/parameters/1"))["required"] = json!(true)),
            BREAKS_BW,
            Some("parameter-required-added"),
        ),
        case(
            "path parameter renamed with its template",
            base(),
            with(|v| {
                let item = at(v, "/paths")
                    .as_object_mut()
                    .expect("o")
                    .remove("/jobs/{id}")
                    .expect("item");
                at(v, "/paths")["/jobs/{jobId}"] = item;
                at(v, "/paths/~1jobs~1{jobId}/get/parameters/0")["name"] = json!("jobId");
            }),
            OK,
            None,
        ),
        case(
            "header parameter schema narrowed",
            base(),
            with(|v| at(v, &format!("{POST}/parameters/0/schema"))["maxLength"] = json!(64)),
            BREAKS_BW,
            Some("max-length-added"),
        ),
        case(
            "request body: enum value added",
            base(),
            with(|v| {
                at(v, "/components/schemas/Submit/properties/kind/enum")
                    .as_array_mut()
                    .expect("a")
                    .push(json!("fail"))
            }),
            BREAKS_FW,
            Some("enum-value-added"),
        ),
        case(
            "request body: enum value removed",
            base(),
            with(|v| {
                at(v, "/components/schemas/Submit/properties/kind/enum")
                    .as_array_mut()
                    .expect("a")
                    .pop();
            }),
            BREAKS_BW,
            Some("enum-value-removed"),
        ),
        case(
            "request body: required property added",
            base(),
            with(|v| {
                at(v, "/components/schemas/Submit/properties")["priority"] =
                    json!({"type": "integer"});
                at(v, "/components/schemas/Submit/required")
                    .as_array_mut()
                    .expect("a")
                    .push(json!("priority"));
            }),
            BREAKS_BW,
            Some("required-added"),
        ),
        case(
            "request body made optional",
            base(),
            with(|v| at(v, &format!("{POST}/requestBody"))["required"] = json!(false)),
            BREAKS_FW,
            Some("request-body-required-removed"),
        ),
        case(
            "response (cross-file $ref): enum value added",
            base(),
            with(|v| {
                at(
                    v,
                    &format!("{GET}/responses/200/content/application~1json/schema"),
                )["$ref"] = json!("../schemas/domain/job_status_added.json")
            }),
            BREAKS_BW,
            Some("enum-value-added"),
        ),
        case(
            "response (cross-file $ref): optional property added to open object",
            base(),
            with(|v| {
                at(
                    v,
                    &format!("{GET}/responses/200/content/application~1json/schema"),
                )["$ref"] = json!("../schemas/domain/job_prop_added.json")
            }),
            OK,
            Some("property-added"),
        ),
        case(
            "response: property no longer required",
            base(),
            with(|v| {
                at(v, "/components/schemas/Error/required")
                    .as_array_mut()
                    .expect("a")
                    .pop();
            }),
            BREAKS_BW,
            Some("required-removed"),
        ),
        case(
            "response: nullable added",
            base(),
            with(|v| at(v, "/components/schemas/Error/properties/code")["nullable"] = json!(true)),
            BREAKS_BW,
            Some("type-widened"),
        ),
        case(
            "new error status with the shared error body",
            base(),
            with(
                |v| at(v, &format!("{POST}/responses"))["409"] = json!({"description": "conflict", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
            ),
            OK,
            Some("response-added"),
        ),
        case(
            "new error status with a different body",
            base(),
            with(
                |v| at(v, &format!("{POST}/responses"))["409"] = json!({"description": "conflict", "content": {"application/json": {"schema": {"type": "string"}}}}),
            ),
            BREAKS_BW,
            Some("type-changed"),
        ),
        case(
            "new success status",
            base(),
            with(|v| at(v, &format!("{POST}/responses"))["200"] = json!({"description": "dup"})),
            BREAKS_BW,
            Some("response-added"),
        ),
        case(
            "request media type added",
            base(),
            with(|v| {
                at(v, &format!("{POST}/requestBody/content"))["application/x-yaml"] =
                    json!({"schema": {"type": "string"}})
            }),
            BREAKS_FW,
            Some("media-type-added"),
        ),
        case(
            "response media type added",
            base(),
            with(|v| {
                at(v, &format!("{GET}/responses/200/content"))["text/plain"] =
                    json!({"schema": {"type": "string"}});
            }),
            BREAKS_FW,
            Some("media-type-added"),
        ),
        case(
            "security requirement added",
            base(),
            with(|v| v["security"] = json!([{"bearer": []}])),
            BREAKS_BOTH,
            Some("security-changed"),
        ),
        case(
            "response body removed",
            base(),
            with(|v| remove(v, &format!("{GET}/responses/200"), "content")),
            BREAKS_BW,
            Some("response-body-removed"),
        ),
    ]
}

fn run(old: Value, new: Value) -> Result<Report, CompatError> {
    compare_values(old, &doc_path(), new, &doc_path())
}

#[test]
fn openapi_pair_table() {
    let cases = cases();
    assert!(cases.len() >= 15);
    for c in cases {
        assert_eq!(
            c.full,
            c.backward && c.forward,
            "{}: table inconsistent",
            c.name
        );
        let r = run(c.old.clone(), c.new.clone()).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        assert_eq!(r.doc_kind, DocKind::OpenApi);
        let dump = r.to_text(Mode::Full);
        assert_eq!(
            r.compatible(Mode::Backward),
            c.backward,
            "{}: backward\n{dump}",
            c.name
        );
        assert_eq!(
            r.compatible(Mode::Forward),
            c.forward,
            "{}: forward\n{dump}",
            c.name
        );
        assert_eq!(r.compatible(Mode::Full), c.full, "{}: full\n{dump}", c.name);
        if let Some(k) = c.kind {
            assert!(
                r.changes.iter().any(|x| x.kind == k),
                "{}: expected {k}\n{dump}",
                c.name
            );
        }
        for x in &r.changes {
            assert!(
                contract_compat::KINDS.contains(&x.kind),
                "{}: undocumented kind {}",
                c.name,
                x.kind
            );
        }
        // Swapping old and new swaps the API directions.
        let s = run(c.new, c.old).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        let dump = s.to_text(Mode::Full);
        assert_eq!(
            s.compatible(Mode::Backward),
            c.forward,
            "{} (swapped): backward\n{dump}",
            c.name
        );
        assert_eq!(
            s.compatible(Mode::Forward),
            c.backward,
            "{} (swapped): forward\n{dump}",
            c.name
        );
    }
}

#[test]
fn unknown_keyword_in_component_schema_is_an_error() {
    let bad =
        with(|v| at(v, "/components/schemas")["Unused"] = json!({"oneOf": [{"type": "string"}]}));
    let e = run(base(), bad).expect_err("error");
    let m = e.to_string();
    assert!(
        m.contains("`oneOf`") && m.contains("new#/components/schemas/Unused"),
        "{m}"
    );
}

#[test]
fn openapi_3_1_is_rejected() {
    let v31 = with(|v| v["openapi"] = json!("3.1.0"));
    assert!(run(base(), v31).is_err());
}
