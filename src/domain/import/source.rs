//! From a file's bytes to rows of cells: CSV (any delimiter Excel writes; UTF-8 with or without a
//! BOM, UTF-16 with a BOM, Windows-1252, or UTF-8 with stray Windows-1252 lines) through the `csv`
//! crate, `.xlsx` through calamine's streaming cell reader (over `limits::GuardedWorkbook`, which
//! checks each part the first time calamine reads it), legacy `.xls` (BIFF8, Excel 97–2003)
//! through calamine reading the canonical workbook `xls` rewrote it as. The header row is looked
//! for within the first 20 rows; in a workbook, visible sheets are tried before hidden ones and
//! the first that has one is read. The table is the header's contiguous columns: a second table
//! beside it, after an empty column, is not read. A units row right under the header and the
//! header printed again are not data. CSV and `.xlsx` are read a block at a time (`file`) and
//! rows stream to a callback, so memory does not grow with the number of rows; an `.xls` (at most
//! 65,536 rows) is read whole, held to `xls::MAX_CELLS`.

use super::cell::{self, Cell, DateOrder, DateSystem};
use super::columns::{Field, Mapping};
use super::file::{self, FileReader, FileSource, StrayLines};
use super::issue::{Issue, IssueCode};
use super::limits::{self, GuardedWorkbook};
use super::number::{self, DecimalMark};
use super::xls;
use super::Kind;
use calamine::{Data, DataRef, Reader, Xls, Xlsx};
use std::cell::RefCell;
use std::io::Read;
use std::ops::Range;
use std::rc::Rc;

/// The header row is looked for within this many rows.
pub const HEADER_SEARCH_ROWS: usize = 20;

/// Bytes of a file's start that decide its type.
const SNIFF_BYTES: usize = 8192;

