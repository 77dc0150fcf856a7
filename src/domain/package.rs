//! Test packages (spec §10): the workflow stages a test type calls for, what completing a stage
//! needs (its data and sign-offs), and the package's state from its stages.
//!
//! Decisions where the spec was silent:
//! - A package without a test type has no stages yet (nothing to test against); setting the type
//!   creates them.
//! - Stage data is a JSON object with the fields below; dates are ISO `YYYY-MM-DD`, numbers are
//!   JSON numbers. Unknown fields are kept (a site may record more) and not checked.
//! - The test date, drain and flush dates and the post-hydro inspection date can't lie after the
//!   day the stage completes (checked in SQL against the project's today).

use chrono::NaiveDate;
use serde_json::Value;

/// The seven stages, in their canonical order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    PreHydro,
    Test,
    DrainFlush,
    PostHydro,
    Coatings,
    Insulation,
    Final,
}

/// What a field of a stage's data must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Text,
    Date,
    PositiveNumber,
    PositiveInteger,
    /// `true`, and nothing else, completes the stage.
    True,
    Boolean,
    /// A non-empty list of `{"number": text, "calibration_date": date}`.
    Gauges,
}

impl Stage {
    pub const ALL: [Stage; 7] = [
        Stage::PreHydro,
        Stage::Test,
        Stage::DrainFlush,
        Stage::PostHydro,
        Stage::Coatings,
        Stage::Insulation,
        Stage::Final,
    ];

    /// The stage's key in SQL and the API.
    pub fn key(self) -> &'static str {
        match self {
            Stage::PreHydro => "pre_hydro",
            Stage::Test => "test",
            Stage::DrainFlush => "drain_flush",
            Stage::PostHydro => "post_hydro",
            Stage::Coatings => "coatings",
            Stage::Insulation => "insulation",
            Stage::Final => "final",
        }
    }

    pub fn parse(key: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.key() == key)
    }

    /// The stage's name as a certificate prints it.
    pub fn title(self) -> &'static str {
        match self {
            Stage::PreHydro => "Pre-Hydro Acceptance",
            Stage::Test => "Test Acceptance",
            Stage::DrainFlush => "Drain/Flush Acceptance",
            Stage::PostHydro => "Post-Hydro Acceptance",
            Stage::Coatings => "Protective Coatings Acceptance",
            Stage::Insulation => "Insulation Acceptance",
            Stage::Final => "Final Package Acceptance",
        }
    }

    /// Who signs the stage off.
    pub fn signoffs(self) -> &'static [&'static str] {
        match self {
            Stage::Test => &["qc", "client"],
            Stage::Final => &["qc", "client", "manufacturer"],
            _ => &["qc"],
        }
    }

    fn fields(self) -> &'static [(&'static str, Field)] {
        match self {
            Stage::PreHydro => &[("inspector", Field::Text), ("nde_complete", Field::True)],
            Stage::Test => &[
                ("test_date", Field::Date),
                ("medium", Field::Text),
                ("pressure_held", Field::PositiveNumber),
                ("hold_time_min", Field::PositiveInteger),
                ("gauges", Field::Gauges),
            ],
            Stage::DrainFlush => &[("drain_date", Field::Date), ("flush_date", Field::Date)],
            Stage::PostHydro => &[
                ("inspection_date", Field::Date),
                ("defects_found", Field::Boolean),
            ],
            Stage::Coatings => &[("coating_type", Field::Text), ("paint_spec", Field::Text)],
            Stage::Insulation => &[("insulation_type", Field::Text), ("spec", Field::Text)],
            Stage::Final => &[("notes", Field::Text)],
        }
    }
}

/// The stages a package gets, in order: by test type (Hydrostatic and Other: 1–4; Pneumatic 1, 2,
/// 4; Sensitive Leak and Alternative Leak 1, 2; In-service none of 1–4), coatings and insulation
/// when required, Final always. `None` for an unknown or missing test type.
pub fn stages_for(test_type: &str, coating: bool, insulation: bool) -> Option<Vec<Stage>> {
    let mut stages = match test_type {
        "Hydrostatic" | "Other" => vec![
            Stage::PreHydro,
            Stage::Test,
            Stage::DrainFlush,
            Stage::PostHydro,
        ],
        "Pneumatic" => vec![Stage::PreHydro, Stage::Test, Stage::PostHydro],
        "Sensitive Leak" | "Alternative Leak" => vec![Stage::PreHydro, Stage::Test],
        "In-service" => vec![],
        _ => return None,
    };
    if coating {
        stages.push(Stage::Coatings);
    }
    if insulation {
        stages.push(Stage::Insulation);
    }
    stages.push(Stage::Final);
    Some(stages)
}

