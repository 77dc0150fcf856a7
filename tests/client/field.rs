//! Field work: a foreman's day, concurrent writers, roles, invitations, certificates, man-hours.

use crate::common::*;
use crate::{begin_as, site};
use postgres::Client;
use serde_json::Value;
use std::thread;
use std::time::Duration;

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
