//! Loads the contracts (`schemas/**.json`, `openapi/*.yaml`), enforces the conventions that
//! make generated code predictable, and bundles documents so that each one stands alone.
//!
//! Conventions (checked here, so a violation is a clear error instead of odd generated code):
//! - every schema has `$id`, a SemVer `$version`, and a `title` that is its Rust type name;
//! - every entry of `definitions` has a `title` equal to its key;
//! - type names (root titles and definition keys) are unique across all schemas, so that a
//!   bundle can merge definitions from many files without renaming anything;
//! - file stems are unique, because a file stem (snake_case) is the Rust module name;
//! - references are local (`#/definitions/X`) or relative file references (`job.json`,
//!   `../domain/job.json#/definitions/JobStatus`).

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

/// Folder names that hold records rather than live contracts.
const RELEASED_DIR: &str = "released";
const EXAMPLES_SUFFIX: &str = ".examples.json";

/// One JSON Schema file.
#[derive(Debug, Clone)]
pub struct SchemaDoc {
    /// Path relative to the repository root, with `/` separators.
    pub path: String,
    /// Rust module name: the file stem in snake_case.
    pub module: String,
    pub id: String,
    pub version: semver::Version,
    /// Root type name.
    pub title: String,
    pub doc: Value,
}

impl SchemaDoc {
    /// Module path of the major version, e.g. `v1`.
    pub fn major_module(&self) -> String {
        format!("v{}", self.version.major)
    }

    /// Names of the root type and every definition.
    pub fn type_names(&self) -> Vec<String> {
        let mut names = vec![self.title.clone()];
        if let Some(defs) = self.doc.get("definitions").and_then(Value::as_object) {
            names.extend(defs.keys().cloned());
        }
        names
    }
}

/// One OpenAPI document.
#[derive(Debug, Clone)]
pub struct ApiDoc {
    pub path: String,
    /// File stem, e.g. `read-model`.
    pub name: String,
    pub version: semver::Version,
    pub doc: Value,
}

/// Where a reference points: a type (root or definition) of one schema file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefTarget {
    /// Index into [`Contracts::schemas`].
    pub schema: usize,
    pub type_name: String,
}

#[derive(Debug)]
pub struct Contracts {
    pub schemas: Vec<SchemaDoc>,
    pub apis: Vec<ApiDoc>,
    by_path: BTreeMap<String, usize>,
    /// Type name → the schema that defines it.
    owners: BTreeMap<String, usize>,
}

/// A bundle: a document plus the definitions it borrowed from other files.
pub struct Bundle {
    pub doc: Value,
    /// Definition name → index of the schema that owns it, for every borrowed definition.
    pub borrowed: BTreeMap<String, usize>,
}

impl Contracts {
    /// Reads and checks every contract under `root`.
    pub fn load(root: &Path) -> Result<Self> {
        let mut schemas = Vec::new();
        for path in files_under(&root.join("schemas"), &|p| {
            p.extension().is_some_and(|e| e == "json")
                && !p.to_string_lossy().ends_with(EXAMPLES_SUFFIX)
        })? {
            schemas.push(load_schema(root, &path)?);
        }
        ensure!(
            !schemas.is_empty(),
            "no schemas found under {}/schemas",
            root.display()
        );

        let mut apis = Vec::new();
        for path in files_under(&root.join("openapi"), &|p| {
            p.extension().is_some_and(|e| e == "yaml" || e == "yml")
        })? {
            apis.push(load_api(root, &path)?);
        }

        let mut by_path = BTreeMap::new();
        let mut owners = BTreeMap::new();
        let mut modules = BTreeMap::new();
        let mut ids = BTreeMap::new();
        for (i, s) in schemas.iter().enumerate() {
            by_path.insert(s.path.clone(), i);
            if let Some(other) = modules.insert(s.module.clone(), &s.path) {
                bail!(
                    "{} and {} would both become module `{}`: file names must be unique across schemas/",
                    other,
                    s.path,
                    s.module
                );
            }
            if let Some(other) = ids.insert(s.id.clone(), &s.path) {
                bail!("{} and {} have the same $id {}", other, s.path, s.id);
            }
            for name in s.type_names() {
                if let Some(other) = owners.insert(name.clone(), i) {
                    bail!(
                        "type name `{name}` is defined in both {} and {}: type names must be unique across schemas/",
                        schemas[other].path,
                        s.path
                    );
                }
            }
        }
        let contracts = Self {
            schemas,
            apis,
            by_path,
            owners,
        };
        // Resolve every reference once so that a dangling one fails here, naming the file.
        for i in 0..contracts.schemas.len() {
            contracts.bundle_schema(i)?;
        }
        Ok(contracts)
    }

