//! One catalog of errors: every key the SQL raises or the Rust domain returns is a row of
//! `pipetrak.error_codes` (sql/01_bootstrap.sql), every row is raised somewhere, and the table of
//! sql/ERRORS.md lists each with its SQLSTATE.

use pipetrak::domain::error::DomainError;
use regex::Regex;
use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// key → SQLSTATE, from the catalog's insert.
fn catalog() -> BTreeMap<String, String> {
    let sql = std::fs::read_to_string(root().join("sql/01_bootstrap.sql")).expect("bootstrap");
    let row = Regex::new(r"(?m)^\s*\('([a-z][a-z0-9_]*)',\s*'([0-9A-Z]{5})'").expect("regex");
    row.captures_iter(&sql)
        .map(|c| (c[1].to_string(), c[2].to_string()))
        .collect()
}

/// Every key the SQL files raise with a literal, or name as an append-only log's trigger argument.
fn raised_by_sql() -> BTreeSet<String> {
    let raise =
        Regex::new(r"(?:raise_error|refuse_change)\(\s*'([a-z][a-z0-9_]*)'").expect("regex");
    let mut keys = BTreeSet::new();
    for entry in std::fs::read_dir(root().join("sql")).expect("sql/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "sql") {
            let text = std::fs::read_to_string(&path).expect("sql file");
            keys.extend(raise.captures_iter(&text).map(|c| c[1].to_string()));
        }
    }
    keys
}

#[test]
fn every_raised_key_is_catalogued() {
    let catalog = catalog();
    assert!(catalog.len() > 40, "the catalog was read: {catalog:?}");
    let mut raised = raised_by_sql();
    raised.extend(DomainError::ALL_CODES.iter().map(|k| k.to_string()));
    let missing: Vec<&String> = raised
        .iter()
        .filter(|k| !catalog.contains_key(*k))
        .collect();
    assert!(missing.is_empty(), "raised but not catalogued: {missing:?}");
}

#[test]
fn every_catalogued_key_is_raised() {
    let mut raised = raised_by_sql();
    raised.extend(DomainError::ALL_CODES.iter().map(|k| k.to_string()));
    let unused: Vec<String> = catalog()
        .into_keys()
        .filter(|k| !raised.contains(k))
        .collect();
    assert!(unused.is_empty(), "catalogued but never raised: {unused:?}");
}

#[test]
fn the_readme_lists_every_key_with_its_sqlstate() {
    let readme = std::fs::read_to_string(root().join("sql/ERRORS.md")).expect("sql/ERRORS.md");
    let missing: Vec<String> = catalog()
        .into_iter()
        .filter(|(key, state)| !readme.contains(&format!("| {key} | {state} |")))
        .map(|(key, _)| key)
        .collect();
    assert!(
        missing.is_empty(),
        "not in the error table of sql/ERRORS.md: {missing:?}"
    );
}
