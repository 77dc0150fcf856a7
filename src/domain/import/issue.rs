//! What validation found: one issue per (row, column, problem), with a stable code.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// Every issue an import can report. The snake_case key is the stable code clients match on.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString, strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
pub enum IssueCode {
    // The file as a whole.
    UnsupportedFile,
    DamagedFile,
    FileOverLimits,
    EmptyFile,
    HeaderNotFound,
    MissingRequiredColumn,
    QuantityColumnMissing,
    DuplicateColumn,
    UnmappedColumn,
    #[strum(serialize = "decoded_windows_1252")]
    DecodedWindows1252,
    NoDataRows,
    PlaceholderRows,
    ColumnsBesideTable,
    OtherSheetsSameHeader,
    HeaderRowsSkipped,
    // One row.
    #[strum(serialize = "line_not_utf8")]
    LineNotUtf8,
    AmbiguousNumber,
    AmbiguousDate,
    MissingValue,
    ValueTooLong,
    CellError,
    UnknownComponentType,
    InvalidQuantity,
    InvalidBudget,
    QuantityTooLarge,
    ZeroQuantity,
    QuantityDefaulted,
    QuantityIgnored,
    UnparsedSize,
    DuplicateId,
    IdenticalRows,
    RowsMerged,
    NotAFieldWeld,
    InvalidWeldType,
    InvalidXrayPercent,
    InvalidBoolean,
    InvalidNdeType,
    InvalidStencil,
    InvalidDate,
    FutureDate,
    InvalidNdeResult,
    InvalidReference,
    FinishBeforeStart,
    InvalidWeight,
    InvalidCurve,
    InvalidHours,
    // Found by comparing with the rest of the file or with the project (added in SQL).
    SimilarDrawingInFile,
    SimilarDrawingExists,
    QuantityBelowExisting,
    UnknownReference,
    WeldNumberElsewhere,
    FieldValueKept,
    RetiredNotRestored,
    UnknownGroup,
    ScheduleImportedWhole,
    SameFileImported,
}

impl IssueCode {
    pub const ALL: &'static [IssueCode] = <IssueCode as strum::VariantArray>::VARIANTS;

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(code: &str) -> Option<IssueCode> {
        code.parse().ok()
    }

    pub fn severity(self) -> Severity {
        use IssueCode::*;
        match self {
            QuantityColumnMissing
            | DuplicateColumn
            | ZeroQuantity
            | QuantityDefaulted
            | QuantityIgnored
            | UnparsedSize
            | IdenticalRows
            | LineNotUtf8
            | AmbiguousNumber
            | AmbiguousDate
            | SimilarDrawingInFile
            | InvalidReference
            | UnknownReference
            | SimilarDrawingExists
            | QuantityBelowExisting
            | FieldValueKept
            | RetiredNotRestored
            | SameFileImported => Severity::Warning,
            UnmappedColumn
            | DecodedWindows1252
            | RowsMerged
            | PlaceholderRows
            | ColumnsBesideTable
            | WeldNumberElsewhere
            | OtherSheetsSameHeader
            | HeaderRowsSkipped => Severity::Info,
            _ => Severity::Error,
        }
    }