    pub fn schema_by_path(&self, path: &str) -> Option<&SchemaDoc> {
        self.by_path.get(path).map(|&i| &self.schemas[i])
    }

    /// The schema that defines a type name.
    pub fn owner_of(&self, type_name: &str) -> Option<&SchemaDoc> {
        self.owners.get(type_name).map(|&i| &self.schemas[i])
    }

    /// Resolves `reference`, written in the file at `from` (repo-relative), to a type.
    pub fn resolve(&self, from: &str, reference: &str) -> Result<RefTarget> {
        let (file, fragment) = reference.split_once('#').unwrap_or((reference, ""));
        let schema = if file.is_empty() {
            *self.by_path.get(from).ok_or_else(|| {
                anyhow!("{from}: local reference {reference} outside a schema file")
            })?
        } else {
            let target = join_relative(from, file)?;
            *self.by_path.get(&target).ok_or_else(|| {
                anyhow!("{from}: reference {reference} points at {target}, which is not a schema")
            })?
        };
        let doc = &self.schemas[schema];
        let type_name = match fragment {
            "" | "/" if !file.is_empty() => doc.title.clone(),
            _ => {
                let name = fragment.strip_prefix("/definitions/").ok_or_else(|| {
                    anyhow!(
                        "{from}: reference {reference}: only #/definitions/NAME or a whole file can be referenced"
                    )
                })?;
                ensure!(
                    doc.doc.pointer(&format!("/definitions/{name}")).is_some(),
                    "{from}: reference {reference}: {} has no definition `{name}`",
                    doc.path
                );
                name.to_string()
            }
        };
        Ok(RefTarget { schema, type_name })
    }

    /// Bundles a schema with every type it references (transitively) as `definitions`, with
    /// all references rewritten to `#/definitions/NAME`: a self-contained document.
    pub fn bundle_schema(&self, index: usize) -> Result<Bundle> {
        let root = &self.schemas[index];
        let (mut doc, mut pending) = self.rewrite(&root.doc, &root.path, "#/definitions/")?;
        let obj = doc.as_object_mut().context("schema is not an object")?;
        let mut definitions = match obj.shift_remove("definitions") {
            Some(Value::Object(defs)) => defs,
            _ => Map::new(),
        };
        let mut borrowed = BTreeMap::new();
        let mut visited = BTreeSet::from([index]);
        while let Some(other) = pending.pop_first() {
            if !visited.insert(other) {
                continue;
            }
            let other_doc = &self.schemas[other];
            let (mut body, more) =
                self.rewrite(&other_doc.doc, &other_doc.path, "#/definitions/")?;
            pending.extend(more);
            let Value::Object(body_obj) = &mut body else {
                bail!("{} is not an object", other_doc.path)
            };
            if let Some(Value::Object(defs)) = body_obj.shift_remove("definitions") {
                for (name, def) in defs {
                    borrowed.insert(name.clone(), other);
                    definitions.insert(name, def);
                }
            }
            strip_document_keywords(body_obj);
            borrowed.insert(other_doc.title.clone(), other);
            definitions.insert(other_doc.title.clone(), body);
        }
        if !definitions.is_empty() {
            obj.insert("definitions".into(), Value::Object(definitions));
        }
        Ok(Bundle { doc, borrowed })
    }

