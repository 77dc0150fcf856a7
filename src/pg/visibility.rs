//! Row-level security's one question: may the caller read this row's project, organization or
//! member? The read policies call these functions (Citus refuses policies holding a subquery on
//! distributed tables; a function call it accepts), and they must cost what the subquery did:
//! the caller's ids are read once per query, not once per row. The first call of a query asks
//! `pipetrak.my_project_ids` (or `my_organization_ids`, or the members of the caller's
//! organizations) through a plan kept for the session, and keeps the answer in the calling
//! expression's `fn_extra`, which lives as long as that query's execution (in each process of a
//! parallel query): the next execution (a new statement, a new snapshot) asks again. Where an
//! expression lives longer (a PL/pgSQL simple expression lives for its transaction), the answer is
//! also tied to the transaction and the role it was asked in (not to the claims: reading them for
//! every row cost a tenth of a dashboard, and a caller who changes their own claims within a
//! transaction can set any claims anyway). Every row after the first is a hash lookup.
//!
//! The lookup runs read-only, as PL/pgSQL runs a STABLE function's queries: no new command id or
//! snapshot inside the caller's query, which may be running in parallel mode. The SQL names every
//! function and operator with its schema: a caller may set any search_path, and what decides
//! visibility must not resolve to a function of theirs.

use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::Cell;
use std::ffi::CStr;

const PROJECTS: &CStr = c"select x from pipetrak.my_project_ids($1::pg_catalog.text) as x";
const ORGANIZATIONS: &CStr =
    c"select x from pipetrak.my_organization_ids($1::pg_catalog.text) as x";
// The caller and every member of the caller's organizations (user ids as text: the set holds
// their 16 bytes).
const MEMBERS: &CStr = c"select pipetrak.current_user_id()::pg_catalog.text
    union
    select m.user_id::pg_catalog.text from pipetrak.memberships m
    where m.organization_id operator(pg_catalog.=) any (array(select pipetrak.my_organization_ids('read')))";
const CALLER: &CStr = c"select pipetrak.current_user_id()::pg_catalog.text";

thread_local! {
    // The session's plans, one per question (kept with SPI_keepplan: they live as long as the
    // backend, and the plan cache revalidates them).
    static PLANS: Cell<[pg_sys::SPIPlanPtr; 4]> = const { Cell::new([std::ptr::null_mut(); 4]) };
}

#[derive(Clone, Copy)]
enum Question {
    Projects = 0,
    Organizations = 1,
    Members = 2,
    Caller = 3,
}

impl Question {
    fn sql(self) -> &'static CStr {
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

/// What one query execution learned: the ids `permission` grants, asked in transaction `lxid`
/// as role `role`.
#[derive(Default)]
struct Answer {
    permission: Option<String>,
    lxid: pg_sys::LocalTransactionId,
    role: pg_sys::Oid,
    /// Sorted: a caller's ids are few, and a binary search of them costs less than hashing.
    ids: Vec<[u8; 16]>,
}

/// Runs `question` for `permission` (a plan kept for the session, read-only) and returns the
/// ids, sorted and each once, each as 16 bytes: a bigint's big-endian bytes, zero-padded, or a
/// uuid's text parsed.
fn ask(question: Question, permission: &str) -> Vec<[u8; 16]> {
    let result = Spi::connect(|_client| -> pgrx::spi::SpiResult<Vec<[u8; 16]>> {
        let mut ids = Vec::new();
        // SAFETY: SPI is connected for this closure. The plan is prepared from a constant and
        // kept; the arguments match its parameters; the tuple table is read before SPI closes.
        unsafe {
            let mut plans = PLANS.get();
            let mut plan = plans[question as usize];
            if plan.is_null() {
                let mut types = [pg_sys::TEXTOID];
                let nargs = if question.by_permission() { 1 } else { 0 };
                plan = pg_sys::SPI_prepare(question.sql().as_ptr(), nargs, types.as_mut_ptr());
                if plan.is_null() {
                    return Ok(ids);
                }
                pg_sys::SPI_keepplan(plan);
                plans[question as usize] = plan;
                PLANS.set(plans);
            }
            let mut values = [permission.into_datum().unwrap_or(pg_sys::Datum::from(0))];
            let nulls = [b' ' as std::ffi::c_char];
            let status =
                pg_sys::SPI_execute_plan(plan, values.as_mut_ptr(), nulls.as_ptr(), true, 0);
            let table = pg_sys::SPI_tuptable;
            if status != pg_sys::SPI_OK_SELECT as i32 || table.is_null() {
                return Ok(ids);
            }
            for i in 0..(*table).numvals as usize {
                let mut isnull = false;
                let datum =
                    pg_sys::SPI_getbinval(*(*table).vals.add(i), (*table).tupdesc, 1, &mut isnull);
                if isnull {
                    continue;
                }
                let id = if question.by_permission() {
                    i64::from_datum(datum, false).map(bigint_bytes)
                } else {
                    String::from_datum(datum, false).and_then(|text| uuid_bytes(&text))
                };
                ids.extend(id);
            }
        }
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    });
    // A failure reading the caller's own ids grants nothing (an error in the lookup itself
    // raises, as any query's would).
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
/// the calling query (the answer is kept in its `fn_extra`) and again where the transaction or
/// the role changed since.
fn visible(
    fcinfo: pg_sys::FunctionCallInfo,
    question: Question,
    permission: &str,
    id: [u8; 16],
) -> bool {
    // SAFETY: fcinfo is the call's own FunctionCallInfo, which Postgres passes to every function;
    // fn_extra is allocated in fn_mcxt and dropped with it (pg_func_extra). MyProc is this
    // backend's own PGPROC.
    let mut answer = unsafe { pgrx::fcinfo::pg_func_extra(fcinfo, Answer::default) };
    let (lxid, role) = unsafe { ((*pg_sys::MyProc).lxid, pg_sys::GetUserId()) };
    if answer.permission.as_deref() != Some(permission)
        || answer.lxid != lxid
        || answer.role != role
    {
        answer.ids = ask(question, permission);
        answer.permission = Some(permission.to_owned());
        answer.lxid = lxid;
        answer.role = role;
    }
    answer.ids.binary_search(&id).is_ok()
}

/// Whether the caller is a member of the project's organization. The read policies of project
/// tables call it (no permission argument: the per-row call stays as cheap as the subquery's
/// hash probe was).
#[pg_extern(stable, parallel_safe)]
fn project_visible(project_id: i64, fcinfo: pg_sys::FunctionCallInfo) -> bool {
    visible(fcinfo, Question::Projects, "read", bigint_bytes(project_id))
}

/// Whether the caller's role in the project's organization grants `permission`.
#[pg_extern(stable, parallel_safe)]
fn project_visible_for(
    project_id: i64,
    permission: &str,
    fcinfo: pg_sys::FunctionCallInfo,
) -> bool {
    visible(
        fcinfo,
        Question::Projects,
        permission,
        bigint_bytes(project_id),
    )
}

/// Whether the caller is a member of the organization.
#[pg_extern(stable, parallel_safe)]
fn organization_visible(organization_id: i64, fcinfo: pg_sys::FunctionCallInfo) -> bool {
    visible(
        fcinfo,
        Question::Organizations,
        "read",
        bigint_bytes(organization_id),
    )
}

/// Whether the caller's role in the organization grants `permission`.
#[pg_extern(stable, parallel_safe)]
fn organization_visible_for(
    organization_id: i64,
    permission: &str,
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
