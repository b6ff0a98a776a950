//! Loading documents and resolving `$ref`s.
//!
//! One [`Store`] holds one side of a comparison (old or new): the root
//! document plus every file reached through a cross-file `$ref`, loaded
//! lazily. A node is addressed by a [`Loc`] (document index + JSON pointer), so
//! the comparison can recurse without holding borrows and can recognise a pair
//! of nodes it has already visited (cycle guard).
//!
//! Why the root has a *virtual* path: repo mode compares a released copy
//! (stored under `schemas/released/...`) as if it lived at the current
//! document's path, so its relative `$ref`s resolve against the current tree
//! and a change in a referenced file is attributed to that file only.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use serde_json::Value;

use crate::CompatError;

/// Which dialect a document's schemas are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// JSON Schema draft-07.
    Draft07,
    /// OpenAPI 3.0 Schema Object (`nullable`, boolean `exclusiveMinimum`, `example`...).
    Oas30,
}

/// A node: document index within a [`Store`] plus a JSON pointer ("" = root).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Loc {
    pub doc: usize,
    pub ptr: String,
}

impl Loc {
    pub fn child(&self, seg: &str) -> Loc {
        Loc {
            doc: self.doc,
            ptr: format!("{}/{}", self.ptr, escape(seg)),
        }
    }

    pub fn child_idx(&self, i: usize) -> Loc {
        Loc {
            doc: self.doc,
            ptr: format!("{}/{}", self.ptr, i),
        }
    }
}

/// Escapes one JSON pointer segment.
pub(crate) fn escape(seg: &str) -> String {
    seg.replace('~', "~0").replace('/', "~1")
}

struct Doc {
    /// Normalised absolute path used to resolve relative references.
    path: PathBuf,
    /// How the document is named in output (`old`, `new`, or a relative path).
    display: String,
    value: Rc<Value>,
    dialect: Dialect,
}

/// Index of the synthetic document whose value is `true` (used for an
/// implicit `additionalProperties`/`items`).
pub(crate) const TRUE_DOC: usize = 0;

pub(crate) struct Store {
    docs: Vec<Doc>,
    by_path: HashMap<PathBuf, usize>,
    /// Folder of the root document; displays of other files are relative to it.
    root_dir: PathBuf,
}