    /// Bundles an OpenAPI document: every referenced schema (transitively) becomes a
    /// `components.schemas` entry named by its type name, converted to OpenAPI 3.0's dialect.
    pub fn bundle_api(&self, api: &ApiDoc) -> Result<Bundle> {
        let prefix = "#/components/schemas/";
        let (mut doc, mut pending) = self.rewrite(&api.doc, &api.path, prefix)?;
        let mut schemas = Map::new();
        let mut borrowed = BTreeMap::new();
        let mut visited = BTreeSet::new();
        while let Some(index) = pending.pop_first() {
            if !visited.insert(index) {
                continue;
            }
            let s = &self.schemas[index];
            let (mut body, more) = self.rewrite(&s.doc, &s.path, prefix)?;
            pending.extend(more);
            let Value::Object(body_obj) = &mut body else {
                bail!("{} is not an object", s.path)
            };
            let defs = body_obj.shift_remove("definitions");
            body_obj.insert("x-schema-id".into(), Value::String(s.id.clone()));
            body_obj.insert(
                "x-schema-version".into(),
                Value::String(s.version.to_string()),
            );
            strip_document_keywords(body_obj);
            borrowed.insert(s.title.clone(), index);
            schemas.insert(s.title.clone(), body);
            if let Some(Value::Object(defs)) = defs {
                for (name, def) in defs {
                    borrowed.insert(name.clone(), index);
                    schemas.insert(name, def);
                }
            }
        }
        for (name, schema) in schemas.iter_mut() {
            to_openapi_dialect(schema).with_context(|| format!("schema {name}"))?;
        }
        // Stable order: by name.
        let mut sorted: Vec<_> = schemas.into_iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let components = doc
            .as_object_mut()
            .context("OpenAPI document is not an object")?
            .entry("components")
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .context("components is not an object")?;
        let target = components
            .entry("schemas")
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .context("components.schemas is not an object")?;
        for (name, schema) in sorted {
            ensure!(
                target.insert(name.clone(), schema).is_none(),
                "{}: components.schemas.{name} clashes with a schema of the same name",
                api.path
            );
        }
        // Inline schemas of parameters and bodies may hold 3.1-isms too.
        if let Some(paths) = doc.get_mut("paths") {
            convert_inline_schemas(paths)?;
        }
        Ok(Bundle { doc, borrowed })
    }

    /// Copies `value` with every schema reference rewritten to `prefix + TypeName`; returns
    /// the copy and the set of other schema files it references.
    fn rewrite(&self, value: &Value, from: &str, prefix: &str) -> Result<(Value, BTreeSet<usize>)> {
        let mut referenced = BTreeSet::new();
        let is_schema = self.by_path.contains_key(from);
        let out = self.rewrite_inner(value, from, prefix, &mut referenced, is_schema)?;
        if let Some(&own) = self.by_path.get(from) {
            referenced.remove(&own);
        }
        Ok((out, referenced))
    }

    /// `schema` says whether `value` sits where a schema is expected; elsewhere (the body of
    /// an OpenAPI document) only `schema`/`schemas` entries lead into schemas.
    fn rewrite_inner(
        &self,
        value: &Value,
        from: &str,
        prefix: &str,
        referenced: &mut BTreeSet<usize>,
        schema: bool,
    ) -> Result<Value> {
        let recurse = |v: &Value, as_schema: bool, referenced: &mut BTreeSet<usize>| {
            self.rewrite_inner(v, from, prefix, referenced, as_schema)
        };
        Ok(match value {
            Value::Object(map) => {
                let mut out = Map::new();
                for (key, v) in map {
                    let v = match (key.as_str(), v) {
                        ("$ref", Value::String(r)) if !r.starts_with("#/components/") => {
                            let target = self.resolve(from, r)?;
                            referenced.insert(target.schema);
                            Value::String(format!("{prefix}{}", target.type_name))
                        }
                        // Keywords whose value is a map of named schemas.
                        (
                            "properties" | "definitions" | "patternProperties",
                            Value::Object(children),
                        ) if schema => {
                            let mut named = Map::new();
                            for (name, child) in children {
                                named.insert(name.clone(), recurse(child, true, referenced)?);
                            }
                            Value::Object(named)
                        }
                        // Keywords whose value is a schema or a list of schemas.
                        (
                            "items" | "additionalProperties" | "not" | "allOf" | "anyOf" | "oneOf",
                            _,
                        ) if schema => recurse(v, true, referenced)?,
                        // Anything else inside a schema is a literal or a plain keyword value.
                        _ if schema => v.clone(),
                        ("schema", _) => recurse(v, true, referenced)?,
                        ("schemas", Value::Object(children)) => {
                            let mut named = Map::new();
                            for (name, child) in children {
                                named.insert(name.clone(), recurse(child, true, referenced)?);
                            }
                            Value::Object(named)
                        }
                        ("example" | "examples", _) => v.clone(),
                        _ => recurse(v, false, referenced)?,
                    };
                    out.insert(key.clone(), v);
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| recurse(v, schema, referenced))
                    .collect::<Result<_>>()?,
            ),
            other => other.clone(),
        })
    }
}

