//! From a file's bytes to rows of cells: CSV (any delimiter Excel writes, UTF-8 with or without a
//! BOM, UTF-16 with a BOM, or Windows-1252) through the `csv` crate, `.xlsx` through calamine's
//! streaming cell reader. The header row is looked for within the first 20 rows; in a workbook,
//! the first sheet that has one is read. Rows stream to a callback, so memory does not grow with
//! the number of rows.

use super::cell::Cell;
use super::columns::{Field, Mapping};
use super::issue::{Issue, IssueCode};
use super::Kind;
use calamine::{DataRef, Reader, Xlsx};
use std::borrow::Cow;
use std::io::Cursor;

/// The header row is looked for within this many rows.
pub const HEADER_SEARCH_ROWS: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Xlsx,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
        }
    }
}

/// The file type from its content: a zip container is a workbook; text is CSV; anything else
/// (NUL bytes in text without a UTF-16 BOM) is not importable.
pub fn sniff(bytes: &[u8]) -> Option<Format> {
    if bytes.starts_with(b"PK\x03\x04") {
        return Some(Format::Xlsx);
    }
    if encoding_rs::Encoding::for_bom(bytes).is_some() {
        return Some(Format::Csv);
    }
    let head = &bytes[..bytes.len().min(8192)];
    (!head.contains(&0)).then_some(Format::Csv)
}

/// What was found about the file before its rows: where the header is and what it maps to.
#[derive(Debug, Clone)]
pub struct Layout {
    pub format: Format,
    pub sheet: Option<String>,
    pub header_line: u32,
    pub header: Vec<String>,
    pub mapping: Mapping,
    /// File-level warnings and notes (encoding, unmapped or repeated columns, no QTY column).
    pub notes: Vec<Issue>,
}

/// A data row: its number as Excel shows it, and its cells by column.
pub type Row = (u32, Vec<Cell>);

/// Reads the file and calls `on_row` for every row after the header (blank rows included, so
/// callers can count them out). A file that can't be read at all is an `Err` issue.
pub fn read(bytes: &[u8], kind: Kind, on_row: &mut dyn FnMut(&Layout, Row)) -> Result<Layout, Issue> {
    match sniff(bytes) {
        Some(Format::Xlsx) => read_xlsx(bytes, kind, on_row),
        Some(Format::Csv) => read_csv(bytes, kind, on_row),
        None => Err(Issue::new(0, IssueCode::UnsupportedFile, "The file is neither CSV text nor an .xlsx workbook")),
    }
}

/// Text from CSV bytes: a BOM names the encoding; otherwise UTF-8 if it is valid, else Windows-1252.
fn decode(bytes: &[u8]) -> (Cow<'_, str>, Option<Issue>) {
    if let Some((encoding, bom_length)) = encoding_rs::Encoding::for_bom(bytes) {
        let (text, _) = encoding.decode_without_bom_handling(&bytes[bom_length..]);
        return (text, None);
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => (Cow::Borrowed(text), None),
        Err(_) => {
            let (text, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(bytes);
            let note = Issue::new(0, IssueCode::DecodedWindows1252, "The file is not UTF-8; it was read as Windows-1252");
            (text, Some(note))
        }
    }
}

/// CSV records as rows numbered the way Excel numbers them: blank lines count, a quoted cell that
/// spans several lines does not.
struct CsvRows<'a> {
    text: &'a str,
    records: csv::StringRecordsIntoIter<&'a [u8]>,
    /// Line breaks inside the cells read so far (csv counts them as lines, Excel does not).
    embedded_newlines: u64,
}

impl<'a> CsvRows<'a> {
    fn new(text: &'a str, delimiter: u8) -> CsvRows<'a> {
        let reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        CsvRows { text, records: reader.into_records(), embedded_newlines: 0 }
    }
}

impl Iterator for CsvRows<'_> {
    type Item = Result<Row, Issue>;

