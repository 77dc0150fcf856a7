//! A statement's rows for the upkeep of derived tables, without transition tables (which Citus
//! refuses on distributed tables). A row trigger (`capture_row`) copies each row's old and new
//! image into the transaction's memory; the statement trigger that follows (`flush_rows`) hands
//! the statement's images, as two arrays of the table's row type, to the SQL function its
//! argument names — `pipetrak.<function>(op text, old rows[], new rows[])`, an update's old and
//! new image at the same position — which nets them into one upsert per derived row, as it did
//! reading the transition tables. Both triggers take the function's name as their argument; a
//! table may have several such pairs, each capturing for its own function.
//!
//! Design notes:
//! - A statement's rows are flushed at its end. Rows of a statement nested inside another (a
//!   trigger's own write to the same table) are flushed by the nested statement's trigger,
//!   together with any the outer one captured so far: the functions add differences, so a row
//!   flushed early counts the same.
//! - Past 10,000 rows held the row trigger flushes its table's rows of its operation, so a
//!   restore's COPY of a million rows never holds more than that in memory; a flush frees the
//!   images it handed over.
//! - A savepoint rolled back forgets the rows it captured (their derived writes roll back with
//!   it); the end of the transaction forgets everything. The images live in the transaction's
//!   memory context, freed with it.

use super::settings::{distributed, with_setting};
use crate::domain::savepoints::BySubtransaction;
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::spi::OwnedPreparedStatement;
use pgrx::{PgBuiltInOids, PgOid};
use std::cell::RefCell;
use std::collections::HashMap;

/// Rows held before the row trigger flushes its table's rows itself.
const FLUSH_AT: usize = 10_000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Insert,
    Update,
    Delete,
}

impl Op {
    fn of(event: u32) -> Option<Op> {
        match event & pg_sys::TRIGGER_EVENT_OPMASK {
            pg_sys::TRIGGER_EVENT_INSERT => Some(Op::Insert),
            pg_sys::TRIGGER_EVENT_UPDATE => Some(Op::Update),
            pg_sys::TRIGGER_EVENT_DELETE => Some(Op::Delete),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Op::Insert => "INSERT",
            Op::Update => "UPDATE",
            Op::Delete => "DELETE",
        }
    }
}

/// One row's images for one upkeep function: composite datums in the transaction's memory.
struct Row {
    relid: pg_sys::Oid,
    op: Op,
    /// The upkeep function: its place in `FUNCTIONS`.
    function: usize,
    old: Option<pg_sys::Datum>,
    new: Option<pg_sys::Datum>,
}

thread_local! {
    static ROWS: RefCell<BySubtransaction<Row>> = RefCell::new(BySubtransaction::default());
    /// The upkeep functions met this session (a handful): rows name theirs by place.
    static FUNCTIONS: RefCell<Vec<Function>> = const { RefCell::new(Vec::new()) };
    /// Each upkeep function's call, planned once per session and table.
    static PLANS: RefCell<HashMap<(usize, pg_sys::Oid), OwnedPreparedStatement>> = RefCell::new(HashMap::new());
}

/// An upkeep function: its name, and the row type its arrays hold — the table's. On a Citus
/// worker the trigger fires on a shard (`components_102047`), whose rows are of the shard's own
/// type: they are captured as the table's rows, which the function takes.
struct Function {
    name: String,
    row_type: pg_sys::Oid,
}

/// The upkeep function named by a trigger's argument (a plain name of pipetrak's, nothing else):
/// its place in `FUNCTIONS`.
fn function_of(trigger: &pgrx::PgTrigger<'_>) -> Option<usize> {
    let args = trigger.extra_args().ok()?;
    let name = args.first()?;
    let plain = !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_');
    if !plain {
        return None;
    }
    if let Some(found) =
        FUNCTIONS.with(|functions| functions.borrow().iter().position(|f| &f.name == name))
    {
        return Some(found);
    }
    // Its second argument's type: an array of the table's rows.
    let array_type = Spi::get_one_with_args::<pg_sys::Oid>(
        "select p.proargtypes[1] from pg_catalog.pg_proc p
         where p.pronamespace operator(pg_catalog.=) 'pipetrak'::pg_catalog.regnamespace
           and p.proname operator(pg_catalog.=) $1 and p.pronargs operator(pg_catalog.=) 3",
        &[name.as_str().into()],
    );
    let Ok(Some(array_type)) = array_type else {
        // The triggers are the extension's own: a name without its function is an internal
        // error, and skipping the upkeep would let the derived tables drift.
        pgrx::error!("pipetrak: no upkeep function pipetrak.{name}(text, rows[], rows[])");
    };
    // SAFETY: a catalog lookup that returns InvalidOid for a type that is no array.
    let row_type = unsafe { pg_sys::get_element_type(array_type) };
    Some(FUNCTIONS.with(|functions| {
        let mut functions = functions.borrow_mut();
        functions.push(Function {
            name: name.clone(),
            row_type,
        });
        functions.len() - 1
    }))
}

