//! A scratch copy of the repository for tests that change contracts.

use std::path::{Path, PathBuf};

/// Copies the repository (without build output and git data) into a fresh folder below
/// `CARGO_TARGET_TMPDIR`, keeping only the top-level entries listed in `only` when given.
pub fn copy_repo(name: &str, only: Option<&[&str]>) -> PathBuf {
    let root = xtask::repo_root();
    let dest = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dest);
    for entry in std::fs::read_dir(&root).unwrap() {
        let entry = entry.unwrap();
        let file_name = entry.file_name();
        let name = file_name.to_string_lossy();
        if ["target", ".git", "node_modules"].contains(&name.as_ref()) {
            continue;
        }
        if only.is_some_and(|only| !only.contains(&name.as_ref())) {
            continue;
        }
        copy(&entry.path(), &dest.join(&*name));
    }
    dest
}

fn copy(from: &Path, to: &Path) {
    if from.is_dir() {
        if from
            .file_name()
            .is_some_and(|n| n == "target" || n == "node_modules")
        {
            return;
        }
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            copy(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        std::fs::copy(from, to).unwrap();
    }
}

/// Replaces the first occurrence of `from` in `path`, failing the test when it is absent.
pub fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.contains(from),
        "{} does not contain {from:?}",
        path.display()
    );
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}
