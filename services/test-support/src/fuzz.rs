//! Fuzzing as property tests (proptest), for the parsers that face hostile input: each target
//! runs a bounded number of cases in `cargo xtask test` and many more with `cargo xtask fuzz`.
//!
//! Inputs come two ways: *mutations* of a corpus kept in the repository beside the target
//! (`tests/corpus/<target>/`, one input per file: valid inputs and the interesting invalid
//! ones), with bit flips, byte changes, insertions, deletions, duplications and splices of
//! another corpus entry; and *generated* JSON values of any shape and depth. A failing case is
//! shrunk and kept by proptest in `proptest-regressions/`, which is replayed first on every
//! run; add it to the corpus once fixed.

use proptest::prelude::*;
use serde_json::Value;
use std::path::Path;

/// Cases per target: `PROPTEST_CASES` when set (`cargo xtask fuzz` sets it), else `default`.
pub fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        // A panicking parser is the finding; shrinking it must not take the whole run.
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    }
}

/// Every file of the corpus directory `dir` (sorted, so runs are reproducible).
pub fn corpus(dir: &Path) -> Vec<Vec<u8>> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading the corpus {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    let inputs: Vec<Vec<u8>> = paths
        .iter()
        .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display())))
        .collect();
    assert!(!inputs.is_empty(), "the corpus {} is empty", dir.display());
    inputs
}

#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(usize, u8),
    SetByte(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Duplicate(usize, usize),
    /// Replaces everything from a position with the tail of another corpus entry.
    Splice(usize, usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<usize>();
    prop_oneof![
        (at, 0..8u8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        (
            at,
            prop_oneof![
                Just(b'{'),
                Just(b'"'),
                Just(b'\\'),
                Just(b'0'),
                Just(0u8),
                Just(0xff),
                any::<u8>()
            ]
        )
            .prop_map(|(i, b)| Mutation::SetByte(i, b)),
        (at, prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(i, v)| Mutation::Insert(i, v)),
        (at, 1..64usize).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (at, 1..256usize).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
        (at, any::<usize>(), any::<usize>()).prop_map(|(i, o, j)| Mutation::Splice(i, o, j)),
    ]
}

fn apply(input: &mut Vec<u8>, m: &Mutation, corpus: &[Vec<u8>]) {
    let len = input.len();
    let pos = |i: usize| if len == 0 { 0 } else { i % (len + 1) };
    match m {
        Mutation::FlipBit(i, bit) if len > 0 => input[i % len] ^= 1 << bit,
        Mutation::SetByte(i, b) if len > 0 => input[i % len] = *b,
        Mutation::Insert(i, bytes) => {
            let at = pos(*i);
            input.splice(at..at, bytes.iter().copied());
        }
        Mutation::Delete(i, n) if len > 0 => {
            let at = i % len;
            input.drain(at..(at + n).min(len));
        }
        Mutation::Duplicate(i, n) if len > 0 => {
            let at = i % len;
            let copy = input[at..(at + n).min(len)].to_vec();
            input.splice(at..at, copy);
        }
        Mutation::Splice(i, other, j) => {
            let donor = &corpus[other % corpus.len()];
            let from = if donor.is_empty() { 0 } else { j % donor.len() };
            input.truncate(pos(*i));
            input.extend_from_slice(&donor[from..]);
        }
        _ => {}
    }
}

/// An entry of `corpus` with up to eight mutations applied (none: the entry itself).
pub fn mutated(corpus: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let corpus = std::sync::Arc::new(corpus);
    (0..corpus.len(), prop::collection::vec(mutation(), 0..8)).prop_map(move |(i, ms)| {
        let mut input = corpus[i].clone();
        for m in &ms {
            apply(&mut input, m, &corpus);
        }
        input
    })
}

/// JSON values of every kind, nested up to `depth` levels, with awkward strings and numbers.
pub fn json_value(depth: u32) -> impl Strategy<Value = Value> {
    let text = prop_oneof![
        "[a-z]{0,8}",
        any::<String>(),
        Just("\u{0}".to_owned()),
        Just("$where".to_owned()),
        Just("a.b".to_owned()),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        text.clone().prop_map(Value::String),
    ];
    leaf.prop_recursive(depth, 256, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(text.clone(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