/// How many rows are held (each statement's trigger flushes its own: none at commit).
pub fn held() -> usize {
    ROWS.with(|rows| rows.borrow().len())
}

/// Forgets every row held (the transaction ends; `super::held`).
pub fn forget() {
    ROWS.with(|rows| rows.borrow_mut().clear());
}

/// Forgets the rows of a savepoint rolled back and of those inside it (`super::held`).
pub fn roll_back(subtransaction: u32) {
    ROWS.with(|rows| rows.borrow_mut().roll_back(subtransaction));
}

/// Trigger, for each row: keeps the row's old and new images for the statement's flush.
#[pg_trigger]
fn capture_row<'a>(
    trigger: &'a pgrx::PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, pgrx::PgTriggerError> {
    let data = trigger.trigger_data();
    let (Some(op), Some(function)) = (Op::of(data.tg_event), function_of(trigger)) else {
        return Ok(None);
    };
    super::held::watch();
    let row_type = FUNCTIONS.with(|functions| functions.borrow().get(function).map(|f| f.row_type));
    // SAFETY: the trigger's own TriggerData (Postgres checked it is a row trigger's). A shard's
    // rows are converted (by column name) to the table's row type, its descriptor pinned in the
    // type cache while in use. The images are copied into TopTransactionContext, which outlives
    // the statement, and the previous context is restored before anything else runs.
    let (relid, old, new) = unsafe {
        let relation = data.tg_relation;
        let own_desc = (*relation).rd_att;
        let own_type = (*(*relation).rd_rel).reltype;
        let table_desc = match row_type {
            Some(t) if t != own_type && t != pg_sys::Oid::INVALID => {
                pg_sys::lookup_rowtype_tupdesc(t, -1)
            }
            _ => std::ptr::null_mut(),
        };
        let (desc, map) = if table_desc.is_null() {
            (own_desc, std::ptr::null_mut())
        } else {
            (
                table_desc,
                pg_sys::convert_tuples_by_name(own_desc, table_desc),
            )
        };
        let as_table = |tuple: pg_sys::HeapTuple| {
            if tuple.is_null() || map.is_null() {
                tuple
            } else {
                pg_sys::execute_attr_map_tuple(tuple, map)
            }
        };
        let (old_tuple, new_tuple) = match op {
            Op::Insert => (std::ptr::null_mut(), as_table(data.tg_trigtuple)),
            Op::Update => (as_table(data.tg_trigtuple), as_table(data.tg_newtuple)),
            Op::Delete => (as_table(data.tg_trigtuple), std::ptr::null_mut()),
        };
        let copy = |tuple: pg_sys::HeapTuple| {
            (!tuple.is_null()).then(|| pg_sys::heap_copy_tuple_as_datum(tuple, desc))
        };
        let previous = pg_sys::MemoryContextSwitchTo(pg_sys::TopTransactionContext);
        let (old, new) = (copy(old_tuple), copy(new_tuple));
        pg_sys::MemoryContextSwitchTo(previous);
        if !table_desc.is_null() {
            pg_sys::DecrTupleDescRefCount(table_desc);
        }
        ((*relation).rd_id, old, new)
    };
    let held = ROWS.with(|rows| {
        let mut rows = rows.borrow_mut();
        rows.push(
            super::held::subtransaction(),
            Row {
                relid,
                op,
                function,
                old,
                new,
            },
        );
        rows.len()
    });
    if held >= FLUSH_AT {
        flush(relid, op, function);
    }
    Ok(None)
}

