//! Imports (spec §6): a file's bytes (`file`) → rows of cells (`source`), a header mapped to fields
//! (`columns`), every row normalized and checked (`validate`), and the remediation CSV (`report`).
//! Validation results are data — a list of issues per row — never a stop at the first problem.
//!
//! Design notes (decisions where the spec was silent):
//! - Imports — reading. The header is the first row within rows 1–20 that maps every required
//!   column; in a workbook the first sheet that has one, visible sheets before hidden ones. CSV delimiter = the one of `, ; tab |`
//!   whose reading gives the best header. No BOM + invalid UTF-8 → Windows-1252 (an info issue says
//!   so); UTF-16 with a BOM is read too. Row numbers are Excel's: blank lines count, line breaks
//!   inside quoted cells don't. Excel integers print as `1`, booleans as TRUE/FALSE, date cells as
//!   dates (1900 and 1904 systems), formula cells give their cached value, error cells (`#N/A`) are
//!   a `cell_error`.
//! - Imports — rows. Errors make a row invalid (never committed; the commit refuses while there are
//!   any unless `skip_invalid_rows => true`); warnings and infos don't. QTY 0 = skipped with a
//!   warning; an empty QTY cell = 1 with a warning; at most 10,000 items or 1,000,000 ft per row.
//!   Spools/welds/instruments with QTY > 1 create one (warning). X-ray: `5%`, `5`, `0.05` all mean
//!   5; a bare number ≤ 1 is a fraction, so `1` = 100 %; tiers are 0/5/10/100 (the sample log's 50
//!   and 75 are errors). `ACC`/`REJ` are read as PASS/FAIL. Dates in the future are errors.
//!   Unmapped columns (and COMMENTS, as `comments`) go to `attributes`; the remediation CSV's own
//!   `PIPETRAK ISSUES` column is ignored on the way back in.

pub mod cell;
pub mod columns;
pub mod file;
pub mod issue;
pub mod limits;
pub mod number;
pub mod report;
pub mod source;
pub mod validate;
pub mod xls;

pub use issue::{Issue, IssueCode, Severity};

/// What a file holds: a material takeoff (components), a field-weld log, a schedule export (a
/// baseline's activities) or a timesheet (actual hours).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString, strum::EnumIter,
)]
#[strum(serialize_all = "snake_case")]
pub enum Kind {
    Takeoff,
    FieldWelds,
    Schedule,
    Timesheet,
}

impl Kind {
    pub fn parse(text: &str) -> Option<Kind> {
        text.parse().ok()
    }

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Rows are committed in chunks of this many data rows, each in its own transaction when it can.
pub const CHUNK_ROWS: u32 = 5_000;
