//! The set of files codegen produces, and the two things done with it: write it to disk, or
//! compare it with what is on disk (`--check`). Everything under `generated/` belongs to this
//! set; a file there that codegen would not write is reported as hand-written.

use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const GENERATED_DIR: &str = "generated";

#[derive(Default)]
pub struct GeneratedTree {
    /// Repo-relative path → content.
    files: BTreeMap<String, String>,
}

/// One way in which `generated/` differs from what the contracts produce.
#[derive(Debug, PartialEq, Eq)]
pub enum Drift {
    Missing(String),
    Stale(String),
    Unexpected(String),
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Drift::Missing(p) => write!(f, "missing:    {p}"),
            Drift::Stale(p) => write!(f, "stale or edited by hand: {p}"),
            Drift::Unexpected(p) => write!(f, "not produced by codegen (hand-written?): {p}"),
        }
    }
}

impl GeneratedTree {
    pub fn add(&mut self, path: impl Into<String>, content: impl Into<String>) {
        let path = path.into();
        debug_assert!(
            path.starts_with(GENERATED_DIR),
            "{path} is outside generated/"
        );
        self.files.insert(path, content.into());
    }

    pub fn get(&self, path: &str) -> Option<&str> {
        self.files.get(path).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Writes every file (only those whose content changed) and deletes files under
    /// `generated/` that are no longer produced. Returns how many files were written/removed.
    pub fn write(&self, root: &Path) -> Result<(usize, usize)> {
        let mut written = 0;
        for (rel, content) in &self.files {
            let path = root.join(rel);
            if std::fs::read_to_string(&path).ok().as_deref() == Some(content.as_str()) {
                continue;
            }
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            std::fs::write(&path, content)
                .with_context(|| format!("writing {}", path.display()))?;
            written += 1;
        }
        let mut removed = 0;
        for rel in files_on_disk(root)? {
            if !self.files.contains_key(&rel) {
                std::fs::remove_file(root.join(&rel)).with_context(|| format!("removing {rel}"))?;
                removed += 1;
            }
        }
        Ok((written, removed))
    }

    /// Every difference between this tree and `generated/` on disk.
    pub fn check(&self, root: &Path) -> Result<Vec<Drift>> {
        let mut drift = Vec::new();
        for (rel, content) in &self.files {
            match std::fs::read_to_string(root.join(rel)) {
                Ok(on_disk) if on_disk == *content => {}
                Ok(_) => drift.push(Drift::Stale(rel.clone())),
                Err(_) => drift.push(Drift::Missing(rel.clone())),
            }
        }
        for rel in files_on_disk(root)? {
            if !self.files.contains_key(&rel) {
                drift.push(Drift::Unexpected(rel));
            }
        }
        Ok(drift)
    }
}

/// Files under `generated/` (repo-relative), skipping build output.
fn files_on_disk(root: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = vec![root.join(GENERATED_DIR)];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "target") {
                    stack.push(path);
                }
            } else {
                out.push(crate::contracts::relative(root, &path)?);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_reports_stale_missing_and_unexpected_files() {
        let dir = std::env::temp_dir().join(format!("xtask-output-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut tree = GeneratedTree::default();
        tree.add("generated/a.rs", "a");
        tree.add("generated/sub/b.rs", "b");
        tree.write(&dir).unwrap();
        assert!(tree.check(&dir).unwrap().is_empty());

        std::fs::write(dir.join("generated/a.rs"), "edited").unwrap();
        std::fs::remove_file(dir.join("generated/sub/b.rs")).unwrap();
        std::fs::write(dir.join("generated/extra.rs"), "x").unwrap();
        let drift = tree.check(&dir).unwrap();
        assert_eq!(
            drift,
            vec![
                Drift::Stale("generated/a.rs".into()),
                Drift::Missing("generated/sub/b.rs".into()),
                Drift::Unexpected("generated/extra.rs".into()),
            ]
        );
        // Writing repairs all three.
        assert_eq!(tree.write(&dir).unwrap(), (2, 1));
        assert!(tree.check(&dir).unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
