//! The importer on the real files in tests/data (copied unchanged from a real deployment) and on hand-made fixtures for
//! each CSV/Excel quirk and each validation code.

mod corpus;

use chrono::NaiveDate;
use pipetrak::domain::component_type::ComponentType;
use pipetrak::domain::import::cell::Cell;
use pipetrak::domain::import::file::FileSource;
use pipetrak::domain::import::source::{self, Format};
use pipetrak::domain::import::validate::{
    validate_file, validate_source, FileOutcome, ImportRow, RowStatus,
};
use pipetrak::domain::import::{IssueCode, Kind};
use proptest::prelude::*;
use rust_xlsxwriter::{Format as XlsxFormat, Formula, Workbook};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 25).expect("a date")
}

fn sample(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A fixture of our own (the files of `tests/data` are a deployment's, unchanged).
fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn run(bytes: &[u8], kind: Kind) -> (FileOutcome, Vec<ImportRow>) {
    let mut rows = Vec::new();
    let outcome = validate_file(bytes, kind, today(), &mut |row| rows.push(row));
    (outcome, rows)
}

fn codes(rows: &[ImportRow]) -> Vec<(u32, IssueCode)> {
    rows.iter()
        .flat_map(|r| r.issues.iter().map(|i| (i.line, i.code)))
        .collect()
}

/// Components a commit would create from valid rows (seq ranges counted out).
fn component_count(rows: &[ImportRow]) -> u32 {
    rows.iter()
        .filter(|r| r.status == RowStatus::Valid)
        .map(|r| r.seq_to - r.seq_from + 1)
        .sum()
}

fn drawings(rows: &[ImportRow]) -> BTreeSet<String> {
    rows.iter().map(|r| r.drawing_key.clone()).collect()
}

fn has(rows: &[ImportRow], line: u32, code: IssueCode) -> bool {
    codes(rows).contains(&(line, code))
}

// ---- the real files, as they are ----

#[test]
fn quantity_instances_explode_into_15_components() {
    let (outcome, rows) = run(&sample("quantity-instances.csv"), Kind::Takeoff);
    assert_eq!(outcome.counts.rows_read, 5);
    assert_eq!(outcome.counts.errors, 0);
    assert_eq!(component_count(&rows), 15);
    // What a dry run promises a project without components comes from these counts.
    assert_eq!(outcome.found.components, 15);
    let support = rows
        .iter()
        .find(|r| r.tag == "SUPPORT001")
        .expect("support row");
    assert_eq!(
        (support.component_type, support.seq_from, support.seq_to),
        (Some(ComponentType::Support), 1, 5)
    );
}

#[test]
fn field_weld_log_has_664_welds_on_110_drawings() {
    let (outcome, rows) = run(&sample("field-weld-log-664.xlsx"), Kind::FieldWelds);
    let layout = outcome.layout.expect("a header");
    assert_eq!(layout.sheet.as_deref(), Some("Field Welds"));
    assert_eq!(outcome.counts.errors, 0);
    assert_eq!(rows.len(), 664);
    assert!(rows.iter().all(|r| r.status == RowStatus::Valid));
    // Weld ids are Excel integers: 1, not 1.0; the double-spaced sheet suffixes normalize.
    assert_eq!(rows[0].tag, "1");
    assert_eq!(drawings(&rows).len(), 110);
    assert_eq!(outcome.found.components, 664);
    assert!(rows
        .iter()
        .any(|r| r.drawing_no.contains("  ") && r.drawing_key.ends_with(" OF 28")));
    // PWHT is a real boolean, sizes carry inch marks.
    assert!(rows
        .iter()
        .all(|r| r.weld.as_ref().is_some_and(|w| w.pwht_required.is_some())));
    assert_eq!(rows[0].size, "1");
}

#[test]
fn takeoff_template_reads_its_takeoff_sheet() {
    let (outcome, rows) = run(&sample("takeoff-template.xlsx"), Kind::Takeoff);
    let layout = outcome.layout.expect("a header");
    assert_eq!(layout.sheet.as_deref(), Some("Material Takeoff"));
    assert_eq!(layout.header[0], "DRAWING*");
    assert_eq!(outcome.counts.errors, 0);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].size, "0.75");
    assert_eq!(component_count(&rows), 1 + 4);
}

#[test]
fn older_camel_case_layouts_map_and_keep_the_rest_as_attributes() {
    let (outcome, rows) = run(&sample("import.csv"), Kind::Takeoff);
    let layout = outcome.layout.expect("a header");
    assert!(layout
        .notes
        .iter()
        .any(|n| n.code == IssueCode::QuantityColumnMissing));
    assert_eq!(outcome.counts.errors, 0);
    assert_eq!(component_count(&rows), 5);
    // Unquoted inch marks: 2" reads as 2.
    assert_eq!(rows[0].size, "2");
    assert_eq!(rows[0].attributes["material"], "Carbon Steel");
    assert_eq!(rows[0].area.as_deref(), Some("Area A"));

    let (outcome, rows) = run(&sample("excel-types.csv"), Kind::Takeoff);
    assert_eq!(outcome.counts.errors, 0);
    assert_eq!(component_count(&rows), rows.len() as u32);
    // `totalQuantity` is the QTY column.
    assert!(!outcome
        .layout
        .expect("header")
        .notes
        .iter()
        .any(|n| n.code == IssueCode::QuantityColumnMissing));
    assert!(rows[0].attributes.get("totalQuantity").is_none());
    assert_eq!(rows[0].quantity, 1.0);
}

/// Lines of the rows flagged as maybe repeating an earlier one.
fn flagged(rows: &[ImportRow]) -> Vec<u32> {
    rows.iter()
        .filter(|r| r.maybe_repeated)
        .map(|r| r.line)
        .collect()
}

#[test]
fn rows_repeating_an_item_an_id_or_cells_are_flagged() {
    // The rules across rows run in SQL on these flags (pgTAP 04_imports checks their outcome on
    // this file: valve seqs 1..3, rows 8..10 duplicate spool ids, 7 components).
    let (outcome, rows) = run(&sample("instance-creation.csv"), Kind::Takeoff);
    assert_eq!(outcome.counts.rows_read, 10);
    // VALVE001 on rows 2..4, GASKET001 on 5..6, spool PIPE001 on 7..10.
    assert_eq!(flagged(&rows), vec![3, 4, 6, 8, 9, 10]);
    assert_eq!(outcome.counts.maybe_repeated, 6);
    assert!(
        rows.iter().all(|r| (r.seq_from, r.seq_to) == (1, 1)),
        "numbered as the first row of their item"
    );
    assert_eq!(outcome.counts.invalid, 0);
    assert_eq!(rows[1].cells_hash, rows[2].cells_hash);
    assert_ne!(rows[3].cells_hash, rows[2].cells_hash);
}

#[test]
fn milestone_types_file_covers_every_identity_rule() {
    let (outcome, rows) = run(&sample("milestone-types.csv"), Kind::Takeoff);
    assert_eq!(outcome.counts.errors, 0);
    assert_eq!(component_count(&rows), 8);
    let weld = rows
        .iter()
        .find(|r| r.component_type == Some(ComponentType::FieldWeld))
        .expect("weld row");
    assert!(
        has(&rows, weld.line, IssueCode::UnparsedSize),
        "N/A is kept with a warning"
    );
}

#[test]
fn small_weld_logs_report_off_tier_xray_and_read_nde_lists() {
    let (outcome, rows) = run(&sample("field-welds.csv"), Kind::FieldWelds);
    assert_eq!(outcome.counts.rows_read, 3);
    assert!(
        has(&rows, 3, IssueCode::InvalidXrayPercent)
            && has(&rows, 4, IssueCode::InvalidXrayPercent)
    );
    let first = rows[0].weld.as_ref().expect("weld facts");
    assert_eq!(first.nde_types, vec!["RT", "PT"]);
    assert_eq!(first.schedule.as_deref(), Some("Sch 40"));
    assert_eq!(first.date_welded, NaiveDate::from_ymd_opt(2025, 1, 15));

    let (outcome, rows) = run(&sample("field-welds-complete.csv"), Kind::FieldWelds);
    assert_eq!(outcome.counts.errors, 0);
    assert_eq!(
        rows.iter()
            .filter_map(|r| r.weld.as_ref()?.stencil.clone())
            .collect::<BTreeSet<_>>()
            .len(),
        2
    );
}

// ---- CSV quirks ----

const TAKEOFF: &str = "DRAWING,TYPE,QTY,CMDTY CODE,SIZE,COMMENTS\n";

