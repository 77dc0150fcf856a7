//! The argument limits of `crate::domain::arguments`, for SQL: `argument_limit` (immutable, so a
//! wrapper's constant name is folded into its plan) and the registry as rows.

use crate::domain::arguments::{self, LIMITS};
use pgrx::prelude::*;

/// The limit of an API argument by name (characters, bytes or items), NULL for a name the
/// registry lacks.
#[pg_extern(immutable, strict, parallel_safe)]
pub fn argument_limit(argument: &str) -> Option<i32> {
    arguments::limit(argument).map(|max| max as i32)
}

/// The size limits of the API's arguments, one per argument name: argument, limit, unit.
#[pg_extern(immutable, parallel_safe)]
pub fn argument_limits() -> TableIterator<
    'static,
    (
        name!(argument, &'static str),
        name!(max, i32),
        name!(unit, &'static str),
    ),
> {
    TableIterator::new(
        LIMITS
            .iter()
            .map(|(name, max, unit)| (*name, *max as i32, unit.as_str())),
    )
}
