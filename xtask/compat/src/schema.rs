//! JSON Schema (draft-07 subset) compatibility, decided on instance sets.
//!
//! Definitions (from DESIGN.md §3 and the generated code):
//! * Accepts(S): the JSON values valid under S as written.
//! * Emits(S): the values valid under S when every object schema that declares
//!   `properties` is treated as closed. A producer built from generated Rust
//!   types never emits unknown fields.
//! * backward holds iff Emits(old) ⊆ Accepts(new); forward iff
//!   Emits(new) ⊆ Accepts(old). In one direction the *producer* side P is old
//!   (backward) or new (forward) and the *consumer* side C is the other.
//!
//! How: both schemas are walked in parallel. At every node, every keyword
//! family is compared once and reported as a [`Change`] whose `breaks` says in
//! which directions P's constraint does not imply C's. Checking "P's keyword
//! of the same family implies C's keyword" is a sufficient condition for
//! inclusion, so the analysis is sound (it never reports compatible when a
//! counterexample exists) but may give a false alarm when an inclusion follows
//! from a combination of different keywords; messages say when it is
//! conservative.
//!
//! When P's instance set at a node is finite (`enum`, `const`, or a type set
//! within {null, boolean}), that direction is decided exactly by checking each
//! value against C instead (except `pattern`/`format`, which are not evaluated
//! on values: an undecided value counts as rejected).
//!
//! Recursive schemas: a pair of nodes already under comparison in the same
//! directions is assumed compatible (the usual co-inductive rule for
//! recursive types, sound because every instance is a finite tree).
//!
//! `x-limits` ([`observatory_value_limits`]) is the one extension keyword with instance-set
//! meaning (limits at every depth of a free-form value); every other `x-` key is an annotation.
//!
//! Keywords the checker does not understand (`oneOf`, `anyOf`, `allOf`,
//! `not`, `if`, `patternProperties`, ...) are an error, never a silent pass.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::CompatError;
use crate::report::{Breaks, Change};
use crate::store::{Dialect, Loc, Store};
use observatory_value_limits::{Limit, ValueLimits};

/// Keywords that never change an instance set.
const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "$version",
    "$comment",
    "title",
    "description",
    "examples",
    "default",
    "readOnly",
    "writeOnly",
    "deprecated",
];
/// Extra annotations allowed in an OpenAPI 3.0 Schema Object.
const OAS_ANNOTATIONS: &[&str] = &["example", "externalDocs", "xml"];
/// Keywords with instance-set meaning that the checker reasons about.
const ASSERTIONS: &[&str] = &[
    "type",
    "enum",
    "const",
    "format",
    "pattern",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "uniqueItems",
    "items",
    "additionalItems",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minProperties",
    "maxProperties",
    "properties",
    "required",
    "additionalProperties",
    "definitions",
    "$ref",
    observatory_value_limits::KEYWORD,
];

/// `$version` changes on every bump; it is not reported as a change.
const SILENT: &[&str] = &["$version"];

fn is_annotation(k: &str, dialect: Dialect) -> bool {
    ANNOTATIONS.contains(&k)
        || (k.starts_with("x-") && k != observatory_value_limits::KEYWORD)
        || (dialect == Dialect::Oas30 && OAS_ANNOTATIONS.contains(&k))
}

fn is_known(k: &str, dialect: Dialect) -> bool {
    is_annotation(k, dialect)
        || ASSERTIONS.contains(&k)
        || (dialect == Dialect::Oas30 && k == "nullable")
}

/// Checks every schema position of a whole document for keywords the checker
/// does not understand (so an unreferenced definition cannot hide one).
pub(crate) fn check_tree(value: &Value, dialect: Dialect, file: &str) -> Result<(), CompatError> {
    check_node(value, dialect, file, "")
}