    fn next(&mut self) -> Option<Self::Item> {
        let record = match self.records.next()? {
            Ok(record) => record,
            Err(e) => return Some(Err(Issue::new(0, IssueCode::UnsupportedFile, format!("The CSV can't be read: {e}")))),
        };
        // A record's position is where its reading started, before the blank lines it skipped.
        let (line, byte) = record.position().map_or((1, 0), |p| (p.line(), p.byte() as usize));
        let blank_lines = self.text.get(byte..).map_or(0, |rest| {
            rest.chars().take_while(|c| matches!(c, '\n' | '\r')).filter(|c| *c == '\n').count() as u64
        });
        let row = (line + blank_lines).saturating_sub(self.embedded_newlines);
        self.embedded_newlines += record.iter().map(|f| f.matches('\n').count() as u64).sum::<u64>();
        let cells = record.iter().map(Cell::from_text).collect();
        Some(Ok((u32::try_from(row).unwrap_or(u32::MAX), cells)))
    }
}

fn read_csv(bytes: &[u8], kind: Kind, on_row: &mut dyn FnMut(&Layout, Row)) -> Result<Layout, Issue> {
    let (text, encoding_note) = decode(bytes);
    if text.trim().is_empty() {
        return Err(Issue::new(0, IssueCode::EmptyFile, "The file is empty"));
    }
    // The delimiter whose reading gives the best header wins; ties go to the more common one.
    let mut delimiter = b',';
    let mut best_score = 0;
    for candidate in [b',', b';', b'\t', b'|'] {
        let head: Vec<Row> = CsvRows::new(&text, candidate).take(HEADER_SEARCH_ROWS).filter_map(Result::ok).collect();
        let score = find_header(kind, &head).map_or_else(|best| best.map_or(0, |m| m.score(kind)), |(_, m)| m.score(kind));
        if score > best_score {
            (delimiter, best_score) = (candidate, score);
        }
    }
    let mut layout = scan(Format::Csv, None, kind, CsvRows::new(&text, delimiter), on_row)?
        .map_err(|best| missing_columns(kind, best))?;
    layout.notes.extend(encoding_note);
    Ok(layout)
}

/// Cells of one worksheet grouped into rows, in sheet order.
struct XlsxRows<'a, 'b> {
    cells: calamine::XlsxCellReader<'a, Cursor<&'b [u8]>>,
    pending: Option<(u32, u32, Cell)>,
    done: bool,
}

impl Iterator for XlsxRows<'_, '_> {
    type Item = Result<Row, Issue>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut row: Option<(u32, Vec<Cell>)> = None;
        loop {
            let next = match self.pending.take() {
                Some(cell) => Some(cell),
                None if self.done => None,
                None => match self.cells.next_cell() {
                    Ok(Some(c)) => {
                        let (r, col) = c.get_position();
                        Some((r, col, cell_of(c.get_value())))
                    }
                    Ok(None) => {
                        self.done = true;
                        None
                    }
                    Err(e) => {
                        self.done = true;
                        let line = row.as_ref().map_or(0, |r| r.0 + 1);
                        return Some(Err(Issue::new(line, IssueCode::UnsupportedFile, format!("The worksheet can't be read: {e}"))));
                    }
                },
            };
            match (next, &mut row) {
                (None, _) => return row.map(|(r, cells)| Ok((r + 1, cells))),
                (Some((r, col, cell)), None) => row = Some((r, place(Vec::new(), col, cell))),
                (Some((r, col, cell)), Some((current, cells))) if r == *current => {
                    *cells = place(std::mem::take(cells), col, cell)
                }
                (Some(next), Some(_)) => {
                    self.pending = Some(next);
                    return row.map(|(r, cells)| Ok((r + 1, cells)));
                }
            }
        }
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

fn read_xlsx(bytes: &[u8], kind: Kind, on_row: &mut dyn FnMut(&Layout, Row)) -> Result<Layout, Issue> {
    let unreadable = |e: &dyn std::fmt::Display| {
        Issue::new(0, IssueCode::UnsupportedFile, format!("The workbook can't be read: {e}"))
    };
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).map_err(|e| unreadable(&e))?;
    let mut best: Option<Mapping> = None;
    for sheet in book.sheet_names() {
        let cells = book.worksheet_cells_reader(&sheet).map_err(|e| unreadable(&e))?;
        let rows = XlsxRows { cells, pending: None, done: false };
        match scan(Format::Xlsx, Some(sheet.clone()), kind, rows, on_row)? {
            Ok(layout) => return Ok(layout),
            Err(partial) => {
                if partial.as_ref().map_or(0, |m| m.score(kind)) > best.as_ref().map_or(0, |m| m.score(kind)) {
                    best = partial;
                }
            }
        }
    }
    Err(missing_columns(kind, best))
}

