//! Sequence rules (spec §5): Receive first; install needs Receive; Punch needs every install
//! milestone at 100; Test needs Punch; Restore needs Test; Weld Complete needs Fit-up and a welder.

use super::progress::FULL;
use super::template::{Category, Milestone};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, strum::EnumString, strum::IntoStaticStr, strum::EnumIter,
)]
#[strum(serialize_all = "snake_case")]
pub enum SequenceMode {
    /// Accept, mark the event out of sequence and open a review item.
    Flag,
    /// Refuse the update.
    Enforce,
    /// No sequence checks.
    Off,
}

impl SequenceMode {
    pub fn parse(text: &str) -> Option<SequenceMode> {
        text.parse().ok()
    }
}

/// One broken rule, readable by people ("Punch requires Install").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub milestone: String,
    pub requires: String,
}

impl Violation {
    pub fn describe(&self) -> String {
        format!("{} requires {}", self.milestone, self.requires)
    }
}

pub const WELDER: &str = "an assigned welder";
const WELD_COMPLETE: &str = "Weld Complete";
const FIT_UP: &str = "Fit-up";

/// The category a milestone must follow, and how done it must be.
fn predecessor(category: Category) -> Option<(Category, Threshold)> {
    match category {
        Category::Receive => None,
        Category::Install => Some((Category::Receive, Threshold::Started)),
        Category::Punch => Some((Category::Install, Threshold::Complete)),
        Category::Test => Some((Category::Punch, Threshold::Complete)),
        Category::Restore => Some((Category::Test, Threshold::Complete)),
    }
}

#[derive(Debug, Clone, Copy)]
enum Threshold {
    /// Any progress: some material received is enough to start installing it.
    Started,
    Complete,
}

impl Threshold {
    fn met(self, value: u32) -> bool {
        match self {
            Threshold::Started => value > 0,
            Threshold::Complete => value >= FULL,
        }
    }
}

/// What milestone `index` needs, as (milestone index, threshold) pairs.
fn requirements(template: &[Milestone], index: usize) -> Vec<(usize, Threshold)> {
    let milestone = &template[index];
    let mut needs: Vec<(usize, Threshold)> = match predecessor(milestone.category) {
        Some((category, threshold)) => template
            .iter()
            .enumerate()
            .filter(|(_, m)| m.category == category)
            .map(|(i, _)| (i, threshold))
            .collect(),
        None => Vec::new(),
    };
    if milestone.name == WELD_COMPLETE {
        needs.extend(
            template
                .iter()
                .position(|m| m.name == FIT_UP)
                .map(|i| (i, Threshold::Complete)),
        );
    }
    needs
}

