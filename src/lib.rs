//! pipetrak: the extension's entry point. Domain logic lives in `domain` (no pgrx), the SQL-callable
//! glue in `pg`, and the schema in `sql/*.sql`, pulled in here in order.
//!
//! Design notes (decisions where the spec was silent):
//! - Rust's allocator is mimalloc (the `#[global_allocator]` of the extension; Postgres's own
//!   memory stays palloc). With two threads allocating, glibc's malloc spent half the reading
//!   thread's time on arena locks and cross-thread frees. Built with dlopen-safe TLS (the library
//!   is loaded into running backends) and without transparent huge pages (which inflated resident
//!   memory by ~15 MB).

// No unwrap, expect or panic in the library: a user's input never aborts a statement that way.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod domain;
pub mod pg;

::pgrx::pg_module_magic!(name, version);

/// Called when a backend loads the library: registers the extension's settings.
#[pgrx::pg_guard]
pub extern "C-unwind" fn _PG_init() {
    pg::settings::define_settings();
}

// Rust's own allocations (never Postgres's palloc): an import reads on one thread and stages on
// another, where glibc's malloc spent more time on locks and cross-thread frees than on the rows.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// The schema, in order; `requires` names the Rust functions each file uses.
::pgrx::extension_sql_file!("../sql/01_bootstrap.sql", name = "bootstrap", bootstrap);
::pgrx::extension_sql_file!(
    "../sql/02_tables.sql",
    name = "tables",
    requires = [
        "bootstrap",
        normalize_drawing_key,
        parse_component_type,
        component_types,
        template_problem
    ]
);
::pgrx::extension_sql_file!(
    "../sql/03_identity.sql",
    name = "identity",
    requires = [
        "tables",
        project_visible,
        organization_visible,
        member_visible,
        caller_is
    ]
);
::pgrx::extension_sql_file!(
    "../sql/04_integrity.sql",
    name = "integrity",
    requires = ["identity", capture_row, flush_rows]
);
::pgrx::extension_sql_file!(
    "../sql/05_tenancy.sql",
    name = "tenancy",
    requires = ["integrity", default_milestones]
);
::pgrx::extension_sql_file!(
    "../sql/06_project_data.sql",
    name = "project_data",
    requires = [
        "tenancy",
        milestone_credit,
        normalize_commodity_code,
        normalize_size,
        accepted_component_types
    ]
);
::pgrx::extension_sql_file!(
    "../sql/07_milestones.sql",
    name = "milestones",
    requires = [
        "project_data",
        plan_milestone,
        work_date_problem,
        normalize_stencil
    ]
);
::pgrx::extension_sql_file!(
    "../sql/08_views.sql",
    name = "views",
    requires = ["milestones"]
);
::pgrx::extension_sql_file!(
    "../sql/09_api.sql",
    name = "api",
    requires = ["views", argument_limit]
);
::pgrx::extension_sql_file!(
    "../sql/10_imports.sql",
    name = "imports",
    requires = [
        "api",
        stage_import,
        import_sniff,
        import_refusal,
        render_report_csv,
        import_issue_severity,
        import_issue_hint,
        logging,
        max_upload_bytes
    ]
);
::pgrx::extension_sql_file!(
    "../sql/11_events.sql",
    name = "events",
    requires = [
        "imports",
        event_signature,
        signed_payload,
        signed_event_text
    ]
);
::pgrx::extension_sql_file!(
    "../sql/12_welds.sql",
    name = "welds",
    requires = [
        "events",
        weld_status,
        sampling_required,
        sampling_call_after_failure
    ]
);
::pgrx::extension_sql_file!(
    "../sql/13_packages.sql",
    name = "packages",
    requires = [
        "welds",
        package_stage_keys,
        package_stage_rule,
        package_stage_check,
        package_state,
        package_stage_blocker,
        natural_key
    ]
);
::pgrx::extension_sql_file!(
    "../sql/14_history.sql",
    name = "history",
    requires = ["packages", last_locked_sunday, manhour_weight]
);
::pgrx::extension_sql_file!("../sql/15_team.sql", name = "team", requires = ["history"]);
::pgrx::extension_sql_file!(
    "../sql/16_corrections.sql",
    name = "corrections",
    requires = ["team"]
);
::pgrx::extension_sql_file!(
    "../sql/17_realtime.sql",
    name = "realtime",
    requires = ["corrections", announce_change]
);
::pgrx::extension_sql_file!(
    "../sql/18_platform.sql",
    name = "platform",
    requires = ["realtime", setting_registry, max_batch_items]
);
// Scale-out on Citus: where each table goes, what stops it, and distribute().
::pgrx::extension_sql_file!(
    "../sql/19_distribution.sql",
    name = "distribution",
    requires = ["platform"]
);
// Project controls: baselines, timesheets, earned against planned, forecasts.
::pgrx::extension_sql_file!(
    "../sql/20_controls.sql",
    name = "controls",
    requires = [
        "distribution",
        planned_series,
        velocity_finish,
        spi_finish,
        vocabulary
    ]
);
// What each column of the API's views holds (PostgREST's OpenAPI document, a DBA's \d+).
::pgrx::extension_sql_file!(
    "../sql/97_column_comments.sql",
    name = "column_comments",
    requires = ["controls"]
);
// What each internal function does, generated from the comments above it (for a DBA's \df+).
::pgrx::extension_sql_file!(
    "../sql/98_comments.sql",
    name = "comments",
    requires = ["column_comments"]
);
::pgrx::extension_sql_file!("../sql/99_finalize.sql", name = "finalize", finalize);
