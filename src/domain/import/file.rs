//! An uploaded file read a block at a time: from memory, or streamed out of the database in
//! slices, so reading never needs the whole file at once. `FileReader` gives calamine the
//! `Read + Seek` a zip container needs; `TextReader` turns CSV bytes of any supported encoding
//! into UTF-8 as they stream.

use encoding_rs::{CoderResult, Decoder, Encoding, UTF_8, WINDOWS_1252};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Read, Seek, SeekFrom};
use std::rc::Rc;

/// A file read by position.
pub trait FileSource {
    /// The file's size in bytes.
    fn size(&self) -> u64;
    /// Fills `buf` with the bytes at `offset`; fewer only at the end of the file.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// True once whoever wants the file's rows has gone: every read fails from then on, so that a
    /// reader unpacking a block it already holds stops too.
    fn stopped(&self) -> bool {
        false
    }
}

impl FileSource for &[u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.len());
        let end = start.saturating_add(buf.len()).min(self.len());
        buf[..end - start].copy_from_slice(&self[start..end]);
        Ok(end - start)
    }
}

/// Bytes fetched from the source per request: few round trips, little memory.
const BLOCK_BYTES: usize = 512 * 1024;

/// Sequential and seekable reading of a `FileSource`, one block in memory at a time.
pub struct FileReader<'a> {
    source: &'a mut dyn FileSource,
    position: u64,
    /// Allocated (and zeroed) once; `filled` bytes of it hold the file from `block_start`.
    block: Vec<u8>,
    filled: usize,
    block_start: u64,
}

impl<'a> FileReader<'a> {
    pub fn new(source: &'a mut dyn FileSource) -> FileReader<'a> {
        FileReader {
            source,
            position: 0,
            block: Vec::new(),
            filled: 0,
            block_start: 0,
        }
    }
}

impl FileReader<'_> {
    /// The file, for a second reading beside this one (whose place is kept).
    pub fn source(&mut self) -> &mut dyn FileSource {
        &mut *self.source
    }
}

impl Read for FileReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.source.stopped() {
            // Not ErrorKind::Interrupted, which readers retry forever.
            return Err(io::Error::other("reading the file was stopped"));
        }
        let block_end = self.block_start + self.filled as u64;
        if self.position < self.block_start || self.position >= block_end {
            let wanted = self
                .source
                .size()
                .saturating_sub(self.position)
                .min(BLOCK_BYTES as u64) as usize;
            // Grown (and zeroed) only when a larger block is wanted: zeroing 512 KB on every
            // refill made a source that answers a few bytes at a time quadratic.
            if self.block.len() < wanted {
                self.block.resize(wanted, 0);
            }
            self.filled = self
                .source
                .read_at(self.position, &mut self.block[..wanted])?;
            self.block_start = self.position;
        }
        let from = (self.position - self.block_start) as usize;
        let n = out.len().min(self.filled.saturating_sub(from));
        out[..n].copy_from_slice(&self.block[from..from + n]);
        self.position += n as u64;
        Ok(n)
    }
}

impl Seek for FileReader<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(offset) => Some(offset),
            SeekFrom::End(delta) => self.source.size().checked_add_signed(delta),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        };
        self.position = target.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the file",
            )
        })?;
        Ok(self.position)
    }
}

/// How a CSV file's text is encoded.
pub struct TextEncoding {
    pub encoding: &'static Encoding,
    /// Neither a byte-order mark nor valid UTF-8 anywhere: read as Windows-1252.
    pub guessed_windows_1252: bool,
    /// UTF-8 with some lines that are not: each line is read as UTF-8 when it is, else as
    /// Windows-1252 (see `LineDecoder`).
    pub mixed: bool,
}

/// Classifies a file's lines as they stream: ASCII, UTF-8 with other characters, or not UTF-8.
#[derive(Default)]
struct LineScan {
    /// The current line's bytes not yet checked (a character cut by the end of a read).
    pending: Vec<u8>,
    line_invalid: bool,
    line_non_ascii: bool,
    invalid_lines: u64,
    utf8_lines: u64,
}

