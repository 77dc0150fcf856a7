//! A legacy `.xls` made safe to read: one reading of the container, one reading of its records,
//! and calamine fed only what that reading checked.
//!
//! The compound file is opened with the `cfb` crate (which checks its structure: sector chains
//! that loop or run off the file end the stream, entries the directory tree does not link to are
//! not streams). Its `Workbook` stream is walked record by record and written out again as a
//! *canonical* workbook: the globals calamine uses (BOF, code page, date system, number formats,
//! cell formats, the shared strings, one BOUNDSHEET per kept sheet, EOF), then each kept sheet with
//! only its value cells (numbers, texts, booleans and errors; a formula becomes the value it
//! shows). Formatting-only records (BLANK, MULBLANK), the declared DIMENSIONS, embedded substreams
//! (charts and objects inside a sheet), names, drawings and everything else the import never reads
//! are dropped. That canonical workbook, in a compound file written by `cfb`, is what calamine
//! reads: it can only see what was checked here, and what it materializes is exactly what was
//! counted.
//!
//! Design notes (decisions where the spec was silent):
//! - Limits are on content, never on declarations: the cells with values a sheet spans (calamine
//!   materializes each sheet as the rectangle from its first to its last value), the number of
//!   distinct texts, and the sheets that hold values. A declared range of 20,000 × 160 with
//!   60,000 formatted-but-empty cells around 5,000 × 32 values is 160,000 cells.
//! - Sheets: chart, macro and module sheets are dropped; a BOUNDSHEET whose position is already
//!   taken by another sheet, that points inside another sheet or at no BOF, or repeats a name is
//!   dropped (Excel never writes one); a sheet without a value is dropped.
//! - A formula's cached text result longer than one record (8,224 bytes) is cut there.

use super::issue::{Issue, IssueCode};
use super::limits::{OverLimit, MAX_COLUMNS};
use std::io::{Read, Seek, Write};

/// Bytes of an `.xls`'s workbook stream (calamine holds it twice while it reads).
pub const MAX_STREAM_BYTES: u64 = 16 << 20;
/// Cells the sheets with values span in all: 500,000 cells (20,000 rows by 25 columns) peak at
/// about 125 MB of the backend's memory while calamine reads them; a weld log of a few thousand
/// welds spans a tenth of it.
pub const MAX_CELLS: u64 = 500_000;
/// Distinct texts of a workbook (the same limit as an `.xlsx`'s).
pub const MAX_STRINGS: u64 = super::limits::MAX_SHARED_STRINGS;
/// Sheets that hold values.
pub const MAX_SHEETS: usize = 1_000;

const BOF: u16 = 0x0809;
const EOF: u16 = 0x000A;
const CONTINUE: u16 = 0x003C;
const BOUNDSHEET: u16 = 0x0085;
const SST: u16 = 0x00FC;
const FILEPASS: u16 = 0x002F;
const FORMULA: u16 = 0x0006;
const STRING: u16 = 0x0207;
const NUMBER: u16 = 0x0203;
const LABEL: u16 = 0x0204;
const BOOLERR: u16 = 0x0205;
const RK: u16 = 0x027E;
const MULRK: u16 = 0x00BD;
const LABELSST: u16 = 0x00FD;
const RSTRING: u16 = 0x00D6;
const MAX_RECORD: usize = 8_224;

/// The globals calamine reads: code page, date system, number formats, cell formats.
fn is_kept_global(kind: u16) -> bool {
    matches!(kind, 0x0042 | 0x0022 | 0x041E | 0x00E0)
}

/// The workbook as calamine will read it.
pub struct Canonical {
    /// A compound file holding only the canonical `Workbook` stream.
    pub file: Vec<u8>,
}

fn over(what: String) -> Issue {
    OverLimit(what).issue(0)
}

/// One record of a BIFF stream: its type, where it starts, and its data.
#[derive(Clone, Copy)]
struct Record<'a> {
    kind: u16,
    at: usize,
    data: &'a [u8],
}

/// The records of `stream` from `at`; `None` at the end, `Err` where a record runs past it.
fn record_at(stream: &[u8], at: usize) -> Option<Result<Record<'_>, Issue>> {
    let header = stream.get(at..at.checked_add(4)?)?;
    let kind = u16::from_le_bytes([header[0], header[1]]);
    let len = usize::from(u16::from_le_bytes([header[2], header[3]]));
    Some(
        stream
            .get(at + 4..at + 4 + len)
            .map(|data| Record { kind, at, data })
            .ok_or_else(|| Issue::damaged("a record runs past the end of the workbook stream")),
    )
}

