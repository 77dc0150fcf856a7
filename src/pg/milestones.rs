//! The milestone engine's calculations, called by `pipetrak.update_milestone` and friends.
//! Templates arrive as parallel arrays (one row of `pipetrak.milestone_templates`), values in
//! hundredths of a percent.

use crate::domain::component_type::ComponentType;
use crate::domain::error::DomainError;
use crate::domain::progress::{self, Earned};
use crate::domain::sequence::{self, SequenceMode};
use crate::domain::template::{self, Category, Milestone};
use crate::domain::work_date;
use pgrx::prelude::*;

/// The system default templates of every component type (spec §5).
#[pg_extern(immutable, parallel_safe)]
pub fn default_milestones() -> TableIterator<
    'static,
    (
        name!(component_type, &'static str),
        name!(position, i32),
        name!(name, String),
        name!(weight, i32),
        name!(is_partial, bool),
        name!(category, &'static str),
    ),
> {
    let rows: Vec<_> = ComponentType::ALL
        .iter()
        .flat_map(|&t| {
            template::default_template(t)
                .into_iter()
                .enumerate()
                .map(move |(i, m)| {
                    (
                        t.as_str(),
                        i as i32 + 1,
                        m.name,
                        m.weight as i32,
                        m.partial,
                        m.category.as_str(),
                    )
                })
        })
        .collect();
    TableIterator::new(rows)
}

/// Rebuilds a template from its stored arrays; `None` when they disagree in length or content.
fn template_of(
    names: &[Option<String>],
    weights: &[Option<i32>],
    partial: &[Option<bool>],
    categories: &[Option<String>],
) -> Option<Vec<Milestone>> {
    if weights.len() != names.len()
        || partial.len() != names.len()
        || categories.len() != names.len()
    {
        return None;
    }
    names
        .iter()
        .zip(weights)
        .zip(partial)
        .zip(categories)
        .map(|(((name, weight), partial), category)| {
            Some(Milestone {
                name: name.clone()?,
                weight: u32::try_from((*weight)?).ok()?,
                partial: (*partial)?,
                category: Category::parse(category.as_deref()?)?,
            })
        })
        .collect()
}

fn values_of(values: &[Option<i32>], len: usize) -> Vec<u32> {
    (0..len)
        .map(|i| {
            values
                .get(i)
                .copied()
                .flatten()
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(0)
        })
        .collect()
}

/// The key of the first template problem, for the re-weight API; NULL when the template is valid.
#[pg_extern(immutable, parallel_safe)]
pub fn template_problem(
    names: Vec<Option<String>>,
    weights: Vec<Option<i32>>,
    partial: Vec<Option<bool>>,
    categories: Vec<Option<String>>,
) -> Option<String> {
    match template_of(&names, &weights, &partial, &categories) {
        None => Some("the milestone arrays disagree".into()),
        Some(t) => template::validate(&t).err().map(|e| e.to_string()),
    }
}

/// Earned credit `[total, receive, install, punch, test, restore]`, in ten-thousandths of a
/// percent (1_000_000 = 100 %).
pub(super) fn credit_of(earned: &Earned) -> [i32; 6] {
    let [receive, install, punch, test, restore] = earned.by_category.map(|v| v as i32);
    [earned.total as i32, receive, install, punch, test, restore]
}

/// The credit a template's weights and categories earn for `values`.
pub(super) fn earned_for(
    weights: &[Option<i32>],
    categories: &[Option<String>],
    values: &[Option<i32>],
) -> Earned {
    let template: Vec<Milestone> = weights
        .iter()
        .zip(categories)
        .map(|(w, c)| Milestone {
            name: String::new(),
            weight: w.and_then(|w| u32::try_from(w).ok()).unwrap_or(0),
            partial: true,
            category: c
                .as_deref()
                .and_then(Category::parse)
                .unwrap_or(Category::Install),
        })
        .collect();
    progress::earned(&template, &values_of(values, template.len()))
}

/// Earned credit of a component, one row with a column per category.
#[pg_extern(immutable, parallel_safe)]
pub fn milestone_credit(
    weights: Vec<Option<i32>>,
    categories: Vec<Option<String>>,
    values: Vec<Option<i32>>,
) -> TableIterator<
    'static,
    (
        name!(earned_total, i32),
        name!(earned_receive, i32),
        name!(earned_install, i32),
        name!(earned_punch, i32),
        name!(earned_test, i32),
        name!(earned_restore, i32),
    ),
> {
    let [total, receive, install, punch, test, restore] =
        credit_of(&earned_for(&weights, &categories, &values));
    TableIterator::once((total, receive, install, punch, test, restore))
}

/// A planned update, or the key of why it can't be made.
#[allow(clippy::too_many_arguments)]
pub(super) fn planned(
    names: &[Option<String>],
    weights: &[Option<i32>],
    partial: &[Option<bool>],
    categories: &[Option<String>],
    current_values: &[Option<i32>],
    milestone: &str,
    value: &str,
    has_welder: bool,
    sequence_mode: &str,
) -> Result<Plan, String> {
    let plan = template_of(names, weights, partial, categories)
        .ok_or_else(|| DomainError::InvalidTemplate("the milestone arrays disagree".into()))
        .and_then(|t| {
            plan(
                &t,
                current_values,
                milestone,
                value,
                has_welder,
                sequence_mode,
            )
        })
        .map_err(|e| e.code().to_string())?;
    Ok(plan)
}

/// Under `enforce` a broken sequence refuses the update; the violations go with the key.
pub(super) fn refusal(plan: &Plan, sequence_mode: &str) -> Option<String> {
    let refused = !plan.violations.is_empty()
        && SequenceMode::parse(sequence_mode) == Some(SequenceMode::Enforce);
    refused.then(|| DomainError::OutOfSequence.code().to_string())
}

/// Plans one milestone update: validates the value, applies it, computes the new % complete and
/// checks the sequence. Returns `error_code` (a key of `pipetrak.error_codes`) instead of raising,
/// and the new credit with a column per category.
#[pg_extern(immutable, parallel_safe)]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
pub fn plan_milestone(
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
        name!(earned_total, i32),
        name!(earned_receive, i32),
        name!(earned_install, i32),
        name!(earned_punch, i32),
        name!(earned_test, i32),
        name!(earned_restore, i32),
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
                let [total, receive, install, punch, test, restore] = credit_of(&p.earned);
                let values = p.values.iter().map(|&v| v as i32).collect();
                (
                    refusal(&p, sequence_mode),
                    p.index as i32 + 1,
                    p.old_value as i32,
                    values,
                    total,
                    receive,
                    install,
                    punch,
                    test,
                    restore,
                    p.violations,
                )
            }
            Err(code) => (Some(code), 0, 0, Vec::new(), 0, 0, 0, 0, 0, 0, Vec::new()),
        },
    )
}