/// The rules that `values` (the state after changing milestone `changed`) breaks because of that
/// change: the changed milestone's own unmet requirements when it has progress, and, when it went
/// down, every later milestone with progress that depended on it.
pub fn violations(
    template: &[Milestone],
    values: &[u32],
    changed: usize,
    old_value: u32,
    has_welder: bool,
) -> Vec<Violation> {
    let value_of = |i: usize| values.get(i).copied().unwrap_or(0);
    let mut found = Vec::new();
    if value_of(changed) > 0 {
        for (i, threshold) in requirements(template, changed) {
            if !threshold.met(value_of(i)) {
                found.push(Violation {
                    milestone: template[changed].name.clone(),
                    requires: template[i].name.clone(),
                });
            }
        }
        if template[changed].name == WELD_COMPLETE && !has_welder {
            found.push(Violation {
                milestone: WELD_COMPLETE.into(),
                requires: WELDER.into(),
            });
        }
    }
    if value_of(changed) < old_value {
        for (dependent, m) in template.iter().enumerate() {
            if value_of(dependent) == 0 {
                continue;
            }
            for (i, threshold) in requirements(template, dependent) {
                if i == changed && !threshold.met(value_of(i)) {
                    found.push(Violation {
                        milestone: m.name.clone(),
                        requires: template[i].name.clone(),
                    });
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::component_type::ComponentType;
    use crate::domain::template::default_template;

    fn names(v: &[Violation]) -> Vec<String> {
        v.iter().map(Violation::describe).collect()
    }

    #[test]
    fn in_order_updates_are_clean() {
        let t = default_template(ComponentType::Valve);
        let mut values = vec![0; 5];
        for i in 0..5 {
            let old = values[i];
            values[i] = FULL;
            assert!(
                violations(&t, &values, i, old, false).is_empty(),
                "step {i}"
            );
        }
    }

    #[test]
    fn install_before_receive_is_out_of_sequence() {
        let t = default_template(ComponentType::Valve);
        let values = [0, FULL, 0, 0, 0];
        assert_eq!(
            names(&violations(&t, &values, 1, 0, false)),
            ["Install requires Receive"]
        );
    }

    #[test]
    fn punch_needs_every_install_milestone_complete() {
        let t = default_template(ComponentType::Pipe);
        // Receive 50 %, Erect 100 %, Connect 100 %, Support 60 %: Punch is early.
        let values = [5_000, FULL, FULL, 6_000, FULL, 0, 0];
        assert_eq!(
            names(&violations(&t, &values, 4, 0, false)),
            ["Punch requires Support"]
        );
    }

    #[test]
    fn partial_receive_allows_install_to_start() {
        let t = default_template(ComponentType::Pipe);
        let values = [2_500, 1_000, 0, 0, 0, 0, 0];
        assert!(violations(&t, &values, 1, 0, false).is_empty());
    }

    #[test]
    fn test_needs_punch_and_restore_needs_test() {
        let t = default_template(ComponentType::Spool);
        let values = [FULL, FULL, FULL, 0, 0, FULL];
        assert_eq!(
            names(&violations(&t, &values, 5, 0, false)),
            ["Restore requires Test"]
        );
        let values = [FULL, FULL, FULL, 0, FULL, 0];
        assert_eq!(
            names(&violations(&t, &values, 4, 0, false)),
            ["Test requires Punch"]
        );
    }

    #[test]
    fn weld_complete_needs_fit_up_and_a_welder() {
        let t = default_template(ComponentType::FieldWeld);
        let values = [0, FULL, 0, 0, 0];
        assert_eq!(
            names(&violations(&t, &values, 1, 0, false)),
            [
                "Weld Complete requires Fit-up",
                "Weld Complete requires an assigned welder"
            ]
        );
        let values = [FULL, FULL, 0, 0, 0];
        assert!(violations(&t, &values, 1, 0, true).is_empty());
    }

    #[test]
    fn uncompleting_a_prerequisite_breaks_its_dependents() {
        let t = default_template(ComponentType::Valve);
        // Receive goes back to 0 while Install is done.
        let values = [0, FULL, 0, 0, 0];
        assert_eq!(
            names(&violations(&t, &values, 0, FULL, false)),
            ["Install requires Receive"]
        );
        // Un-completing Restore breaks nothing.
        let values = [FULL; 4].into_iter().chain([0]).collect::<Vec<_>>();
        assert!(violations(&t, &values, 4, FULL, false).is_empty());
    }

    #[test]
    fn lowering_a_partial_install_milestone_breaks_punch() {
        let t = default_template(ComponentType::Pipe);
        let values = [FULL, FULL, 9_000, FULL, FULL, 0, 0];
        assert_eq!(
            names(&violations(&t, &values, 2, FULL, false)),
            ["Punch requires Connect"]
        );
    }

    #[test]
    fn modes_parse() {
        assert_eq!(SequenceMode::parse("flag"), Some(SequenceMode::Flag));
        assert_eq!(SequenceMode::parse("enforce"), Some(SequenceMode::Enforce));
        assert_eq!(SequenceMode::parse("off"), Some(SequenceMode::Off));
        assert_eq!(SequenceMode::parse("FLAG"), None);
    }
}
