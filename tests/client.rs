//! Client tests against a live server with the extension installed, calling the API the way
//! PostgREST does: one transaction per request, `set local role authenticated`, the JWT claims in
//! `request.jwt.claims`. Run by `tests/scripts/test.sh`, which creates a throwaway database and sets
//! PIPETRAK_TEST_URL; plain `cargo test` skips them (they are `#[ignore]`).

mod common;

use common::*;
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, NoTls};
use serde_json::Value;
use std::thread;
use std::time::Duration;

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

#[test]
#[ignore = "needs a live server: run tests/scripts/test.sh"]
fn a_foremans_day_rolls_up_everywhere() {
    let mut c = connect();
    let s = site(&mut c, "Day", 1);
    let p = s.project;
    let pm = &s.owner;
    let area = id(&ok(
        &mut c,
        pm,
        &format!("select pipetrak_api.create_area(project_id => {p}, name => 'Unit 1')"),
    ));
    let system = id(&ok(
        &mut c,
        pm,
        &format!("select pipetrak_api.create_system(project_id => {p}, name => 'Steam')"),
    ));
    let package = id(&ok(
        &mut c,
        pm,
        &format!("select pipetrak_api.create_test_package(project_id => {p}, name => 'TP-1')"),
    ));
    let d1 = id(&ok(&mut c, pm, &format!(
        "select pipetrak_api.create_drawing(project_id => {p}, drawing_no => 'P-1 01of02', area_id => {area}, system_id => {system}, test_package_id => {package})")));
    let d2 = id(&ok(
        &mut c,
        pm,
        &format!("select pipetrak_api.create_drawing(project_id => {p}, drawing_no => 'P-2')"),
    ));
    // Drawing 1: 2 valves and one spool. Drawing 2: 100 ft of pipe.
    let valves = ok(&mut c, pm, &format!(
        "select pipetrak_api.create_component(project_id => {p}, drawing_id => {d1}, component_type => 'Valves', tag => 'gv-1', size => '2\"', quantity => 2)"));
    let valves: Vec<i64> = valves["created"]
        .as_array()
        .expect("ids")
        .iter()
        .map(id)
        .collect();
    assert_eq!(valves.len(), 2, "quantity 2 makes two valves");
    let spool = id(&ok(&mut c, pm, &format!(
        "select pipetrak_api.create_component(project_id => {p}, drawing_id => {d1}, component_type => 'spool', tag => 'SP-1') -> 'created' -> 0")));
    let pipe = id(&ok(&mut c, pm, &format!(
        "select pipetrak_api.create_component(project_id => {p}, drawing_id => {d2}, component_type => 'pipe', tag => 'CS-1', size => '6', quantity => 100) -> 'created' -> 0")));

    // The viewer can't work.
    let refused = request(&mut c, &s.viewer, &format!(
        "select pipetrak_api.update_milestone(component_id => {}, milestone => 'Receive', value => 100)", valves[0]));
    assert_eq!(
        refused.unwrap_err().code().map(|s| s.code().to_string()),
        Some("42501".into())
    );

    // The foreman's day, one request per tap.
    let f = &s.foreman;
    for (component, milestone, value) in [
        (valves[0], "Receive", 100.0),
        (valves[0], "Install", 100.0),
        (valves[1], "Receive", 100.0),
        (spool, "Receive", 100.0),
        (spool, "Erect", 100.0),
        (pipe, "Receive", 100.0),
        (pipe, "Erect", 37.5),
    ] {
        ok(&mut c, f, &format!("select pipetrak_api.update_milestone(component_id => {component}, milestone => '{milestone}', value => {value})"));
    }
    let pct = |c: &mut Client, component: i64| {
        num(&ok(
            c,
            f,
            &format!("select percent_complete from pipetrak_api.components where id = {component}"),
        ))
    };
    assert_eq!(pct(&mut c, valves[0]), 70.0);
    assert_eq!(pct(&mut c, valves[1]), 10.0);
    assert_eq!(pct(&mut c, spool), 45.0);
    assert_eq!(pct(&mut c, pipe), 16.25); // 5 + 30 × 0.375

    // Drawing 1: (70 + 10 + 45) / 3 = 41.67; received: (10 + 10 + 5) / 25 = 100 %.
    let d = ok(
        &mut c,
        f,
        &format!("select r from pipetrak_api.drawing_progress r where drawing_id = {d1}"),
    );
    assert_eq!(id(&d["component_count"]), 3);
    assert_eq!(num(&d["percent_complete"]), 41.67);
    assert_eq!(num(&d["received_percent"]), 100.0);
    // Installed: valve 60 of 120 possible (2 × 60) + spool 40 of 80 → 100 / 200 = 50 %.
    assert_eq!(num(&d["installed_percent"]), 50.0);
    for view in ["area_progress", "system_progress", "test_package_progress"] {
        let key = match view {
            "area_progress" => area,
            "system_progress" => system,
            _ => package,
        };
        let column = view.trim_end_matches("_progress");
        let r = ok(&mut c, f, &format!("select r from pipetrak_api.{view} r where project_id = {p} and {column}_id = {key}"));
        assert_eq!(num(&r["percent_complete"]), 41.67, "{view}");
    }
    // Project: (70 + 10 + 45 + 16.25) / 4 = 35.31.
    let r = ok(
        &mut c,
        f,
        &format!("select r from pipetrak_api.project_progress r where project_id = {p}"),
    );
    assert_eq!(id(&r["component_count"]), 4);
    assert_eq!(num(&r["percent_complete"]), 35.31);
    // Unassigned drawing 2 shows up under area NULL.
    let r = ok(
        &mut c,
        f,
        &format!(
            "select r from pipetrak_api.area_progress r where project_id = {p} and area_id is null"
        ),
    );
    assert_eq!(num(&r["percent_complete"]), 16.25);
    // The day's events are all there, attributed to the foreman.
    let n = ok(&mut c, f, &format!("select count(*) from pipetrak_api.milestone_events where project_id = {p} and user_id = '{f}'"));
    assert_eq!(id(&n), 7);
}

#[test]
#[ignore = "needs a live server: run tests/scripts/test.sh"]
fn a_stranger_holding_advisory_locks_stalls_no_project() {
    // The attack: another organization's owner holds, in a session of their own, the advisory
    // lock the snapshot taker once used for this project (ids are small integers: one session
    // could hold every project's key). The project's first write after a week locks takes the
    // week's snapshot and must not wait for them.
    let mut c = connect();
    let s = site(&mut c, "Snapshot lock", 330);
    let stranger = site(&mut c, "Stranger", 331);
    let valve = id(&ok(&mut c, &s.owner, &format!(
        "select (pipetrak_api.create_component(project_id => {p}, drawing_id => pipetrak_api.create_drawing(project_id => {p}, drawing_no => 'SL-1'), component_type => 'valve', tag => 'V-1', size => '2') -> 'created' ->> 0)::bigint",
        p = s.project
    )));
    c.execute(
        "delete from pipetrak.weekly_snapshots where project_id = $1",
        &[&s.project],
    )
    .expect("weeks");
    c.execute(
        "delete from pipetrak.snapshot_weeks where project_id = $1",
        &[&s.project],
    )
    .expect("weeks");
    let mut attacker = connect();
    attacker
        .batch_execute("set role authenticated")
        .expect("role");
    attacker
        .execute(
            "select set_config('request.jwt.claims', $1, false)",
            &[&serde_json::json!({"sub": stranger.owner, "role": "authenticated"}).to_string()],
        )
        .expect("claims");
    attacker
        .execute(
            "select pg_advisory_lock(hashtext('pipetrak.snapshots'), $1::int)",
            &[&(s.project as i32)],
        )
        .expect("any session may take an advisory lock");
    c.batch_execute("set lock_timeout = '3s'").expect("timeout");
    let written = request(&mut c, &s.foreman, &format!(
        "select pipetrak_api.update_milestone(component_id => {valve}, milestone => 'Receive', value => 100) ->> 'percent_complete'"));
    c.batch_execute("reset lock_timeout").expect("timeout");
    assert!(
        written.is_ok(),
        "the foreman's write waited for the stranger's lock: {written:?}"
    );
    let taken: i64 = c
        .query_one(
            "select count(*) from pipetrak.snapshot_weeks where project_id = $1",
            &[&s.project],
        )
        .expect("weeks")
        .get(0);
    assert_eq!(taken, 1, "and it took the locked week's snapshot");
}

