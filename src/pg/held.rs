//! One pair of transaction callbacks for what the backend holds until its transaction ends: the
//! change events (`super::changes`) and the rows captured for derived tables
//! (`super::captured`). Registered once per session, the first time either holds something; a
//! rolled-back savepoint forgets what both hold from it on (`domain::savepoints`).

use pgrx::prelude::*;
use std::cell::Cell;

thread_local! {
    static REGISTERED: Cell<bool> = const { Cell::new(false) };
}

/// Makes sure the callbacks run at this session's transaction ends.
pub fn watch() {
    if REGISTERED.get() {
        return;
    }
    // SAFETY: plain registrations of functions that live as long as the library.
    unsafe {
        pg_sys::RegisterXactCallback(Some(on_transaction), std::ptr::null_mut());
        pg_sys::RegisterSubXactCallback(Some(on_subtransaction), std::ptr::null_mut());
    }
    REGISTERED.set(true);
}

/// The running subtransaction's number, to tag what is held with.
pub fn subtransaction() -> u32 {
    // SAFETY: a read of the running transaction's state.
    unsafe { pg_sys::GetCurrentSubTransactionId() }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_transaction(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    // The rows first: they are flushed by the statements that wrote them, so anything still held
    // here belongs to a transaction that is ending. Rows held at commit had no statement trigger
    // to flush them (one of a pair disabled): their derived rows are not kept, and a DBA is told.
    if event == pg_sys::XactEvent::XACT_EVENT_PRE_COMMIT {
        let held = super::captured::held();
        if held > 0 {
            pgrx::warning!(
                "pipetrak: {held} captured rows were not applied to the derived tables (a capture_row trigger without its flush_rows); rebuild them"
            );
        }
    } else if event != pg_sys::XactEvent::XACT_EVENT_PARALLEL_PRE_COMMIT {
        super::captured::forget();
    }
    super::changes::at_transaction_end(event);
}

#[pg_guard]
unsafe extern "C-unwind" fn on_subtransaction(
    event: pg_sys::SubXactEvent::Type,
    subtransaction: pg_sys::SubTransactionId,
    _parent: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    if event == pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB {
        super::captured::roll_back(subtransaction);
        super::changes::roll_back(subtransaction);
    }
}
