//! Project controls glue: the planned curves and the completion forecasts of
//! `domain::controls`, for sql/20_controls.sql. Dates are days since 1970-01-01.

use crate::domain::controls::{self, Curve};
use pgrx::prelude::*;
use std::str::FromStr;

/// The planned shares (0–1) of an activity at the end of `weeks` consecutive weeks, the first
/// ending on `first_day`; NULL for a curve it doesn't know (the table's check refuses one).
#[pg_extern(immutable, strict, parallel_safe)]
fn planned_series(
    curve: &str,
    start: i32,
    finish: i32,
    first_day: i32,
    weeks: i32,
) -> Option<Vec<f64>> {
    let curve = Curve::from_str(curve).ok()?;
    let weeks = u32::try_from(weeks.clamp(0, 10_000)).unwrap_or(0);
    Some(controls::planned_series(
        curve,
        i64::from(start),
        i64::from(finish),
        i64::from(first_day),
        weeks,
    ))
}

/// Completion day from the trailing velocity (see `controls::velocity_finish`).
#[pg_extern(immutable, strict, parallel_safe)]
fn velocity_finish(earned_now: f64, earned_before: f64, weeks: i32, as_of: i32) -> Option<i32> {
    let weeks = u32::try_from(weeks).ok()?;
    controls::velocity_finish(earned_now, earned_before, weeks, i64::from(as_of)).and_then(day)
}

/// Completion day from the SPI against the baseline (see `controls::spi_finish`).
/// NULL dates or earned: NULL.
#[pg_extern(immutable, parallel_safe)]
fn spi_finish(
    start: Option<i32>,
    finish: Option<i32>,
    spi: Option<f64>,
    earned_now: Option<f64>,
    as_of: Option<i32>,
) -> Option<i32> {
    controls::spi_finish(
        i64::from(start?),
        i64::from(finish?),
        spi,
        earned_now?,
        i64::from(as_of?),
    )
    .and_then(day)
}

/// A forecast day the database can show: years 1 to 9999 (none beyond: "not in sight").
fn day(days: i64) -> Option<i32> {
    const FIRST: i64 = -719_162; // 0001-01-01
    const LAST: i64 = 2_932_896; // 9999-12-31
    (FIRST..=LAST)
        .contains(&days)
        .then(|| i32::try_from(days).ok())
        .flatten()
}