#[test]
fn csv_delimiters_bom_and_encodings() {
    let comma = format!("{TAKEOFF}P-1,Valve,2,V1,2,ok\n");
    for text in [
        comma.clone(),
        comma.replace(',', ";"),
        comma.replace(',', "\t"),
    ] {
        let (outcome, rows) = run(text.as_bytes(), Kind::Takeoff);
        assert_eq!(outcome.counts.errors, 0, "{text:?}");
        assert_eq!(component_count(&rows), 2);
    }
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(comma.as_bytes());
    let (outcome, rows) = run(&bom, Kind::Takeoff);
    assert_eq!(outcome.layout.expect("header").header[0], "DRAWING");
    assert_eq!(rows.len(), 1);

    // Windows-1252: 0xB0 is the degree sign, 0xE9 an é.
    let mut latin = TAKEOFF.as_bytes().to_vec();
    latin.extend_from_slice(b"P-1,Valve,1,V1,2,90\xB0 elbow caf\xE9\n");
    let (outcome, rows) = run(&latin, Kind::Takeoff);
    assert!(outcome
        .layout
        .expect("header")
        .notes
        .iter()
        .any(|n| n.code == IssueCode::DecodedWindows1252));
    assert_eq!(rows[0].attributes["comments"], "90° elbow café");

    // UTF-16 with a BOM, as Excel's "Unicode text" writes it.
    let mut utf16 = vec![0xFF, 0xFE];
    for unit in comma.encode_utf16() {
        utf16.extend_from_slice(&unit.to_le_bytes());
    }
    let (outcome, rows) = run(&utf16, Kind::Takeoff);
    assert_eq!(outcome.counts.errors, 0);
    assert_eq!(rows[0].tag, "V1");
}

#[test]
fn csv_multiline_cells_inch_marks_and_excel_row_numbers() {
    let text = format!("{TAKEOFF}P-1,Valve,1,V1,2\",\"two\nlines\"\n\nP-1,Valve,1,V2,1 1/2\",x\nP-1,Gasket,1,G1,3/4,\"quoted, comma\"\n");
    let (outcome, rows) = run(text.as_bytes(), Kind::Takeoff);
    assert_eq!(outcome.counts.errors, 0);
    assert_eq!(rows[0].attributes["comments"], "two\nlines");
    assert_eq!(
        rows.iter().map(|r| r.line).collect::<Vec<_>>(),
        vec![2, 4, 5],
        "blank row 3 counts, the line break inside a cell does not"
    );
    assert_eq!(
        (rows[1].size.as_str(), rows[2].size.as_str()),
        ("1.5", "0.75")
    );
}

/// A file served a few bytes per read, as no real source would: every block boundary falls inside
/// a character, a line break or a quoted cell somewhere.
struct Dribble<'a>(&'a [u8], usize);

impl FileSource for Dribble<'_> {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.1);
        let mut rest = &self.0[(offset as usize).min(self.0.len())..];
        rest = &rest[..rest.len().min(n)];
        buf[..rest.len()].copy_from_slice(rest);
        Ok(rest.len())
    }
}

fn run_dribbled(bytes: &[u8], kind: Kind, bytes_per_read: usize) -> (FileOutcome, Vec<ImportRow>) {
    let mut rows = Vec::new();
    let outcome = validate_source(
        &mut Dribble(bytes, bytes_per_read),
        kind,
        today(),
        &mut |row| rows.push(row),
    );
    (outcome, rows)
}

#[test]
fn files_read_in_pieces_give_the_same_rows_and_row_numbers() {
    // CRLF and LF line ends, blank lines, a cell spanning lines, Windows-1252 text whose only
    // non-ASCII byte comes after the first 64 KB, and UTF-16: long enough that the file, the text
    // decoder and the CSV reader all refill their buffers many times.
    let mut text = String::from(TAKEOFF);
    for i in 0..6_000 {
        let end = if i % 2 == 0 { "\r\n" } else { "\n" };
        text.push_str(&format!("P-{},Valve,1,V{i},2,\"note {i}\"{end}", i / 10));
        if i % 1_000 == 999 {
            text.push_str("\r\n\n");
        }
        if i == 4_321 {
            text.push_str("P-9,Gasket,1,G1,2,\"two\r\nlines\"\r\n");
        }
    }
    let utf8 = text.as_bytes().to_vec();
    let mut latin = utf8.clone();
    latin.extend_from_slice(b"P-9,Valve,1,VX,2,caf\xE9\n");
    let mut utf16 = vec![0xFE, 0xFF];
    for unit in text.encode_utf16() {
        utf16.extend_from_slice(&unit.to_be_bytes());
    }
    for bytes in [&utf8, &latin, &utf16] {
        let (whole, whole_rows) = run(bytes, Kind::Takeoff);
        let (pieces, piece_rows) = run_dribbled(bytes, Kind::Takeoff, 7);
        assert_eq!(whole.counts, pieces.counts);
        assert_eq!(whole.counts.rows_read, 6_001 + u32::from(bytes == &latin));
        assert_eq!(
            whole_rows
                .iter()
                .map(|r| (r.line, &r.tag, &r.attributes))
                .collect::<Vec<_>>(),
            piece_rows
                .iter()
                .map(|r| (r.line, &r.tag, &r.attributes))
                .collect::<Vec<_>>()
        );
        let line_of = |tag: &str| whole_rows.iter().find(|r| r.tag == tag).map(|r| r.line);
        // Header on row 1, one row per line, two blank lines after every 1,000 rows, and the
        // two-line cell counting as one row.
        assert_eq!(line_of("V0"), Some(2));
        assert_eq!(line_of("V999"), Some(1_001));
        assert_eq!(line_of("V1000"), Some(1_004));
        assert_eq!(line_of("V4321"), Some(4_331));
        assert_eq!(line_of("G1"), Some(4_332));
        assert_eq!(line_of("V4322"), Some(4_333));
        assert_eq!(line_of("V5999"), Some(6_012));
    }
    let (latin_outcome, latin_rows) = run_dribbled(&latin, Kind::Takeoff, 5);
    assert!(latin_outcome
        .layout
        .expect("header")
        .notes
        .iter()
        .any(|n| n.code == IssueCode::DecodedWindows1252));
    assert_eq!(
        latin_rows.last().map(|r| r.attributes["comments"].clone()),
        Some("café".into())
    );

    // A workbook read in pieces through the same reader.
    let xlsx = sample("field-weld-log-664.xlsx");
    let (whole, _) = run(&xlsx, Kind::FieldWelds);
    let (pieces, _) = run_dribbled(&xlsx, Kind::FieldWelds, 1_000);
    assert_eq!((whole.counts, whole.found), (pieces.counts, pieces.found));
}

#[test]
fn header_is_found_below_title_rows_and_blank_rows_are_skipped() {
    let text = format!(
        "Material takeoff - Unit 12\nIssued 2025-01-01\n\n{TAKEOFF},,,,,\nP-1,Valve,1,V1,2,\n"
    );
    let (outcome, rows) = run(text.as_bytes(), Kind::Takeoff);
    assert_eq!(outcome.layout.expect("header").header_line, 4);
    assert_eq!(outcome.counts.rows_read, 1);
    assert_eq!(rows[0].line, 6);

    let late = format!("{}{TAKEOFF}P-1,Valve,1,V1,2,\n", "title\n".repeat(20));
    let (outcome, _) = run(late.as_bytes(), Kind::Takeoff);
    assert_eq!(
        outcome.layout.expect_err("no header in rows 1..20").code,
        IssueCode::HeaderNotFound
    );

    let (outcome, _) = run(b"DRAWING,QTY\nP-1,2\n", Kind::Takeoff);
    let issue = outcome.layout.expect_err("missing columns");
    assert_eq!(issue.code, IssueCode::MissingRequiredColumn);
    assert!(issue.message.contains("TYPE") && issue.message.contains("CMDTY CODE"));
}

#[test]
fn nul_bytes_past_the_sniffed_head_never_reach_a_value() {
    let mut bytes = TAKEOFF.as_bytes().to_vec();
    for i in 0..400 {
        bytes.extend_from_slice(format!("P-1,Valve,1,V{i},2,padding padding\n").as_bytes());
    }
    bytes.extend_from_slice(b"P-\x002,Valve,1,V\x00X,2,c\x00\n");
    assert_eq!(
        source::sniff(&bytes),
        Some(Format::Csv),
        "the NUL is beyond the first 8 KB"
    );
    let (outcome, rows) = run(&bytes, Kind::Takeoff);
    assert_eq!(outcome.counts.errors, 0);
    let last = rows.last().expect("rows");
    assert_eq!((last.drawing_no.as_str(), last.tag.as_str()), ("P-2", "VX"));
    let lines = rows.iter().map(|r| r.line).collect();
    let cells = pipetrak::domain::import::report::original_cells(
        &mut bytes.as_slice(),
        Kind::Takeoff,
        &lines,
    );
    assert_eq!(cells.len(), rows.len());
    assert!(cells
        .iter()
        .all(|(_, cells)| cells.iter().all(|c| !c.contains('\0'))));
}

