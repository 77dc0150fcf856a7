//! The settings a DBA sets (`ALTER DATABASE … SET pipetrak.… = …`, `ALTER ROLE … SET`, or
//! postgresql.conf): one registry, here. Each is defined when a backend loads the library, and
//! `pipetrak.settings()` lists them with their values, defaults and ranges.
//!
//! Design notes (decisions where the spec was silent):
//! - Only a superuser changes them (`SUSET`): they bound what any request may cost, and a signed-in
//!   user with SQL access must not raise them for their own session.
//! - A limit can be lowered, never raised past the figure the product was measured at (the 50 MB
//!   upload and the 10,000-item batch are what the memory budget of a backend was proven with).
//! - Log lines are JSON objects after the word `pipetrak:` (one line each, at LOG level: the
//!   server log, never the client), so a log shipper can parse them; off by default.

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting, PostgresGucEnum};
use pgrx::prelude::*;
use std::cell::Cell;
use std::ffi::CStr;

/// `pipetrak.change_events`: announce committed changes on each project's channel.
pub static CHANGE_EVENTS: GucSetting<bool> = GucSetting::<bool>::new(true);

/// Who NOTIFYs a transaction's change events (`pipetrak.event_sender`; see `super::sender`).
#[derive(PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum EventSender {
    /// The writer itself unless another notifying transaction is committing; then the sender.
    #[name = c"auto"]
    Auto,
    /// Always the database's event sender.
    #[name = c"always"]
    Always,
    /// Always the writer itself (no background worker).
    #[name = c"off"]
    Off,
}

/// `pipetrak.event_sender`.
pub static EVENT_SENDER: GucSetting<EventSender> =
    GucSetting::<EventSender>::new(EventSender::Auto);
const EVENT_SENDER_NAME: &CStr = c"pipetrak.event_sender";
const EVENT_SENDER_SHORT: &CStr =
    c"Who NOTIFYs change events: auto (the writer, or the event sender while another notifying commit runs), always (the event sender), off (the writer).";
const EVENT_SENDER_LONG: &CStr = c"The event sender is a background worker per database, started on demand: concurrent writers then do not wait for each other's commits. off where no background worker may run.";
/// `pipetrak.max_upload_mb`: the largest file an import accepts.
static MAX_UPLOAD_MB: GucSetting<i32> = GucSetting::<i32>::new(UPLOAD_MB);
const UPLOAD_MB: i32 = 50;
/// `pipetrak.max_batch_items`: the most items one batch request carries.
static MAX_BATCH_ITEMS: GucSetting<i32> = GucSetting::<i32>::new(BATCH_ITEMS);
const BATCH_ITEMS: i32 = 10_000;
/// `pipetrak.log_imports`: a log line for each validated, committed or failed import.
static LOG_IMPORTS: GucSetting<bool> = GucSetting::<bool>::new(false);
/// `pipetrak.log_refusals`: a log line for each request refused with a catalogued error.
static LOG_REFUSALS: GucSetting<bool> = GucSetting::<bool>::new(false);

struct Flag {
    name: &'static CStr,
    short: &'static CStr,
    long: &'static CStr,
    setting: &'static GucSetting<bool>,
}

struct Limit {
    name: &'static CStr,
    short: &'static CStr,
    long: &'static CStr,
    min: i32,
    /// The default and the highest value.
    max: i32,
    setting: &'static GucSetting<i32>,
}

const FLAGS: &[Flag] = &[
    Flag {
        name: c"pipetrak.change_events",
        short: c"Announce committed changes on each project's channel (NOTIFY, Supabase Realtime).",
        long: c"Off: no change events are queued or sent (where write throughput matters more than screens refreshing). On: the committing writer sends them, or the event sender while another notifying commit runs (pipetrak.event_sender).",
        setting: &CHANGE_EVENTS,
    },
    Flag {
        name: c"pipetrak.log_imports",
        short: c"Log one JSON line for each import validated, committed or failed.",
        long: c"At LOG level in the server log: import id, project, kind, outcome, row counts and duration.",
        setting: &LOG_IMPORTS,
    },
    Flag {
        name: c"pipetrak.log_refusals",
        short: c"Log one JSON line for each request refused with a catalogued error.",
        long: c"At LOG level in the server log: error code, SQLSTATE, the signed-in user and the error's detail.",
        setting: &LOG_REFUSALS,
    },
];

const LIMITS: &[Limit] = &[
    Limit {
        name: c"pipetrak.max_upload_mb",
        short: c"The largest import file accepted, in MB (at most 50).",
        long: c"A DBA may lower it; 50 MB is what a backend's memory budget was measured with.",
        min: 1,
        max: UPLOAD_MB,
        setting: &MAX_UPLOAD_MB,
    },
    Limit {
        name: c"pipetrak.max_batch_items",
        short: c"The most items one batch request carries (at most 10000).",
        long: c"Milestone batches, bulk reassignments and component lists; a DBA may lower it.",
        min: 1,
        max: BATCH_ITEMS,
        setting: &MAX_BATCH_ITEMS,
    },
];

/// Registers the settings; called when the library loads.
pub fn define_settings() {
    for flag in FLAGS {
        GucRegistry::define_bool_guc(
            flag.name,
            flag.short,
            flag.long,
            flag.setting,
            GucContext::Suset,
            GucFlags::default(),
        );
    }
    GucRegistry::define_enum_guc(
        EVENT_SENDER_NAME,
        EVENT_SENDER_SHORT,
        EVENT_SENDER_LONG,
        &EVENT_SENDER,
        GucContext::Suset,
        GucFlags::default(),
    );
    for limit in LIMITS {
        GucRegistry::define_int_guc(
            limit.name,
            limit.short,
            limit.long,
            limit.setting,
            limit.min,
            limit.max,
            GucContext::Suset,
            GucFlags::default(),
        );
    }
}