/// Trigger, for each statement: hands the statement's captured rows to the upkeep function.
#[pg_trigger]
fn flush_rows<'a>(
    trigger: &'a pgrx::PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, pgrx::PgTriggerError> {
    let data = trigger.trigger_data();
    if let (Some(op), Some(function)) = (Op::of(data.tg_event), function_of(trigger)) {
        // SAFETY: the trigger's own relation.
        let relid = unsafe { (*data.tg_relation).rd_id };
        flush(relid, op, function);
    }
    Ok(None)
}

/// Calls `pipetrak.<function>(op, old[], new[])` with the rows captured for it on `relid` by `op`
/// (an update's old and new images at the same position of the two arrays).
fn flush(relid: pg_sys::Oid, op: Op, function: usize) {
    let Some((name, row_type)) = FUNCTIONS.with(|functions| {
        functions
            .borrow()
            .get(function)
            .map(|f| (f.name.clone(), f.row_type))
    }) else {
        return;
    };
    let rows = ROWS.with(|rows| {
        rows.borrow_mut().take(super::held::subtransaction(), |r| {
            r.relid == relid && r.op == op && r.function == function
        })
    });
    if rows.is_empty() {
        return;
    }
    // SAFETY: the images are composite datums of `relid`'s row type, alive in the transaction's
    // memory; construct_array copies them into the array it returns.
    let (old, new, array_type) = unsafe {
        let row_type = if row_type == pg_sys::Oid::INVALID {
            pg_sys::get_rel_type_id(relid)
        } else {
            row_type
        };
        let array_type = pg_sys::get_array_type(row_type);
        let array = |mut datums: Vec<pg_sys::Datum>| {
            pg_sys::Datum::from(pg_sys::construct_array(
                datums.as_mut_ptr(),
                datums.len() as i32,
                row_type,
                -1,
                false,
                pg_sys::TYPALIGN_DOUBLE as std::ffi::c_char,
            ))
        };
        let arrays = (
            array(rows.iter().filter_map(|r| r.old).collect()),
            array(rows.iter().filter_map(|r| r.new).collect()),
            array_type,
        );
        // The arrays hold copies: the images go now, not at the end of a long transaction.
        for datum in rows.iter().flat_map(|r| [r.old, r.new]).flatten() {
            pg_sys::pfree(datum.cast_mut_ptr());
        }
        arrays
    };
    // SAFETY: each datum is an array of the type named beside it.
    let args = unsafe {
        [
            op.name().into(),
            pgrx::datum::DatumWithOid::new(old, array_type),
            pgrx::datum::DatumWithOid::new(new, array_type),
        ]
    };
    // Generic plans: the functions' queries read the arrays through parameters, which would
    // otherwise keep choosing custom plans — each call planned again, a third of a weld
    // write's cost. A generic plan is what the transition tables' queries had. Not on a
    // distributed install: Citus can't plan an INSERT … SELECT over sharded tables with its
    // parameters unbound.
    let mode = if distributed() {
        c"force_custom_plan"
    } else {
        c"force_generic_plan"
    };
    let called = Spi::connect_mut(|client| -> pgrx::spi::SpiResult<()> {
        let key = (function, relid);
        let plan = PLANS.with(|plans| plans.borrow_mut().remove(&key));
        let plan = match plan {
            Some(kept) => kept,
            None => client
                .prepare_mut(
                    &format!("select pipetrak.{name}($1, $2, $3)"),
                    &[
                        PgOid::BuiltIn(PgBuiltInOids::TEXTOID),
                        PgOid::from(array_type),
                        PgOid::from(array_type),
                    ],
                )?
                .keep(),
        };
        // In a Citus task (a worker's part of a coordinator's statement) every upkeep statement
        // reads and writes by its rows' project, so Citus runs it on this node's shards in this
        // backend and it commits with the task; one it would split over shards is refused by
        // the workers' own setting (distribute(): citus.multi_task_query_log_level).
        let result = with_setting(c"plan_cache_mode", mode, || {
            client.update(&plan, None, &args).map(|_| ())
        });
        PLANS.with(|plans| plans.borrow_mut().insert(key, plan));
        result
    });
    if let Err(e) = called {
        // The function is the extension's own and its arguments are the rows just written: an
        // internal error, not a user's.
        pgrx::error!("pipetrak: keeping {name} failed: {e}");
    }
}