pub(crate) fn check_node(
    v: &Value,
    dialect: Dialect,
    file: &str,
    ptr: &str,
) -> Result<(), CompatError> {
    let obj = match v {
        Value::Bool(_) => return Ok(()),
        Value::Object(o) => o,
        _ => {
            return Err(CompatError::Invalid {
                pointer: format!("{file}#{ptr}"),
                message: "a schema must be an object or a boolean".into(),
            });
        }
    };
    for (k, sub) in obj {
        if !is_known(k, dialect) {
            return Err(CompatError::UnknownKeyword {
                keyword: k.clone(),
                pointer: format!("{file}#{ptr}"),
            });
        }
        let here = format!("{ptr}/{}", crate::store::escape(k));
        match k.as_str() {
            "properties" | "definitions" => {
                if let Value::Object(m) = sub {
                    for (name, s) in m {
                        let p = format!("{here}/{}", crate::store::escape(name));
                        check_node(s, dialect, file, &p)?;
                    }
                }
            }
            "additionalProperties" | "additionalItems" => {
                check_node(sub, dialect, file, &here)?;
            }
            "items" => match sub {
                Value::Array(a) => {
                    for (i, s) in a.iter().enumerate() {
                        check_node(s, dialect, file, &format!("{here}/{i}"))?;
                    }
                }
                other => check_node(other, dialect, file, &here)?,
            },
            _ => {}
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Normalised schema nodes
// ---------------------------------------------------------------------------

const NULL: u8 = 1;
const BOOL: u8 = 2;
const OBJ: u8 = 4;
const ARR: u8 = 8;
const NUM: u8 = 16;
const INT: u8 = 32;
const STR: u8 = 64;
const ALL: u8 = NULL | BOOL | OBJ | ARR | NUM | INT | STR;
const NUMERIC: u8 = NUM | INT;

fn type_bit(name: &str) -> Option<u8> {
    Some(match name {
        "null" => NULL,
        "boolean" => BOOL,
        "object" => OBJ,
        "array" => ARR,
        "number" => NUM,
        "integer" => INT,
        "string" => STR,
        _ => return None,
    })
}

fn type_names(t: u8) -> String {
    let names = [
        (NULL, "null"),
        (BOOL, "boolean"),
        (OBJ, "object"),
        (ARR, "array"),
        (NUM, "number"),
        (INT, "integer"),
        (STR, "string"),
    ];
    let v: Vec<&str> = names
        .iter()
        .filter(|(b, _)| t & b != 0)
        .map(|(_, n)| *n)
        .collect();
    format!("[{}]", v.join(", "))
}

/// `number` already contains the integers.
fn canon_types(t: u8) -> u8 {
    if t & NUM != 0 { t & !INT } else { t }
}

/// Every instance of type set `p` is of a type in `c`.
fn types_subset(p: u8, c: u8) -> bool {
    [NULL, BOOL, OBJ, ARR, NUM, INT, STR]
        .iter()
        .all(|&b| p & b == 0 || c & b != 0 || (b == INT && c & NUM != 0))
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Bound {
    v: f64,
    excl: bool,
}

/// A sub-schema slot such as `additionalProperties`.
#[derive(Debug, Clone, PartialEq)]
enum Sub {
    /// Keyword absent: behaves as `true`.
    Absent,
    True(Loc),
    False(Loc),
    Schema(Loc),
}

impl Sub {
    /// The location to compare (implicit `true` for an absent keyword).
    fn loc(&self) -> Loc {
        match self {
            Sub::Absent => Store::true_loc(),
            Sub::True(l) | Sub::False(l) | Sub::Schema(l) => l.clone(),
        }
    }
    fn is_false(&self) -> bool {
        matches!(self, Sub::False(_))
    }
    fn is_open(&self) -> bool {
        matches!(self, Sub::Absent | Sub::True(_))
    }
    fn describe(&self) -> &'static str {
        match self {
            Sub::Absent => "absent (open)",
            Sub::True(_) => "true",
            Sub::False(_) => "false",
            Sub::Schema(_) => "a schema",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Items {
    Absent,
    Single(Loc),
    Tuple(Vec<Loc>),
}

#[derive(Debug, Clone)]
struct Norm {
    loc: Loc,
    types: Option<u8>,
    values: Option<Vec<Value>>,
    values_kw: &'static str,
    min_length: Option<u64>,
    max_length: Option<u64>,
    pattern: Option<String>,
    format: Option<String>,
    lower: Option<Bound>,
    upper: Option<Bound>,
    multiple_of: Option<f64>,
    items: Items,
    additional_items: Sub,
    min_items: Option<u64>,
    max_items: Option<u64>,
    unique_items: bool,
    properties: Option<Vec<(String, Loc)>>,
    required: Vec<String>,
    additional_properties: Sub,
    min_properties: Option<u64>,
    max_properties: Option<u64>,
    limits: ValueLimits,
    annotations: Map<String, Value>,
}

impl Norm {
    fn any(loc: Loc) -> Norm {
        Norm {
            loc,
            types: None,
            values: None,
            values_kw: "enum",
            min_length: None,
            max_length: None,
            pattern: None,
            format: None,
            lower: None,
            upper: None,
            multiple_of: None,
            items: Items::Absent,
            additional_items: Sub::Absent,
            min_items: None,
            max_items: None,
            unique_items: false,
            properties: None,
            required: Vec::new(),
            additional_properties: Sub::Absent,
            min_properties: None,
            max_properties: None,
            limits: ValueLimits::default(),
            annotations: Map::new(),
        }
    }

    fn type_set(&self) -> u8 {
        self.types.unwrap_or(ALL)
    }

    /// Numeric instances of this schema are all integers.
    fn integers_only(&self) -> bool {
        let t = self.type_set();
        t & NUM == 0 && t & INT != 0
    }

    fn prop(&self, name: &str) -> Option<&Loc> {
        self.properties
            .as_ref()
            .and_then(|p| p.iter().find(|(k, _)| k == name).map(|(_, l)| l))
    }

    fn item_at(&self, i: usize) -> Loc {
        match &self.items {
            Items::Absent => Store::true_loc(),
            Items::Single(l) => l.clone(),
            Items::Tuple(t) => t
                .get(i)
                .cloned()
                .unwrap_or_else(|| self.additional_items.loc()),
        }
    }

    fn items_rest(&self) -> Loc {
        match &self.items {
            Items::Absent => Store::true_loc(),
            Items::Single(l) => l.clone(),
            Items::Tuple(_) => self.additional_items.loc(),
        }
    }

    /// Lower bound on the number of properties of an emitted object.
    fn emitted_min_props(&self) -> u64 {
        let req = self.required.len() as u64;
        self.min_properties.unwrap_or(0).max(req)
    }

    /// Upper bound on the number of properties of an emitted object.
    fn emitted_max_props(&self) -> Option<u64> {
        let declared = self.properties.as_ref().map(|p| p.len() as u64);
        match (self.max_properties, declared) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[derive(Debug, Clone)]
enum Node {
    Never(Loc),
    Schema(Box<Norm>),
}

impl Node {
    fn loc(&self) -> &Loc {
        match self {
            Node::Never(l) => l,
            Node::Schema(n) => &n.loc,
        }
    }
}

fn invalid(store: &Store, loc: &Loc, message: impl Into<String>) -> CompatError {
    CompatError::Invalid {
        pointer: store.error_pointer(loc),
        message: message.into(),
    }
}

fn get_u64(
    store: &Store,
    loc: &Loc,
    o: &Map<String, Value>,
    k: &str,
) -> Result<Option<u64>, CompatError> {
    match o.get(k) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .or_else(|| {
                v.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                    .map(|f| f as u64)
            })
            .map(Some)
            .ok_or_else(|| invalid(store, loc, format!("`{k}` must be a non-negative integer"))),
    }
}

fn get_f64(
    store: &Store,
    loc: &Loc,
    o: &Map<String, Value>,
    k: &str,
) -> Result<Option<f64>, CompatError> {
    match o.get(k) {
        None | Some(Value::Bool(_)) => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| invalid(store, loc, format!("`{k}` must be a number"))),
    }
}

fn get_str(
    store: &Store,
    loc: &Loc,
    o: &Map<String, Value>,
    k: &str,
) -> Result<Option<String>, CompatError> {
    match o.get(k) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(store, loc, format!("`{k}` must be a string"))),
    }
}

fn sub_slot(store: &Store, loc: &Loc, o: &Map<String, Value>, k: &str) -> Result<Sub, CompatError> {
    let here = loc.child(k);
    match o.get(k) {
        None => Ok(Sub::Absent),
        Some(Value::Bool(true)) => Ok(Sub::True(here)),
        Some(Value::Bool(false)) => Ok(Sub::False(here)),
        Some(Value::Object(_)) => Ok(Sub::Schema(here)),
        Some(_) => Err(invalid(
            store,
            loc,
            format!("`{k}` must be a boolean or a schema"),
        )),
    }
}

fn tighter_lower(a: Option<Bound>, b: Option<Bound>) -> Option<Bound> {
    match (a, b) {
        (Some(x), Some(y)) => {
            if y.v > x.v || (y.v == x.v && y.excl) {
                Some(y)
            } else {
                Some(x)
            }
        }
        (x, y) => x.or(y),
    }
}

fn tighter_upper(a: Option<Bound>, b: Option<Bound>) -> Option<Bound> {
    match (a, b) {
        (Some(x), Some(y)) => {
            if y.v < x.v || (y.v == x.v && y.excl) {
                Some(y)
            } else {
                Some(x)
            }
        }
        (x, y) => x.or(y),
    }
}

/// Follows `$ref`s and parses the node at `loc`.
fn normalize(store: &mut Store, loc: &Loc) -> Result<Node, CompatError> {
    let mut loc = loc.clone();
    let mut seen: HashSet<Loc> = HashSet::new();
    let value = loop {
        let v = store
            .get(&loc)
            .ok_or_else(|| invalid(store, &loc, "pointer does not exist"))?;
        let r = match &v {
            Value::Object(o) => match o.get("$ref") {
                Some(Value::String(r)) => {
                    let dialect = store.dialect(&loc);
                    if let Some(k) = o
                        .keys()
                        .find(|k| *k != "$ref" && *k != "definitions" && !is_annotation(k, dialect))
                    {
                        return Err(invalid(
                            store,
                            &loc,
                            format!(
                                "keyword `{k}` beside `$ref` is ignored by draft-07 and OpenAPI 3.0; \
                                 move it into the referenced schema"
                            ),
                        ));
                    }
                    Some(r.clone())
                }
                Some(_) => return Err(invalid(store, &loc, "`$ref` must be a string")),
                None => None,
            },
            _ => None,
        };
        match r {
            Some(r) => {
                if !seen.insert(loc.clone()) {
                    return Err(invalid(store, &loc, "cyclic `$ref` chain"));
                }
                loc = store.resolve(&loc, &r)?;
            }
            None => break v,
        }
    };
    let dialect = store.dialect(&loc);
    let o = match value {
        Value::Bool(true) => return Ok(Node::Schema(Box::new(Norm::any(loc)))),
        Value::Bool(false) => return Ok(Node::Never(loc)),
        Value::Object(o) => o,
        _ => {
            return Err(invalid(
                store,
                &loc,
                "a schema must be an object or a boolean",
            ));
        }
    };
    let mut n = Norm::any(loc.clone());
    for k in o.keys() {
        if !is_known(k, dialect) {
            return Err(CompatError::UnknownKeyword {
                keyword: k.clone(),
                pointer: store.error_pointer(&loc),
            });
        }
        if is_annotation(k, dialect) && !SILENT.contains(&k.as_str()) {
            n.annotations.insert(k.clone(), o[k].clone());
        }
    }
    if let Some(t) = o.get("type") {
        let names: Vec<&Value> = match t {
            Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        let mut bits = 0u8;
        for name in names {
            let b = name
                .as_str()
                .and_then(type_bit)
                .ok_or_else(|| invalid(store, &loc, format!("unknown type {name}")))?;
            bits |= b;
        }
        if bits == 0 {
            return Err(invalid(store, &loc, "`type` must not be empty"));
        }
        if dialect == Dialect::Oas30 && o.get("nullable") == Some(&Value::Bool(true)) {
            bits |= NULL;
        }
        n.types = Some(canon_types(bits));
    }
    if let Some(nl) = o.get("nullable")
        && !nl.is_boolean()
    {
        return Err(invalid(store, &loc, "`nullable` must be a boolean"));
    }
    if let Some(e) = o.get("enum") {
        match e {
            Value::Array(a) if !a.is_empty() => n.values = Some(a.clone()),
            _ => return Err(invalid(store, &loc, "`enum` must be a non-empty array")),
        }
    }
    if let Some(c) = o.get("const") {
        n.values = Some(match n.values.take() {
            Some(vals) => vals.into_iter().filter(|v| json_eq(v, c)).collect(),
            None => vec![c.clone()],
        });
        n.values_kw = "const";
    }
    n.min_length = get_u64(store, &loc, &o, "minLength")?;
    n.max_length = get_u64(store, &loc, &o, "maxLength")?;
    n.min_items = get_u64(store, &loc, &o, "minItems")?;
    n.max_items = get_u64(store, &loc, &o, "maxItems")?;
    n.min_properties = get_u64(store, &loc, &o, "minProperties")?;
    n.max_properties = get_u64(store, &loc, &o, "maxProperties")?;
    if let Some(limits) = o.get(observatory_value_limits::KEYWORD) {
        n.limits = ValueLimits::parse(limits).map_err(|message| invalid(store, &loc, message))?;
    }
    n.pattern = get_str(store, &loc, &o, "pattern")?;
    n.format = get_str(store, &loc, &o, "format")?;
    // Numeric bounds: draft-07 numeric exclusive bounds, or OpenAPI 3.0
    // boolean modifiers of minimum/maximum.
    let minimum = get_f64(store, &loc, &o, "minimum")?;
    let maximum = get_f64(store, &loc, &o, "maximum")?;
    let mut lower = minimum.map(|v| Bound { v, excl: false });
    let mut upper = maximum.map(|v| Bound { v, excl: false });
    match o.get("exclusiveMinimum") {
        Some(Value::Bool(b)) => {
            if dialect != Dialect::Oas30 {
                return Err(invalid(
                    store,
                    &loc,
                    "boolean `exclusiveMinimum` is not draft-07",
                ));
            }
            if *b {
                lower = lower.map(|x| Bound { v: x.v, excl: true });
            }
        }
        Some(_) => {
            let v = get_f64(store, &loc, &o, "exclusiveMinimum")?;
            lower = tighter_lower(lower, v.map(|v| Bound { v, excl: true }));
        }
        None => {}
    }
    match o.get("exclusiveMaximum") {
        Some(Value::Bool(b)) => {
            if dialect != Dialect::Oas30 {
                return Err(invalid(
                    store,
                    &loc,
                    "boolean `exclusiveMaximum` is not draft-07",
                ));
            }
            if *b {
                upper = upper.map(|x| Bound { v: x.v, excl: true });
            }
        }
        Some(_) => {
            let v = get_f64(store, &loc, &o, "exclusiveMaximum")?;
            upper = tighter_upper(upper, v.map(|v| Bound { v, excl: true }));
        }
        None => {}
    }
    n.lower = lower;
    n.upper = upper;
    n.multiple_of = get_f64(store, &loc, &o, "multipleOf")?;
    if n.multiple_of.is_some_and(|m| m <= 0.0) {
        return Err(invalid(store, &loc, "`multipleOf` must be > 0"));
    }
    match o.get("uniqueItems") {
        None => {}
        Some(Value::Bool(b)) => n.unique_items = *b,
        Some(_) => return Err(invalid(store, &loc, "`uniqueItems` must be a boolean")),
    }
    n.items = match o.get("items") {
        None => Items::Absent,
        Some(Value::Array(a)) => Items::Tuple(
            (0..a.len())
                .map(|i| loc.child("items").child_idx(i))
                .collect(),
        ),
        Some(Value::Object(_) | Value::Bool(_)) => Items::Single(loc.child("items")),
        Some(_) => return Err(invalid(store, &loc, "`items` must be a schema or an array")),
    };
    n.additional_items = sub_slot(store, &loc, &o, "additionalItems")?;
    n.additional_properties = sub_slot(store, &loc, &o, "additionalProperties")?;
    match o.get("properties") {
        None => {}
        Some(Value::Object(p)) => {
            let base = loc.child("properties");
            n.properties = Some(p.keys().map(|k| (k.clone(), base.child(k))).collect());
        }
        Some(_) => return Err(invalid(store, &loc, "`properties` must be an object")),
    }
    match o.get("required") {
        None => {}
        Some(Value::Array(a)) => {
            for r in a {
                match r {
                    Value::String(s) => {
                        if !n.required.contains(s) {
                            n.required.push(s.clone());
                        }
                    }
                    _ => return Err(invalid(store, &loc, "`required` must list strings")),
                }
            }
        }
        Some(_) => return Err(invalid(store, &loc, "`required` must be an array")),
    }
    if let Some(d) = o.get("definitions")
        && !d.is_object()
    {
        return Err(invalid(store, &loc, "`definitions` must be an object"));
    }
    Ok(Node::Schema(Box::new(n)))
}

/// JSON equality where `1` equals `1.0`.
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(p), Some(q)) => p == q && (x.is_f64() || y.is_f64() || x == y),
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn value_type(v: &Value) -> u8 {
    match v {
        Value::Null => NULL,
        Value::Bool(_) => BOOL,
        Value::Object(_) => OBJ,
        Value::Array(_) => ARR,
        Value::String(_) => STR,
        Value::Number(n) => {
            if n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0) {
                INT
            } else {
                NUM
            }
        }
    }
}

/// Known inclusions between integer formats (all other formats: only equal
/// formats are known to include each other).
fn format_subset(p: &str, c: &str) -> bool {
    if p == c {
        return true;
    }
    let range = |f: &str| -> Option<(i128, i128)> {
        Some(match f {
            "int8" => (i8::MIN as i128, i8::MAX as i128),
            "int16" => (i16::MIN as i128, i16::MAX as i128),
            "int32" => (i32::MIN as i128, i32::MAX as i128),
            "int64" => (i64::MIN as i128, i64::MAX as i128),
            "uint8" => (0, u8::MAX as i128),
            "uint16" => (0, u16::MAX as i128),
            "uint32" => (0, u32::MAX as i128),
            "uint64" => (0, u64::MAX as i128),
            _ => return None,
        })
    };
    match (range(p), range(c)) {
        (Some((a, b)), Some((x, y))) => x <= a && b <= y,
        _ => false,
    }
}

fn is_multiple(value: f64, of: f64) -> bool {
    let q = value / of;
    (q - q.round()).abs() < 1e-9
}

fn lower_ok(v: f64, b: &Option<Bound>) -> bool {
    match b {
        None => true,
        Some(b) => v > b.v || (v == b.v && !b.excl),
    }
}

fn upper_ok(v: f64, b: &Option<Bound>) -> bool {
    match b {
        None => true,
        Some(b) => v < b.v || (v == b.v && !b.excl),
    }
}

/// Which keyword family rejected a value (to attribute the break).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Type,
    Values,
    MinLength,
    MaxLength,
    Pattern,
    Format,
    Lower,
    Upper,
    MultipleOf,
    MinItems,
    MaxItems,
    Unique,
    Items,
    Properties,
    MinProps,
    MaxProps,
    Limits,
}

enum Verdict {
    Yes,
    No(Family, String),
    Unknown(Family, String),
}

fn validate_loc(
    store: &mut Store,
    loc: &Loc,
    v: &Value,
    closed: bool,
) -> Result<Verdict, CompatError> {
    match normalize(store, loc)? {
        Node::Never(_) => Ok(Verdict::No(Family::Values, "false schema".into())),
        Node::Schema(n) => validate(store, &n, v, closed, None),
    }
}

/// Is `v` valid under `n`? `closed`: treat objects with `properties` as
/// closed (Emits). `assume`: the producer schema at the same node, whose
/// `pattern`/`format` are known to hold for the value.
fn validate(
    store: &mut Store,
    n: &Norm,
    v: &Value,
    closed: bool,
    assume: Option<&Norm>,
) -> Result<Verdict, CompatError> {
    use Verdict::*;
    let mut unknown: Option<(Family, String)> = None;
    let t = value_type(v);
    if !types_subset(t, n.type_set()) {
        return Ok(No(
            Family::Type,
            format!("type is not {}", type_names(n.type_set())),
        ));
    }
    if let Err(beyond) = n.limits.check(v) {
        return Ok(No(
            Family::Limits,
            format!(
                "beyond `{}` at `{}`: {}",
                observatory_value_limits::KEYWORD,
                beyond.pointer,
                beyond.message
            ),
        ));
    }
    if let Some(vals) = &n.values
        && !vals.iter().any(|x| json_eq(x, v))
    {
        return Ok(No(Family::Values, format!("not in `{}`", n.values_kw)));
    }
    if let Some(f) = &n.format
        && matches!(v, Value::String(_) | Value::Number(_))
    {
        let known = assume
            .and_then(|a| a.format.as_deref())
            .is_some_and(|pf| format_subset(pf, f));
        if !known {
            unknown = Some((
                Family::Format,
                format!("format `{f}` is not evaluated on values"),
            ));
        }
    }
    match v {
        Value::String(s) => {
            let len = s.chars().count() as u64;
            if n.min_length.is_some_and(|m| len < m) {
                return Ok(No(Family::MinLength, "shorter than minLength".into()));
            }
            if n.max_length.is_some_and(|m| len > m) {
                return Ok(No(Family::MaxLength, "longer than maxLength".into()));
            }
            if let Some(p) = &n.pattern
                && assume.and_then(|a| a.pattern.as_ref()) != Some(p)
            {
                unknown = Some((
                    Family::Pattern,
                    format!("pattern `{p}` is not evaluated on values"),
                ));
            }
        }
        Value::Number(num) => {
            let f = num.as_f64().unwrap_or(0.0);
            if !lower_ok(f, &n.lower) {
                return Ok(No(Family::Lower, "below the minimum".into()));
            }
            if !upper_ok(f, &n.upper) {
                return Ok(No(Family::Upper, "above the maximum".into()));
            }
            if n.multiple_of.is_some_and(|m| !is_multiple(f, m)) {
                return Ok(No(
                    Family::MultipleOf,
                    "not a multiple of multipleOf".into(),
                ));
            }
        }
        Value::Array(a) => {
            let len = a.len() as u64;
            if n.min_items.is_some_and(|m| len < m) {
                return Ok(No(Family::MinItems, "fewer items than minItems".into()));
            }
            if n.max_items.is_some_and(|m| len > m) {
                return Ok(No(Family::MaxItems, "more items than maxItems".into()));
            }
            if n.unique_items {
                for i in 0..a.len() {
                    for j in i + 1..a.len() {
                        if json_eq(&a[i], &a[j]) {
                            return Ok(No(Family::Unique, "items are not unique".into()));
                        }
                    }
                }
            }
            for (i, e) in a.iter().enumerate() {
                match validate_loc(store, &n.item_at(i), e, closed)? {
                    Yes => {}
                    No(_, r) => return Ok(No(Family::Items, format!("item {i}: {r}"))),
                    Unknown(_, r) => unknown = Some((Family::Items, format!("item {i}: {r}"))),
                }
            }
        }
        Value::Object(m) => {
            for r in &n.required {
                if !m.contains_key(r) {
                    return Ok(No(Family::Properties, format!("missing required `{r}`")));
                }
            }
            let len = m.len() as u64;
            if n.min_properties.is_some_and(|x| len < x) {
                return Ok(No(
                    Family::MinProps,
                    "fewer properties than minProperties".into(),
                ));
            }
            if n.max_properties.is_some_and(|x| len > x) {
                return Ok(No(
                    Family::MaxProps,
                    "more properties than maxProperties".into(),
                ));
            }
            for (k, e) in m {
                let sub = match n.prop(k) {
                    Some(l) => l.clone(),
                    None => {
                        if closed && n.properties.is_some() {
                            return Ok(No(Family::Properties, format!("`{k}` is not emitted")));
                        }
                        match &n.additional_properties {
                            Sub::False(_) => {
                                return Ok(No(
                                    Family::Properties,
                                    format!("`{k}` is not an allowed property"),
                                ));
                            }
                            other => other.loc(),
                        }
                    }
                };
                match validate_loc(store, &sub, e, closed)? {
                    Yes => {}
                    No(_, r) => return Ok(No(Family::Properties, format!("`{k}`: {r}"))),
                    Unknown(_, r) => unknown = Some((Family::Properties, format!("`{k}`: {r}"))),
                }
            }
        }
        _ => {}
    }
    Ok(match unknown {
        Some((f, r)) => Unknown(f, r),
        None => Yes,
    })
}

/// The finite set of values a producer schema can emit, when it is finite and
/// known: `enum`/`const` (filtered by the schema's other keywords), or a type
/// set within {null, boolean}.
fn finite_values(store: &mut Store, p: &Norm) -> Result<Option<Vec<Value>>, CompatError> {
    if let Some(vals) = &p.values {
        let mut kept = Vec::new();
        for v in vals {
            match validate(store, p, v, true, Some(p))? {
                Verdict::No(..) => {}
                _ => kept.push(v.clone()),
            }
        }
        return Ok(Some(kept));
    }
    if let Some(t) = p.types
        && t & !(NULL | BOOL) == 0
    {
        let mut out = Vec::new();
        if t & NULL != 0 {
            out.push(Value::Null);
        }
        if t & BOOL != 0 {
            out.push(Value::Bool(true));
            out.push(Value::Bool(false));
        }
        return Ok(Some(out));
    }
    Ok(None)
}

// ---------------------------------------------------------------------------
// Comparison
// ---------------------------------------------------------------------------

struct Rejected {
    value: Value,
    family: Family,
    reason: String,
    undecided: bool,
    used: bool,
}

/// Directions as indices: 0 = backward (P = old), 1 = forward (P = new).
const BW: usize = 0;
const FW: usize = 1;

fn has(d: Breaks, i: usize) -> bool {
    if i == BW { d.backward() } else { d.forward() }
}

fn only(i: usize) -> Breaks {
    if i == BW {
        Breaks::Backward
    } else {
        Breaks::Forward
    }
}

fn bound_str(b: &Option<Bound>, lower: bool) -> String {
    match b {
        None => "none".into(),
        Some(b) => match (lower, b.excl) {
            (true, false) => format!(">= {}", b.v),
            (true, true) => format!("> {}", b.v),
            (false, false) => format!("<= {}", b.v),
            (false, true) => format!("< {}", b.v),
        },
    }
}

fn opt_str<T: std::fmt::Display>(o: &Option<T>) -> String {
    o.as_ref()
        .map_or_else(|| "none".to_string(), |v| v.to_string())
}

/// Kind names for a count bound keyword (`min-length`, `max-items`, ...).
fn count_kind(base: &str, old: Option<u64>, new: Option<u64>) -> &'static str {
    let (added, removed, inc, dec) = match base {
        "min-length" => (
            "min-length-added",
            "min-length-removed",
            "min-length-increased",
            "min-length-decreased",
        ),
        "max-length" => (
            "max-length-added",
            "max-length-removed",
            "max-length-increased",
            "max-length-decreased",
        ),
        "min-items" => (
            "min-items-added",
            "min-items-removed",
            "min-items-increased",
            "min-items-decreased",
        ),
        "max-items" => (
            "max-items-added",
            "max-items-removed",
            "max-items-increased",
            "max-items-decreased",
        ),
        "min-properties" => (
            "min-properties-added",
            "min-properties-removed",
            "min-properties-increased",
            "min-properties-decreased",
        ),
        _ => (
            "max-properties-added",
            "max-properties-removed",
            "max-properties-increased",
            "max-properties-decreased",
        ),
    };
    match (old, new) {
        (None, _) => added,
        (_, None) => removed,
        (Some(a), Some(b)) if b > a => inc,
        _ => dec,
    }
}

pub(crate) struct Comparer<'a> {
    pub old: &'a mut Store,
    pub new: &'a mut Store,
    pub changes: Vec<Change>,
    visited: HashSet<(Loc, Loc, Breaks)>,
}

