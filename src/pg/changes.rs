//! Change events held in the backend until commit (see `sql/17_realtime.sql`).
//!
//! A row trigger on each watched table (`announce_change`) queues the row's id; just before the
//! transaction commits, a transaction callback turns the queue into events, signs them (one per event, on the
//! project's channel), as the role that queued them, and hands them to the database's event
//! sender through the outbox (`super::sender`), which NOTIFYs them once the transaction has
//! committed; where no sender can run, it NOTIFYs them itself. A rolled-back
//! savepoint drops what it queued; an aborted transaction drops everything. Kept in memory rather
//! than in a table: the writes and the commit-time trigger of a queue table cost more than the
//! NOTIFY itself.

use super::sender;
use super::settings::{citus_task, with_setting, EventSender, CHANGE_EVENTS, EVENT_SENDER};
use crate::domain::changes::{project_events, ChangeQueue};
use crate::domain::event::signed_payload;
use pgrx::prelude::*;
use pgrx::spi::OwnedPreparedStatement;
use pgrx::{JsonB, PgBuiltInOids, PgOid};
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};

thread_local! {
    static QUEUE: RefCell<ChangeQueue> = RefCell::new(ChangeQueue::default());
    /// The role that queued the changes (the extension's owner, through its functions).
    static WRITER: Cell<pg_sys::Oid> = const { Cell::new(pg_sys::Oid::INVALID) };
    /// The keys' query, planned once per session (the plan cache revalidates it).
    static SECRETS_PLAN: RefCell<Option<OwnedPreparedStatement>> = const { RefCell::new(None) };
    /// The outbox insert, planned once per session.
    static OUTBOX_PLAN: RefCell<Option<OwnedPreparedStatement>> = const { RefCell::new(None) };
    /// This transaction put events in the outbox: the sender is woken once it commits.
    static QUEUED_FOR_SENDER: Cell<bool> = const { Cell::new(false) };
}

/// On a distributed (Citus) install, queues `ids` of `kind` changed in project `project_id` by the
/// calling function on the coordinator: the changed rows' triggers run on the workers, where a
/// NOTIFY is not heard by a listener of the coordinator, so the calls that write announce what
/// they wrote here (lock_component, lock_weld, update_milestone). Elsewhere nothing: the triggers
/// queue it. Private: only the extension calls it.
#[pg_extern(volatile, parallel_unsafe)]
fn queue_change(project_id: i64, kind: &str, ids: Vec<Option<i64>>) {
    if super::settings::distributed_coordinator() {
        queue(project_id, kind, ids.into_iter().flatten().collect());
    }
}

/// Trigger, for each row inserted or updated in a watched table: queues the row's id as a change
/// of its project. Arguments: the kind, and the column holding the id the screens know the row by
/// (`stage_id`: a package stage, announced as its test package). A row trigger rather than a
/// statement trigger reading a transition table: one row costs a few microseconds instead of a
/// tuplestore, a PL/pgSQL call and a query, and Citus accepts it on a distributed table (where
/// the events then start on the worker is for the scale-out work to route).
#[pg_trigger]
fn announce_change<'a>(
    trigger: &'a pgrx::PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, pgrx::PgTriggerError> {
    if !CHANGE_EVENTS.get() || citus_task() {
        return Ok(None);
    }
    let args = trigger.extra_args()?;
    let (Some(kind), Some(column), Some(row)) = (args.first(), args.get(1), trigger.new()) else {
        return Ok(None);
    };
    let project_id = row.get_by_name::<i64>("project_id").ok().flatten();
    let mut id = row.get_by_name::<i64>(column).ok().flatten();
    if column == "stage_id" {
        id = id.and_then(|stage| {
            Spi::get_one_with_args::<i64>(
                "select s.test_package_id from pipetrak.package_stages s
                 where s.id operator(pg_catalog.=) $1 and s.project_id operator(pg_catalog.=) $2",
                &[stage.into(), project_id.into()],
            )
            .ok()
            .flatten()
        });
    }
    if let (Some(project_id), Some(id)) = (project_id, id) {
        queue(project_id, kind, vec![id]);
    }
    Ok(None)
}

fn queue(project_id: i64, kind: &str, ids: Vec<i64>) {
    if !CHANGE_EVENTS.get() {
        return;
    }
    super::held::watch();
    let subtransaction = super::held::subtransaction();
    // SAFETY: a read of the running transaction's state.
    WRITER.set(unsafe { pg_sys::GetUserId() });
    QUEUE.with(|queue| {
        queue
            .borrow_mut()
            .push(subtransaction, project_id, kind, ids)
    });
}