/// Text of a CSV file's start in which the delimiter is chosen: more than the header search needs
/// in any real file.
const HEAD_TEXT_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum Format {
    Csv,
    Xlsx,
    Xls,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The signature of a compound file (the container of a legacy `.xls`, but also of `.doc`).
const COMPOUND_FILE: &[u8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";

/// The file type from its first bytes: a zip container is an `.xlsx`, a compound file an `.xls`;
/// text is CSV; anything else (NUL bytes in text without a UTF-16 BOM) is not importable.
pub fn sniff(bytes: &[u8]) -> Option<Format> {
    if bytes.starts_with(b"PK\x03\x04") {
        return Some(Format::Xlsx);
    }
    if bytes.starts_with(COMPOUND_FILE) {
        return Some(Format::Xls);
    }
    if encoding_rs::Encoding::for_bom(bytes).is_some() {
        return Some(Format::Csv);
    }
    let head = &bytes[..bytes.len().min(SNIFF_BYTES)];
    (!head.contains(&0)).then_some(Format::Csv)
}

/// The file type of a whole upload, or why it is refused, as (issue code, message). As `sniff`,
/// and a container must hold a workbook: a zip an `xl/workbook.xml`, a compound file a `Workbook`
/// stream. Anything else is named by its signature (PDF, PNG, JPEG, ODS, DOCX, XLSB, ZIP…); a
/// container that can't be opened is damaged or incomplete. Reads only the container's directory.
pub fn sniff_upload(bytes: &[u8]) -> Result<Format, (IssueCode, String)> {
    let named = |what: &str| {
        Err((
            IssueCode::UnsupportedFile,
            format!("The file is {what}, not a CSV or an Excel workbook"),
        ))
    };
    let damaged = |e: &dyn std::fmt::Display| {
        let issue = Issue::damaged(e);
        Err((issue.code, issue.message))
    };
    const SIGNATURES: &[(&[u8], &str)] = &[
        (b"%PDF", "a PDF document"),
        (b"\x89PNG\r\n\x1a\n", "a PNG picture"),
        (b"\xFF\xD8\xFF", "a JPEG picture"),
        (b"GIF8", "a GIF picture"),
        (b"Rar!", "a RAR archive"),
        (b"\x1F\x8B", "a gzip archive"),
        (b"{\\rtf", "an RTF document"),
    ];
    if let Some((_, what)) = SIGNATURES.iter().find(|(s, _)| bytes.starts_with(s)) {
        return named(what);
    }
    match sniff(bytes) {
        Some(Format::Xlsx) => {
            let archive = match zip::ZipArchive::new(std::io::Cursor::new(bytes)) {
                Ok(archive) => archive,
                Err(e) => return damaged(&e),
            };
            let has = |wanted: &str| {
                archive
                    .file_names()
                    .any(|n| n.is_ok_and(|n| n.eq_ignore_ascii_case(wanted)))
            };
            let has_under = |folder: &str| {
                archive
                    .file_names()
                    .any(|n| n.is_ok_and(|n| n.to_ascii_lowercase().starts_with(folder)))
            };
            if has("xl/workbook.xml") {
                Ok(Format::Xlsx)
            } else if has("xl/workbook.bin") {
                named("an Excel binary workbook (.xlsb)")
            } else if has("mimetype") && has("content.xml") {
                named("an OpenDocument file (.ods or .odt)")
            } else if has_under("word/") {
                named("a Word document (.docx)")
            } else if has_under("ppt/") {
                named("a PowerPoint presentation (.pptx)")
            } else {
                named("a ZIP archive that holds no workbook")
            }
        }
        Some(Format::Xls) => {
            let file = match cfb::CompoundFile::open(std::io::Cursor::new(bytes)) {
                Ok(file) => file,
                Err(e) => return damaged(&e),
            };
            if file.is_stream("/Workbook") || file.is_stream("/Book") {
                Ok(Format::Xls)
            } else if file.is_stream("/EncryptedPackage") {
                named("a password-protected workbook (remove the password in Excel first)")
            } else if file.is_stream("/WordDocument") {
                named("a Word document (.doc)")
            } else if file.is_stream("/PowerPoint Document") {
                named("a PowerPoint presentation (.ppt)")
            } else {
                named("an Office document that holds no workbook")
            }
        }
        Some(Format::Csv) => Ok(Format::Csv),
        None => named("a binary file"),
    }
}

/// What was found about the file before its rows: where the header is and what it maps to.
#[derive(Debug, Clone)]
pub struct Layout {
    pub format: Format,
    pub sheet: Option<String>,
    pub header_line: u32,
    pub header: Vec<String>,
    pub mapping: Mapping,
    /// The columns of the table (the header's contiguous columns): cells beyond are not read.
    pub table: Range<usize>,
    /// The decimal mark of numbers written as text, when the file decides it (see `number`).
    pub decimal: Option<DecimalMark>,
    /// The order of day and month in dates written as text, when the file's first rows show it.
    pub date_order: Option<DateOrder>,
    /// File-level warnings and notes (encoding, unmapped or repeated columns, no QTY column).
    pub notes: Vec<Issue>,
    /// Why this sheet of a workbook was read.
    pub sheet_reason: Option<String>,
    /// How the workbook counts serial dates.
    pub date_system: DateSystem,
}

/// A data row: its number as Excel shows it, and its cells by column.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub line: u32,
    pub cells: Vec<Cell>,
    /// In a UTF-8 file, the row's line (or one of its lines) was not UTF-8 and was read as
    /// Windows-1252.
    pub read_as_windows_1252: bool,
}

impl Row {
    fn new(line: u32, cells: Vec<Cell>) -> Row {
        Row {
            line,
            cells,
            read_as_windows_1252: false,
        }
    }
}

/// Reads the file and calls `on_row` for every row after the header (blank rows included, so
/// callers can count them out). A file that can't be read at all is an `Err` issue.
pub fn read(
    source: &mut dyn FileSource,
    kind: Kind,
    on_row: &mut dyn FnMut(&Layout, Row),
) -> Result<Layout, Issue> {
    let mut head = vec![0u8; SNIFF_BYTES];
    let n = source
        .read_at(0, &mut head)
        .map_err(|e| unreadable("file", &e))?;
    head.truncate(n);
    match sniff(&head) {
        Some(Format::Xlsx) => read_xlsx(source, kind, on_row),
        Some(Format::Xls) => read_xls(source, kind, on_row),
        Some(Format::Csv) => read_csv(source, &head, kind, on_row),
        // Never stored: an upload is sniffed first (`sniff_upload`).
        None => {
            let (code, message) = sniff_upload(&head).err().unwrap_or((
                IssueCode::UnsupportedFile,
                "The file is neither CSV text nor an Excel workbook".into(),
            ));
            Err(Issue::new(0, code, message))
        }
    }
}

fn unreadable(what: &str, e: &dyn std::fmt::Display) -> Issue {
    Issue::new(
        0,
        IssueCode::UnsupportedFile,
        format!("The {what} can't be read: {e}"),
    )
}

/// CSV records as rows numbered the way Excel numbers them: blank lines count, a quoted cell that
/// spans several lines does not.
struct CsvRows<R: Read> {
    records: csv::Reader<RecentBytes<R>>,
    record: csv::StringRecord,
    /// Line breaks inside the cells read so far (csv counts them as lines, Excel does not).
    embedded_newlines: u64,
    /// Where the lines read as Windows-1252 start in the text, to flag their rows.
    stray: StrayLines,
}

impl<R: Read> CsvRows<R> {
    fn new(text: R, delimiter: u8, stray: StrayLines) -> CsvRows<R> {
        let records = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(false)
            .flexible(true)
            .from_reader(RecentBytes::new(text, delimiter));
        CsvRows {
            records,
            record: csv::StringRecord::new(),
            embedded_newlines: 0,
            stray,
        }
    }
}

impl<R: Read> Iterator for CsvRows<R> {
    type Item = Result<Row, Issue>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.records.read_record(&mut self.record) {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                let over = match e.kind() {
                    csv::ErrorKind::Io(io) => limits::OverLimit::carried_by(io),
                    _ => None,
                };
                let line = u32::try_from(self.records.position().line()).unwrap_or(u32::MAX);
                return Some(Err(
                    over.map_or_else(|| unreadable("CSV", &e), |over| over.issue(line))
                ));
            }
        }
        // csv counts the blank lines it skipped before a record into the record's start, so the
        // line is counted back from where the record ended: minus the breaks inside its cells,
        // minus its own line break when reading it took the '\n' (a "\r\n" ends at the '\r').
        let end = self.records.position();
        let inside = self
            .record
            .iter()
            .map(|f| f.matches('\n').count() as u64)
            .sum::<u64>();
        let took_newline = end
            .byte()
            .checked_sub(1)
            .and_then(|b| self.records.get_ref().byte_at(b))
            == Some(b'\n');
        let line = end.line().saturating_sub(inside + u64::from(took_newline));
        let row = line.saturating_sub(self.embedded_newlines);
        self.embedded_newlines += inside;
        let cells = self.record.iter().map(Cell::from_text).collect();
        let mut row = Row::new(u32::try_from(row).unwrap_or(u32::MAX), cells);
        row.read_as_windows_1252 = self.stray.any_before(end.byte());
        Some(Ok(row))
    }
}