impl<'a> Comparer<'a> {
    pub fn new(old: &'a mut Store, new: &'a mut Store) -> Self {
        Comparer {
            old,
            new,
            changes: Vec::new(),
            visited: HashSet::new(),
        }
    }

    /// Display pointers of a node pair, plus `kw`: an already escaped
    /// pointer suffix ("" for the node itself).
    fn ptr(&self, o: &Loc, n: &Loc, kw: &str) -> (String, String) {
        let suffix = if kw.is_empty() {
            String::new()
        } else {
            format!("/{kw}")
        };
        (
            format!("{}{}", self.old.display(o), suffix),
            format!("{}{}", self.new.display(n), suffix),
        )
    }

    pub fn push(
        &mut self,
        o: &Loc,
        n: &Loc,
        kw: &str,
        kind: &'static str,
        breaks: Breaks,
        message: String,
    ) {
        let (pointer_old, pointer_new) = self.ptr(o, n, kw);
        self.changes.push(Change {
            pointer_old,
            pointer_new,
            kind,
            breaks,
            message,
        });
    }

    /// Forgets visited pairs (before an independent top-level comparison).
    pub fn reset(&mut self) {
        self.visited.clear();
    }

    /// Compares the schemas at `o` (old side) and `n` (new side), evaluating
    /// the directions in `dirs`. Changes are reported in both cases; only the
    /// directions in `dirs` can be marked broken.
    pub fn compare(&mut self, o: &Loc, n: &Loc, dirs: Breaks) -> Result<(), CompatError> {
        let on = normalize(self.old, o)?;
        let nn = normalize(self.new, n)?;
        if !self
            .visited
            .insert((on.loc().clone(), nn.loc().clone(), dirs))
        {
            return Ok(());
        }
        match (on, nn) {
            (Node::Never(_), Node::Never(_)) => Ok(()),
            (Node::Never(a), Node::Schema(b)) => {
                self.push(
                    &a,
                    &b.loc,
                    "",
                    "false-schema-removed",
                    dirs.intersect(Breaks::Forward),
                    "old schema `false` accepted nothing; the new one accepts values".into(),
                );
                Ok(())
            }
            (Node::Schema(a), Node::Never(b)) => {
                self.push(
                    &a.loc,
                    &b,
                    "",
                    "false-schema-added",
                    dirs.intersect(Breaks::Backward),
                    "new schema is `false`: it accepts nothing".into(),
                );
                Ok(())
            }
            (Node::Schema(a), Node::Schema(b)) => self.compare_norm(&a, &b, dirs),
        }
    }

