//! What an import reads at most, and the checks that hold a file to it before anything sizes an
//! allocation from the file. A count, size or position declared inside a file is never trusted: a
//! backend that aborts on a failed allocation takes the whole server down with it, so every bound
//! here is checked on the bytes as they stream, before csv or calamine sees them.

use super::{Issue, IssueCode};
use std::io::{Read, Seek};

/// Columns of a row (a takeoff has a few dozen; Excel itself stops at 16,384).
pub const MAX_COLUMNS: usize = 1_024;
/// Bytes of one CSV record.
pub const MAX_ROW_BYTES: usize = 1 << 20;
/// Bytes of one run of XML text or one XML tag (an Excel cell holds at most 32,767 characters).
pub const MAX_XML_RUN_BYTES: usize = 1 << 20;
/// Distinct texts of a workbook, all of which calamine keeps in memory.
pub const MAX_SHARED_STRINGS: u64 = 1_000_000;
/// Unpacked bytes of a workbook's shared-strings part (held in memory too).
pub const MAX_SHARED_STRINGS_BYTES: u64 = 64 << 20;
/// Unpacked bytes of all the parts of a workbook.
pub const MAX_UNPACKED_BYTES: u64 = 1 << 30;
/// How many times its packed size a part may unpack to, once it is larger than `RATIO_FREE_BYTES`.
pub const MAX_UNPACK_RATIO: u64 = 100;
const RATIO_FREE_BYTES: u64 = 16 << 20;

/// A file beyond the limits above: the error csv or the zip reader passes on from a guard.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OverLimit(pub String);

impl OverLimit {
    pub fn issue(&self, line: u32) -> Issue {
        Issue::new(
            line,
            IssueCode::FileOverLimits,
            format!("The file goes beyond what an import reads: {}", self.0),
        )
    }

    /// The `OverLimit` an I/O error carries, if it carries one.
    pub fn carried_by(error: &std::io::Error) -> Option<&OverLimit> {
        error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<OverLimit>())
    }

    fn into_io(self) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidData, self)
    }
}

/// Follows CSV bytes as csv will split them (a quote toggles quoting, so `""` inside a quoted cell
/// toggles twice) and refuses a record of more than `MAX_COLUMNS` fields or `MAX_ROW_BYTES` bytes.
pub struct RecordGuard {
    delimiter: u8,
    quoted: bool,
    fields: usize,
    bytes: usize,
}

impl RecordGuard {
    pub fn new(delimiter: u8) -> RecordGuard {
        RecordGuard {
            delimiter,
            quoted: false,
            fields: 1,
            bytes: 0,
        }
    }

    pub fn feed(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        for &b in bytes {
            if b == b'"' {
                self.quoted = !self.quoted;
            } else if !self.quoted && (b == b'\n' || b == b'\r') {
                self.fields = 1;
                self.bytes = 0;
                continue;
            } else if !self.quoted && b == self.delimiter {
                self.fields += 1;
                if self.fields > MAX_COLUMNS {
                    return Err(
                        OverLimit(format!("a row has more than {MAX_COLUMNS} columns")).into_io(),
                    );
                }
            }
            self.bytes += 1;
            if self.bytes > MAX_ROW_BYTES {
                return Err(
                    OverLimit(format!("a row is longer than {} MB", MAX_ROW_BYTES >> 20)).into_io(),
                );
            }
        }
        Ok(())
    }
}