/// Removes keywords that only make sense at the top of a standalone document. `$id` in
/// particular must go: inside a bundle it would change how nested references resolve.
fn strip_document_keywords(obj: &mut Map<String, Value>) {
    for key in ["$schema", "$id", "$version"] {
        obj.shift_remove(key);
    }
}

/// Converts a draft-07 schema to the OpenAPI 3.0 schema dialect, recursively:
/// `type: [T, "null"]` → `type: T, nullable: true`; `const: v` → `enum: [v]`.
fn to_openapi_dialect(schema: &mut Value) -> Result<()> {
    let Value::Object(obj) = schema else {
        return Ok(());
    };
    if let Some(Value::Array(types)) = obj.get("type") {
        let non_null: Vec<_> = types
            .iter()
            .filter(|t| t.as_str() != Some("null"))
            .cloned()
            .collect();
        ensure!(
            non_null.len() == 1,
            "OpenAPI 3.0 cannot express the type set {types:?}: use one type, optionally with null"
        );
        let nullable = non_null.len() < types.len();
        obj.insert("type".into(), non_null[0].clone());
        if nullable {
            obj.insert("nullable".into(), Value::Bool(true));
        }
    }
    if let Some(value) = obj.shift_remove("const") {
        obj.insert("enum".into(), Value::Array(vec![value]));
    }
    for (key, child) in obj.iter_mut() {
        match key.as_str() {
            "properties" | "definitions" => {
                if let Value::Object(children) = child {
                    for c in children.values_mut() {
                        to_openapi_dialect(c)?;
                    }
                }
            }
            "items" | "additionalProperties" | "not" => to_openapi_dialect(child)?,
            "allOf" | "anyOf" | "oneOf" => {
                if let Value::Array(children) = child {
                    for c in children {
                        to_openapi_dialect(c)?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Applies [`to_openapi_dialect`] to every `schema` found under `paths`.
fn convert_inline_schemas(value: &mut Value) -> Result<()> {
    match value {
        Value::Object(obj) => {
            for (key, child) in obj.iter_mut() {
                if key == "schema" {
                    to_openapi_dialect(child)?;
                } else {
                    convert_inline_schemas(child)?;
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                convert_inline_schemas(item)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn load_schema(root: &Path, path: &Path) -> Result<SchemaDoc> {
    let rel = relative(root, path)?;
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {rel}"))?;
    let doc: Value =
        serde_json::from_str(&text).with_context(|| format!("{rel} is not valid JSON"))?;
    let field = |name: &str| -> Result<String> {
        doc.get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("{rel}: `{name}` is missing or not a string"))
    };
    let id = field("$id")?;
    let version_text = field("$version")?;
    let version = semver::Version::parse(&version_text).with_context(|| {
        format!("{rel}: $version {version_text:?} is not SemVer (MAJOR.MINOR.PATCH)")
    })?;
    let title = field("title")?;
    ensure!(
        is_type_name(&title),
        "{rel}: title {title:?} must be a PascalCase Rust type name"
    );
    if let Some(defs) = doc.get("definitions") {
        let defs = defs
            .as_object()
            .with_context(|| format!("{rel}: definitions is not an object"))?;
        for (key, def) in defs {
            ensure!(
                is_type_name(key),
                "{rel}: definition {key:?} must be a PascalCase type name"
            );
            ensure!(
                def.get("title").and_then(Value::as_str) == Some(key.as_str()),
                "{rel}: definition `{key}` must have \"title\": \"{key}\" (the title names the generated type)"
            );
        }
    }
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| anyhow!("{rel}: file name is not UTF-8"))?;
    Ok(SchemaDoc {
        path: rel,
        module: stem.replace('-', "_"),
        id,
        version,
        title,
        doc,
    })
}

fn load_api(root: &Path, path: &Path) -> Result<ApiDoc> {
    let rel = relative(root, path)?;
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {rel}"))?;
    let doc: Value =
        serde_yaml::from_str(&text).with_context(|| format!("{rel} is not valid YAML"))?;
    let openapi = doc
        .get("openapi")
        .and_then(Value::as_str)
        .unwrap_or_default();
    ensure!(
        openapi.starts_with("3.0."),
        "{rel}: openapi must be 3.0.x (progenitor reads 3.0 only), found {openapi:?}"
    );
    let version_text = doc
        .pointer("/info/version")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("{rel}: info.version is missing"))?;
    let version = semver::Version::parse(version_text)
        .with_context(|| format!("{rel}: info.version {version_text:?} is not SemVer"))?;
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| anyhow!("{rel}: file name is not UTF-8"))?
        .to_string();
    Ok(ApiDoc {
        path: rel,
        name,
        version,
        doc,
    })
}

fn is_type_name(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && s.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Every file below `dir` (sorted, skipping `released/` folders) that `keep` accepts.
fn files_under(dir: &Path, keep: &dyn Fn(&Path) -> bool) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if !dir.exists() {
        return Ok(out);
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != RELEASED_DIR) {
                    stack.push(path);
                }
            } else if keep(&path) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// `path` relative to `root`, with `/` separators.
pub fn relative(root: &Path, path: &Path) -> Result<String> {
    let rel = path
        .strip_prefix(root)
        .with_context(|| format!("{} is outside {}", path.display(), root.display()))?;
    Ok(rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/"))
}

/// Resolves `reference` (a relative file path) against the folder of `from`.
fn join_relative(from: &str, reference: &str) -> Result<String> {
    let base = Path::new(from).parent().unwrap_or(Path::new(""));
    let mut parts: Vec<String> = Vec::new();
    for component in base.join(reference).components() {
        match component {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::ParentDir => {
                ensure!(
                    parts.pop().is_some(),
                    "{from}: reference {reference} leaves the repository"
                );
            }
            Component::CurDir => {}
            _ => bail!("{from}: reference {reference} must be a relative path"),
        }
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_references_are_resolved_against_the_referring_file() {
        assert_eq!(
            join_relative("schemas/events/a.json", "../domain/job.json").unwrap(),
            "schemas/domain/job.json"
        );
        assert_eq!(
            join_relative("schemas/domain/a.json", "job.json").unwrap(),
            "schemas/domain/job.json"
        );
        assert!(join_relative("schemas/a.json", "../../../x.json").is_err());
    }

    #[test]
    fn openapi_dialect_turns_null_type_sets_into_nullable() {
        let mut s =
            serde_json::json!({"type": ["string", "null"], "properties": {"a": {"const": 1}}});
        to_openapi_dialect(&mut s).unwrap();
        assert_eq!(
            s,
            serde_json::json!({"type": "string", "nullable": true, "properties": {"a": {"enum": [1]}}})
        );
        let mut bad = serde_json::json!({"type": ["string", "integer"]});
        assert!(to_openapi_dialect(&mut bad).is_err());
    }

    #[test]
    fn the_repository_contracts_load_and_bundle() {
        let root = crate::repo_root();
        let contracts = Contracts::load(&root).unwrap();
        let detail = contracts
            .schemas
            .iter()
            .position(|s| s.title == "JobDetail")
            .unwrap();
        let bundle = contracts.bundle_schema(detail).unwrap();
        fn refs(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => m.iter().for_each(|(k, v)| match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(v, out),
                }),
                Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let mut found = Vec::new();
        refs(&bundle.doc, &mut found);
        assert!(
            found.iter().all(|r| r.starts_with("#/definitions/")),
            "{found:?}"
        );
        assert!(
            found.contains(&"#/definitions/EventProducer".to_string()),
            "transitive refs are kept: {found:?}"
        );
        for name in [
            "Job",
            "JobStatus",
            "JobAttempt",
            "EventEnvelope",
            "EventProducer",
        ] {
            assert!(
                bundle
                    .doc
                    .pointer(&format!("/definitions/{name}"))
                    .is_some(),
                "{name} missing"
            );
        }
    }
}