fn date_of(value: &Value) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(value.as_str()?, "%Y-%m-%d").ok()
}

fn holds(field: Field, value: &Value) -> bool {
    match field {
        Field::Text => value
            .as_str()
            .is_some_and(|s| !s.trim().is_empty() && s.len() <= 2000),
        Field::Date => date_of(value).is_some(),
        Field::PositiveNumber => value.as_f64().is_some_and(|n| n > 0.0 && n < 1e9),
        Field::PositiveInteger => value.as_u64().is_some_and(|n| (1..=100_000).contains(&n)),
        Field::True => value.as_bool() == Some(true),
        Field::Boolean => value.is_boolean(),
        Field::Gauges => value.as_array().is_some_and(|gauges| {
            !gauges.is_empty()
                && gauges.len() <= 50
                && gauges.iter().all(|g| {
                    g.get("number").is_some_and(|n| holds(Field::Text, n))
                        && g.get("calibration_date")
                            .is_some_and(|d| holds(Field::Date, d))
                })
        }),
    }
}

/// The fields of `data` that completing `stage` still needs (missing or not what they must hold),
/// in the stage's order; empty when the data is complete. A post-hydro inspection that found
/// defects needs their description too.
pub fn missing_data(stage: Stage, data: &Value) -> Vec<&'static str> {
    let mut missing: Vec<&'static str> = stage
        .fields()
        .iter()
        .filter(|(name, field)| !data.get(name).is_some_and(|v| holds(*field, v)))
        .map(|(name, _)| *name)
        .collect();
    if stage == Stage::PostHydro
        && data.get("defects_found") == Some(&Value::Bool(true))
        && !data
            .get("defects_description")
            .is_some_and(|v| holds(Field::Text, v))
    {
        missing.push("defects_description");
    }
    missing
}

/// The dates of a stage's data that must not lie after the day it completes.
pub fn dates_of(stage: Stage, data: &Value) -> Vec<NaiveDate> {
    let mut dates: Vec<NaiveDate> = stage
        .fields()
        .iter()
        .filter(|(_, field)| *field == Field::Date)
        .filter_map(|(name, _)| data.get(name).and_then(date_of))
        .collect();
    // Gauges' calibration dates are not among them: a calibration may be dated ahead.
    dates.sort();
    dates
}

/// Status of one stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum StageStatus {
    NotStarted,
    InProgress,
    Completed,
    Skipped,
}

impl StageStatus {
    pub fn parse(key: &str) -> Option<StageStatus> {
        match key {
            "not_started" => Some(StageStatus::NotStarted),
            "in_progress" => Some(StageStatus::InProgress),
            "completed" => Some(StageStatus::Completed),
            "skipped" => Some(StageStatus::Skipped),
            _ => None,
        }
    }

    fn done(self) -> bool {
        matches!(self, StageStatus::Completed | StageStatus::Skipped)
    }
}

/// The package's state from its stages (in order): `draft` while no stage has started, `testing`,
/// `tested` once Test Acceptance is completed, `turned_over` once every stage is completed or
/// skipped (a package with stages).
pub fn package_state(stages: &[(Stage, StageStatus)]) -> &'static str {
    if !stages.is_empty() && stages.iter().all(|(_, s)| s.done()) {
        "turned_over"
    } else if stages
        .iter()
        .any(|(st, s)| *st == Stage::Test && *s == StageStatus::Completed)
    {
        "tested"
    } else if stages.iter().any(|(_, s)| *s != StageStatus::NotStarted) {
        "testing"
    } else {
        "draft"
    }
}

