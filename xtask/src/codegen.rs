//! `cargo xtask codegen [--check]`: everything under `generated/` comes from here.

use crate::contracts::Contracts;
use crate::output::GeneratedTree;
use crate::{clients, rust_types, web_api};
use anyhow::Result;
use std::path::Path;

/// Produces every generated file from the contracts under `root`, in memory.
pub fn generate(root: &Path) -> Result<GeneratedTree> {
    let contracts = Contracts::load(root)?;
    let mut out = GeneratedTree::default();
    out.add("generated/README.md", README);
    for api in &contracts.apis {
        let bundle = contracts.bundle_api(api)?;
        out.add(
            format!("generated/openapi/{}.json", api.name),
            crate::pretty_json(&bundle.doc)?,
        );
    }
    rust_types::generate(&contracts, &mut out)?;
    clients::generate(&contracts, &mut out)?;
    web_api::generate(&contracts, &mut out)?;
    Ok(out)
}

const README: &str = "# generated/\n\n\
Machine-written by `cargo xtask codegen` from `schemas/` and `openapi/`; never edit by hand.\n\
`cargo xtask codegen --check` (part of the test command) fails, naming the file, when anything\n\
here differs from what the contracts produce.\n\n\
- `openapi/`: each OpenAPI document bundled with the schemas it references (what the services\n  serve at `/openapi.json`).\n\
- `contracts/`: the `observatory-contracts` crate: Rust types for every schema (typify), one module\n  per schema and one submodule per major version, with each schema embedded for validation.\n\
- `clients/`: typed HTTP clients (progenitor), included by the `observatory-client` crate in `clients/`.\n\
- `web/`: the web dashboard's API module (ES module with JSDoc types).\n";
