//! Writes `sql/98_comments.sql`: a `comment on function` for every internal function, taken from
//! the comment its code already has — the `--` lines right above `create function` in `sql/`, the
//! `///` lines above a `#[pg_extern]` or `#[pg_trigger]` in `src/pg/` — so a DBA's `\df+` says
//! what each does, and the text has one source. Functions `sql/` comments itself (`comment on function` by hand) are
//! left to it. The test command checks the file is current and pgTAP that no function lacks one.
//!
//! Usage: `cargo run --example function_comments > sql/98_comments.sql`

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

/// The comment block ending on the line before `at`: its lines without the markers, joined.
fn comment_above(lines: &[&str], at: usize, marker: &str) -> Option<String> {
    let mut text = Vec::new();
    let mut i = at;
    while i > 0 {
        let line = lines[i - 1].trim();
        let Some(rest) = line.strip_prefix(marker) else {
            break;
        };
        // A section heading (`-- ---- Imports ----`) ends the function's own comment.
        if rest.trim_start().starts_with("----") {
            break;
        }
        text.push(rest.trim().to_string());
        i -= 1;
    }
    text.reverse();
    let joined = text.join(" ").trim().to_string();
    (!joined.is_empty()).then_some(joined)
}

/// The argument list of `create function name(…)` starting at `from`, defaults removed (COMMENT
/// ON takes names and types, not defaults).
fn arguments(sql: &str) -> String {
    let mut depth = 0;
    let mut out = String::new();
    for c in sql.chars() {
        match c {
            '(' => {
                depth += 1;
                if depth == 1 {
                    continue;
                }
            }
            ')' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            _ => {}
        }
        out.push(c);
    }
    out.split(',')
        .map(|a| {
            let a = a.split_whitespace().collect::<Vec<_>>().join(" ");
            let lower = a.to_lowercase();
            match lower.find(" default ").or_else(|| lower.find(" = ")) {
                Some(d) => a[..d].to_string(),
                None => a,
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn main() {
    let mut sql_files: Vec<_> = fs::read_dir("sql")
        .expect("sql/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.ends_with(".sql")
                && name.starts_with(|c: char| c.is_ascii_digit())
                && !name.starts_with("98_")
        })
        .collect();
    sql_files.sort();
    let mut by_hand = BTreeSet::new();
    // name → (argument list, comment) for each definition.
    let mut found: BTreeMap<String, Vec<(String, Option<String>)>> = BTreeMap::new();
    for path in &sql_files {
        let text = fs::read_to_string(path).expect("a sql file");
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start().to_lowercase();
            if let Some(rest) = trimmed.strip_prefix("comment on function pipetrak.") {
                by_hand.insert(rest.split(['(', ' ']).next().unwrap_or("").to_string());
            }
            for prefix in [
                "create function pipetrak.",
                "create or replace function pipetrak.",
            ] {
                if let Some(rest) = trimmed.strip_prefix(prefix) {
                    let name = rest.split('(').next().unwrap_or("").to_string();
                    let at = line.find('(').unwrap_or(0);
                    let tail: String = lines[i..].join("\n");
                    let args = arguments(&tail[at..]);
                    found
                        .entry(name)
                        .or_default()
                        .push((args, comment_above(&lines, i, "--")));
                }
            }
        }
    }
    for path in fs::read_dir("src/pg")
        .expect("src/pg")
        .flatten()
        .map(|e| e.path())
    {
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let text = fs::read_to_string(&path).expect("a rust file");
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let line = line.trim();
            let exported = line.starts_with("#[pg_extern") || line.starts_with("#[pg_trigger");
            if !exported || line.contains("sql = false") {
                continue;
            }
            // The attributes between the doc comment and the function.
            let Some(f) = (i..lines.len()).find(|&j| {
                let l = lines[j].trim_start();
                l.starts_with("pub fn ") || l.starts_with("fn ")
            }) else {
                continue;
            };
            let signature = lines[f].trim_start();
            let name = signature[signature.find("fn ").unwrap_or(0) + 3..]
                .split(['(', '<'])
                .next()
                .unwrap_or("")
                .to_string();
            found
                .entry(name)
                .or_default()
                .push((String::new(), comment_above(&lines, i, "///")));
        }
    }
    println!(
        "-- Generated by `cargo run --example function_comments` from the comments above each function\n\
         -- in sql/ and src/pg/ (do not edit; the test command checks it is current): what each internal\n\
         -- function does, for a DBA's \\df+.\n"
    );
    let mut missing = Vec::new();
    for (name, definitions) in &found {
        if by_hand.contains(name) {
            continue;
        }
        let single = definitions.len() == 1;
        for (args, comment) in definitions {
            let Some(comment) = comment else {
                missing.push(name.clone());
                continue;
            };
            let target = if single {
                format!("pipetrak.{name}")
            } else {
                format!("pipetrak.{name}({args})")
            };
            println!("comment on function {target} is {};", quoted(comment));
        }
    }
    if !missing.is_empty() {
        eprintln!("no comment above: {}", missing.join(", "));
        std::process::exit(1);
    }
}
