//! Events: project channels (NOTIFY), signed and split payloads, Supabase storage and realtime.

use crate::common::*;
use crate::{begin_as, big_takeoff, site, upload_validated, Site};
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, NoTls};
use serde_json::Value;
use std::time::Duration;

/// `text` as a SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Notifications a listening connection receives within `wait`.
fn received(listener: &mut Client, wait: Duration) -> Vec<String> {
    received_from(listener, wait)
        .into_iter()
        .map(|(_, payload)| payload)
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

    let received = received(&mut member, Duration::from_secs(2));
    // The upload, the validation and the commit each announce the import; the commit also says
    // how its chunk went. Change events come from the event sender once the commit is done, so
    // the forgery, sent right after the commit, may arrive before some of them: it is told apart
    // by what it is, not by where it comes.
    let (forged, sent): (Vec<&String>, Vec<&String>) = received
        .iter()
        .partition(|payload| payload.contains(r#""sig": "00""#));
    assert_eq!(forged.len(), 1, "{received:?}");
    assert!(
        !is_genuine(&mut c, &site, forged[0]),
        "the forgery is not genuine"
    );
    assert!(
        sent.len() >= 4
            && sent
                .iter()
                .all(|payload| is_genuine(&mut c, &site, payload)),
        "pipetrak's events are genuine: {received:?}"
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
    c.batch_execute(include_str!("../fixtures/supabase_standin.sql"))
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

/// The NOTIFYs a listening connection receives within `wait`: (sending process, payload).
fn received_from(listener: &mut Client, wait: Duration) -> Vec<(i32, String)> {
    listener
        .notifications()
        .timeout_iter(wait)
        .iterator()
        .filter_map(Result::ok)
        .map(|n| (n.process_id(), n.payload().to_string()))
        .collect()
}

#[test]
#[ignore = "needs a live server: PIPETRAK_TEST_URL (tests/scripts/test.sh)"]
fn events_leave_the_writers_commit_and_the_sender_leaves_when_idle() {
    let mut c = connect();
    let s = site(&mut c, "Sender", 402);
    let ids = supports(&mut c, &s, 4);
    let mut listener = listening_member(&mut c, &s);
    received(&mut listener, Duration::from_millis(200));

    // A lone writer NOTIFYs its own events (auto): nobody else is committing.
    let mut writer = connect();
    let writer_pid: i32 = writer
        .query_one("select pg_backend_pid()", &[])
        .expect("pid")
        .get(0);
    receive_all(&mut writer, &s, &ids[..1]);
    let got = received_from(&mut listener, Duration::from_secs(3));
    assert_eq!(
        got.iter().map(|(pid, _)| *pid).collect::<Vec<_>>(),
        vec![writer_pid],
        "{got:?}"
    );

    // Through the sender (as while other notifying commits run; here always, a superuser's
    // setting). The first such commit finds no sender running: it NOTIFYs itself and starts one,
    // which the next one goes through.
    writer
        .batch_execute("set pipetrak.event_sender = always")
        .expect("a superuser's setting");
    receive_all(&mut writer, &s, &ids[1..2]);
    std::thread::sleep(Duration::from_millis(300));
    receive_all(&mut writer, &s, &ids[2..3]);
    let got = received_from(&mut listener, Duration::from_secs(3));
    assert_eq!(got.len(), 2, "one event for each transaction: {got:?}");
    assert_eq!(
        got[0].0, writer_pid,
        "no sender ran yet: the writer NOTIFYed"
    );
    let (sender_pid, payload) = &got[1];
    assert!(is_genuine(&mut c, &s, payload), "{payload}");
    assert_ne!(
        *sender_pid, writer_pid,
        "the writer's commit did not NOTIFY"
    );
    let kind: String = c
        .query_one(
            "select coalesce((select backend_type from pg_stat_activity where pid = $1), 'gone')",
            &[sender_pid],
        )
        .expect("activity")
        .get(0);
    assert!(
        kind == "pipetrak event sender" || kind == "gone",
        "sent by {kind}"
    );

    // A rolled-back update sends nothing and leaves nothing waiting.
    let mut tx = begin_as(&mut writer, &s.foreman);
    tx.execute(
        &format!("select pipetrak_api.update_milestone(component_id => {}, milestone => 'Receive', value => 100)", ids[3]),
        &[],
    )
    .expect("update");
    tx.rollback().expect("rollback");
    assert!(received(&mut listener, Duration::from_millis(700)).is_empty());
    let waiting: i64 = c
        .query_one("select count(*) from pipetrak.event_outbox", &[])
        .expect("outbox")
        .get(0);
    assert_eq!(waiting, 0, "nothing waits in the outbox");

    // Idle, the sender leaves (DROP DATABASE waits 5 s for other sessions), and the next event
    // starts another.
    std::thread::sleep(Duration::from_secs(5));
    let senders: i64 = c
        .query_one(
            "select count(*) from pg_stat_activity where backend_type = 'pipetrak event sender' and datname = current_database()",
            &[],
        )
        .expect("activity")
        .get(0);
    assert_eq!(senders, 0, "an idle sender leaves");
    receive_all(&mut writer, &s, &ids[3..4]);
    assert_eq!(received(&mut listener, Duration::from_secs(3)).len(), 1);
}