/// A reader that remembers the last bytes it passed on, by their offset in the stream: enough to
/// look behind the csv reader, whose buffer runs at most 8 KB ahead of the records it returns. It
/// also holds every record to the limits before csv buffers it.
struct RecentBytes<R> {
    inner: R,
    kept: Vec<u8>,
    kept_from: u64,
    guard: limits::RecordGuard,
}

const RECENT_BYTES: usize = 64 * 1024;

impl<R: Read> RecentBytes<R> {
    fn new(inner: R, delimiter: u8) -> RecentBytes<R> {
        RecentBytes {
            inner,
            kept: Vec::with_capacity(2 * RECENT_BYTES),
            kept_from: 0,
            guard: limits::RecordGuard::new(delimiter),
        }
    }

    fn byte_at(&self, offset: u64) -> Option<u8> {
        let index = usize::try_from(offset.checked_sub(self.kept_from)?).ok()?;
        self.kept.get(index).copied()
    }
}

impl<R: Read> Read for RecentBytes<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(out)?;
        self.guard.feed(&out[..n])?;
        self.kept.extend_from_slice(&out[..n]);
        if self.kept.len() > 2 * RECENT_BYTES {
            let dropped = self.kept.len() - RECENT_BYTES;
            self.kept.drain(..dropped);
            self.kept_from += dropped as u64;
        }
        Ok(n)
    }
}

/// `head`: the file's first bytes, as sniffed.
fn read_csv(
    source: &mut dyn FileSource,
    head: &[u8],
    kind: Kind,
    on_row: &mut dyn FnMut(&Layout, Row),
) -> Result<Layout, Issue> {
    let text = file::detect_encoding(source, head).map_err(|e| unreadable("CSV", &e))?;
    let (head, whole) = head_text(source, &text).map_err(|e| unreadable("CSV", &e))?;
    if whole && head.trim().is_empty() {
        return Err(Issue::new(0, IssueCode::EmptyFile, "The file is empty"));
    }
    // The delimiter whose reading gives the best header wins; ties go to the more common one.
    let mut delimiter = b',';
    let mut best_score = 0;
    for candidate in [b',', b';', b'\t', b'|'] {
        let rows: Vec<Row> = CsvRows::new(head.as_bytes(), candidate, StrayLines::none())
            .take(HEADER_SEARCH_ROWS)
            .filter_map(Result::ok)
            .collect();
        let score = find_header(kind, &rows).map_or_else(
            |best| best.map_or(0, |m| m.score(kind)),
            |(_, m)| m.score(kind),
        );
        if score > best_score {
            (delimiter, best_score) = (candidate, score);
        }
    }
    let head_rows: Vec<Row> = CsvRows::new(head.as_bytes(), delimiter, StrayLines::none())
        .filter_map(Result::ok)
        .collect();
    let mut shown = Shown::of(&head_rows);
    // Excel writes `;` where the comma is the decimal mark and `,` where the point is.
    shown.decimal = match delimiter {
        b';' => Some(DecimalMark::Comma),
        b',' => Some(DecimalMark::Point),
        _ => shown.decimal,
    };
    let stray = StrayLines::new();
    let rows = CsvRows::new(
        file::text_reader(source, &text, &stray),
        delimiter,
        stray.clone(),
    );
    let mut layout = scan(
        Format::Csv,
        None,
        DateSystem::Excel1900,
        kind,
        shown,
        rows,
        on_row,
    )?
    .map_err(|best| missing_columns(kind, best))?;
    if text.guessed_windows_1252 {
        layout.notes.push(Issue::new(
            0,
            IssueCode::DecodedWindows1252,
            "The file is not UTF-8; it was read as Windows-1252",
        ));
    }
    Ok(layout)
}

/// What the numbers and dates of a file's first rows show about how it writes them: a decimal
/// mark or an order of day and month, when every number or date that can be read only one way
/// agrees.
#[derive(Debug, Default, Clone, Copy)]
struct Shown {
    decimal: Option<DecimalMark>,
    date_order: Option<DateOrder>,
}

