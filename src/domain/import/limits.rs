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
        for &b in bytes {
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
                    continue;
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
                continue;
            }
            self.run += 1;
            if self.run > MAX_XML_RUN_BYTES {
                let what = if self.in_tag { "an XML tag" } else { "a text" };
                return Err(OverLimit(format!(
                    "{what} is longer than {} MB",
                    MAX_XML_RUN_BYTES >> 20
                )));
            }
        }
        Ok(())
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