/// Unpacks every part of a workbook once, a block at a time, and refuses it when it unpacks to
/// too much in total or too many times its packed size, holds a text or tag longer than
/// `MAX_XML_RUN_BYTES`, or declares or holds more shared strings than `MAX_SHARED_STRINGS`.
/// Reading ends early when the file's source says it has stopped (see `FileSource::stopped`).
pub fn check_workbook<R: Read + Seek>(reader: R) -> Result<(), Issue> {
    let unreadable = |e: &dyn std::fmt::Display| {
        Issue::new(
            0,
            IssueCode::UnsupportedFile,
            format!("The workbook can't be read: {e}"),
        )
    };
    let mut archive = zip::ZipArchive::new(reader).map_err(|e| unreadable(&e))?;
    let mut total: u64 = 0;
    let mut buf = vec![0u8; 64 * 1024];
    for index in 0..archive.len() {
        let mut part = archive.by_index(index).map_err(|e| unreadable(&e))?;
        let name = part
            .name()
            .map_err(|e| unreadable(&e))?
            .to_ascii_lowercase();
        // Every part, whatever its name: a workbook's relationships may point calamine at any of
        // them. Pictures pass (compressed data has a '<' and a '>' every few hundred bytes).
        let shared_strings = name.ends_with("sharedstrings.xml");
        let packed = part.compressed_size();
        let mut unpacked: u64 = 0;
        let mut scan = XmlScan::default();
        loop {
            let n = part
                .read(&mut buf)
                .map_err(|e| match OverLimit::carried_by(&e) {
                    Some(over) => over.issue(0),
                    None => unreadable(&e),
                })?;
            if n == 0 {
                break;
            }
            unpacked += n as u64;
            total += n as u64;
            let over = |what: String| Err(OverLimit(what).issue(0));
            if total > MAX_UNPACKED_BYTES {
                return over(format!(
                    "the workbook unpacks to more than {} MB",
                    MAX_UNPACKED_BYTES >> 20
                ));
            }
            if unpacked > RATIO_FREE_BYTES && unpacked > packed.saturating_mul(MAX_UNPACK_RATIO) {
                return over(format!(
                    "{name} unpacks to more than {MAX_UNPACK_RATIO} times its size"
                ));
            }
            if shared_strings && unpacked > MAX_SHARED_STRINGS_BYTES {
                return over(format!(
                    "its distinct texts take more than {} MB",
                    MAX_SHARED_STRINGS_BYTES >> 20
                ));
            }
            scan.feed(&buf[..n])
                .and_then(|()| check_items(&scan))
                .map_err(|e| e.issue(0))?;
        }
    }
    Ok(())
}

/// Cells the sheets of a legacy `.xls` may span in all (each sheet's rows × columns from its first
/// to its last cell, or as its DIMENSIONS record declares them): calamine reads a whole `.xls` into
/// memory, every sheet at once, and sizes each sheet by that span. 500,000 cells is 20,000 rows by
/// 25 columns (a weld log of a few thousand welds spans a tenth of it); at the limit, reading and
/// reporting on an `.xls` peak at about 125 MB of the backend's memory.
pub const MAX_XLS_CELLS: u64 = 500_000;
/// Bytes of an `.xls`'s workbook stream, which calamine holds twice while it reads.
pub const MAX_XLS_STREAM_BYTES: u64 = 16 << 20;

/// Records of the BIFF stream that hold a cell, with its row and column in their first 4 bytes.
fn is_cell_record(kind: u16) -> bool {
    matches!(
        kind,
        0x0006 | 0x0201 | 0x0203 | 0x0204 | 0x0205 | 0x027E | 0x00D6 | 0x00FD | 0x00BD | 0x00BE
    )
}

