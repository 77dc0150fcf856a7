//! Imports (spec §6): a file's bytes (`file`) → rows of cells (`source`), a header mapped to fields
//! (`columns`), every row normalized and checked (`validate`), and the remediation CSV (`report`).
//! Validation results are data — a list of issues per row — never a stop at the first problem.

pub mod cell;
pub mod columns;
pub mod file;
pub mod issue;
pub mod limits;
pub mod report;
pub mod source;
pub mod validate;

pub use issue::{Issue, IssueCode, Severity};

/// What a file holds: a material takeoff (components) or a field-weld log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Takeoff,
    FieldWelds,
}

impl Kind {
    pub fn parse(text: &str) -> Option<Kind> {
        match text {
            "takeoff" => Some(Kind::Takeoff),
            "field_welds" => Some(Kind::FieldWelds),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Takeoff => "takeoff",
            Kind::FieldWelds => "field_welds",
        }
    }
}

/// Rows are committed in chunks of this many data rows, each in its own transaction when it can.
pub const CHUNK_ROWS: u32 = 5_000;
