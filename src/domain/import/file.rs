//! An uploaded file read a block at a time: from memory, or streamed out of the database in
//! slices, so reading never needs the whole file at once. `FileReader` gives calamine the
//! `Read + Seek` a zip container needs; `TextReader` turns CSV bytes of any supported encoding
//! into UTF-8 as they stream.

use encoding_rs::{CoderResult, Decoder, Encoding, UTF_8, WINDOWS_1252};
use std::io::{self, Read, Seek, SeekFrom};

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
    /// Neither a byte-order mark nor valid UTF-8: read as Windows-1252.
    pub guessed_windows_1252: bool,
}

/// A byte-order mark at the start of the file (`head`, its first bytes, already read) names the
/// encoding; otherwise the file is UTF-8 if every byte of it is, else Windows-1252. Reads the file
/// once, a block at a time.
pub fn detect_encoding(source: &mut dyn FileSource, head: &[u8]) -> io::Result<TextEncoding> {
    if let Some((encoding, _)) = Encoding::for_bom(head) {
        return Ok(TextEncoding {
            encoding,
            guessed_windows_1252: false,
        });
    }
    let mut reader = FileReader::new(source);
    let mut buf = vec![0u8; 64 * 1024];
    // Bytes of a character cut by the end of the previous read.
    let mut carried = 0;
    loop {
        let n = reader.read(&mut buf[carried..])?;
        if n == 0 {
            let valid = carried == 0;
            return Ok(TextEncoding {
                encoding: if valid { UTF_8 } else { WINDOWS_1252 },
                guessed_windows_1252: !valid,
            });
        }
        let filled = carried + n;
        match std::str::from_utf8(&buf[..filled]) {
            Ok(_) => carried = 0,
            // Incomplete at the end: keep the partial character for the next read.
            Err(e) if e.error_len().is_none() => {
                let cut = e.valid_up_to();
                buf.copy_within(cut..filled, 0);
                carried = filled - cut;
            }
            Err(_) => {
                return Ok(TextEncoding {
                    encoding: WINDOWS_1252,
                    guessed_windows_1252: true,
                })
            }
        }
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