/// The running transaction's queued changes, {project: {kind: [ids]}} (for tests).
#[pg_extern(volatile, parallel_unsafe)]
fn queued_changes() -> JsonB {
    JsonB(QUEUE.with(|queue| json!(queue.borrow().by_project())))
}

/// The events `changes` ({kind: [ids]} of one project) would be sent as (for tests).
#[pg_extern(immutable, strict, parallel_safe)]
fn change_events(changes: JsonB) -> Vec<JsonB> {
    let kinds: BTreeMap<String, BTreeSet<i64>> = match changes.0 {
        Value::Object(kinds) => kinds
            .into_iter()
            .map(|(kind, ids)| {
                let ids = ids
                    .as_array()
                    .map(|ids| ids.iter().filter_map(Value::as_i64).collect())
                    .unwrap_or_default();
                (kind, ids)
            })
            .collect(),
        _ => BTreeMap::new(),
    };
    project_events(&kinds).into_iter().map(JsonB).collect()
}

/// At a transaction's end (`super::held`): just before commit, sends the queued changes; after
/// it, wakes the sender; otherwise forgets them.
pub fn at_transaction_end(event: pg_sys::XactEvent::Type) {
    match event {
        pg_sys::XactEvent::XACT_EVENT_PRE_COMMIT => send(),
        pg_sys::XactEvent::XACT_EVENT_COMMIT => {
            if QUEUED_FOR_SENDER.replace(false) {
                sender::wake_sender();
            }
            QUEUE.with(|queue| queue.borrow_mut().clear())
        }
        // Parallel workers queue nothing (triggers don't run in them); a transaction prepared for
        // two-phase commit can't NOTIFY, so its changes go unannounced.
        pg_sys::XactEvent::XACT_EVENT_PARALLEL_PRE_COMMIT => {}
        _ => {
            QUEUED_FOR_SENDER.set(false);
            QUEUE.with(|queue| queue.borrow_mut().clear())
        }
    }
}

/// A savepoint rolled back (`super::held`): its changes go with it.
pub fn roll_back(subtransaction: u32) {
    QUEUE.with(|queue| queue.borrow_mut().roll_back(subtransaction));
}

const OUTBOX_INSERT: &str =
    "insert into pipetrak.event_outbox (channel, payload) values ($1, $2) returning id";

/// A project's channel, its signing key, and the transaction's time as jsonb prints it.
const SECRETS: &str = "select s.project_id, pipetrak.channel_name(s.channel_key), s.signing_key, \
                       to_jsonb(now())::text from pipetrak.project_secrets s where s.project_id = any ($1)";

