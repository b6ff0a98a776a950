//! Every schema in `schemas/` has example instances beside it (`NAME.examples.json`): some that
//! must validate and some that must not, each with a one-line reason. This test checks each
//! instance twice — with the jsonschema validator and by deserializing into the generated type —
//! and requires the two to agree.
//!
//! Where they cannot agree because the generated type cannot express a constraint (typify
//! drops e.g. `maximum` and `minItems`), the invalid example says so in `typesAccept`; the test
//! then checks that the generated type really does accept it, so the note cannot go stale.

use observatory_contracts::SCHEMAS;
use observatory_validation::ContractValidator;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Examples {
    valid: Vec<ValidExample>,
    invalid: Vec<InvalidExample>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidExample {
    description: String,
    instance: Value,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct InvalidExample {
    reason: String,
    instance: Value,
    /// Why the generated type accepts this instance although the schema does not.
    #[serde(rename = "typesAccept")]
    types_accept: Option<String>,
}

#[test]
fn validator_and_generated_types_agree_on_every_example() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for info in SCHEMAS {
        let file = repo_root().join(info.path.replace(".json", ".examples.json"));
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) => {
                failures.push(format!("{}: no examples file ({e})", file.display()));
                continue;
            }
        };
        let examples: Examples = match serde_json::from_str(&text) {
            Ok(examples) => examples,
            Err(e) => {
                failures.push(format!("{}: {e}", file.display()));
                continue;
            }
        };
        if examples.valid.is_empty() || examples.invalid.is_empty() {
            failures.push(format!(
                "{}: needs at least one valid and one invalid example",
                file.display()
            ));
        }
        let validator = ContractValidator::new(*info).expect("schema compiles");
        let deserializes = |v: &Value| {
            observatory_contracts::deserialize_as(info.name, v).expect("every schema has a type")
        };
        for ex in &examples.valid {
            checked += 1;
            if let Err(errors) = validator.validate(&ex.instance) {
                failures.push(format!(
                    "{} valid `{}`: validator rejects it: {errors:?}",
                    info.name, ex.description
                ));
            }
            if let Err(e) = deserializes(&ex.instance) {
                failures.push(format!(
                    "{} valid `{}`: generated type rejects it: {e}",
                    info.name, ex.description
                ));
            }
        }
        for ex in &examples.invalid {
            checked += 1;
            if validator.is_valid(&ex.instance) {
                failures.push(format!(
                    "{} invalid `{}`: validator accepts it",
                    info.name, ex.reason
                ));
            }
            match (deserializes(&ex.instance), &ex.types_accept) {
                (Ok(()), None) => failures.push(format!(
                    "{} invalid `{}`: generated type accepts it (if the type cannot express this, say why in typesAccept)",
                    info.name, ex.reason
                )),
                (Err(e), Some(_)) => failures.push(format!(
                    "{} invalid `{}`: marked typesAccept but the generated type rejects it ({e}): remove the mark",
                    info.name, ex.reason
                )),
                _ => {}
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        checked >= 2 * SCHEMAS.len(),
        "only {checked} examples checked"
    );
}

#[test]
fn every_examples_file_belongs_to_a_schema() {
    let mut stack = vec![repo_root().join("schemas")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if let Some(name) = path.to_str().and_then(|p| p.strip_suffix(".examples.json"))
            {
                let schema = format!("{name}.json");
                assert!(
                    Path::new(&schema).exists(),
                    "{} has no schema beside it",
                    path.display()
                );
            }
        }
    }
}