impl Shown {
    fn of(rows: &[Row]) -> Shown {
        let mut marks = Vec::new();
        let mut orders = Vec::new();
        for row in rows {
            for cell in &row.cells {
                if let Cell::Text(text) = cell {
                    marks.extend(number::decimal_mark_shown(text));
                    orders.extend(cell::date_order_shown(text));
                }
            }
        }
        fn agreed<T: PartialEq + Copy>(seen: &[T]) -> Option<T> {
            let first = *seen.first()?;
            seen.iter().all(|s| *s == first).then_some(first)
        }
        Shown {
            decimal: agreed(&marks),
            date_order: agreed(&orders),
        }
    }
}

/// The first `HEAD_TEXT_BYTES` of the file's text, and whether that is the whole file.
fn head_text(
    source: &mut dyn FileSource,
    text: &file::TextEncoding,
) -> std::io::Result<(String, bool)> {
    let mut reader = file::text_reader(source, text, &StrayLines::none());
    let mut head = Vec::new();
    let mut buf = [0u8; 8192];
    while head.len() < HEAD_TEXT_BYTES {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok((String::from_utf8_lossy(&head).into_owned(), true));
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok((String::from_utf8_lossy(&head).into_owned(), false))
}

/// Cells of one worksheet grouped into rows, in sheet order.
struct XlsxRows<'a, 'b> {
    cells: calamine::XlsxCellReader<'a, GuardedWorkbook<'b>>,
    pending: Option<(u32, u32, Cell)>,
    done: bool,
    /// Cells in the last row read.
    width: usize,
    /// Why the guard refused a read, when it did.
    guard: Rc<RefCell<limits::GuardState>>,
}

impl Iterator for XlsxRows<'_, '_> {
    type Item = Result<Row, Issue>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut row: Option<(u32, Vec<Cell>)> = None;
        let finish = |(r, cells): (u32, Vec<Cell>)| Row::new(r.saturating_add(1), cells);
        loop {
            let next = match self.pending.take() {
                Some(cell) => Some(cell),
                None if self.done => None,
                None => match self.cells.next_cell() {
                    Ok(Some(c)) => {
                        let (r, col) = c.get_position();
                        if col as usize >= limits::MAX_COLUMNS {
                            self.done = true;
                            let over = limits::OverLimit(format!(
                                "a cell lies beyond column {}",
                                limits::MAX_COLUMNS
                            ));
                            return Some(Err(over.issue(r.saturating_add(1))));
                        }
                        Some((r, col, cell_of(c.get_value())))
                    }
                    Ok(None) => {
                        self.done = true;
                        None
                    }
                    Err(e) => {
                        self.done = true;
                        let line = row.as_ref().map_or(0, |r| r.0.saturating_add(1));
                        return Some(Err(workbook_error(&self.guard, &e, line)));
                    }
                },
            };
            match (next, &mut row) {
                (None, _) => return row.map(|r| Ok(finish(r))),
                (Some((r, col, cell)), None) => {
                    // As wide as the row before: rows of a table mostly are.
                    let cells = Vec::with_capacity(self.width);
                    row = Some((r, place(cells, col, cell)))
                }
                (Some((r, col, cell)), Some((current, cells))) if r == *current => {
                    *cells = place(std::mem::take(cells), col, cell)
                }
                (Some(next), Some((_, cells))) => {
                    self.width = cells.len();
                    self.pending = Some(next);
                    return row.map(|r| Ok(finish(r)));
                }
            }
        }
    }
}

/// The issue a workbook that calamine could not read ends in: the guard's refusal when it
/// refused a read, else damage.
fn workbook_error(
    guard: &RefCell<limits::GuardState>,
    error: &dyn std::fmt::Display,
    line: u32,
) -> Issue {
    match guard.borrow().refused.clone() {
        Some(why) => limits::OverLimit(why).issue(line),
        None => Issue {
            line,
            ..Issue::damaged(error)
        },
    }
}

fn place(mut cells: Vec<Cell>, col: u32, cell: Cell) -> Vec<Cell> {
    let col = col as usize;
    if cells.len() <= col {
        cells.resize(col + 1, Cell::Empty);
    }
    cells[col] = cell;
    cells
}

fn cell_of(value: &DataRef<'_>) -> Cell {
    match value {
        DataRef::Empty => Cell::Empty,
        DataRef::Int(i) => Cell::Number(*i as f64),
        DataRef::Float(f) => Cell::Number(*f),
        DataRef::Bool(b) => Cell::Bool(*b),
        DataRef::String(s) => Cell::from_text(s),
        DataRef::SharedString(s) => Cell::from_text(s),
        DataRef::DateTime(dt) if dt.is_datetime() => {
            let (y, m, d, ..) = dt.to_ymd_hms_milli();
            chrono::NaiveDate::from_ymd_opt(i32::from(y), u32::from(m), u32::from(d))
                .map_or(Cell::Number(dt.as_f64()), Cell::Date)
        }
        DataRef::DateTime(dt) => Cell::Number(dt.as_f64()),
        DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => Cell::from_text(s),
        DataRef::Error(e) => Cell::Error(e.to_string()),
    }
}

