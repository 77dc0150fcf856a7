//! Normalization functions, immutable so that generated columns and indexes can use them.

use crate::domain::component_type::{ComponentType, Identity};
use crate::domain::normalize;
use pgrx::prelude::*;

/// The key of a drawing number: case, spaces, look-alike dashes and letters, and sheet spellings
/// folded, so two spellings of one number are one drawing.
#[pg_extern(immutable, strict, parallel_safe)]
pub fn normalize_drawing_key(raw: &str) -> String {
    normalize::drawing_key(raw)
}

/// The letters and digits of a drawing key: two keys that share it look alike.
#[pg_extern(immutable, strict, parallel_safe)]
pub fn drawing_lookalike(key: &str) -> String {
    normalize::drawing_lookalike(key)
}

/// A size as the project keys it: fractions, inches and metric DN folded to one spelling
/// (`1 1/2"` and `1.5` are one size), `NOSIZE` when empty.
#[pg_extern(immutable, strict, parallel_safe)]
pub fn normalize_size(raw: &str) -> String {
    normalize::size(raw).value
}

/// A commodity code, spool id, weld number or tag as the project compares it: trimmed,
/// uppercased, whitespace collapsed.
#[pg_extern(immutable, strict, parallel_safe)]
pub fn normalize_commodity_code(raw: &str) -> String {
    normalize::commodity_code(raw)
}

/// NULL when the text is not a valid stencil.
#[pg_extern(immutable, strict, parallel_safe)]
pub fn normalize_stencil(raw: &str) -> Option<String> {
    normalize::stencil(raw)
}

/// The canonical type name for what a user wrote, NULL when it is not one.
#[pg_extern(immutable, strict, parallel_safe)]
pub fn parse_component_type(raw: &str) -> Option<&'static str> {
    ComponentType::parse(raw).map(ComponentType::as_str)
}

/// The component type names a user may write, for the hint of an unknown type.
#[pg_extern(immutable, parallel_safe)]
pub fn accepted_component_types() -> String {
    ComponentType::accepted_names()
}

/// The canonical names of the component types identified by `identity` (by_id, per_drawing,
/// linear_aggregate, single, per_seq; empty for anything else): the one rule, in Rust, that SQL asks instead of
/// listing type names. Immutable, so with a constant argument it is folded when a statement is
/// planned.
#[pg_extern(immutable, strict, parallel_safe)]
pub fn component_types(identity: &str) -> Vec<&'static str> {
    identity
        .parse::<Identity>()
        .map(ComponentType::identified_by)
        .unwrap_or_default()
}

/// A sort key putting text in natural order (`ISO-2` before `ISO-10`).
#[pg_extern(immutable, strict, parallel_safe)]
pub fn natural_key(raw: &str) -> String {
    normalize::natural_key(raw)
}
