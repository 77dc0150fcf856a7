//! The event sender: change events leave the writers' commits (see `sql/17_realtime.sql`).
//!
//! PostgreSQL lets one transaction that NOTIFYs commit at a time, from its pre-commit until its
//! commit record is flushed: concurrent writers that each NOTIFY lose group commit and queue on
//! that lock. So a writer signs its events at pre-commit as before, and then: when that lock is
//! free, it NOTIFYs itself (a lone writer pays nothing more); when another transaction holds it
//! and the database's sender runs, it writes its events to the outbox (`pipetrak.event_outbox`),
//! a plain insert in its own transaction, and after it commits wakes the sender, a background
//! worker that NOTIFYs what committed and deletes it. What listeners get is unchanged: one event
//! per transaction, after it commits, never for one rolled back (its outbox rows roll back with
//! it).
//!
//! Design notes (decisions where the spec was silent):
//! - One sender per database, started on demand by the first writer that finds none (a dynamic
//!   background worker: no `shared_preload_libraries` needed). Starting, it locks
//!   `pipetrak.event_sender` (no user may: not an advisory lock a stranger could hold) and leaves
//!   at once if the sender recorded there still runs; else it records its pid, where writers look
//!   it up (once per session, then whenever the pid they know is no longer a sender). A session
//!   that started one waits a second for it before starting another.
//! - It leaves after `IDLE` without events, so it never keeps a database from being dropped
//!   (DROP DATABASE waits 5 s for other sessions) nor holds a connection slot for nothing; the next
//!   event starts it again (a few milliseconds, off the writer's path).
//! - A writer counts only on a sender that runs and is registered, checked again after its
//!   insert (a leaving sender locks the outbox, sends what committed and unregisters in one
//!   transaction, so an insert after that finds none). Where none runs, the writer NOTIFYs itself
//!   and starts one for the next events; where none can start (no free `max_worker_processes`
//!   slot, an owner that may not log in), writers keep NOTIFYing themselves: slower under
//!   concurrency, never lost. Its SQL runs with search_path `pg_catalog, pg_temp`.
//! - The outbox is unlogged: an event is news, not a record. A crash may drop events of the last
//!   instants; screens reload on reconnect anyway.

use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, SignalWakeFlags};
use pgrx::prelude::*;
use pgrx::spi::OwnedPreparedStatement;
use pgrx::{PgBuiltInOids, PgOid};
use std::cell::Cell;
use std::ffi::CStr;
use std::time::{Duration, Instant};

/// What the sender's worker is called (pg_stat_activity's backend_type).
const SENDER_TYPE: &str = "pipetrak event sender";
const SENDER_TYPE_C: &CStr = c"pipetrak event sender";
/// The sender leaves after this long without an event.
const IDLE: Duration = Duration::from_secs(2);
/// Events sent per transaction of the sender.
const BATCH: i64 = 1000;
/// How long a session that started a sender counts on it before starting another.
const STARTING: Duration = Duration::from_secs(1);

