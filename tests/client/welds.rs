//! Welds: weld logs imported again, welding and NDE by hand, repairs, and turnover reports.

use crate::common::*;
use crate::{site, Site};
use postgres::Client;
use serde_json::Value;

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

// ---- turnover reports ----

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