#[test]
fn unreadable_files_are_one_clear_issue() {
    assert_eq!(source::sniff(b"PK\x03\x04rest"), Some(Format::Xlsx));
    assert_eq!(source::sniff(b"\x00\x01\x02binary"), None);
    let (outcome, _) = run(b"\x00\x01\x02binary", Kind::Takeoff);
    assert_eq!(
        outcome.layout.expect_err("binary").code,
        IssueCode::UnsupportedFile
    );
    let (outcome, _) = run(b"PK\x03\x04not really a zip", Kind::Takeoff);
    let broken = outcome.layout.expect_err("broken zip");
    assert_eq!(broken.code, IssueCode::DamagedFile);
    assert!(
        broken
            .message
            .starts_with("The workbook is damaged or incomplete"),
        "{}",
        broken.message
    );
    let (outcome, _) = run(b"  \n\n", Kind::Takeoff);
    assert_eq!(
        outcome.layout.expect_err("empty").code,
        IssueCode::EmptyFile
    );
}

// ---- each takeoff validation code ----

#[test]
fn takeoff_validation_codes() {
    let text = format!(
        "{TAKEOFF}\
         ,Valve,1,V1,2,\n\
         P-1,Widget,1,W1,2,\n\
         P-1,Valve,1,,2,\n\
         P-1,Valve,two,V2,2,\n\
         P-1,Valve,1.5,V3,2,\n\
         P-1,Valve,0,V4,2,\n\
         P-1,Valve,,V5,2,\n\
         P-1,Spool,3,SP-1,,\n\
         P-1,Spool,1,SP-1,,\n\
         P-1,Valve,1,V6,two inch,\n\
         P-1,Valve,20000,V7,2,\n\
         P-1,Pipe,12.5',PIPE-CS,2,\n\
         P-1,Pipe,7.25,PIPE-CS,2,\n\
         P-1,Instrument,2,FT-100,1,\n\
         P-1,Valve,-1,V8,2,\n\
         {long},Valve,1,V9,2,\n",
        long = "D".repeat(201)
    );
    let (outcome, rows) = run(text.as_bytes(), Kind::Takeoff);
    let expect = [
        (2, IssueCode::MissingValue),
        (3, IssueCode::UnknownComponentType),
        (4, IssueCode::MissingValue),
        (5, IssueCode::InvalidQuantity),
        (6, IssueCode::InvalidQuantity),
        (7, IssueCode::ZeroQuantity),
        (8, IssueCode::QuantityDefaulted),
        (9, IssueCode::QuantityIgnored),
        (11, IssueCode::UnparsedSize),
        (12, IssueCode::QuantityTooLarge),
        (15, IssueCode::QuantityIgnored),
        (16, IssueCode::InvalidQuantity),
        (17, IssueCode::ValueTooLong),
    ];
    for (line, code) in expect {
        assert!(
            has(&rows, line, code),
            "row {line} should have {code:?}: {:?}",
            codes(&rows)
        );
    }
    let unknown = rows.iter().find(|r| r.line == 3).expect("row 3");
    assert!(
        unknown.issues[0].message.contains("misc_component"),
        "lists the accepted names"
    );
    assert_eq!(
        rows.iter().find(|r| r.line == 7).map(|r| r.status),
        Some(RowStatus::Skipped)
    );
    // Pipe footage: both rows of one aggregate keep their own footage (summed on commit).
    let pipe: Vec<f64> = rows
        .iter()
        .filter(|r| r.tag == "PIPE-CS")
        .map(|r| r.quantity)
        .collect();
    assert_eq!(pipe, vec![12.5, 7.25]);
    // Every issue names its column as the header shows it, and the value.
    let issue = &rows.iter().find(|r| r.line == 5).expect("row 5").issues[0];
    assert_eq!(
        (issue.column.as_deref(), issue.value.as_deref()),
        (Some("QTY"), Some("two"))
    );
    assert_eq!(outcome.counts.rows_read, 16);
    // The second SP-1 and the second PIPE-CS row are flagged for the rules across rows (their
    // outcome, a duplicate id and a merged pipe, is checked in pgTAP 04_imports on this text).
    assert_eq!(flagged(&rows), vec![10, 14]);
    // Each valid row counted as the first of its item; SQL subtracts what it finds repeated.
    assert_eq!(outcome.found.components, u64::from(component_count(&rows)));
}

// ---- each weld-log validation code ----

#[test]
fn weld_log_validation_codes() {
    let text =
        "WELD #,DRAWING,TYPE,WELD TYPE,X-RAY %,PWHT,NDE TYPES,STENCIL,WELD DATE,NDE RESULT\n\
        W-1,P-1,Field Weld,BW,5%,yes,RT,K-12,2025-01-15,ACC\n\
        W-2,P-1,Valve,XX,50,maybe,RT;ZZ,K,not a date,MAYBE\n\
        W-3,P-1,,sw,0.1,X,pt / mt,wld001,2099-01-01,pending\n\
        W-1,P-1,,BW,10,0,,,45672,FAIL\n";
    let (_, rows) = run(text.as_bytes(), Kind::FieldWelds);
    let w1 = rows[0].weld.as_ref().expect("facts");
    assert_eq!(
        (
            w1.weld_type.as_deref(),
            w1.xray_percent,
            w1.pwht_required,
            w1.nde_result.as_deref()
        ),
        (Some("BW"), Some(5), Some(true), Some("PASS"))
    );
    for code in [
        IssueCode::NotAFieldWeld,
        IssueCode::InvalidWeldType,
        IssueCode::InvalidXrayPercent,
        IssueCode::InvalidBoolean,
        IssueCode::InvalidNdeType,
        IssueCode::InvalidStencil,
        IssueCode::InvalidDate,
        IssueCode::InvalidNdeResult,
    ] {
        assert!(has(&rows, 3, code), "{code:?}: {:?}", codes(&rows));
    }
    let w3 = rows[2].weld.as_ref().expect("facts");
    assert_eq!(
        (w3.weld_type.as_deref(), w3.xray_percent, w3.pwht_required),
        (Some("SW"), Some(10), Some(true))
    );
    assert_eq!(w3.nde_types, vec!["PT", "MT"]);
    assert_eq!(w3.stencil.as_deref(), Some("WLD001"));
    assert!(has(&rows, 4, IssueCode::FutureDate));
    assert_eq!(
        flagged(&rows),
        vec![5],
        "W-1 again: its outcome, a duplicate id, is checked in pgTAP"
    );
    assert_eq!(
        rows[3].weld.as_ref().and_then(|w| w.date_welded),
        NaiveDate::from_ymd_opt(2025, 1, 15),
        "serial date"
    );
}

// ---- Excel quirks ----

fn workbook(
    build: impl FnOnce(&mut Workbook) -> Result<(), rust_xlsxwriter::XlsxError>,
) -> Vec<u8> {
    let mut book = Workbook::new();
    build(&mut book).expect("workbook");
    book.save_to_buffer().expect("xlsx bytes")
}

#[test]
fn xlsx_numbers_booleans_dates_formulas_blank_rows_and_pivot_sheets() {
    let bytes = workbook(|book| {
        let pivot = book.add_worksheet().set_name("Pivot")?;
        pivot.write(0, 0, "Sum of QTY")?;
        pivot.write(1, 0, 42)?;
        let log = book.add_worksheet().set_name("Welds")?;
        log.write(0, 0, "Weld log, unit 12")?;
        for (col, h) in [
            "Weld ID",
            "Drawing ID",
            "PWHT Required",
            "Date Welded",
            "X-ray Percent",
            "Weld Size",
        ]
        .iter()
        .enumerate()
        {
            log.write(2, col as u16, *h)?;
        }
        let date = XlsxFormat::new().set_num_format("yyyy-mm-dd");
        log.write(3, 0, 1)?;
        log.write(3, 1, "P-94011_3  01of28")?;
        log.write_boolean(3, 2, true)?;
        log.write_number_with_format(3, 3, 45672.0, &date)?;
        log.write(3, 4, 0.05)?;
        log.write(3, 5, "1 1/2\"")?;
        // Row 5 is blank; row 6 has a formula whose cached value is the weld id.
        log.write_formula(5, 0, Formula::new("=1+1").set_result("2"))?;
        log.write(5, 1, "P-94011_3 1OF28")?;
        log.write(5, 2, "NO")?;
        log.write(5, 3, "2025-01-16")?;
        log.write(5, 4, 10)?;
        Ok(())
    });
    let (outcome, rows) = run(&bytes, Kind::FieldWelds);
    let layout = outcome.layout.expect("header");
    assert_eq!(
        (layout.sheet.as_deref(), layout.header_line),
        (Some("Welds"), 3)
    );
    assert_eq!(outcome.counts.errors, 0, "{:?}", codes(&rows));
    assert_eq!(
        rows.iter()
            .map(|r| (r.line, r.tag.as_str()))
            .collect::<Vec<_>>(),
        vec![(4, "1"), (6, "2")]
    );
    assert_eq!(drawings(&rows).len(), 1);
    let first = rows[0].weld.as_ref().expect("facts");
    assert_eq!(
        (first.pwht_required, first.date_welded, first.xray_percent),
        (Some(true), NaiveDate::from_ymd_opt(2025, 1, 15), Some(5))
    );
    assert_eq!(rows[0].size, "1.5");
}

