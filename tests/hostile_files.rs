//! Hostile files against a live server: every file here, generated to attack the reader (declared
//! counts and positions that would size allocations, memory and CPU bombs, damaged containers),
//! is uploaded, validated and reported on through the API by a project manager. Each must end in
//! a catalogued error or a report, with the backend's private memory below 256 MB, and the server
//! must never restart. Run by `tests/scripts/test.sh` (PIPETRAK_TEST_URL); `tests/bench/hostile_files.sh`
//! runs it to refresh `tests/bench/hostile-files-results.md` (PIPETRAK_HOSTILE_RESULTS names the file).

mod corpus;

mod common;

use common::ServerLog;
use postgres::{Client, NoTls};
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PEAK_LIMIT_KB: u64 = 256 * 1024;
const OWNER: &str = "e0000000-0000-4000-8000-000000000001";

fn connect() -> Client {
    let url =
        std::env::var("PIPETRAK_TEST_URL").expect("PIPETRAK_TEST_URL names the test database");
    Client::connect(&url, NoTls).expect("connect to the test database")
}

/// Runs `sql` as the owner in one transaction, as PostgREST would; the first column as text, or
/// the SQLSTATE it failed with.
fn call(
    client: &mut Client,
    sql: &str,
    args: &[&(dyn postgres::types::ToSql + Sync)],
) -> Result<String, String> {
    let mut tx = client.transaction().map_err(|e| e.to_string())?;
    let claims = format!(r#"{{"sub": "{OWNER}", "role": "authenticated"}}"#);
    tx.batch_execute(&format!("set local role authenticated; set local statement_timeout = '60s'; select set_config('request.jwt.claims', '{claims}', true)"))
        .map_err(|e| e.to_string())?;
    let result = tx.query_one(sql, args);
    match result {
        Ok(row) => {
            let value: Option<String> = row.get(0);
            tx.commit().map_err(|e| e.to_string())?;
            Ok(value.unwrap_or_default())
        }
        Err(e) => Err(e
            .code()
            .map_or_else(|| format!("no SQLSTATE: {e}"), |c| c.code().to_string())),
    }
}

/// The private resident memory of process `pid`, in kB (0 when it can't be read).
fn rss_anon_kb(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("RssAnon:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Samples the private resident memory (RssAnon) of backend `pid` every 2 ms until stopped.
struct PeakMemory {
    peak_kb: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    sampler: Option<std::thread::JoinHandle<()>>,
}

impl PeakMemory {
    fn watch(pid: i32) -> PeakMemory {
        let peak_kb = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (peak, done) = (peak_kb.clone(), stop.clone());
        peak_kb.store(rss_anon_kb(pid), Ordering::Relaxed);
        let sampler = std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_anon_kb(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        PeakMemory {
            peak_kb,
            stop,
            sampler: Some(sampler),
        }
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(sampler) = self.sampler.take() {
            let _ = sampler.join();
        }
        self.peak_kb.load(Ordering::Relaxed)
    }
}

/// A workbook whose parts are given as they are (nothing checked): a header of shared strings
/// 0..=4 and `sheet_data` inside `<sheetData>`; `shared` is the whole sharedStrings part.
fn workbook(shared: &[u8], sheet_data: &mut dyn FnMut(&mut dyn Write)) -> Vec<u8> {
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let parts: [(&str, &[u8]); 4] = [
        ("[Content_Types].xml", br#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>"#),
        ("_rels/.rels", br#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#),
        ("xl/workbook.xml", br#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Takeoff" sheetId="1" r:id="rId1"/></sheets></workbook>"#),
        ("xl/_rels/workbook.xml.rels", br#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>"#),
    ];
    for (name, content) in parts {
        out.start_file(name, options).expect("part");
        out.write_all(content).expect("write");
    }
    out.start_file("xl/sharedStrings.xml", options)
        .expect("part");
    out.write_all(shared).expect("write");
    out.start_file("xl/worksheets/sheet1.xml", options)
        .expect("part");
    out.write_all(br#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c><c r="C1" t="s"><v>2</v></c><c r="D1" t="s"><v>3</v></c><c r="E1" t="s"><v>4</v></c></row>"#).expect("write");
    sheet_data(&mut out);
    out.write_all(b"</sheetData></worksheet>").expect("write");
    out.finish().expect("finish").into_inner()
}

/// The shared strings of the header (DRAWING, TYPE, QTY, CMDTY CODE, SIZE), declaring `unique`.
fn header_strings(unique: &str) -> Vec<u8> {
    format!(r#"<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="5" uniqueCount="{unique}"><si><t>DRAWING</t></si><si><t>TYPE</t></si><si><t>QTY</t></si><si><t>CMDTY CODE</t></si><si><t>SIZE</t></si></sst>"#).into_bytes()
}

fn one_row(out: &mut dyn Write) {
    out.write_all(br#"<row r="2"><c r="A2" t="inlineStr"><is><t>P-1</t></is></c><c r="B2" t="inlineStr"><is><t>Valve</t></is></c><c r="C2"><v>1</v></c><c r="D2" t="inlineStr"><is><t>V-1</t></is></c><c r="E2"><v>2</v></c></row>"#).expect("write");
}

/// Excel's column letters for a 1-based column number.
fn column_letters(mut n: u64) -> String {
    let mut letters = Vec::new();
    while n > 0 {
        let d = (n - 1) % 26;
        letters.push(b'A' + d as u8);
        n = (n - 1) / 26;
    }
    letters.reverse();
    String::from_utf8(letters).expect("ascii")
}

/// Writes `chunk` `times` times.
fn repeat(out: &mut dyn Write, chunk: &[u8], times: usize) {
    for _ in 0..times {
        out.write_all(chunk).expect("write");
    }
}

/// A legacy .xls with one takeoff sheet of `rows` rows of `columns` cells (`cells` places extra
/// ones anywhere), its DIMENSIONS declaring `declared` (last row + 1, last column + 1) when given.
fn legacy_workbook(
    rows: u16,
    columns: u16,
    cells: &[(u16, u16)],
    declared: Option<(u32, u16)>,
) -> Vec<u8> {
    let mut sheet = corpus::XlsSheet::new("Sheet1");
    if let Some((last_row, last_col)) = declared {
        sheet.dimensions(last_row, last_col);
    }
    let takeoff = corpus::legacy_takeoff(rows, columns);
    sheet.records.extend_from_slice(&takeoff.records);
    for &(row, col) in cells {
        sheet.text(row, col, "far");
    }
    let mut book = corpus::XlsBook::default();
    book.sheets.push(sheet);
    book.file()
}

/// Every file of this suite: its name, bytes, the import kind it is uploaded as, and the file
/// issue code (or SQLSTATE) it must end in.
fn hostile_files() -> Vec<(&'static str, Vec<u8>, &'static str, &'static str)> {
    let mut files: Vec<_> = attacks()
        .into_iter()
        .map(|(name, bytes, expected)| (name, bytes, "takeoff", expected))
        .collect();
    files.extend([
        (
            "an estimating takeoff whose pivot cache packs 140x (xlsx)",
            corpus::takeoff_with_pivot_cache(2_000, 67 << 20),
            "takeoff",
            "valid",
        ),
        (
            "a legacy weld log: 20,000 x 160 declared, 65,000 formatting records (xls)",
            corpus::legacy_weld_log(5_000, false).file(),
            "field_welds",
            "valid",
        ),
        (
            "an orphan Workbook entry declaring 65,536 x 4,096 (xls)",
            corpus::orphan_workbook_entry(),
            "takeoff",
            "valid",
        ),
        (
            "a FAT chain past the end of the file, round to its start (xls)",
            corpus::fat_past_the_end(),
            "takeoff",
            "PT415",
        ),
        (
            "values on both sides of an embedded substream (xls)",
            corpus::cells_around_a_substream(),
            "takeoff",
            "file_over_limits",
        ),
        (
            "40 sheet names for one 500,000-cell sheet (xls)",
            corpus::shared_boundsheets(),
            "takeoff",
            "valid",
        ),
        (
            "1,000,000 sheets (xls)",
            corpus::a_million_sheets(),
            "takeoff",
            "file_over_limits",
        ),
        (
            "a hidden first sheet with the same header (xlsx)",
            corpus::hidden_first_sheet(),
            "takeoff",
            "valid",
        ),
        (
            "General serial dates in a 1904 workbook (xlsx)",
            corpus::general_serials_1904(),
            "field_welds",
            "valid",
        ),
        (
            "a units row and the header printed again (csv)",
            corpus::report_with_repeated_headers(),
            "takeoff",
            "valid",
        ),
        ("a PDF named .xlsx", corpus::pdf(), "takeoff", "PT415"),
        ("a PNG named .xlsx", corpus::png(), "takeoff", "PT415"),
    ]);
    files
}

/// The attacks of the first round: declared counts, bombs, damaged containers.
fn attacks() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let takeoff_header = "DRAWING,TYPE,QTY,CMDTY CODE,SIZE";
    let mut files: Vec<(&'static str, Vec<u8>, &'static str)> = vec![
        (
            "shared strings declaring 10^15 (xlsx)",
            workbook(&header_strings("1000000000000000"), &mut one_row),
            "file_over_limits",
        ),
        (
            "shared strings declaring 2^64-1 (xlsx)",
            workbook(&header_strings("18446744073709551615"), &mut one_row),
            "file_over_limits",
        ),
        (
            "a cell at column 4,000,000,000 (xlsx)",
            workbook(&header_strings("5"), &mut |out| {
                write!(
                    out,
                    r#"<row r="2"><c r="{}2"><v>1</v></c></row>"#,
                    column_letters(4_000_000_000)
                )
                .expect("write");
            }),
            "file_over_limits",
        ),
        (
            "a cell at row 4,000,000,000 (xlsx)",
            workbook(&header_strings("5"), &mut |out| {
                out.write_all(br#"<row r="4000000000"><c r="A4000000000"><v>1</v></c></row>"#)
                    .expect("write");
            }),
            "valid",
        ),
        (
            "600 MB of whitespace (xlsx)",
            workbook(&header_strings("5"), &mut |out| {
                repeat(out, &[b' '; 1 << 20], 600)
            }),
            "file_over_limits",
        ),
        (
            "40 million shared strings (xlsx)",
            {
                let mut shared = br#"<?xml version="1.0"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>DRAWING</t></si><si><t>TYPE</t></si><si><t>QTY</t></si><si><t>CMDTY CODE</t></si><si><t>SIZE</t></si>"#.to_vec();
                shared.extend(b"<si/>".repeat(40_000_000));
                shared.extend(b"</sst>");
                workbook(&shared, &mut one_row)
            },
            "file_over_limits",
        ),
        (
            "300 MB of sheet XML (xlsx)",
            workbook(&header_strings("5"), &mut |out| {
                repeat(
                    out,
                    br#"<row><c t="inlineStr"><is><t>P-1</t></is></c><c><v>1</v></c></row>"#,
                    300 * 1024 * 1024 / 64,
                );
            }),
            "file_over_limits",
        ),
        (
            "a 45 MB cell (xlsx)",
            workbook(&header_strings("5"), &mut |out| {
                out.write_all(br#"<row r="2"><c r="A2" t="inlineStr"><is><t>"#)
                    .expect("write");
                repeat(out, &[b'x'; 1 << 20], 45);
                out.write_all(b"</t></is></c></row>").expect("write");
            }),
            "file_over_limits",
        ),
        (
            "a 100,000-column header (csv)",
            {
                let mut text = String::from(takeoff_header);
                for i in 0..100_000 {
                    text.push_str(&format!(",EXTRA COLUMN {i}"));
                }
                text.push_str("\nP-1,Valve,1,V-1,2\n");
                text.into_bytes()
            },
            "file_over_limits",
        ),
        (
            "40 MB of 'a,' (csv)",
            format!("{takeoff_header}\n{}", "a,".repeat(20 * 1024 * 1024)).into_bytes(),
            "file_over_limits",
        ),
        (
            "a 49 MB cell (csv)",
            format!(
                "{takeoff_header}\nP-1,Valve,1,\"{}\",2\n",
                "x".repeat(49 << 20)
            )
            .into_bytes(),
            "file_over_limits",
        ),
        (
            "an .ods (a zip, not a workbook)",
            {
                let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
                out.start_file("mimetype", zip::write::SimpleFileOptions::default())
                    .expect("part");
                out.write_all(b"application/vnd.oasis.opendocument.spreadsheet")
                    .expect("write");
                out.finish().expect("finish").into_inner()
            },
            "PT415",
        ),
        (
            "a .docx (a zip, not a workbook)",
            {
                let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
                out.start_file(
                    "word/document.xml",
                    zip::write::SimpleFileOptions::default(),
                )
                .expect("part");
                out.write_all(b"<w:document/>").expect("write");
                out.finish().expect("finish").into_inner()
            },
            "PT415",
        ),
        (
            "a .doc (a compound file, not a workbook)",
            {
                let mut file =
                    cfb::CompoundFile::create(std::io::Cursor::new(Vec::new())).expect("cfb");
                file.create_stream("/WordDocument")
                    .expect("stream")
                    .write_all(b"text")
                    .expect("write");
                file.flush().expect("flush");
                file.into_inner().into_inner()
            },
            "PT415",
        ),
        (
            "an .xls at its limit: 31,249 rows of 16 cells (xls)",
            legacy_workbook(31_249, 16, &[], None),
            "valid",
        ),
        // A declared range sizes nothing: the three rows are read.
        (
            "an .xls declaring 4 billion rows (xls)",
            legacy_workbook(3, 4, &[], Some((u32::MAX, 4))),
            "valid",
        ),
        (
            "an .xls with cells at A1 and IV65536 (xls)",
            legacy_workbook(3, 4, &[(65_535, 255)], None),
            "file_over_limits",
        ),
    ];
    let whole = workbook(&header_strings("5"), &mut one_row);
    files.push((
        "a workbook cut in half",
        whole[..whole.len() / 2].to_vec(),
        "PT415",
    ));
    let mut lying = whole.clone();
    // The end-of-central-directory record says 65,535 entries in a directory 4 GB long.
    let eocd = lying
        .windows(4)
        .rposition(|w| w == b"PK\x05\x06")
        .expect("eocd");
    lying[eocd + 8..eocd + 12].copy_from_slice(&[0xff; 4]);
    lying[eocd + 12..eocd + 16].copy_from_slice(&[0xff; 4]);
    files.push((
        "a zip directory declaring 65,535 entries and 4 GB",
        lying,
        "PT415",
    ));
    files
}

/// Uploads the file again and validates it on a connection of its own, cancelled with
/// `pg_cancel_backend` 150 ms in: how long after the cancel the validation ended (zero when it
/// had ended before), or `None` when the upload was refused.
fn cancel_latency(admin: &mut Client, project: &str, kind: &str, bytes: &[u8]) -> Option<Duration> {
    let mut d = connect();
    let import = call(&mut d, &format!("select pipetrak_api.import_upload(project_id => {project}, kind => '{kind}', filename => 'hostile', content => $1)::text"), &[&bytes]).ok()?;
    Some(call_cancel_latency(
        admin,
        format!("select pipetrak_api.import_validate(import_id => {import})::text"),
        None,
        Duration::from_millis(150),
    ))
}

/// `call` with the one text argument `sql` may take.
fn call_with(client: &mut Client, sql: &str, arg: &Option<String>) -> Result<String, String> {
    match arg {
        Some(a) => call(client, sql, &[a]),
        None => call(client, sql, &[]),
    }
}

#[test]
#[ignore = "needs a live server: run tests/scripts/test.sh"]
fn no_hostile_file_crashes_stalls_or_starves_the_server() {
    let mut admin = connect();
    let started: String = admin
        .query_one("select pg_postmaster_start_time()::text", &[])
        .expect("start time")
        .get(0);
    let mut c = connect();
    let org = call(
        &mut c,
        "select pipetrak_api.create_organization(name => 'Hostile')::text",
        &[],
    )
    .expect("org");
    let project = call(&mut c, &format!("select pipetrak_api.create_project(organization_id => {org}, name => 'H', job_number => 'H-1')::text"), &[])
        .expect("project");
    let pid: i32 = c
        .query_one("select pg_backend_pid()", &[])
        .expect("pid")
        .get(0);

    let log = ServerLog::open();
    let mut report = String::from(
        "| file | size | outcome | report | time | peak backend memory: upload / validate / report | cancel |\n|---|---|---|---|---|---|---|\n",
    );
    let mut failures = Vec::new();
    for (name, bytes, kind, expected) in hostile_files() {
        let clock = Instant::now();
        let mut peaks = Vec::new();
        let mut memory = PeakMemory::watch(pid);
        let upload = call(&mut c, &format!("select pipetrak_api.import_upload(project_id => {project}, kind => '{kind}', filename => 'hostile', content => $1)::text"), &[&bytes]);
        let (outcome, report_outcome) = match upload {
            Err(code) => (code, String::from("-")),
            Ok(import) => {
                peaks.push(std::mem::replace(&mut memory, PeakMemory::watch(pid)).finish());
                let summary = call(
                    &mut c,
                    &format!("select pipetrak_api.import_validate(import_id => {import})::text"),
                    &[],
                );
                let outcome = match summary {
                    Ok(summary) => {
                        let summary: serde_json::Value =
                            serde_json::from_str(&summary).expect("summary");
                        summary["file_issues"]
                            .as_array()
                            .and_then(|issues| issues.iter().find(|i| i["severity"] == "error"))
                            .map_or_else(
                                || "valid".to_string(),
                                |i| i["code"].as_str().unwrap_or_default().to_string(),
                            )
                    }
                    Err(code) => code,
                };
                peaks.push(std::mem::replace(&mut memory, PeakMemory::watch(pid)).finish());
                let csv = call(&mut c, &format!("select length(pipetrak_api.import_report_csv(import_id => {import}))::text"), &[]);
                (
                    outcome,
                    csv.map_or_else(|code| code, |len| format!("{len} chars")),
                )
            }
        };
        let elapsed = clock.elapsed();
        peaks.push(memory.finish());
        let peak = peaks.iter().copied().max().unwrap_or(0);
        let cancel = cancel_latency(&mut admin, &project, kind, &bytes);
        if cancel.is_some_and(|c| c > Duration::from_secs(1)) {
            failures.push(format!("{name}: a cancel took {cancel:?}"));
        }
        report.push_str(&format!(
            "| {name} | {} kB | {outcome} | {report_outcome} | {} ms | {} MB | {} |\n",
            bytes.len() / 1024,
            elapsed.as_millis(),
            peaks
                .iter()
                .map(|kb| (kb / 1024).to_string())
                .collect::<Vec<_>>()
                .join(" / "),
            cancel.map_or_else(|| "-".to_string(), |c| format!("{} ms", c.as_millis()))
        ));
        if outcome != expected {
            failures.push(format!("{name}: ended in {outcome}, expected {expected}"));
        }
        if report_outcome.starts_with("no SQLSTATE") || report_outcome == "XX000" {
            failures.push(format!("{name}: the report ended in {report_outcome}"));
        }
        if peak >= PEAK_LIMIT_KB {
            failures.push(format!("{name}: peak backend memory {} MB", peak / 1024));
        }
        let still: String = admin
            .query_one("select pg_postmaster_start_time()::text", &[])
            .expect("the server answers")
            .get(0);
        assert_eq!(still, started, "{name}: the server restarted");
        if let Some(line) = log.signal_since() {
            failures.push(format!("{name}: the server log says {line:?}"));
        }
    }
    println!("{report}");
    if let Ok(path) = std::env::var("PIPETRAK_HOSTILE_RESULTS") {
        std::fs::write(&path, format!("# Hostile files (latest run)\n\n`bash tests/bench/hostile_files.sh`: each file uploaded, validated and reported on through the API by a project manager; peak = the backend's private resident memory (RssAnon), sampled every 2 ms; cancel = from `pg_cancel_backend`, sent 150 ms into a second validation of the file, to the validation's end (0 when it had ended). Limits: 256 MB, 1 s; the server never restarts and its log shows no backend terminated by a signal.\n\n{report}"))
            .expect("write results");
    }
    assert!(failures.is_empty(), "{failures:#?}\n{report}");
}

/// Runs `sql` as the owner on a connection of its own and cancels it with `pg_cancel_backend`
/// `after` it began: how long after the cancel the call ended (zero when it had ended before).
fn call_cancel_latency(
    admin: &mut Client,
    sql: String,
    arg: Option<String>,
    after: Duration,
) -> Duration {
    let mut d = connect();
    let pid: i32 = d
        .query_one("select pg_backend_pid()", &[])
        .expect("pid")
        .get(0);
    let worker = std::thread::spawn(move || {
        let _ = call_with(&mut d, &sql, &arg);
        Instant::now()
    });
    std::thread::sleep(after);
    let cancelled = Instant::now();
    admin
        .execute("select pg_cancel_backend($1)", &[&pid])
        .expect("cancel");
    let ended = worker.join().expect("the call's thread");
    ended.saturating_duration_since(cancelled)
}

/// Oversized and batch-sized arguments sent straight to the API by a signed-in owner: values far
/// past their limits are refused before any work (memory is then what the server needs to receive
/// the value at all), and the largest batches a call allows (10,000 corrections, retirements,
/// restorations) run within the memory limit and stop within a second of a cancel.
#[test]
#[ignore = "needs a live server: run tests/scripts/test.sh"]
fn no_hostile_argument_starves_the_server() {
    let mut admin = connect();
    let mut c = connect();
    let org = call(
        &mut c,
        "select pipetrak_api.create_organization(name => 'Hostile arguments')::text",
        &[],
    )
    .expect("org");
    let project = call(&mut c, &format!("select pipetrak_api.create_project(organization_id => {org}, name => 'HA', job_number => 'HA-1')::text"), &[])
        .expect("project");
    // 10,000 valves on 100 drawings, through an import.
    let mut csv = String::from("DRAWING,TYPE,QTY,CMDTY CODE,SIZE\n");
    for i in 0..10_000 {
        csv.push_str(&format!("HA-{},Valve,1,V-{i},2\n", i % 100));
    }
    let import = call(&mut c, &format!("select pipetrak_api.import_upload(project_id => {project}, kind => 'takeoff', filename => 'ha.csv', content => $1)::text"), &[&csv.as_bytes()])
        .expect("upload");
    call(
        &mut c,
        &format!("select pipetrak_api.import_validate(import_id => {import})::text"),
        &[],
    )
    .expect("validate");
    call(
        &mut c,
        &format!("select pipetrak_api.import_commit(import_id => {import})::text"),
        &[],
    )
    .expect("commit");
    let ids: String = call(&mut c, &format!("select array_agg(id order by id)::text from pipetrak.components where project_id = {project}"), &[])
        .expect("ids");
    assert_eq!(
        ids.matches(',').count() + 1,
        10_000,
        "the import made 10,000 components"
    );
    let first = ids
        .trim_matches(|ch| ch == '{' || ch == '}')
        .split(',')
        .next()
        .unwrap_or("0")
        .to_string();
    let corrections = format!(
        "[{}]",
        ids.trim_matches(|ch| ch == '{' || ch == '}')
            .split(',')
            .map(|id| format!(r#"{{"component_id": {id}, "description": "checked"}}"#))
            .collect::<Vec<_>>()
            .join(",")
    );
    let big_text = "x".repeat(100 << 20);
    let big_changes = format!(r#"{{"attributes": {{"a": "{big_text}"}}}}"#);
    let many_keys = format!(
        r#"{{"attributes": {{{}}}}}"#,
        (0..500_000)
            .map(|i| format!(r#""k{i}": 1"#))
            .collect::<Vec<_>>()
            .join(",")
    );
    let pid: i32 = c
        .query_one("select pg_backend_pid()", &[])
        .expect("pid")
        .get(0);
    // (name, SQL, its one text argument, expected outcome: "ok" or a SQLSTATE)
    let calls: Vec<(&str, String, Option<String>, &str)> = vec![
        ("correct_component: 100 MB of attributes", format!("select pipetrak_api.correct_component(component_id => {first}, changes => $1::text::jsonb, reason => 'hostile')::text"), Some(big_changes), "PT413"),
        ("correct_component: 500,000 attribute keys", format!("select pipetrak_api.correct_component(component_id => {first}, changes => $1::text::jsonb, reason => 'hostile')::text"), Some(many_keys), "PT413"),
        ("event_is_genuine: a 100 MB payload", format!("select pipetrak_api.event_is_genuine(project_id => {project}, payload => $1::text)::text"), Some(big_text), "PT422"),
        ("retire_components: 1,000,000 ids", "select pipetrak_api.retire_components(component_ids => array(select generate_series(1, 1000000))::bigint[], reason => 'hostile')::text".to_string(), None, "PT413"),
        ("correct_components: 10,000 corrections", "select pipetrak_api.correct_components(corrections => $1::text::jsonb, reason => 'checked in the field')::text".to_string(), Some(corrections), "ok"),
        ("retire_components: 10,000 ids", format!("select pipetrak_api.retire_components(component_ids => array(select id from pipetrak.components where project_id = {project}), reason => 'hostile')::text"), None, "ok"),
        ("restore_components: 10,000 ids", format!("select pipetrak_api.restore_components(component_ids => array(select id from pipetrak.components where project_id = {project}), reason => 'hostile')::text"), None, "ok"),
    ];
    let log = ServerLog::open();
    let mut failures = Vec::new();
    let mut report = String::from(
        "| call | outcome | time | peak backend memory (receiving the value alone) | cancel |\n|---|---|---|---|---|\n",
    );
    for (name, sql, arg, expected) in calls {
        // What the server needs to receive the value at all (the protocol's buffer, the
        // parameter, its parse as JSON), before any function of the extension runs.
        let receive_clock = Instant::now();
        let receiving = match &arg {
            Some(a) => {
                let memory = PeakMemory::watch(pid);
                let sql = if sql.contains("::jsonb") {
                    "select pg_column_size($1::text::jsonb)::text"
                } else {
                    "select octet_length($1::text)::text"
                };
                let _ = call(&mut c, sql, &[a]);
                memory.finish()
            }
            None => 0,
        };
        let receive_time = receive_clock.elapsed();
        let memory = PeakMemory::watch(pid);
        let clock = Instant::now();
        let outcome = call_with(&mut c, &sql, &arg);
        let elapsed = clock.elapsed();
        let peak = memory.finish();
        let outcome = outcome.map_or_else(|code| code, |_| "ok".to_string());
        // Sent once the value is received: PostgreSQL reads and parses a parameter before any
        // function runs, and answers a cancel only after.
        let cancel = call_cancel_latency(
            &mut admin,
            sql,
            arg,
            Duration::from_millis(150) + receive_time,
        );
        report.push_str(&format!(
            "| {name} | {outcome} | {} ms | {} MB ({} MB) | {} ms |\n",
            elapsed.as_millis(),
            peak / 1024,
            receiving / 1024,
            cancel.as_millis()
        ));
        if outcome != expected {
            failures.push(format!("{name}: ended in {outcome}, expected {expected}"));
        }
        // Beyond receiving the value, the call may use at most the limit.
        if peak.saturating_sub(receiving) >= PEAK_LIMIT_KB {
            failures.push(format!(
                "{name}: peak backend memory {} MB, {} MB to receive the value",
                peak / 1024,
                receiving / 1024
            ));
        }
        if cancel > Duration::from_secs(1) {
            failures.push(format!(
                "{name}: a cancel took {cancel:?} ({receive_time:?} to receive the value)"
            ));
        }
        if let Some(line) = log.signal_since() {
            failures.push(format!("{name}: the server log says {line:?}"));
        }
    }
    println!("{report}");
    assert!(failures.is_empty(), "{failures:#?}\n{report}");
}
