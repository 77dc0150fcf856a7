//! Imports: interrupted jobs, reports, field and damaged files, remediation round trips, dry runs.

use crate::common::*;
use crate::{begin_as, big_takeoff, site, upload_validated, Site};
use postgres::Client;
use serde_json::Value;
use std::thread;
use std::time::Duration;

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
