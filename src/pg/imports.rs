//! Import glue: reads an uploaded file with `crate::domain::import` and stages its rows in
//! `pipetrak.import_rows` through SPI, a batch at a time. Reading runs on a thread of its own
//! (pure Rust, no Postgres call): it asks this backend's thread for the file a slice at a time
//! and hands it batches of rows, which the backend inserts while the reader goes on. Neither the
//! whole file nor all its rows are ever in memory. Everything set-based after that (comparison
//! with the project, commit) is SQL. Original cells are not staged: the remediation report reads
//! the few rows it needs again from the file.
//!
//! Design notes (decisions where the spec was silent):
//! - Imports — staging speed and memory. The file is read and validated on a thread of its own
//!   (pure Rust: no Postgres call, all signals blocked so cancel/terminate reach the backend's
//!   thread) while the backend inserts the previous batch; a bounded channel (one batch) keeps
//!   memory flat. That thread never holds the file: it asks the backend's thread for 512 KB slices
//!   (`substring` of the stored file, kept uncompressed — `storage external` — so Postgres fetches
//!   only that slice's TOAST chunks) and asks for the next slice ahead, which the backend serves
//!   between two batches. It owns every byte it reads (a terminated backend frees Postgres memory
//!   on its way out without unwinding). CSV is decoded to UTF-8 as it streams (`encoding_rs`'s
//!   streaming decoder; a first pass decides UTF-8 or Windows-1252), and row numbers are counted
//!   back from where csv ends each record. `lock_import` returns the job without its file, which
//!   would otherwise be copied into every caller's memory. The insert unnests its column arrays in
//!   the select list (one ProjectSet) rather than in `FROM`, which materializes each array first.
//!   `import_rows` has no foreign key to its job (its per-row check cost more than the row): only
//!   `import_validate` writes rows, for a job it holds locked, and a row trigger deletes a deleted
//!   job's rows. `analyze` of the staged rows samples 3,000 rows (statistics target 10: the
//!   columns are few-valued or unique), so its memory is the same for any file. The summary counts
//!   drawings over the staged rows (one hash aggregate); the reader keeps only the area, system,
//!   test package and stencil names, which are few per project.

use crate::domain::component_type::Identity;
use crate::domain::import::cell::DateSystem;
use crate::domain::import::columns::Field;
use crate::domain::import::file::FileSource;
use crate::domain::import::issue::Issue;
use crate::domain::import::report::{original_cells, remediation_csv, ReportRow};
use crate::domain::import::validate::{self, ImportRow};
use crate::domain::import::{IssueCode, Kind};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::JsonB;
use pgrx::PgMemoryContexts;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;

/// Files up to this size are fetched whole before reading (one request instead of one per 512 KB
/// block and per seek); larger ones stream in slices, so memory stays bounded for any upload.
const WHOLE_FILE_BYTES: u64 = 8 << 20;

/// Rows sent to the database per insert.
const STAGE_BATCH: usize = 5_000;

const STAGE_INSERT: &str = include_str!("../../sql/queries/stage_insert.sql");
/// Column-wise buffers for one batch of staged rows.
#[derive(Default)]
struct Batch {
    line: Vec<i32>,
    chunk: Vec<i32>,
    status: Vec<&'static str>,
    drawing_no: Vec<String>,
    drawing_key: Vec<String>,
    component_type: Vec<Option<&'static str>>,
    /// The row's type is counted in feet (its rows add up to one pipe's footage).
    by_footage: Vec<bool>,
    tag: Vec<String>,
    size: Vec<String>,
    quantity: Vec<f64>,
    seq_from: Vec<i32>,
    seq_to: Vec<i32>,
    area: Vec<Option<String>>,
    system: Vec<Option<String>>,
    test_package: Vec<Option<String>>,
    description: Vec<Option<String>>,
    spec: Vec<Option<String>>,
    attributes: Vec<String>,
    weld_type: Vec<Option<String>>,
    weld_size: Vec<Option<String>>,
    schedule: Vec<Option<String>>,
    base_metal: Vec<Option<String>>,
    xray_percent: Vec<Option<i32>>,
    pwht_required: Vec<Option<bool>>,
    nde_types: Vec<String>,
    stencil: Vec<Option<String>>,
    date_welded: Vec<Option<String>>,
    nde_result: Vec<Option<String>>,
    issues: Vec<String>,
    maybe_repeated: Vec<bool>,
    cells_hash: Vec<i64>,
}