/// A workbook's worksheets in the order their header is looked for: visible sheets first, in the
/// workbook's order, then hidden ones (an old revision kept hidden beside the current one has
/// the same header). Chart and macro sheets hold no cells.
fn sheet_order(sheets: &[calamine::Sheet]) -> Vec<(String, bool)> {
    let worksheets = sheets
        .iter()
        .filter(|s| s.typ == calamine::SheetType::WorkSheet);
    let visible = |s: &&calamine::Sheet| s.visible == calamine::SheetVisible::Visible;
    worksheets
        .clone()
        .filter(visible)
        .chain(worksheets.filter(|s| !visible(s)))
        .map(|s| (s.name.clone(), visible(&s)))
        .collect()
}

/// Which sheet of a workbook was read, why, and which others have the same header.
struct SheetChoice {
    best: Option<Mapping>,
    tried: usize,
}

impl SheetChoice {
    fn new() -> SheetChoice {
        SheetChoice {
            best: None,
            tried: 0,
        }
    }

    /// A sheet without a header: remembers its best partial mapping.
    fn no_header(&mut self, kind: Kind, partial: Option<Mapping>) {
        self.tried += 1;
        if partial.as_ref().map_or(0, |m| m.score(kind))
            > self.best.as_ref().map_or(0, |m| m.score(kind))
        {
            self.best = partial;
        }
    }

    /// The layout of the sheet read, with why it was chosen and the sheets `same` whose header is
    /// the same (name, visible).
    fn chosen(&self, mut layout: Layout, visible: bool, same: &[(String, bool)]) -> Layout {
        layout.sheet_reason = Some(
            match (visible, self.tried) {
                (true, 0) => "the first visible sheet, and it has a header row",
                (true, _) => {
                    "the first visible sheet with a header row (the sheets before it have none)"
                }
                (false, _) => "a hidden sheet: no visible sheet has a header row",
            }
            .to_string(),
        );
        if !same.is_empty() {
            let names: Vec<String> = same
                .iter()
                .map(|(name, visible)| {
                    if *visible {
                        format!("{name:?}")
                    } else {
                        format!("{name:?} (hidden)")
                    }
                })
                .collect();
            layout.notes.push(Issue::new(
                layout.header_line,
                IssueCode::OtherSheetsSameHeader,
                format!(
                    "Sheet {:?} was read; {} with the same header {} not read",
                    layout.sheet.clone().unwrap_or_default(),
                    names.join(", "),
                    if same.len() == 1 { "was" } else { "were" }
                ),
            ));
        }
        layout
    }
}

/// True when the first rows of a sheet (`head`) hold the header `layout` was read with.
fn same_header(kind: Kind, layout: &Layout, head: &[Row]) -> bool {
    let texts =
        |cells: &[Cell]| -> Vec<String> { cells.iter().map(|c| c.text().to_uppercase()).collect() };
    let ours: Vec<String> = layout
        .header
        .iter()
        .map(|h| h.trim().to_uppercase())
        .collect();
    find_header(kind, head).is_ok_and(|(index, _)| {
        let theirs = texts(&head[index].cells);
        theirs.get(layout.table.clone()) == ours.get(layout.table.clone())
    })
}

/// A workbook whose sheets' rows can be read one sheet at a time.
trait Sheets {
    /// The rows of sheet `name`.
    fn rows<'s>(
        &'s mut self,
        name: &str,
    ) -> Result<Box<dyn Iterator<Item = Result<Row, Issue>> + 's>, Issue>;
}

/// An `.xlsx` read through the guard.
struct XlsxSheets<'b> {
    book: Xlsx<GuardedWorkbook<'b>>,
    guard: Rc<RefCell<limits::GuardState>>,
}

impl Sheets for XlsxSheets<'_> {
    fn rows<'s>(
        &'s mut self,
        name: &str,
    ) -> Result<Box<dyn Iterator<Item = Result<Row, Issue>> + 's>, Issue> {
        let cells = self
            .book
            .worksheet_cells_reader(name)
            .map_err(|e| workbook_error(&self.guard, &e, 0))?;
        Ok(Box::new(XlsxRows {
            cells,
            pending: None,
            done: false,
            width: 0,
            guard: self.guard.clone(),
        }))
    }
}

/// A canonical `.xls`, read whole by calamine; reading stops once the file's source says it has
/// stopped (a cancel or timeout).
struct XlsSheets<'a> {
    book: Xls<std::io::Cursor<Vec<u8>>>,
    source: &'a dyn FileSource,
}

