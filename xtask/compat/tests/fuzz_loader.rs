//! Fuzzing the checker's loader: whatever a document's bytes (JSON or YAML, schema or OpenAPI),
//! checking it against itself ends in a report or an error, never a panic or a hang; and a
//! document it can read is compatible with itself in every mode (a checker that calls an
//! unchanged document breaking would block every release). Inputs: mutations of
//! `tests/corpus/loader/`. Cases: `cargo xtask fuzz` sets PROPTEST_CASES.

use contract_compat::{Mode, compare_files};
use observatory_test_support::fuzz;
use proptest::prelude::*;
use std::path::Path;

fn corpus() -> Vec<Vec<u8>> {
    fuzz::corpus(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/loader"))
}

proptest! {
    #![proptest_config(fuzz::config(3_000))]

    #[test]
    fn a_readable_document_is_compatible_with_itself(
        bytes in fuzz::mutated(corpus()),
        yaml in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join(if yaml { "doc.yaml" } else { "doc.json" });
        std::fs::write(&path, &bytes).expect("written");
        if let Ok(report) = compare_files(&path, &path) {
            for mode in [Mode::Backward, Mode::Forward, Mode::Full] {
                let breaking: Vec<_> = report.changes.iter().filter(|c| c.breaks.breaks_mode(mode)).collect();
                prop_assert!(breaking.is_empty(), "{mode:?}: {breaking:?}");
            }
        }
    }
}
