//! Project controls (plan against earned): how a schedule activity spreads its planned credit over
//! its dates, and the two completion forecasts. Dates are days since 1970-01-01, as in
//! `work_date`.
//!
//! Curves. An activity planned from `start` to `finish` (both inclusive) has elapsed the fraction
//! `t = (d − start + 1) / (finish − start + 1)` of its duration by the end of day `d`, clamped to
//! [0, 1] (0 before it starts, 1 from its finish on). The share of its planned credit due by then
//! is `f(t)`, the distribution function of a Beta law on [0, 1]:
//!
//! | curve          | f(t)                 | work peaks at |
//! |----------------|----------------------|---------------|
//! | `linear`       | t                    | (flat)        |
//! | `s_curve`      | 3t² − 2t³            | the middle    |
//! | `front_loaded` | 6t² − 8t³ + 3t⁴      | one third     |
//! | `back_loaded`  | 4t³ − 3t⁴            | two thirds    |
//!
//! Polynomials, so a planner checks a figure by hand: an S-curve activity half elapsed is 50 %
//! due; front-loaded, 68.75 %; back-loaded, 31.25 %.

/// How an activity's planned credit is spread over its dates (vocabulary `baseline_curve`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, strum::EnumString, strum::IntoStaticStr, strum::EnumIter,
)]
#[strum(serialize_all = "snake_case")]
pub enum Curve {
    Linear,
    SCurve,
    FrontLoaded,
    BackLoaded,
}

impl Curve {
    /// The share (0–1) of the planned credit due once the fraction `t` of the duration elapsed.
    pub fn share(self, t: f64) -> f64 {
        let t = t.clamp(0.0, 1.0);
        match self {
            Curve::Linear => t,
            Curve::SCurve => t * t * (3.0 - 2.0 * t),
            Curve::FrontLoaded => t * t * (6.0 - 8.0 * t + 3.0 * t * t),
            Curve::BackLoaded => t * t * t * (4.0 - 3.0 * t),
        }
    }
}

/// The fraction of an activity's duration elapsed by the end of `day` (see the module notes).
pub fn elapsed(start: i64, finish: i64, day: i64) -> f64 {
    if finish < start {
        return if day >= start { 1.0 } else { 0.0 };
    }
    ((day - start + 1) as f64 / (finish - start + 1) as f64).clamp(0.0, 1.0)
}

/// The share of an activity's planned credit due by the end of `day`.
pub fn planned_share(curve: Curve, start: i64, finish: i64, day: i64) -> f64 {
    curve.share(elapsed(start, finish, day))
}

/// The planned shares at the end of `weeks` consecutive weeks, the first ending on `first_day`.
pub fn planned_series(
    curve: Curve,
    start: i64,
    finish: i64,
    first_day: i64,
    weeks: u32,
) -> Vec<f64> {
    (0..i64::from(weeks))
        .map(|w| planned_share(curve, start, finish, first_day + 7 * w))
        .collect()
}

/// Completion forecast from the trailing velocity: earned % now and `weeks` weeks before `as_of`.
/// The remaining work at the average weekly rate of those weeks, rounded up to a whole day after
/// `as_of`. Complete: `as_of`. No forward progress in the window: none (it would never finish).
pub fn velocity_finish(earned_now: f64, earned_before: f64, weeks: u32, as_of: i64) -> Option<i64> {
    if earned_now >= 100.0 {
        return Some(as_of);
    }
    if weeks == 0 {
        return None;
    }
    let per_week = (earned_now - earned_before) / f64::from(weeks);
    if per_week <= 0.0 {
        return None;
    }
    Some(as_of + days_up(7.0 * (100.0 - earned_now) / per_week))
}

/// Completion forecast from the schedule performance: the planned duration (`start`..=`finish`)
/// stretched by 1 ÷ SPI (the "earned schedule" rule of thumb: at SPI 0.8 the work takes 1.25×
/// its planned days), counted from the planned start. Complete: `as_of`. No SPI (nothing
/// planned yet) or none earned: none.
pub fn spi_finish(
    start: i64,
    finish: i64,
    spi: Option<f64>,
    earned_now: f64,
    as_of: i64,
) -> Option<i64> {
    if earned_now >= 100.0 {
        return Some(as_of);
    }
    let spi = spi.filter(|s| *s > 0.0)?;
    let duration = (finish - start + 1).max(1) as f64;
    Some(start + days_up(duration / spi) - 1)
}