#[test]
fn xlsx_1904_date_system() {
    // rust_xlsxwriter writes the 1900 system; flip the workbook flag to get a 1904 workbook.
    let bytes = workbook(|book| {
        let sheet = book.add_worksheet();
        for (col, h) in ["WELD ID", "DRAWING", "DATE WELDED"].iter().enumerate() {
            sheet.write(0, col as u16, *h)?;
        }
        sheet.write(1, 0, "W-1")?;
        sheet.write(1, 1, "P-1")?;
        sheet.write_number_with_format(
            1,
            2,
            44210.0,
            &XlsxFormat::new().set_num_format("yyyy-mm-dd"),
        )?;
        Ok(())
    });
    let bytes = with_1904_dates(&bytes);
    let (_, rows) = run(&bytes, Kind::FieldWelds);
    // 44210 days after 1904-01-01 is 2025-01-15 (in the 1900 system it would be 2021-01-14).
    assert_eq!(
        rows[0].weld.as_ref().and_then(|w| w.date_welded),
        NaiveDate::from_ymd_opt(2025, 1, 15)
    );
}

fn with_1904_dates(xlsx: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(xlsx)).expect("zip");
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).expect("entry");
        let name = file.name().expect("entry name").to_string();
        let mut content = Vec::new();
        file.read_to_end(&mut content).expect("read");
        if name == "xl/workbook.xml" {
            let text = String::from_utf8(content).expect("xml");
            content = text
                .replacen("<workbookPr", "<workbookPr date1904=\"1\"", 1)
                .into_bytes();
        }
        out.start_file(name, zip::write::SimpleFileOptions::default())
            .expect("start");
        out.write_all(&content).expect("write");
    }
    out.finish().expect("finish").into_inner()
}

// ---- the remediation CSV reads back ----

#[test]
fn remediation_csv_round_trips() {
    use pipetrak::domain::import::report::{original_cells, remediation_csv, ReportRow};
    let text = format!("{TAKEOFF}P-1,Widget,1,W1,2,\"a, b\"\n");
    let (outcome, rows) = run(text.as_bytes(), Kind::Takeoff);
    let layout = outcome.layout.expect("header");
    let cells = original_cells(
        &mut text.as_bytes(),
        Kind::Takeoff,
        &rows.iter().map(|r| r.line).collect(),
    );
    let report: Vec<ReportRow> = rows
        .iter()
        .zip(cells)
        .map(|(r, (_, cells))| ReportRow {
            cells,
            row: r.line,
            reference: format!("7:{}", r.line),
            notes: r
                .issues
                .iter()
                .map(|i| format!("{}: {}", i.code.as_str(), i.message))
                .collect::<Vec<_>>()
                .join("; "),
        })
        .collect();
    let csv = remediation_csv(&layout.header, &report).expect("csv");
    let fixed = String::from_utf8(csv)
        .expect("utf-8")
        .replace("Widget", "Valve");
    let (outcome, rows) = run(fixed.as_bytes(), Kind::Takeoff);
    assert_eq!(outcome.counts.errors, 0, "{:?}", codes(&rows));
    assert!(
        outcome
            .layout
            .expect("header")
            .notes
            .iter()
            .all(|n| n.code != IssueCode::UnmappedColumn),
        "the issues column is not an attribute"
    );
    assert_eq!(rows[0].attributes["comments"], "a, b");
    assert_eq!(
        rows[0].attributes["pipetrak_ref"], "7:2",
        "the reference to the original row"
    );
    // A report of the report has the added columns once, still pointing at the first file.
    let header = outcome_header(&fixed);
    assert_eq!(
        header[header.len() - 3..],
        ["PIPETRAK ROW", "PIPETRAK REF", "PIPETRAK ISSUES"]
    );
    let again = remediation_csv(
        &header,
        &[ReportRow {
            cells: header.clone(),
            row: 2,
            reference: "7:2".into(),
            notes: String::new(),
        }],
    )
    .expect("csv");
    assert_eq!(
        outcome_header(&String::from_utf8(again).expect("utf-8")),
        header
    );
}

fn outcome_header(text: &str) -> Vec<String> {
    run(text.as_bytes(), Kind::Takeoff)
        .0
        .layout
        .expect("header")
        .header
}

#[test]
fn remediation_csv_neutralizes_formulas_and_reads_them_back_exactly() {
    use pipetrak::domain::import::report::{original_cells, remediation_csv, ReportRow};
    // A description and a comment that Excel would run; a quantity of 0 makes the row reported.
    let text = format!("{TAKEOFF}P-1,Valve,0,V1,2,\"=HYPERLINK(\"\"http://x\"\")\"\nP-1,Valve,0,V2,2,@SUM(A1)\nP-1,Valve,0,V3,2,'=kept\n");
    let (outcome, rows) = run(text.as_bytes(), Kind::Takeoff);
    let layout = outcome.layout.expect("header");
    let cells = original_cells(
        &mut text.as_bytes(),
        Kind::Takeoff,
        &rows.iter().map(|r| r.line).collect(),
    );
    let originals: Vec<Vec<String>> = cells.iter().map(|(_, c)| c.clone()).collect();
    let report: Vec<ReportRow> = cells
        .into_iter()
        .map(|(line, cells)| ReportRow {
            cells,
            row: line,
            reference: format!("7:{line}"),
            notes: "-1 is not a quantity".into(),
        })
        .collect();
    let csv =
        String::from_utf8(remediation_csv(&layout.header, &report).expect("csv")).expect("utf-8");
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(csv.trim_start_matches('\u{feff}').as_bytes());
    for record in reader.records() {
        for cell in record.expect("record").iter() {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "a cell Excel would run: {cell:?}"
            );
        }
    }
    // Read back in: every cell exactly as it was in the original file.
    let back = original_cells(
        &mut csv.as_bytes(),
        Kind::Takeoff,
        &[2, 3, 4].into_iter().collect(),
    );
    let back: Vec<Vec<String>> = back
        .into_iter()
        .map(|(_, mut c)| {
            c.truncate(originals[0].len());
            c
        })
        .collect();
    assert_eq!(back, originals);
    assert_eq!(back[0][5], "=HYPERLINK(\"http://x\")");
    assert_eq!(back[2][5], "'=kept");
}