fn u16_at(data: &[u8], at: usize) -> Option<u16> {
    data.get(at..at + 2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    data.get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn push_record(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
    let data = &data[..data.len().min(MAX_RECORD)];
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&(data.len() as u16).to_le_bytes());
    out.extend_from_slice(data);
}

/// Reads the `Workbook` stream the directory tree links to, at most `MAX_STREAM_BYTES`.
fn workbook_stream<R: Read + Seek>(reader: R) -> Result<Vec<u8>, Issue> {
    let mut file = cfb::CompoundFile::open(reader).map_err(Issue::damaged)?;
    let name = ["/Workbook", "/Book"]
        .into_iter()
        .find(|n| file.is_stream(n))
        .ok_or_else(|| {
            Issue::new(
                0,
                IssueCode::UnsupportedFile,
                "The file is an Office document but not an Excel workbook (it holds no workbook)",
            )
        })?;
    let stream = file.open_stream(name).map_err(Issue::damaged)?;
    if stream.len() > MAX_STREAM_BYTES {
        return Err(over(format!(
            "the .xls workbook holds {} MB (at most {} MB)",
            stream.len() >> 20,
            MAX_STREAM_BYTES >> 20
        )));
    }
    let mut bytes = Vec::with_capacity(stream.len() as usize);
    stream
        .take(MAX_STREAM_BYTES)
        .read_to_end(&mut bytes)
        .map_err(Issue::damaged)?;
    Ok(bytes)
}

/// A sheet the globals name: where its BOF is, its visibility byte and its BOUNDSHEET record.
struct SheetEntry<'a> {
    at: usize,
    record: &'a [u8],
}

/// The rectangle of a sheet's values: (first row, last row, first column, last column).
#[derive(Clone, Copy)]
struct Span(u32, u32, u32, u32);

impl Span {
    fn cells(self) -> u64 {
        u64::from(self.1 - self.0 + 1) * u64::from(self.3 - self.2 + 1)
    }
}

/// The value cells of one sheet, as canonical records, and the span they cover.
struct SheetCells {
    records: Vec<u8>,
    span: Option<Span>,
    /// Where the sheet's substream ends in the original stream.
    end: usize,
}

impl SheetCells {
    fn take(&mut self, row: u16, first: u16, last: u16) -> Result<(), Issue> {
        if usize::from(last) >= MAX_COLUMNS {
            return Err(over(format!(
                "a cell with a value lies beyond column {MAX_COLUMNS}"
            )));
        }
        let (row, first, last) = (u32::from(row), u32::from(first), u32::from(last));
        self.span = Some(match self.span {
            None => Span(row, row, first, last),
            Some(Span(r0, r1, c0, c1)) => {
                Span(r0.min(row), r1.max(row), c0.min(first), c1.max(last))
            }
        });
        Ok(())
    }
}

