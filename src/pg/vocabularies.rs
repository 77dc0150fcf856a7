//! The words Rust decides with, as SQL sees them: `pipetrak.vocabulary(name)`. A table's check
//! constraint restates the words its column may hold; pgTAP (01_schema) compares every such
//! constraint with its vocabulary here both ways, and the constraints of columns sharing a
//! vocabulary with each other, so no list changes alone.

use crate::domain::controls::Curve;
use crate::domain::import::source::Format;
use crate::domain::import::validate::RowStatus;
use crate::domain::import::Kind;
use crate::domain::package::{Stage, StageStatus};
use crate::domain::sequence::SequenceMode;
use crate::domain::weld::{WeldStatus, METHODS, RESULTS, WELD_TYPES};
use pgrx::prelude::*;
use strum::IntoEnumIterator;

/// Names of the vocabularies `vocabulary` knows.
const NAMES: [&str; 11] = [
    "baseline_curve",
    "import_format",
    "import_kind",
    "import_row_status",
    "nde_method",
    "nde_result",
    "package_stage",
    "sequence_mode",
    "stage_status",
    "weld_status",
    "weld_type",
];

fn words<E: IntoEnumIterator + Into<&'static str>>() -> Vec<&'static str> {
    E::iter().map(Into::into).collect()
}

/// The words of vocabulary `name` (see `vocabularies()`); NULL for a name it doesn't know.
#[pg_extern(immutable, parallel_safe)]
fn vocabulary(name: &str) -> Option<Vec<&'static str>> {
    Some(match name {
        "baseline_curve" => words::<Curve>(),
        "import_format" => words::<Format>(),
        "import_kind" => words::<Kind>(),
        "import_row_status" => words::<RowStatus>(),
        "nde_method" => METHODS.to_vec(),
        "nde_result" => RESULTS.to_vec(),
        "package_stage" => Stage::ALL.iter().map(|s| s.key()).collect(),
        "sequence_mode" => words::<SequenceMode>(),
        "stage_status" => words::<StageStatus>(),
        "weld_status" => words::<WeldStatus>(),
        "weld_type" => WELD_TYPES.to_vec(),
        _ => return None,
    })
}

/// The names `vocabulary` knows.
#[pg_extern(immutable, parallel_safe)]
fn vocabularies() -> Vec<&'static str> {
    NAMES.to_vec()
}