    fn compare_norm(&mut self, o: &Norm, n: &Norm, dirs: Breaks) -> Result<(), CompatError> {
        let (ol, nl) = (&o.loc, &n.loc);

        // Annotations: never change an instance set.
        let mut keys: Vec<&String> = o.annotations.keys().collect();
        keys.extend(
            n.annotations
                .keys()
                .filter(|k| !o.annotations.contains_key(*k)),
        );
        for k in keys {
            let (a, b) = (o.annotations.get(k), n.annotations.get(k));
            if a != b {
                let what = match (a, b) {
                    (None, _) => "added",
                    (_, None) => "removed",
                    _ => "changed",
                };
                self.push(
                    ol,
                    nl,
                    &crate::store::escape(k),
                    "annotation-changed",
                    Breaks::None,
                    format!("`{k}` {what}; no instance set changes"),
                );
            }
        }

        // Directions decided exactly on a finite producer set.
        let mut decided = [false, false];
        let mut rejected: [Vec<Rejected>; 2] = [Vec::new(), Vec::new()];
        for d in [BW, FW] {
            if !has(dirs, d) {
                continue;
            }
            let (p, c) = if d == BW { (o, n) } else { (n, o) };
            let pstore: &mut Store = if d == BW { self.old } else { self.new };
            let Some(vals) = finite_values(pstore, p)? else {
                continue;
            };
            decided[d] = true;
            let cstore: &mut Store = if d == BW { self.new } else { self.old };
            for v in vals {
                let (family, reason, undecided) = match validate(cstore, c, &v, false, Some(p))? {
                    Verdict::Yes => continue,
                    Verdict::No(f, r) => (f, r, false),
                    Verdict::Unknown(f, r) => (f, r, true),
                };
                rejected[d].push(Rejected {
                    value: v,
                    family,
                    reason,
                    undecided,
                    used: false,
                });
            }
        }
        let live = Breaks::from_flags(has(dirs, BW) && !decided[BW], has(dirs, FW) && !decided[FW]);

        // Breaks of one keyword family: structural check in live directions
        // (`f(P, C)` says "P's keyword does not imply C's"), value check in
        // decided directions. `gate` is the instance types the family applies to.
        let brk = |rejected: &mut [Vec<Rejected>; 2],
                   fam: Family,
                   gate: u8,
                   f: &dyn Fn(&Norm, &Norm) -> bool|
         -> Breaks {
            let mut out = [false, false];
            for d in [BW, FW] {
                let (p, c) = if d == BW { (o, n) } else { (n, o) };
                if has(live, d) && p.type_set() & gate != 0 && c.type_set() & gate != 0 && f(p, c) {
                    out[d] = true;
                }
                if decided[d] {
                    for r in rejected[d].iter_mut().filter(|r| r.family == fam) {
                        r.used = true;
                        out[d] = true;
                    }
                }
            }
            Breaks::from_flags(out[BW], out[FW])
        };

        // type
        if o.types != n.types {
            let b = brk(&mut rejected, Family::Type, ALL, &|p, c| {
                !types_subset(p.type_set(), c.type_set())
            });
            let (ot, nt) = (o.type_set(), n.type_set());
            let kind = match (o.types, n.types) {
                (None, _) => "type-added",
                (_, None) => "type-removed",
                _ if types_subset(ot, nt) => "type-widened",
                _ if types_subset(nt, ot) => "type-narrowed",
                _ => "type-changed",
            };
            let show = |t: Option<u8>| t.map_or_else(|| "any".to_string(), type_names);
            let msg = format!("type {} -> {}", show(o.types), show(n.types));
            self.push(ol, nl, "type", kind, b, msg);
        }

        // enum / const
        self.compare_values(o, n, live, &decided, &mut rejected);

        // string keywords
        if o.min_length != n.min_length {
            let b = brk(&mut rejected, Family::MinLength, STR, &|p, c| {
                c.min_length.unwrap_or(0) > p.min_length.unwrap_or(0)
            });
            let kind = count_kind("min-length", o.min_length, n.min_length);
            self.push(
                ol,
                nl,
                "minLength",
                kind,
                b,
                format!(
                    "minLength {} -> {}",
                    opt_str(&o.min_length),
                    opt_str(&n.min_length)
                ),
            );
        }
        if o.max_length != n.max_length {
            let b = brk(&mut rejected, Family::MaxLength, STR, &|p, c| match (
                p.max_length,
                c.max_length,
            ) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(x), Some(y)) => x > y,
            });
            let kind = count_kind("max-length", o.max_length, n.max_length);
            self.push(
                ol,
                nl,
                "maxLength",
                kind,
                b,
                format!(
                    "maxLength {} -> {}",
                    opt_str(&o.max_length),
                    opt_str(&n.max_length)
                ),
            );
        }
        if o.pattern != n.pattern {
            let b = brk(&mut rejected, Family::Pattern, STR, &|p, c| {
                c.pattern.is_some() && p.pattern != c.pattern
            });
            let (kind, msg) = match (&o.pattern, &n.pattern) {
                (None, Some(p)) => ("pattern-added", format!("pattern `{p}` added")),
                (Some(p), None) => ("pattern-removed", format!("pattern `{p}` removed")),
                (Some(a), Some(b)) => (
                    "pattern-changed",
                    format!(
                        "pattern `{a}` -> `{b}`; regex inclusion is not decided, treated as incompatible both ways"
                    ),
                ),
                (None, None) => ("pattern-changed", String::new()),
            };
            self.push(ol, nl, "pattern", kind, b, msg);
        }
        if o.format != n.format {
            let b = brk(
                &mut rejected,
                Family::Format,
                STR | NUMERIC,
                &|p, c| match (&p.format, &c.format) {
                    (_, None) => false,
                    (None, Some(_)) => true,
                    (Some(x), Some(y)) => !format_subset(x, y),
                },
            );
            let kind = match (&o.format, &n.format) {
                (None, _) => "format-added",
                (_, None) => "format-removed",
                _ => "format-changed",
            };
            let msg = format!(
                "format {} -> {} (format is an assertion)",
                opt_str(&o.format),
                opt_str(&n.format)
            );
            self.push(ol, nl, "format", kind, b, msg);
        }

        // numeric keywords
        if o.lower != n.lower {
            let b = brk(&mut rejected, Family::Lower, NUMERIC, &|p, c| {
                !lower_subset(p, c)
            });
            let kind = match (o.lower, n.lower) {
                (None, _) => "minimum-added",
                (_, None) => "minimum-removed",
                (Some(a), Some(b)) if b.v > a.v || (b.v == a.v && b.excl) => "minimum-increased",
                _ => "minimum-decreased",
            };
            let msg = format!(
                "lower bound {} -> {}",
                bound_str(&o.lower, true),
                bound_str(&n.lower, true)
            );
            self.push(ol, nl, "minimum", kind, b, msg);
        }
        if o.upper != n.upper {
            let b = brk(&mut rejected, Family::Upper, NUMERIC, &|p, c| {
                !upper_subset(p, c)
            });
            let kind = match (o.upper, n.upper) {
                (None, _) => "maximum-added",
                (_, None) => "maximum-removed",
                (Some(a), Some(b)) if b.v < a.v || (b.v == a.v && b.excl) => "maximum-decreased",
                _ => "maximum-increased",
            };
            let msg = format!(
                "upper bound {} -> {}",
                bound_str(&o.upper, false),
                bound_str(&n.upper, false)
            );
            self.push(ol, nl, "maximum", kind, b, msg);
        }
        if o.multiple_of != n.multiple_of {
            let b = brk(
                &mut rejected,
                Family::MultipleOf,
                NUMERIC,
                &|p, c| match c.multiple_of {
                    None => false,
                    Some(m) => {
                        !(p.multiple_of.is_some_and(|x| is_multiple(x, m))
                            || (p.integers_only() && is_multiple(1.0, m)))
                    }
                },
            );
            let kind = match (o.multiple_of, n.multiple_of) {
                (None, _) => "multiple-of-added",
                (_, None) => "multiple-of-removed",
                _ => "multiple-of-changed",
            };
            let msg = format!(
                "multipleOf {} -> {}",
                opt_str(&o.multiple_of),
                opt_str(&n.multiple_of)
            );
            self.push(ol, nl, "multipleOf", kind, b, msg);
        }

        // array keywords
        if o.min_items != n.min_items {
            let b = brk(&mut rejected, Family::MinItems, ARR, &|p, c| {
                c.min_items.unwrap_or(0) > p.min_items.unwrap_or(0)
            });
            let kind = count_kind("min-items", o.min_items, n.min_items);
            self.push(
                ol,
                nl,
                "minItems",
                kind,
                b,
                format!(
                    "minItems {} -> {}",
                    opt_str(&o.min_items),
                    opt_str(&n.min_items)
                ),
            );
        }
        if o.max_items != n.max_items {
            let b = brk(&mut rejected, Family::MaxItems, ARR, &|p, c| match (
                p.max_items,
                c.max_items,
            ) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(x), Some(y)) => x > y,
            });
            let kind = count_kind("max-items", o.max_items, n.max_items);
            self.push(
                ol,
                nl,
                "maxItems",
                kind,
                b,
                format!(
                    "maxItems {} -> {}",
                    opt_str(&o.max_items),
                    opt_str(&n.max_items)
                ),
            );
        }
        if o.unique_items != n.unique_items {
            let b = brk(&mut rejected, Family::Unique, ARR, &|p, c| {
                c.unique_items && !p.unique_items
            });
            let kind = if n.unique_items {
                "unique-items-added"
            } else {
                "unique-items-removed"
            };
            self.push(
                ol,
                nl,
                "uniqueItems",
                kind,
                b,
                format!("uniqueItems {} -> {}", o.unique_items, n.unique_items),
            );
        }

        // object keywords (counts)
        if o.min_properties != n.min_properties {
            let b = brk(&mut rejected, Family::MinProps, OBJ, &|p, c| {
                c.min_properties.unwrap_or(0) > p.emitted_min_props()
            });
            let kind = count_kind("min-properties", o.min_properties, n.min_properties);
            let msg = format!(
                "minProperties {} -> {}",
                opt_str(&o.min_properties),
                opt_str(&n.min_properties)
            );
            self.push(ol, nl, "minProperties", kind, b, msg);
        }
        if o.max_properties != n.max_properties {
            let b = brk(&mut rejected, Family::MaxProps, OBJ, &|p, c| match (
                p.emitted_max_props(),
                c.max_properties,
            ) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(x), Some(y)) => x > y,
            });
            let kind = count_kind("max-properties", o.max_properties, n.max_properties);
            let msg = format!(
                "maxProperties {} -> {}",
                opt_str(&o.max_properties),
                opt_str(&n.max_properties)
            );
            self.push(ol, nl, "maxProperties", kind, b, msg);
        }

        // x-limits: each limit holds at every depth of the value, so P implies C's only when
        // P states the same limit at this node, at least as tight (conservative: a limit that
        // P's structure or an ancestor's limit implies is not credited).
        for limit in Limit::ALL {
            let (a, b) = (o.limits.get(limit), n.limits.get(limit));
            if a == b {
                continue;
            }
            let breaks = brk(&mut rejected, Family::Limits, ALL, &|p, c| {
                !p.limits.implies(&c.limits, limit)
            });
            let kind = match (a, b) {
                (None, _) => "limit-added",
                (_, None) => "limit-removed",
                (Some(x), Some(y)) if y < x => "limit-tightened",
                _ => "limit-loosened",
            };
            let show = |v: Option<u64>| match (v, limit.is_flag()) {
                (None, true) => "off".to_owned(),
                (Some(_), true) => "on".to_owned(),
                (v, false) => opt_str(&v),
            };
            let msg = format!(
                "{}.{} {} -> {}",
                observatory_value_limits::KEYWORD,
                limit.name(),
                show(a),
                show(b)
            );
            let kw = format!("{}/{}", observatory_value_limits::KEYWORD, limit.name());
            self.push(ol, nl, &kw, kind, breaks, msg);
        }

        // Directions in which sub-schemas matter: not decided by values, and
        // both sides admit the container type.
        let gated = |gate: u8| -> Breaks {
            let ok = |d: usize| {
                let (p, c) = if d == BW { (o, n) } else { (n, o) };
                has(live, d) && p.type_set() & gate != 0 && c.type_set() & gate != 0
            };
            Breaks::from_flags(ok(BW), ok(FW))
        };
        self.compare_items(o, n, gated(ARR))?;
        self.compare_object(o, n, gated(OBJ))?;

        // Values rejected for a reason not attributed to a keyword change above.
        for d in [BW, FW] {
            let rs: Vec<(String, String, bool)> = rejected[d]
                .iter()
                .filter(|r| !r.used)
                .map(|r| (r.value.to_string(), r.reason.clone(), r.undecided))
                .collect();
            for (v, reason, undecided) in rs {
                let (side_p, side_c) = if d == BW {
                    ("old", "new")
                } else {
                    ("new", "old")
                };
                let tail = if undecided {
                    " (not decided; treated as incompatible)"
                } else {
                    ""
                };
                self.push(
                    ol,
                    nl,
                    "",
                    "enum-value-rejected",
                    only(d),
                    format!("value {v} allowed by the {side_p} schema is not accepted by the {side_c} one: {reason}{tail}"),
                );
            }
        }
        Ok(())
    }

    fn compare_values(
        &mut self,
        o: &Norm,
        n: &Norm,
        live: Breaks,
        decided: &[bool; 2],
        rejected: &mut [Vec<Rejected>; 2],
    ) {
        let (ol, nl) = (&o.loc, &n.loc);
        let is_const = o.values_kw == "const" || n.values_kw == "const";
        let mut take = |d: usize, v: &Value| -> bool {
            if !decided[d] {
                return false;
            }
            let mut hit = false;
            for r in rejected[d].iter_mut().filter(|r| json_eq(&r.value, v)) {
                r.used = true;
                hit = true;
            }
            hit
        };
        match (&o.values, &n.values) {
            (None, None) => {}
            (Some(ov), Some(nv)) => {
                let removed: Vec<&Value> = ov
                    .iter()
                    .filter(|v| !nv.iter().any(|w| json_eq(v, w)))
                    .collect();
                let added: Vec<&Value> = nv
                    .iter()
                    .filter(|v| !ov.iter().any(|w| json_eq(v, w)))
                    .collect();
                if is_const {
                    if !removed.is_empty() || !added.is_empty() {
                        let mut bw = false;
                        let mut fw = false;
                        for v in &removed {
                            bw |= take(BW, v);
                        }
                        for v in &added {
                            fw |= take(FW, v);
                        }
                        let show = |vs: &Vec<Value>| {
                            vs.iter()
                                .map(Value::to_string)
                                .collect::<Vec<_>>()
                                .join(", ")
                        };
                        self.push(
                            ol,
                            nl,
                            "const",
                            "const-changed",
                            Breaks::from_flags(bw, fw),
                            format!("const {} -> {}", show(ov), show(nv)),
                        );
                    }
                    return;
                }
                for v in removed {
                    let b = Breaks::from_flags(take(BW, v), false);
                    self.push(
                        ol,
                        nl,
                        "enum",
                        "enum-value-removed",
                        b,
                        format!("enum value {v} removed"),
                    );
                }
                for v in added {
                    let b = Breaks::from_flags(false, take(FW, v));
                    self.push(
                        ol,
                        nl,
                        "enum",
                        "enum-value-added",
                        b,
                        format!("enum value {v} added"),
                    );
                }
            }
            (Some(_), None) => {
                // P = new (forward) is not finite here unless decided.
                let fw = live.forward() && n.type_set() & o.type_set() != 0;
                let kw = o.values_kw;
                let kind = if kw == "const" {
                    "const-removed"
                } else {
                    "enum-removed"
                };
                self.push(
                    ol,
                    nl,
                    kw,
                    kind,
                    Breaks::from_flags(false, fw),
                    format!("`{kw}` removed: the new schema allows values the old one rejects"),
                );
            }
            (None, Some(_)) => {
                let bw = live.backward() && n.type_set() & o.type_set() != 0;
                let kw = n.values_kw;
                let kind = if kw == "const" {
                    "const-added"
                } else {
                    "enum-added"
                };
                self.push(
                    ol,
                    nl,
                    kw,
                    kind,
                    Breaks::from_flags(bw, false),
                    format!("`{kw}` added: the new schema rejects values the old one allowed"),
                );
            }
        }
    }

    fn compare_items(&mut self, o: &Norm, n: &Norm, dirs: Breaks) -> Result<(), CompatError> {
        match (&o.items, &n.items) {
            (Items::Absent, Items::Absent) => Ok(()),
            (Items::Single(a), Items::Single(b)) => self.compare(a, b, dirs),
            _ => {
                if std::mem::discriminant(&o.items) != std::mem::discriminant(&n.items) {
                    let msg = "`items` changed form; compared position by position".to_string();
                    self.push(
                        &o.loc,
                        &n.loc,
                        "items",
                        "items-form-changed",
                        Breaks::None,
                        msg,
                    );
                }
                let len = |i: &Items| if let Items::Tuple(t) = i { t.len() } else { 0 };
                for i in 0..len(&o.items).max(len(&n.items)) {
                    self.compare(&o.item_at(i), &n.item_at(i), dirs)?;
                }
                self.compare(&o.items_rest(), &n.items_rest(), dirs)
            }
        }
    }

    fn compare_object(&mut self, o: &Norm, n: &Norm, dirs: Breaks) -> Result<(), CompatError> {
        let (ol, nl) = (&o.loc, &n.loc);
        // Properties, in document order: old ones, then new ones.
        let mut names: Vec<String> = o
            .properties
            .iter()
            .flatten()
            .map(|(k, _)| k.clone())
            .collect();
        for (k, _) in n.properties.iter().flatten() {
            if !names.contains(k) {
                names.push(k.clone());
            }
        }
        for k in &names {
            match (o.prop(k), n.prop(k)) {
                (Some(a), Some(b)) => self.compare(a, b, dirs)?,
                (None, Some(b)) => {
                    let mut fw = false;
                    let mut note = "";
                    if dirs.forward() {
                        match &o.additional_properties {
                            Sub::False(_) => {
                                fw = true;
                                note = "; the old object is closed (additionalProperties: false), old consumers reject it";
                            }
                            Sub::Schema(l) => {
                                note = "; checked against the old additionalProperties";
                                self.compare(l, b, Breaks::Forward)?;
                            }
                            _ => {}
                        }
                    }
                    if dirs.backward()
                        && o.properties.is_none()
                        && !o.additional_properties.is_false()
                    {
                        // The old object declares no properties: old producers
                        // may send `k` under additionalProperties.
                        self.compare(&o.additional_properties.loc(), b, Breaks::Backward)?;
                    }
                    let req = if n.required.contains(k) {
                        " (required)"
                    } else {
                        " (optional)"
                    };
                    let b2 = Breaks::from_flags(false, fw);
                    self.push(
                        ol,
                        nl,
                        &format!("properties/{}", crate::store::escape(k)),
                        "property-added",
                        b2,
                        format!("property `{k}` added{req}{note}"),
                    );
                }
                (Some(a), None) => {
                    let mut bw = false;
                    let mut note = "";
                    if dirs.backward() {
                        match &n.additional_properties {
                            Sub::False(_) => {
                                bw = true;
                                note = "; the new object is closed (additionalProperties: false), it rejects what old producers send";
                            }
                            Sub::Schema(l) => {
                                note = "; checked against the new additionalProperties";
                                self.compare(a, l, Breaks::Backward)?;
                            }
                            _ => {}
                        }
                    }
                    if dirs.forward()
                        && n.properties.is_none()
                        && !n.additional_properties.is_false()
                    {
                        self.compare(a, &n.additional_properties.loc(), Breaks::Forward)?;
                    }
                    let b2 = Breaks::from_flags(bw, false);
                    self.push(
                        ol,
                        nl,
                        &format!("properties/{}", crate::store::escape(k)),
                        "property-removed",
                        b2,
                        format!("property `{k}` removed{note}"),
                    );
                }
                (None, None) => {}
            }
        }

        // required
        for k in &n.required {
            if !o.required.contains(k) {
                let b = dirs.intersect(Breaks::Backward);
                self.push(
                    ol,
                    nl,
                    "required",
                    "required-added",
                    b,
                    format!("`{k}` became required: old producers may omit it"),
                );
            }
        }
        for k in &o.required {
            if !n.required.contains(k) {
                let b = dirs.intersect(Breaks::Forward);
                self.push(
                    ol,
                    nl,
                    "required",
                    "required-removed",
                    b,
                    format!("`{k}` is no longer required: old consumers expect it"),
                );
            }
        }

        // additionalProperties: governs keys declared on neither side.
        // A side that declares `properties` emits no other keys.
        let rel = Breaks::from_flags(
            dirs.backward() && o.properties.is_none(),
            dirs.forward() && n.properties.is_none(),
        );
        let (oa, na) = (&o.additional_properties, &n.additional_properties);
        let raw_differs = self.old.get(&oa.loc()) != self.new.get(&na.loc());
        let involves_schema = matches!(oa, Sub::Schema(_)) || matches!(na, Sub::Schema(_));
        if involves_schema {
            // Always recurse: equal text can still hold `$ref`s that resolve
            // to different files.
            if raw_differs {
                let msg = format!(
                    "additionalProperties {} -> {}",
                    oa.describe(),
                    na.describe()
                );
                self.push(
                    ol,
                    nl,
                    "additionalProperties",
                    "additional-properties-changed",
                    Breaks::None,
                    msg,
                );
            }
            self.compare(&oa.loc(), &na.loc(), rel)?;
        } else if raw_differs {
            if oa.is_open() && na.is_false() {
                let b = rel.intersect(Breaks::Backward);
                let msg = if o.properties.is_some() {
                    "object closed (additionalProperties: false); old producers emit only declared properties".to_string()
                } else {
                    "object closed (additionalProperties: false)".to_string()
                };
                self.push(
                    ol,
                    nl,
                    "additionalProperties",
                    "additional-properties-closed",
                    b,
                    msg,
                );
            } else if oa.is_false() && na.is_open() {
                let b = rel.intersect(Breaks::Forward);
                let msg = if n.properties.is_some() {
                    "object opened; new producers still emit only declared properties".to_string()
                } else {
                    "object opened: new producers may send properties old consumers reject"
                        .to_string()
                };
                self.push(
                    ol,
                    nl,
                    "additionalProperties",
                    "additional-properties-opened",
                    b,
                    msg,
                );
            }
        }
        Ok(())
    }
}

