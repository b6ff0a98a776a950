//! The project's developer commands (`cargo xtask ...`), as a library so that tests can run
//! them in-process against a copy of the repository.

pub mod bench;
mod bench_dashboard;
mod bench_tui;
pub mod chaos;
mod clients;
pub mod codegen;
pub mod contracts;
pub mod fuzz;
pub mod output;
mod rust_types;
pub mod system;
pub mod test_all;
mod test_infra;
mod web_api;

use anyhow::{Context, Result, bail};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The repository root: the parent of this crate's folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// JSON with two-space indentation and a final newline, keys in document order.
pub fn pretty_json(value: &serde_json::Value) -> Result<String> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    Ok(text)
}

/// Turns generated tokens into readable source (rustfmt does the final layout).
pub fn unparse(tokens: proc_macro2::TokenStream) -> Result<String> {
    let file: syn::File =
        syn::parse2(split_doc_lines(tokens)).context("generated code does not parse")?;
    Ok(prettyplease::unparse(&file))
}

/// Rewrites every multi-line `#[doc = "..."]` into one attribute per line. prettyplease prints
/// a multi-line doc as a `/** */` block, which rustfmt then indents, and rustdoc reads
/// indented lines as code blocks (and runs them as doctests).
fn split_doc_lines(tokens: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    use proc_macro2::{Delimiter, Group, Literal, TokenTree};
    let mut out = Vec::new();
    let mut iter = tokens.into_iter().peekable();
    while let Some(tree) = iter.next() {
        match tree {
            TokenTree::Punct(ref hash) if hash.as_char() == '#' => {
                let doc = match iter.peek() {
                    Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Bracket => doc_text(g),
                    _ => None,
                };
                match doc {
                    Some(text) if text.contains('\n') => {
                        iter.next();
                        for line in text.split('\n') {
                            let line = Literal::string(line.trim_end());
                            out.extend(quote::quote!(#[doc = #line]));
                        }
                    }
                    _ => out.push(tree),
                }
            }
            TokenTree::Group(g) => {
                let mut group = Group::new(g.delimiter(), split_doc_lines(g.stream()));
                group.set_span(g.span());
                out.push(TokenTree::Group(group));
            }
            other => out.push(other),
        }
    }
    out.into_iter().collect()
}

/// The text of `[doc = "..."]`, if `group` is one.
fn doc_text(group: &proc_macro2::Group) -> Option<String> {
    let meta: syn::MetaNameValue = syn::parse2(group.stream()).ok()?;
    if !meta.path.is_ident("doc") {
        return None;
    }
    match meta.value {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(s),
            ..
        }) => Some(s.value()),
        _ => None,
    }
}

/// Formats Rust source exactly as `cargo fmt` would, so that formatting the workspace never
/// makes `generated/` stale.
pub fn rustfmt(source: &str) -> Result<String> {
    let mut child = Command::new(std::env::var("RUSTFMT").unwrap_or_else(|_| "rustfmt".into()))
        .args(["--edition", "2024", "--emit", "stdout", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running rustfmt (install it with `rustup component add rustfmt`)")?;
    let mut stdin = child.stdin.take().context("rustfmt stdin")?;
    let input = source.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().context("waiting for rustfmt")?;
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("rustfmt writer panicked"))??;
    if !output.status.success() {
        bail!(
            "rustfmt rejected generated code:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    String::from_utf8(output.stdout).context("rustfmt output is not UTF-8")
}