impl LineScan {
    fn feed(&mut self, bytes: &[u8]) {
        // Most files are ASCII: a block of it ends the current line at its first line break, and
        // every line after that is ASCII too.
        if self.pending.is_empty() && bytes.is_ascii() {
            if bytes.contains(&b'\n') {
                self.end_line();
            }
            return;
        }
        let mut rest = bytes;
        while let Some(at) = rest.iter().position(|&b| b == b'\n') {
            self.piece(&rest[..at], true);
            rest = &rest[at + 1..];
        }
        self.piece(rest, false);
    }

    fn piece(&mut self, bytes: &[u8], ends_line: bool) {
        if !self.line_invalid {
            self.pending.extend_from_slice(bytes);
            match std::str::from_utf8(&self.pending) {
                Ok(text) => {
                    self.line_non_ascii |= !text.is_ascii();
                    self.pending.clear();
                }
                Err(e) if e.error_len().is_none() && !ends_line => {
                    let valid = e.valid_up_to();
                    self.line_non_ascii |= !self.pending[..valid].is_ascii();
                    self.pending.drain(..valid);
                }
                Err(_) => {
                    self.line_invalid = true;
                    self.pending.clear();
                }
            }
        }
        if ends_line {
            self.end_line();
        }
    }

    fn end_line(&mut self) {
        if self.line_invalid || !self.pending.is_empty() {
            self.invalid_lines += 1;
        } else if self.line_non_ascii {
            self.utf8_lines += 1;
        }
        self.pending.clear();
        self.line_invalid = false;
        self.line_non_ascii = false;
    }
}

/// A byte-order mark at the start of the file (`head`, its first bytes, already read) names the
/// encoding. Otherwise each line is looked at: all UTF-8 → UTF-8; none that is UTF-8 beyond ASCII
/// and some that are not UTF-8 → Windows-1252 (an old export); both → UTF-8 with stray lines,
/// read line by line. Reads the file once, a block at a time.
pub fn detect_encoding(source: &mut dyn FileSource, head: &[u8]) -> io::Result<TextEncoding> {
    if let Some((encoding, _)) = Encoding::for_bom(head) {
        return Ok(TextEncoding {
            encoding,
            guessed_windows_1252: false,
            mixed: false,
        });
    }
    let mut reader = FileReader::new(source);
    let mut buf = vec![0u8; 64 * 1024];
    let mut scan = LineScan::default();
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        scan.feed(&buf[..n]);
    }
    scan.end_line();
    Ok(match (scan.invalid_lines, scan.utf8_lines) {
        (0, _) => TextEncoding {
            encoding: UTF_8,
            guessed_windows_1252: false,
            mixed: false,
        },
        (_, 0) => TextEncoding {
            encoding: WINDOWS_1252,
            guessed_windows_1252: true,
            mixed: false,
        },
        _ => TextEncoding {
            encoding: UTF_8,
            guessed_windows_1252: false,
            mixed: true,
        },
    })
}

/// Where, in the decoded text, the lines read as Windows-1252 start: the decoder adds them as it
/// goes, the CSV reader takes those that fall before the end of each record it reads.
#[derive(Clone, Default)]
pub struct StrayLines(Rc<RefCell<VecDeque<u64>>>);

impl StrayLines {
    pub fn new() -> StrayLines {
        StrayLines::default()
    }

    /// For a reading whose stray lines nobody asks about.
    pub fn none() -> StrayLines {
        StrayLines::default()
    }

    fn push(&self, offset: u64) {
        self.0.borrow_mut().push_back(offset);
    }

    /// True when a stray line starts before `end`; forgets those lines.
    pub fn any_before(&self, end: u64) -> bool {
        let mut lines = self.0.borrow_mut();
        let mut any = false;
        while lines.front().is_some_and(|&start| start < end) {
            lines.pop_front();
            any = true;
        }
        any
    }
}

/// The file's text as UTF-8, decoded as it streams.
pub fn text_reader<'a>(
    source: &'a mut dyn FileSource,
    text: &TextEncoding,
    stray: &StrayLines,
) -> Box<dyn Read + 'a> {
    if text.mixed {
        Box::new(LineDecoder::new(FileReader::new(source), stray.clone()))
    } else {
        Box::new(TextReader::new(FileReader::new(source), text.encoding))
    }
}

