//! pipetrak: the extension's entry point. Domain logic lives in `domain` (no pgrx), the SQL-callable
//! glue in `pg`, and the schema in `sql/*.sql`, pulled in here in order.

pub mod domain;
pub mod pg;

::pgrx::pg_module_magic!();