fn int_lower(b: Bound) -> Bound {
    let v = if b.excl {
        b.v.floor() + 1.0
    } else {
        b.v.ceil()
    };
    Bound { v, excl: false }
}

fn int_upper(b: Bound) -> Bound {
    let v = if b.excl {
        b.v.ceil() - 1.0
    } else {
        b.v.floor()
    };
    Bound { v, excl: false }
}

/// P's lower bound implies C's (over integers when P emits only integers).
fn lower_subset(p: &Norm, c: &Norm) -> bool {
    let ints = p.integers_only();
    let fix = |b: Option<Bound>| if ints { b.map(int_lower) } else { b };
    match (fix(p.lower), fix(c.lower)) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(pb), Some(cb)) => cb.v < pb.v || (cb.v == pb.v && (!cb.excl || pb.excl)),
    }
}

fn upper_subset(p: &Norm, c: &Norm) -> bool {
    let ints = p.integers_only();
    let fix = |b: Option<Bound>| if ints { b.map(int_upper) } else { b };
    match (fix(p.upper), fix(c.upper)) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(pb), Some(cb)) => cb.v > pb.v || (cb.v == pb.v && (!cb.excl || pb.excl)),
    }
}

#[cfg(test)]
mod soundness {
    //! Randomised soundness check: whenever the checker says a direction
    //! holds, no instance from a pool may be emitted by the producer side and
    //! rejected by the consumer side.

