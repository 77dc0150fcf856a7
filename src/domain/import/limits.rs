//! What an import reads at most, and the checks that hold a file to it before anything sizes an
//! allocation from the file. A count, size or position declared inside a file is never trusted: a
//! backend that aborts on a failed allocation takes the whole server down with it, so every bound
//! here is checked on the bytes as they stream, before csv or calamine sees them.

use super::file::{FileReader, FileSource};
use super::{Issue, IssueCode};
use std::cell::RefCell;
use std::io::{Read, Seek};
use std::rc::Rc;

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
/// Unpacked bytes of all the parts of a workbook that are read (parts nobody opens don't count).
pub const MAX_UNPACKED_BYTES: u64 = 1 << 30;

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

/// When calamine reads a part of an `.xlsx`: while it opens the workbook (relationships, shared
/// strings, styles, theme, workbook — every one held in memory whole) or afterwards, a worksheet's
/// cells (streamed, never held).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Opening,
    Sheets,
}

/// What a guarded workbook's reader shares with its caller: the phase calamine is in, and why a
/// read was refused.
#[derive(Debug)]
pub struct GuardState {
    pub phase: Phase,
    pub refused: Option<String>,
}

impl GuardState {
    pub fn shared() -> Rc<RefCell<GuardState>> {
        Rc::new(RefCell::new(GuardState {
            phase: Phase::Opening,
            refused: None,
        }))
    }
}

/// Bytes a part calamine holds in memory whole may unpack to (shared strings: every distinct text
/// of the workbook).
pub const MAX_HELD_PART_BYTES: u64 = MAX_SHARED_STRINGS_BYTES;
/// Formats, fonts, fills, borders, sheets, names or relationships one part may list (calamine
/// keeps a value for each; Excel itself allows 64,000 formats).
pub const MAX_LISTED_ITEMS: u64 = 200_000;
/// Rows of a worksheet (Excel's own limit).
pub const MAX_SHEET_ROWS: u64 = 1_048_576;

/// A part of the zip: where its packed data starts, and its verdict once checked.
struct Part {
    name: String,
    data_start: u64,
    verdict: Option<Result<(), String>>,
}

/// The reader calamine is given for an `.xlsx`: the file, with every part checked the first time
/// calamine reads from it, and a part beyond the limits refused. Parts calamine never opens (pivot
/// caches, pictures, printer settings, …) are never unpacked at all, whatever they hold. A part
/// read while calamine opens the workbook is held to what is held in memory
/// (`MAX_HELD_PART_BYTES`, `MAX_LISTED_ITEMS`, `MAX_SHARED_STRINGS`); a worksheet read afterwards
/// to `MAX_SHEET_ROWS`; every part to `MAX_XML_RUN_BYTES` per text or tag; and all the parts read
/// together to `MAX_UNPACKED_BYTES`.
pub struct GuardedWorkbook<'a> {
    file: FileReader<'a>,
    parts: Vec<Part>,
    state: Rc<RefCell<GuardState>>,
    unpacked: u64,
}

impl<'a> GuardedWorkbook<'a> {
    /// Lists the parts (the zip's directory and local headers; nothing is unpacked).
    pub fn new(
        source: &'a mut dyn FileSource,
        state: Rc<RefCell<GuardState>>,
    ) -> Result<GuardedWorkbook<'a>, String> {
        let mut parts = Vec::new();
        {
            let mut archive =
                zip::ZipArchive::new(FileReader::new(&mut *source)).map_err(|e| e.to_string())?;
            for index in 0..archive.len() {
                let part = archive.by_index_raw(index).map_err(|e| e.to_string())?;
                let name = part.name().map_err(|e| e.to_string())?.into_owned();
                let data_start = part
                    .data_start()
                    .ok_or_else(|| format!("{name} has no local header"))?;
                parts.push(Part {
                    name,
                    data_start,
                    verdict: None,
                });
            }
        }
        parts.sort_by_key(|p| p.data_start);
        Ok(GuardedWorkbook {
            file: FileReader::new(source),
            parts,
            state,
            unpacked: 0,
        })
    }

    /// Checks, once, the parts whose data starts at `at`: the zip reader unpacks a part from the
    /// start of its data on, so a read there is the first read of that part. (Reads of the
    /// zip's directory and local headers unpack nothing.)
    fn check(&mut self, at: u64) -> std::io::Result<()> {
        let phase = self.state.borrow().phase;
        let first = self.parts.partition_point(|p| p.data_start < at);
        for index in first..self.parts.len() {
            let part = &self.parts[index];
            if part.data_start != at {
                break;
            }
            if part.verdict.is_none() {
                let name = part.name.clone();
                let verdict = self.scan(index, &name, phase);
                self.parts[index].verdict = Some(verdict);
            }
            if let Some(Err(why)) = &self.parts[index].verdict {
                let why = why.clone();
                self.state.borrow_mut().refused = Some(why.clone());
                return Err(OverLimit(why).into_io());
            }
        }
        Ok(())
    }

    /// Unpacks part `index` once, a block at a time, and holds it to the limits of `phase`.
    fn scan(&mut self, index: usize, name: &str, phase: Phase) -> Result<(), String> {
        let mut archive =
            zip::ZipArchive::new(FileReader::new(self.file.source())).map_err(|e| e.to_string())?;
        let mut part = archive.by_index(index).map_err(|e| e.to_string())?;
        let mut scan = XmlScan::default();
        let mut buf = vec![0u8; 64 * 1024];
        let mut bytes: u64 = 0;
        loop {
            let n = part.read(&mut buf).map_err(|e| e.to_string())?;
            if n == 0 {
                return Ok(());
            }
            bytes += n as u64;
            self.unpacked += n as u64;
            if self.unpacked > MAX_UNPACKED_BYTES {
                return Err(format!(
                    "the parts of the workbook it reads unpack to more than {} MB",
                    MAX_UNPACKED_BYTES >> 20
                ));
            }
            if phase == Phase::Opening && bytes > MAX_HELD_PART_BYTES {
                return Err(format!(
                    "{name}, which is held in memory, unpacks to more than {} MB",
                    MAX_HELD_PART_BYTES >> 20
                ));
            }
            scan.feed(&buf[..n])
                .and_then(|()| scan.check(phase))
                .map_err(|e| format!("{name}: {e}"))?;
        }
    }
}

