//! The remediation CSV (spec §6): the rows with issues in their original columns, plus one column
//! with their codes and messages. It reads back as a file of the same kind: the issues column is
//! recognised and ignored.

use super::cell::Cell;
use super::columns::REMEDIATION_HEADER;
use super::{source, Kind};
use std::collections::BTreeSet;

/// One row of the report: its original cells and what is wrong with it.
pub struct ReportRow {
    pub cells: Vec<String>,
    pub notes: String,
}

/// The original cells of the given rows (numbered as Excel numbers them), read again from the
/// file: validation keeps only the normalized rows, so a report re-reads the few it needs.
pub fn original_cells(bytes: &[u8], kind: Kind, lines: &BTreeSet<u32>) -> Vec<(u32, Vec<String>)> {
    let mut found = Vec::with_capacity(lines.len());
    // A file that no longer reads has no rows to report; the caller reports none.
    let mut file = bytes;
    let _ = source::read(&mut file, kind, &mut |_, (line, cells)| {
        if lines.contains(&line) {
            found.push((line, cells.iter().map(Cell::text).collect()));
        }
    });
    found
}

/// Writes the report as UTF-8 CSV with a BOM, so Excel opens special characters correctly.
pub fn remediation_csv(header: &[String], rows: &[ReportRow]) -> Result<Vec<u8>, csv::Error> {
    let mut out = b"\xEF\xBB\xBF".to_vec();
    {
        let mut writer = csv::WriterBuilder::new().flexible(true).from_writer(&mut out);
        let width = header.len();
        let mut record: Vec<&str> = header.iter().map(String::as_str).collect();
        record.push(REMEDIATION_HEADER);
        writer.write_record(&record)?;
        for row in rows {
            let mut record: Vec<&str> = row.cells.iter().take(width).map(String::as_str).collect();
            record.resize(width, "");
            record.push(&row.notes);
            writer.write_record(&record)?;
        }
        writer.flush()?;
    }
    Ok(out)
}
