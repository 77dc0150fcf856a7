//! What a DBA runs the extension with: the log lines its settings turn on.

use super::*;
use serde_json::Value;

/// The JSON objects the server logged after `pipetrak: ` since `log` was opened.
fn logged_events(log: &ServerLog) -> Vec<Value> {
    log.since()
        .lines()
        .filter_map(|line| {
            line.split_once("pipetrak: {")
                .map(|(_, rest)| format!("{{{rest}"))
        })
        .filter_map(|json| serde_json::from_str(&json).ok())
        .collect()
}

#[test]
#[ignore = "needs a live server: PIPETRAK_TEST_URL (tests/scripts/test.sh)"]
fn refusals_and_imports_are_logged_as_json_lines_when_the_settings_say_so() {
    let mut c = connect();
    let s = site(&mut c, "Logged", 401);
    let refuse = |c: &mut Client| {
        request(
            c,
            &s.viewer,
            &format!(
                "select pipetrak_api.create_area(project_id => {}, name => 'Not mine')",
                s.project
            ),
        )
        .expect_err("a viewer can't create an area")
    };

    // Off by default: a refusal says nothing in the log.
    let log = ServerLog::open();
    refuse(&mut c);
    assert!(logged_events(&log).is_empty(), "{:?}", logged_events(&log));

    // On (a superuser's setting, here for this session): one line per refusal and per import step.
    c.batch_execute("set pipetrak.log_refusals = on; set pipetrak.log_imports = on")
        .expect("a superuser turns the log lines on");
    let log = ServerLog::open();
    let (state, _) = sql_error(&refuse(&mut c));
    let import = upload_file(
        &mut c,
        &s.owner,
        s.project,
        "takeoff",
        b"DRAWING,TYPE,QTY,CMDTY CODE,SIZE\nLOG-1,Valve,1,V-1,2\n",
    )
    .expect("upload");
    validate(&mut c, &s.owner, import);
    commit(&mut c, &s.owner, import, false).expect("commit");
    // The log is written by the server's logging; give it a moment to reach the file.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let events = logged_events(&log);

    let refused = events
        .iter()
        .find(|e| e["event"] == "refused")
        .unwrap_or_else(|| panic!("a refusal line in {events:?}"));
    assert_eq!(refused["code"], "permission_denied");
    assert_eq!(refused["sqlstate"], state.as_str());
    assert_eq!(refused["user"], s.viewer.as_str());

    let step = |name: &str| {
        events
            .iter()
            .find(|e| e["event"] == name && e["import_id"] == import)
            .unwrap_or_else(|| panic!("an {name} line for import {import} in {events:?}"))
    };
    let validated = step("import_validated");
    assert_eq!(validated["project_id"], s.project);
    assert_eq!(validated["rows"]["valid"], 1);
    assert!(validated["transaction_ms"].is_number());
    let committed = step("import_committed");
    assert_eq!(committed["written"]["components_created"], 1);
}