impl Sheets for XlsSheets<'_> {
    fn rows<'s>(
        &'s mut self,
        name: &str,
    ) -> Result<Box<dyn Iterator<Item = Result<Row, Issue>> + 's>, Issue> {
        let range = self
            .book
            .worksheet_range(name)
            .map_err(|e| Issue::damaged(&e))?;
        let (first_row, first_col) = range.start().unwrap_or((0, 0));
        let (height, width) = range.get_size();
        let source = self.source;
        let mut next = 0usize;
        Ok(Box::new(std::iter::from_fn(move || {
            if next >= height {
                return None;
            }
            if source.stopped() {
                return Some(Err(Issue::new(
                    0,
                    IssueCode::UnsupportedFile,
                    "Reading the file was stopped",
                )));
            }
            let mut row = vec![Cell::Empty; first_col as usize];
            row.extend(
                (0..width).map(|col| range.get((next, col)).map_or(Cell::Empty, cell_of_data)),
            );
            let line = first_row.saturating_add(next as u32).saturating_add(1);
            next += 1;
            Some(Ok(Row::new(line, row)))
        })))
    }
}

/// Reads the first of `sheets` (in `sheet_order`) that has a header, then looks at the first rows
/// of the sheets after it for the same header.
fn read_sheets(
    format: Format,
    kind: Kind,
    book: &mut dyn Sheets,
    sheets: &[(String, bool)],
    date_system: DateSystem,
    on_row: &mut dyn FnMut(&Layout, Row),
) -> Result<Layout, Issue> {
    let mut choice = SheetChoice::new();
    for (at, (sheet, visible)) in sheets.iter().enumerate() {
        let rows = book.rows(sheet)?;
        match scan(
            format,
            Some(sheet.clone()),
            date_system,
            kind,
            Shown::default(),
            rows,
            on_row,
        )? {
            Ok(layout) => {
                let mut same = Vec::new();
                for (other, other_visible) in &sheets[at + 1..] {
                    let head: Vec<Row> = book
                        .rows(other)?
                        .take_while(|r| {
                            r.as_ref()
                                .map_or(true, |r| r.line as usize <= HEADER_SEARCH_ROWS)
                        })
                        .collect::<Result<_, _>>()?;
                    if same_header(kind, &layout, &head) {
                        same.push((other.clone(), *other_visible));
                    }
                }
                return Ok(choice.chosen(layout, *visible, &same));
            }
            Err(partial) => choice.no_header(kind, partial),
        }
    }
    Err(missing_columns(kind, choice.best))
}

fn read_xlsx(
    source: &mut dyn FileSource,
    kind: Kind,
    on_row: &mut dyn FnMut(&Layout, Row),
) -> Result<Layout, Issue> {
    let guard = limits::GuardState::shared();
    let reader = GuardedWorkbook::new(source, guard.clone()).map_err(|e| Issue::damaged(&e))?;
    let book: Xlsx<_> = Xlsx::new(reader).map_err(|e| workbook_error(&guard, &e, 0))?;
    guard.borrow_mut().phase = limits::Phase::Sheets;
    let date_system = date_system_of(book.has_1904_epoch());
    let sheets = sheet_order(book.sheets_metadata());
    let mut book = XlsxSheets { book, guard };
    read_sheets(Format::Xlsx, kind, &mut book, &sheets, date_system, on_row)
}

/// A legacy `.xls`: made canonical first (`xls`), so calamine reads only what was checked.
fn read_xls(
    source: &mut dyn FileSource,
    kind: Kind,
    on_row: &mut dyn FnMut(&Layout, Row),
) -> Result<Layout, Issue> {
    let canonical = xls::canonical(FileReader::new(source))?;
    let book: Xls<_> =
        Xls::new(std::io::Cursor::new(canonical.file)).map_err(|e| Issue::damaged(&e))?;
    let date_system = date_system_of(book.has_1904_epoch());
    let sheets = sheet_order(book.sheets_metadata());
    let mut book = XlsSheets { book, source };
    read_sheets(Format::Xls, kind, &mut book, &sheets, date_system, on_row)
}

fn date_system_of(is_1904: bool) -> DateSystem {
    if is_1904 {
        DateSystem::Excel1904
    } else {
        DateSystem::Excel1900
    }
}

/// A cell of an `.xls` sheet, as `cell_of` reads an `.xlsx` one.
fn cell_of_data(value: &Data) -> Cell {
    match value {
        Data::Empty => Cell::Empty,
        Data::Int(i) => Cell::Number(*i as f64),
        Data::Float(f) => Cell::Number(*f),
        Data::Bool(b) => Cell::Bool(*b),
        Data::String(s) => Cell::from_text(s),
        Data::DateTime(dt) if dt.is_datetime() => {
            let (y, m, d, ..) = dt.to_ymd_hms_milli();
            chrono::NaiveDate::from_ymd_opt(i32::from(y), u32::from(m), u32::from(d))
                .map_or(Cell::Number(dt.as_f64()), Cell::Date)
        }
        Data::DateTime(dt) => Cell::Number(dt.as_f64()),
        Data::DateTimeIso(s) | Data::DurationIso(s) => Cell::from_text(s),
        Data::Error(e) => Cell::Error(e.to_string()),
    }
}