impl Batch {
    fn push(&mut self, row: ImportRow) {
        let weld = row.weld.unwrap_or_default();
        self.line.push(row.line as i32);
        self.chunk.push(row.chunk as i32);
        self.status.push(row.status.as_str());
        self.drawing_no.push(row.drawing_no);
        self.drawing_key.push(row.drawing_key);
        self.component_type
            .push(row.component_type.map(|t| t.as_str()));
        self.by_footage.push(
            row.component_type
                .is_some_and(|t| t.identity() == Identity::LinearAggregate),
        );
        self.tag.push(row.tag);
        self.size.push(row.size);
        self.quantity.push(row.quantity);
        self.seq_from.push(row.seq_from as i32);
        self.seq_to.push(row.seq_to as i32);
        self.area.push(row.area);
        self.system.push(row.system);
        self.test_package.push(row.test_package);
        self.description.push(row.description);
        self.spec.push(row.spec);
        self.attributes
            .push(serde_json::Value::Object(row.attributes).to_string());
        self.weld_type.push(weld.weld_type);
        self.weld_size.push(weld.weld_size);
        self.schedule.push(weld.schedule);
        self.base_metal.push(weld.base_metal);
        self.xray_percent.push(weld.xray_percent);
        self.pwht_required.push(weld.pwht_required);
        self.nde_types.push(weld.nde_types.join(","));
        self.stencil.push(weld.stencil);
        self.date_welded
            .push(weld.date_welded.map(|d| d.format("%Y-%m-%d").to_string()));
        self.nde_result.push(weld.nde_result);
        self.issues
            .push(serde_json::to_string(&row.issues).unwrap_or_else(|_| "[]".into()));
        self.maybe_repeated.push(row.maybe_repeated);
        self.cells_hash.push(row.cells_hash);
    }

    fn flush(self, import_id: i64, insert: &str) {
        if self.line.is_empty() {
            return;
        }
        let b = self;
        let args: Vec<DatumWithOid> = vec![
            import_id.into(),
            b.line.into(),
            b.chunk.into(),
            b.status.into(),
            b.drawing_no.into(),
            b.drawing_key.into(),
            b.component_type.into(),
            b.tag.into(),
            b.size.into(),
            b.quantity.into(),
            b.seq_from.into(),
            b.seq_to.into(),
            b.area.into(),
            b.system.into(),
            b.test_package.into(),
            b.description.into(),
            b.spec.into(),
            b.attributes.into(),
            b.weld_type.into(),
            b.weld_size.into(),
            b.schedule.into(),
            b.base_metal.into(),
            b.xray_percent.into(),
            b.pwht_required.into(),
            b.nde_types.into(),
            b.stencil.into(),
            b.date_welded.into(),
            b.nde_result.into(),
            b.issues.into(),
            b.maybe_repeated.into(),
            b.cells_hash.into(),
            b.by_footage.into(),
        ];
        // A failure here is an internal error (the rows were built to fit the table), not user input.
        if let Err(e) = Spi::run_with_args(insert, &args) {
            pgrx::error!("pipetrak: staging import rows failed: {e}");
        }
    }
}

/// The staging insert for this database's schema: rows carry their job's project where
/// `import_rows` has the column (a database not yet upgraded to 0.3.0 has not).
fn stage_insert(project: i64) -> String {
    let has_project = Spi::get_one::<bool>(
        "select exists (select from pg_catalog.pg_attribute
                        where attrelid = 'pipetrak.import_rows'::regclass and attname = 'project_id' and not attisdropped)",
    );
    let (column, value) = match has_project {
        Ok(Some(true)) => (", project_id", format!(", {project}::bigint")),
        _ => ("", String::new()),
    };
    STAGE_INSERT
        .replace("{project}", column)
        .replace("{project_value}", &value)
}

/// Sets its flag when dropped.
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// What the reading thread asks of the backend's thread.
enum Request {
    /// `len` bytes of the file from `offset`.
    Slice { offset: u64, len: usize },
    /// Rows to stage.
    Rows(Box<Batch>),
}

/// The uploaded file as the reading thread sees it: slices it asks the backend's thread for. The
/// thread owns every byte it reads; it never touches memory Postgres owns, which a terminated
/// backend frees on its way out without unwinding this call.
struct UploadedFile<'a> {
    size: u64,
    requests: std::sync::mpsc::SyncSender<Request>,
    slices: std::sync::mpsc::Receiver<Vec<u8>>,
    /// The slice asked for ahead, (offset, len), whose answer is on its way.
    ahead: Option<(u64, usize)>,
    /// Set when the backend's side has gone (an error, cancel or timeout unwinding it).
    gone: &'a AtomicBool,
    /// A small file, fetched whole before reading starts: served without asking (a workbook's
    /// reader seeks between its parts, and each slice asked for waits for a batch to be written).
    whole: Option<Vec<u8>>,
}

