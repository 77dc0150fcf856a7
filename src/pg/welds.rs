//! Field-weld glue: the QC status rule of `crate::domain::weld`, for SQL.

use crate::domain::weld;
use pgrx::prelude::*;

/// A weld's status ('active', 'accepted' or 'rejected') from the methods listed for it, its x-ray
/// tier, and its current NDE result per method, oldest first (`methods[i]` gave `results[i]`).
#[pg_extern(immutable, parallel_safe)]
pub fn weld_status(
    listed: Vec<Option<String>>,
    xray_percent: Option<i32>,
    methods: Vec<Option<String>>,
    results: Vec<Option<String>>,
) -> &'static str {
    let listed: Vec<String> = listed.into_iter().flatten().collect();
    let current: Vec<(String, String)> = methods
        .into_iter()
        .zip(results)
        .filter_map(|(m, r)| Some((m?, r?)))
        .collect();
    weld::status(&weld::required_methods(&listed, xray_percent), &current).as_str()
}

/// The NDE methods a repair of a rejected weld must pass (`weld::repair_methods`): the weld's
/// required methods and the ones that failed it.
#[pg_extern(immutable, parallel_safe)]
pub fn repair_nde_methods(
    listed: Vec<Option<String>>,
    xray_percent: Option<i32>,
    failed: Vec<Option<String>>,
) -> Vec<String> {
    let listed: Vec<String> = listed.into_iter().flatten().collect();
    let failed: Vec<String> = failed.into_iter().flatten().collect();
    weld::repair_methods(&listed, xray_percent, &failed)
}

/// Examinations a lot of `welded` welds needs at `tier` percent (rounded up).
#[pg_extern(immutable, strict, parallel_safe)]
pub fn sampling_required(welded: i32, tier: i32) -> i32 {
    let welded = u32::try_from(welded).unwrap_or(0);
    let tier = u32::try_from(tier).unwrap_or(0).min(100);
    i32::try_from(crate::domain::sampling::required(welded, tier)).unwrap_or(i32::MAX)
}

/// What a FAIL of a weld called at `stage` (0: examined for the sample) calls for: the next stage
/// and how many welds (null: the whole lot); no row once the whole lot is called for. `failed`
/// (the failed welds of the lot's progression) stays in the signature the SQL calls, but the rule
/// no longer depends on it: each reject or failed tracer calls two more.
#[pg_extern(immutable, strict, parallel_safe)]
pub fn sampling_call_after_failure(
    stage: i32,
    failed: i32,
) -> TableIterator<'static, (name!(stage, i32), name!(count, Option<i32>))> {
    let _ = failed;
    let call = u8::try_from(stage)
        .ok()
        .and_then(crate::domain::sampling::after_failure);
    TableIterator::new(call.into_iter().map(|c| {
        (
            i32::from(c.stage),
            c.count.map(|n| i32::try_from(n).unwrap_or(i32::MAX)),
        )
    }))
}
