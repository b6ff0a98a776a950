//! The result of a comparison: a flat list of [`Change`]s, each saying which
//! compatibility direction(s) it breaks.
//!
//! Why a flat list with a per-change direction set instead of one verdict per
//! mode: the same comparison answers `backward`, `forward` and `full` at once,
//! and a human reviewing a contract change wants to see every difference
//! (including harmless ones such as a changed `description`) with the reason it
//! does or does not matter. The verdict for a mode is derived from the list.

use serde::Serialize;

/// Compatibility mode requested by a caller.
///
/// For JSON Schema documents: `Backward` means Emits(old) ⊆ Accepts(new)
/// (consumers may upgrade first), `Forward` means Emits(new) ⊆ Accepts(old)
/// (producers may upgrade first), `Full` both.
///
/// For OpenAPI documents the directions are API-level: `Backward` means the new
/// server still serves old clients (requests checked backward, responses
/// checked forward), `Forward` means an old server still serves new clients
/// (the reverse), `Full` both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    Backward,
    Forward,
    Full,
}

impl Mode {
    /// Parses `backward`, `forward` or `full`.
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "backward" => Some(Mode::Backward),
            "forward" => Some(Mode::Forward),
            "full" => Some(Mode::Full),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Backward => "backward",
            Mode::Forward => "forward",
            Mode::Full => "full",
        }
    }
}

/// Which compatibility directions a change breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Breaks {
    #[default]
    None,
    Backward,
    Forward,
    Both,
}

impl Breaks {
    pub fn from_flags(backward: bool, forward: bool) -> Breaks {
        match (backward, forward) {
            (false, false) => Breaks::None,
            (true, false) => Breaks::Backward,
            (false, true) => Breaks::Forward,
            (true, true) => Breaks::Both,
        }
    }

    pub fn backward(self) -> bool {
        matches!(self, Breaks::Backward | Breaks::Both)
    }

    pub fn forward(self) -> bool {
        matches!(self, Breaks::Forward | Breaks::Both)
    }

    pub fn union(self, other: Breaks) -> Breaks {
        Breaks::from_flags(
            self.backward() || other.backward(),
            self.forward() || other.forward(),
        )
    }

    pub fn intersect(self, other: Breaks) -> Breaks {
        Breaks::from_flags(
            self.backward() && other.backward(),
            self.forward() && other.forward(),
        )
    }

    /// The two directions swapped (used to map response-body schema checks to
    /// API-level directions).
    pub fn swapped(self) -> Breaks {
        Breaks::from_flags(self.forward(), self.backward())
    }

    pub fn is_none(self) -> bool {
        self == Breaks::None
    }

    /// Does this break the given mode?
    pub fn breaks_mode(self, mode: Mode) -> bool {
        match mode {
            Mode::Backward => self.backward(),
            Mode::Forward => self.forward(),
            Mode::Full => !self.is_none(),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Breaks::None => "none",
            Breaks::Backward => "backward",
            Breaks::Forward => "forward",
            Breaks::Both => "both",
        }
    }
}

/// One difference between the old and the new document.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Location in the old document, e.g. `old#/properties/a`, or
    /// `../domain/job.json#/definitions/JobStatus` for a node reached through a
    /// cross-file `$ref` (paths relative to the compared document's folder).
    pub pointer_old: String,
    /// Location in the new document, same convention.
    pub pointer_new: String,
    /// Stable identifier of the kind of change (see `KINDS` in the crate docs).
    pub kind: &'static str,
    /// Directions this change breaks.
    pub breaks: Breaks,
    /// One line, human readable.
    pub message: String,
}

impl Change {
    /// The `pointer` field of the JSON output: `OLD -> NEW`.
    pub fn pointer(&self) -> String {
        format!("{} -> {}", self.pointer_old, self.pointer_new)
    }

    /// True when the change alters no instance set (documentation only).
    pub fn is_annotation(&self) -> bool {
        self.kind == "annotation-changed"
    }
}

/// What kind of document was compared; decides the default mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    JsonSchema,
    OpenApi,
}

impl DocKind {
    /// Default mode: `full` for JSON Schema (events and stored documents),
    /// `backward` for OpenAPI (the implied per-position directions).
    pub fn default_mode(self) -> Mode {
        match self {
            DocKind::JsonSchema => Mode::Full,
            DocKind::OpenApi => Mode::Backward,
        }
    }
}

/// The outcome of comparing two documents.
#[derive(Debug, Clone)]
pub struct Report {
    pub doc_kind: DocKind,
    pub changes: Vec<Change>,
}

#[derive(Serialize)]
struct JsonChange<'a> {
    pointer: String,
    kind: &'a str,
    breaking: bool,
    message: &'a str,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    compatible: bool,
    changes: Vec<JsonChange<'a>>,
}

impl Report {
    /// True when no change breaks `mode`.
    pub fn compatible(&self, mode: Mode) -> bool {
        self.changes.iter().all(|c| !c.breaks.breaks_mode(mode))
    }

    /// The changes that break `mode`.
    pub fn breaking(&self, mode: Mode) -> Vec<&Change> {
        self.changes
            .iter()
            .filter(|c| c.breaks.breaks_mode(mode))
            .collect()
    }

    /// True when every change is annotation-only (no instance set changed).
    pub fn annotation_only(&self) -> bool {
        self.changes.iter().all(Change::is_annotation)
    }

    /// `{"compatible": bool, "changes": [{"pointer", "kind", "breaking", "message"}]}`
    pub fn to_json(&self, mode: Mode) -> String {
        let out = JsonReport {
            compatible: self.compatible(mode),
            changes: self
                .changes
                .iter()
                .map(|c| JsonChange {
                    pointer: c.pointer(),
                    kind: c.kind,
                    breaking: c.breaks.breaks_mode(mode),
                    message: &c.message,
                })
                .collect(),
        };
        serde_json::to_string_pretty(&out).unwrap_or_else(|_| "{}".to_string())
    }

    /// One line per change, then a verdict line.
    pub fn to_text(&self, mode: Mode) -> String {
        let mut s = String::new();
        for c in &self.changes {
            let tag = if c.breaks.breaks_mode(mode) {
                "BREAKING"
            } else {
                "ok"
            };
            s.push_str(&format!(
                "{tag:8} {kind} at {ptr}: {msg} (breaks: {b})\n",
                kind = c.kind,
                ptr = c.pointer(),
                msg = c.message,
                b = c.breaks.as_str()
            ));
        }
        let n = self.breaking(mode).len();
        if n == 0 {
            s.push_str(&format!(
                "compatible ({}): {} change(s), none breaking\n",
                mode.as_str(),
                self.changes.len()
            ));
        } else {
            s.push_str(&format!(
                "INCOMPATIBLE ({}): {} of {} change(s) breaking\n",
                mode.as_str(),
                n,
                self.changes.len()
            ));
        }
        s
    }
}

/// Merges duplicate changes (same pointers, kind and message), uniting their
/// directions. The same pair of nodes can be reached along several paths
/// (shared `$ref`s, directional sub-checks); the reader should see it once.
pub(crate) fn dedupe(changes: Vec<Change>) -> Vec<Change> {
    let mut out: Vec<Change> = Vec::with_capacity(changes.len());
    for c in changes {
        if let Some(existing) = out.iter_mut().find(|e| {
            e.kind == c.kind
                && e.pointer_old == c.pointer_old
                && e.pointer_new == c.pointer_new
                && e.message == c.message
        }) {
            // The same finding reached along another path: unite the directions.
            existing.breaks = existing.breaks.union(c.breaks);
        } else {
            out.push(c);
        }
    }
    out
}
