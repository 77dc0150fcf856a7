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