/// Sends the queued changes' events: each signed, on its project's channel, as
/// `pipetrak.notify_project` would send it; and to Supabase Realtime's topic where it exists. As
/// the role that queued them: the caller at commit may be a user who reads no project's keys.
fn send() {
    let events = QUEUE.with(|queue| {
        let mut queue = queue.borrow_mut();
        let events = queue.events();
        queue.clear();
        events
    });
    if events.is_empty() {
        return;
    }
    let projects: Vec<i64> = events
        .iter()
        .map(|(project_id, _)| *project_id)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut user = pg_sys::Oid::INVALID;
    let mut context = 0;
    // SAFETY: the identity is switched for these calls and switched back after them, and they get
    // the snapshot a statement has (the committing statement's is gone); an error in between
    // aborts the transaction, which restores both.
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut user, &mut context);
        pg_sys::SetUserIdAndSecContext(
            WRITER.get(),
            context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32,
        );
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
    }
    // The statements below run as the extension's owner: with the caller's search_path, a
    // temporary type or function of theirs could be picked up (pg_temp is searched first for
    // types). Only pg_catalog, then pg_temp last, until they are done.
    let sent = with_setting(c"search_path", c"pg_catalog, pg_temp", || {
        Spi::connect_mut(|client| -> pgrx::spi::SpiResult<()> {
            let mut secrets = BTreeMap::new();
            let plan =
                SECRETS_PLAN.with(|plan| -> pgrx::spi::SpiResult<OwnedPreparedStatement> {
                    match plan.take() {
                        Some(kept) => Ok(kept),
                        None => Ok(client
                            .prepare(SECRETS, &[PgOid::BuiltIn(PgBuiltInOids::INT8ARRAYOID)])?
                            .keep()),
                    }
                })?;
            let rows = client.select(&plan, None, &[projects.into()]);
            SECRETS_PLAN.with(|kept| kept.replace(Some(plan)));
            for row in rows? {
                if let (Some(project_id), Some(channel), Some(signing_key), Some(sent_at)) = (
                    row.get::<i64>(1)?,
                    row.get::<String>(2)?,
                    row.get::<Vec<u8>>(3)?,
                    row.get::<String>(4)?,
                ) {
                    secrets.insert(project_id, (channel, signing_key, sent_at));
                }
            }
            let realtime = realtime_send_exists(client)?;
            let mut messages = Vec::with_capacity(events.len());
            for (project_id, mut event) in events {
                // A project deleted in this transaction has no keys left: nobody to tell.
                let Some((channel, signing_key, sent_at)) = secrets.get(&project_id) else {
                    continue;
                };
                event["project_id"] = json!(project_id);
                event["sent_at"] = serde_json::from_str(sent_at).unwrap_or(Value::Null);
                // Signed over exactly the text sent (`domain::event`).
                let text = event.to_string();
                messages.push((channel.clone(), signed_payload(signing_key, &text)));
                if realtime {
                    client.update(
                        "select realtime.send($1, 'changes', $2, true)",
                        None,
                        &[JsonB(event).into(), format!("project:{project_id}").into()],
                    )?;
                }
            }
            // Through the sender only where one runs (and still runs once the events are in the
            // outbox: a sender leaving locks the outbox, so an insert after it finds it gone); else
            // this transaction NOTIFYs them itself, and a sender is started for the next ones.
            let contended = match EVENT_SENDER.get() {
                EventSender::Off => false,
                EventSender::Always => true,
                EventSender::Auto => !sender::notify_lock_free(),
            };
            let mut direct = !contended || !sender::live_sender(client);
            if !direct {
                let mut ids = Vec::with_capacity(messages.len());
                for (channel, payload) in &messages {
                    ids.push(outbox_insert(client, channel, payload)?);
                }
                if sender::live_sender(client) {
                    QUEUED_FOR_SENDER.set(true);
                } else {
                    client.update(
                        "delete from pipetrak.event_outbox where id = any ($1)",
                        None,
                        &[ids.into()],
                    )?;
                    direct = true;
                }
            }
            if direct {
                if contended {
                    sender::start_sender(client);
                }
                for (channel, payload) in &messages {
                    // SAFETY: pg_notify takes two text datums, made here in the current memory context.
                    unsafe {
                        pgrx::direct_function_call_as_datum(
                            pg_sys::pg_notify,
                            &[channel.as_str().into_datum(), payload.as_str().into_datum()],
                        );
                    }
                }
            }
            Ok(())
        })
    });
    // SAFETY: as above.
    unsafe {
        pg_sys::PopActiveSnapshot();
        pg_sys::SetUserIdAndSecContext(user, context);
    }
    if let Err(e) = sent {
        // Announcing is best effort: the changes themselves commit.
        pgrx::warning!("pipetrak: change events not sent: {e}");
    }
}

/// Puts one signed event in the outbox; its id.
fn outbox_insert(
    client: &mut pgrx::spi::SpiClient<'_>,
    channel: &str,
    payload: &str,
) -> pgrx::spi::SpiResult<i64> {
    let plan = OUTBOX_PLAN.with(|plan| -> pgrx::spi::SpiResult<OwnedPreparedStatement> {
        match plan.take() {
            Some(kept) => Ok(kept),
            None => Ok(client
                .prepare_mut(OUTBOX_INSERT, &[PgOid::BuiltIn(PgBuiltInOids::TEXTOID); 2])?
                .keep()),
        }
    })?;
    let inserted = client.update(&plan, None, &[channel.into(), payload.into()]);
    OUTBOX_PLAN.with(|kept| kept.replace(Some(plan)));
    Ok(inserted?.first().get_one::<i64>()?.unwrap_or(0))
}

/// Whether Supabase Realtime's `realtime.send` is there to call.
fn realtime_send_exists(client: &pgrx::spi::SpiClient<'_>) -> pgrx::spi::SpiResult<bool> {
    // SAFETY: a catalog lookup by name that returns InvalidOid when there is no such schema.
    let schema = unsafe { pg_sys::get_namespace_oid(c"realtime".as_ptr(), true) };
    if schema == pg_sys::Oid::INVALID {
        return Ok(false);
    }
    Ok(client
        .select(
            "select to_regprocedure('realtime.send(jsonb, text, text, boolean)') is not null",
            None,
            &[],
        )?
        .first()
        .get_one::<bool>()?
        .unwrap_or(false))
}
