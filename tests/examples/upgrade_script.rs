//! Writes the upgrade script from the last release to the current version (run by
//! `tests/scripts/release.sh upgrade`; the test command checks the committed script is current).
//!
//! An upgrade is the release's hand-written state changes (`sql/updates/A--B.sql`: tables, types,
//! indexes, data migrations, and the drops that `create or replace` can't do) followed by every
//! code object of the current install script, re-created: functions (SQL and Rust), views,
//! triggers and policies, comments, and the `do` blocks that create functions. Code is never
//! copied by hand: it comes from the same `sql/` files and Rust functions as a fresh install, in
//! the same order. The script ends by registering tables for pg_dump and granting from the
//! allow-list again.
//!
//! State that needs the new code (an event trigger on a new function, data a new function computes)
//! goes after the line `-- ==== after the code ====` of the state file, and runs after the code.
//!
//! Usage: `cargo run --example upgrade_script -- INSTALL_SCRIPT STATE_CHANGES FROM TO > OUT`

use std::fs;

/// The line of a state file after which its changes run, after the code.
const AFTER_CODE: &str = "-- ==== after the code ====";

/// Splits SQL text into statements, each with the comments and blank lines before it. Knows
/// line and block comments, quoted strings and identifiers, and dollar quotes.
fn statements(sql: &str) -> Vec<String> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < b.len() {
        match b[i] {
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let end = sql[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
                i = end;
                continue;
            }
            b'\'' | b'"' => {
                let quote = b[i];
                // E'…' (backslash escapes) only where the E stands alone: not `date'…'`.
                let escapes = quote == b'\''
                    && i > 0
                    && matches!(b[i - 1], b'E' | b'e')
                    && (i < 2 || !(b[i - 2].is_ascii_alphanumeric() || b[i - 2] == b'_'));
                i += 1;
                while i < b.len() {
                    if escapes && b[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if b[i] == quote {
                        if b.get(i + 1) == Some(&quote) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
            }
            // A dollar quote: $tag$ … $tag$ (a tag is letters, digits and underscores, not
            // starting with a digit), never right after an identifier character ($1, a$b).
            b'$' if i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_') => {
                let tag_end = sql[i + 1..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .map(|e| i + 1 + e);
                if let Some(e) = tag_end.filter(|&e| b[e] == b'$' && !b[i + 1].is_ascii_digit()) {
                    let tag = &sql[i..=e];
                    let close = sql[e + 1..]
                        .find(tag)
                        .map_or(b.len(), |c| e + 1 + c + tag.len());
                    i = close;
                    continue;
                }
            }
            b';' => {
                out.push(sql[start..=i].to_string());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    // A statement must end with `;`: text after the last one would be lost, so it is refused.
    let (_, rest) = head(&sql[start..]);
    if !rest.trim().is_empty() {
        eprintln!("text after the last statement: {}", rest.trim());
        std::process::exit(1);
    }
    out
}

/// The statement without the comments and blank lines before it, lowercased words collapsed.
fn head(statement: &str) -> (String, &str) {
    let mut body = statement;
    loop {
        let trimmed = body.trim_start();
        if let Some(rest) = trimmed.strip_prefix("--") {
            body = rest.find('\n').map_or("", |n| &rest[n..]);
        } else if let Some(rest) = trimmed.strip_prefix("/*") {
            body = rest.find("*/").map_or("", |n| &rest[n + 2..]);
        } else {
            body = trimmed;
            break;
        }
    }
    let words: Vec<String> = body
        .split_whitespace()
        .take(6)
        .map(str::to_lowercase)
        .collect();
    (words.join(" "), body)
}

/// The statement as it belongs in an upgrade, or None when it is state (written by hand).
fn as_code(statement: &str) -> Option<String> {
    let (words, body) = head(statement);
    let lead = &statement[..statement.len() - body.len()];
    let replace_with = |what: &str| -> String {
        // Drops the words up to and including `what`, then says create or replace.
        let at = body.to_lowercase().find(what).unwrap_or(0) + what.len();
        format!("{lead}create or replace {}{}", what.trim(), &body[at..])
    };
    if words.starts_with("create function") || words.starts_with("create or replace function") {
        Some(replace_with("function"))
    } else if words.starts_with("create procedure")
        || words.starts_with("create or replace procedure")
    {
        Some(replace_with("procedure"))
    } else if words.starts_with("create constraint trigger") {
        // create constraint trigger NAME after … on TABLE: no "or replace" for those.
        let lower = body.to_lowercase();
        let name = body.split_whitespace().nth(3)?;
        let on = lower.find(" on ")?;
        let table = body[on + 4..].split_whitespace().next()?;
        Some(format!(
            "{lead}drop trigger if exists {name} on {table};\n{body}"
        ))
    } else if words.starts_with("create view") || words.starts_with("create or replace view") {
        Some(replace_with("view"))
    } else if words.starts_with("create trigger") || words.starts_with("create or replace trigger")
    {
        Some(replace_with("trigger"))
    } else if words.starts_with("create policy") {
        // create policy NAME on TABLE …: no "or replace" for policies.
        let mut parts = body.split_whitespace().skip(2);
        let (name, on, table) = (parts.next()?, parts.next()?, parts.next()?);
        Some(format!(
            "{lead}drop policy if exists {name} {on} {table};\n{body}"
        ))
    } else if words.starts_with("comment on")
        || ((words.starts_with("do ") || words.starts_with("do$"))
            && body.to_lowercase().contains("create or replace function"))
    {
        Some(statement.to_string())
    } else {
        None
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, install, state, from, to] = args.as_slice() else {
        eprintln!("usage: upgrade_script INSTALL_SCRIPT STATE_CHANGES FROM TO");
        std::process::exit(2);
    };
    let install = fs::read_to_string(install).unwrap_or_else(|e| panic!("{install}: {e}"));
    let state = fs::read_to_string(state).unwrap_or_else(|e| panic!("{state}: {e}"));
    let code: Vec<String> = statements(&install)
        .iter()
        .filter_map(|s| as_code(s))
        .collect();
    println!(
        "-- pipetrak {from} → {to}, generated by tests/scripts/release.sh from sql/updates/{from}--{to}.sql\n\
         -- (the state changes, written by hand) and every code object of the {to} install script.\n\
         -- Do not edit: change sql/ or the state changes and generate it again.\n\
         \\echo Use \"ALTER EXTENSION pipetrak UPDATE TO '{to}'\" to load this file. \\quit\n"
    );
    // State that needs the new code (a trigger on a new function, data computed by one) follows
    // the marker line in the state file, and the code.
    let (before, after) = state.split_once(AFTER_CODE).unwrap_or((&state, ""));
    println!("-- ==== State changes (sql/updates/{from}--{to}.sql) ====\n");
    println!("{}\n", before.trim_end());
    println!("-- ==== Code, as a fresh {to} install creates it ====");
    for statement in &code {
        println!("{}", statement.trim_end_matches(char::is_whitespace));
    }
    if !after.trim().is_empty() {
        println!("\n-- ==== State changes that need the code (sql/updates/{from}--{to}.sql) ====");
        println!("{}", after.trim_end());
    }
    println!(
        "\n-- Every upgrade ends here: the API views' columns described again (sql/97_column_comments.sql),\n\
         -- new tables and sequences registered for pg_dump, privileges from the allow-list granted again\n\
         -- (a new internal function stays private unless listed).\n\
         select pipetrak.describe_api_columns();\n\
         select pipetrak.register_dump_tables();\n\
         select pipetrak.grant_privileges();"
    );
}
