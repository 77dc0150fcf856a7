//! Client tests against a live server with the extension installed, calling the API the way
//! PostgREST does: one transaction per request, `set local role authenticated`, the JWT claims in
//! `request.jwt.claims`. Run by `tests/scripts/test.sh`, which creates a throwaway database and sets
//! PIPETRAK_TEST_URL; plain `cargo test` skips them (they are `#[ignore]`).
//!
//! The tests are grouped by concern in the modules below; what more than one group uses is here.

#[path = "../common/mod.rs"]
mod common;

mod events;
mod field;
mod imports;
mod operating;
mod welds;

use common::*;
use postgres::Client;

/// A fresh organization and project owned by `owner`, with a foreman and a viewer; unique per call.
struct Site {
    project: i64,
    owner: String,
    foreman: String,
    viewer: String,
}

fn site(client: &mut Client, name: &str, n: u32) -> Site {
    let owner = user("owner", n);
    let foreman = user("foreman", n);
    let viewer = user("viewer", n);
    let org = id(&ok(
        client,
        &owner,
        &format!("select pipetrak_api.create_organization(name => '{name}')"),
    ));
    // Seated directly, as if they had accepted invitations (add_member only adds people who
    // already share an organization with the one adding them).
    for (u, role) in [(&foreman, "foreman"), (&viewer, "viewer")] {
        client
            .execute(&format!("insert into pipetrak.memberships (organization_id, user_id, role, created_by) values ({org}, '{u}', '{role}', '{owner}')"), &[])
            .expect("seat a member");
    }
    let project = id(&ok(
        client,
        &owner,
        &format!("select pipetrak_api.create_project(organization_id => {org}, name => '{name}', job_number => 'J-{n}', time_zone => 'America/Chicago')"),
    ));
    Site {
        project,
        owner,
        foreman,
        viewer,
    }
}

/// A generated takeoff: `rows` supports, 1,000 rows to a drawing (so each chunk has its own drawings).
fn big_takeoff(rows: u32) -> String {
    let mut text = String::from("DRAWING,TYPE,QTY,CMDTY CODE,SIZE\n");
    for i in 0..rows {
        text.push_str(&format!("BIG-{},Support,1,S-{i},2\n", i / 1000));
    }
    text
}

/// Uploads and validates `text` as a takeoff into `project`; returns the import id.
fn upload_validated(c: &mut Client, owner: &str, project: i64, text: &str) -> i64 {
    let import = id(&ok(c, owner, &format!(
        "select pipetrak_api.import_upload(project_id => {project}, kind => 'takeoff', filename => 'big.csv', content => convert_to($csv${text}$csv$, 'UTF8'))")));
    ok(
        c,
        owner,
        &format!("select pipetrak_api.import_validate(import_id => {import})"),
    );
    import
}

/// Starts a request as `user` and leaves its transaction open: the caller commits it.
fn begin_as<'a>(client: &'a mut Client, user: &str) -> postgres::Transaction<'a> {
    let mut tx = client.transaction().expect("transaction");
    tx.batch_execute("set local role authenticated")
        .expect("role");
    let claims = serde_json::json!({"sub": user, "role": "authenticated"}).to_string();
    tx.execute(
        "select set_config('request.jwt.claims', $1, true)",
        &[&claims],
    )
    .expect("claims");
    tx
}
