//! What the live-server tests share: a connection to the test database (PIPETRAK_TEST_URL) and
//! requests made the way PostgREST makes them — one transaction per request, `set local role
//! authenticated`, the JWT claims in `request.jwt.claims`.

#![allow(dead_code)]

use postgres::{Client, NoTls};
use serde_json::Value;

pub fn connect() -> Client {
    let url =
        std::env::var("PIPETRAK_TEST_URL").expect("PIPETRAK_TEST_URL names the test database");
    Client::connect(&url, NoTls).expect("connect to the test database")
}

/// One HTTP request's worth of work: a transaction as `user`, returning the first column as JSON text.
pub fn request(client: &mut Client, user: &str, sql: &str) -> Result<Value, postgres::Error> {
    let mut tx = client.transaction()?;
    tx.batch_execute("set local role authenticated")?;
    let claims = serde_json::json!({"sub": user, "role": "authenticated", "email": format!("{user}@example.com")});
    tx.execute(
        "select set_config('request.jwt.claims', $1, true)",
        &[&claims.to_string()],
    )?;
    let row = tx.query_one(&format!("select to_jsonb(r)::text from ({sql}) r"), &[])?;
    tx.commit()?;
    let text: String = row.get(0);
    let value: Value = serde_json::from_str(&text).expect("json");
    // A one-column row comes back as {"column": value}: unwrap it.
    Ok(match value {
        Value::Object(map) if map.len() == 1 => map
            .into_iter()
            .next()
            .map(|(_, v)| v)
            .unwrap_or(Value::Null),
        other => other,
    })
}

pub fn ok(client: &mut Client, user: &str, sql: &str) -> Value {
    request(client, user, sql).unwrap_or_else(|e| panic!("{sql}: {e:?}"))
}

pub fn id(v: &Value) -> i64 {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .expect("an id")
}

pub fn num(v: &Value) -> f64 {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("a number: {v}"))
}

/// The SQLSTATE and message of a failed statement.
pub fn sql_error(e: &postgres::Error) -> (String, String) {
    let db = e.as_db_error().expect("a database error");
    (db.code().code().to_string(), db.message().to_string())
}

/// A user id unique to this test process, its role tag and `n`.
pub fn user(tag: &str, n: u32) -> String {
    let pid = std::process::id();
    format!(
        "{:08x}-0000-4000-8000-{:06x}{:06x}",
        pid,
        tag.len() as u32 * 1000 + n,
        n
    )
}

/// Uploads `bytes` as `owner`, as PostgREST would send a file; the import id, or the SQLSTATE
/// and message the upload failed with.
pub fn upload_file(
    c: &mut Client,
    owner: &str,
    project: i64,
    kind: &str,
    bytes: &[u8],
) -> Result<i64, (String, String)> {
    let mut tx = c.transaction().expect("transaction");
    tx.batch_execute("set local role authenticated")
        .expect("role");
    let claims = serde_json::json!({"sub": owner, "role": "authenticated"});
    tx.execute(
        "select set_config('request.jwt.claims', $1, true)",
        &[&claims.to_string()],
    )
    .expect("claims");
    let result = tx.query_one(
        &format!("select pipetrak_api.import_upload(project_id => {project}, kind => '{kind}', filename => 'field file', content => $1)"),
        &[&bytes],
    );
    match result {
        Ok(row) => {
            tx.commit().expect("commit");
            Ok(row.get(0))
        }
        Err(e) => Err(sql_error(&e)),
    }
}

pub fn validate(c: &mut Client, owner: &str, import: i64) -> Value {
    ok(
        c,
        owner,
        &format!("select pipetrak_api.import_validate(import_id => {import})"),
    )
}

pub fn commit(
    c: &mut Client,
    owner: &str,
    import: i64,
    skip_invalid: bool,
) -> Result<Value, (String, String)> {
    request(c, owner, &format!("select pipetrak_api.import_commit(import_id => {import}, skip_invalid_rows => {skip_invalid})"))
        .map_err(|e| sql_error(&e))
}

/// The postmaster's log (`PIPETRAK_SERVER_LOG`), read from where it stood when it was opened.
pub struct ServerLog {
    path: String,
    from: u64,
}

impl ServerLog {
    pub fn open() -> ServerLog {
        let path = std::env::var("PIPETRAK_SERVER_LOG")
            .expect("PIPETRAK_SERVER_LOG names the server's log file");
        let from = std::fs::metadata(&path).map_or(0, |m| m.len());
        ServerLog { path, from }
    }

    /// What the server logged since it was opened.
    pub fn since(&self) -> String {
        use std::io::{Read, Seek};
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(&self.path) {
            if file.seek(std::io::SeekFrom::Start(self.from)).is_ok() {
                let _ = file.read_to_string(&mut text);
            }
        }
        text
    }

    /// A line written since it was opened that says a backend was terminated by a signal.
    pub fn signal_since(&self) -> Option<String> {
        self.since()
            .lines()
            .find(|l| l.contains("terminated by signal") || l.contains("was terminated by"))
            .map(str::to_string)
    }
}