#[test]
#[ignore = "needs a live server: run tests/scripts/test.sh"]
fn concurrent_foremen_lose_no_update() {
    const WRITERS: usize = 8;
    const PER_WRITER: usize = 40;
    let mut c = connect();
    let s = site(&mut c, "Busy", 2);
    let p = s.project;
    let drawing = id(&ok(
        &mut c,
        &s.owner,
        &format!("select pipetrak_api.create_drawing(project_id => {p}, drawing_no => 'HOT-1')"),
    ));
    let created = ok(&mut c, &s.owner, &format!(
        "select pipetrak_api.create_component(project_id => {p}, drawing_id => {drawing}, component_type => 'support', tag => 'S', quantity => {})",
        WRITERS * PER_WRITER));
    let ids: Vec<i64> = created["created"]
        .as_array()
        .expect("ids")
        .iter()
        .map(id)
        .collect();
    let shared = ids[0];

    // Every writer receives its own components and also hammers one shared component.
    let handles: Vec<_> = (0..WRITERS)
        .map(|w| {
            let mine: Vec<i64> = ids[w * PER_WRITER..(w + 1) * PER_WRITER].to_vec();
            let foreman = s.foreman.clone();
            thread::spawn(move || {
                let mut c = connect();
                for (i, component) in mine.iter().enumerate() {
                    ok(&mut c, &foreman, &format!("select pipetrak_api.update_milestone(component_id => {component}, milestone => 'Receive', value => 100)"));
                    let value = if i % 2 == 0 { 100 } else { 0 };
                    ok(&mut c, &foreman, &format!("select pipetrak_api.update_milestone(component_id => {shared}, milestone => 'Install', value => {value}, note => 'w{w}')"));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("writer thread");
    }

    let f = &s.foreman;
    let received = ok(&mut c, f, &format!("select count(*) from pipetrak_api.components where project_id = {p} and milestones ->> 'Receive' = '100.00'"));
    assert_eq!(
        id(&received),
        (WRITERS * PER_WRITER) as i64,
        "every receive landed"
    );
    let events = ok(&mut c, f, &format!("select count(*) from pipetrak_api.milestone_events where component_id = {shared} and milestone = 'Install'"));
    assert_eq!(
        id(&events),
        (WRITERS * PER_WRITER) as i64,
        "every update of the shared component is in the log"
    );
    let version = ok(
        &mut c,
        f,
        &format!("select version from pipetrak_api.components where id = {shared}"),
    );
    assert_eq!(
        id(&version),
        1 + 1 + (WRITERS * PER_WRITER) as i64,
        "versions count every write"
    );

    // The maintained rollup equals a recomputation from the components.
    let maintained = ok(
        &mut c,
        f,
        &format!("select r from pipetrak_api.project_progress r where project_id = {p}"),
    );
    let recomputed = ok(&mut c, f, &format!(
        "select jsonb_build_object('n', count(*), 'pct', round(avg(percent_complete), 2), 'done', count(*) filter (where percent_complete = 100))
         from pipetrak_api.components where project_id = {p} and retired_at is null"));
    assert_eq!(id(&maintained["component_count"]), id(&recomputed["n"]));
    assert_eq!(
        num(&maintained["percent_complete"]),
        num(&recomputed["pct"])
    );
    assert_eq!(id(&maintained["completed_count"]), id(&recomputed["done"]));
    let parts = ok(&mut c, f, &format!(
        "select (select sum(earned_total) from pipetrak.progress_parts where project_id = {p}) = (select sum(earned_total) from pipetrak.components where project_id = {p})"));
    assert_eq!(
        parts,
        Value::Bool(true),
        "earned credit in the parts equals the components'"
    );
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

/// Polls until backend `pid` satisfies `condition` (over its `pg_stat_activity` row), for at most
/// 15 s.
fn wait_for_backend(c: &mut Client, pid: i32, condition: &str, never: &str) {
    let sql = format!(
        "select coalesce((select {condition} from pg_stat_activity where pid = $1), false)"
    );
    for _ in 0..3000 {
        let ready: bool = c.query_one(sql.as_str(), &[&pid]).expect("activity").get(0);
        if ready {
            return;
        }
        thread::sleep(std::time::Duration::from_millis(5));
    }
    panic!("{never}");
}

/// What an import left in a project: every live component's identity, and the rollup count.
fn project_state(c: &mut Client, project: i64) -> (Vec<String>, i64) {
    let rows = c
        .query(
            "select d.drawing_key || '|' || c.tag || '|' || c.size || '|' || c.seq from pipetrak.components c
             join pipetrak.drawings d on d.id = c.drawing_id where c.project_id = $1 and c.retired_at is null order by 1",
            &[&project],
        )
        .expect("components");
    let rollup: i64 = c
        .query_one("select coalesce(sum(component_count), 0)::bigint from pipetrak.progress_parts where project_id = $1", &[&project])
        .expect("rollup")
        .get(0);
    (rows.iter().map(|r| r.get(0)).collect(), rollup)
}

#[test]
#[ignore = "needs a live server: run tests/scripts/test.sh"]
fn a_killed_commit_resumes_to_the_same_end_state() {
    let mut c = connect();
    let text = big_takeoff(12_000);

    // Uninterrupted, through CALL: one transaction per chunk.
    let calm = site(&mut c, "Calm", 20);
    let calm_import = upload_validated(&mut c, &calm.owner, calm.project, &text);
    let mut worker = connect();
    worker
        .batch_execute("set role authenticated")
        .expect("role");
    let claims = serde_json::json!({"sub": calm.owner, "role": "authenticated"}).to_string();
    worker
        .execute(
            "select set_config('request.jwt.claims', $1, false)",
            &[&claims],
        )
        .expect("claims");
    worker
        .batch_execute(&format!(
            "call pipetrak_api.import_commit_chunked(import_id => {calm_import})"
        ))
        .expect("call");

    // Interrupted: chunk 1 commits; chunk 2 is killed while it waits on a drawing it needs (BIG-7,
    // which another transaction is inserting); then the commit is called again.
    let storm = site(&mut c, "Storm", 21);
    let storm_import = upload_validated(&mut c, &storm.owner, storm.project, &text);
    ok(
        &mut c,
        &storm.owner,
        &format!("select pipetrak_api.import_commit(import_id => {storm_import}, max_chunks => 1)"),
    );
    let mut blocker = connect();
    let mut hold = blocker.transaction().expect("transaction");
    hold.execute(
        "insert into pipetrak.drawings (project_id, drawing_no) values ($1, 'BIG-7')",
        &[&storm.project],
    )
    .expect("hold BIG-7");

    let owner = storm.owner.clone();
    let (pid_tx, pid_rx) = std::sync::mpsc::channel();
    let victim = thread::spawn(move || {
        let mut w = connect();
        let pid: i32 = w
            .query_one("select pg_backend_pid()", &[])
            .expect("pid")
            .get(0);
        pid_tx.send(pid).expect("send pid");
        w.batch_execute("set role authenticated").expect("role");
        let claims = serde_json::json!({"sub": owner, "role": "authenticated"}).to_string();
        w.execute(
            "select set_config('request.jwt.claims', $1, false)",
            &[&claims],
        )
        .expect("claims");
        w.batch_execute(&format!(
            "call pipetrak_api.import_commit_chunked(import_id => {storm_import})"
        ))
    });
    let pid = pid_rx.recv().expect("victim pid");
    // Wait until the victim is stuck inside chunk 2, then kill its backend.
    wait_for_backend(
        &mut c,
        pid,
        "wait_event_type = 'Lock'",
        "the victim never reached chunk 2",
    );
    let killed: bool = c
        .query_one("select pg_terminate_backend($1)", &[&pid])
        .expect("terminate")
        .get(0);
    assert!(killed);
    assert!(
        victim.join().expect("victim thread").is_err(),
        "the killed CALL fails"
    );
    hold.rollback().expect("release BIG-7");

    let job: (String, i32) = {
        let r = c
            .query_one(
                "select status, chunks_done from pipetrak.import_jobs where id = $1",
                &[&storm_import],
            )
            .expect("job");
        (r.get(0), r.get(1))
    };
    assert_eq!(
        job,
        ("committing".to_string(), 1),
        "the killed chunk left no trace; chunk 1 stays committed"
    );
    let result = ok(
        &mut c,
        &storm.owner,
        &format!("select pipetrak_api.import_commit(import_id => {storm_import})"),
    );
    assert_eq!(result["status"], "committed");
    assert_eq!(result["components_created"], 12_000);

    let (calm_state, calm_rollup) = project_state(&mut c, calm.project);
    let (storm_state, storm_rollup) = project_state(&mut c, storm.project);
    assert_eq!(calm_state.len(), 12_000);
    assert_eq!(
        storm_state, calm_state,
        "same components, no duplicates, none lost"
    );
    assert_eq!(
        (storm_rollup, calm_rollup),
        (12_000, 12_000),
        "rollups count every component once"
    );
}

#[test]
#[ignore = "needs a live server: run tests/scripts/test.sh"]
fn a_cancelled_validation_leaves_the_job_as_it_was() {
    let mut c = connect();
    let site = site(&mut c, "Cancel", 22);
    let import = upload_validated(&mut c, &site.owner, site.project, &big_takeoff(60_000));
    let state = |c: &mut Client| -> (String, i64) {
        let r = c
            .query_one(
                "select summary::text, (select count(*) from pipetrak.import_rows where import_id = $1) from pipetrak.import_jobs where id = $1",
                &[&import],
            )
            .expect("job");
        (r.get(0), r.get(1))
    };
    let before = state(&mut c);
    assert_eq!(before.1, 60_000);

    // Validating again, cancelled by a statement timeout while the file is being read and staged
    // (reading runs on a second thread; the cancel must still reach the backend and stop both).
    let cancelled = {
        let mut tx = c.transaction().expect("transaction");
        tx.batch_execute("set local role authenticated; set local statement_timeout = '150ms'")
            .expect("settings");
        let claims = serde_json::json!({"sub": site.owner, "role": "authenticated"}).to_string();
        tx.execute(
            "select set_config('request.jwt.claims', $1, true)",
            &[&claims],
        )
        .expect("claims");
        let outcome = tx.batch_execute(&format!(
            "select pipetrak_api.import_validate(import_id => {import})"
        ));
        let _ = tx.rollback();
        outcome
    };
    let code = cancelled
        .expect_err("the timeout cancels the validation")
        .code()
        .cloned();
    assert_eq!(code, Some(postgres::error::SqlState::QUERY_CANCELED));
    assert_eq!(
        state(&mut c),
        before,
        "the job keeps its report and its staged rows"
    );

    // The same connection validates it again to the same report.
    ok(
        &mut c,
        &site.owner,
        &format!("select pipetrak_api.import_validate(import_id => {import})"),
    );
    assert_eq!(state(&mut c), before);
}

#[test]
#[ignore = "needs a live server: run tests/scripts/test.sh"]
fn a_terminated_validation_disturbs_no_one_else() {
    let mut c = connect();
    let site = site(&mut c, "Terminate", 23);
    let import = upload_validated(&mut c, &site.owner, site.project, &big_takeoff(60_000));
    let before: String = c
        .query_one(
            "select summary::text from pipetrak.import_jobs where id = $1",
            &[&import],
        )
        .expect("job")
        .get(0);

    // Validate again on another connection and terminate its backend while the file is being read
    // (on the second thread): the backend exits mid-read.
    let owner = site.owner.clone();
    let (pid_tx, pid_rx) = std::sync::mpsc::channel();
    let victim = thread::spawn(move || {
        let mut w = connect();
        let pid: i32 = w
            .query_one("select pg_backend_pid()", &[])
            .expect("pid")
            .get(0);
        pid_tx.send(pid).expect("send pid");
        request(
            &mut w,
            &owner,
            &format!("select pipetrak_api.import_validate(import_id => {import})"),
        )
    });
    let pid = pid_rx.recv().expect("victim pid");
    wait_for_backend(
        &mut c,
        pid,
        "query like '%import_validate%'",
        "the validation never started",
    );
    thread::sleep(std::time::Duration::from_millis(50));
    let terminated: bool = c
        .query_one("select pg_terminate_backend($1)", &[&pid])
        .expect("terminate")
        .get(0);
    assert!(terminated);
    assert!(
        victim.join().expect("victim thread").is_err(),
        "the terminated request fails"
    );

    // This connection survived (a crashing backend would have made the server drop every session),
    // and the job is as it was.
    let after: String = c
        .query_one(
            "select summary::text from pipetrak.import_jobs where id = $1",
            &[&import],
        )
        .expect("the other session is still connected")
        .get(0);
    assert_eq!(after, before);
    ok(
        &mut c,
        &site.owner,
        &format!("select pipetrak_api.import_validate(import_id => {import})"),
    );
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

#[test]
#[ignore = "needs a live server: run tests/scripts/test.sh"]
fn two_owners_demoting_each_other_at_once_leave_an_owner() {
    let mut c = connect();
    for round in 0..5 {
        let site = site(&mut c, "Owners", 40 + round);
        let org = id(&ok(
            &mut c,
            &site.owner,
            &format!(
                "select organization_id from pipetrak_api.projects where id = {}",
                site.project
            ),
        ));
        let second = user("second_owner", 40 + round);
        c.execute(&format!("insert into pipetrak.memberships (organization_id, user_id, role, created_by) values ({org}, '{second}', 'owner', '{}')", site.owner), &[])
            .expect("seat a second owner");

        // Each owner demotes the other in a request of their own; both try to commit together.
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let demote = |me: String, other: String, barrier: std::sync::Arc<std::sync::Barrier>| {
            thread::spawn(move || {
                let mut client = connect();
                let mut tx = begin_as(&mut client, &me);
                barrier.wait();
                let outcome = tx
                    .batch_execute(&format!("select pipetrak_api.change_member_role(organization_id => {org}, user_id => '{other}', role => 'admin')"))
                    .and_then(|()| tx.commit());
                outcome.map_err(|e| e.code().map(|c| c.code().to_string()))
            })
        };
        let first = demote(site.owner.clone(), second.clone(), barrier.clone());
        let other = demote(second.clone(), site.owner.clone(), barrier);
        let outcomes = [first.join().expect("first"), other.join().expect("second")];
        let owners: i64 = c
            .query_one("select count(*) from pipetrak.memberships where organization_id = $1 and role = 'owner'", &[&org])
            .expect("owners")
            .get(0);
        assert_eq!(owners, 1, "round {round}: {outcomes:?}");
        assert_eq!(
            outcomes.iter().filter(|o| o.is_ok()).count(),
            1,
            "round {round}: exactly one demotion wins: {outcomes:?}"
        );
        for failed in outcomes.iter().filter_map(|o| o.as_ref().err()) {
            assert!(
                matches!(failed.as_deref(), Some("PT403" | "PT409")),
                "a catalogued refusal: {failed:?}"
            );
        }
    }
}

#[test]
#[ignore = "needs a live server: run tests/scripts/test.sh"]
fn events_reach_members_only_and_forgeries_are_told_apart() {
    let mut c = connect();
    let site = site(&mut c, "Events", 50);
    let channel = ok(
        &mut c,
        &site.viewer,
        &format!(
            "select pipetrak_api.project_channel(project_id => {})",
            site.project
        ),
    );
    let channel = channel.as_str().expect("a channel name").to_string();

    // A member listens on the channel; an outsider listens where the old channel was.
    let mut member = connect();
    member
        .batch_execute(&format!("listen {channel}"))
        .expect("listen");
    let mut outsider = connect();
    outsider
        .batch_execute(&format!("listen pipetrak_project_{}", site.project))
        .expect("listen");

    let import = upload_validated(&mut c, &site.owner, site.project, &big_takeoff(10));
    ok(
        &mut c,
        &site.owner,
        &format!("select pipetrak_api.import_commit(import_id => {import})"),
    );
    // Anyone who learns the channel can send into it.
    c.execute("select pg_notify($1, $2)", &[&channel, &format!(r#"{{"event": {{"kind": "import_progress", "project_id": {}, "import_id": 1}}, "sig": "00"}}"#, site.project)])
        .expect("forge");

    let received: Vec<String> = member
        .notifications()
        .timeout_iter(Duration::from_secs(2))
        .iterator()
        .filter_map(Result::ok)
        .map(|n| n.payload().to_string())
        .collect();
    // The upload, the validation and the commit each announce the import; the commit also says
    // how its chunk went; the forgery comes last.
    let genuine: Vec<bool> = received
        .iter()
        .map(|payload| is_genuine(&mut c, &site, payload))
        .collect();
    let (forgery, sent) = genuine.split_last().expect("notifications");
    assert!(
        !forgery && sent.len() >= 4 && sent.iter().all(|&g| g),
        "pipetrak's events are genuine, the forgery is not: {received:?}"
    );
    let events: Vec<Value> = received[..sent.len()]
        .iter()
        .map(|payload| serde_json::from_str(payload).expect("json"))
        .collect();
    assert!(events
        .iter()
        .any(|e| e["event"]["kind"] == "import_progress" && e["event"]["import_id"] == import));
    assert!(events
        .iter()
        .filter(|e| e["event"]["kind"] == "changes")
        .all(|e| e["event"]["changes"]["imports"] == serde_json::json!([import])));
    assert!(
        received
            .iter()
            .all(|p| !p.contains("BIG-") && !p.contains("drawing_no")),
        "ids and counts only, never row data"
    );

    let overheard = outsider
        .notifications()
        .timeout_iter(Duration::from_millis(300))
        .iterator()
        .count();
    assert_eq!(overheard, 0, "nothing on the channel an outsider can guess");
}

#[test]
#[ignore = "needs a live server: run tests/scripts/test.sh"]
fn a_report_answers_statement_timeout() {
    let mut c = connect();
    let site = site(&mut c, "Report", 60);
    // Every row has a warning (QTY 0), so the report reads the whole file again.
    let mut text = String::from("DRAWING,TYPE,QTY,CMDTY CODE,SIZE\n");
    for i in 0..150_000 {
        text.push_str(&format!("R-{},Support,0,S-{i},2\n", i / 1000));
    }
    let import = upload_validated(&mut c, &site.owner, site.project, &text);
    let clock = std::time::Instant::now();
    let outcome = {
        let mut tx = begin_as(&mut c, &site.owner);
        tx.batch_execute("set local statement_timeout = '100ms'")
            .expect("timeout");
        let outcome = tx.batch_execute(&format!(
            "select pipetrak_api.import_report_csv(import_id => {import})"
        ));
        let _ = tx.rollback();
        outcome
    };
    let code = outcome
        .expect_err("the timeout stops the report")
        .code()
        .cloned();
    assert_eq!(code, Some(postgres::error::SqlState::QUERY_CANCELED));
    assert!(
        clock.elapsed() < Duration::from_secs(3),
        "stopped while reading, not after: {:?}",
        clock.elapsed()
    );
}

/// `text` as a SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

// ---- imports from the field ----

/// Every live component of a project as (drawing, type, id, size, seq, quantity), sorted.
fn components(c: &mut Client, project: i64) -> Vec<String> {
    c.query(
        "select format('%s|%s|%s|%s|%s|%s', d.drawing_key, c.component_type, c.tag, c.size, c.seq, c.quantity)
         from pipetrak.components c join pipetrak.drawings d on d.id = c.drawing_id
         where c.project_id = $1 and c.retired_at is null order by 1",
        &[&project],
    )
    .expect("components")
    .iter()
    .map(|r| r.get(0))
    .collect()
}

const FIELD_TAKEOFF: &str = "DRAWING,TYPE,QTY,CMDTY CODE,SIZE,DESCRIPTION\n\
D-1,Pipe,10,PIPE-A,2,carbon pipe\n\
D-1,Pipe,16.4x,PIPE-A,2,carbon pipe\n\
D-1,Valve,1,V-1,2 SCH,gate valve\n\
D-1,Gasket,2,G-1,2,gasket\n\
D-1,Gasket,two,G-1,2,gasket\n\
D-1,Gasket,1,G-1,2,gasket\n\
,Spool,1,SP-9,2,spool\n\
D-2,Support,3,S-1,2,support\n\
D-2,Pipe,5,PIPE-B,3,clean pipe\n";

/// What a user fixes: the footage, the size kept with a warning, a count and a missing drawing.
fn fixed(text: &str) -> String {
    text.replace("16.4x", "16.4")
        .replace("2 SCH", "2")
        .replace(",two,", ",1,")
        .replace("\n,Spool", "\nD-2,Spool")
}

#[test]
#[ignore = "needs a live server: run tests/scripts/test.sh"]
fn a_fixed_remediation_csv_ends_where_the_corrected_original_would_in_either_order() {
    let mut c = connect();
    let corrected = site(&mut c, "Corrected original", 61);
    let import = upload_file(
        &mut c,
        &corrected.owner,
        corrected.project,
        "takeoff",
        fixed(FIELD_TAKEOFF).as_bytes(),
    )
    .expect("upload");
    validate(&mut c, &corrected.owner, import);
    commit(&mut c, &corrected.owner, import, false).expect("the corrected original commits");
    let expected = components(&mut c, corrected.project);
    assert!(
        expected.contains(&"D-1|pipe|PIPE-A|2|1|26.40".to_string()),
        "{expected:#?}"
    );
    assert!(
        expected.contains(&"D-1|valve|V-1|2|1|1.00".to_string()),
        "{expected:#?}"
    );
    assert_eq!(expected.iter().filter(|c| c.contains("|G-1|")).count(), 4);

    for commit_original_first in [true, false] {
        let s = site(
            &mut c,
            "Round trip",
            if commit_original_first { 62 } else { 63 },
        );
        let original = upload_file(
            &mut c,
            &s.owner,
            s.project,
            "takeoff",
            FIELD_TAKEOFF.as_bytes(),
        )
        .expect("upload");
        let summary = validate(&mut c, &s.owner, original);
        assert_eq!(summary["rows"]["with_errors"], 3, "{summary}");
        if commit_original_first {
            commit(&mut c, &s.owner, original, true).expect("the valid rows commit");
        }
        let report = ok(
            &mut c,
            &s.owner,
            &format!("select pipetrak_api.import_report_csv(import_id => {original})"),
        );
        let report = report.as_str().expect("csv").to_string();
        let header = report
            .trim_start_matches('\u{feff}')
            .lines()
            .next()
            .expect("header")
            .to_string();
        assert_eq!(header, "DRAWING,TYPE,QTY,CMDTY CODE,SIZE,DESCRIPTION,PIPETRAK ROW,PIPETRAK REF,PIPETRAK ISSUES");
        // The error and warning rows, and the other rows of their pipe and their gasket item.
        let reported: Vec<String> = report
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(6).unwrap_or("").to_string())
            .collect();
        assert_eq!(reported, ["2", "3", "4", "5", "6", "7", "8"]);
        assert!(
            report.contains(&format!(",3,{original}:3,\"invalid_quantity:")),
            "{report}"
        );

        let fix = upload_file(
            &mut c,
            &s.owner,
            s.project,
            "takeoff",
            fixed(&report).as_bytes(),
        )
        .expect("upload the fix");
        let summary = validate(&mut c, &s.owner, fix);
        assert_eq!(
            (
                summary["rows"]["valid"].as_i64(),
                summary["rows"]["with_errors"].as_i64()
            ),
            (Some(7), Some(0)),
            "{summary}"
        );
        commit(&mut c, &s.owner, fix, false).expect("the fix commits");
        if !commit_original_first {
            commit(&mut c, &s.owner, original, true)
                .expect("the original commits after its fixed rows");
        }
        assert_eq!(
            components(&mut c, s.project),
            expected,
            "original committed first: {commit_original_first}"
        );

        // The same fix imported again changes nothing.
        let again = upload_file(
            &mut c,
            &s.owner,
            s.project,
            "takeoff",
            fixed(&report).as_bytes(),
        )
        .expect("upload");
        validate(&mut c, &s.owner, again);
        commit(&mut c, &s.owner, again, false).expect("commits");
        assert_eq!(components(&mut c, s.project), expected);
    }

    // A reference to another project's import is not followed.
    let other = site(&mut c, "Other project", 64);
    let stranger = "DRAWING,TYPE,QTY,CMDTY CODE,SIZE,PIPETRAK REF\nD-9,Valve,1,V-9,2,1:2\n";
    let import = upload_file(
        &mut c,
        &other.owner,
        other.project,
        "takeoff",
        stranger.as_bytes(),
    )
    .expect("upload");
    let issues = ok(&mut c, &other.owner, &format!("select jsonb_agg(code) from pipetrak_api.import_issues where import_id = {import} and row > 0"));
    assert_eq!(issues, Value::Null, "issues only after validation");
    validate(&mut c, &other.owner, import);
    let issues = ok(&mut c, &other.owner, &format!("select jsonb_agg(code order by code) from pipetrak_api.import_issues where import_id = {import}"));
    assert_eq!(issues, serde_json::json!(["unknown_reference"]));
}

#[test]
#[ignore = "needs a live server: run tests/scripts/test.sh"]
fn a_legacy_xls_weld_log_imports_its_welds_and_nothing_beside_them() {
    let mut c = connect();
    let s = site(&mut c, "Legacy log", 65);
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/legacy-weld-log.xls"
    ))
    .expect("fixture");
    let import = upload_file(&mut c, &s.owner, s.project, "field_welds", &bytes).expect("upload");
    let summary = validate(&mut c, &s.owner, import);
    assert_eq!(summary["format"], "xls");
    assert_eq!(
        (
            summary["rows"]["rows_read"].as_i64(),
            summary["rows"]["valid"].as_i64()
        ),
        (Some(6), Some(5))
    );
    let codes = ok(&mut c, &s.owner, &format!("select jsonb_agg(code order by row, code) from pipetrak_api.import_issues where import_id = {import}"));
    assert_eq!(
        codes,
        serde_json::json!([
            "columns_beside_table",
            "invalid_weld_type",
            "placeholder_rows"
        ])
    );
    commit(&mut c, &s.owner, import, true).expect("commits");
    let welders = ok(&mut c, &s.owner, &format!("select jsonb_agg(stencil order by stencil) from pipetrak_api.welders where project_id = {}", s.project));
    assert_eq!(
        welders,
        serde_json::json!(["W-01", "W-02", "W-03"]),
        "the welder list beside the log is not read"
    );
    let welds = ok(&mut c, &s.owner, &format!("select count(*) from pipetrak.components where project_id = {} and component_type = 'field_weld'", s.project));
    assert_eq!(welds, 5);
}

#[test]
#[ignore = "needs a live server: run tests/scripts/test.sh"]
fn empty_damaged_and_foreign_files_fail_with_their_reason_and_keep_nothing() {
    let mut c = connect();
    let s = site(&mut c, "Bad files", 66);
    let (code, message) =
        upload_file(&mut c, &s.owner, s.project, "takeoff", b"").expect_err("empty");
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("PT422", "The file is empty")
    );
    for name in ["content.xml", "word/document.xml"] {
        let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        out.start_file(name, zip::write::SimpleFileOptions::default())
            .expect("part");
        std::io::Write::write_all(&mut out, b"<x/>").expect("write");
        let bytes = out.finish().expect("zip").into_inner();
        let (code, _) =
            upload_file(&mut c, &s.owner, s.project, "takeoff", &bytes).expect_err(name);
        assert_eq!(code, "PT415", "{name} is refused at upload");
    }

    // A workbook whose sheet breaks off after two rows: failed, with the reader's reason, no rows.
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    for (name, content) in [
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#,
        ),
        (
            "_rels/.rels",
            r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
        ),
        (
            "xl/workbook.xml",
            r#"<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Takeoff" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
        ),
        (
            "xl/_rels/workbook.xml.rels",
            r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#,
        ),
        (
            "xl/worksheets/sheet1.xml",
            r#"<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>DRAWING</t></is></c><c r="B1" t="inlineStr"><is><t>TYPE</t></is></c><c r="C1" t="inlineStr"><is><t>CMDTY CODE</t></is></c></row><row r="2"><c r="A2" t="inlineStr"><is><t>P-1</t></is></c><c r="B2" t="inlineStr"><is><t>Valve</t></is></c><c r="C2" t="inlineStr"><is><t>V-1</t></is></c></row><row r="3"><c r="A3" t="inlineStr"><is><t>P-1</t></is></c><c r="B3" t="inlineStr"><is><t>Valve</t></is></c><c r="C3" t="inlineStr"><is><t>V-2</t></is></c></row><row r="4"><c r="A4" t="inlineStr"><is><t>P-1</is></c></row></sheetData></worksheet>"#,
        ),
    ] {
        out.start_file(name, options).expect("part");
        std::io::Write::write_all(&mut out, content.as_bytes()).expect("write");
    }
    let damaged = out.finish().expect("zip").into_inner();
    let header_only = b"DRAWING,TYPE,QTY,CMDTY CODE\n\n".to_vec();
    for (what, bytes, reason) in [
        ("damaged", damaged, "damaged_file"),
        ("header only", header_only, "no_data_rows"),
    ] {
        let import = upload_file(&mut c, &s.owner, s.project, "takeoff", &bytes).expect("upload");
        let summary = validate(&mut c, &s.owner, import);
        assert_eq!(summary["status"], "failed", "{what}: {summary}");
        assert_eq!(summary["rows"]["valid"], 0, "{what}");
        let codes = ok(&mut c, &s.owner, &format!("select jsonb_agg(code) from pipetrak_api.import_issues where import_id = {import} and severity = 'error'"));
        assert_eq!(codes, serde_json::json!([reason]), "{what}");
        let staged = ok(
            &mut c,
            &s.owner,
            &format!("select count(*) from pipetrak.import_rows where import_id = {import}"),
        );
        assert_eq!(staged, 0, "{what}: no row is kept");
        let (code, message) = commit(&mut c, &s.owner, import, true).expect_err(what);
        assert_eq!(
            (code.as_str(), message.as_str()),
            ("PT422", "The import's file could not be read"),
            "{what}"
        );
    }
}

#[test]
#[ignore = "needs a live server: run tests/scripts/test.sh"]
fn summary_counts_agree_with_the_issues_list() {
    let mut c = connect();
    let s = site(&mut c, "Counts", 67);
    // A drawing the project has (similar_drawing_exists), two spellings in the file
    // (similar_drawing_in_file), repeats, an unmapped column, errors, warnings and notes.
    ok(
        &mut c,
        &s.owner,
        &format!(
            "select pipetrak_api.create_drawing(project_id => {}, drawing_no => 'P-26B07-A')",
            s.project
        ),
    );
    let text = "DRAWING,TYPE,QTY,CMDTY CODE,SIZE,COLOR\n\
                P-26B07,Valve,1,V-1,2,red\n\
                P26B07,Valve,1,V-2,2 SCH,red\n\
                P-26B07,Valve,1,V-1,2,red\n\
                P-26B07,Spool,1,SP-1,2,\n\
                P-26B07,Spool,1,SP-1,2,\n\
                P-26B07,Valve,0,V-3,2,\n\
                P-26B07,Widget,1,W-1,2,\n\
                P-26B07,Gasket,,G-1,1,\n";
    let import =
        upload_file(&mut c, &s.owner, s.project, "takeoff", text.as_bytes()).expect("upload");
    let summary = validate(&mut c, &s.owner, import);
    let listed = ok(&mut c, &s.owner, &format!(
        "select jsonb_build_object('error', count(*) filter (where severity = 'error'), 'warning', count(*) filter (where severity = 'warning'), 'info', count(*) filter (where severity = 'info')) from pipetrak_api.import_issues where import_id = {import}"));
    assert_eq!(summary["issues"], listed, "{summary}");
    let codes = ok(&mut c, &s.owner, &format!("select jsonb_agg(distinct code) from pipetrak_api.import_issues where import_id = {import}"));
    for code in [
        "similar_drawing_in_file",
        "similar_drawing_exists",
        "identical_rows",
        "duplicate_id",
        "unparsed_size",
        "zero_quantity",
        "unknown_component_type",
        "quantity_defaulted",
        "unmapped_column",
    ] {
        assert!(
            codes
                .as_array()
                .expect("codes")
                .contains(&Value::from(code)),
            "{code} in {codes}"
        );
    }
}

// ---- test packages ----

#[test]
#[ignore = "needs a live server: run tests/scripts/test.sh"]
fn certificates_saved_at_once_get_distinct_numbers() {
    let mut c = connect();
    let site = site(&mut c, "Certificates", 60);
    let mut numbers: Vec<String> = Vec::new();
    for round in 0..4 {
        let packages: Vec<i64> = (0..2)
            .map(|i| {
                id(&ok(
                    &mut c,
                    &site.owner,
                    &format!("select pipetrak_api.create_test_package(project_id => {}, name => 'TP-{round}-{i}')", site.project),
                ))
            })
            .collect();
        // Two sessions save the first certificate of a package each and commit together, each
        // holding its transaction open a moment after numbering.
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let savers: Vec<_> = packages
            .iter()
            .map(|&package| {
                let owner = site.owner.clone();
                let barrier = barrier.clone();
                thread::spawn(move || {
                    let mut client = connect();
                    let mut tx = begin_as(&mut client, &owner);
                    barrier.wait();
                    let number: String = tx
                        .query_one(&format!("select pipetrak_api.save_certificate(test_package_id => {package}, client => 'ACME')"), &[])
                        .expect("save a certificate")
                        .get(0);
                    thread::sleep(Duration::from_millis(50));
                    tx.commit().expect("commit");
                    number
                })
            })
            .collect();
        for saver in savers {
            numbers.push(saver.join().expect("saver"));
        }
    }
    numbers.sort();
    let expected: Vec<String> = (1..=8).map(|n| format!("PKG-{n:03}")).collect();
    assert_eq!(numbers, expected, "eight certificates, numbered once each");
}

#[test]
#[ignore = "needs a live server: run tests/scripts/test.sh"]
fn the_turnover_report_of_a_real_weld_log_and_takeoff_matches_its_members() {
    let mut c = connect();
    let site = site(&mut c, "Turnover", 61);
    for (kind, file) in [
        ("field_welds", "field-weld-log-664.xlsx"),
        ("takeoff", "quantity-instances.csv"),
    ] {
        let bytes = std::fs::read(format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR")))
            .expect("a sample file");
        let import = upload_file(&mut c, &site.owner, site.project, kind, &bytes).expect("upload");
        validate(&mut c, &site.owner, import);
        commit(&mut c, &site.owner, import, true).expect("commit");
    }
    let package = id(&ok(
        &mut c,
        &site.owner,
        &format!(
            "select pipetrak_api.create_test_package(project_id => {}, name => 'TP-ALL')",
            site.project
        ),
    ));
    let drawings: Vec<i64> = c
        .query(
            "select id from pipetrak.drawings where project_id = $1 and retired_at is null",
            &[&site.project],
        )
        .expect("drawings")
        .iter()
        .map(|r| r.get(0))
        .collect();
    for drawing in &drawings {
        ok(
            &mut c,
            &site.owner,
            &format!("select pipetrak_api.assign_drawing(drawing_id => {drawing}, test_package_id => {package})"),
        );
    }
    let report = ok(
        &mut c,
        &site.viewer,
        &format!("select pipetrak_api.turnover_report(test_package_id => {package})"),
    );

    // Counted here from the tables, independently of the report's own queries.
    let count = |c: &mut Client, sql: &str| -> i64 {
        c.query_one(sql, &[&site.project]).expect("a count").get(0)
    };
    let report_drawings = report["drawings"].as_array().expect("drawings");
    assert_eq!(
        report_drawings.len(),
        drawings.len(),
        "one entry per drawing"
    );
    let welds: usize = report_drawings
        .iter()
        .map(|d| d["welds"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(welds, 664, "the weld log's 664 welds, each once");
    for d in report_drawings {
        let drawing = id(&d["drawing_id"]);
        let (components, field_welds): (i64, i64) = {
            let row = c
                .query_one(
                    "select count(*), count(*) filter (where component_type = 'field_weld')
                     from pipetrak.components where drawing_id = $1 and retired_at is null",
                    &[&drawing],
                )
                .expect("per drawing");
            (row.get(0), row.get(1))
        };
        assert_eq!(id(&d["components"]), components, "{}", d["drawing_no"]);
        assert_eq!(id(&d["nde"]["welds"]), field_welds, "{}", d["drawing_no"]);
        let required: i64 = c
            .query_one(
                "select count(*) from pipetrak.field_welds f join pipetrak.components c on c.id = f.component_id
                 where c.drawing_id = $1 and c.retired_at is null and (cardinality(f.nde_types) > 0 or f.xray_percent > 0)",
                &[&drawing],
            )
            .expect("required")
            .get(0);
        assert_eq!(
            id(&d["nde"]["nde_required"]),
            required,
            "{}",
            d["drawing_no"]
        );
    }
    let names: Vec<&str> = report_drawings
        .iter()
        .filter_map(|d| d["drawing_no"].as_str())
        .collect();
    let mut natural = names.clone();
    natural.sort_by_key(|n| {
        // Digits compared by value: the order a person reads drawing numbers in.
        let mut key = Vec::new();
        let mut digits = String::new();
        for ch in n.chars().chain(std::iter::once(' ')) {
            if ch.is_ascii_digit() {
                digits.push(ch);
            } else {
                if !digits.is_empty() {
                    key.push(format!("{:0>20}", digits.trim_start_matches('0')));
                    digits.clear();
                }
                key.push(ch.to_string());
            }
        }
        key.concat()
    });
    assert_eq!(names, natural, "drawings in natural order");
    let members = count(
        &mut c,
        "select count(*) from pipetrak.components where project_id = $1 and retired_at is null",
    );
    let summarized: i64 = report["components"]
        .as_array()
        .expect("component summary")
        .iter()
        .map(|x| id(&x["count"]))
        .sum();
    assert_eq!(
        summarized, members,
        "the component summary covers every member"
    );
    let supports = count(
        &mut c,
        "select count(*) from pipetrak.components where project_id = $1 and retired_at is null and component_type = 'support'",
    );
    let summarized_supports: i64 = report["supports"]
        .as_array()
        .expect("support summary")
        .iter()
        .map(|x| id(&x["quantity"]))
        .sum();
    assert_eq!(
        summarized_supports, supports,
        "the support summary covers every support"
    );
    assert_eq!(report["package"]["state"], "draft");
    let spec: Option<String> = c
        .query_one(
            "select mode() within group (order by f.spec) from pipetrak.field_welds f where f.project_id = $1 and f.spec is not null",
            &[&site.project],
        )
        .expect("spec")
        .get(0);
    assert_eq!(
        report["package"]["weld_spec"].as_str(),
        spec.as_deref(),
        "the most common weld spec"
    );
}

// ---- man-hours ----

#[test]
#[ignore = "needs a live server: run tests/scripts/test.sh"]
fn earned_man_hours_equal_a_recount_after_concurrent_updates() {
    let mut c = connect();
    let site = site(&mut c, "Man-hours", 62);
    let drawing = id(&ok(
        &mut c,
        &site.owner,
        &format!(
            "select pipetrak_api.create_drawing(project_id => {}, drawing_no => 'MH-1')",
            site.project
        ),
    ));
    for (tag, size, quantity) in [
        ("VLV", "2", 120),
        ("RED", "6x4", 40),
        ("ODD", "SPECIAL", 40),
    ] {
        ok(
            &mut c,
            &site.owner,
            &format!("select pipetrak_api.create_component(project_id => {}, drawing_id => {drawing}, component_type => 'valve', tag => '{tag}', size => '{size}', quantity => {quantity})", site.project),
        );
    }
    ok(
        &mut c,
        &site.owner,
        &format!(
            "select pipetrak_api.spread_budget(project_id => {}, total_mh => 1234.5, reason => 'estimate')",
            site.project
        ),
    );
    let ids: Vec<i64> = c
        .query(
            "select id from pipetrak.components where project_id = $1 order by id",
            &[&site.project],
        )
        .expect("ids")
        .iter()
        .map(|r| r.get(0))
        .collect();
    // Four foremen set and clear milestones on overlapping components at once.
    let workers: Vec<_> = (0..4u64)
        .map(|w| {
            let ids = ids.clone();
            let foreman = site.foreman.clone();
            thread::spawn(move || {
                let mut client = connect();
                let mut seed = 7 + w * 7919;
                for _ in 0..150 {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    let component = ids[(seed >> 33) as usize % ids.len()];
                    let (milestone, value) = match (seed >> 20) % 4 {
                        0 => ("Receive", 100),
                        1 => ("Install", 100),
                        2 => ("Install", 0),
                        _ => ("Punch", 100),
                    };
                    // A refusal (a sequence rule) or a deadlock victim is a lost write, not a wrong sum.
                    let _ = request(&mut client, &foreman, &format!("select pipetrak_api.update_milestone(component_id => {component}, milestone => '{milestone}', value => {value})"));
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("worker");
    }
    let (kept, recount): (String, String) = {
        let row = c
            .query_one(
                "select (select sum(p.mh_receive + p.mh_install + p.mh_punch + p.mh_test + p.mh_restore)::text
                         from pipetrak.progress_parts p where p.project_id = $1),
                        (select sum(b.budget_mh * x.earned_total)::text
                         from pipetrak.components x join pipetrak.component_budgets b on b.component_id = x.id
                         where x.project_id = $1 and x.retired_at is null)",
                &[&site.project],
            )
            .expect("sums");
        (row.get(0), row.get(1))
    };
    assert_eq!(
        kept, recount,
        "Σ budget × credit kept in the parts equals a recount"
    );
    let reported = ok(
        &mut c,
        &site.viewer,
        &format!(
            "select earned_mh from pipetrak_api.manhour_progress(project_id => {})",
            site.project
        ),
    );
    let expected: f64 = recount.parse::<f64>().expect("a number") / 1_000_000.0;
    assert!(
        (num(&reported) - expected).abs() < 0.006,
        "{reported} vs {expected}"
    );
    assert!(expected > 0.0, "the burst earned something");
}

/// Notifications a listening connection receives within `wait`.
fn received(listener: &mut Client, wait: Duration) -> Vec<String> {
    listener
        .notifications()
        .timeout_iter(wait)
        .iterator()
        .filter_map(Result::ok)
        .map(|n| n.payload().to_string())
        .collect()
}

/// A new connection LISTENing on the project's channel, as a member of it asks for it.
fn listening_member(c: &mut Client, site: &Site) -> Client {
    let channel = ok(
        c,
        &site.viewer,
        &format!(
            "select pipetrak_api.project_channel(project_id => {})",
            site.project
        ),
    );
    let mut member = connect();
    member
        .batch_execute(&format!("listen {}", channel.as_str().expect("a channel")))
        .expect("listen");
    member
}

/// The site's foreman receives every one of `ids` in one update_milestones call.
fn receive_all(c: &mut Client, site: &Site, ids: &[i64]) {
    let updates: Vec<Value> = ids
        .iter()
        .map(|id| serde_json::json!({"component_id": id, "milestone": "Receive", "value": 100}))
        .collect();
    ok(
        c,
        &site.foreman,
        &format!(
            "select jsonb_array_length(pipetrak_api.update_milestones(updates => {}::jsonb))",
            literal(&Value::Array(updates).to_string())
        ),
    );
}

/// Whether pipetrak says `payload` is one of its events on the site's channel (asked by a viewer).
fn is_genuine(c: &mut Client, site: &Site, payload: &str) -> bool {
    ok(
        c,
        &site.viewer,
        &format!(
            "select pipetrak_api.event_is_genuine(project_id => {}, payload => {})",
            site.project,
            literal(payload)
        ),
    )
    .as_bool()
    .expect("a boolean")
}

/// A site with `n` supports from a committed import; returns their ids.
fn supports(c: &mut Client, site: &Site, n: u32) -> Vec<i64> {
    let import = upload_validated(c, &site.owner, site.project, &big_takeoff(n));
    ok(
        c,
        &site.owner,
        &format!("select pipetrak_api.import_commit(import_id => {import})"),
    );
    let ids = ok(
        c,
        &site.viewer,
        &format!(
            "select array_agg(id order by id) from pipetrak_api.components where project_id = {}",
            site.project
        ),
    );
    serde_json::from_value(ids).expect("ids")
}

#[test]
#[ignore = "needs a live server: run tests/scripts/test.sh"]
fn a_bulk_update_of_500_components_is_one_notification_with_their_ids() {
    let mut c = connect();
    let site = site(&mut c, "Bulk events", 70);
    let ids = supports(&mut c, &site, 500);
    assert_eq!(ids.len(), 500);
    let mut member = listening_member(&mut c, &site);
    receive_all(&mut c, &site, &ids);

    let payloads = received(&mut member, Duration::from_secs(2));
    assert_eq!(payloads.len(), 1, "one notification for the transaction");
    assert!(payloads[0].len() < 8000, "under NOTIFY's payload limit");
    let payload: Value = serde_json::from_str(&payloads[0]).expect("json");
    let event = &payload["event"];
    assert_eq!(event["kind"], "changes");
    assert_eq!(event["project_id"], site.project);
    assert_eq!(
        (event["part"].clone(), event["parts"].clone()),
        (1.into(), 1.into())
    );
    let announced: Vec<i64> =
        serde_json::from_value(event["changes"]["milestones"].clone()).expect("milestone ids");
    assert_eq!(announced, ids, "every updated component, once, in order");
    assert!(!payloads[0].contains("S-1"), "ids only, never row data");
    assert!(
        is_genuine(&mut c, &site, &payloads[0]),
        "signed by pipetrak"
    );

    // A transaction that fails announces nothing.
    let failed = request(
        &mut c,
        &site.foreman,
        &format!(
            "select pipetrak_api.update_milestones(updates => '[{{\"component_id\": {}, \"milestone\": \"Receive\", \"value\": 0}}, {{\"component_id\": 0, \"milestone\": \"Receive\", \"value\": 0}}]')",
            ids[0]
        ),
    );
    assert!(failed.is_err());
    assert_eq!(
        received(&mut member, Duration::from_millis(500)).len(),
        0,
        "a rolled-back batch is not announced"
    );
}

#[test]
#[ignore = "needs a live server: run tests/scripts/test.sh"]
fn two_admins_inviting_one_address_at_once_make_one_invitation() {
    let mut c = connect();
    for round in 0..3 {
        let site = site(&mut c, "Invites", 80 + round);
        let org = id(&ok(
            &mut c,
            &site.owner,
            &format!(
                "select organization_id from pipetrak_api.projects where id = {}",
                site.project
            ),
        ));
        let admin = user("inviting_admin", 80 + round);
        c.execute(&format!("insert into pipetrak.memberships (organization_id, user_id, role, created_by) values ({org}, '{admin}', 'admin', '{}')", site.owner), &[])
            .expect("seat an admin");
        // Both invite in requests of their own that overlap: neither sees the other's row yet.
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let invite = |me: String, barrier: std::sync::Arc<std::sync::Barrier>| {
            thread::spawn(move || {
                let mut client = connect();
                let mut tx = begin_as(&mut client, &me);
                barrier.wait();
                let outcome = tx
                    .batch_execute(&format!("select pipetrak_api.invite_member(organization_id => {org}, email => 'New.Hire@example.com', role => 'viewer')"))
                    .and_then(|()| tx.commit());
                outcome.map_err(|e| e.code().map(|c| c.code().to_string()))
            })
        };
        let first = invite(site.owner.clone(), barrier.clone());
        let second = invite(admin, barrier);
        let outcomes = [first.join().expect("first"), second.join().expect("second")];
        let open: i64 = c
            .query_one("select count(*) from pipetrak.invitations where organization_id = $1 and accepted_at is null and revoked_at is null", &[&org])
            .expect("invitations")
            .get(0);
        assert_eq!(open, 1, "round {round}: one open invitation: {outcomes:?}");
        assert_eq!(
            outcomes.iter().filter(|o| o.is_ok()).count(),
            1,
            "round {round}: one invites: {outcomes:?}"
        );
        assert!(
            outcomes
                .iter()
                .filter_map(|o| o.as_ref().err())
                .all(|e| e.as_deref() == Some("PT409")),
            "round {round}: the other is told the invitation is pending: {outcomes:?}"
        );
    }
}

#[test]
#[ignore = "needs a live server: run tests/scripts/test.sh"]
fn a_bulk_update_too_big_for_one_payload_is_split_into_signed_parts() {
    let mut c = connect();
    let site = site(&mut c, "Split events", 75);
    let ids = supports(&mut c, &site, 1500);
    let mut member = listening_member(&mut c, &site);
    receive_all(&mut c, &site, &ids);

    let payloads = received(&mut member, Duration::from_secs(2));
    assert!(payloads.len() > 1, "1,500 ids don't fit one payload");
    let mut announced = Vec::new();
    for (i, payload) in payloads.iter().enumerate() {
        assert!(payload.len() < 8000);
        let event: Value = serde_json::from_str(payload).expect("json");
        assert_eq!(event["event"]["part"], i + 1);
        assert_eq!(event["event"]["parts"], payloads.len());
        assert!(
            is_genuine(&mut c, &site, payload),
            "part {} is signed",
            i + 1
        );
        let part: Vec<i64> =
            serde_json::from_value(event["event"]["changes"]["milestones"].clone()).expect("ids");
        announced.extend(part);
    }
    assert_eq!(announced, ids, "the parts carry every id once, in order");
}

#[test]
#[ignore = "needs a live server: run tests/scripts/test.sh"]
fn another_organization_learns_nothing_from_a_projects_channel() {
    let mut c = connect();
    let site = site(&mut c, "Channel A", 71);
    let other = site_of_other_organization(&mut c, 72);
    let ids = supports(&mut c, &site, 20);

    // The outsider can't get the channel, nor use the signature check as an oracle.
    for sql in [
        format!(
            "select pipetrak_api.project_channel(project_id => {})",
            site.project
        ),
        format!(
            "select pipetrak_api.event_is_genuine(project_id => {}, payload => '{{}}')",
            site.project
        ),
    ] {
        let refused = request(&mut c, &other.owner, &sql).expect_err("refused");
        assert_eq!(refused.code().map(|s| s.code()), Some("PT404"), "{sql}");
    }
    // Listening on its own project's channel and on the names it could guess, it hears nothing of
    // this project's changes.
    let own = ok(
        &mut c,
        &other.owner,
        &format!(
            "select pipetrak_api.project_channel(project_id => {})",
            other.project
        ),
    );
    let mut outsider = connect();
    outsider
        .batch_execute(&format!(
            "listen {}; listen pipetrak_project_{}; listen pipetrak_{}; listen \"project:{}\"",
            own.as_str().expect("a channel"),
            site.project,
            site.project,
            site.project
        ))
        .expect("listen");
    ok(
        &mut c,
        &site.foreman,
        &format!(
            "select pipetrak_api.update_milestone(component_id => {}, milestone => 'Receive', value => 100) is not null",
            ids[0]
        ),
    );
    assert_eq!(
        received(&mut outsider, Duration::from_millis(700)),
        Vec::<String>::new()
    );
    // Nor can it read what waits to be announced, or send as pipetrak.
    for sql in [
        "select pipetrak.queued_changes()".to_string(),
        format!(
            "select pipetrak.notify_project({}, '{{\"kind\": \"changes\"}}')",
            site.project
        ),
    ] {
        let refused = request(&mut c, &other.owner, &sql).expect_err("refused");
        assert_eq!(refused.code().map(|s| s.code()), Some("42501"), "{sql}");
    }
}

/// Runs one statement as `user` in its own transaction: the rows it affected, or its SQLSTATE.
fn execute_as(c: &mut Client, user: &str, sql: &str) -> Result<u64, Option<String>> {
    let state = |e: postgres::Error| e.code().map(|s| s.code().to_string());
    let mut tx = c.transaction().map_err(state)?;
    tx.batch_execute("set local role authenticated")
        .map_err(state)?;
    let claims = serde_json::json!({"sub": user, "role": "authenticated"});
    tx.execute(
        "select set_config('request.jwt.claims', $1, true)",
        &[&claims.to_string()],
    )
    .map_err(state)?;
    let rows = tx.execute(sql, &[]).map_err(state)?;
    tx.commit().map_err(state)?;
    Ok(rows)
}

/// The owner and project of a second organization (the outsider's); a function of its own because
/// the tests name their first site `site`, which hides the function of that name.
fn site_of_other_organization(c: &mut Client, n: u32) -> Site {
    site(c, "Other organization", n)
}

#[test]
#[ignore = "needs a live server: run tests/scripts/test.sh"]
fn with_supabase_storage_and_realtime_only_members_get_in() {
    let mut admin = connect();
    admin
        .batch_execute("drop database if exists pipetrak_supabase")
        .expect("drop");
    admin
        .batch_execute("create database pipetrak_supabase")
        .expect("create");
    let url = std::env::var("PIPETRAK_TEST_URL").expect("url");
    let (base, query) = url.split_once('?').unwrap_or((&url, ""));
    let base = &base[..base.rfind('/').expect("a database in the url")];
    let mut c =
        Client::connect(&format!("{base}/pipetrak_supabase?{query}"), NoTls).expect("connect");
    c.batch_execute(include_str!("fixtures/supabase_standin.sql"))
        .expect("stand-in");
    c.batch_execute("create extension pipetrak cascade")
        .expect("install with Supabase's schemas present");

    let buckets: Vec<String> = c
        .query("select id from storage.buckets order by id", &[])
        .expect("buckets")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        buckets,
        [
            "pipetrak-attachments",
            "pipetrak-drawings",
            "pipetrak-imports"
        ]
    );
    let site = site(&mut c, "Supabase", 73);
    let other = site_of_other_organization(&mut c, 74);
    let p = site.project;
    let drawing = id(&ok(
        &mut c,
        &site.owner,
        &format!("select pipetrak_api.create_drawing(project_id => {p}, drawing_no => 'S-1')"),
    ));
    let weld = id(&ok(&mut c, &site.owner, &format!(
        "select (pipetrak_api.create_component(project_id => {p}, drawing_id => {drawing}, component_type => 'field_weld', tag => '7') -> 'created' ->> 0)::bigint")));

    // Storage: writers per the role matrix, readers the project's members.
    let upload = |c: &mut Client, user: &str, bucket: &str, path: &str| {
        execute_as(c, user, &format!(
            "insert into storage.objects (bucket_id, name, owner, metadata) values ('{bucket}', '{path}', '{user}', '{{\"size\": 10, \"mimetype\": \"application/pdf\"}}')"))
    };
    let report = format!("{p}/welds/{weld}/rt-report.pdf");
    assert_eq!(
        upload(&mut c, &site.viewer, "pipetrak-attachments", &report),
        Err(Some("42501".into())),
        "a viewer uploads nothing"
    );
    assert_eq!(
        upload(&mut c, &site.foreman, "pipetrak-attachments", &report),
        Err(Some("42501".into())),
        "NDE reports are QC's"
    );
    assert_eq!(
        upload(
            &mut c,
            &other.owner,
            "pipetrak-drawings",
            &format!("{p}/{drawing}/S-1.pdf")
        ),
        Err(Some("42501".into())),
        "another organization writes nothing here"
    );
    assert_eq!(
        upload(
            &mut c,
            &site.owner,
            "pipetrak-attachments",
            &format!("{p}/welds/999999999/x.pdf")
        ),
        Err(Some("42501".into())),
        "only onto a weld of the project"
    );
    assert_eq!(
        upload(&mut c, &site.owner, "pipetrak-attachments", &report),
        Ok(1)
    );
    assert_eq!(
        upload(
            &mut c,
            &site.owner,
            "pipetrak-drawings",
            &format!("{p}/{drawing}/S-1.pdf")
        ),
        Ok(1)
    );
    let seen = |c: &mut Client, user: &str| {
        ok(
            c,
            user,
            &format!("select count(*) from storage.objects where name like '{p}/%'"),
        )
    };
    assert_eq!(
        seen(&mut c, &site.viewer),
        2,
        "members read the project's files"
    );
    assert_eq!(seen(&mut c, &other.owner), 0, "others don't");
    let linked = ok(&mut c, &site.viewer, "select jsonb_agg(linked_to || ':' || linked_id order by linked_to) from pipetrak_api.attachments");
    assert_eq!(
        linked,
        serde_json::json!([format!("drawing:{drawing}"), format!("weld:{weld}")])
    );

    // Realtime: the milestone's event goes to the private topic; only members receive it.
    ok(&mut c, &site.foreman, &format!(
        "select pipetrak_api.update_milestone(component_id => {weld}, milestone => 'Fit-up', value => 100) is not null"));
    let topic_rows = |c: &mut Client, user: &str| {
        let mut tx = c.transaction().expect("tx");
        tx.batch_execute(&format!("set local role authenticated; select set_config('realtime.topic', 'project:{p}', true)"))
            .expect("topic");
        tx.execute(
            "select set_config('request.jwt.claims', $1, true)",
            &[&serde_json::json!({"sub": user, "role": "authenticated"}).to_string()],
        )
        .expect("claims");
        let rows = tx.query("select payload::text from realtime.messages where topic = realtime.topic() and event = 'changes'", &[]).expect("read");
        rows.iter()
            .map(|r| serde_json::from_str(r.get::<_, &str>(0)).expect("json"))
            .collect::<Vec<Value>>()
    };
    let member_sees = topic_rows(&mut c, &site.viewer);
    assert!(
        member_sees
            .iter()
            .any(|m| m["changes"]["milestones"] == serde_json::json!([weld])),
        "a member receives the change on project:{p}: {member_sees:?}"
    );
    assert_eq!(
        topic_rows(&mut c, &other.owner),
        Vec::<Value>::new(),
        "the topic refuses a non-member"
    );
    // The attack: another organization's owner subscribes to their own project's topic and reads
    // every row the policy lets through, whatever its topic.
    let across: i64 = {
        let mut tx = c.transaction().expect("tx");
        tx.batch_execute(&format!(
            "set local role authenticated; select set_config('realtime.topic', 'project:{}', true)",
            other.project
        ))
        .expect("topic");
        tx.execute(
            "select set_config('request.jwt.claims', $1, true)",
            &[&serde_json::json!({"sub": other.owner, "role": "authenticated"}).to_string()],
        )
        .expect("claims");
        tx.query_one(
            &format!("select count(*) from realtime.messages where topic = 'project:{p}'"),
            &[],
        )
        .expect("read")
        .get(0)
    };
    assert_eq!(
        across, 0,
        "a session subscribed to its own project reads no other project's messages"
    );
    let forged = execute_as(&mut c, &site.viewer, &format!(
        "insert into realtime.messages (topic, extension, event, payload) values ('project:{p}', 'broadcast', 'changes', '{{}}')"));
    assert_eq!(
        forged,
        Err(Some("42501".into())),
        "and nobody sends into it"
    );
    drop(c);
    admin
        .batch_execute("drop database pipetrak_supabase")
        .expect("drop");
}
// ---- the remediation round trip, over generated files ----

/// A small deterministic generator (xorshift), so a failing case can be replayed by its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A takeoff of 6 to 15 rows over two drawings (pipe rows that add up, counted items spread over
/// rows, ids, supports), and the same file with some cells broken the way field files are: a
/// quantity with a stray `~` (an error) or a size written `2 SCH` (a warning, reported). Fixing
/// is removing the marks, so the fixed file is the clean one.
fn generated_takeoff(rng: &mut Rng) -> (String, String) {
    let header = "DRAWING,TYPE,QTY,CMDTY CODE,SIZE,DESCRIPTION\n";
    let (mut clean, mut broken) = (header.to_string(), header.to_string());
    let rows = 6 + rng.below(10);
    let mut broke_one = false;
    for row in 0..rows {
        let drawing = ["D-1", "D-2"][rng.below(2) as usize];
        let (kind, qty, code) = match rng.below(5) {
            0 | 1 => (
                "Pipe",
                format!("{}.{}", 1 + rng.below(30), rng.below(10)),
                ["PIPE-A", "PIPE-B"][rng.below(2) as usize].to_string(),
            ),
            2 => (
                "Gasket",
                (1 + rng.below(3)).to_string(),
                format!("G-{}", rng.below(2)),
            ),
            3 => ("Support", (1 + rng.below(4)).to_string(), "S-1".into()),
            _ => ("Valve", "1".into(), format!("V-{}", rng.below(3))),
        };
        let size = ["2", "3"][rng.below(2) as usize];
        clean.push_str(&format!("{drawing},{kind},{qty},{code},{size},item\n"));
        // At least one row is broken: a file without issues has no report.
        let damage = if row + 1 == rows && !broke_one {
            0
        } else {
            rng.below(5)
        };
        broke_one |= damage < 2;
        let (qty, size) = match damage {
            0 => (format!("{qty}~"), size.to_string()),
            1 => (qty, format!("{size} SCH")),
            _ => (qty, size.to_string()),
        };
        broken.push_str(&format!("{drawing},{kind},{qty},{code},{size},item\n"));
    }
    (clean, broken)
}

fn fix_marks(text: &str) -> String {
    text.replace('~', "").replace(" SCH", "")
}

/// The report's rows that had issues only: a user who keeps just the rows to fix.
fn only_rows_with_issues(report: &str) -> String {
    let mut lines = report.lines();
    let mut out = format!("{}\n", lines.next().unwrap_or_default());
    for line in lines {
        if !line.ends_with(',') && !line.ends_with(",\"\"") {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Uploads, validates and commits `text`; fails unless the commit did what the dry run said it
/// would (components created and updated).
fn import_as_predicted(
    c: &mut Client,
    site: &Site,
    text: &str,
    skip_invalid: bool,
    case: &str,
) -> i64 {
    let import =
        upload_file(c, &site.owner, site.project, "takeoff", text.as_bytes()).expect("upload");
    let summary = validate(c, &site.owner, import);
    let result = commit(c, &site.owner, import, skip_invalid)
        .unwrap_or_else(|e| panic!("{case}: {e:?}\n{text}"));
    let would = &summary["would"]["components"];
    assert_eq!(
        (would["create"].as_i64(), would["update"].as_i64()),
        (
            result["components_created"].as_i64(),
            result["components_updated"].as_i64()
        ),
        "{case}: the dry run's counts and the commit's\n{text}\n{summary}\n{result}"
    );
    import
}

fn report_of(c: &mut Client, site: &Site, import: i64) -> String {
    ok(
        c,
        &site.owner,
        &format!("select pipetrak_api.import_report_csv(import_id => {import})"),
    )
    .as_str()
    .expect("csv")
    .trim_start_matches('\u{feff}')
    .to_string()
}

#[test]
#[ignore = "needs a live server: run tests/scripts/test.sh"]
fn remediation_round_trips_of_generated_files_end_where_the_clean_file_does() {
    let mut c = connect();
    let mut n = 300;
    // 40 files in the test command; PIPETRAK_ROUND_TRIPS=1000 for a longer soak.
    let files: u64 = std::env::var("PIPETRAK_ROUND_TRIPS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(40);
    for seed in 1..=files {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ seed.wrapping_mul(0x2545_F491_4F6C_DD1D));
        let (clean, broken) = generated_takeoff(&mut rng);
        n += 1;
        let reference = site(&mut c, "Clean file", n);
        import_as_predicted(
            &mut c,
            &reference,
            &clean,
            false,
            &format!("seed {seed}: clean"),
        );
        let expected = components(&mut c, reference.project);
        for (original_first, whole_report) in
            [(true, true), (false, true), (true, false), (false, false)]
        {
            let case = format!(
                "seed {seed}, original first {original_first}, whole report {whole_report}"
            );
            n += 1;
            let s = site(&mut c, "Round trip", n);
            let original = upload_file(&mut c, &s.owner, s.project, "takeoff", broken.as_bytes())
                .expect("upload");
            validate(&mut c, &s.owner, original);
            if original_first {
                commit(&mut c, &s.owner, original, true).expect("the original's valid rows commit");
            }
            let report = report_of(&mut c, &s, original);
            let report = if whole_report {
                report
            } else {
                only_rows_with_issues(&report)
            };
            import_as_predicted(&mut c, &s, &fix_marks(&report), false, &case);
            if !original_first {
                // Validated again, as a user would before committing what waited.
                let summary = validate(&mut c, &s.owner, original);
                let result = commit(&mut c, &s.owner, original, true)
                    .expect("the original commits after its fixed rows");
                let would = &summary["would"]["components"];
                assert_eq!(
                    (would["create"].as_i64(), would["update"].as_i64()),
                    (
                        result["components_created"].as_i64(),
                        result["components_updated"].as_i64()
                    ),
                    "{case}: the original's dry run and commit\n{summary}\n{result}"
                );
            }
            assert_eq!(
                components(&mut c, s.project),
                expected,
                "{case}\nclean:\n{clean}\nbroken:\n{broken}\nreport:\n{report}"
            );
        }
    }
}

/// Every file of tests/data, imported twice into one project (each after all the others, then
/// again over itself): each commit does exactly what its dry run said it would.
#[test]
#[ignore = "needs a live server: run tests/scripts/test.sh"]
fn the_dry_run_predicts_every_commit_of_the_real_files() {
    let mut c = connect();
    let s = site(&mut c, "Real files twice", 290);
    let files = [
        ("takeoff", "takeoff-template.xlsx"),
        ("takeoff", "quantity-instances.csv"),
        ("takeoff", "milestone-types.csv"),
        ("takeoff", "import.csv"),
        ("takeoff", "excel-types.csv"),
        ("takeoff", "instance-creation.csv"),
        ("field_welds", "field-weld-log-664.xlsx"),
        ("field_welds", "field-welds.csv"),
        ("field_welds", "field-welds-complete.csv"),
    ];
    for round in 0..2 {
        for (kind, name) in files {
            let bytes = std::fs::read(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/data")
                    .join(name),
            )
            .expect("a real file");
            let import = upload_file(&mut c, &s.owner, s.project, kind, &bytes).expect("upload");
            let summary = validate(&mut c, &s.owner, import);
            let result = commit(&mut c, &s.owner, import, true).expect("commit");
            let would = &summary["would"]["components"];
            assert_eq!(
                (would["create"].as_i64(), would["update"].as_i64()),
                (
                    result["components_created"].as_i64(),
                    result["components_updated"].as_i64()
                ),
                "round {round}, {name}\n{summary}\n{result}"
            );
        }
    }
}

// ---- field truth: weld logs imported again ----

const WELD_LOG: &str =
    "Weld ID,Drawing ID,Weld Type,Weld Size,X-ray Percent,NDE Types,Welder Stencil,Date Welded\n\
W-1,WL-1,BW,2,5,RT,,\n\
W-2,WL-1,BW,2,5,RT,,\n\
W-3,WL-1,BW,2,5,RT,,\n\
W-4,WL-1,BW,2,5,RT,,\n\
W-5,WL-1,BW,2,5,RT,,\n";

fn weld_id(c: &mut Client, site: &Site, tag: &str) -> i64 {
    id(&ok(c, &site.owner, &format!("select c.id from pipetrak_api.components c where c.project_id = {} and c.tag = '{tag}' and c.component_type = 'field_weld'", site.project)))
}

fn weld_row(c: &mut Client, site: &Site, tag: &str) -> Value {
    ok(c, &site.owner, &format!("select jsonb_build_object('welder', wd.stencil, 'date', w.date_welded, 'type', w.weld_type, 'nde', w.current_nde, 'size', w.weld_size)
         from pipetrak.field_welds w join pipetrak.components c on c.id = w.component_id left join pipetrak.welders wd on wd.id = w.welder_id
         where c.project_id = {} and c.tag = '{tag}' and c.retired_at is null", site.project))
}

fn import_log(c: &mut Client, site: &Site, text: &str) -> (Value, Value) {
    let import =
        upload_file(c, &site.owner, site.project, "field_welds", text.as_bytes()).expect("upload");
    let summary = validate(c, &site.owner, import);
    let result = commit(c, &site.owner, import, true).expect("commit");
    let would = &summary["would"]["components"];
    assert_eq!(
        (would["create"].as_i64(), would["update"].as_i64()),
        (
            result["components_created"].as_i64(),
            result["components_updated"].as_i64()
        ),
        "the dry run predicts the commit\n{summary}\n{result}"
    );
    (summary, result)
}

#[test]
#[ignore = "needs a live server: run tests/scripts/test.sh"]
fn a_weld_log_imported_again_keeps_what_the_field_recorded() {
    let mut c = connect();
    let s = site(&mut c, "Weld log again", 310);
    import_log(&mut c, &s, WELD_LOG);
    // The field welds W-1 and records its radiograph; W-2 is welded by the log later.
    let w1 = weld_id(&mut c, &s, "W-1");
    ok(&mut c, &s.owner, &format!("select pipetrak_api.assign_welder(component_id => {w1}, stencil => 'K-12', date_welded => '2025-03-04')"));
    ok(&mut c, &s.owner, &format!("select pipetrak_api.record_nde(component_id => {w1}, method => 'RT', result => 'PASS', examined_on => '2025-03-06')"));
    let before = weld_row(&mut c, &s, "W-1");

    // The same log again (blank welder and date): nothing changes, nothing is counted.
    let (_, result) = import_log(&mut c, &s, WELD_LOG);
    assert_eq!(result["components_updated"], 0);
    assert_eq!(
        weld_row(&mut c, &s, "W-1"),
        before,
        "blank cells erase nothing"
    );

    // A log that says another welder and date for W-1, a new weld type for W-3, and welds W-2.
    let changed = WELD_LOG
        .replace("W-1,WL-1,BW,2,5,RT,,", "W-1,WL-1,BW,2,5,RT,K-99,2025-03-01")
        .replace("W-3,WL-1,BW,2,5,RT,,", "W-3,WL-1,SW,2,5,RT,,")
        .replace("W-2,WL-1,BW,2,5,RT,,", "W-2,WL-1,BW,2,5,RT,K-12,2025-03-05");
    let (summary, result) = import_log(&mut c, &s, &changed);
    assert_eq!(
        weld_row(&mut c, &s, "W-1"),
        before,
        "the field's welder, date and NDE win"
    );
    let import = summary["import_id"].as_i64().expect("import id");
    let kept = ok(&mut c, &s.owner, &format!("select jsonb_agg(message) from pipetrak_api.import_issues where import_id = {import} and code = 'field_value_kept'"));
    assert_eq!(kept.as_array().map(Vec::len), Some(1), "{kept}");
    assert!(
        kept[0]
            .as_str()
            .unwrap_or_default()
            .contains("welder K-12 (the file says K-99)"),
        "{kept}"
    );
    assert_eq!(weld_row(&mut c, &s, "W-3")["type"], "SW");
    assert_eq!(weld_row(&mut c, &s, "W-2")["welder"], "K-12");
    // W-2 filled in (welder and date) and W-3's type: two welds updated, each with an event naming the import.
    assert_eq!(result["components_updated"], 2, "{result}");
    let w3 = weld_id(&mut c, &s, "W-3");
    let event = ok(&mut c, &s.owner, &format!("select jsonb_build_object('action', action, 'reason', reason, 'before', before, 'after', after) from pipetrak_api.weld_events where component_id = {w3} order by id desc limit 1"));
    assert_eq!(event["action"], "imported");
    assert_eq!(event["reason"], format!("import {import}"));
    assert_eq!(
        (
            event["before"]["weld_type"].as_str(),
            event["after"]["weld_type"].as_str()
        ),
        (Some("BW"), Some("SW"))
    );
    // W-2 is welded now: Fit-up and Weld Complete, one "weld completed" item.
    let w2 = weld_id(&mut c, &s, "W-2");
    let items = ok(
        &mut c,
        &s.owner,
        &format!("select jsonb_agg(kind) from pipetrak_api.qc_queue where component_id = {w2}"),
    );
    assert_eq!(items, serde_json::json!(["weld_completed"]));
}

#[test]
#[ignore = "needs a live server: run tests/scripts/test.sh"]
fn a_weld_log_imported_again_never_brings_back_a_repaired_retired_or_moved_weld() {
    let mut c = connect();
    let s = site(&mut c, "Welds gone", 311);
    let log = format!("{WELD_LOG}W-6,WL-2,BW,2,5,RT,,\n");
    import_log(&mut c, &s, &log);
    let w1 = weld_id(&mut c, &s, "W-1");
    ok(&mut c, &s.owner, &format!("select pipetrak_api.assign_welder(component_id => {w1}, stencil => 'K-12', date_welded => '2025-03-04')"));
    ok(&mut c, &s.owner, &format!("select pipetrak_api.record_nde(component_id => {w1}, method => 'RT', result => 'FAIL', examined_on => '2025-03-06')"));
    ok(&mut c, &s.owner, &format!("select pipetrak_api.create_repair(component_id => {w1}, note => 'ground out and rewelded')"));
    let w2 = weld_id(&mut c, &s, "W-2");
    ok(&mut c, &s.owner, &format!("select pipetrak_api.retire_weld(component_id => {w2}, reason => 'deleted by engineering')"));
    let w3 = weld_id(&mut c, &s, "W-3");
    let other = id(&ok(
        &mut c,
        &s.owner,
        &format!(
            "select pipetrak_api.create_drawing(project_id => {}, drawing_no => 'WL-9')",
            s.project
        ),
    ));
    ok(&mut c, &s.owner, &format!("select pipetrak_api.move_weld(component_id => {w3}, drawing_id => {other}, reason => 'wrong sheet')"));
    let live = |c: &mut Client| {
        ok(c, &s.owner, &format!("select jsonb_agg(c.tag || '@' || d.drawing_no order by c.tag) from pipetrak.components c join pipetrak.drawings d on d.id = c.drawing_id where c.project_id = {} and c.component_type = 'field_weld' and c.retired_at is null", s.project))
    };
    let before = live(&mut c);
    let (summary, result) = import_log(&mut c, &s, &log);
    assert_eq!(live(&mut c), before, "nothing comes back");
    assert_eq!(result["components_created"], 0);
    let import = summary["import_id"].as_i64().expect("import id");
    let notes = ok(&mut c, &s.owner, &format!("select jsonb_agg(message order by row) from pipetrak_api.import_issues where import_id = {import} and code = 'retired_not_restored'"));
    assert_eq!(
        notes,
        serde_json::json!([
            "Field Weld W-1 on drawing WL-1 was repaired as W-1.1: the row is not imported",
            "Field Weld W-2 on drawing WL-1 was retired: the row is not imported",
            "Field Weld W-3 on drawing WL-1 was moved to drawing WL-9: the row is not imported"
        ])
    );
    assert_eq!(summary["rows"]["skipped"], 3, "{summary}");
}

#[test]
#[ignore = "needs a live server: run tests/scripts/test.sh"]
fn welding_by_hand_sets_fit_up_and_weld_complete_and_nde_follows_the_weld() {
    let mut c = connect();
    let s = site(&mut c, "Welded by hand", 312);
    import_log(&mut c, &s, WELD_LOG);
    let w1 = weld_id(&mut c, &s, "W-1");
    let result = ok(&mut c, &s.owner, &format!("select pipetrak_api.assign_welder(component_id => {w1}, stencil => 'K-12', date_welded => '2025-03-04')"));
    // Fit-up 10 + Weld Complete 60 of the field-weld template.
    assert_eq!(num(&result["percent_complete"]), 70.0, "{result}");
    let kinds = ok(
        &mut c,
        &s.owner,
        &format!("select jsonb_agg(kind) from pipetrak_api.qc_queue where component_id = {w1}"),
    );
    assert_eq!(
        kinds,
        serde_json::json!(["weld_completed"]),
        "no out-of-sequence item"
    );
    // Without a date: today's, so the weld can be examined and edited.
    let w2 = weld_id(&mut c, &s, "W-2");
    ok(
        &mut c,
        &s.foreman,
        &format!("select pipetrak_api.assign_welder(component_id => {w2}, stencil => 'K-12')"),
    );
    let dated = ok(
        &mut c,
        &s.owner,
        &format!(
            "select date_welded is not null from pipetrak.field_welds where component_id = {w2}"
        ),
    );
    assert_eq!(dated, true);
    // An examination dated before the weld was welded is refused.
    let refused = request(&mut c, &s.owner, &format!("select pipetrak_api.record_nde(component_id => {w1}, method => 'RT', result => 'PASS', examined_on => '2025-03-01')")).expect_err("before welded");
    assert_eq!(sql_error(&refused).0, "PT422");
    ok(&mut c, &s.owner, &format!("select pipetrak_api.record_nde(component_id => {w1}, method => 'RT', result => 'PASS', examined_on => '2025-03-04')"));
}

#[test]
#[ignore = "needs a live server: run tests/scripts/test.sh"]
fn a_repair_leaves_the_call_for_tracers_open_until_they_are_examined() {
    let mut c = connect();
    let s = site(&mut c, "Tracers owed", 313);
    let today = ok(&mut c, &s.owner, &format!("select (now() at time zone time_zone)::date::text from pipetrak.projects where id = {}", s.project));
    let today = today.as_str().expect("a date").to_string();
    let log = WELD_LOG.replace("RT,,", &format!("RT,K-12,{today}"));
    import_log(&mut c, &s, &log);
    let w1 = weld_id(&mut c, &s, "W-1");
    ok(&mut c, &s.owner, &format!("select pipetrak_api.record_nde(component_id => {w1}, method => 'RT', result => 'FAIL')"));
    let open_calls = |c: &mut Client| {
        ok(c, &s.owner, &format!("select coalesce(jsonb_agg(details -> 'welds'), '[]') from pipetrak_api.qc_queue where project_id = {} and kind = 'examination_called'", s.project))
    };
    let calls = open_calls(&mut c);
    assert_eq!(
        calls.as_array().map(Vec::len),
        Some(1),
        "one call for two tracers: {calls}"
    );
    ok(
        &mut c,
        &s.owner,
        &format!("select pipetrak_api.create_repair(component_id => {w1}, note => 'ground out')"),
    );
    assert_eq!(
        open_calls(&mut c),
        calls,
        "the repair does not answer the call for tracers"
    );
    for tracer in calls[0].as_array().expect("welds") {
        let tracer = id(tracer);
        ok(&mut c, &s.owner, &format!("select pipetrak_api.record_nde(component_id => {tracer}, method => 'RT', result => 'PASS')"));
    }
    assert_eq!(
        open_calls(&mut c),
        serde_json::json!([]),
        "examined tracers answer it"
    );
}

#[test]
#[ignore = "needs a live server: run tests/scripts/test.sh"]
fn a_turnover_report_shows_the_repaired_reject_beside_its_repair() {
    let mut c = connect();
    let s = site(&mut c, "Turnover with a reject", 314);
    let log = "Weld ID,Drawing ID,Weld Type,Weld Size,X-ray Percent,NDE Types,Welder Stencil,Date Welded,Test Package\n\
               T-1,TL-1,BW,2,100,RT,K-12,2025-03-04,TP-9\n\
               T-2,TL-1,BW,2,100,RT,K-12,2025-03-04,TP-9\n";
    import_log(&mut c, &s, log);
    let t1 = weld_id(&mut c, &s, "T-1");
    ok(&mut c, &s.owner, &format!("select pipetrak_api.record_nde(component_id => {t1}, method => 'RT', result => 'FAIL', examined_on => '2025-03-05')"));
    ok(
        &mut c,
        &s.owner,
        &format!("select pipetrak_api.create_repair(component_id => {t1}, note => 'cut out')"),
    );
    let package = id(&ok(
        &mut c,
        &s.owner,
        &format!(
            "select id from pipetrak_api.test_packages where project_id = {} and name = 'TP-9'",
            s.project
        ),
    ));
    let report = ok(
        &mut c,
        &s.owner,
        &format!("select pipetrak_api.turnover_report(test_package_id => {package})"),
    );
    let drawing = &report["drawings"][0];
    let rows: Vec<(String, String)> = drawing["welds"]
        .as_array()
        .expect("weld rows")
        .iter()
        .map(|w| {
            (
                w["weld_number"].as_str().unwrap_or_default().to_string(),
                w["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("T-1".to_string(), "rejected".to_string()),
            ("T-1.1".to_string(), "active".to_string()),
            ("T-2".to_string(), "active".to_string())
        ],
        "{report}"
    );
    assert_eq!(drawing["welds"][0]["repaired_as"], "T-1.1");
    assert_eq!(drawing["nde"]["fail"], 1, "{report}");
    // The package's members are its live components: the joint counts once, as the repair.
    let members: i64 = report["components"]
        .as_array()
        .expect("components")
        .iter()
        .map(|x| x["count"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(members, 2);
}
