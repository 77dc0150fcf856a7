//! The remediation CSV (spec §6): the rows with issues in their original columns, plus one column
//! with their codes and messages. It reads back as a file of the same kind: the issues column is
//! recognised and ignored.

use super::columns::REMEDIATION_HEADER;

/// One row of the report: its original cells and what is wrong with it.
pub struct ReportRow {
    pub cells: Vec<String>,
    pub notes: String,
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