/// The canonical workbook of an `.xls` whose container `reader` holds, or the issue it is refused
/// with.
pub fn canonical<R: Read + Seek>(reader: R) -> Result<Canonical, Issue> {
    let stream = workbook_stream(reader)?;
    let first = match record_at(&stream, 0) {
        Some(Ok(r)) if r.kind == BOF => r,
        Some(Err(e)) => return Err(e),
        _ => {
            return Err(Issue::damaged(
                "the workbook stream does not start with a BOF record",
            ))
        }
    };
    if u16_at(first.data, 0).is_some_and(|v| v < 0x0500) {
        return Err(Issue::new(
            0,
            IssueCode::UnsupportedFile,
            "The workbook is from Excel 4.0 or earlier, which imports do not read",
        ));
    }
    let biff8 = u16_at(first.data, 0) == Some(0x0600);

    // The globals: kept records with their CONTINUEs, the shared strings, the sheets.
    let mut globals = Vec::new();
    push_record(&mut globals, BOF, first.data);
    let mut sheets = Vec::new();
    let mut strings: u64 = 0;
    let mut at = first.at + 4 + first.data.len();
    let mut keeping_continues = false;
    loop {
        let record = match record_at(&stream, at) {
            Some(r) => r?,
            None => return Err(Issue::damaged("the workbook's globals have no end")),
        };
        at = record.at + 4 + record.data.len();
        match record.kind {
            EOF => break,
            FILEPASS => {
                return Err(Issue::new(
                    0,
                    IssueCode::UnsupportedFile,
                    "The workbook is password-protected",
                ))
            }
            BOUNDSHEET => {
                keeping_continues = false;
                // Worksheets only (dt 0), at a position inside the stream.
                let (Some(position), Some(&kind)) = (u32_at(record.data, 0), record.data.get(5))
                else {
                    continue;
                };
                if kind == 0 && record.data.get(4).is_some_and(|s| s & 0x3F <= 2) {
                    sheets.push(SheetEntry {
                        at: position as usize,
                        record: record.data,
                    });
                }
            }
            SST => {
                strings = count_strings(&stream, record, biff8)?;
                if strings > MAX_STRINGS {
                    return Err(over(format!(
                        "it holds {strings} distinct texts (at most {MAX_STRINGS})"
                    )));
                }
                push_record(&mut globals, SST, record.data);
                keeping_continues = true;
            }
            CONTINUE if keeping_continues => push_record(&mut globals, CONTINUE, record.data),
            kind if is_kept_global(kind) => {
                push_record(&mut globals, kind, record.data);
                keeping_continues = true;
            }
            _ => keeping_continues = false,
        }
    }

    // Each sheet read once, in the order of where it starts (so every byte is walked once at most):
    // a BOUNDSHEET whose position another sheet already took or lies inside, or whose name
    // repeats one, is not a sheet of its own. Then back into the workbook's order.
    let mut names = std::collections::HashSet::new();
    sheets.retain(|s| names.insert(sheet_name_key(s.record.get(6..).unwrap_or_default())));
    let mut order: Vec<usize> = (0..sheets.len()).collect();
    order.sort_by_key(|&i| sheets[i].at);
    let mut walked_to = 0usize;
    let mut found: Vec<(usize, SheetCells)> = Vec::new();
    for index in order {
        let sheet = &sheets[index];
        if sheet.at < walked_to {
            continue;
        }
        let Some(cells) = sheet_cells(&stream, sheet.at, strings)? else {
            continue;
        };
        walked_to = cells.end;
        if cells.span.is_some() {
            found.push((index, cells));
            if found.len() > MAX_SHEETS {
                return Err(over(format!(
                    "more than {MAX_SHEETS} of its sheets hold values"
                )));
            }
        }
    }
    found.sort_by_key(|(index, _)| *index);
    let total: u64 = found
        .iter()
        .filter_map(|(_, cells)| cells.span.map(Span::cells))
        .sum();
    if total > MAX_CELLS {
        return Err(over(format!(
            "its sheets' values span {total} cells (rows × columns from each sheet's first value to its last; at most {MAX_CELLS})"
        )));
    }
    let kept: Vec<(&[u8], SheetCells)> = found
        .into_iter()
        .map(|(index, cells)| (sheets[index].record, cells))
        .collect();

    // Globals, then the sheets after them: each BOUNDSHEET names where its sheet now starts.
    let bound_bytes: usize = kept.iter().map(|(r, _)| 4 + r.len().min(MAX_RECORD)).sum();
    let mut position = globals.len() + bound_bytes + 4;
    let mut out = globals;
    for (record, cells) in &kept {
        let mut bound = record.to_vec();
        bound[..4].copy_from_slice(&(position as u32).to_le_bytes());
        push_record(&mut out, BOUNDSHEET, &bound);
        position += cells.records.len();
    }
    push_record(&mut out, EOF, &[]);
    for (_, cells) in kept {
        out.extend_from_slice(&cells.records);
    }
    Ok(Canonical {
        file: compound_file(&out)?,
    })
}

/// A sheet name compared as Excel does: case-insensitively.
fn sheet_name_key(name: &[u8]) -> Vec<u8> {
    name.to_ascii_lowercase()
}