/// The largest import file accepted, in bytes (`pipetrak.max_upload_mb`).
#[pg_extern(stable, parallel_safe)]
fn max_upload_bytes() -> i64 {
    i64::from(MAX_UPLOAD_MB.get()) * 1024 * 1024
}

/// The most items one batch request carries (`pipetrak.max_batch_items`).
#[pg_extern(stable, parallel_safe)]
fn max_batch_items() -> i32 {
    MAX_BATCH_ITEMS.get()
}

/// Whether log lines of `what` (imports, refusals) are on.
#[pg_extern(stable, parallel_safe)]
fn logging(what: &str) -> bool {
    match what {
        "imports" => LOG_IMPORTS.get(),
        "refusals" => LOG_REFUSALS.get(),
        _ => false,
    }
}

/// The extension's settings: name, what it does, and its range (pipetrak.settings() adds the
/// values from pg_settings).
#[pg_extern(immutable, parallel_safe)]
fn setting_registry() -> TableIterator<
    'static,
    (
        name!(name, String),
        name!(description, String),
        name!(min_value, Option<i32>),
        name!(max_value, Option<i32>),
    ),
> {
    let text = |c: &CStr| c.to_string_lossy().into_owned();
    let flags = FLAGS.iter().map(move |f| {
        (
            text(f.name),
            format!("{} {}", text(f.short), text(f.long)),
            None,
            None,
        )
    });
    let sender = std::iter::once((
        text(EVENT_SENDER_NAME),
        format!("{} {}", text(EVENT_SENDER_SHORT), text(EVENT_SENDER_LONG)),
        None,
        None,
    ));
    let limits = LIMITS.iter().map(move |l| {
        (
            text(l.name),
            format!("{} {}", text(l.short), text(l.long)),
            Some(l.min),
            Some(l.max),
        )
    });
    TableIterator::new(flags.chain(sender).chain(limits).collect::<Vec<_>>())
}

/// Runs `f` with PostgreSQL's setting `name` at `value`, as a function's `SET` clause would, and
/// puts it back after. An error inside aborts the (sub)transaction, which puts it back too.
pub fn with_setting<R>(name: &CStr, value: &CStr, f: impl FnOnce() -> R) -> R {
    // SAFETY: a GUC nest level opened here and closed below (or unwound by the abort of an error
    // in between), as fmgr does for a function's SET clause.
    let nest = unsafe {
        let nest = pg_sys::NewGUCNestLevel();
        pg_sys::set_config_option(
            name.as_ptr(),
            value.as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            0,
            false,
        );
        nest
    };
    let result = f();
    // SAFETY: as above.
    unsafe { pg_sys::AtEOXact_GUC(true, nest) };
    result
}

/// Whether Citus is loaded in this backend (it is preloaded, so the answer holds for the session):
/// its settings are defined — not placeholders, which anyone may create where it isn't loaded.
pub fn on_citus() -> bool {
    thread_local! {
        static LOADED: Cell<Option<bool>> = const { Cell::new(None) };
    }
    if let Some(loaded) = LOADED.get() {
        return loaded;
    }
    let name = c"citus.allow_nested_distributed_execution";
    // SAFETY: lookups of a setting by name that return null / 0 where it is not defined.
    let loaded = unsafe {
        !pg_sys::GetConfigOption(name.as_ptr(), true, false).is_null()
            && pg_sys::GetConfigOptionFlags(name.as_ptr(), true)
                & pg_sys::GUC_CUSTOM_PLACEHOLDER as i32
                == 0
    };
    LOADED.set(Some(loaded));
    loaded
}

/// Whether this backend runs a Citus coordinator's task on a worker (Citus names its own
/// connections so; only where Citus runs: elsewhere the name is anybody's to set). What such a
/// task must leave to the coordinator: change events (a NOTIFY on a worker is not heard there) and
/// the weekly snapshots a write finds due (they lock the project's row, a reference table's, on
/// every node).
#[pg_extern(stable, parallel_safe)]
pub fn citus_task() -> bool {
    if !on_citus() {
        return false;
    }
    // SAFETY: a lookup of a built-in setting by name; the string is read before anything else.
    let name = unsafe { pg_sys::GetConfigOption(c"application_name".as_ptr(), true, false) };
    !name.is_null()
        && unsafe { CStr::from_ptr(name) }
            .to_bytes()
            .starts_with(b"citus_internal gpid=")
}

/// Whether this backend is the coordinator of a distributed install (its tables distributed by
/// Citus, and not a coordinator's task on a worker): where a call does the upkeep the shards'
/// triggers leave to it (change events, the weekly snapshots due). False on a single node without
/// asking anything.
#[pg_extern(stable, parallel_safe)]
pub fn distributed_coordinator() -> bool {
    distributed() && !citus_task()
}

/// Whether this install's tables are distributed by Citus (`pipetrak.distributed()`), asked once
/// per transaction and only where Citus is loaded: a single node never asks.
pub fn distributed() -> bool {
    thread_local! {
        static KNOWN: Cell<Option<(pg_sys::LocalTransactionId, bool)>> = const { Cell::new(None) };
    }
    if !on_citus() {
        return false;
    }
    // SAFETY: MyProc is this backend's own PGPROC.
    let lxid = unsafe { (*pg_sys::MyProc).lxid };
    if let Some((asked_in, answer)) = KNOWN.get() {
        if asked_in == lxid {
            return answer;
        }
    }
    let answer = Spi::get_one::<bool>("select pipetrak.distributed()")
        .ok()
        .flatten()
        .unwrap_or(false);
    KNOWN.set(Some((lxid, answer)));
    answer
}