impl UploadedFile<'_> {
    fn ask(&mut self, offset: u64, len: usize) -> std::io::Result<()> {
        self.requests
            .send(Request::Slice { offset, len })
            .map_err(|_| stopped())
    }

    fn answer(&mut self) -> std::io::Result<Vec<u8>> {
        self.slices.recv().map_err(|_| stopped())
    }
}

fn stopped() -> std::io::Error {
    std::io::Error::other("the import stopped")
}

impl FileSource for UploadedFile<'_> {
    fn size(&self) -> u64 {
        self.size
    }

    fn stopped(&self) -> bool {
        self.gone.load(Ordering::Relaxed)
    }

    /// Answers from the slice asked for ahead when it is the one wanted, and asks for the next
    /// one at once: the backend serves it between two batches of rows, so the reader rarely waits
    /// for a batch to be written before it can read on.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(whole) = &self.whole {
            return whole.as_slice().read_at(offset, buf);
        }
        let slice = match self.ahead.take() {
            Some(ahead) if ahead == (offset, buf.len()) => self.answer()?,
            Some(_) => {
                self.answer()?;
                self.ask(offset, buf.len())?;
                self.answer()?
            }
            None => {
                self.ask(offset, buf.len())?;
                self.answer()?
            }
        };
        let n = slice.len().min(buf.len());
        buf[..n].copy_from_slice(&slice[..n]);
        let next = offset + n as u64;
        if n == buf.len() && next < self.size {
            self.ask(next, buf.len())?;
            self.ahead = Some((next, buf.len()));
        }
        Ok(n)
    }
}

/// `len` bytes from `offset` of the job's file (job `import_id` of project `project`: on Citus,
/// its shard). The file is stored uncompressed (storage external), so Postgres fetches just the
/// TOAST chunks of the slice.
fn file_slice(import_id: i64, project: i64, offset: u64, len: usize) -> Vec<u8> {
    let query = "select substring(content from $2::integer for $3) from pipetrak.import_jobs
                 where id = $1 and project_id = $4";
    let args = [
        import_id.into(),
        (offset as i64 + 1).into(),
        (len.min(i32::MAX as usize) as i32).into(),
        project.into(),
    ];
    match in_own_context("pipetrak import slice", || {
        Spi::get_one_with_args::<Vec<u8>>(query, &args)
    }) {
        Ok(slice) => slice.unwrap_or_default(),
        // The job is locked by the caller: failing to read it is an internal error.
        Err(e) => pgrx::error!("pipetrak: reading import {import_id} failed: {e}"),
    }
}

/// Runs `f` in a memory context of its own, freed afterwards: what one batch or one slice
/// allocates would otherwise live until the end of the call, and memory would grow with the file.
fn in_own_context<T>(name: &str, f: impl FnOnce() -> T) -> T {
    let mut context = PgMemoryContexts::new(name);
    // SAFETY: `f` returns only Rust-owned values; nothing allocated in the context outlives this
    // call, and the context is dropped (its memory freed) right after.
    unsafe { context.switch_to(|_| f()) }
}