pub(super) struct Plan {
    pub(super) index: usize,
    pub(super) old_value: u32,
    pub(super) values: Vec<u32>,
    pub(super) earned: Earned,
    pub(super) violations: Vec<String>,
}

fn plan(
    template: &[Milestone],
    current: &[Option<i32>],
    milestone: &str,
    value: &str,
    has_welder: bool,
    sequence_mode: &str,
) -> Result<Plan, DomainError> {
    let index = template
        .iter()
        .position(|m| m.name.eq_ignore_ascii_case(milestone.trim()))
        .ok_or_else(|| DomainError::UnknownMilestone(milestone.to_string()))?;
    let new_value = progress::parse_value(&template[index], value)?;
    let mut values = values_of(current, template.len());
    let old_value = values[index];
    values[index] = new_value;
    let violations = match SequenceMode::parse(sequence_mode) {
        Some(SequenceMode::Off) => Vec::new(),
        _ => sequence::violations(template, &values, index, old_value, has_welder)
            .iter()
            .map(sequence::Violation::describe)
            .collect(),
    };
    let earned = progress::earned(template, &values);
    Ok(Plan {
        index,
        old_value,
        values,
        earned,
        violations,
    })
}

/// NULL when a work date is acceptable, else the error key. Dates are days since 1970-01-01,
/// `local_now` seconds since 1970-01-01 on the project's local clock.
#[pg_extern(immutable, parallel_safe)]
pub fn work_date_problem(
    work_date: i32,
    local_now: i64,
    week_lock: bool,
    exempt: bool,
) -> Option<&'static str> {
    work_date::check(i64::from(work_date), local_now, week_lock, exempt)
        .err()
        .map(|e| e.code())
}

/// The Sunday (days since 1970-01-01) ending the latest locked week at `local_now` (seconds since
/// 1970-01-01 on the project's local clock).
#[pg_extern(immutable, strict, parallel_safe)]
pub fn last_locked_sunday(local_now: i64) -> i64 {
    work_date::last_locked_sunday(local_now)
}

/// A component's man-hour spread weight and whether its size was guessed (spec §11).
#[pg_extern(immutable, strict, parallel_safe)]
pub fn manhour_weight(
    component_type: &str,
    size: &str,
    quantity: f64,
) -> TableIterator<'static, (name!(weight, f64), name!(guessed, bool))> {
    let w = crate::domain::manhours::weight(component_type, size, quantity);
    TableIterator::once((w.value, w.guessed))
}