thread_local! {
    /// The pid of the database's sender as this session last found it (0: not known).
    static SENDER_PID: Cell<i32> = const { Cell::new(0) };
    /// This session's database has the outbox (found once).
    static OUTBOX_PRESENT: Cell<bool> = const { Cell::new(false) };
    /// The sender's drain, planned once and kept across its transactions.
    static DRAIN_PLAN: std::cell::RefCell<Option<OwnedPreparedStatement>> = const { std::cell::RefCell::new(None) };
    /// When this session last started a sender.
    static STARTED_AT: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// True when `pid` is a running sender of this database.
fn is_sender(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: returns a pointer to a static string or null; read before anything else runs.
    let kind = unsafe { pg_sys::GetBackgroundWorkerTypeByPid(pid) };
    // SAFETY: a non-null result is a NUL-terminated string; BackendPidGetProc returns the live
    // process's PGPROC or null, whose database is read once.
    !kind.is_null()
        && unsafe { CStr::from_ptr(kind) } == SENDER_TYPE_C
        && unsafe {
            let proc = pg_sys::BackendPidGetProc(pid);
            !proc.is_null() && (*proc).databaseId == pg_sys::MyDatabaseId
        }
}

/// At pre-commit, with events to send: whether the lock PostgreSQL's NOTIFY holds from a
/// transaction's pre-commit to its end is free now (asked without waiting and let go at once:
/// held from here, it would also cover this transaction's remaining pre-commit work). True: this
/// transaction NOTIFYs its events itself. False: another notifying transaction is committing.
pub fn notify_lock_free() -> bool {
    // The lock tag of async.c's PreCommit_Notify: an object lock on database 0 of pg_database.
    let tag = pg_sys::LOCKTAG {
        locktag_field1: 0,
        locktag_field2: u32::from(pg_sys::DatabaseRelationId),
        locktag_field3: 0,
        locktag_field4: 0,
        locktag_type: pg_sys::LockTagType::LOCKTAG_OBJECT as u8,
        locktag_lockmethodid: pg_sys::DEFAULT_LOCKMETHOD as u8,
    };
    // SAFETY: a transaction-scoped lock asked for without waiting; released at the end of the
    // transaction like NOTIFY's own.
    unsafe {
        let mode = pg_sys::AccessExclusiveLock as i32;
        let got = pg_sys::LockAcquire(&tag, mode, false, true);
        if got == pg_sys::LockAcquireResult::LOCKACQUIRE_NOT_AVAIL {
            return false;
        }
        pg_sys::LockRelease(&tag, mode, false);
        true
    }
}

/// Whether this database's sender is running (the registered one, read afresh: run as a
/// read-write statement, it takes a new snapshot, so a sender that unregistered after this
/// transaction began is seen gone). A database still at a version without the outbox (before
/// ALTER EXTENSION … UPDATE) has none.
pub fn live_sender(client: &mut pgrx::spi::SpiClient<'_>) -> bool {
    if !OUTBOX_PRESENT.get() {
        if outbox_oid().is_none() || relation_oid(c"event_sender").is_none() {
            return false;
        }
        OUTBOX_PRESENT.set(true);
    }
    let recorded = client
        .update("select pid from pipetrak.event_sender", Some(1), &[])
        .ok()
        .and_then(|rows| rows.first().get_one::<i32>().ok().flatten())
        .unwrap_or(0);
    SENDER_PID.set(if is_sender(recorded) { recorded } else { 0 });
    SENDER_PID.get() != 0
}

/// Starts a sender for this database, as the extension's owner, unless this session started one
/// in the last second (it is on its way).
pub fn start_sender(client: &pgrx::spi::SpiClient<'_>) {
    if STARTED_AT.get().is_some_and(|at| at.elapsed() < STARTING) || !OUTBOX_PRESENT.get() {
        return;
    }
    if launch_sender(client) {
        STARTED_AT.set(Some(Instant::now()));
    }
}

/// Registers the dynamic background worker; false when it can't (no free slot).
fn launch_sender(client: &pgrx::spi::SpiClient<'_>) -> bool {
    let owner = client
        .select(
            "select extowner from pg_catalog.pg_extension where extname = 'pipetrak'",
            Some(1),
            &[],
        )
        .ok()
        .and_then(|rows| rows.first().get_one::<pg_sys::Oid>().ok().flatten());
    let Some(owner) = owner else {
        return false;
    };
    // SAFETY: reads this backend's database.
    let database = unsafe { pg_sys::MyDatabaseId };
    BackgroundWorkerBuilder::new(SENDER_TYPE)
        .set_type(SENDER_TYPE)
        .set_library("pipetrak")
        .set_function("pipetrak_event_sender")
        .set_argument(Some(pg_sys::Datum::from(database)))
        .set_extra(&u32::from(owner).to_string())
        .enable_spi_access()
        .set_restart_time(None)
        .load_dynamic()
        .is_ok()
}

/// After the writer commits: wakes the sender it queued events for.
pub fn wake_sender() {
    let pid = SENDER_PID.get();
    if !is_sender(pid) {
        return;
    }
    // SAFETY: BackendPidGetProc returns the live process's PGPROC or null; setting its latch
    // only wakes it.
    unsafe {
        let proc = pg_sys::BackendPidGetProc(pid);
        if !proc.is_null() {
            pg_sys::SetLatch(&raw mut (*proc).procLatch);
        }
    }
}

const DRAIN: &str = "with sent as (
        delete from pipetrak.event_outbox
        where id in (select id from pipetrak.event_outbox order by id limit $1)
        returning id, channel, payload)
    select channel, payload, pg_catalog.pg_notify(channel, payload) is null from sent order by id";

