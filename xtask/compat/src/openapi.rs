//! OpenAPI 3.0.x compatibility, on top of the JSON Schema reasoning.
//!
//! Directions are API-level (see [`crate::Mode`]): *backward* = the new server
//! still serves old clients, *forward* = an old server still serves new
//! clients. A change's `breaks` is expressed in those terms, so the default
//! mode for OpenAPI is `backward`, and then:
//! * parameters and request bodies are checked with the schema *backward*
//!   rule (the new server accepts what old clients send);
//! * response bodies and headers with the schema *forward* rule (old clients
//!   accept what the new server returns); their schema-level directions are
//!   swapped when reported.
//!
//! Decisions (documented because reasonable people differ):
//! * Removing an operation breaks backward; adding one breaks only forward.
//! * Removing a parameter breaks backward: old clients still send it and the
//!   new server may reject it (or silently ignore what the client meant).
//!   Adding an optional parameter breaks only forward; a required one both.
//! * A new response status code breaks backward (old clients do not know it)
//!   unless the old operation already had a response covering it: the same
//!   range (`4XX`), `default`, or, for an error status (4xx/5xx), any old error
//!   response; the new response is then checked against that one, so an error
//!   status reusing the shared error body is compatible. Removing a status
//!   code is the mirror image (breaks forward only).
//! * Media types are compared per exact media-type string. A response media
//!   type added is not breaking backward (content negotiation: old clients do
//!   not ask for it); removed breaks backward. For requests: added breaks
//!   forward, removed breaks backward.
//! * Any change to the effective `security` requirements is reported as
//!   breaking both ways (credentials are not modelled).
//! * Paths are matched by template with parameter names erased, so renaming
//!   `{id}` to `{jobId}` is not a path change; path parameters are matched by
//!   position.
//! * `info.version` changes are not reported; other `info`, `summary`,
//!   `description`, `operationId`, `tags` changes are `annotation-changed`.
//! * Schemas: `$ref` to `#/components/schemas/X` or to relative files
//!   (resolved relative to the OpenAPI file); `nullable: true` adds `null` to
//!   the declared `type`.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::report::{Breaks, Change, DocKind, Report, dedupe};
use crate::schema::Comparer;
use crate::store::{Dialect, Loc, Store};
use crate::{CompatError, schema};

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

pub(crate) fn compare(
    old: Value,
    old_path: &Path,
    new: Value,
    new_path: &Path,
) -> Result<Report, CompatError> {
    for (v, p, name) in [(&old, old_path, "old"), (&new, new_path, "new")] {
        let ver = v.get("openapi").and_then(Value::as_str).unwrap_or("");
        if !ver.starts_with("3.0") {
            return Err(CompatError::Invalid {
                pointer: format!("{}#/openapi", p.display()),
                message: format!("only OpenAPI 3.0.x is supported, found `{ver}`"),
            });
        }
        check_components(v, name)?;
    }
    let mut os = Store::new(old, old_path, "old");
    let mut ns = Store::new(new, new_path, "new");
    let mut cmp = Comparer::new(&mut os, &mut ns);
    let mut api = Api { cmp: &mut cmp };
    api.compare_docs()?;
    let changes = std::mem::take(&mut cmp.changes);
    Ok(Report {
        doc_kind: DocKind::OpenApi,
        changes: dedupe(changes),
    })
}

/// Unknown keywords in unreferenced component schemas are errors too.
fn check_components(v: &Value, name: &str) -> Result<(), CompatError> {
    if let Some(Value::Object(m)) = v.pointer("/components/schemas") {
        for (k, s) in m {
            let ptr = format!("/components/schemas/{}", crate::store::escape(k));
            schema::check_node(s, Dialect::Oas30, name, &ptr)?;
        }
    }
    Ok(())
}

struct Op {
    key: (String, String),
    template: String,
    loc: Loc,
    item: Loc,
}

struct Param {
    name: String,
    loc: Loc,
    value: Value,
}