/// The first row of `head` that maps every required field; else the best partial mapping.
fn find_header(kind: Kind, head: &[Row]) -> Result<(usize, Mapping), Option<Mapping>> {
    let mut best: Option<Mapping> = None;
    for (index, row) in head.iter().enumerate() {
        let texts: Vec<String> = row.cells.iter().map(Cell::text).collect();
        let mapping = Mapping::of(kind, &texts);
        if mapping.missing_required(kind).is_empty() {
            return Ok((index, mapping));
        }
        if mapping.score(kind) > best.as_ref().map_or(0, |m| m.score(kind))
            && !mapping.fields.is_empty()
        {
            best = Some(mapping);
        }
    }
    Err(best)
}

/// Finds the header in the first rows, then streams the rest to `on_row`. The inner `Err` is
/// "no header here" with the best partial mapping seen.
fn scan(
    format: Format,
    sheet: Option<String>,
    date_system: DateSystem,
    kind: Kind,
    shown: Shown,
    mut rows: impl Iterator<Item = Result<Row, Issue>>,
    on_row: &mut dyn FnMut(&Layout, Row),
) -> Result<Result<Layout, Option<Mapping>>, Issue> {
    let mut head = Vec::new();
    // The search window is counted in Excel rows: rows 1..=20.
    let mut after_head = None;
    for row in rows.by_ref() {
        let row = row?;
        if row.line as usize > HEADER_SEARCH_ROWS {
            after_head = Some(row);
            break;
        }
        head.push(row);
    }
    let (index, mapping) = match find_header(kind, &head) {
        Ok(found) => found,
        Err(best) => return Ok(Err(best)),
    };
    let mut layout = layout_of(
        format,
        sheet,
        kind,
        shown,
        &head[..index],
        &head[index],
        mapping,
    );
    layout.date_system = date_system;
    let restore = is_report(&layout);
    let mut skipped = HeaderRows {
        kind: Some(kind),
        ..HeaderRows::default()
    };
    let rest = head
        .drain(index + 1..)
        .map(Ok)
        .chain(after_head.map(Ok))
        .chain(rows);
    for row in rest {
        let row = row?;
        if !skipped.skips(&layout, &row) {
            on_row(&layout, restored(restore, row));
        }
    }
    layout.notes.extend(skipped.note());
    layout.notes.sort_by_key(|n| n.severity);
    Ok(Ok(layout))
}

/// Rows under the header that are not data: the header printed again (a report printed page by
/// page repeats it) and a row of units right under it (`in`, `ft`, `(EA)`).
#[derive(Default)]
struct HeaderRows {
    kind: Option<Kind>,
    repeated: Vec<u32>,
    units: Option<u32>,
    /// A second header row: the first row under the header naming the same fields again in other
    /// words (a Primavera P6 export heads its columns with field codes, then with labels).
    labels: Option<u32>,
    /// A row with something in it has been seen under the header.
    past_first: bool,
}

impl HeaderRows {
    /// True when `row` is not data (and is counted). Cheap for a data row: only a row whose first
    /// header cell repeats (or the first row under the header) is looked at whole.
    fn skips(&mut self, layout: &Layout, row: &Row) -> bool {
        let first = !self.past_first;
        let texts = || -> Vec<String> {
            (layout.table.clone())
                .map(|i| {
                    row.cells
                        .get(i)
                        .map(|c| c.text().to_uppercase())
                        .unwrap_or_default()
                })
                .collect()
        };
        let lead = layout.table.start;
        let repeats_lead = match (row.cells.get(lead), layout.header.get(lead)) {
            (Some(Cell::Text(text)), Some(header)) => {
                text.trim().eq_ignore_ascii_case(header.trim())
            }
            _ => false,
        };
        if !first && !repeats_lead {
            return false;
        }
        let texts = texts();
        let filled: Vec<&String> = texts.iter().filter(|t| !t.is_empty()).collect();
        if filled.is_empty() {
            return false;
        }
        self.past_first = true;
        if repeats_lead && filled.len() >= 2 {
            let header: Vec<String> = (layout.table.clone())
                .map(|i| {
                    layout
                        .header
                        .get(i)
                        .map(|h| h.trim().to_uppercase())
                        .unwrap_or_default()
                })
                .collect();
            if texts == header {
                self.repeated.push(row.line);
                return true;
            }
        }
        if first && filled.iter().all(|t| is_unit(t)) {
            self.units = Some(row.line);
            return true;
        }
        if let (true, Some(kind)) = (first, self.kind) {
            let mut shown = vec![String::new(); layout.table.start];
            shown.extend(texts.iter().cloned());
            let again = Mapping::of(kind, &shown);
            if !layout.mapping.fields.is_empty() && again.missing_required(kind).is_empty() {
                let mut ours = layout.mapping.fields.clone();
                let mut theirs = again.fields;
                ours.sort_by_key(|f| f.1);
                theirs.sort_by_key(|f| f.1);
                if ours == theirs {
                    self.labels = Some(row.line);
                    return true;
                }
            }
        }
        false
    }