/// Everything the outbox holds, sent (the leaving sender's last drain).
const DRAIN_ALL: &str =
    "with sent as (delete from pipetrak.event_outbox returning id, channel, payload)
    select pg_catalog.pg_notify(channel, payload) from sent order by id";

/// True while this database has the outbox (the extension may be dropped while the sender
/// waits). Two catalog cache lookups, no query.
fn outbox_present() -> bool {
    outbox_oid().is_some()
}

/// The outbox's relation, when there is one.
fn outbox_oid() -> Option<pg_sys::Oid> {
    relation_oid(c"event_outbox")
}

/// The relation `name` of the extension's schema, when there is one.
fn relation_oid(name: &CStr) -> Option<pg_sys::Oid> {
    // SAFETY: name lookups in the catalog caches, in a transaction; InvalidOid when missing.
    unsafe {
        let schema = pg_sys::get_namespace_oid(c"pipetrak".as_ptr(), true);
        if schema == pg_sys::Oid::INVALID {
            return None;
        }
        let relation = pg_sys::get_relname_relid(name.as_ptr(), schema);
        (relation != pg_sys::Oid::INVALID).then_some(relation)
    }
}

/// The sender's main: sends what the outbox holds, then waits to be woken; leaves when idle,
/// terminated, or when the extension is gone from its database.
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn pipetrak_event_sender(argument: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let database = pg_sys::Oid::from(argument.value() as u32);
    let Ok(owner) = BackgroundWorker::get_extra().parse::<u32>() else {
        return;
    };
    BackgroundWorker::connect_worker_to_spi_by_oid(Some(database), Some(pg_sys::Oid::from(owner)));
    let first = BackgroundWorker::transaction(|| {
        if !outbox_present() {
            return false;
        }
        if Spi::run("lock table pipetrak.event_sender in exclusive mode").is_err() {
            return false;
        }
        let another = Spi::get_one::<bool>(
            "select exists (select from pipetrak.event_sender s join pg_catalog.pg_stat_activity a on a.pid = s.pid
                            where a.backend_type = 'pipetrak event sender' and a.pid <> pg_catalog.pg_backend_pid()
                              and a.datname = pg_catalog.current_database())",
        );
        if another != Ok(Some(false)) {
            return false;
        }
        // SAFETY: reads this process's pid.
        let pid = unsafe { pg_sys::MyProcPid };
        Spi::run_with_args(
            "with gone as (delete from pipetrak.event_sender)
             insert into pipetrak.event_sender (pid, started_at) values ($1, now())",
            &[pid.into()],
        )
        .is_ok()
    });
    if !first {
        return;
    }
    let mut last_event = Instant::now();
    loop {
        let sent = BackgroundWorker::transaction(|| {
            if !outbox_present() {
                return None;
            }
            Spi::connect(|client| {
                DRAIN_PLAN.with(|kept| {
                    let mut kept = kept.borrow_mut();
                    if kept.is_none() {
                        *kept = Some(
                            client
                                .prepare_mut(DRAIN, &[PgOid::BuiltIn(PgBuiltInOids::INT8OID)])
                                .ok()?
                                .keep(),
                        );
                    }
                    client
                        .select(kept.as_ref()?, None, &[BATCH.into()])
                        .map(|rows| rows.len())
                        .ok()
                })
            })
        });
        let Some(sent) = sent else {
            return;
        };
        if sent > 0 {
            last_event = Instant::now();
            if sent as i64 == BATCH {
                continue;
            }
        } else if last_event.elapsed() >= IDLE {
            // Leaving: with the outbox locked against inserts (taken only when no writer holds
            // it: never waited for), send what committed and unregister, in one transaction. A
            // writer whose insert comes after finds no sender registered and NOTIFYs itself.
            let left = BackgroundWorker::transaction(|| {
                let Some(outbox) = outbox_oid() else {
                    return true;
                };
                // SAFETY: a lock asked for without waiting, held to the end of this transaction.
                if !unsafe { pg_sys::ConditionalLockRelationOid(outbox, pg_sys::ShareLock as i32) }
                {
                    return false;
                }
                let _ = Spi::run(DRAIN_ALL);
                let _ = Spi::run(
                    "delete from pipetrak.event_sender where pid = pg_catalog.pg_backend_pid()",
                );
                true
            });
            if left {
                return;
            }
            // Writers were inserting: stay, and try again after the next wait.
        }
        if !BackgroundWorker::wait_latch(Some(IDLE)) {
            return;
        }
    }
}