/// The value cells of the worksheet whose BOF is at `at`, or `None` when no worksheet starts
/// there. `strings`: how many shared strings there are (a LABELSST beyond them is dropped).
fn sheet_cells(stream: &[u8], at: usize, strings: u64) -> Result<Option<SheetCells>, Issue> {
    let bof = match record_at(stream, at) {
        Some(Ok(r)) if r.kind == BOF => r,
        _ => return Ok(None),
    };
    let mut cells = SheetCells {
        records: Vec::new(),
        span: None,
        end: 0,
    };
    push_record(&mut cells.records, BOF, bof.data);
    let mut at = at + 4 + bof.data.len();
    let mut depth = 0usize;
    // The FORMULA whose text result the next STRING record holds: (row, column, format).
    let mut pending_text: Option<[u8; 6]> = None;
    // A sheet without its EOF: what was read is kept, as Excel's own repair would.
    while let Some(record) = record_at(stream, at) {
        let record = record?;
        at = record.at + 4 + record.data.len();
        let data = record.data;
        let pending = pending_text.take();
        if depth > 0 {
            match record.kind {
                BOF => depth += 1,
                EOF => depth -= 1,
                _ => {}
            }
            continue;
        }
        let position = |d: &[u8]| Some((u16_at(d, 0)?, u16_at(d, 2)?));
        match record.kind {
            BOF => depth = 1,
            EOF => break,
            NUMBER | RK | BOOLERR | LABEL | RSTRING => {
                let minimum = match record.kind {
                    NUMBER => 14,
                    RK => 10,
                    BOOLERR => 8,
                    _ => 9,
                };
                if data.len() >= minimum {
                    if let Some((row, col)) = position(data) {
                        if record.kind == BOOLERR || record.kind == NUMBER || record.kind == RK {
                            cells.take(row, col, col)?;
                            push_record(&mut cells.records, record.kind, data);
                        } else if label_fits(data) {
                            cells.take(row, col, col)?;
                            push_record(&mut cells.records, LABEL, data);
                        }
                    }
                }
            }
            LABELSST => {
                if let (Some((row, col)), Some(index)) = (position(data), u32_at(data, 6)) {
                    if u64::from(index) < strings && data.len() >= 10 {
                        cells.take(row, col, col)?;
                        push_record(&mut cells.records, LABELSST, &data[..10]);
                    }
                }
            }
            MULRK => {
                // Row, first column, 6 bytes per cell, last column: kept when they agree.
                if let Some((row, first)) = position(data) {
                    let n = data.len().saturating_sub(6) / 6;
                    let last = u16_at(data, data.len().saturating_sub(2));
                    if n > 0
                        && data.len() == 6 + 6 * n
                        && last.map(usize::from) == Some(usize::from(first) + n - 1)
                    {
                        cells.take(row, first, first + (n as u16 - 1))?;
                        push_record(&mut cells.records, MULRK, data);
                    }
                }
            }
            FORMULA if data.len() >= 20 => {
                let Some((row, col)) = position(data) else {
                    continue;
                };
                let head: [u8; 6] = data[..6].try_into().unwrap_or_default();
                let value = &data[6..14];
                if value[6..8] != [0xFF, 0xFF] {
                    // A number: the NUMBER record of the value it shows.
                    cells.take(row, col, col)?;
                    let mut number = head.to_vec();
                    number.extend_from_slice(value);
                    push_record(&mut cells.records, NUMBER, &number);
                } else {
                    match value[0] {
                        0 => pending_text = Some(head),
                        1 | 2 => {
                            cells.take(row, col, col)?;
                            let mut boolerr = head.to_vec();
                            boolerr.extend_from_slice(&[value[2], value[0] - 1]);
                            push_record(&mut cells.records, BOOLERR, &boolerr);
                        }
                        // An empty text: no value.
                        _ => {}
                    }
                }
            }
            STRING => {
                if let Some(head) = pending {
                    let mut label = head.to_vec();
                    label.extend_from_slice(data);
                    if label_fits(&label) {
                        cells.take(
                            u16::from_le_bytes([head[0], head[1]]),
                            u16::from_le_bytes([head[2], head[3]]),
                            u16::from_le_bytes([head[2], head[3]]),
                        )?;
                        push_record(&mut cells.records, LABEL, &label);
                    }
                }
            }
            // A shared, array or table formula's own record comes between a FORMULA and its
            // text result.
            0x04BC | 0x0221 | 0x0236 => pending_text = pending,
            _ => {}
        }
    }
    push_record(&mut cells.records, EOF, &[]);
    cells.end = at;
    Ok(Some(cells))
}

/// A LABEL's text (row, column, format, then a character count and its characters) is all
/// there, or cut at the end of the record with a whole number of characters: calamine reads it
/// either way without running past it.
fn label_fits(data: &[u8]) -> bool {
    data.len() >= 9
}