    /// One info issue naming the rows skipped, if any.
    fn note(&self) -> Option<Issue> {
        let mut parts = Vec::new();
        if let Some(line) = self.units {
            parts.push(format!("row {line} holds units"));
        }
        if let Some(line) = self.labels {
            parts.push(format!("row {line} names the columns again"));
        }
        if let Some(&first) = self.repeated.first() {
            let shown: Vec<String> = self.repeated.iter().take(5).map(u32::to_string).collect();
            let more = self.repeated.len().saturating_sub(5);
            parts.push(format!(
                "{} the header again (row{} {}{})",
                if self.repeated.len() == 1 {
                    "one row repeats"
                } else {
                    "rows repeat"
                },
                if self.repeated.len() == 1 { "" } else { "s" },
                shown.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            ));
            let _ = first;
        }
        let line = self
            .units
            .into_iter()
            .chain(self.labels)
            .chain(self.repeated.first().copied())
            .min()?;
        Some(Issue::new(
            line,
            IssueCode::HeaderRowsSkipped,
            format!("Not imported, as they are not data: {}", parts.join("; ")),
        ))
    }
}

/// A unit as takeoffs write them under a header: `in`, `ft`, `EA`, `(in)`, `[ft]`, `%`.
fn is_unit(text: &str) -> bool {
    let t = text.trim();
    let bare = t
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .or_else(|| t.strip_prefix('[').and_then(|t| t.strip_suffix(']')))
        .unwrap_or(t)
        .trim()
        .to_ascii_lowercase();
    const UNITS: &[&str] = &[
        "in", "in.", "inch", "inches", "\"", "ft", "ft.", "feet", "'", "lf", "ea", "each", "pc",
        "pcs", "mm", "m", "%", "lb", "lbs", "kg", "nps", "dn", "sch", "date", "mh", "hrs", "-",
    ];
    UNITS.contains(&bare.as_str())
}

/// A remediation report read back in: its cells were neutralized against formulas.
fn is_report(layout: &Layout) -> bool {
    [Field::RemediationNotes, Field::RemediationRef]
        .iter()
        .any(|f| layout.mapping.index(*f).is_some())
}

/// The row with its cells as they were before the report neutralized them (when `restore`).
fn restored(restore: bool, mut row: Row) -> Row {
    if restore {
        for cell in &mut row.cells {
            if let Cell::Text(text) = cell {
                if let Some(original) = cell::restore_formula(text) {
                    *text = original.to_string();
                }
            }
        }
    }
    row
}

fn layout_of(
    format: Format,
    sheet: Option<String>,
    kind: Kind,
    shown: Shown,
    above_header: &[Row],
    header_row: &Row,
    mapping: Mapping,
) -> Layout {
    let header: Vec<String> = header_row.cells.iter().map(Cell::text).collect();
    let line = header_row.line;
    let (mapping, table, beside) = mapping.within_table(&header, kind);
    let mut notes = Vec::new();
    if header_row.read_as_windows_1252 || above_header.iter().any(|r| r.read_as_windows_1252) {
        notes.push(Issue::new(
            line,
            IssueCode::LineNotUtf8,
            "A line at or above the header is not UTF-8; it was read as Windows-1252",
        ));
    }
    if !beside.is_empty() {
        notes.push(Issue::new(
            line,
            IssueCode::ColumnsBesideTable,
            format!(
                "Columns beside the table, after an empty column, are not read: {}",
                beside.join(", ")
            ),
        ));
    }
    if kind == Kind::Takeoff && mapping.index(Field::Qty).is_none() {
        notes.push(Issue::new(
            line,
            IssueCode::QuantityColumnMissing,
            "There is no QTY column: every row counts as 1",
        ));
    }
    for (_, text) in &mapping.duplicates {
        notes.push(
            Issue::new(
                line,
                IssueCode::DuplicateColumn,
                format!("Column {text:?} repeats a column already read"),
            )
            .at(text, text),
        );
    }
    for (_, text) in &mapping.extra {
        notes.push(
            Issue::new(
                line,
                IssueCode::UnmappedColumn,
                format!("Column {text:?} is kept as an attribute"),
            )
            .at(text, text),
        );
    }
    Layout {
        format,
        sheet,
        header_line: line,
        header,
        mapping,
        table,
        decimal: shown.decimal,
        date_order: shown.date_order,
        notes,
        sheet_reason: None,
        date_system: DateSystem::Excel1900,
    }
}

fn missing_columns(kind: Kind, best: Option<Mapping>) -> Issue {
    match best {
        None => Issue::new(
            0,
            IssueCode::HeaderNotFound,
            format!(
                "No {} header row was found within the first {HEADER_SEARCH_ROWS} rows",
                kind.as_str()
            ),
        ),
        Some(mapping) => {
            let missing: Vec<String> = mapping
                .missing_required(kind)
                .iter()
                .map(|f| format!("{} (or {})", f.label(), f.names()[1..].join(", ")))
                .collect();
            Issue::new(
                0,
                IssueCode::MissingRequiredColumn,
                format!("Required columns are missing: {}", missing.join("; ")),
            )
        }
    }
}