// ---- property tests: anything in, a report out, no panic ----

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_always_yield_a_report(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        for kind in [Kind::Takeoff, Kind::FieldWelds] {
            let (outcome, rows) = run(&bytes, kind);
            prop_assert_eq!(outcome.counts.rows_read as usize, rows.len());
        }
    }

    #[test]
    fn arbitrary_cells_always_validate(cells in proptest::collection::vec(proptest::collection::vec("[ -~\\n\"']{0,12}|[0-9]{1,6}(\\.[0-9]{1,3})?", 6), 1..40)) {
        let mut text = String::from(TAKEOFF);
        let mut weld = String::from("WELD ID,DRAWING,X-RAY %,PWHT,DATE WELDED,NDE TYPES\n");
        let mut writer = csv::Writer::from_writer(Vec::new());
        for row in &cells {
            writer.write_record(row).expect("record");
        }
        let body = String::from_utf8(writer.into_inner().expect("flush")).expect("utf-8");
        text.push_str(&body);
        weld.push_str(&body);
        let (outcome, rows) = run(text.as_bytes(), Kind::Takeoff);
        prop_assert!(outcome.layout.is_ok());
        for row in &rows {
            prop_assert_eq!(row.status == RowStatus::Invalid, row.issues.iter().any(|i| i.is_error()));
            if row.status == RowStatus::Valid {
                prop_assert!(row.seq_from >= 1 && row.seq_to >= row.seq_from);
            }
        }
        let (outcome, _) = run(weld.as_bytes(), Kind::FieldWelds);
        prop_assert!(outcome.layout.is_ok());
    }

    #[test]
    fn any_text_read_in_pieces_reads_as_read_whole(
        body in "([a-c1-3,;\"' é°]|\r\n|\n|\r){0,400}",
        windows_1252 in any::<bool>(),
        bytes_per_read in 1usize..40,
    ) {
        let text = format!("{TAKEOFF}{body}");
        let bytes = if windows_1252 { encoding_rs::WINDOWS_1252.encode(&text).0.into_owned() } else { text.into_bytes() };
        let (whole, whole_rows) = run(&bytes, Kind::Takeoff);
        let (pieces, piece_rows) = run_dribbled(&bytes, Kind::Takeoff, bytes_per_read);
        prop_assert_eq!(whole.counts, pieces.counts);
        prop_assert_eq!(whole.layout.map(|l| (l.header_line, l.notes.len())).ok(), pieces.layout.map(|l| (l.header_line, l.notes.len())).ok());
        prop_assert_eq!(
            whole_rows.iter().map(|r| (r.line, r.status, r.issues.len(), r.maybe_repeated)).collect::<Vec<_>>(),
            piece_rows.iter().map(|r| (r.line, r.status, r.issues.len(), r.maybe_repeated)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn arbitrary_cell_values_render_and_parse(n in any::<f64>(), t in ".{0,20}") {
        let _ = Cell::Number(n).text();
        let _ = pipetrak::domain::import::cell::date(&Cell::Number(n));
        let _ = pipetrak::domain::import::cell::date(&Cell::Text(t));
    }
}

// ---- files from the field ----

fn rows_by_line(rows: &[ImportRow]) -> std::collections::BTreeMap<u32, &ImportRow> {
    rows.iter().map(|r| (r.line, r)).collect()
}

fn file_codes(outcome: &FileOutcome) -> Vec<IssueCode> {
    outcome
        .layout
        .as_ref()
        .map(|l| l.notes.iter().map(|n| n.code).collect())
        .unwrap_or_default()
}

#[test]
fn a_legacy_xls_weld_log_with_placeholder_rows_and_a_welder_list_beside_it() {
    let bytes = fixture("legacy-weld-log.xls");
    assert_eq!(source::sniff(&bytes), Some(Format::Xls));
    assert_eq!(source::sniff_upload(&bytes), Ok(Format::Xls));
    let (outcome, rows) = run(&bytes, Kind::FieldWelds);
    let layout = outcome.layout.as_ref().expect("a header");
    assert_eq!(
        (layout.format, layout.sheet.as_deref(), layout.header_line),
        (Format::Xls, Some("Weld Log"), 3)
    );
    // Six welds; the 1,500 pre-numbered rows are one note, the welder list another.
    assert_eq!(
        rows.iter().map(|r| r.line).collect::<Vec<_>>(),
        (4..=9).collect::<Vec<_>>()
    );
    assert_eq!(outcome.counts.rows_read, 6);
    let placeholder = layout
        .notes
        .iter()
        .find(|n| n.code == IssueCode::PlaceholderRows)
        .expect("placeholder note");
    assert_eq!(placeholder.line, 10);
    assert!(
        placeholder
            .message
            .starts_with("1500 rows hold only a weld number"),
        "{}",
        placeholder.message
    );
    let beside = layout
        .notes
        .iter()
        .find(|n| n.code == IssueCode::ColumnsBesideTable)
        .expect("beside note");
    assert!(
        beside.message.ends_with("Stencil, Welder Name"),
        "{}",
        beside.message
    );
    assert!(
        rows.iter().all(|r| r.attributes.is_empty()),
        "the welder list is not read into welds"
    );

    let by_line = rows_by_line(&rows);
    let weld = |line: u32| by_line[&line].weld.clone().expect("weld facts");
    let ymd = |m, d| NaiveDate::from_ymd_opt(2025, m, d);
    assert_eq!(
        (
            by_line[&4].tag.as_str(),
            by_line[&4].drawing_key.as_str(),
            by_line[&4].size.as_str()
        ),
        ("1", "P-26B07 1 OF 2", "2")
    );
    assert_eq!(
        (
            weld(4).stencil.as_deref(),
            weld(4).date_welded,
            weld(4).xray_percent,
            weld(4).nde_result.as_deref()
        ),
        (Some("W-01"), ymd(3, 4), Some(5), Some("PASS"))
    );
    assert_eq!(
        (
            weld(5).nde_result.as_deref(),
            weld(6).xray_percent,
            by_line[&6].size.as_str()
        ),
        (Some("FAIL"), Some(10), "0.75")
    );
    assert_eq!(
        (by_line[&7].tag.as_str(), weld(7).xray_percent),
        ("4A", Some(100))
    );
    assert_eq!(codes(&rows), vec![(8, IssueCode::InvalidWeldType)]);
    assert_eq!(by_line[&9].size, "1.5", "1½ reads as 1.5");
    assert_eq!(outcome.counts.valid, 5);
}

#[test]
fn legacy_xls_declarations_are_ignored_and_only_content_is_held_to_the_limits() {
    let bytes = fixture("legacy-weld-log.xls");
    let (_, original) = run(&bytes, Kind::FieldWelds);
    // DIMENSIONS (type 0x0200, 14 bytes): first row u32, last row + 1 u32, first col, last col + 1.
    let dimensions = bytes
        .windows(4)
        .position(|w| w == [0x00, 0x02, 0x0E, 0x00])
        .expect("a DIMENSIONS record");
    let mut huge = bytes.clone();
    huge[dimensions + 8..dimensions + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut backwards = bytes.clone();
    backwards[dimensions + 4..dimensions + 8].copy_from_slice(&60_000u32.to_le_bytes());
    // What a sheet declares sizes nothing: the same welds are read.
    for (name, file) in [
        ("4 billion rows declared", huge),
        ("last row before the first", backwards),
    ] {
        let (outcome, rows) = run(&file, Kind::FieldWelds);
        assert!(outcome.layout.is_ok(), "{name}");
        assert_eq!(rows, original, "{name}");
    }
    // A LABELSST cell (type 0x00FD, 10 bytes: row, column, format, string) moved to column 60,000:
    // a value there is content, and beyond what an import reads.
    let number = bytes
        .windows(4)
        .position(|w| w == [0xFD, 0x00, 0x0A, 0x00])
        .expect("a LABELSST record");
    let mut far = bytes.clone();
    far[number + 6..number + 8].copy_from_slice(&60_000u16.to_le_bytes());
    let (outcome, rows) = run(&far, Kind::FieldWelds);
    let refused = outcome.layout.expect_err("far");
    assert_eq!(refused.code, IssueCode::FileOverLimits);
    assert!(
        refused.message.contains("beyond column 1024"),
        "{}",
        refused.message
    );
    assert!(rows.is_empty());
    // A compound file that is not a workbook (a .doc) is not an upload.
    let mut doc = cfb::CompoundFile::create(std::io::Cursor::new(Vec::new())).expect("cfb");
    doc.create_stream("/WordDocument")
        .expect("stream")
        .write_all(b"text")
        .expect("write");
    let doc = doc.into_inner().into_inner();
    assert_eq!(source::sniff(&doc), Some(Format::Xls));
    assert_eq!(
        source::sniff_upload(&doc),
        Err((
            IssueCode::UnsupportedFile,
            "The file is a Word document (.doc), not a CSV or an Excel workbook".into()
        ))
    );
    assert_eq!(
        run(&doc, Kind::Takeoff).0.layout.expect_err("doc").code,
        IssueCode::UnsupportedFile
    );
}

#[test]
fn zip_files_that_are_not_workbooks_are_not_uploads() {
    let zip_of = |name: &str| {
        let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        out.start_file(name, zip::write::SimpleFileOptions::default())
            .expect("part");
        out.write_all(b"<x/>").expect("write");
        out.finish().expect("finish").into_inner()
    };
    for (name, what) in [
        ("word/document.xml", "a Word document (.docx)"),
        ("xl/workbook.bin", "an Excel binary workbook (.xlsb)"),
        ("ppt/presentation.xml", "a PowerPoint presentation (.pptx)"),
        ("readme.txt", "a ZIP archive that holds no workbook"),
    ] {
        let refusal = source::sniff_upload(&zip_of(name)).expect_err(name);
        assert_eq!(refusal.0, IssueCode::UnsupportedFile, "{name}");
        assert!(refusal.1.contains(what), "{name}: {}", refusal.1);
    }
    assert_eq!(
        source::sniff_upload(&sample("takeoff-template.xlsx")),
        Ok(Format::Xlsx)
    );
    assert_eq!(source::sniff_upload(b"DRAWING,TYPE\n"), Ok(Format::Csv));
}

#[test]
fn a_semicolon_csv_reads_decimal_commas_and_both_thousands_forms() {
    let text = "DRAWING;TYPE;QTY;CMDTY CODE;SIZE\n\
                P-1;Pipe;12,5;PIPE-A;2\n\
                P-1;Pipe;0,75;PIPE-B;2\n\
                P-1;Pipe;1.250,5;PIPE-C;1,5\n\
                P-1;Pipe;1,250.5;PIPE-D;2\n\
                P-1;Pipe;1.250;PIPE-E;2\n\
                P-1;Valve;1.250,5;V-1;2\n";
    let (outcome, rows) = run(text.as_bytes(), Kind::Takeoff);
    assert_eq!(
        outcome.layout.as_ref().expect("header").decimal,
        Some(pipetrak::domain::import::number::DecimalMark::Comma)
    );
    let quantities: Vec<(&str, f64)> = rows.iter().map(|r| (r.tag.as_str(), r.quantity)).collect();
    assert_eq!(
        quantities[..5],
        [
            ("PIPE-A", 12.5),
            ("PIPE-B", 0.75),
            ("PIPE-C", 1250.5),
            ("PIPE-D", 1250.5),
            ("PIPE-E", 1250.0)
        ]
    );
    assert_eq!(rows[2].size, "1.5");
    assert_eq!(
        codes(&rows),
        vec![(7, IssueCode::InvalidQuantity)],
        "a valve count is whole"
    );
}

#[test]
fn an_ambiguous_number_in_a_file_without_a_decimal_mark_is_a_warning_naming_both_readings() {
    // Tab-separated, and no number that reads only one way: `1,250` could be either.
    let text = "DRAWING\tTYPE\tQTY\tCMDTY CODE\nP-1\tPipe\t1,250\tPIPE-A\nP-1\tPipe\t7\tPIPE-B\n";
    let (outcome, rows) = run(text.as_bytes(), Kind::Takeoff);
    assert_eq!(outcome.layout.as_ref().expect("header").decimal, None);
    assert_eq!(codes(&rows), vec![(2, IssueCode::AmbiguousNumber)]);
    assert_eq!(
        rows[0].issues[0].message,
        "\"1,250\" reads as 1250 or 1.25; 1250 is used"
    );
    assert_eq!(rows[0].quantity, 1250.0);
    // The same file with a number that shows the decimal comma reads it without a warning.
    let shown = text.replace("\t7\t", "\t7,5\t");
    let (_, rows) = run(shown.as_bytes(), Kind::Takeoff);
    assert_eq!(codes(&rows), vec![]);
    assert_eq!((rows[0].quantity, rows[1].quantity), (1.25, 7.5));
}

#[test]
fn a_utf8_file_keeps_its_utf8_lines_when_one_line_is_windows_1252() {
    let mut bytes = "DRAWING,TYPE,QTY,CMDTY CODE,SIZE,COMMENTS\nP-1,Valve,1,V1,2,Straße ½ café\n"
        .as_bytes()
        .to_vec();
    bytes.extend_from_slice(b"P-1,Valve,1,V2,2,90\xB0 elbow\n");
    bytes.extend_from_slice(
        "P-1,Valve,1,V3,2,\"naïve\nzweite Zeile\"\nP-1,Valve,1,V4,2,Ørsted\n".as_bytes(),
    );
    let (outcome, rows) = run(&bytes, Kind::Takeoff);
    assert!(!file_codes(&outcome).contains(&IssueCode::DecodedWindows1252));
    let comments: Vec<&str> = rows
        .iter()
        .map(|r| r.attributes["comments"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        comments,
        [
            "Straße ½ café",
            "90° elbow",
            "naïve\nzweite Zeile",
            "Ørsted"
        ]
    );
    assert_eq!(codes(&rows), vec![(3, IssueCode::LineNotUtf8)]);
    assert_eq!(rows[1].status, RowStatus::Valid, "a warning, not an error");
}

#[test]
fn header_only_files_have_no_data_rows_and_empty_files_are_empty() {
    let (outcome, rows) = run(b"DRAWING,TYPE,QTY,CMDTY CODE\n\n,,,\n", Kind::Takeoff);
    assert!(rows.is_empty());
    assert_eq!(file_codes(&outcome), vec![IssueCode::NoDataRows]);
    assert_eq!(outcome.counts.errors, 1);
    let (outcome, _) = run(b"", Kind::Takeoff);
    assert_eq!(
        outcome.layout.expect_err("empty").code,
        IssueCode::EmptyFile
    );
}

#[test]
fn cells_longer_than_10000_characters_make_the_row_invalid_and_are_not_kept() {
    let long = "x".repeat(10_001);
    let text = format!(
        "{TAKEOFF}P-1,Valve,1,V1,2,{long}\nP-1,Valve,1,V2,2,{}\n",
        "y".repeat(10_000)
    );
    let (_, rows) = run(text.as_bytes(), Kind::Takeoff);
    assert_eq!(codes(&rows), vec![(2, IssueCode::ValueTooLong)]);
    assert_eq!(rows[0].issues[0].column.as_deref(), Some("COMMENTS"));
    assert!(
        rows[0].attributes.get("comments").is_none(),
        "the long text is not staged"
    );
    assert_eq!(rows[1].status, RowStatus::Valid);
}

#[test]
fn day_first_dates_are_read_by_the_files_own_order() {
    let header = "WELD ID,DRAWING,DATE WELDED\n";
    // 13/04/2025 shows day first: 03/04/2025 is then April 3.
    let (_, rows) = run(
        format!("{header}1,P-1,13/04/2025\n2,P-1,03/04/2025\n").as_bytes(),
        Kind::FieldWelds,
    );
    let dates: Vec<_> = rows
        .iter()
        .map(|r| r.weld.as_ref().and_then(|w| w.date_welded))
        .collect();
    assert_eq!(
        dates,
        [
            NaiveDate::from_ymd_opt(2025, 4, 13),
            NaiveDate::from_ymd_opt(2025, 4, 3)
        ]
    );
    assert_eq!(codes(&rows), vec![]);
    // Nothing shows the order: a warning naming both readings.
    let (_, rows) = run(
        format!("{header}1,P-1,03/04/2025\n").as_bytes(),
        Kind::FieldWelds,
    );
    assert_eq!(codes(&rows), vec![(2, IssueCode::AmbiguousDate)]);
    assert_eq!(rows[0].issues[0].message, "\"03/04/2025\" reads as 2025-03-04 (month first) or 2025-04-03 (day first); 2025-03-04 is used");
}

#[test]
fn drawing_numbers_and_sizes_as_the_field_writes_them() {
    let text = "DRAWING,TYPE,QTY,CMDTY CODE,SIZE\n\
                P\u{2013}26B07,Valve,1,V1,½\n\
                Ｐ－２６Ｂ０７,Valve,1,V2,¾\n\
                P - 26B07,Valve,1,V3,NPS 2\n\
                P-100 Sh 1 of 2,Valve,1,V4,2 in\n\
                P-100 (01of02),Valve,1,V5,DN50\n\
                P-100 SHT 1 OF 2,Valve,1,V6,50mm\n";
    let (outcome, rows) = run(text.as_bytes(), Kind::Takeoff);
    assert_eq!(outcome.counts.warnings, 0);
    assert_eq!(
        drawings(&rows),
        BTreeSet::from(["P-26B07".to_string(), "P-100 1 OF 2".to_string()])
    );
    let sizes: Vec<&str> = rows.iter().map(|r| r.size.as_str()).collect();
    assert_eq!(sizes, ["0.5", "0.75", "2", "2", "2", "2"]);
}

#[test]
fn common_header_spellings_from_real_files_map() {
    let text = "Line Number,Item Type,totalQuantity,Item Code,Nominal Size,Item Description\nP-1,Valve,3,V1,2,Gate valve\n";
    let (outcome, rows) = run(text.as_bytes(), Kind::Takeoff);
    assert!(
        file_codes(&outcome).is_empty(),
        "{:?}",
        file_codes(&outcome)
    );
    assert_eq!(
        (rows[0].quantity, rows[0].description.as_deref()),
        (3.0, Some("Gate valve"))
    );
    let text =
        "Weld No.,ISO Number,Welder,Weld Date,Joint Type,Qty Total\n7,P-1,W-01,2025-01-02,BW,1\n";
    let (outcome, rows) = run(text.as_bytes(), Kind::FieldWelds);
    let layout = outcome.layout.expect("header");
    assert_eq!(
        rows[0].weld.as_ref().and_then(|w| w.stencil.as_deref()),
        Some("W-01")
    );
    assert_eq!(
        layout.mapping.extra.len(),
        1,
        "only Qty Total is kept as an attribute"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// However a UTF-8 file with stray Windows-1252 lines is cut into reads, it reads the same.
    #[test]
    fn any_split_of_a_mixed_encoding_file_reads_the_same(
        lines in proptest::collection::vec((any::<bool>(), "[a-c é°ß½]{0,12}"), 1..60),
        bytes_per_read in 1usize..48,
    ) {
        let mut bytes = TAKEOFF.as_bytes().to_vec();
        for (i, (stray, comment)) in lines.iter().enumerate() {
            let line = format!("P-1,Valve,1,V{i},2,\"{comment}\"\n");
            if *stray {
                bytes.extend_from_slice(&encoding_rs::WINDOWS_1252.encode(&line).0);
            } else {
                bytes.extend_from_slice(line.as_bytes());
            }
        }
        let (whole, whole_rows) = run(&bytes, Kind::Takeoff);
        let (pieces, piece_rows) = run_dribbled(&bytes, Kind::Takeoff, bytes_per_read);
        prop_assert_eq!(&whole.counts, &pieces.counts);
        prop_assert_eq!(&whole_rows, &piece_rows);
        // Each line reads back as written, whichever encoding it was in (unless its Windows-1252
        // bytes happen to be UTF-8 too, like `é½` = E9 BD: then they are UTF-8).
        for (row, (stray, comment)) in whole_rows.iter().zip(&lines) {
            let encoded = encoding_rs::WINDOWS_1252.encode(comment).0;
            let expected = match std::str::from_utf8(&encoded) {
                Ok(text) if *stray => text.to_string(),
                _ => comment.clone(),
            };
            prop_assert_eq!(row.attributes.get("comments").and_then(|c| c.as_str()).unwrap_or(""), expected.trim());
        }
    }
}

#[test]
fn a_man_hour_column_stages_each_rows_budget_and_refuses_what_is_not_one() {
    let csv = "DRAWING,TYPE,QTY,CMDTY CODE,SIZE,MAN HOURS\n\
               P-1,Valve,2,V-1,2,12.5\n\
               P-1,Valve,1,V-2,2,\n\
               P-1,Valve,1,V-3,2,lots\n\
               P-1,Valve,1,V-4,2,-3\n";
    let (_, rows) = run(csv.as_bytes(), Kind::Takeoff);
    let budget = |line: u32| {
        rows.iter()
            .find(|r| r.line == line)
            .and_then(|r| r.attributes.get("pipetrak_budget_mh").cloned())
    };
    assert_eq!(budget(2), Some(serde_json::json!(12.5)));
    assert_eq!(budget(3), None, "an empty cell is no budget");
    assert!(has(&rows, 4, IssueCode::InvalidBudget));
    assert!(has(&rows, 5, IssueCode::InvalidBudget));
    assert_eq!(
        rows.iter()
            .filter(|r| r.status == RowStatus::Invalid)
            .count(),
        2
    );
    assert!(rows.iter().all(|r| !r.attributes.contains_key("MAN HOURS")));
}

// ---- real files' traits and hostile containers (generated: tests/corpus) ----

fn error_rows(rows: &[ImportRow]) -> usize {
    rows.iter().filter(|r| r.status != RowStatus::Valid).count()
}

#[test]
fn an_estimating_takeoff_whose_pivot_cache_packs_150_times_imports_every_row() {
    let bytes = corpus::takeoff_with_pivot_cache(400, 70 << 20);
    let (packed, unpacked) = corpus::part_sizes(&bytes, "xl/pivotCache/pivotCacheRecords1.xml");
    assert!(unpacked >= 150 * packed, "{unpacked} / {packed}");
    let (outcome, rows) = run(&bytes, Kind::Takeoff);
    let layout = outcome.layout.expect("a header");
    assert_eq!(layout.sheet.as_deref(), Some("Takeoff"));
    assert_eq!((rows.len(), error_rows(&rows)), (400, 0));
    assert_eq!(component_count(&rows), 400);
    // Rows 1..=400, 20 a drawing: P-000 holds rows 1..=19, P-020 row 400 alone.
    assert_eq!(drawings(&rows).len(), 21);
}

#[test]
fn a_legacy_weld_log_with_a_declared_range_and_formatting_only_cells_imports_every_weld() {
    let book = corpus::legacy_weld_log(5_000, false);
    let stream = book.stream();
    // The traits of the real file: 60,000 BLANK and 5,000 MULBLANK records, DIMENSIONS 20,000 × 160.
    let mut kinds = std::collections::HashMap::new();
    let mut at = 0;
    while at + 4 <= stream.len() {
        let kind = u16::from_le_bytes([stream[at], stream[at + 1]]);
        let len = u16::from_le_bytes([stream[at + 2], stream[at + 3]]) as usize;
        *kinds.entry(kind).or_insert(0) += 1;
        at += 4 + len;
    }
    assert_eq!((kinds[&0x0201], kinds[&0x00BE]), (60_000, 5_000));
    let (outcome, rows) = run(&book.file(), Kind::FieldWelds);
    let layout = outcome.layout.expect("a header");
    assert_eq!(
        (layout.format, layout.sheet.as_deref(), layout.header_line),
        (Format::Xls, Some("Weld Log"), 1)
    );
    assert_eq!((rows.len(), error_rows(&rows)), (5_000, 0));
    assert_eq!(drawings(&rows).len(), 500);
    let first = rows[0].weld.as_ref().expect("a weld");
    assert_eq!(first.date_welded, NaiveDate::from_ymd_opt(2025, 1, 16));
    assert_eq!(first.stencil.as_deref(), Some("K-02"));
    assert_eq!(rows[4_999].tag, "W-05000");
}

#[test]
fn serial_dates_of_1904_workbooks_follow_the_1904_system_in_both_formats() {
    let (outcome, rows) = run(&corpus::legacy_weld_log(3, true).file(), Kind::FieldWelds);
    assert!(outcome.layout.is_ok());
    // Row 1: serial 44211 of the 1904 system.
    assert_eq!(
        rows[0].weld.as_ref().and_then(|w| w.date_welded),
        NaiveDate::from_ymd_opt(2025, 1, 16)
    );
    let (outcome, rows) = run(&corpus::general_serials_1904(), Kind::FieldWelds);
    assert!(outcome.layout.is_ok());
    assert_eq!(
        rows[0].weld.as_ref().and_then(|w| w.date_welded),
        NaiveDate::from_ymd_opt(2025, 1, 15)
    );
}

#[test]
fn the_visible_sheet_is_read_before_a_hidden_one_with_the_same_header_and_the_report_says_so() {
    let (outcome, rows) = run(&corpus::hidden_first_sheet(), Kind::Takeoff);
    let layout = outcome.layout.expect("a header");
    assert_eq!(layout.sheet.as_deref(), Some("Rev B"));
    let reason = layout.sheet_reason.clone().expect("a reason");
    assert!(reason.contains("first visible sheet"), "{reason}");
    assert!(rows.iter().all(|r| r.tag.starts_with("NEW-")));
    let note = layout
        .notes
        .iter()
        .find(|n| n.code == IssueCode::OtherSheetsSameHeader)
        .expect("a note about the hidden sheet");
    assert!(
        note.message.contains("\"Rev A\" (hidden)"),
        "{}",
        note.message
    );
}

#[test]
fn a_units_row_and_headers_printed_again_are_skipped_with_one_note() {
    let (outcome, rows) = run(&corpus::report_with_repeated_headers(), Kind::Takeoff);
    let layout = outcome.layout.expect("a header");
    assert_eq!((rows.len(), error_rows(&rows)), (12, 0));
    let notes: Vec<_> = layout
        .notes
        .iter()
        .filter(|n| n.code == IssueCode::HeaderRowsSkipped)
        .collect();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].line, 2);
    assert!(
        notes[0].message.contains("row 2 holds units") && notes[0].message.contains("rows 7, 12"),
        "{}",
        notes[0].message
    );
}

#[test]
fn damaged_workbooks_and_other_formats_are_named() {
    let whole = workbook(|book| {
        book.add_worksheet().write(0, 0, "DRAWING")?;
        Ok(())
    });
    let cut = &whole[..whole.len() / 2];
    let (code, message) = source::sniff_upload(cut).expect_err("cut");
    assert_eq!(code, IssueCode::DamagedFile);
    assert!(
        message.starts_with("The workbook is damaged or incomplete ("),
        "{message}"
    );
    assert_eq!(
        run(cut, Kind::Takeoff).0.layout.expect_err("cut").code,
        IssueCode::DamagedFile
    );
    let legacy = corpus::legacy_weld_log(3, false).file();
    let (code, _) = source::sniff_upload(&legacy[..legacy.len() / 3]).expect_err("cut .xls");
    assert_eq!(code, IssueCode::DamagedFile);
    for (file, what) in [
        (corpus::pdf(), "a PDF document"),
        (corpus::png(), "a PNG picture"),
        (b"\xFF\xD8\xFF\xE0\0\x10JFIF".to_vec(), "a JPEG picture"),
    ] {
        let (code, message) = source::sniff_upload(&file).expect_err(what);
        assert_eq!(code, IssueCode::UnsupportedFile);
        assert!(message.contains(what), "{message}");
    }
}

#[test]
fn legacy_containers_that_mislead_a_reader_import_what_the_directory_links_or_are_refused() {
    // The orphan `Workbook` entry is not a stream: the linked workbook's 3 rows are read.
    let (outcome, rows) = run(&corpus::orphan_workbook_entry(), Kind::Takeoff);
    assert!(outcome.layout.is_ok(), "{:?}", outcome.layout.err());
    assert_eq!(rows.len(), 3);
    // A chain running past the end of the file: refused as damaged, or read as far as it goes.
    let (outcome, rows) = run(&corpus::fat_past_the_end(), Kind::Takeoff);
    match outcome.layout {
        Ok(_) => assert!(rows.len() <= 200),
        Err(issue) => assert_eq!(issue.code, IssueCode::DamagedFile, "{}", issue.message),
    }
    // Values on both sides of an embedded substream count as one sheet's span.
    let (outcome, rows) = run(&corpus::cells_around_a_substream(), Kind::Takeoff);
    let refused = outcome.layout.expect_err("span");
    assert_eq!(refused.code, IssueCode::FileOverLimits);
    assert!(
        refused.message.contains("16777216 cells"),
        "{}",
        refused.message
    );
    assert!(rows.is_empty());
    // 40 names for one sheet: the sheet is read once.
    let (outcome, rows) = run(&corpus::shared_boundsheets(), Kind::Takeoff);
    let layout = outcome.layout.expect("a header");
    assert_eq!(layout.sheet.as_deref(), Some("Sheet1"));
    assert_eq!(rows.len(), 31_249);
    // A million sheets: beyond the stream an import reads.
    let (outcome, _) = run(&corpus::a_million_sheets(), Kind::Takeoff);
    let refused = outcome.layout.expect_err("a million sheets");
    assert_eq!(refused.code, IssueCode::FileOverLimits);
    assert!(
        refused.message.contains("(at most 16 MB)"),
        "{}",
        refused.message
    );
}

// ---- Schedules and timesheets (project controls) ----

fn controls(row: &ImportRow) -> &serde_json::Value {
    row.attributes
        .get("pipetrak_controls")
        .expect("typed values")
}

/// A Primavera P6 export as it comes out of P6's Excel export: field codes on the first row, the
/// labels on the second, dates with a time of day, `*` on a constrained date and ` A` on an
/// actual one, budgeted labor units, and an activity code column for the area.
#[test]
fn a_p6_schedule_export_reads_with_its_two_header_rows() {
    let bytes = workbook(|book| {
        let sheet = book.add_worksheet().set_name("TASK")?;
        let rows = [
            [
                "task_code",
                "task_name",
                "start_date",
                "end_date",
                "target_work_qty",
                "AREA",
            ],
            [
                "Activity ID",
                "Activity Name",
                "Start",
                "Finish",
                "Budgeted Labor Units",
                "Area",
            ],
            [
                "A1000",
                "Install piping, unit 100",
                "02-Mar-26 08:00 A",
                "29-May-26 17:00",
                "1,200",
                "U-100",
            ],
            [
                "A1010",
                "Hydrotest, unit 100",
                "01-Jun-26*",
                "12-Jun-26 17:00",
                "",
                "U-100",
            ],
            [
                "A1020",
                "Install piping, unit 200",
                "01-Apr-26",
                "15-Mar-26",
                "800",
                "U-200",
            ],
        ];
        for (r, row) in rows.iter().enumerate() {
            for (c, text) in row.iter().enumerate() {
                sheet.write(r as u32, c as u16, *text)?;
            }
        }
        Ok(())
    });
    let (outcome, rows) = run(&bytes, Kind::Schedule);
    let layout = outcome.layout.expect("a header");
    assert_eq!(layout.header_line, 1, "the field codes head the table");
    assert!(
        layout
            .notes
            .iter()
            .any(|n| n.code == IssueCode::HeaderRowsSkipped
                && n.message.contains("row 2 names the columns again")),
        "{:?}",
        layout.notes
    );
    assert_eq!(rows.len(), 3, "the labels row is not data");
    assert_eq!(rows[0].tag, "A1000");
    assert_eq!(
        controls(&rows[0]),
        &serde_json::json!({"name": "Install piping, unit 100", "planned_start": "2026-03-02",
                            "planned_finish": "2026-05-29", "weight": null, "curve": "linear",
                            "group_by": "area", "group": "U-100"})
    );
    assert_eq!(
        rows[0].attributes.get("pipetrak_budget_mh"),
        Some(&serde_json::json!(1200.0))
    );
    assert_eq!(
        controls(&rows[1])["planned_start"],
        "2026-06-01",
        "a constrained start"
    );
    assert_eq!(rows[1].status, RowStatus::Valid);
    assert!(has(&rows, 5, IssueCode::FinishBeforeStart));
    assert_eq!(rows[2].status, RowStatus::Invalid);
}

#[test]
fn schedule_rows_are_checked_cell_by_cell() {
    let csv = "ACTIVITY ID,NAME,PLANNED START,PLANNED FINISH,WEIGHT,CURVE,SYSTEM\n\
               S-1,Steam,2026-01-05,2026-03-01,2,S Curve,STM\n\
               S-2,Water,2026-01-05,soon,0,steep,\n\
               ,Orphan,2026-01-05,2026-01-06,,,\n\
               S-3,Air,2027-01-05,2027-02-01,,back-loaded,AIR\n";
    let (outcome, rows) = run(csv.as_bytes(), Kind::Schedule);
    assert!(outcome.layout.is_ok());
    assert_eq!(controls(&rows[0])["curve"], "s_curve");
    assert_eq!(controls(&rows[0])["weight"], 2.0);
    assert_eq!(controls(&rows[0])["group_by"], "system");
    assert!(has(&rows, 3, IssueCode::InvalidDate));
    assert!(has(&rows, 3, IssueCode::InvalidWeight));
    assert!(has(&rows, 3, IssueCode::InvalidCurve));
    assert_eq!(
        controls(&rows[1])["group_by"],
        "project",
        "no group named: the project"
    );
    assert!(
        has(&rows, 4, IssueCode::MissingValue),
        "an activity needs its id"
    );
    assert_eq!(
        rows[3].status,
        RowStatus::Valid,
        "a plan may lie in the future"
    );
    assert_eq!(controls(&rows[3])["curve"], "back_loaded");
}

#[test]
fn timesheet_rows_are_checked_cell_by_cell() {
    let csv = "DATE,EMPLOYEE,CREW,TRADE,HRS,AREA,NOTES\n\
               2026-11-23,J. Ortiz,C1,Pipefitter,10,U-100,\n\
               2026-11-23,,C2,Welder,7.5,,night shift\n\
               2026-11-24,,,Welder,8,,\n\
               2026-11-24,K. Lee,,Welder,-3,,\n\
               2026-12-24,K. Lee,,Welder,8,,\n\
               2026-11-24,K. Lee,,Welder,8.125,,\n";
    let (outcome, rows) = run(csv.as_bytes(), Kind::Timesheet);
    assert!(outcome.layout.is_ok());
    assert_eq!(
        controls(&rows[0]),
        &serde_json::json!({"work_date": "2026-11-23", "person": "J. Ortiz", "crew": "C1", "craft": "Pipefitter",
                            "hours": 10.0, "group_by": "area", "group": "U-100"})
    );
    assert_eq!(rows[1].status, RowStatus::Valid);
    assert_eq!(controls(&rows[1])["group_by"], "project");
    assert!(has(&rows, 4, IssueCode::MissingValue), "nobody named");
    assert!(has(&rows, 5, IssueCode::InvalidHours));
    assert!(has(&rows, 6, IssueCode::FutureDate));
    assert!(
        has(&rows, 7, IssueCode::InvalidHours),
        "hours to the hundredth"
    );
    assert_eq!(outcome.counts.valid, 2);
    // What the dry run would record, summed per group charged by the reader (valid rows only).
    let charged: Vec<_> = outcome
        .found
        .charged
        .iter()
        .map(|((by, group), c)| {
            (
                by.as_str(),
                group.as_deref(),
                c.rows,
                c.hundredths,
                c.weeks.len(),
            )
        })
        .collect();
    assert_eq!(
        charged,
        vec![
            ("area", Some("U-100"), 1, 1000, 1),
            ("project", None, 1, 750, 1)
        ]
    );
}

#[test]
fn controls_rows_keep_their_own_values_and_real_dates() {
    // A column headed like the key the typed values are staged under is not kept; a year-0 date,
    // hours that round to nothing and a weight below 0.0001 are refused.
    let csv = "DATE,EMPLOYEE,HRS,pipetrak_controls,pipetrak_budget_mh\n\
               2026-11-23,J. Ortiz,8,forged,99\n\
               0000-06-01,J. Ortiz,8,,\n\
               2026-11-23,J. Ortiz,0.000001,,\n";
    let (_, rows) = run(csv.as_bytes(), Kind::Timesheet);
    assert_eq!(controls(&rows[0])["hours"], 8.0);
    assert!(!rows[0].attributes.contains_key("pipetrak_budget_mh"));
    assert_eq!(rows[0].status, RowStatus::Valid);
    assert!(has(&rows, 3, IssueCode::InvalidDate));
    assert!(has(&rows, 4, IssueCode::InvalidHours));
    let csv = "ACTIVITY ID,START,FINISH,WEIGHT\nA,2026-01-01,2026-02-01,0.00001\n";
    let (_, rows) = run(csv.as_bytes(), Kind::Schedule);
    assert!(has(&rows, 2, IssueCode::InvalidWeight));
}

/// A schedule export shows the current dates beside the baseline's: the baseline is planned on the
/// baseline's dates, whichever column comes first, and the other is reported as read no further.
#[test]
fn a_schedule_is_planned_on_its_baseline_dates() {
    let csv = "Activity ID,Start,Finish,BL Project Start,BL Project Finish\n\
               A1000,15-Apr-26,30-Jun-26,02-Mar-26,29-May-26\n";
    let (outcome, rows) = run(csv.as_bytes(), Kind::Schedule);
    let layout = outcome.layout.expect("a header");
    assert_eq!(controls(&rows[0])["planned_start"], "2026-03-02");
    assert_eq!(controls(&rows[0])["planned_finish"], "2026-05-29");
    let repeated: Vec<_> = layout
        .notes
        .iter()
        .filter(|n| n.code == IssueCode::DuplicateColumn)
        .map(|n| n.column.clone().unwrap_or_default())
        .collect();
    assert_eq!(repeated, vec!["Start", "Finish"]);
    // Baseline columns first: the same.
    let csv = "Activity ID,BL Project Start,BL Project Finish,Start,Finish\n\
               A1000,02-Mar-26,29-May-26,15-Apr-26,30-Jun-26\n";
    let (_, rows) = run(csv.as_bytes(), Kind::Schedule);
    assert_eq!(controls(&rows[0])["planned_start"], "2026-03-02");
}
