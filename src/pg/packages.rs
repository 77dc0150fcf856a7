//! Test-package glue: the stage rules of `crate::domain::package`, for SQL.

use crate::domain::package::{self, Stage, StageStatus};
use pgrx::prelude::*;
use pgrx::JsonB;

/// The stage keys a package of `test_type` gets, in order; null for an unknown test type.
#[pg_extern(immutable, strict, parallel_safe)]
pub fn package_stage_keys(test_type: &str, coating: bool, insulation: bool) -> Option<Vec<String>> {
    package::stages_for(test_type, coating, insulation)
        .map(|stages| stages.into_iter().map(|s| s.key().to_string()).collect())
}

/// A stage's printed name and the sign-offs it needs; no row for an unknown key.
#[pg_extern(immutable, strict, parallel_safe)]
pub fn package_stage_rule(
    stage: &str,
) -> TableIterator<'static, (name!(title, String), name!(signoffs, Vec<String>))> {
    TableIterator::new(Stage::parse(stage).into_iter().map(|s| {
        (
            s.title().to_string(),
            s.signoffs().iter().map(|k| k.to_string()).collect(),
        )
    }))
}

/// The data fields completing `stage` still needs, and the latest of its dates (ISO; null when
/// none); no row for an unknown key.
#[pg_extern(immutable, strict, parallel_safe)]
pub fn package_stage_check(
    stage: &str,
    data: JsonB,
) -> TableIterator<
    'static,
    (
        name!(missing, Vec<String>),
        name!(latest_date, Option<String>),
    ),
> {
    TableIterator::new(Stage::parse(stage).into_iter().map(move |s| {
        let missing = package::missing_data(s, &data.0)
            .into_iter()
            .map(str::to_string)
            .collect();
        let latest = package::dates_of(s, &data.0).last().map(|d| d.to_string());
        (missing, latest)
    }))
}

fn parse_stages(
    stages: &[Option<String>],
    statuses: &[Option<String>],
) -> Vec<(Stage, StageStatus)> {
    stages
        .iter()
        .zip(statuses)
        .filter_map(|(stage, status)| {
            Some((
                Stage::parse(stage.as_deref()?)?,
                StageStatus::parse(status.as_deref()?)?,
            ))
        })
        .collect()
}

/// A package's state (draft, testing, tested, turned_over) from its stages and their statuses,
/// in order.
#[pg_extern(immutable, parallel_safe)]
pub fn package_state(stages: Vec<Option<String>>, statuses: Vec<Option<String>>) -> &'static str {
    package::package_state(&parse_stages(&stages, &statuses))
}

/// The stage before `stage` that is neither completed nor skipped (it keeps `stage` from
/// starting); null when none.
#[pg_extern(immutable, parallel_safe)]
pub fn package_stage_blocker(
    stages: Vec<Option<String>>,
    statuses: Vec<Option<String>>,
    stage: &str,
) -> Option<&'static str> {
    let stage = Stage::parse(stage)?;
    package::blocking_stage(&parse_stages(&stages, &statuses), stage).map(Stage::key)
}