/// Opens a legacy `.xls` (a compound file holding a BIFF `Workbook` stream, through the `cfb`
/// crate, which checks the container's structure) and reads its records once, a block at a time:
/// refused when the stream is over `MAX_XLS_STREAM_BYTES`, the sheets span or a sheet declares more
/// than `MAX_XLS_CELLS` cells, or a cell lies beyond column `MAX_COLUMNS`, before calamine sizes
/// anything from them.
pub fn check_xls<R: Read + Seek>(reader: R) -> Result<(), Issue> {
    let unreadable = |e: &dyn std::fmt::Display| {
        Issue::new(
            0,
            IssueCode::UnsupportedFile,
            format!("The .xls workbook can't be read: {e}"),
        )
    };
    let mut file = cfb::CompoundFile::open(reader).map_err(|e| unreadable(&e))?;
    let name = ["/Workbook", "/Book"]
        .into_iter()
        .find(|n| file.is_stream(n))
        .ok_or_else(|| unreadable(&"it holds no workbook"))?;
    let stream = file.open_stream(name).map_err(|e| unreadable(&e))?;
    if stream.len() > MAX_XLS_STREAM_BYTES {
        return Err(OverLimit(format!(
            "the .xls workbook holds more than {} MB",
            MAX_XLS_STREAM_BYTES >> 20
        ))
        .issue(0));
    }
    let mut stream = std::io::BufReader::with_capacity(64 * 1024, stream);
    let over = |what: String| Err(OverLimit(what).issue(0));
    let mut header = [0u8; 4];
    let mut body = vec![0u8; 0x1_0000];
    // The span of the cells of the current substream (a worksheet between BOF and EOF), and the
    // cells the substreams before it span.
    let mut span: Option<(u32, u32, u32, u32)> = None;
    let mut before: u64 = 0;
    let cells_of =
        |(r0, r1, c0, c1): (u32, u32, u32, u32)| u64::from(r1 - r0 + 1) * u64::from(c1 - c0 + 1);
    loop {
        match stream.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(unreadable(&e)),
        }
        let kind = u16::from_le_bytes([header[0], header[1]]);
        let len = usize::from(u16::from_le_bytes([header[2], header[3]]));
        let data = &mut body[..len];
        if stream.read_exact(data).is_err() {
            // A truncated last record: calamine reports it.
            return Ok(());
        }
        let u16_at = |at: usize| {
            data.get(at..at + 2)
                .map(|b| u32::from(u16::from_le_bytes([b[0], b[1]])))
        };
        let u32_at = |at: usize| {
            data.get(at..at + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        match kind {
            // BOF: a new substream.
            0x0809 => before += span.take().map_or(0, cells_of),
            // DIMENSIONS, read as calamine reads it (which reserves room for all of it).
            0x0200 => {
                let (first_row, last_row, first_col, last_col) = match len {
                    10 => (u16_at(0), u16_at(2), u16_at(4), u16_at(6)),
                    _ => (u32_at(0), u32_at(4), u16_at(8), u16_at(10)),
                };
                let (Some(fr), Some(lr), Some(fc), Some(lc)) =
                    (first_row, last_row, first_col, last_col)
                else {
                    continue;
                };
                let fc = if fc > 0xFF || lc < fc { 0 } else { fc };
                if lr >= 1 && lc >= 1 {
                    if lr - 1 < fr {
                        return over("a sheet declares its last row before its first".into());
                    }
                    let cells = u64::from(lr - fr) * u64::from(lc.saturating_sub(fc).max(1));
                    if cells > MAX_XLS_CELLS {
                        return over(format!("a sheet declares more than {MAX_XLS_CELLS} cells"));
                    }
                }
            }
            kind if is_cell_record(kind) => {
                let (Some(row), Some(col)) = (u16_at(0), u16_at(2)) else {
                    continue;
                };
                // MULRK and MULBLANK hold a run of cells; their last column ends the record.
                let last_col = if matches!(kind, 0x00BD | 0x00BE) {
                    len.checked_sub(2).and_then(u16_at).unwrap_or(col).max(col)
                } else {
                    col
                };
                if last_col as usize >= MAX_COLUMNS {
                    return over(format!("a cell lies beyond column {MAX_COLUMNS}"));
                }
                let (r0, r1, c0, c1) = span.unwrap_or((row, row, col, last_col));
                let next = (r0.min(row), r1.max(row), c0.min(col), c1.max(last_col));
                if before + cells_of(next) > MAX_XLS_CELLS {
                    return over(format!("its sheets span more than {MAX_XLS_CELLS} cells"));
                }
                span = Some(next);
            }
            _ => {}
        }
    }
}

/// Tags and text runs of an XML part, measured as they stream; shared-string items counted and the
/// count the part declares (`<sst uniqueCount=…>`, which calamine reserves room for) read.
#[derive(Default)]
struct XmlScan {
    in_tag: bool,
    run: usize,
    /// The tag's name so far (at most 16 bytes are kept) while it is being read.
    name: Vec<u8>,
    naming: bool,
    /// The attributes of an `sst` tag (the first 512 bytes).
    sst: Option<Vec<u8>>,
    items: u64,
}

impl XmlScan {
    fn feed(&mut self, bytes: &[u8]) -> Result<(), OverLimit> {
        let mut i = 0;
        while i < bytes.len() {
            // Between the marks that matter, whole runs are skipped at once (memchr): a byte at a
            // time, this scan cost as much as calamine's own parse.
            if !self.naming && self.sst.is_none() {
                let mark = if self.in_tag { b'>' } else { b'<' };
                let skipped = memchr::memchr(mark, &bytes[i..]).unwrap_or(bytes.len() - i);
                self.run += skipped;
                self.check_run()?;
                i += skipped;
                if i == bytes.len() {
                    break;
                }
            }
            self.byte(bytes[i])?;
            i += 1;
        }
        Ok(())
    }

    fn check_run(&self) -> Result<(), OverLimit> {
        if self.run > MAX_XML_RUN_BYTES {
            let what = if self.in_tag { "an XML tag" } else { "a text" };
            return Err(OverLimit(format!(
                "{what} is longer than {} MB",
                MAX_XML_RUN_BYTES >> 20
            )));
        }
        Ok(())
    }

    fn byte(&mut self, b: u8) -> Result<(), OverLimit> {
        if self.in_tag {
            if b == b'>' {
                if self.naming {
                    self.end_name();
                }
                if let Some(attributes) = self.sst.take() {
                    check_declared_count(&attributes)?;
                }
                self.in_tag = false;
                self.run = 0;
                return Ok(());
            }
            if self.naming {
                if b.is_ascii_whitespace() || b == b'/' && !self.name.is_empty() {
                    self.end_name();
                } else if self.name.len() < 16 {
                    self.name.push(b);
                }
            } else if let Some(attributes) = self.sst.as_mut() {
                if attributes.len() < 512 {
                    attributes.push(b);
                }
            }
        } else if b == b'<' {
            self.in_tag = true;
            self.naming = true;
            self.name.clear();
            self.run = 0;
            return Ok(());
        }
        self.run += 1;
        self.check_run()
    }

    fn end_name(&mut self) {
        self.naming = false;
        if self.name.first() == Some(&b'/') {
            return;
        }
        let local = self.name.rsplit(|&b| b == b':').next().unwrap_or_default();
        if local == b"si" {
            self.items += 1;
        } else if local == b"sst" {
            self.sst = Some(Vec::new());
        }
    }
}

/// Refuses an `sst` tag whose uniqueCount is beyond `MAX_SHARED_STRINGS` (read saturating, so 10^30
/// is just large).
fn check_declared_count(attributes: &[u8]) -> Result<(), OverLimit> {
    let text = String::from_utf8_lossy(attributes);
    if let Some(at) = text.find("uniqueCount=") {
        let digits = text[at + "uniqueCount=".len()..].trim_start_matches(['"', '\'', ' ']);
        let declared = digits
            .bytes()
            .take_while(u8::is_ascii_digit)
            .fold(0u64, |n, d| {
                n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
            });
        if declared > MAX_SHARED_STRINGS {
            return Err(OverLimit(format!(
                "it declares {declared} distinct texts (at most {MAX_SHARED_STRINGS})"
            )));
        }
    }
    Ok(())
}

/// Shared-string items counted while checking: refused past `MAX_SHARED_STRINGS`.
fn check_items(scan: &XmlScan) -> Result<(), OverLimit> {
    if scan.items > MAX_SHARED_STRINGS {
        return Err(OverLimit(format!(
            "it holds more than {MAX_SHARED_STRINGS} distinct texts"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_guard_counts_fields_outside_quotes_only() {
        let mut guard = RecordGuard::new(b',');
        let quoted_commas = format!("a,\"{}\",b\n", ",".repeat(5_000));
        assert!(guard.feed(quoted_commas.as_bytes()).is_ok());
        let wide = ",".repeat(MAX_COLUMNS);
        let error = guard.feed(wide.as_bytes()).unwrap_err();
        assert!(OverLimit::carried_by(&error).is_some());
        // A new record starts the count again.
        let mut guard = RecordGuard::new(b';');
        for _ in 0..10 {
            assert!(guard
                .feed(format!("{}\r\n", ";".repeat(MAX_COLUMNS - 1)).as_bytes())
                .is_ok());
        }
    }

    #[test]
    fn a_record_guard_refuses_a_long_row_even_inside_quotes() {
        let mut guard = RecordGuard::new(b',');
        let long = format!("\"{}", "x".repeat(MAX_ROW_BYTES));
        assert!(guard.feed(long.as_bytes()).is_err());
    }

    #[test]
    fn the_scan_counts_shared_string_items_with_any_prefix() {
        let mut scan = XmlScan::default();
        let xml = b"<?xml version=\"1.0\"?><x:sst uniqueCount=\"3\"><x:si><x:t>a</x:t></x:si><si/><si><t>b</t></si></x:sst>";
        // Fed a byte at a time: state carries across reads.
        for b in xml {
            scan.feed(std::slice::from_ref(b)).unwrap();
        }
        assert_eq!(scan.items, 3);
        assert!(check_items(&scan).is_ok());
    }

    #[test]
    fn the_scan_refuses_a_declared_count_beyond_the_limit() {
        let mut scan = XmlScan::default();
        assert!(scan
            .feed(b"<sst xmlns=\"x\" uniqueCount=\"1000000000000000\" count=\"1\">")
            .is_err());
        let mut scan = XmlScan::default();
        assert!(scan
            .feed(b"<sst uniqueCount=\"99999999999999999999999999999999\">")
            .is_err());
        let mut scan = XmlScan::default();
        assert!(scan.feed(b"<sst uniqueCount=\"1000\">").is_ok());
    }

    /// A zip of the given parts, deflated.
    fn zip_of(parts: &[(&str, &[u8])]) -> Vec<u8> {
        use std::io::Write;
        let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, content) in parts {
            out.start_file(*name, zip::write::SimpleFileOptions::default())
                .expect("part");
            out.write_all(content).expect("write");
        }
        out.finish().expect("finish").into_inner()
    }

    #[test]
    fn a_picture_passes_and_a_long_run_in_any_part_does_not() {
        // Compressed picture data: pseudo-random bytes.
        let mut state: u32 = 7;
        let picture: Vec<u8> = (0..3_000_000)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 24) as u8
            })
            .collect();
        let book = zip_of(&[
            ("xl/workbook.xml", b"<workbook/>"),
            ("xl/media/image1.png", &picture),
        ]);
        assert!(check_workbook(std::io::Cursor::new(book)).is_ok());
        // A sheet the relationships name without .xml is checked all the same.
        let spaces = vec![b' '; MAX_XML_RUN_BYTES + 10];
        let book = zip_of(&[("xl/worksheets/sheet1", &spaces)]);
        let refused = check_workbook(std::io::Cursor::new(book)).unwrap_err();
        assert_eq!(refused.code, IssueCode::FileOverLimits);
    }

    #[test]
    fn the_scan_refuses_long_texts_and_tags() {
        let mut scan = XmlScan::default();
        let spaces = vec![b' '; MAX_XML_RUN_BYTES + 1];
        assert!(scan.feed(b"<row>").is_ok());
        assert!(scan.feed(&spaces).is_err());
        let mut scan = XmlScan::default();
        assert!(scan.feed(b"<c ").is_ok());
        assert!(scan.feed(&spaces).is_err());
    }
}