impl Read for GuardedWorkbook<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let at = self.file.stream_position()?;
        self.check(at)?;
        self.file.read(out)
    }
}

impl Seek for GuardedWorkbook<'_> {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        self.file.seek(to)
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
    /// Shared-string items (`si`).
    items: u64,
    /// Items calamine keeps one value for when it holds the part: formats, fonts, fills,
    /// borders, sheets, defined names, relationships.
    listed: u64,
    /// Rows (`row`).
    rows: u64,
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
        match local {
            b"si" => self.items += 1,
            b"sst" => self.sst = Some(Vec::new()),
            b"row" => self.rows += 1,
            b"xf" | b"numFmt" | b"font" | b"fill" | b"border" | b"dxf" | b"cellStyle"
            | b"sheet" | b"definedName" | b"Relationship" => self.listed += 1,
            _ => {}
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

impl XmlScan {
    /// The counts so far held to the limits of a part read in `phase`.
    fn check(&self, phase: Phase) -> Result<(), OverLimit> {
        if self.items > MAX_SHARED_STRINGS {
            return Err(OverLimit(format!(
                "it holds more than {MAX_SHARED_STRINGS} distinct texts"
            )));
        }
        if phase == Phase::Opening && self.listed > MAX_LISTED_ITEMS {
            return Err(OverLimit(format!(
                "it lists more than {MAX_LISTED_ITEMS} formats, fonts, sheets, names or relationships"
            )));
        }
        if self.rows > MAX_SHEET_ROWS {
            return Err(OverLimit(format!(
                "a sheet has more than {MAX_SHEET_ROWS} rows"
            )));
        }
        Ok(())
    }
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
        assert!(scan.check(Phase::Opening).is_ok());
    }

    proptest::proptest! {
        /// However a part arrives in reads, the scan counts the same: tag names split across reads,
        /// closing tags, prefixes, names longer than the 16 bytes kept.
        #[test]
        fn the_scan_counts_the_same_for_any_split(cuts in proptest::collection::vec(0usize..400, 0..12)) {
            let xml = b"<sst uniqueCount=\"2\"><x:si><t>a b</t></x:si><si/></sst><sheetData><row r=\"1\">\
    <c r=\"A1\"><v>1</v></c></row><row/><averyveryverylongtagname/><x:row\tspans=\"1\"></x:row>\
    <Relationship Id=\"r\"/><xf/></sheetData>";
            let whole = {
                let mut scan = XmlScan::default();
                scan.feed(xml).expect("scan");
                (scan.items, scan.rows, scan.listed, scan.in_tag, scan.run)
            };
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(xml.len())).collect();
            cuts.sort_unstable();
            let mut scan = XmlScan::default();
            let mut from = 0;
            for cut in cuts.into_iter().chain([xml.len()]) {
                scan.feed(&xml[from..cut]).expect("scan");
                from = cut;
            }
            proptest::prop_assert_eq!((scan.items, scan.rows, scan.listed, scan.in_tag, scan.run), whole);
            proptest::prop_assert_eq!(whole.0, 2);
            proptest::prop_assert_eq!(whole.1, 3);
            proptest::prop_assert_eq!(whole.2, 2);
        }
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
    fn only_the_parts_read_are_checked_and_a_part_over_the_limits_is_refused_when_read() {
        let spaces = vec![b' '; MAX_XML_RUN_BYTES + 10];
        let book = zip_of(&[
            ("xl/workbook.xml", b"<workbook/>"),
            ("xl/pivotCache/pivotCacheRecords1.xml", &spaces),
        ]);
        let mut source: &[u8] = &book;
        let state = GuardState::shared();
        let guard = GuardedWorkbook::new(&mut source, state.clone()).expect("parts");
        let mut archive = zip::ZipArchive::new(guard).expect("zip");
        let mut text = String::new();
        archive
            .by_name("xl/workbook.xml")
            .expect("part")
            .read_to_string(&mut text)
            .expect("read");
        assert_eq!(text, "<workbook/>");
        assert!(state.borrow().refused.is_none());
        let mut rest = Vec::new();
        let read = archive
            .by_name("xl/pivotCache/pivotCacheRecords1.xml")
            .map_err(|e| e.to_string())
            .and_then(|mut p| p.read_to_end(&mut rest).map_err(|e| e.to_string()));
        assert!(read.is_err());
        let refused = state.borrow().refused.clone().expect("refused");
        assert!(refused.contains("pivotCacheRecords1.xml"), "{refused}");
    }

    #[test]
    fn a_held_part_listing_too_many_formats_is_refused_but_a_sheet_of_many_cells_is_not() {
        let mut scan = XmlScan::default();
        let styles = b"<xf/>".repeat(MAX_LISTED_ITEMS as usize + 1);
        scan.feed(&styles).expect("scan");
        assert!(scan.check(Phase::Opening).is_err());
        assert!(scan.check(Phase::Sheets).is_ok());
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