    use super::*;
    use crate::report::Mode;
    use serde_json::json;
    use std::path::Path;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
        fn pick(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn coin(&mut self) -> bool {
            self.pick(2) == 0
        }
    }

    fn pool() -> Vec<Value> {
        vec![
            json!(null),
            json!(true),
            json!(false),
            json!(0),
            json!(1),
            json!(2),
            json!(-1),
            json!(1.5),
            json!(10),
            json!(""),
            json!("a"),
            json!("ab"),
            json!("abc"),
            json!([]),
            json!([1]),
            json!(["a"]),
            json!([1, 1]),
            json!([1, "a"]),
            json!({}),
            json!({"a": 1}),
            json!({"a": "x"}),
            json!({"b": "x"}),
            json!({"a": "x", "b": 1}),
            json!({"c": "x"}),
            json!({"a": {"a": 1}}),
            json!({"a": null}),
        ]
    }

    fn gen_schema(r: &mut Rng, depth: u32) -> Value {
        let types = [
            "null", "boolean", "integer", "number", "string", "array", "object",
        ];
        let mut s = serde_json::Map::new();
        match r.pick(if depth == 0 { 4 } else { 7 }) {
            0 => {
                let p = pool();
                let n = 1 + r.pick(3);
                let vals: Vec<Value> = (0..n).map(|_| p[r.pick(p.len())].clone()).collect();
                s.insert("enum".into(), json!(vals));
            }
            1 => {
                s.insert("type".into(), json!(types[r.pick(5)]));
                if r.coin() {
                    s.insert("type".into(), json!([types[r.pick(5)], types[r.pick(5)]]));
                }
            }
            2 => {
                s.insert(
                    "type".into(),
                    json!(if r.coin() { "integer" } else { "number" }),
                );
                if r.coin() {
                    s.insert("minimum".into(), json!(r.pick(3) as i64 - 1));
                }
                if r.coin() {
                    s.insert(
                        "exclusiveMaximum".into(),
                        json!(r.pick(4) as f64 + 0.5 * r.pick(2) as f64),
                    );
                }
                if r.coin() {
                    s.insert("multipleOf".into(), json!([0.5, 1.0, 2.0][r.pick(3)]));
                }
            }
            3 => {
                s.insert("type".into(), json!("string"));
                if r.coin() {
                    s.insert("minLength".into(), json!(r.pick(3)));
                }
                if r.coin() {
                    s.insert("maxLength".into(), json!(r.pick(3)));
                }
            }
            4 | 5 => {
                if r.coin() {
                    s.insert("type".into(), json!("object"));
                }
                let mut props = serde_json::Map::new();
                for k in ["a", "b"] {
                    if r.coin() {
                        props.insert(k.into(), gen_schema(r, depth - 1));
                    }
                }
                if r.pick(4) != 0 {
                    s.insert("properties".into(), Value::Object(props));
                }
                let req: Vec<&str> = ["a", "b"].into_iter().filter(|_| r.pick(3) == 0).collect();
                if !req.is_empty() {
                    s.insert("required".into(), json!(req));
                }
                match r.pick(4) {
                    0 => {
                        s.insert("additionalProperties".into(), json!(false));
                    }
                    1 => {
                        s.insert("additionalProperties".into(), gen_schema(r, depth - 1));
                    }
                    _ => {}
                }
                if r.pick(5) == 0 {
                    s.insert("maxProperties".into(), json!(r.pick(3)));
                }
            }
            _ => {
                s.insert("type".into(), json!("array"));
                match r.pick(3) {
                    0 => {
                        s.insert("items".into(), gen_schema(r, depth - 1));
                    }
                    1 => {
                        s.insert("items".into(), json!([gen_schema(r, depth - 1)]));
                        if r.coin() {
                            s.insert("additionalItems".into(), json!(false));
                        }
                    }
                    _ => {}
                }
                if r.coin() {
                    s.insert("uniqueItems".into(), json!(true));
                }
                if r.coin() {
                    s.insert("maxItems".into(), json!(r.pick(3)));
                }
            }
        }
        Value::Object(s)
    }

