//! Table-driven JSON Schema pair cases: each states the expected verdict for
//! backward, forward and full, and (optionally) a change kind that must be
//! reported. These pin down the semantics described in `src/schema.rs`.

use std::path::{Path, PathBuf};

use contract_compat::{CompatError, Mode, Report, compare_files, compare_values};
use serde_json::{Value, json};

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

fn obj(props: Value) -> Value {
    json!({"type": "object", "properties": props})
}

fn cases() -> Vec<Case> {
    vec![
        case(
            "identical",
            json!({"type": "string"}),
            json!({"type": "string"}),
            OK,
            None,
        ),
        case(
            "x-limits added narrows every depth",
            json!({"type": "object"}),
            json!({"type": "object", "x-limits": {"maxDepth": 32}}),
            BREAKS_BW,
            Some("limit-added"),
        ),
        case(
            "x-limits loosened",
            json!({"type": "object", "x-limits": {"maxStringLength": 10, "noNul": true}}),
            json!({"type": "object", "x-limits": {"maxStringLength": 20, "noNul": true}}),
            BREAKS_FW,
            Some("limit-loosened"),
        ),
        case(
            "x-limits tightened",
            json!({"type": "object", "x-limits": {"maxBytes": 100}}),
            json!({"type": "object", "x-limits": {"maxBytes": 50}}),
            BREAKS_BW,
            Some("limit-tightened"),
        ),
        case(
            "x-limits removed",
            json!({"type": "object", "x-limits": {"int64": true}}),
            json!({"type": "object"}),
            BREAKS_FW,
            Some("limit-removed"),
        ),
        case(
            "x-limits on a finite set is decided on its values",
            json!({"enum": [{"a": "xy"}]}),
            json!({"enum": [{"a": "xy"}], "x-limits": {"maxStringLength": 2}}),
            OK,
            None,
        ),
        case(
            "another x- key stays an annotation",
            json!({"type": "object"}),
            json!({"type": "object", "x-note": {"maxDepth": 1}}),
            OK,
            Some("annotation-changed"),
        ),
        case(
            "title and description changed",
            json!({"type": "string", "title": "A", "description": "a"}),
            json!({"type": "string", "title": "B", "description": "b"}),
            OK,
            Some("annotation-changed"),
        ),
        case(
            "other annotations changed (default, examples, readOnly, deprecated, $comment, x-)",
            json!({"type": "integer", "default": 1, "examples": [1], "readOnly": true, "$comment": "c", "x-rust-type": "u8"}),
            json!({"type": "integer", "default": 2, "examples": [2], "deprecated": true, "writeOnly": false, "x-rust-type": "u16"}),
            OK,
            Some("annotation-changed"),
        ),
        case(
            "optional property added to open object",
            obj(json!({"a": {"type": "string"}})),
            obj(json!({"a": {"type": "string"}, "b": {"type": "integer"}})),
            OK,
            Some("property-added"),
        ),
        case(
            "optional property added to closed object",
            json!({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": false}),
            json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}, "additionalProperties": false}),
            BREAKS_FW,
            Some("property-added"),
        ),
        case(
            "optional property removed from open object",
            obj(json!({"a": {"type": "string"}, "b": {"type": "integer"}})),
            obj(json!({"a": {"type": "string"}})),
            OK,
            Some("property-removed"),
        ),
        case(
            "optional property removed from closed object",
            json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}, "additionalProperties": false}),
            json!({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": false}),
            BREAKS_BW,
            Some("property-removed"),
        ),
        case(
            "required property added",
            obj(json!({"a": {"type": "string"}})),
            json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}, "required": ["b"]}),
            BREAKS_BW,
            Some("required-added"),
        ),
        case(
            "optional property made required",
            obj(json!({"a": {"type": "string"}})),
            json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}),
            BREAKS_BW,
            Some("required-added"),
        ),
        case(
            "required property made optional",
            json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}),
            obj(json!({"a": {"type": "string"}})),
            BREAKS_FW,
            Some("required-removed"),
        ),
        case(
            "required property removed from open object",
            json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}),
            json!({"type": "object", "properties": {}}),
            BREAKS_FW,
            Some("required-removed"),
        ),
        case(
            "enum value added",
            json!({"type": "string", "enum": ["a", "b"]}),
            json!({"type": "string", "enum": ["a", "b", "c"]}),
            BREAKS_FW,
            Some("enum-value-added"),
        ),
        case(
            "enum value removed",
            json!({"type": "string", "enum": ["a", "b"]}),
            json!({"type": "string", "enum": ["a"]}),
            BREAKS_BW,
            Some("enum-value-removed"),
        ),
        case(
            "enum reordered",
            json!({"enum": ["a", "b"]}),
            json!({"enum": ["b", "a"]}),
            OK,
            None,
        ),
        case(
            "enum value removed that the old schema could never emit",
            json!({"type": "string", "enum": ["a", "bb"], "maxLength": 1}),
            json!({"type": "string", "enum": ["a"], "maxLength": 1}),
            OK,
            Some("enum-value-removed"),
        ),
        case(
            "enum added to a plain string",
            json!({"type": "string"}),
            json!({"type": "string", "enum": ["a"]}),
            BREAKS_BW,
            Some("enum-added"),
        ),
        case(
            "enum removed",
            json!({"type": "string", "enum": ["a"]}),
            json!({"type": "string"}),
            BREAKS_FW,
            Some("enum-removed"),
        ),
        case(
            "boolean type rewritten as enum",
            json!({"type": "boolean"}),
            json!({"enum": [true, false]}),
            OK,
            None,
        ),
        case(
            "const changed",
            json!({"const": "v1"}),
            json!({"const": "v2"}),
            BREAKS_BOTH,
            Some("const-changed"),
        ),
        case(
            "const added",
            json!({"type": "string"}),
            json!({"type": "string", "const": "x"}),
            BREAKS_BW,
            Some("const-added"),
        ),
        case(
            "null added to type set",
            json!({"type": "string"}),
            json!({"type": ["string", "null"]}),
            BREAKS_FW,
            Some("type-widened"),
        ),
        case(
            "null removed from type set",
            json!({"type": ["string", "null"]}),
            json!({"type": "string"}),
            BREAKS_BW,
            Some("type-narrowed"),
        ),
        case(
            "integer to number",
            json!({"type": "integer"}),
            json!({"type": "number"}),
            BREAKS_FW,
            Some("type-widened"),
        ),
        case(
            "number to integer",
            json!({"type": "number"}),
            json!({"type": "integer"}),
            BREAKS_BW,
            Some("type-narrowed"),
        ),
        case(
            "string to integer",
            json!({"type": "string"}),
            json!({"type": "integer"}),
            BREAKS_BOTH,
            Some("type-changed"),
        ),
        case(
            "type removed",
            json!({"type": "string"}),
            json!({}),
            BREAKS_FW,
            Some("type-removed"),
        ),
        case(
            "[integer, number] equals number",
            json!({"type": ["integer", "number"]}),
            json!({"type": "number"}),
            OK,
            None,
        ),
        case(
            "maxLength decreased",
            json!({"type": "string", "maxLength": 10}),
            json!({"type": "string", "maxLength": 5}),
            BREAKS_BW,
            Some("max-length-decreased"),
        ),
        case(
            "maxLength increased",
            json!({"type": "string", "maxLength": 5}),
            json!({"type": "string", "maxLength": 10}),
            BREAKS_FW,
            Some("max-length-increased"),
        ),
        case(
            "minLength added",
            json!({"type": "string"}),
            json!({"type": "string", "minLength": 1}),
            BREAKS_BW,
            Some("min-length-added"),
        ),
        case(
            "maxLength on a non-string type changes nothing",
            json!({"type": "integer"}),
            json!({"type": "integer", "maxLength": 3}),
            OK,
            Some("max-length-added"),
        ),
        case(
            "format added",
            json!({"type": "string"}),
            json!({"type": "string", "format": "uuid"}),
            BREAKS_BW,
            Some("format-added"),
        ),
        case(
            "format removed",
            json!({"type": "string", "format": "uuid"}),
            json!({"type": "string"}),
            BREAKS_FW,
            Some("format-removed"),
        ),
        case(
            "format int32 widened to int64",
            json!({"type": "integer", "format": "int32"}),
            json!({"type": "integer", "format": "int64"}),
            BREAKS_FW,
            Some("format-changed"),
        ),
        case(
            "format date-time to date",
            json!({"type": "string", "format": "date-time"}),
            json!({"type": "string", "format": "date"}),
            BREAKS_BOTH,
            Some("format-changed"),
        ),
        case(
            "pattern added",
            json!({"type": "string"}),
            json!({"type": "string", "pattern": "^[a-z]+$"}),
            BREAKS_BW,
            Some("pattern-added"),
        ),
        case(
            "pattern removed",
            json!({"type": "string", "pattern": "^[a-z]+$"}),
            json!({"type": "string"}),
            BREAKS_FW,
            Some("pattern-removed"),
        ),
        case(
            "pattern changed (inclusion not decided)",
            json!({"type": "string", "pattern": "^[a-z]+$"}),
            json!({"type": "string", "pattern": "^[a-z0-9]+$"}),
            BREAKS_BOTH,
            Some("pattern-changed"),
        ),
        case(
            "minimum increased",
            json!({"type": "number", "minimum": 0}),
            json!({"type": "number", "minimum": 1}),
            BREAKS_BW,
            Some("minimum-increased"),
        ),
        case(
            "maximum removed",
            json!({"type": "number", "maximum": 10}),
            json!({"type": "number"}),
            BREAKS_FW,
            Some("maximum-removed"),
        ),
        case(
            "exclusiveMaximum 10 relaxed to maximum 10",
            json!({"type": "number", "exclusiveMaximum": 10}),
            json!({"type": "number", "maximum": 10}),
            BREAKS_FW,
            Some("maximum-increased"),
        ),
        case(
            "integer: exclusiveMinimum 0 equals minimum 1",
            json!({"type": "integer", "exclusiveMinimum": 0}),
            json!({"type": "integer", "minimum": 1}),
            OK,
            None,
        ),
        case(
            "multipleOf 2 to 4",
            json!({"type": "integer", "multipleOf": 2}),
            json!({"type": "integer", "multipleOf": 4}),
            BREAKS_BW,
            Some("multiple-of-changed"),
        ),
        case(
            "multipleOf 1 added on integer",
            json!({"type": "integer"}),
            json!({"type": "integer", "multipleOf": 1}),
            OK,
            Some("multiple-of-added"),
        ),
        case(
            "minItems added",
            json!({"type": "array", "items": {"type": "string"}}),
            json!({"type": "array", "items": {"type": "string"}, "minItems": 1}),
            BREAKS_BW,
            Some("min-items-added"),
        ),
        case(
            "maxItems increased",
            json!({"type": "array", "maxItems": 2}),
            json!({"type": "array", "maxItems": 3}),
            BREAKS_FW,
            Some("max-items-increased"),
        ),
        case(
            "uniqueItems added",
            json!({"type": "array"}),
            json!({"type": "array", "uniqueItems": true}),
            BREAKS_BW,
            Some("unique-items-added"),
        ),
        case(
            "items type changed",
            json!({"type": "array", "items": {"type": "string"}}),
            json!({"type": "array", "items": {"type": "integer"}}),
            BREAKS_BOTH,
            Some("type-changed"),
        ),
        case(
            "items added where there were none",
            json!({"type": "array"}),
            json!({"type": "array", "items": {"type": "string"}}),
            BREAKS_BW,
            Some("type-added"),
        ),
        case(
            "array of objects: nested required property added",
            json!({"type": "array", "items": obj(json!({"id": {"type": "string"}}))}),
            json!({"type": "array", "items": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}}),
            BREAKS_BW,
            Some("required-added"),
        ),
        case(
            "tuple items: position added to a closed tuple",
            json!({"type": "array", "items": [{"type": "string"}], "additionalItems": false}),
            json!({"type": "array", "items": [{"type": "string"}, {"type": "integer"}], "additionalItems": false}),
            BREAKS_FW,
            Some("false-schema-removed"),
        ),
        case(
            "tuple items: position type changed",
            json!({"type": "array", "items": [{"type": "string"}, {"type": "string"}]}),
            json!({"type": "array", "items": [{"type": "string"}, {"type": "integer"}]}),
            BREAKS_BOTH,
            Some("type-changed"),
        ),
        case(
            "object closed (properties declared): emitted sets unchanged",
            obj(json!({"a": {"type": "string"}})),
            json!({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": false}),
            OK,
            Some("additional-properties-closed"),
        ),
        case(
            "object opened (properties declared)",
            json!({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": false}),
            obj(json!({"a": {"type": "string"}})),
            OK,
            Some("additional-properties-opened"),
        ),
        case(
            "map value type changed",
            json!({"type": "object", "additionalProperties": {"type": "string"}}),
            json!({"type": "object", "additionalProperties": {"type": "integer"}}),
            BREAKS_BOTH,
            Some("type-changed"),
        ),
        case(
            "map closed",
            json!({"type": "object", "additionalProperties": {"type": "string"}}),
            json!({"type": "object", "additionalProperties": false}),
            BREAKS_BW,
            Some("false-schema-added"),
        ),
        case(
            "map: named property added with the same value type",
            json!({"type": "object", "additionalProperties": {"type": "string"}}),
            json!({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "string"}}),
            OK,
            Some("property-added"),
        ),
        case(
            "map: named property added with another value type",
            json!({"type": "object", "additionalProperties": {"type": "string"}}),
            json!({"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": {"type": "string"}}),
            BREAKS_BOTH,
            Some("type-changed"),
        ),
        case(
            "minProperties added on a map",
            json!({"type": "object"}),
            json!({"type": "object", "minProperties": 1}),
            BREAKS_BW,
            Some("min-properties-added"),
        ),
        case(
            "maxProperties added that closed emitted objects already satisfy",
            json!({"type": "object", "properties": {"a": {}, "b": {}}, "additionalProperties": false}),
            json!({"type": "object", "properties": {"a": {}, "b": {}}, "additionalProperties": false, "maxProperties": 2}),
            OK,
            Some("max-properties-added"),
        ),
        case(
            "nested object property type changed",
            obj(json!({"a": obj(json!({"b": {"type": "string"}}))})),
            obj(json!({"a": obj(json!({"b": {"type": "integer"}}))})),
            BREAKS_BOTH,
            Some("type-changed"),
        ),
        case(
            "local $ref: enum value added in a definition",
            json!({"definitions": {"S": {"enum": ["a"]}}, "type": "object", "properties": {"s": {"$ref": "#/definitions/S"}}}),
            json!({"definitions": {"S": {"enum": ["a", "b"]}}, "type": "object", "properties": {"s": {"$ref": "#/definitions/S"}}}),
            BREAKS_FW,
            Some("enum-value-added"),
        ),
        case(
            "inline schema moved into a definition",
            obj(json!({"s": {"type": "string", "maxLength": 3}})),
            json!({"definitions": {"S": {"type": "string", "maxLength": 3}}, "type": "object", "properties": {"s": {"$ref": "#/definitions/S"}}}),
            OK,
            None,
        ),
        case(
            "unused definition changed",
            json!({"definitions": {"S": {"type": "string"}}, "type": "string"}),
            json!({"definitions": {"S": {"type": "integer"}}, "type": "string"}),
            OK,
            None,
        ),
        case(
            "recursive schema unchanged",
            json!({"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#"}}}}),
            json!({"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#"}}}}),
            OK,
            None,
        ),
        case(
            "recursive schema: required added reaches every level",
            json!({"type": "object", "properties": {"n": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#"}}}}),
            json!({"type": "object", "properties": {"n": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#"}}}, "required": ["n"]}),
            BREAKS_BW,
            Some("required-added"),
        ),
        case(
            "true to false",
            json!(true),
            json!(false),
            BREAKS_BW,
            Some("false-schema-added"),
        ),
        case(
            "false to true",
            json!(false),
            json!(true),
            BREAKS_FW,
            Some("false-schema-removed"),
        ),
        case("true equals {}", json!(true), json!({}), OK, None),
    ]
}

fn run(old: Value, new: Value) -> Result<Report, CompatError> {
    compare_values(
        old,
        Path::new("/virtual/old.json"),
        new,
        Path::new("/virtual/new.json"),
    )
}

fn check(name: &str, r: &Report, bw: bool, fw: bool, full: bool, kind: Option<&str>) {
    assert_eq!(full, bw && fw, "{name}: table inconsistent");
    let dump = r.to_text(Mode::Full);
    assert_eq!(r.compatible(Mode::Backward), bw, "{name}: backward\n{dump}");
    assert_eq!(r.compatible(Mode::Forward), fw, "{name}: forward\n{dump}");
    assert_eq!(r.compatible(Mode::Full), full, "{name}: full\n{dump}");
    if let Some(k) = kind {
        assert!(
            r.changes.iter().any(|c| c.kind == k),
            "{name}: expected kind {k}\n{dump}"
        );
    }
    for c in &r.changes {
        assert!(
            contract_compat::KINDS.contains(&c.kind),
            "{name}: undocumented kind {}",
            c.kind
        );
        assert!(
            !c.message.contains('\n'),
            "{name}: message must be one line"
        );
    }
}

#[test]
fn schema_pair_table() {
    let cases = cases();
    assert!(cases.len() >= 40, "at least 40 cases");
    for c in cases {
        let r = run(c.old.clone(), c.new.clone()).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        check(c.name, &r, c.backward, c.forward, c.full, c.kind);
        // Swapping old and new swaps the directions.
        let s = run(c.new, c.old).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        assert_eq!(
            s.compatible(Mode::Backward),
            c.forward,
            "{} (swapped): backward\n{}",
            c.name,
            s.to_text(Mode::Full)
        );
        assert_eq!(
            s.compatible(Mode::Forward),
            c.backward,
            "{} (swapped): forward\n{}",
            c.name,
            s.to_text(Mode::Full)
        );
    }
}

fn fixture(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(p)
}

#[test]
fn cross_file_ref_enum_value_added() {
    // status.json (sibling) gained a value; job.json (../common_*) unchanged.
    let r = compare_files(
        &fixture("xfile/old/event.json"),
        &fixture("xfile/new/event.json"),
    )
    .expect("compare");
    check(
        "cross-file enum",
        &r,
        true,
        false,
        false,
        Some("enum-value-added"),
    );
    let c = r
        .changes
        .iter()
        .find(|c| c.kind == "enum-value-added")
        .expect("change");
    assert_eq!(c.pointer_old, "status.json#/definitions/Status/enum");
}

#[test]
fn cross_file_ref_parent_dir_required_added() {
    let r = compare_files(
        &fixture("xfile2/old/event.json"),
        &fixture("xfile2/new/event.json"),
    )
    .expect("compare");
    check(
        "cross-file ../ required",
        &r,
        false,
        true,
        false,
        Some("required-added"),
    );
    let c = r
        .changes
        .iter()
        .find(|c| c.kind == "required-added")
        .expect("change");
    assert!(
        c.pointer_new.starts_with("../common_new/job.json#"),
        "{}",
        c.pointer_new
    );
}

#[test]
fn unknown_keyword_is_an_error_naming_keyword_and_pointer() {
    for kw in [
        "oneOf",
        "anyOf",
        "allOf",
        "not",
        "if",
        "patternProperties",
        "dependencies",
        "propertyNames",
        "contains",
        "unevaluatedProperties",
        "$defs",
        "nullable",
    ] {
        let bad = json!({"type": "object", "properties": {"a": {kw: [{"type": "string"}]}}});
        let e = run(json!({"type": "object"}), bad).expect_err(kw);
        let msg = e.to_string();
        assert!(msg.contains(&format!("`{kw}`")), "{msg}");
        assert!(msg.contains("new#/properties/a"), "{msg}");
    }
}

#[test]
fn unknown_keyword_in_unreferenced_definition_is_an_error() {
    let bad = json!({"definitions": {"X": {"anyOf": []}}, "type": "string"});
    let e = run(bad.clone(), bad).expect_err("error");
    assert!(e.to_string().contains("old#/definitions/X"), "{e}");
}

#[test]
fn missing_ref_target_and_ref_cycles_are_errors() {
    let e = run(json!({"$ref": "#/definitions/Nope"}), json!({})).expect_err("missing");
    assert!(matches!(e, CompatError::Ref { .. }), "{e}");
    let cyc = json!({"definitions": {"A": {"$ref": "#/definitions/B"}, "B": {"$ref": "#/definitions/A"}}, "$ref": "#/definitions/A"});
    let e = run(cyc.clone(), cyc).expect_err("cycle");
    assert!(e.to_string().contains("cyclic"), "{e}");
    let e = run(json!({"$ref": "missing.json"}), json!({})).expect_err("file");
    assert!(matches!(e, CompatError::Io { .. }), "{e}");
}

#[test]
fn keyword_beside_ref_is_an_error() {
    let s = json!({"definitions": {"S": {"type": "string"}}, "$ref": "#/definitions/S", "maxLength": 3});
    let e = run(s.clone(), s).expect_err("sibling");
    assert!(e.to_string().contains("maxLength"), "{e}");
}

#[test]
fn every_value_and_every_key_is_reported() {
    let r = run(
        json!({"type": "object", "properties": {"e": {"enum": ["a"]}}}),
        json!({"type": "object", "properties": {"e": {"enum": ["a", "b", "c"]}}, "required": ["x", "y"]}),
    )
    .expect("compare");
    let count = |k: &str| r.changes.iter().filter(|c| c.kind == k).count();
    assert_eq!(count("enum-value-added"), 2, "{}", r.to_text(Mode::Full));
    assert_eq!(count("required-added"), 2, "{}", r.to_text(Mode::Full));
}

#[test]
fn pattern_change_message_says_not_decided() {
    let r = run(json!({"pattern": "a"}), json!({"pattern": "b"})).expect("compare");
    let c = r
        .changes
        .iter()
        .find(|c| c.kind == "pattern-changed")
        .expect("change");
    assert!(c.message.contains("not decided"), "{}", c.message);
}

#[test]
fn enum_value_with_undecided_pattern_is_conservative() {
    // A value emitted by the old schema meets a new pattern: regexes are not
    // evaluated, so it counts as rejected (sound), and the message says so.
    let r = run(
        json!({"type": "string", "enum": ["abc"]}),
        json!({"type": "string", "enum": ["abc"], "pattern": "^a"}),
    )
    .expect("compare");
    assert!(!r.compatible(Mode::Backward));
    assert!(r.compatible(Mode::Forward));
}
