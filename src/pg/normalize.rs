//! Normalization functions, immutable so that generated columns and indexes can use them.

use crate::domain::{component_type::ComponentType, normalize};
use pgrx::prelude::*;

#[pg_extern(immutable, strict, parallel_safe)]
pub fn normalize_drawing_key(raw: &str) -> String {
    normalize::drawing_key(raw)
}

#[pg_extern(immutable, strict, parallel_safe)]
pub fn normalize_size(raw: &str) -> String {
    normalize::size(raw).value
}

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

#[pg_extern(immutable, parallel_safe)]
pub fn accepted_component_types() -> String {
    ComponentType::accepted_names()
}