/// Reads and parses a JSON or YAML file.
pub(crate) fn read_document(path: &Path) -> Result<Value, CompatError> {
    let text = std::fs::read_to_string(path).map_err(|e| CompatError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    parse_text(&text, path)
}

/// Parses JSON, or YAML when the extension says so or JSON parsing fails.
pub(crate) fn parse_text(text: &str, path: &Path) -> Result<Value, CompatError> {
    let is_yaml = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    );
    if !is_yaml {
        match serde_json::from_str::<Value>(text) {
            Ok(v) => return Ok(v),
            Err(e) => {
                return Err(CompatError::Parse {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                });
            }
        }
    }
    serde_yaml::from_str::<Value>(text).map_err(|e| CompatError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Lexically normalised absolute path (no filesystem access, no symlinks).
pub(crate) fn normalize_path(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// `target` relative to `base` (both normalised absolute), for display.
fn relative(target: &Path, base: &Path) -> String {
    let t: Vec<_> = target.components().collect();
    let b: Vec<_> = base.components().collect();
    let common = t.iter().zip(b.iter()).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = Vec::new();
    for _ in common..b.len() {
        parts.push("..".into());
    }
    for c in &t[common..] {
        parts.push(c.as_os_str().to_string_lossy().into_owned());
    }
    parts.join("/")
}

fn dialect_for(path: &Path, value: &Value) -> Dialect {
    let yaml = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    );
    if yaml || value.get("openapi").is_some() {
        Dialect::Oas30
    } else {
        Dialect::Draft07
    }
}

impl Store {
    /// A store whose root document has content `value` and is treated as
    /// living at `path` (which need not hold that content).
    pub fn new(value: Value, path: &Path, display: &str) -> Store {
        let path = normalize_path(path);
        let root_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let dialect = dialect_for(&path, &value);
        let mut s = Store {
            docs: vec![Doc {
                path: PathBuf::new(),
                display: "(implicit true)".into(),
                value: Rc::new(Value::Bool(true)),
                dialect: Dialect::Draft07,
            }],
            by_path: HashMap::new(),
            root_dir,
        };
        s.by_path.insert(path.clone(), 1);
        s.docs.push(Doc {
            path,
            display: display.to_string(),
            value: Rc::new(value),
            dialect,
        });
        s
    }

    /// The root document.
    pub fn root(&self) -> Loc {
        Loc {
            doc: 1,
            ptr: String::new(),
        }
    }

    pub fn true_loc() -> Loc {
        Loc {
            doc: TRUE_DOC,
            ptr: String::new(),
        }
    }

    pub fn dialect(&self, loc: &Loc) -> Dialect {
        self.docs[loc.doc].dialect
    }

    pub fn doc_value(&self, doc: usize) -> Rc<Value> {
        Rc::clone(&self.docs[doc].value)
    }

    /// The value at `loc`, if the pointer exists.
    pub fn get(&self, loc: &Loc) -> Option<Value> {
        let v = self.doc_value(loc.doc);
        v.pointer(&loc.ptr).cloned()
    }

    /// `old#/properties/a`, `../domain/job.json#/definitions/X`.
    pub fn display(&self, loc: &Loc) -> String {
        format!("{}#{}", self.docs[loc.doc].display, loc.ptr)
    }

    /// Location for error messages: the real file path plus the pointer.
    pub fn error_pointer(&self, loc: &Loc) -> String {
        let d = &self.docs[loc.doc];
        if loc.doc == 1 {
            format!("{}#{}", d.display, loc.ptr)
        } else {
            format!("{}#{}", d.path.display(), loc.ptr)
        }
    }

    /// Resolves a `$ref` string found at `from`.
    ///
    /// Supported: `#/json/pointer` (same document), `file.json`,
    /// `../dir/file.json#/pointer` (relative to the referring document).
    /// Absolute URIs are rejected: the repo resolves references by path.
    pub fn resolve(&mut self, from: &Loc, reference: &str) -> Result<Loc, CompatError> {
        let err = |s: &Store, message: String| CompatError::Ref {
            reference: reference.to_string(),
            pointer: s.error_pointer(from),
            message,
        };
        let (file, frag) = match reference.split_once('#') {
            Some((f, p)) => (f, p),
            None => (reference, ""),
        };
        if file.contains("://") || file.starts_with("urn:") {
            return Err(err(
                self,
                "absolute URIs are not resolved; use a path relative to the referring file".into(),
            ));
        }
        if !frag.is_empty() && !frag.starts_with('/') {
            return Err(err(
                self,
                "only JSON-pointer fragments (#/...) are supported".into(),
            ));
        }
        let doc = if file.is_empty() {
            from.doc
        } else {
            if from.doc == TRUE_DOC {
                return Err(err(self, "reference from a synthetic node".into()));
            }
            let base = self.docs[from.doc]
                .path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            let target = normalize_path(&base.join(file));
            self.load(&target)?
        };
        // Decode percent-escapes minimally (%25 and %22 are the only ones seen in practice).
        let ptr = frag.replace("%22", "\"").replace("%25", "%");
        let loc = Loc { doc, ptr };
        if self.get(&loc).is_none() {
            return Err(err(self, "target does not exist".into()));
        }
        Ok(loc)
    }

    fn load(&mut self, path: &Path) -> Result<usize, CompatError> {
        if let Some(&i) = self.by_path.get(path) {
            return Ok(i);
        }
        let value = read_document(path)?;
        let dialect = dialect_for(path, &value);
        if dialect == Dialect::Draft07 {
            crate::schema::check_tree(&value, dialect, &path.display().to_string())?;
        }
        let display = relative(path, &self.root_dir);
        let i = self.docs.len();
        self.docs.push(Doc {
            path: path.to_path_buf(),
            display,
            value: Rc::new(value),
            dialect,
        });
        self.by_path.insert(path.to_path_buf(), i);
        Ok(i)
    }
}
