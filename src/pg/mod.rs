//! Thin pgrx glue: SQL-callable wrappers over `crate::domain`. They return results as data (an
//! error key, never a raised error); `sql/` turns a key into the catalogued SQLSTATE.

pub mod captured;
pub mod changes;
pub mod controls;
pub mod events;
pub mod held;
pub mod imports;
pub mod limits;
pub mod milestones;
pub mod normalize;
pub mod packages;
pub mod released;
pub mod sender;
pub mod settings;
pub mod visibility;
pub mod vocabularies;
pub mod welds;
