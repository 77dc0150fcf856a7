//! The remediation CSV (spec §6): the rows with issues in their original columns, plus the row
//! number in the original file, a reference to that row (`<import id>:<row>`), and their codes and
//! messages. It reads back as a file of the same kind: the row and issues columns are read as
//! nothing, and the reference ties each fixed row to what its original row created (see the
//! commit), so a fixed row corrects instead of adding. A report of a report keeps pointing at the
//! first file's rows.

use super::cell::{neutralize_formula, Cell};
use super::columns::{
    header_key, REMEDIATION_HEADER, REMEDIATION_REF_HEADER, REMEDIATION_ROW_HEADER,
};
use super::file::FileSource;
use super::{source, Kind};
use std::collections::BTreeSet;

/// One row of the report: its original cells, the row it stands for and what is wrong with it.
pub struct ReportRow {
    pub cells: Vec<String>,
    /// The row in the original file.
    pub row: u32,
    /// `<import id>:<row>` of the original row.
    pub reference: String,
    pub notes: String,
}

/// The original cells of the given rows (numbered as Excel numbers them), read again from the
/// file: validation keeps only the normalized rows, so a report re-reads the few it needs.
pub fn original_cells(
    file: &mut dyn FileSource,
    kind: Kind,
    lines: &BTreeSet<u32>,
) -> Vec<(u32, Vec<String>)> {
    let mut found = Vec::with_capacity(lines.len());
    // A file that no longer reads has no rows to report; the caller reports none.
    let _ = source::read(file, kind, &mut |_, row| {
        if lines.contains(&row.line) {
            found.push((row.line, row.cells.iter().map(Cell::text).collect()));
        }
    });
    found
}

/// Writes the report as UTF-8 CSV with a BOM, so Excel opens special characters correctly. Cells
/// that would run as formulas are neutralized (see `neutralize_formula`). The columns a report
/// adds are written last, once: those of a report read back in are left out first.
pub fn remediation_csv(header: &[String], rows: &[ReportRow]) -> Result<Vec<u8>, csv::Error> {
    let own: Vec<String> = [
        REMEDIATION_ROW_HEADER,
        REMEDIATION_REF_HEADER,
        REMEDIATION_HEADER,
    ]
    .iter()
    .map(|h| header_key(h))
    .collect();
    let kept: Vec<usize> = (0..header.len())
        .filter(|&i| !own.contains(&header_key(&header[i])))
        .collect();
    let mut out = b"\xEF\xBB\xBF".to_vec();
    {
        let mut writer = csv::WriterBuilder::new()
            .flexible(true)
            .from_writer(&mut out);
        let mut record: Vec<&str> = kept.iter().map(|&i| header[i].as_str()).collect();
        record.extend([
            REMEDIATION_ROW_HEADER,
            REMEDIATION_REF_HEADER,
            REMEDIATION_HEADER,
        ]);
        writer.write_record(&record)?;
        for row in rows {
            let mut record: Vec<std::borrow::Cow<'_, str>> = kept
                .iter()
                .map(|&i| {
                    row.cells
                        .get(i)
                        .map_or("".into(), |c| neutralize_formula(c))
                })
                .collect();
            record.push(row.row.to_string().into());
            record.push(row.reference.as_str().into());
            record.push(neutralize_formula(&row.notes));
            let record: Vec<&str> = record.iter().map(|c| c.as_ref()).collect();
            writer.write_record(&record)?;
        }
        writer.flush()?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::import::cell::restore_formula;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_neutralized_cell_never_starts_a_formula_and_restores_exactly(cell in "['=+@\t\r-]{0,3}[ -~]{0,6}") {
            let written = neutralize_formula(&cell);
            prop_assert!(!written.starts_with(['=', '+', '-', '@', '\t', '\r']));
            prop_assert_eq!(restore_formula(&written).unwrap_or(&written), cell.as_str());
        }
    }
}