/// Reads an uploaded file and stages its validated rows for import `import_id` of project
/// `project` (every read and write by it: on Citus, the project's shard). Returns what was
/// found about the file: format, sheet, header, file-level issues, the row counts, what the valid
/// rows name (`found`: components, reference names, stencils), and how many rows the reader
/// flagged as maybe repeating an earlier one (`maybe_repeated`, for the rules across rows).
#[pg_extern(volatile)]
pub fn stage_import(import_id: i64, project: i64, kind: &str, today: pgrx::datum::Date) -> JsonB {
    let Some(kind) = Kind::parse(kind) else {
        return JsonB(
            json!({"file_issues": [Issue::new(0, IssueCode::UnsupportedFile, format!("unknown import kind {kind:?}"))]}),
        );
    };
    let today = chrono::NaiveDate::from_ymd_opt(
        today.year(),
        u32::from(today.month()),
        u32::from(today.day()),
    )
    .unwrap_or(chrono::NaiveDate::MAX);
    let len = Spi::get_one_with_args::<i64>(
        "select length(content)::bigint from pipetrak.import_jobs where id = $1 and project_id = $2",
        &[import_id.into(), project.into()],
    );
    let Ok(Some(len)) = len else {
        pgrx::error!("pipetrak: import {import_id} has no file");
    };
    let insert = stage_insert(project);
    let gone = AtomicBool::new(false);
    let outcome = std::thread::scope(|scope| {
        // Dropped when this closure ends, normally or unwinding: the reader then stops at its
        // next read instead of unpacking on while the scope waits for it.
        let _gone_on_exit = SetOnDrop(&gone);
        // One request waiting and one batch being filled: memory stays flat in the number of
        // rows. The channels belong to this closure, so an error here (cancel, timeout) drops
        // them while unwinding and the reader, waiting on one, stops before the scope joins it.
        let (requests, received) = std::sync::mpsc::sync_channel::<Request>(1);
        let (slices, slice_received) = std::sync::mpsc::sync_channel::<Vec<u8>>(1);
        let rows = requests.clone();
        let mut file = UploadedFile {
            size: len as u64,
            requests,
            slices: slice_received,
            ahead: None,
            gone: &gone,
            whole: (len as u64 <= WHOLE_FILE_BYTES).then(|| {
                in_own_context("pipetrak import file", || {
                    file_slice(import_id, project, 0, len as usize)
                })
            }),
        };
        let reader = scope.spawn(move || {
            block_signals();
            let mut batch = Batch::default();
            let mut receiving = true;
            // A panic anywhere in reading (a bug, or a file no limit foresaw) ends this thread
            // with a file issue, never with an abort of the backend.
            let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                validate::validate_source(&mut file, kind, today, &mut |row| {
                    if !receiving {
                        return;
                    }
                    batch.push(row);
                    if batch.line.len() >= STAGE_BATCH {
                        // An error while staging ends the receiving side; the rest is not kept.
                        receiving = rows
                            .send(Request::Rows(Box::new(std::mem::take(&mut batch))))
                            .is_ok();
                    }
                })
            }));
            let outcome = read.unwrap_or_else(|_| {
                validate::FileOutcome::unreadable("the importer could not read it")
            });
            if receiving {
                let _ = rows.send(Request::Rows(Box::new(batch)));
            }
            outcome
        });
        // Waits for the reader a little at a time, answering cancel and statement_timeout
        // between waits even while the reader sends nothing for a while.
        loop {
            match received.recv_timeout(std::time::Duration::from_millis(20)) {
                // A reader that has finished no longer wants the slice it asked for ahead.
                Ok(Request::Slice { offset, len }) => {
                    let _ = slices.send(file_slice(import_id, project, offset, len));
                }
                Ok(Request::Rows(batch)) => {
                    in_own_context("pipetrak import batch", || batch.flush(import_id, &insert))
                }
                Err(RecvTimeoutError::Timeout) => {
                    pgrx::check_for_interrupts!();
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        reader.join()
    });
    // The reader catches its own panics; a join error would mean it could not even do that.
    let outcome = outcome
        .unwrap_or_else(|_| validate::FileOutcome::unreadable("the importer could not read it"));
    let counts = &outcome.counts;
    let counts = json!({
        "rows_read": counts.rows_read, "valid": counts.valid, "with_errors": counts.invalid, "skipped": counts.skipped,
        "errors": counts.errors, "warnings": counts.warnings, "infos": counts.infos,
    });
    let found = &outcome.found;
    let found = json!({
        "components": found.components, "areas": found.areas,
        "systems": found.systems, "test_packages": found.test_packages, "stencils": found.stencils,
        "charged": found.charged.iter().map(|((group_by, group), c)| json!({
            "group_by": group_by, "group": group, "rows": c.rows, "hundredths": c.hundredths,
            "first": c.first.map(|d| d.to_string()), "last": c.last.map(|d| d.to_string()),
            "weeks": c.weeks.iter().map(|(sunday, rows)| (sunday.to_string(), json!(rows))).collect::<serde_json::Map<_, _>>(),
        })).collect::<Vec<_>>(),
    });
    JsonB(match outcome.layout {
        Ok(layout) => json!({
            "format": layout.format.as_str(), "sheet": layout.sheet, "sheet_reason": layout.sheet_reason,
            "date_system": match layout.date_system { DateSystem::Excel1900 => "1900", DateSystem::Excel1904 => "1904" },
            "header_line": layout.header_line,
            "header": layout.header, "file_issues": layout.notes, "rows": counts, "found": found,
            "maybe_repeated": outcome.counts.maybe_repeated,
            // Rows carry a man-hour budget only when the file has that column: SQL moves
            // budgets out of the attributes only then, instead of looking at every row.
            "budget_column": layout.mapping.index(Field::BudgetMh).is_some(),
        }),
        Err(issue) => json!({"file_issues": [issue], "rows": counts}),
    })
}