/// Days, rounded up, tolerating the float noise of an exact division (7.0000000001 is 7).
fn days_up(days: f64) -> i64 {
    (days - 1e-9).ceil().max(0.0) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;
    use strum::IntoEnumIterator;

    #[test]
    fn curves_match_their_formulas_at_half_way() {
        assert_eq!(Curve::Linear.share(0.5), 0.5);
        assert_eq!(Curve::SCurve.share(0.5), 0.5);
        assert_eq!(Curve::FrontLoaded.share(0.5), 0.6875);
        assert_eq!(Curve::BackLoaded.share(0.5), 0.3125);
        assert_eq!(Curve::from_str("front_loaded"), Ok(Curve::FrontLoaded));
        assert!(Curve::from_str("steep").is_err());
    }

    #[test]
    fn elapsed_counts_whole_days_inclusive() {
        // Ten days, 1..=10: by the end of day 3, 3 of 10 have elapsed.
        assert_eq!(elapsed(1, 10, 0), 0.0);
        assert_eq!(elapsed(1, 10, 3), 0.3);
        assert_eq!(elapsed(1, 10, 10), 1.0);
        assert_eq!(elapsed(1, 10, 99), 1.0);
        // A one-day activity is all due by its end.
        assert_eq!(elapsed(5, 5, 4), 0.0);
        assert_eq!(elapsed(5, 5, 5), 1.0);
    }

    #[test]
    fn series_steps_by_weeks() {
        let s = planned_series(Curve::Linear, 0, 27, -1, 6);
        assert_eq!(s, vec![0.0, 0.25, 0.5, 0.75, 1.0, 1.0]);
    }

    #[test]
    fn velocity_forecast() {
        // 40 % now, 30 % four weeks ago: 2.5 %/week, 60 % left = 24 weeks = 168 days.
        assert_eq!(velocity_finish(40.0, 30.0, 4, 1000), Some(1168));
        assert_eq!(velocity_finish(40.0, 40.0, 4, 1000), None);
        assert_eq!(velocity_finish(40.0, 45.0, 4, 1000), None);
        assert_eq!(velocity_finish(100.0, 90.0, 4, 1000), Some(1000));
    }

    #[test]
    fn spi_forecast() {
        // 100 planned days at SPI 0.8 take 125.
        assert_eq!(spi_finish(1000, 1099, Some(0.8), 10.0, 1050), Some(1124));
        assert_eq!(spi_finish(1000, 1099, Some(1.0), 10.0, 1050), Some(1099));
        assert_eq!(spi_finish(1000, 1099, None, 10.0, 1050), None);
        assert_eq!(spi_finish(1000, 1099, Some(0.0), 0.0, 1050), None);
        assert_eq!(spi_finish(1000, 1099, None, 100.0, 1050), Some(1050));
    }

    proptest! {
        #[test]
        fn curves_rise_from_nothing_to_everything(a in 0.0f64..=1.0, b in 0.0f64..=1.0) {
            for c in Curve::iter() {
                let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                prop_assert!(c.share(lo) <= c.share(hi) + 1e-12, "{c:?} falls between {lo} and {hi}");
                prop_assert_eq!(c.share(0.0), 0.0);
                prop_assert!((c.share(1.0) - 1.0).abs() < 1e-12);
            }
        }

        #[test]
        fn an_activity_is_due_in_full_from_its_finish(start in -1000i64..1000, len in 0i64..400, after in 0i64..50) {
            for c in Curve::iter() {
                prop_assert!((planned_share(c, start, start + len, start + len + after) - 1.0).abs() < 1e-12);
                prop_assert_eq!(planned_share(c, start, start + len, start - 1), 0.0);
            }
        }
    }
}
