//! Entry points only the SQL of released versions calls: the library keeps serving a database
//! until `ALTER EXTENSION pipetrak UPDATE` brings it to the current version. No SQL of the current
//! version uses them (`sql = false`): each wraps what replaced it. When a version drops a Rust
//! function its SQL still calls, the function moves here as such a wrapper; one place to see what
//! older schemas need of this library.

use super::imports::{render_report_csv, stage_import};
use super::milestones::{credit_of, earned_for, planned, refusal};
use pgrx::prelude::*;
use pgrx::JsonB;

/// 0.1.0's positional form of `milestone_credit` (`[total, receive, install, punch, test,
/// restore]`). No SQL: it serves databases still at 0.1.0 until `ALTER EXTENSION pipetrak UPDATE`.
#[pg_extern(immutable, parallel_safe, sql = false)]
pub fn milestone_earned(
    weights: Vec<Option<i32>>,
    categories: Vec<Option<String>>,
    values: Vec<Option<i32>>,
) -> Vec<i32> {
    credit_of(&earned_for(&weights, &categories, &values)).to_vec()
}

/// 0.1.0's form of `plan_milestone`, with the credit as one positional array. No SQL: it serves
/// databases still at 0.1.0 until `ALTER EXTENSION pipetrak UPDATE`.
#[pg_extern(immutable, parallel_safe, sql = false)]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
pub fn plan_milestone_update(
    names: Vec<Option<String>>,
    weights: Vec<Option<i32>>,
    partial: Vec<Option<bool>>,
    categories: Vec<Option<String>>,
    current_values: Vec<Option<i32>>,
    milestone: &str,
    value: &str,
    has_welder: bool,
    sequence_mode: &str,
) -> TableIterator<
    'static,
    (
        name!(error_code, Option<String>),
        name!(milestone_index, i32),
        name!(old_value, i32),
        name!(new_values, Vec<i32>),
        name!(earned, Vec<i32>),
        name!(violations, Vec<String>),
    ),
> {
    TableIterator::once(
        match planned(
            &names,
            &weights,
            &partial,
            &categories,
            &current_values,
            milestone,
            value,
            has_welder,
            sequence_mode,
        ) {
            Ok(p) => {
                let values = p.values.iter().map(|&v| v as i32).collect();
                (
                    refusal(&p, sequence_mode),
                    p.index as i32 + 1,
                    p.old_value as i32,
                    values,
                    credit_of(&p.earned).to_vec(),
                    p.violations,
                )
            }
            Err(code) => (Some(code), 0, 0, Vec::new(), Vec::new(), Vec::new()),
        },
    )
}

/// The remediation CSV of 0.1.0 (its SQL calls it; 0.2.0 calls `render_report_csv`).
#[pg_extern(immutable, parallel_safe, sql = false)]
pub fn render_remediation_csv(
    header: Vec<Option<String>>,
    cells: Vec<Option<JsonB>>,
    notes: Vec<Option<String>>,
) -> Option<String> {
    let rows = vec![None; notes.len()];
    let references = vec![None; notes.len()];
    render_report_csv(header, cells, rows, references, notes)
}

/// 0.2.0's form of `stage_import`, which found the job's project by its id alone. No SQL: it
/// serves databases still at 0.2.0 until `ALTER EXTENSION pipetrak UPDATE`.
#[pg_extern(volatile, sql = false)]
pub fn import_stage(import_id: i64, kind: &str, today: pgrx::datum::Date) -> JsonB {
    let project = Spi::get_one_with_args::<i64>(
        "select project_id from pipetrak.import_jobs where id = $1",
        &[import_id.into()],
    );
    match project {
        Ok(Some(project)) => stage_import(import_id, project, kind, today),
        // The caller locked the job: not finding it is an internal error.
        _ => pgrx::error!("pipetrak: import {import_id} not found"),
    }
}