    /// What to do about it: shown beside the message in the report and the remediation CSV.
    pub fn hint(self) -> &'static str {
        use IssueCode::*;
        match self {
            UnsupportedFile => "Upload a CSV (comma, semicolon or tab separated) or an Excel workbook (.xlsx, or .xls from Excel 97–2003).",
            DamagedFile => "Open the file in Excel (it repairs what it can) and save it again, or upload it again if the upload was cut short.",
            FileOverLimits => "Imports read at most 1,024 columns, 1,048,576 rows, rows and texts under 1 MB and 1,000,000 distinct texts; of an .xlsx, the parts read unpack to under 1 GB; an .xls holds under 16 MB and its sheets' values span at most 500,000 cells. The message gives the figure; save the takeoff sheet alone as CSV or split it.",
            EmptyFile => "The file has no rows; export the sheet again.",
            HeaderNotFound => "Put a header row within the first 20 rows of the first sheet: a takeoff's DRAWING, TYPE, QTY, CMDTY CODE; a weld log's WELD ID, DRAWING; a schedule's ACTIVITY ID, START, FINISH; a timesheet's DATE, HOURS.",
            MissingRequiredColumn => "Add the column (any accepted spelling, see the message) to the header row.",
            QuantityColumnMissing => "Every row counts as quantity 1; add a QTY column to import more.",
            DuplicateColumn => "Rename or delete this column: one column per meaning is read (the first, or for a schedule's dates the baseline's).",
            UnmappedColumn => "Nothing to do: the column is kept in each component's attributes.",
            DecodedWindows1252 => "Nothing to do; save as CSV UTF-8 to avoid surprises with special characters.",
            NoDataRows => "The file has a header but no rows to import; fill in the rows below the header.",
            PlaceholderRows => "Nothing to do: rows that hold only an id (numbers waiting to be filled in) are not imported.",
            ColumnsBesideTable => "Nothing to do: only the table under the header is read; move columns next to it if they belong to it.",
            OtherSheetsSameHeader => "Check that the sheet read is the one you meant; delete or rename old copies, or save the right sheet alone.",
            HeaderRowsSkipped => "Nothing to do: the header printed again and a units row under the header are not data.",
            LineNotUtf8 => "Check the special characters of this row; save the file as CSV UTF-8 to avoid it.",
            AmbiguousNumber => "Write the number without a thousands separator (e.g. 1250 or 1.25) so it reads one way.",
            AmbiguousDate => "Write the date as 2025-04-03, or with a day above 12 somewhere in the file so its order is clear.",
            MissingValue => "Fill in the cell.",
            ValueTooLong => "Shorten the value: names, ids and numbers take at most 200 characters, any other cell 10,000.",
            CellError => "Fix the formula in the workbook so the cell shows a value.",
            UnknownComponentType => "Use one of the accepted component type names listed in the message.",
            InvalidQuantity => "Use a whole number for counted items, or decimal feet for pipe.",
            InvalidBudget => "Write the row's budget as a number of man-hours (0 or more), or leave the cell empty.",
            QuantityTooLarge => "Split the row or check the quantity; at most 10,000 items (or 1,000,000 feet of pipe) per row.",
            ZeroQuantity => "Nothing is created for this row; delete it or give a quantity.",
            QuantityDefaulted => "Quantity 1 is used; fill in QTY to import more.",
            QuantityIgnored => "Exactly one is created; list others on their own rows with their own ids.",
            UnparsedSize => "Write the size in inches, e.g. 2, 1 1/2, 3/4 or 2X1 for a reducer.",
            DuplicateId => "Spool ids, weld numbers and activity ids must be unique in a file; fix or delete the repeated row.",
            IdenticalRows => "If these are really separate items, nothing to do; otherwise delete the repeat.",
            RowsMerged => "Nothing to do: the quantities add up into one numbered range.",
            NotAFieldWeld => "A field-weld log holds only field welds; import other components as a takeoff.",
            InvalidWeldType => "Use BW, SW, FW, TW or CW.",
            InvalidXrayPercent => "Use 0, 5, 10 or 100 (written 5, 5% or 0.05).",
            InvalidBoolean => "Use TRUE/FALSE, YES/NO, 1/0 or X for yes.",
            InvalidNdeType => "List NDE types from RT, UT, PT, MT, VT, separated by commas.",
            InvalidStencil => "A stencil is 2 to 12 letters, digits or dashes, e.g. K-12 or WLD001.",
            InvalidDate => "Use a date such as 2025-01-15 (or an Excel date cell).",
            FutureDate => "Use today's date or an earlier one.",
            InvalidNdeResult => "Use PASS, FAIL or PENDING.",
            FinishBeforeStart => "Give the activity a finish on or after its start.",
            InvalidWeight => "Write the weight as a number above 0, or leave the cell empty (weight 1, or the budget man-hours).",
            InvalidCurve => "Use linear, s_curve, front_loaded or back_loaded (spaces and dashes are read as underscores), or leave it empty for linear.",
            InvalidHours => "Write the hours as a number above 0 (at most 100,000 on a row), with at most two decimals.",
            SameFileImported => "If these are new hours, nothing to do. Otherwise don't commit: each commit of a timesheet adds its hours. To correct rows already imported, fix and import its remediation CSV.",
            ScheduleImportedWhole => "Correct the rows in the schedule and import all of it: each import makes a new baseline version.",
            UnknownGroup => "Name an area, system, test package or drawing the project has (create it first), or leave the group empty to charge the project.",
            InvalidReference => "Leave PIPETRAK REF as the report wrote it (import:row), or empty it to import the row as new.",
            WeldNumberElsewhere => "Nothing to do if this is another joint: welds are identified by drawing and number; correct the drawing if it is the same weld.",
            UnknownReference => "The row is imported as new; PIPETRAK REF must name a row of an import of this project.",
            SimilarDrawingInFile => "Two spellings become two drawings; write the number the same way on every row if they are one.",
            SimilarDrawingExists => "A new drawing will be created; if you meant an existing one, correct the number.",
            QuantityBelowExisting => "Nothing is deleted; retire the surplus components if they are really gone.",
            FieldValueKept => "The field's record is kept; if the file is right, correct the weld with edit_welder or record_nde (with a reason).",
            RetiredNotRestored => "Nothing is brought back by an import; restore the component (or correct the drawing in the file) if it is really back.",
        }
    }
}

/// A code serializes as its key, the one the catalog and the hints use.
impl Serialize for IssueCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// One finding. `line` is the row as Excel shows it (header = its own row number; 0 = the file).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Issue {
    pub line: u32,
    pub column: Option<String>,
    pub value: Option<String>,
    pub severity: Severity,
    pub code: IssueCode,
    pub message: String,
    pub hint: &'static str,
}

impl Issue {
    pub fn new(line: u32, code: IssueCode, message: impl Into<String>) -> Issue {
        Issue {
            line,
            column: None,
            value: None,
            severity: code.severity(),
            code,
            message: message.into(),
            hint: code.hint(),
        }
    }

    /// "The workbook is damaged or incomplete (…)": a container or record stream that can't be
    /// read as far as it says it goes.
    pub fn damaged(what: impl std::fmt::Display) -> Issue {
        Issue::new(
            0,
            IssueCode::DamagedFile,
            format!("The workbook is damaged or incomplete ({what})"),
        )
    }

    pub fn at(mut self, column: &str, value: &str) -> Issue {
        self.column = Some(column.to_string());
        self.value = Some(value.to_string());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_serializes_as_its_catalog_key_and_parses_back() {
        for &code in IssueCode::ALL {
            let json = serde_json::to_value(code).expect("json");
            assert_eq!(json, code.as_str(), "{code:?}");
            assert_eq!(IssueCode::parse(code.as_str()), Some(code));
        }
        assert_eq!(
            IssueCode::DecodedWindows1252.as_str(),
            "decoded_windows_1252"
        );
    }
}
