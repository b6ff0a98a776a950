//! Fuzzing the cursor decoder: no text makes it panic; what it decodes encodes back to the same
//! position; and every text of the contract's PageCursor pattern decodes (a cursor the contract
//! calls valid is never refused). Cases: `cargo xtask fuzz` sets PROPTEST_CASES.

use observatory_keyset::Position;
use observatory_test_support::fuzz;
use proptest::prelude::*;
use std::path::Path;

fn corpus() -> Vec<Vec<u8>> {
    fuzz::corpus(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/cursor"))
}

/// The pattern the contract states for a cursor.
fn contract_pattern() -> String {
    let info = observatory_contracts::SCHEMAS
        .iter()
        .find(|s| s.name == "page_cursor")
        .expect("the PageCursor schema");
    let schema: serde_json::Value = serde_json::from_str(info.schema).expect("JSON");
    let pattern = schema["pattern"].as_str().expect("a pattern");
    // proptest generates from a regex without anchors.
    pattern
        .trim_start_matches('^')
        .trim_end_matches('$')
        .to_owned()
}

proptest! {
    #![proptest_config(fuzz::config(20_000))]

    #[test]
    fn decoding_never_panics_and_round_trips(input in fuzz::mutated(corpus())) {
        let text = String::from_utf8_lossy(&input);
        if let Ok(position) = Position::decode(&text) {
            let encoded = position.encode().expect("a decoded position encodes");
            prop_assert_eq!(Position::decode(&encoded).ok(), Some(position));
        }
    }

    #[test]
    fn every_cursor_of_the_contract_pattern_decodes(cursor in proptest::string::string_regex(&contract_pattern()).expect("a regex")) {
        prop_assert!(Position::decode(&cursor).is_ok(), "{cursor}");
    }
}
