//! Rules of credit: milestone values and the % complete they earn, in exact integer arithmetic.
//!
//! A milestone value is kept in hundredths of a percent (0..=10_000); earned credit is kept in
//! ten-thousandths of a percent, so `weight × value` is exact: 100 % = 1_000_000.

use super::error::DomainError;
use super::template::{Category, Milestone};

/// 100 % of a milestone value, in hundredths.
pub const FULL: u32 = 10_000;
/// 100 % complete, in ten-thousandths.
pub const COMPLETE: u32 = 1_000_000;

/// Reads a value as text (`"100"`, `"33.33"`, `"0.5"`) into hundredths, refusing more than two
/// decimals or anything outside 0–100, and anything but 0 or 100 for a discrete milestone.
pub fn parse_value(milestone: &Milestone, text: &str) -> Result<u32, DomainError> {
    let invalid = || DomainError::InvalidMilestoneValue(text.to_string());
    let trimmed = text.trim();
    let (whole, frac) = trimmed.split_once('.').unwrap_or((trimmed, ""));
    let frac = frac.trim_end_matches('0');
    if whole.is_empty()
        || whole.len() > 3
        || frac.len() > 2
        || !whole.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
    {
        return Err(invalid());
    }
    let whole: u32 = whole.parse().map_err(|_| invalid())?;
    let frac: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<2}").parse().map_err(|_| invalid())?
    };
    let value = whole * 100 + frac;
    if value > FULL {
        return Err(invalid());
    }
    if !milestone.partial && value != 0 && value != FULL {
        return Err(DomainError::DiscreteMilestoneValue(milestone.name.clone()));
    }
    Ok(value)
}

/// Earned credit of one component, in total and per category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Earned {
    pub total: u32,
    pub by_category: [u32; 5],
}

impl Earned {
    pub fn is_complete(&self) -> bool {
        self.total == COMPLETE
    }
}

/// % complete = Σ weight × value / 100 over the milestones, exactly.
pub fn earned(template: &[Milestone], values: &[u32]) -> Earned {
    let mut result = Earned::default();
    for (m, &v) in template.iter().zip(values) {
        let credit = m.weight * v.min(FULL);
        result.total += credit;
        result.by_category[m.category.index()] += credit;
    }
    result
}

/// Sum of the template's weights in one category (the credit available there).
pub fn category_weight(template: &[Milestone], category: Category) -> u32 {
    template
        .iter()
        .filter(|m| m.category == category)
        .map(|m| m.weight)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::component_type::ComponentType;
    use crate::domain::template::default_template;

    #[test]
    fn values_parse_to_hundredths() {
        let pipe = default_template(ComponentType::Pipe);
        let erect = &pipe[1];
        assert_eq!(parse_value(erect, "0"), Ok(0));
        assert_eq!(parse_value(erect, "100"), Ok(10_000));
        assert_eq!(parse_value(erect, "100.00"), Ok(10_000));
        assert_eq!(parse_value(erect, "33.33"), Ok(3_333));
        assert_eq!(parse_value(erect, "0.5"), Ok(50));
        assert_eq!(parse_value(erect, " 7.10 "), Ok(710));
        for bad in [
            "", "-1", "100.01", "101", "33.333", "1e2", "abc", ".5", "1000",
        ] {
            assert_eq!(
                parse_value(erect, bad).map_err(|e| e.code()),
                Err("invalid_milestone_value"),
                "{bad}"
            );
        }
    }

    #[test]
    fn discrete_milestones_take_only_0_or_100() {
        let valve = default_template(ComponentType::Valve);
        assert_eq!(parse_value(&valve[0], "100"), Ok(FULL));
        assert_eq!(parse_value(&valve[0], "0.00"), Ok(0));
        assert_eq!(
            parse_value(&valve[0], "50").map_err(|e| e.code()),
            Err("discrete_milestone_value")
        );
    }

    #[test]
    fn percent_is_the_weighted_sum() {
        let spool = default_template(ComponentType::Spool);
        let e = earned(&spool, &[FULL, FULL, 0, 0, 0, 0]);
        assert_eq!(e.total, 450_000); // 5 + 40 = 45 %
        assert_eq!(e.by_category[Category::Receive.index()], 50_000);
        assert_eq!(e.by_category[Category::Install.index()], 400_000);
        assert!(!e.is_complete());
        assert!(earned(&spool, &[FULL; 6]).is_complete());
    }

    #[test]
    fn partial_values_stay_exact() {
        let pipe = default_template(ComponentType::Pipe);
        // Receive 5 × 33.33 % + Erect 30 × 12.5 % = 1.6665 % + 3.75 % = 5.4165 %.
        let e = earned(&pipe, &[3_333, 1_250, 0, 0, 0, 0, 0]);
        assert_eq!(e.total, 54_165);
        assert_eq!(e.by_category.iter().sum::<u32>(), e.total);
        // Threaded pipe: Fabricate 16 × 1/3 (33.33) never drifts: 5.3328 %.
        let tp = default_template(ComponentType::ThreadedPipe);
        assert_eq!(earned(&tp, &[3_333, 0, 0, 0, 0, 0, 0]).total, 53_328);
    }

    #[test]
    fn short_value_lists_count_missing_values_as_zero() {
        let valve = default_template(ComponentType::Valve);
        assert_eq!(earned(&valve, &[FULL]).total, 100_000);
        assert_eq!(earned(&valve, &[]).total, 0);
    }

    #[test]
    fn category_weights() {
        let pipe = default_template(ComponentType::Pipe);
        assert_eq!(category_weight(&pipe, Category::Install), 80);
        assert_eq!(category_weight(&pipe, Category::Receive), 5);
        let weld = default_template(ComponentType::FieldWeld);
        assert_eq!(category_weight(&weld, Category::Receive), 0);
    }
}
