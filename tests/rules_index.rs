//! The rules index, sql/RULES.md: each row of its tables names the functions that decide a rule,
//! the files they are in and the tests that fail when it breaks. These tests keep every name true,
//! so that a function renamed, moved or deleted, or a test renamed, fails here with its rows.

use regex::Regex;
use std::path::PathBuf;

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)).ok()
}

/// A row of one of the index's tables: its line in sql/RULES.md and its cells.
struct Row {
    line: usize,
    cells: Vec<String>,
}

impl Row {
    /// Where a problem is: the row's line and the start of its rule.
    fn at(&self, problem: String) -> String {
        let rule: String = self.cells[0].chars().take(60).collect();
        format!("sql/RULES.md:{} ({rule}…): {problem}", self.line)
    }
}

fn rows() -> Vec<Row> {
    let text = read("sql/RULES.md").expect("sql/RULES.md");
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with('|') && !l.starts_with("| rule |") && !l.starts_with("|---"))
        .map(|(i, l)| Row {
            line: i + 1,
            cells: l
                .trim()
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect(),
        })
        .collect()
}

/// The `ticked` names of a cell.
fn ticked(cell: &str) -> Vec<&str> {
    let re = Regex::new("`([^`]+)`").expect("regex");
    re.captures_iter(cell)
        .map(|c| c.get(1).expect("group").as_str())
        .collect()
}

/// Whether `text` defines the function `name`: `create [or replace] function pipetrak.name(` for
/// SQL, `fn name(` for Rust.
fn defines(text: &str, name: &str, sql: bool) -> bool {
    let pattern = if sql {
        format!(r"(?i)create\s+(or\s+replace\s+)?function\s+pipetrak\.{name}\s*\(")
    } else {
        format!(r"\bfn\s+{name}\s*[(<]")
    };
    Regex::new(&pattern).expect("regex").is_match(text)
}

/// Why a name of the "decided by" column isn't where the "file" column says, if it isn't. A Rust
/// path's modules must be one of the files (`domain::weld::status` is `src/domain/weld.rs`; a type
/// between them and the function, `ComponentType::parse`, is not a module).
fn decider_problem(name: &str, files: &[&str]) -> Option<String> {
    if let Some(function) = name.strip_prefix("pipetrak.") {
        let found = files
            .iter()
            .filter(|f| f.ends_with(".sql"))
            .any(|f| read(f).is_some_and(|text| defines(&text, function, true)));
        return (!found).then(|| format!("`{name}` is created in none of {files:?}"));
    }
    let segments: Vec<&str> = name.split("::").collect();
    if segments.len() < 3 || !matches!(segments[0], "domain" | "pg") {
        return Some(format!(
            "`{name}` is neither `pipetrak.name` nor `domain::module::name`"
        ));
    }
    let (function, path) = segments.split_last().expect("segments");
    let modules: Vec<&str> = path
        .iter()
        .copied()
        .take_while(|s| s.starts_with(|c: char| c.is_ascii_lowercase()))
        .collect();
    let module = format!("src/{}", modules.join("/"));
    let Some(file) = [format!("{module}.rs"), format!("{module}/mod.rs")]
        .into_iter()
        .find(|f| files.contains(&f.as_str()))
    else {
        return Some(format!("`{name}` is in {module}.rs, not in {files:?}"));
    };
    let found = read(&file).is_some_and(|text| defines(&text, function, false));
    (!found).then(|| format!("`{name}`: no `fn {function}` in {file}"))
}

/// The references of a "tests" cell, separated by `;`: `` `fn_name` (`file.rs`) `` names a Rust
/// function of that file, `` `pgtap/file.sql` "text" `` a pgTAP file holding that text. Returns
/// them as (file, function or text), and what is left of the cell that is neither.
fn test_references(cell: &str) -> (Vec<(&str, &str)>, String) {
    let reference =
        Regex::new(r#"`([^`]+)` \(`([^`]+\.rs)`\)|`(pgtap/[^`]+\.sql)` "([^"]+)""#).expect("regex");
    let found = reference
        .captures_iter(cell)
        .map(|c| match (c.get(1), c.get(2), c.get(3), c.get(4)) {
            (Some(function), Some(file), ..) => (file.as_str(), function.as_str()),
            (.., Some(file), Some(text)) => (file.as_str(), text.as_str()),
            _ => unreachable!("the regex matches one form or the other"),
        })
        .collect();
    let rest = reference.replace_all(cell, "").replace(';', "");
    (found, rest.trim().to_string())
}

/// Why a test reference doesn't resolve, if it doesn't (SQL doubles the apostrophes of a text).
fn test_problem(file: &str, item: &str) -> Option<String> {
    let Some(source) = read(file) else {
        return Some(format!("no file {file}"));
    };
    if file.ends_with(".rs") {
        (!defines(&source, item, false)).then(|| format!("no `fn {item}` in {file}"))
    } else {
        let found = source.contains(item) || source.contains(&item.replace('\'', "''"));
        (!found).then(|| format!("{file} holds no {item:?}"))
    }
}

fn assert_none(problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "sql/RULES.md is out of date:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_row_has_a_rule_its_deciders_their_files_and_tests() {
    let rows = rows();
    assert!(rows.len() >= 40, "the tables of sql/RULES.md were read");
    let mut problems = Vec::new();
    for row in &rows {
        if row.cells.len() != 4 || row.cells.iter().any(String::is_empty) {
            problems.push(row.at("needs four columns, none empty".into()));
        } else if !(1..=3).contains(&ticked(&row.cells[1]).len()) {
            problems.push(row.at("names one to three deciding functions".into()));
        } else if !(1..=3).contains(&test_references(&row.cells[3]).0.len()) {
            problems.push(row.at("names one to three tests".into()));
        }
    }
    assert_none(problems);
}

#[test]
fn every_deciding_function_is_in_the_file_named() {
    let mut problems = Vec::new();
    for row in rows().iter().filter(|r| r.cells.len() == 4) {
        let files = ticked(&row.cells[2]);
        for file in &files {
            if read(file).is_none() {
                problems.push(row.at(format!("no file {file}")));
            }
        }
        let deciders = ticked(&row.cells[1]);
        for name in &deciders {
            if let Some(problem) = decider_problem(name, &files) {
                problems.push(row.at(problem));
            }
        }
        // And no file is named for nothing.
        for file in &files {
            if deciders
                .iter()
                .all(|name| decider_problem(name, &[file]).is_some())
            {
                problems.push(row.at(format!("{file} holds none of its functions")));
            }
        }
    }
    assert_none(problems);
}

#[test]
fn every_test_named_exists() {
    let mut problems = Vec::new();
    for row in rows().iter().filter(|r| r.cells.len() == 4) {
        let (references, rest) = test_references(&row.cells[3]);
        if !rest.is_empty() {
            problems.push(row.at(format!("can't read the test reference {rest:?}")));
        }
        for (file, item) in references {
            if let Some(problem) = test_problem(file, item) {
                problems.push(row.at(problem));
            }
        }
    }
    assert_none(problems);
}