/// Signals sent to this backend (cancel, terminate) must reach the thread that runs Postgres, not
/// the reading thread.
fn block_signals() {
    // SAFETY: plain libc calls on a signal set owned by this stack frame; they affect only the
    // calling thread's mask.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
    }
}

/// The file type of an upload: 'csv', 'xlsx' or 'xls', or null when it is none of them (a zip or
/// compound file that holds no workbook, like an .ods, .docx or .doc, is none).
#[pg_extern(immutable, parallel_safe)]
pub fn import_sniff(content: &[u8]) -> Option<&'static str> {
    crate::domain::import::source::sniff_upload(content)
        .ok()
        .map(|f| f.as_str())
}

/// Why an upload is refused, when it is: the error key (`unsupported_file`, `damaged_file`) and
/// a message naming what the file is (a PDF, a PNG, a Word document, a damaged workbook, …).
#[pg_extern(immutable, parallel_safe)]
pub fn import_refusal(
    content: &[u8],
) -> TableIterator<'static, (name!(code, &'static str), name!(message, String))> {
    let refusal = crate::domain::import::source::sniff_upload(content).err();
    TableIterator::new(refusal.map(|(code, message)| (code.as_str(), message)))
}

/// A file read on the backend's own thread, which answers cancel and statement_timeout between
/// two reads (the report reads the whole file again).
struct Interruptible<'a>(&'a [u8]);

impl FileSource for Interruptible<'_> {
    fn size(&self) -> u64 {
        self.0.size()
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read_at(offset, buf)
    }

    fn stopped(&self) -> bool {
        pgrx::check_for_interrupts!();
        false
    }
}

/// The original cells of rows `lines` of an uploaded file, for the remediation CSV.
#[pg_extern(immutable, parallel_safe)]
pub fn import_file_cells(
    content: &[u8],
    kind: &str,
    lines: Vec<Option<i32>>,
) -> TableIterator<'static, (name!(line, i32), name!(cells, Vec<String>))> {
    let wanted = lines
        .into_iter()
        .flatten()
        .filter_map(|l| u32::try_from(l).ok())
        .collect();
    let found = match Kind::parse(kind) {
        Some(kind) => original_cells(&mut Interruptible(content), kind, &wanted),
        None => Vec::new(),
    };
    TableIterator::new(found.into_iter().map(|(line, cells)| (line as i32, cells)))
}

/// The remediation CSV: `header`, then for each row its `cells` (a JSON array of strings), its
/// row in the original file, the reference to that row (`<import id>:<row>`) and its `notes`.
#[pg_extern(immutable, parallel_safe)]
pub fn render_report_csv(
    header: Vec<Option<String>>,
    cells: Vec<Option<JsonB>>,
    rows: Vec<Option<i32>>,
    references: Vec<Option<String>>,
    notes: Vec<Option<String>>,
) -> Option<String> {
    let header: Vec<String> = header.into_iter().map(Option::unwrap_or_default).collect();
    let rows: Vec<ReportRow> = cells
        .into_iter()
        .zip(rows)
        .zip(references)
        .zip(notes)
        .map(|(((cells, row), reference), notes)| ReportRow {
            cells: cells
                .and_then(|c| serde_json::from_value(c.0).ok())
                .unwrap_or_default(),
            row: row.and_then(|r| u32::try_from(r).ok()).unwrap_or_default(),
            reference: reference.unwrap_or_default(),
            notes: notes.unwrap_or_default(),
        })
        .collect();
    let bytes = remediation_csv(&header, &rows).ok()?;
    String::from_utf8(bytes).ok()
}

/// The severity of an import issue code (null for an unknown code). Immutable, so SQL that builds
/// an issue with a constant code pays for it once, when planning.
#[pg_extern(immutable, parallel_safe)]
pub fn import_issue_severity(code: &str) -> Option<&'static str> {
    IssueCode::parse(code).map(|c| c.severity().as_str())
}

/// The hint of an import issue code (null for an unknown code).
#[pg_extern(immutable, parallel_safe)]
pub fn import_issue_hint(code: &str) -> Option<&'static str> {
    IssueCode::parse(code).map(IssueCode::hint)
}

/// The catalog of import issue codes (for the README and clients): code, severity, hint.
#[pg_extern(immutable, parallel_safe)]
pub fn import_issue_codes() -> TableIterator<
    'static,
    (
        name!(code, &'static str),
        name!(severity, &'static str),
        name!(hint, &'static str),
    ),
> {
    TableIterator::new(
        IssueCode::ALL
            .iter()
            .map(|c| (c.as_str(), c.severity().as_str(), c.hint())),
    )
}