    fn valid(store: &mut Store, v: &Value, closed: bool) -> bool {
        let root = store.root();
        match validate_loc(store, &root, v, closed) {
            Ok(Verdict::Yes) => true,
            Ok(Verdict::No(..)) => false,
            Ok(Verdict::Unknown(..)) | Err(_) => panic!("undecided"),
        }
    }

    #[test]
    fn random_pairs_are_sound() {
        let mut r = Rng(0x5eed);
        let pool = pool();
        let path = Path::new("/virtual/s.json");
        let (mut bw_ok, mut fw_ok, mut checked) = (0, 0, 0);
        for i in 0..6000 {
            let old = gen_schema(&mut r, 2);
            // Half of the pairs: `new` is `old` with one sub-schema replaced,
            // so that many pairs are (nearly) compatible.
            let new = if i % 2 == 0 {
                gen_schema(&mut r, 2)
            } else {
                mutate(&mut r, &old)
            };
            let report =
                crate::compare_values(old.clone(), path, new.clone(), path).expect("compare");
            let mut os = Store::new(old.clone(), path, "old");
            let mut ns = Store::new(new.clone(), path, "new");
            bw_ok += usize::from(report.compatible(Mode::Backward));
            fw_ok += usize::from(report.compatible(Mode::Forward));
            for v in &pool {
                checked += 1;
                if report.compatible(Mode::Backward) && valid(&mut os, v, true) {
                    assert!(
                        valid(&mut ns, v, false),
                        "backward unsound: {v}\nold {old}\nnew {new}\n{}",
                        report.to_text(Mode::Full)
                    );
                }
                if report.compatible(Mode::Forward) && valid(&mut ns, v, true) {
                    assert!(
                        valid(&mut os, v, false),
                        "forward unsound: {v}\nold {old}\nnew {new}\n{}",
                        report.to_text(Mode::Full)
                    );
                }
            }
        }
        eprintln!("soundness: backward ok {bw_ok}, forward ok {fw_ok}, instance checks {checked}");
        // The generator must produce enough compatible pairs to mean something.
        assert!(
            bw_ok > 600 && fw_ok > 600,
            "backward ok {bw_ok}, forward ok {fw_ok}, checked {checked}"
        );
    }