/// `/jobs/{id}` -> `/jobs/{}`
fn path_key(template: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for ch in template.chars() {
        match ch {
            '{' => {
                depth += 1;
                out.push('{');
            }
            '}' => {
                depth -= 1;
                out.push('}');
            }
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

fn template_params(template: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        let after = &rest[i + 1..];
        match after.find('}') {
            Some(j) => {
                out.push(after[..j].to_string());
                rest = &after[j + 1..];
            }
            None => break,
        }
    }
    out
}

fn is_error_status(code: &str) -> bool {
    code.starts_with('4') || code.starts_with('5')
}

struct Api<'c, 'a> {
    cmp: &'c mut Comparer<'a>,
}

impl Api<'_, '_> {
    fn store(&mut self, old: bool) -> &mut Store {
        if old { self.cmp.old } else { self.cmp.new }
    }

    fn push(&mut self, o: &Loc, n: &Loc, kind: &'static str, breaks: Breaks, message: String) {
        let (pointer_old, pointer_new) = (self.cmp.old.display(o), self.cmp.new.display(n));
        self.cmp.changes.push(Change {
            pointer_old,
            pointer_new,
            kind,
            breaks,
            message,
        });
    }

    /// Follows `$ref`s of non-schema objects (parameters, bodies, responses...).
    fn deref(&mut self, old: bool, loc: &Loc) -> Result<(Loc, Value), CompatError> {
        let mut loc = loc.clone();
        for _ in 0..32 {
            let store = self.store(old);
            let v = store.get(&loc).ok_or_else(|| CompatError::Invalid {
                pointer: store.error_pointer(&loc),
                message: "pointer does not exist".into(),
            })?;
            match v.get("$ref").and_then(Value::as_str) {
                Some(r) => {
                    let r = r.to_string();
                    loc = store.resolve(&loc, &r)?;
                }
                None => return Ok((loc, v)),
            }
        }
        let store = self.store(old);
        Err(CompatError::Invalid {
            pointer: store.error_pointer(&loc),
            message: "too many (or cyclic) `$ref`s".into(),
        })
    }

    fn ops(&mut self, old: bool) -> Result<Vec<Op>, CompatError> {
        let root = self.store(old).root();
        let paths = self.store(old).get(&root.child("paths"));
        let mut out = Vec::new();
        if let Some(Value::Object(paths)) = paths {
            for template in paths.keys() {
                let (item_loc, item) = self.deref(old, &root.child("paths").child(template))?;
                for m in METHODS {
                    if item.get(*m).is_some() {
                        out.push(Op {
                            key: (path_key(template), m.to_string()),
                            template: template.clone(),
                            loc: item_loc.child(m),
                            item: item_loc.clone(),
                        });
                    }
                }
            }
        }
        Ok(out)
    }

    fn compare_docs(&mut self) -> Result<(), CompatError> {
        let (or, nr) = (self.cmp.old.root(), self.cmp.new.root());
        // info (except version)
        let oi = self.cmp.old.get(&or.child("info")).unwrap_or(Value::Null);
        let ni = self.cmp.new.get(&nr.child("info")).unwrap_or(Value::Null);
        for k in [
            "title",
            "description",
            "termsOfService",
            "contact",
            "license",
        ] {
            if oi.get(k) != ni.get(k) {
                let (o, n) = (or.child("info").child(k), nr.child("info").child(k));
                self.push(
                    &o,
                    &n,
                    "annotation-changed",
                    Breaks::None,
                    format!("info.{k} changed"),
                );
            }
        }
        let old_ops = self.ops(true)?;
        let new_ops = self.ops(false)?;
        for o in &old_ops {
            match new_ops.iter().find(|n| n.key == o.key) {
                Some(n) => self.compare_op(o, n)?,
                None => {
                    let msg = format!(
                        "operation {} {} removed: old clients call it",
                        o.key.1.to_uppercase(),
                        o.template
                    );
                    self.push(
                        &o.loc,
                        &nr.child("paths"),
                        "operation-removed",
                        Breaks::Backward,
                        msg,
                    );
                }
            }
        }
        for n in &new_ops {
            if !old_ops.iter().any(|o| o.key == n.key) {
                let msg = format!("operation {} {} added", n.key.1.to_uppercase(), n.template);
                self.push(
                    &or.child("paths"),
                    &n.loc,
                    "operation-added",
                    Breaks::Forward,
                    msg,
                );
            }
        }
        Ok(())
    }

    fn params(&mut self, old: bool, op: &Op) -> Result<BTreeMap<String, Param>, CompatError> {
        let positions = template_params(&op.template);
        let mut out = BTreeMap::new();
        for list in [op.item.child("parameters"), op.loc.child("parameters")] {
            let n = match self.store(old).get(&list) {
                Some(Value::Array(a)) => a.len(),
                _ => 0,
            };
            for i in 0..n {
                let (loc, value) = self.deref(old, &list.child_idx(i))?;
                let name = value
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let inn = value
                    .get("in")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let key = match inn.as_str() {
                    "path" => match positions.iter().position(|p| *p == name) {
                        Some(i) => format!("path #{i}"),
                        None => format!("path {name}"),
                    },
                    "header" => format!("header {}", name.to_ascii_lowercase()),
                    other => format!("{other} {name}"),
                };
                out.insert(key, Param { name, loc, value });
            }
        }
        Ok(out)
    }

    fn compare_op(&mut self, o: &Op, n: &Op) -> Result<(), CompatError> {
        let ov = self.cmp.old.get(&o.loc).unwrap_or(Value::Null);
        let nv = self.cmp.new.get(&n.loc).unwrap_or(Value::Null);
        for k in [
            "summary",
            "description",
            "operationId",
            "tags",
            "deprecated",
            "externalDocs",
        ] {
            if ov.get(k) != nv.get(k) {
                self.push(
                    &o.loc.child(k),
                    &n.loc.child(k),
                    "annotation-changed",
                    Breaks::None,
                    format!("`{k}` changed"),
                );
            }
        }
        // security: operation-level overrides the document's.
        let (or, nr) = (self.cmp.old.root(), self.cmp.new.root());
        let osec = ov
            .get("security")
            .cloned()
            .or_else(|| self.cmp.old.get(&or.child("security")));
        let nsec = nv
            .get("security")
            .cloned()
            .or_else(|| self.cmp.new.get(&nr.child("security")));
        if osec != nsec {
            let msg = "effective security requirements changed (credentials are not modelled; treated as breaking)".to_string();
            self.push(
                &o.loc.child("security"),
                &n.loc.child("security"),
                "security-changed",
                Breaks::Both,
                msg,
            );
        }

        // parameters
        let op_name = format!("{} {}", o.key.1.to_uppercase(), n.template);
        let oparams = self.params(true, o)?;
        let nparams = self.params(false, n)?;
        for (key, op) in &oparams {
            let required = |v: &Value| {
                v.get("required") == Some(&Value::Bool(true))
                    || v.get("in").and_then(Value::as_str) == Some("path")
            };
            match nparams.get(key) {
                None => {
                    // Required in the old version: an old server also
                    // rejects new clients that no longer send it.
                    let b = if required(&op.value) {
                        Breaks::Both
                    } else {
                        Breaks::Backward
                    };
                    let msg = format!(
                        "{op_name}: parameter `{}` ({key}) removed: old clients still send it",
                        op.name
                    );
                    self.push(&op.loc, &n.loc, "parameter-removed", b, msg);
                }
                Some(np) => {
                    let (ro, rn) = (required(&op.value), required(&np.value));
                    if !ro && rn {
                        let msg = format!(
                            "{op_name}: parameter `{}` became required: old clients may omit it",
                            np.name
                        );
                        self.push(
                            &op.loc,
                            &np.loc,
                            "parameter-required-added",
                            Breaks::Backward,
                            msg,
                        );
                    }
                    if ro && !rn {
                        let msg = format!(
                            "{op_name}: parameter `{}` became optional: an old server requires it",
                            np.name
                        );
                        self.push(
                            &op.loc,
                            &np.loc,
                            "parameter-required-removed",
                            Breaks::Forward,
                            msg,
                        );
                    }
                    for k in ["style", "explode", "allowEmptyValue", "allowReserved"] {
                        if op.value.get(k) != np.value.get(k) {
                            let msg = format!(
                                "{op_name}: parameter `{}` serialization `{k}` changed",
                                np.name
                            );
                            self.push(
                                &op.loc.child(k),
                                &np.loc.child(k),
                                "parameter-style-changed",
                                Breaks::Both,
                                msg,
                            );
                        }
                    }
                    if op.value.get("schema").is_some() || np.value.get("schema").is_some() {
                        let os = schema_loc(&op.loc, op.value.get("schema").is_some());
                        let ns = schema_loc(&np.loc, np.value.get("schema").is_some());
                        self.compare_schema(&os, &ns, Breaks::Both, false)?;
                    }
                    if op.value.get("content").is_some() || np.value.get("content").is_some() {
                        self.compare_content(&op.loc, &np.loc, Breaks::Both, false)?;
                    }
                    for k in ["description", "deprecated", "example", "examples"] {
                        if op.value.get(k) != np.value.get(k) {
                            self.push(
                                &op.loc.child(k),
                                &np.loc.child(k),
                                "annotation-changed",
                                Breaks::None,
                                format!("parameter `{k}` changed"),
                            );
                        }
                    }
                }
            }
        }
        for (key, np) in &nparams {
            if !oparams.contains_key(key) {
                let req = np.value.get("required") == Some(&Value::Bool(true))
                    || np.value.get("in").and_then(Value::as_str) == Some("path");
                let (b, what) = if req {
                    (Breaks::Both, "required: old clients do not send it")
                } else {
                    (Breaks::Forward, "optional: an old server does not know it")
                };
                let msg = format!("{op_name}: parameter `{}` ({key}) added, {what}", np.name);
                self.push(&o.loc, &np.loc, "parameter-added", b, msg);
            }
        }

        // request body
        let ob = match ov.get("requestBody") {
            Some(_) => Some(self.deref(true, &o.loc.child("requestBody"))?),
            None => None,
        };
        let nb = match nv.get("requestBody") {
            Some(_) => Some(self.deref(false, &n.loc.child("requestBody"))?),
            None => None,
        };
        let req = |v: &Value| v.get("required") == Some(&Value::Bool(true));
        match (ob, nb) {
            (None, None) => {}
            (None, Some((nl, nv))) => {
                let (b, what) = if req(&nv) {
                    (Breaks::Both, "required: old clients do not send it")
                } else {
                    (
                        Breaks::Forward,
                        "optional: an old server does not expect it",
                    )
                };
                self.push(
                    &o.loc,
                    &nl,
                    "request-body-added",
                    b,
                    format!("{op_name}: request body added, {what}"),
                );
            }
            (Some((ol, ov)), None) => {
                let b = if req(&ov) {
                    Breaks::Both
                } else {
                    Breaks::Backward
                };
                self.push(
                    &ol,
                    &n.loc,
                    "request-body-removed",
                    b,
                    format!("{op_name}: request body removed: old clients still send it"),
                );
            }
            (Some((ol, ov)), Some((nl, nv))) => {
                if !req(&ov) && req(&nv) {
                    self.push(
                        &ol,
                        &nl,
                        "request-body-required-added",
                        Breaks::Backward,
                        format!("{op_name}: request body became required"),
                    );
                }
                if req(&ov) && !req(&nv) {
                    self.push(
                        &ol,
                        &nl,
                        "request-body-required-removed",
                        Breaks::Forward,
                        format!("{op_name}: request body became optional"),
                    );
                }
                self.compare_content(&ol, &nl, Breaks::Both, false)?;
            }
        }

        // responses
        let codes = |v: &Value| -> Vec<String> {
            match v.get("responses") {
                Some(Value::Object(m)) => m.keys().cloned().collect(),
                _ => Vec::new(),
            }
        };
        let (ocodes, ncodes) = (codes(&ov), codes(&nv));
        for c in &ocodes {
            let oloc = o.loc.child("responses").child(c);
            if ncodes.contains(c) {
                self.compare_response(&oloc, &n.loc.child("responses").child(c), Breaks::Both)?;
            } else {
                match handler(c, &ncodes) {
                    Some(h) => {
                        let msg = format!(
                            "{op_name}: response {c} removed; new clients handle it as {h}"
                        );
                        self.push(
                            &oloc,
                            &n.loc.child("responses"),
                            "response-removed",
                            Breaks::None,
                            msg,
                        );
                        self.compare_response(
                            &oloc,
                            &n.loc.child("responses").child(&h),
                            Breaks::Forward,
                        )?;
                    }
                    None => {
                        let msg = format!(
                            "{op_name}: response {c} removed; an old server may still return it to new clients"
                        );
                        self.push(
                            &oloc,
                            &n.loc.child("responses"),
                            "response-removed",
                            Breaks::Forward,
                            msg,
                        );
                    }
                }
            }
        }
        for c in &ncodes {
            if ocodes.contains(c) {
                continue;
            }
            let nloc = n.loc.child("responses").child(c);
            match handler(c, &ocodes) {
                Some(h) => {
                    let msg = format!(
                        "{op_name}: response {c} added; old clients handle it as {h}, checked against it"
                    );
                    self.push(
                        &o.loc.child("responses"),
                        &nloc,
                        "response-added",
                        Breaks::None,
                        msg,
                    );
                    self.compare_response(
                        &o.loc.child("responses").child(&h),
                        &nloc,
                        Breaks::Backward,
                    )?;
                }
                None => {
                    let msg = format!("{op_name}: response {c} added; old clients do not know it");
                    self.push(
                        &o.loc.child("responses"),
                        &nloc,
                        "response-added",
                        Breaks::Backward,
                        msg,
                    );
                }
            }
        }
        Ok(())
    }

    /// Schema comparison in API directions `api_dirs`; response schemas are
    /// checked with swapped schema directions and reported in API terms.
    fn compare_schema(
        &mut self,
        o: &Loc,
        n: &Loc,
        api_dirs: Breaks,
        response: bool,
    ) -> Result<(), CompatError> {
        self.cmp.reset();
        let start = self.cmp.changes.len();
        let dirs = if response {
            api_dirs.swapped()
        } else {
            api_dirs
        };
        self.cmp.compare(o, n, dirs)?;
        if response {
            for c in &mut self.cmp.changes[start..] {
                c.breaks = c.breaks.swapped();
                c.message.push_str(" [response body: checked forward]");
            }
        }
        Ok(())
    }

    /// Compares `content` maps (media type -> schema) of two owners.
    fn compare_content(
        &mut self,
        o: &Loc,
        n: &Loc,
        api_dirs: Breaks,
        response: bool,
    ) -> Result<(), CompatError> {
        let keys = |v: Option<Value>| -> Vec<String> {
            match v {
                Some(Value::Object(m)) => m.keys().cloned().collect(),
                _ => Vec::new(),
            }
        };
        let ok = keys(self.cmp.old.get(&o.child("content")));
        let nk = keys(self.cmp.new.get(&n.child("content")));
        let what = if response { "response" } else { "request" };
        for m in &ok {
            let om = o.child("content").child(m);
            if nk.contains(m) {
                let nm = n.child("content").child(m);
                let op = self.cmp.old.get(&om.child("schema")).is_some();
                let np = self.cmp.new.get(&nm.child("schema")).is_some();
                let os = schema_loc(&om, op);
                let ns = schema_loc(&nm, np);
                self.compare_schema(&os, &ns, api_dirs, response)?;
            } else {
                let b = api_dirs.intersect(Breaks::Backward);
                let msg = format!("{what} media type `{m}` removed: old clients use it");
                self.push(&om, &n.child("content"), "media-type-removed", b, msg);
            }
        }
        for m in &nk {
            if !ok.contains(m) {
                let b = api_dirs.intersect(Breaks::Forward);
                let msg = if response {
                    format!("response media type `{m}` added (old clients do not ask for it)")
                } else {
                    format!("request media type `{m}` added (an old server does not accept it)")
                };
                self.push(
                    &o.child("content"),
                    &n.child("content").child(m),
                    "media-type-added",
                    b,
                    msg,
                );
            }
        }
        Ok(())
    }

    fn compare_response(&mut self, o: &Loc, n: &Loc, api_dirs: Breaks) -> Result<(), CompatError> {
        let (ol, ov) = self.deref(true, o)?;
        let (nl, nv) = self.deref(false, n)?;
        if ov.get("description") != nv.get("description") && api_dirs == Breaks::Both {
            self.push(
                &ol.child("description"),
                &nl.child("description"),
                "annotation-changed",
                Breaks::None,
                "response description changed".into(),
            );
        }
        let has_content = |v: &Value| {
            v.get("content")
                .and_then(Value::as_object)
                .is_some_and(|m| !m.is_empty())
        };
        match (has_content(&ov), has_content(&nv)) {
            (true, true) => self.compare_content(&ol, &nl, api_dirs, true)?,
            (false, true) => {
                let b = api_dirs.intersect(Breaks::Forward);
                self.push(
                    &ol,
                    &nl,
                    "response-body-added",
                    b,
                    "response body added (an old server sends none)".into(),
                );
            }
            (true, false) => {
                let b = api_dirs.intersect(Breaks::Backward);
                self.push(
                    &ol,
                    &nl,
                    "response-body-removed",
                    b,
                    "response body removed: old clients expect it".into(),
                );
            }
            (false, false) => {}
        }
        // headers
        let keys = |v: &Value| -> Vec<String> {
            match v.get("headers") {
                Some(Value::Object(m)) => m.keys().cloned().collect(),
                _ => Vec::new(),
            }
        };
        let (oh, nh) = (keys(&ov), keys(&nv));
        for h in &oh {
            let oloc = ol.child("headers").child(h);
            match nh.iter().find(|x| x.eq_ignore_ascii_case(h)) {
                Some(nname) => {
                    let (ohl, ohv) = self.deref(true, &oloc)?;
                    let (nhl, nhv) = self.deref(false, &nl.child("headers").child(nname))?;
                    let os = schema_loc(&ohl, ohv.get("schema").is_some());
                    let ns = schema_loc(&nhl, nhv.get("schema").is_some());
                    self.compare_schema(&os, &ns, api_dirs, true)?;
                }
                None => {
                    let b = api_dirs.intersect(Breaks::Backward);
                    self.push(
                        &oloc,
                        &nl.child("headers"),
                        "response-header-removed",
                        b,
                        format!("response header `{h}` removed: old clients may read it"),
                    );
                }
            }
        }
        for h in &nh {
            if !oh.iter().any(|x| x.eq_ignore_ascii_case(h)) {
                let b = api_dirs.intersect(Breaks::Forward);
                self.push(
                    &ol.child("headers"),
                    &nl.child("headers").child(h),
                    "response-header-added",
                    b,
                    format!("response header `{h}` added"),
                );
            }
        }
        Ok(())
    }
}

/// The schema of a parameter, header or media type, or implicit `true`.
fn schema_loc(owner: &Loc, present: bool) -> Loc {
    if present {
        owner.child("schema")
    } else {
        Store::true_loc()
    }
}

/// The response of `codes` that would handle status `code` for a client that
/// does not know `code`: same range (`4XX`), `default`, or any error response
/// for an error status.
fn handler(code: &str, codes: &[String]) -> Option<String> {
    let range = code.chars().next().map(|c| format!("{c}XX"));
    if let Some(r) = range
        && let Some(c) = codes.iter().find(|c| c.eq_ignore_ascii_case(&r))
    {
        return Some(c.clone());
    }
    if let Some(c) = codes.iter().find(|c| *c == "default") {
        return Some(c.clone());
    }
    if is_error_status(code) {
        return codes.iter().find(|c| is_error_status(c)).cloned();
    }
    None
}