/// The first row of `head` that maps every required field; else the best partial mapping.
fn find_header(kind: Kind, head: &[Row]) -> Result<(usize, Mapping), Option<Mapping>> {
    let mut best: Option<Mapping> = None;
    for (index, (_, cells)) in head.iter().enumerate() {
        let texts: Vec<String> = cells.iter().map(Cell::text).collect();
        let mapping = Mapping::of(kind, &texts);
        if mapping.missing_required(kind).is_empty() {
            return Ok((index, mapping));
        }
        if mapping.score(kind) > best.as_ref().map_or(0, |m| m.score(kind)) && !mapping.fields.is_empty() {
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
    kind: Kind,
    mut rows: impl Iterator<Item = Result<Row, Issue>>,
    on_row: &mut dyn FnMut(&Layout, Row),
) -> Result<Result<Layout, Option<Mapping>>, Issue> {
    let mut head = Vec::new();
    for row in rows.by_ref() {
        let row = row?;
        // The search window is counted in Excel rows: rows 1..=20.
        if row.0 as usize > HEADER_SEARCH_ROWS {
            let (index, mapping) = match find_header(kind, &head) {
                Ok(found) => found,
                Err(best) => return Ok(Err(best)),
            };
            let mut layout = layout_of(format, sheet, kind, &head[index], mapping);
            for early in head.drain(index + 1..) {
                on_row(&layout, early);
            }
            on_row(&layout, row);
            for row in rows.by_ref() {
                on_row(&layout, row?);
            }
            layout.notes.sort_by_key(|n| n.severity);
            return Ok(Ok(layout));
        }
        head.push(row);
    }
    match find_header(kind, &head) {
        Ok((index, mapping)) => {
            let layout = layout_of(format, sheet, kind, &head[index], mapping);
            for row in head.drain(index + 1..) {
                on_row(&layout, row);
            }
            Ok(Ok(layout))
        }
        Err(best) => Ok(Err(best)),
    }
}

fn layout_of(format: Format, sheet: Option<String>, kind: Kind, header_row: &Row, mapping: Mapping) -> Layout {
    let header: Vec<String> = header_row.1.iter().map(Cell::text).collect();
    let line = header_row.0;
    let mut notes = Vec::new();
    if kind == Kind::Takeoff && mapping.index(Field::Qty).is_none() {
        notes.push(Issue::new(line, IssueCode::QuantityColumnMissing, "There is no QTY column: every row counts as 1"));
    }
    for (_, text) in &mapping.duplicates {
        notes.push(Issue::new(line, IssueCode::DuplicateColumn, format!("Column {text:?} repeats a column already read")).at(text, text));
    }
    for (_, text) in &mapping.extra {
        notes.push(Issue::new(line, IssueCode::UnmappedColumn, format!("Column {text:?} is kept as an attribute")).at(text, text));
    }
    Layout { format, sheet, header_line: line, header, mapping, notes }
}

fn missing_columns(kind: Kind, best: Option<Mapping>) -> Issue {
    match best {
        None => Issue::new(
            0,
            IssueCode::HeaderNotFound,
            format!("No {} header row was found within the first {HEADER_SEARCH_ROWS} rows", kind.as_str()),
        ),
        Some(mapping) => {
            let missing: Vec<String> = mapping
                .missing_required(kind)
                .iter()
                .map(|f| format!("{} (or {})", f.label(), f.names()[1..].join(", ")))
                .collect();
            Issue::new(0, IssueCode::MissingRequiredColumn, format!("Required columns are missing: {}", missing.join("; ")))
        }
    }
}