/// Why a stage may not start: the stage before it (in the package's order) is not completed or
/// skipped. `None` when it may.
pub fn blocking_stage(stages: &[(Stage, StageStatus)], stage: Stage) -> Option<Stage> {
    let position = stages.iter().position(|(st, _)| *st == stage)?;
    stages[..position]
        .iter()
        .rev()
        .find(|(_, s)| !s.done())
        .map(|(st, _)| *st)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(stages: Option<Vec<Stage>>) -> Vec<&'static str> {
        stages
            .unwrap_or_default()
            .into_iter()
            .map(Stage::key)
            .collect()
    }

    #[test]
    fn stages_follow_the_test_type() {
        assert_eq!(
            keys(stages_for("Hydrostatic", false, false)),
            ["pre_hydro", "test", "drain_flush", "post_hydro", "final"]
        );
        assert_eq!(
            keys(stages_for("Other", true, true)),
            [
                "pre_hydro",
                "test",
                "drain_flush",
                "post_hydro",
                "coatings",
                "insulation",
                "final"
            ]
        );
        assert_eq!(
            keys(stages_for("Pneumatic", false, true)),
            ["pre_hydro", "test", "post_hydro", "insulation", "final"]
        );
        assert_eq!(
            keys(stages_for("Sensitive Leak", false, false)),
            ["pre_hydro", "test", "final"]
        );
        assert_eq!(
            keys(stages_for("Alternative Leak", true, false)),
            ["pre_hydro", "test", "coatings", "final"]
        );
        assert_eq!(keys(stages_for("In-service", false, false)), ["final"]);
        assert_eq!(stages_for("hydrostatic", false, false), None);
    }

    #[test]
    fn completing_a_stage_needs_its_data() {
        assert_eq!(
            missing_data(Stage::PreHydro, &json!({})),
            ["inspector", "nde_complete"]
        );
        assert_eq!(
            missing_data(
                Stage::PreHydro,
                &json!({"inspector": "J. Ruiz", "nde_complete": false})
            ),
            ["nde_complete"]
        );
        let test = json!({"test_date": "2026-11-02", "medium": "water", "pressure_held": 225.5,
                          "hold_time_min": 30, "gauges": [{"number": "G-1", "calibration_date": "2026-06-01"}]});
        assert!(missing_data(Stage::Test, &test).is_empty());
        let mut bad = test.clone();
        bad["gauges"] = json!([{"number": "G-1"}]);
        bad["hold_time_min"] = json!(0);
        bad["test_date"] = json!("02/11/2026");
        assert_eq!(
            missing_data(Stage::Test, &bad),
            ["test_date", "hold_time_min", "gauges"]
        );
        assert_eq!(
            missing_data(
                Stage::PostHydro,
                &json!({"inspection_date": "2026-11-03", "defects_found": true})
            ),
            ["defects_description"]
        );
        assert!(missing_data(
            Stage::PostHydro,
            &json!({"inspection_date": "2026-11-03", "defects_found": false})
        )
        .is_empty());
        assert_eq!(
            missing_data(Stage::Final, &json!({"notes": "  "})),
            ["notes"]
        );
    }

    #[test]
    fn the_package_state_follows_its_stages() {
        use StageStatus::*;
        let stages = |s: [StageStatus; 3]| {
            vec![
                (Stage::PreHydro, s[0]),
                (Stage::Test, s[1]),
                (Stage::Final, s[2]),
            ]
        };
        assert_eq!(
            package_state(&stages([NotStarted, NotStarted, NotStarted])),
            "draft"
        );
        assert_eq!(
            package_state(&stages([InProgress, NotStarted, NotStarted])),
            "testing"
        );
        assert_eq!(
            package_state(&stages([Completed, Completed, NotStarted])),
            "tested"
        );
        assert_eq!(
            package_state(&stages([Completed, Completed, Completed])),
            "turned_over"
        );
        assert_eq!(
            package_state(&stages([Skipped, Completed, Skipped])),
            "turned_over"
        );
        assert_eq!(package_state(&[]), "draft");
    }

    #[test]
    fn a_stage_starts_after_the_one_before_it() {
        use StageStatus::*;
        let stages = vec![
            (Stage::PreHydro, Skipped),
            (Stage::Test, InProgress),
            (Stage::Final, NotStarted),
        ];
        assert_eq!(blocking_stage(&stages, Stage::PreHydro), None);
        assert_eq!(blocking_stage(&stages, Stage::Test), None);
        assert_eq!(blocking_stage(&stages, Stage::Final), Some(Stage::Test));
        assert_eq!(blocking_stage(&stages, Stage::Coatings), None);
    }
}