/// Lines longer than this are passed on as they are: a record that long is refused anyway.
const MAX_LINE_BYTES: usize = super::limits::MAX_ROW_BYTES + 16;

/// UTF-8 text out of a file whose lines are UTF-8 or Windows-1252, decided line by line. Where
/// each Windows-1252 line starts in the text goes to `stray`.
pub struct LineDecoder<R> {
    inner: R,
    input: Vec<u8>,
    start: usize,
    end: usize,
    at_end: bool,
    line: Vec<u8>,
    output: Vec<u8>,
    given: usize,
    /// Bytes of text produced before `output`.
    produced: u64,
    stray: StrayLines,
}

impl<R: Read> LineDecoder<R> {
    pub fn new(inner: R, stray: StrayLines) -> LineDecoder<R> {
        LineDecoder {
            inner,
            input: vec![0; 64 * 1024],
            start: 0,
            end: 0,
            at_end: false,
            line: Vec::new(),
            output: Vec::new(),
            given: 0,
            produced: 0,
            stray,
        }
    }

    /// Decodes the line collected so far onto `output`.
    fn flush_line(&mut self) {
        if self.line.is_empty() {
            return;
        }
        match std::str::from_utf8(&self.line) {
            Ok(_) => self.output.extend_from_slice(&self.line),
            Err(_) => {
                self.stray.push(self.produced + self.output.len() as u64);
                let (text, _) = WINDOWS_1252.decode_without_bom_handling(&self.line);
                self.output.extend_from_slice(text.as_bytes());
            }
        }
        self.line.clear();
    }
}

impl<R: Read> Read for LineDecoder<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.given == self.output.len() {
            self.produced += self.output.len() as u64;
            self.output.clear();
            self.given = 0;
            if self.start == self.end {
                if self.at_end {
                    self.flush_line();
                    if self.output.is_empty() {
                        return Ok(0);
                    }
                    break;
                }
                self.end = self.inner.read(&mut self.input)?;
                self.start = 0;
                self.at_end = self.end == 0;
                continue;
            }
            let chunk = &self.input[self.start..self.end];
            match chunk.iter().position(|&b| b == b'\n') {
                Some(at) => {
                    self.line.extend_from_slice(&chunk[..=at]);
                    self.start += at + 1;
                    self.flush_line();
                }
                None => {
                    self.line.extend_from_slice(chunk);
                    self.start = self.end;
                    if self.line.len() > MAX_LINE_BYTES {
                        self.flush_line();
                    }
                }
            }
        }
        let n = out.len().min(self.output.len() - self.given);
        out[..n].copy_from_slice(&self.output[self.given..self.given + n]);
        self.given += n;
        Ok(n)
    }
}

/// UTF-8 text out of bytes in `encoding` (its byte-order mark removed), decoded as it streams.
pub struct TextReader<R> {
    inner: R,
    decoder: Decoder,
    input: Vec<u8>,
    start: usize,
    end: usize,
    at_end: bool,
    finished: bool,
}

impl<R: Read> TextReader<R> {
    pub fn new(inner: R, encoding: &'static Encoding) -> TextReader<R> {
        TextReader {
            inner,
            decoder: encoding.new_decoder_with_bom_removal(),
            input: vec![0; 64 * 1024],
            start: 0,
            end: 0,
            at_end: false,
            finished: false,
        }
    }
}

impl<R: Read> Read for TextReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        // The decoder must not be called again once told the input ended.
        if self.finished {
            return Ok(0);
        }
        loop {
            if self.start == self.end && !self.at_end {
                self.end = self.inner.read(&mut self.input)?;
                self.start = 0;
                self.at_end = self.end == 0;
            }
            let (result, read, written, _) =
                self.decoder
                    .decode_to_utf8(&self.input[self.start..self.end], out, self.at_end);
            self.start += read;
            if self.at_end && self.start == self.end && result == CoderResult::InputEmpty {
                self.finished = true;
                return Ok(written);
            }
            if written > 0 || out.is_empty() {
                return Ok(written);
            }
            if result == CoderResult::OutputFull {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a read buffer too small for one character",
                ));
            }
        }
    }
}
