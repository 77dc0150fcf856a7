//! Row-level security's one question: may the caller read this row's project, organization or
//! member? The read policies call these functions (Citus refuses policies holding a subquery on
//! distributed tables; a function call it accepts), and they must cost what the subquery did:
//! the caller's ids are read once per query, not once per row. The first call of a query asks
//! `pipetrak.my_project_ids` (or `my_organization_ids`, or the members of the caller's
//! organizations) through a plan kept for the session, and keeps the answer in the calling
//! expression's `fn_extra`, which lives as long as that query's execution: the next execution
//! (a new statement, a new snapshot) asks again. Every row after the first is a hash lookup.
//!
//! The SQL they run names every function and operator with its schema: a caller may set any
//! search_path, and what decides visibility must not resolve to a function of theirs.

use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::spi::OwnedPreparedStatement;
use pgrx::{PgBuiltInOids, PgOid};
use std::cell::RefCell;
use std::collections::HashSet;

const PROJECTS: &str = "select x from pipetrak.my_project_ids($1::pg_catalog.text) as x";
const ORGANIZATIONS: &str = "select x from pipetrak.my_organization_ids($1::pg_catalog.text) as x";
// The caller and every member of the caller's organizations (user ids as text: the set holds
// their 16 bytes).
const MEMBERS: &str = "select pipetrak.current_user_id()::pg_catalog.text
    union
    select m.user_id::pg_catalog.text from pipetrak.memberships m
    where m.organization_id operator(pg_catalog.=) any (array(select pipetrak.my_organization_ids('read')))";
const CALLER: &str = "select pipetrak.current_user_id()::pg_catalog.text";

thread_local! {
    // The session's plans, one per question.
    static PLANS: RefCell<[Option<OwnedPreparedStatement>; 4]> = const { RefCell::new([None, None, None, None]) };
}

#[derive(Clone, Copy)]
enum Question {
    Projects = 0,
    Organizations = 1,
    Members = 2,
    Caller = 3,
}

impl Question {
    fn sql(self) -> &'static str {
        match self {
            Question::Projects => PROJECTS,
            Question::Organizations => ORGANIZATIONS,
            Question::Members => MEMBERS,
            Question::Caller => CALLER,
        }
    }

    /// Whether the question takes the permission (ids are bigints) or not (user ids).
    fn by_permission(self) -> bool {
        matches!(self, Question::Projects | Question::Organizations)
    }
}

/// What one query execution learned: the permission asked and the ids it grants.
#[derive(Default)]
struct Answer {
    permission: Option<String>,
    ids: HashSet<[u8; 16]>,
}

/// Runs `question` for `permission` (a plan kept for the session) and returns the ids, each as
/// 16 bytes: a bigint's big-endian bytes, zero-padded, or a uuid's text parsed.
fn ask(question: Question, permission: &str) -> HashSet<[u8; 16]> {
    let result = Spi::connect(|client| -> pgrx::spi::SpiResult<HashSet<[u8; 16]>> {
        let plan = PLANS.with(|plans| plans.borrow_mut()[question as usize].take());
        let plan = match plan {
            Some(kept) => kept,
            None => {
                let types: &[PgOid] = if question.by_permission() {
                    &[PgOid::BuiltIn(PgBuiltInOids::TEXTOID)]
                } else {
                    &[]
                };
                client.prepare(question.sql(), types)?.keep()
            }
        };
        let rows = if question.by_permission() {
            client.select(&plan, None, &[permission.into()])
        } else {
            client.select(&plan, None, &[])
        };
        PLANS.with(|plans| plans.borrow_mut()[question as usize] = Some(plan));
        let mut ids = HashSet::new();
        for row in rows? {
            let id = if question.by_permission() {
                row.get::<i64>(1)?.map(bigint_bytes)
            } else {
                row.get::<String>(1)?.and_then(|text| uuid_bytes(&text))
            };
            ids.extend(id);
        }
        Ok(ids)
    });
    // A failure reading the caller's own ids grants nothing (the reads are plain selects of the
    // extension's tables; nothing a caller sends reaches them).
    result.unwrap_or_default()
}

fn bigint_bytes(id: i64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&id.to_be_bytes());
    key
}

fn uuid_bytes(text: &str) -> Option<[u8; 16]> {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut key = [0u8; 16];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(key)
}

/// Whether `id` is among the ids `question` grants for `permission`, asked once per execution of
/// the calling query (the answer is kept in its `fn_extra`).
fn visible(
    fcinfo: pg_sys::FunctionCallInfo,
    question: Question,
    permission: &str,
    id: [u8; 16],
) -> bool {
    // SAFETY: fcinfo is the call's own FunctionCallInfo, which Postgres passes to every function;
    // fn_extra is allocated in fn_mcxt and dropped with it (pg_func_extra).
    let mut answer = unsafe { pgrx::fcinfo::pg_func_extra(fcinfo, Answer::default) };
    if answer.permission.as_deref() != Some(permission) {
        answer.ids = ask(question, permission);
        answer.permission = Some(permission.to_owned());
    }
    answer.ids.contains(&id)
}

/// Whether the caller's role in the project's organization grants `permission` ('read': any
/// member). The read policies of project tables call it.
#[pg_extern(stable, parallel_safe)]
fn project_visible(
    project_id: i64,
    permission: default!(&str, "'read'"),
    fcinfo: pg_sys::FunctionCallInfo,
) -> bool {
    visible(
        fcinfo,
        Question::Projects,
        permission,
        bigint_bytes(project_id),
    )
}

/// Whether the caller's role in the organization grants `permission` ('read': any member).
#[pg_extern(stable, parallel_safe)]
fn organization_visible(
    organization_id: i64,
    permission: default!(&str, "'read'"),
    fcinfo: pg_sys::FunctionCallInfo,
) -> bool {
    visible(
        fcinfo,
        Question::Organizations,
        permission,
        bigint_bytes(organization_id),
    )
}

/// Whether the user is the caller or a member of one of the caller's organizations.
#[pg_extern(stable, parallel_safe)]
fn member_visible(user_id: pgrx::Uuid, fcinfo: pg_sys::FunctionCallInfo) -> bool {
    visible(fcinfo, Question::Members, "read", *user_id.as_bytes())
}

/// Whether the user is the caller (who reads their own stored requests).
#[pg_extern(stable, parallel_safe)]
fn caller_is(user_id: pgrx::Uuid, fcinfo: pg_sys::FunctionCallInfo) -> bool {
    visible(fcinfo, Question::Caller, "read", *user_id.as_bytes())
}