    /// `v` with one random object member replaced by a fresh schema, or a
    /// keyword dropped.
    fn mutate(r: &mut Rng, v: &Value) -> Value {
        let mut out = v.clone();
        if let Value::Object(m) = &mut out {
            let keys: Vec<String> = m.keys().cloned().collect();
            if keys.is_empty() {
                return out;
            }
            let k = keys[r.pick(keys.len())].clone();
            match r.pick(4) {
                0 => {
                    m.remove(&k);
                }
                1 if (k == "items" || k == "additionalProperties") && m[&k].is_object() => {
                    let sub = m[&k].clone();
                    m.insert(k, mutate(r, &sub));
                }
                2 => {
                    if let Some(Value::Object(props)) = m.get_mut("properties") {
                        let name = if r.coin() { "a" } else { "b" };
                        let sub = match props.get(name) {
                            Some(old) if r.coin() => mutate(r, old),
                            _ => gen_schema(r, 1),
                        };
                        props.insert(name.into(), sub);
                    }
                }
                _ => {
                    let numeric = [
                        "minimum",
                        "exclusiveMaximum",
                        "minLength",
                        "maxLength",
                        "maxItems",
                        "maxProperties",
                    ];
                    if numeric.contains(&k.as_str()) {
                        m.insert(k, json!(r.pick(3)));
                    } else if k == "required" {
                        m.insert(k, json!(if r.coin() { vec!["a"] } else { vec!["a", "b"] }));
                    } else if k == "enum" {
                        let p = pool();
                        if let Some(Value::Array(vals)) = m.get_mut("enum") {
                            vals.push(p[r.pick(p.len())].clone());
                        }
                    }
                }
            }
        }
        out
    }
}
