//! Pure domain logic: no pgrx here, so all of it is tested with plain `cargo test`.

pub mod arguments;
pub mod changes;
pub mod component_type;
pub mod controls;
pub mod error;
pub mod event;
pub mod import;
pub mod manhours;
pub mod normalize;
pub mod package;
pub mod progress;
pub mod sampling;
pub mod savepoints;
pub mod sequence;
pub mod template;
pub mod weld;
pub mod work_date;