/// Walks the shared strings (an SST and its CONTINUE records) as calamine will read them and
/// counts them; a string that runs past the last CONTINUE is damage.
fn count_strings(stream: &[u8], sst: Record<'_>, biff8: bool) -> Result<u64, Issue> {
    if !biff8 {
        return Ok(0);
    }
    let mut parts: Vec<&[u8]> = vec![sst.data.get(8..).unwrap_or_default()];
    let mut at = sst.at + 4 + sst.data.len();
    while let Some(Ok(record)) = record_at(stream, at) {
        if record.kind != CONTINUE {
            break;
        }
        parts.push(record.data);
        at = record.at + 4 + record.data.len();
    }
    let mut reader = Continued {
        parts: &parts,
        part: 0,
        at: 0,
    };
    let mut count: u64 = 0;
    let broken = || Issue::damaged("its shared texts are cut short");
    while !reader.at_end() {
        let cch = usize::from(u16::from_le_bytes(
            reader
                .bytes(2)
                .ok_or_else(broken)?
                .try_into()
                .unwrap_or([0; 2]),
        ));
        let flags = reader.bytes(1).ok_or_else(broken)?[0];
        let runs = if flags & 0x08 != 0 {
            usize::from(u16::from_le_bytes(
                reader
                    .bytes(2)
                    .ok_or_else(broken)?
                    .try_into()
                    .unwrap_or([0; 2]),
            ))
        } else {
            0
        };
        let extended = if flags & 0x04 != 0 {
            u32::from_le_bytes(
                reader
                    .bytes(4)
                    .ok_or_else(broken)?
                    .try_into()
                    .unwrap_or([0; 4]),
            ) as usize
        } else {
            0
        };
        reader
            .characters(cch, flags & 0x01 != 0)
            .ok_or_else(broken)?;
        reader.skip(runs * 4).ok_or_else(broken)?;
        reader.skip(extended).ok_or_else(broken)?;
        count += 1;
        if count > MAX_STRINGS {
            break;
        }
    }
    Ok(count)
}

/// Bytes spread over a record and its CONTINUE records.
struct Continued<'a> {
    parts: &'a [&'a [u8]],
    part: usize,
    at: usize,
}

impl Continued<'_> {
    fn at_end(&mut self) -> bool {
        while self.part < self.parts.len() && self.at >= self.parts[self.part].len() {
            self.part += 1;
            self.at = 0;
        }
        self.part >= self.parts.len()
    }

    /// `n` bytes within the current part (a field never spans two parts).
    fn bytes(&mut self, n: usize) -> Option<&[u8]> {
        if self.at_end() {
            return None;
        }
        let part = self.parts[self.part];
        let bytes = part.get(self.at..self.at + n)?;
        self.at += n;
        Some(bytes)
    }

    /// `n` bytes that may run on into the next parts.
    fn skip(&mut self, mut n: usize) -> Option<()> {
        while n > 0 {
            if self.at_end() {
                return None;
            }
            let here = (self.parts[self.part].len() - self.at).min(n);
            self.at += here;
            n -= here;
        }
        Some(())
    }

    /// `n` characters of one or two bytes; where they run on into a CONTINUE, it starts with a
    /// byte saying which.
    fn characters(&mut self, mut n: usize, mut wide: bool) -> Option<()> {
        loop {
            let left = self.parts.get(self.part)?.len().saturating_sub(self.at);
            let width = if wide { 2 } else { 1 };
            let here = (left / width).min(n);
            self.at += here * width;
            n -= here;
            if n == 0 {
                return Some(());
            }
            self.part += 1;
            self.at = 0;
            wide = self.bytes(1)?[0] & 0x01 != 0;
        }
    }
}

/// A compound file (version 3, as Excel writes them) holding `stream` as its `Workbook`.
fn compound_file(stream: &[u8]) -> Result<Vec<u8>, Issue> {
    let internal = |e: std::io::Error| Issue::damaged(format!("it could not be rewritten: {e}"));
    let mut file =
        cfb::CompoundFile::create_with_version(cfb::Version::V3, std::io::Cursor::new(Vec::new()))
            .map_err(internal)?;
    file.create_stream("/Workbook")
        .and_then(|mut s| s.write_all(stream))
        .map_err(internal)?;
    file.flush().map_err(internal)?;
    Ok(file.into_inner().into_inner())
}
