//! Generated workbooks with the traits real files have and the damage hostile ones carry: each
//! trait of a contractor's file (pivot caches, declared ranges far beyond the data,
//! formatting-only cells, hidden sheets, the 1904 date system, a units row, a header printed
//! again) and each way a legacy `.xls` container or record stream was found to mislead a reader.
//! Used by the reading tests (`import_files`) and the live-server tests (`hostile_files`).
#![allow(dead_code)]

use std::io::Write;

// ---- legacy .xls (BIFF8 records in a compound file) ----

pub fn record(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&(data.len() as u16).to_le_bytes());
    out.extend_from_slice(data);
}

/// A BIFF8 BOF record's data: 0x0005 the globals, 0x0010 a worksheet, 0x0020 a chart.
pub fn bof(kind: u16) -> Vec<u8> {
    let mut data = Vec::new();
    for n in [0x0600u16, kind, 0x0DBB, 0x07CC] {
        data.extend_from_slice(&n.to_le_bytes());
    }
    data.extend_from_slice(&[0, 0, 0, 0, 6, 0, 0, 0]);
    data
}

fn cell_head(row: u16, col: u16) -> Vec<u8> {
    let mut data = Vec::new();
    for n in [row, col, 0x0F] {
        data.extend_from_slice(&n.to_le_bytes());
    }
    data
}

/// The records of one worksheet, written cell by cell.
#[derive(Default, Clone)]
pub struct XlsSheet {
    pub name: String,
    pub hidden: bool,
    pub records: Vec<u8>,
}

impl XlsSheet {
    pub fn new(name: &str) -> XlsSheet {
        XlsSheet {
            name: name.into(),
            ..XlsSheet::default()
        }
    }

    /// DIMENSIONS: first row, last row + 1, first column, last column + 1.
    pub fn dimensions(&mut self, rows: u32, cols: u16) -> &mut Self {
        let mut data = 0u32.to_le_bytes().to_vec();
        data.extend_from_slice(&rows.to_le_bytes());
        data.extend_from_slice(&0u16.to_le_bytes());
        data.extend_from_slice(&cols.to_le_bytes());
        data.extend_from_slice(&0u16.to_le_bytes());
        record(&mut self.records, 0x0200, &data);
        self
    }

    /// A LABEL cell (8-bit characters).
    pub fn text(&mut self, row: u16, col: u16, text: &str) -> &mut Self {
        let mut data = cell_head(row, col);
        data.extend_from_slice(&(text.len() as u16).to_le_bytes());
        data.push(0);
        data.extend_from_slice(text.as_bytes());
        record(&mut self.records, 0x0204, &data);
        self
    }

    /// A LABELSST cell: shared string `index`.
    pub fn shared(&mut self, row: u16, col: u16, index: u32) -> &mut Self {
        let mut data = cell_head(row, col);
        data.extend_from_slice(&index.to_le_bytes());
        record(&mut self.records, 0x00FD, &data);
        self
    }

    pub fn number(&mut self, row: u16, col: u16, value: f64) -> &mut Self {
        let mut data = cell_head(row, col);
        data.extend_from_slice(&value.to_le_bytes());
        record(&mut self.records, 0x0203, &data);
        self
    }

    /// A formula whose cached result is a text (the STRING record after it holds the text).
    pub fn formula_text(&mut self, row: u16, col: u16, text: &str) -> &mut Self {
        let mut data = cell_head(row, col);
        data.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0xFF, 0xFF]);
        data.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        // rgce: a reference (never read).
        data.extend_from_slice(&[3, 0, 0x1E, 1, 0]);
        record(&mut self.records, 0x0006, &data);
        let mut string = (text.len() as u16).to_le_bytes().to_vec();
        string.push(0);
        string.extend_from_slice(text.as_bytes());
        record(&mut self.records, 0x0207, &string);
        self
    }

    /// A formatted cell without a value.
    pub fn blank(&mut self, row: u16, col: u16) -> &mut Self {
        record(&mut self.records, 0x0201, &cell_head(row, col));
        self
    }

    /// Formatted cells without values from `first` to `last`.
    pub fn blanks(&mut self, row: u16, first: u16, last: u16) -> &mut Self {
        let mut data = row.to_le_bytes().to_vec();
        data.extend_from_slice(&first.to_le_bytes());
        for _ in first..=last {
            data.extend_from_slice(&0x0Fu16.to_le_bytes());
        }
        data.extend_from_slice(&last.to_le_bytes());
        record(&mut self.records, 0x00BE, &data);
        self
    }

    /// An embedded chart substream (BOF … EOF) inside the sheet, with a cell-like record in it.
    pub fn chart(&mut self) -> &mut Self {
        record(&mut self.records, 0x0809, &bof(0x0020));
        let mut data = cell_head(60_000, 200);
        data.extend_from_slice(&1.0f64.to_le_bytes());
        record(&mut self.records, 0x0203, &data);
        record(&mut self.records, 0x000A, &[]);
        self
    }
}

/// A legacy workbook: shared strings, sheets, the date system.
#[derive(Default, Clone)]
pub struct XlsBook {
    pub strings: Vec<String>,
    pub sheets: Vec<XlsSheet>,
    pub date_1904: bool,
    /// BOUNDSHEET records that point at the first sheet again, under other names.
    pub aliases: usize,
}

impl XlsBook {
    /// Index of `text` in the shared strings (added when new).
    pub fn string(&mut self, text: &str) -> u32 {
        match self.strings.iter().position(|s| s == text) {
            Some(i) => i as u32,
            None => {
                self.strings.push(text.to_string());
                (self.strings.len() - 1) as u32
            }
        }
    }

    /// The BIFF8 workbook stream.
    pub fn stream(&self) -> Vec<u8> {
        let mut globals = Vec::new();
        record(&mut globals, 0x0809, &bof(0x0005));
        record(&mut globals, 0x0042, &1200u16.to_le_bytes());
        record(
            &mut globals,
            0x0022,
            &u16::from(self.date_1904).to_le_bytes(),
        );
        // The shared strings, split into CONTINUE records between strings.
        if !self.strings.is_empty() {
            let mut parts: Vec<Vec<u8>> = vec![Vec::new()];
            let n = self.strings.len() as u32;
            parts[0].extend_from_slice(&n.to_le_bytes());
            parts[0].extend_from_slice(&n.to_le_bytes());
            for text in &self.strings {
                let mut one = (text.len() as u16).to_le_bytes().to_vec();
                one.push(0);
                one.extend_from_slice(text.as_bytes());
                if parts.last().map_or(0, Vec::len) + one.len() > 8_224 {
                    parts.push(Vec::new());
                }
                parts.last_mut().expect("a part").extend_from_slice(&one);
            }
            for (i, part) in parts.iter().enumerate() {
                record(&mut globals, if i == 0 { 0x00FC } else { 0x003C }, part);
            }
        }
        let bound = |name: &str, hidden: bool, at: u32| {
            let mut data = at.to_le_bytes().to_vec();
            data.extend_from_slice(&[u8::from(hidden), 0, name.len() as u8, 0]);
            data.extend_from_slice(name.as_bytes());
            data
        };
        let names: Vec<(String, bool, usize)> = self
            .sheets
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.clone(), s.hidden, i))
            .chain((0..self.aliases).map(|i| (format!("{i}"), false, 0)))
            .collect();
        let bound_bytes: usize = names.iter().map(|(n, ..)| 4 + 8 + n.len()).sum();
        let mut at = globals.len() + bound_bytes + 4;
        let mut starts = Vec::new();
        for sheet in &self.sheets {
            starts.push(at as u32);
            at += sheet_bytes(sheet).len();
        }
        for (name, hidden, sheet) in &names {
            record(&mut globals, 0x0085, &bound(name, *hidden, starts[*sheet]));
        }
        record(&mut globals, 0x000A, &[]);
        for sheet in &self.sheets {
            globals.extend_from_slice(&sheet_bytes(sheet));
        }
        globals
    }

    /// The workbook in a compound file (version 3, 512-byte sectors, as Excel writes them).
    pub fn file(&self) -> Vec<u8> {
        compound_file(&[("/Workbook", &self.stream())])
    }
}

fn sheet_bytes(sheet: &XlsSheet) -> Vec<u8> {
    let mut out = Vec::new();
    record(&mut out, 0x0809, &bof(0x0010));
    out.extend_from_slice(&sheet.records);
    record(&mut out, 0x000A, &[]);
    out
}

/// A compound file holding `streams`, in order.
pub fn compound_file(streams: &[(&str, &[u8])]) -> Vec<u8> {
    let mut file =
        cfb::CompoundFile::create_with_version(cfb::Version::V3, std::io::Cursor::new(Vec::new()))
            .expect("compound file");
    for (name, bytes) in streams {
        file.create_stream(name)
            .expect("stream")
            .write_all(bytes)
            .expect("write");
    }
    file.flush().expect("flush");
    file.into_inner().into_inner()
}

/// The weld log header of the legacy fixtures: 8 columns the import reads, then 24 kept as
/// attributes.
pub fn weld_log_header() -> Vec<String> {
    let mut header: Vec<String> = [
        "Weld No",
        "Drawing",
        "Weld Type",
        "Size",
        "Welder",
        "Date Welded",
        "X-Ray %",
        "NDE Result",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    header.extend((1..=24).map(|i| format!("Note {i}")));
    header
}

/// A legacy weld log as a real site's Excel writes it: `welds` welds of 32 columns (10 welds a
/// drawing), DIMENSIONS declaring 20,000 rows × 160 columns, 60,000 BLANK records under the log
/// and a MULBLANK of formatting beside each row (5,000 of them) out to column 160. Dates are
/// serial numbers in a General-formatted column (of the 1904 system when `date_1904`).
pub fn legacy_weld_log(welds: u16, date_1904: bool) -> XlsBook {
    let mut book = XlsBook {
        date_1904,
        ..XlsBook::default()
    };
    let mut sheet = XlsSheet::new("Weld Log");
    sheet.dimensions(20_000, 160);
    for (col, text) in weld_log_header().iter().enumerate() {
        let index = book.string(text);
        sheet.shared(0, col as u16, index);
    }
    // 2025-01-15 + row days; serial 45672 in the 1900 system, 44210 in the 1904 system.
    let base = if date_1904 { 44_210.0 } else { 45_672.0 };
    for row in 1..=welds {
        let values = [
            format!("W-{row:05}"),
            format!("P-{:04}", (row - 1) / 10),
            "BW".into(),
            "2".into(),
            format!("K-{:02}", row % 7 + 1),
        ];
        for (col, text) in values.iter().enumerate() {
            let index = book.string(text);
            sheet.shared(row, col as u16, index);
        }
        sheet.number(row, 5, base + f64::from(row % 200));
        sheet.number(row, 6, 0.05);
        let result = book.string("ACC");
        sheet.shared(row, 7, result);
        for col in 8..32 {
            let index = book.string(&format!("n{}", col % 5));
            sheet.shared(row, col, index);
        }
        sheet.blanks(row, 32, 159);
    }
    // Formatting carried down far below the log.
    for row in (welds + 1)..(welds + 15_001) {
        for col in 0..4 {
            sheet.blank(row, col);
        }
    }
    book.sheets.push(sheet);
    book
}

/// A takeoff sheet of `rows` rows (10 supports a drawing) for the legacy hostile files.
pub fn legacy_takeoff(rows: u16, columns: u16) -> XlsSheet {
    let mut sheet = XlsSheet::new("Sheet1");
    for (col, text) in ["DRAWING", "TYPE", "QTY", "CMDTY CODE"].iter().enumerate() {
        sheet.text(0, col as u16, text);
    }
    for col in 4..columns {
        sheet.text(0, col, &format!("EXTRA {col}"));
    }
    for row in 1..=rows {
        for col in 0..columns {
            let text = match col {
                0 => format!("P-{}", row / 100),
                1 => "Support".to_string(),
                2 => "1".to_string(),
                3 => format!("S-{row}"),
                _ => format!("x{col}"),
            };
            sheet.text(row, col, &text);
        }
    }
    sheet
}

/// Directory entries of a version-3 compound file: (offset of the entry, its name).
fn directory_entries(file: &[u8]) -> Vec<(usize, String)> {
    let sector = |n: u32| 512 + n as usize * 512;
    let fat_sector = |n: u32| -> u32 {
        let fat_at = u32::from_le_bytes(file[76..80].try_into().expect("difat"));
        let at = sector(fat_at) + n as usize * 4;
        u32::from_le_bytes(file[at..at + 4].try_into().expect("fat"))
    };
    let mut entries = Vec::new();
    let mut current = u32::from_le_bytes(file[48..52].try_into().expect("directory start"));
    while current < 0xFFFF_FFFA {
        for i in 0..4 {
            let at = sector(current) + i * 128;
            let len = u16::from_le_bytes([file[at + 64], file[at + 65]]) as usize;
            let name: Vec<u16> = file[at..at + len.saturating_sub(2)]
                .chunks(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            entries.push((at, String::from_utf16_lossy(&name)));
        }
        current = fat_sector(current);
    }
    entries
}

/// Crash file 1: a directory entry named `Workbook` that the directory tree does not link to,
/// whose stream declares 65,536 × 4,096 cells, beside the linked `Workbook` holding a small
/// takeoff. A reader that looks entries up by walking the directory finds the orphan.
pub fn orphan_workbook_entry() -> Vec<u8> {
    let mut hostile = XlsBook::default();
    let mut sheet = legacy_takeoff(3, 4);
    sheet.dimensions(65_536, 4_096);
    hostile.sheets.push(sheet);
    let mut good = XlsBook::default();
    good.sheets.push(legacy_takeoff(3, 4));
    let mut file = compound_file(&[
        ("/Aaaaaaaa", &hostile.stream()),
        ("/Workbook", &good.stream()),
    ]);
    let entries = directory_entries(&file);
    let (orphan_at, _) = *entries
        .iter()
        .find(|(_, n)| n == "Aaaaaaaa")
        .expect("the decoy entry");
    let orphan_index = (entries
        .iter()
        .position(|(at, _)| *at == orphan_at)
        .expect("index")) as u32;
    let name: Vec<u8> = "Workbook"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    file[orphan_at..orphan_at + name.len()].copy_from_slice(&name);
    // Unlinked: the link to it now goes to its sibling (the real `Workbook`), so no entry of the
    // tree names it any more.
    let u32_at =
        |file: &[u8], at: usize| u32::from_le_bytes(file[at..at + 4].try_into().expect("u32"));
    let sibling = [68, 72]
        .into_iter()
        .map(|field| u32_at(&file, orphan_at + field))
        .find(|&s| s != 0xFFFF_FFFF)
        .unwrap_or(0xFFFF_FFFF);
    for (at, _) in &entries {
        for field in [68, 72, 76] {
            if u32_at(&file, at + field) == orphan_index {
                file[at + field..at + field + 4].copy_from_slice(&sibling.to_le_bytes());
            }
        }
    }
    file
}

/// Crash file 2: the last FAT entry of the `Workbook` stream's chain points one sector past the
/// end of the file instead of ending the chain, and on round to the start.
pub fn fat_past_the_end() -> Vec<u8> {
    let mut book = XlsBook::default();
    book.sheets.push(legacy_takeoff(200, 4));
    let mut file = book.file();
    let entries = directory_entries(&file);
    let (at, _) = *entries
        .iter()
        .find(|(_, n)| n == "Workbook")
        .expect("the workbook entry");
    let start = u32::from_le_bytes(file[at + 116..at + 120].try_into().expect("start"));
    let fat_at = 512 + u32::from_le_bytes(file[76..80].try_into().expect("difat")) as usize * 512;
    let sectors = ((file.len() - 512) / 512) as u32;
    let mut current = start;
    loop {
        let entry = fat_at + current as usize * 4;
        let next = u32::from_le_bytes(file[entry..entry + 4].try_into().expect("fat"));
        if next == 0xFFFF_FFFE {
            file[entry..entry + 4].copy_from_slice(&sectors.to_le_bytes());
            break;
        }
        current = next;
    }
    // The FAT's entry for that sector, past the file, leads back to the start, and the stream
    // declares 4 GB: a reader that follows the FAT goes round until it has read 4 GB.
    let past = fat_at + sectors as usize * 4;
    file[past..past + 4].copy_from_slice(&start.to_le_bytes());
    file[at + 120..at + 124].copy_from_slice(&0xFFFF_FF00u32.to_le_bytes());
    file
}

/// Values on both sides of an embedded chart substream, spanning A1 to IV65536.
pub fn cells_around_a_substream() -> Vec<u8> {
    let mut book = XlsBook::default();
    let mut sheet = legacy_takeoff(3, 4);
    sheet.chart();
    sheet.text(65_535, 255, "far");
    book.sheets.push(sheet);
    book.file()
}

/// 40 BOUNDSHEET records pointing at one sheet of 31,249 rows × 16 cells (499,984 cells).
pub fn shared_boundsheets() -> Vec<u8> {
    let mut book = XlsBook {
        aliases: 39,
        ..XlsBook::default()
    };
    book.sheets.push(legacy_takeoff(31_249, 16));
    book.file()
}

/// 1,000,000 BOUNDSHEET records (every one a sheet of its own name) pointing at one sheet.
pub fn a_million_sheets() -> Vec<u8> {
    let mut book = XlsBook {
        aliases: 999_999,
        ..XlsBook::default()
    };
    book.sheets.push(legacy_takeoff(3, 4));
    book.file()
}

// ---- .xlsx ----

/// A zip being written in memory.
pub type ZipOut = zip::ZipWriter<std::io::Cursor<Vec<u8>>>;

/// A workbook written by rust_xlsxwriter, then its parts rewritten by `edit` (name, content) and
/// `extra` parts added.
pub fn rewrite_xlsx(
    xlsx: &[u8],
    edit: &dyn Fn(&str, Vec<u8>) -> Vec<u8>,
    extra: &mut dyn FnMut(&mut ZipOut),
) -> Vec<u8> {
    use std::io::Read;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(xlsx)).expect("zip");
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for i in 0..archive.len() {
        let mut part = archive.by_index(i).expect("part");
        let name = part.name().expect("name").to_string();
        let mut content = Vec::new();
        part.read_to_end(&mut content).expect("read");
        out.start_file(name.as_str(), options).expect("start");
        out.write_all(&edit(&name, content)).expect("write");
    }
    extra(&mut out);
    out.finish().expect("finish").into_inner()
}

/// A takeoff workbook as an estimating system exports it: the takeoff sheet, a pivot sheet, and a
/// pivot cache whose records part (`records` bytes of highly repetitive XML) packs far more than
/// 100 times.
pub fn takeoff_with_pivot_cache(rows: u32, records: usize) -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet().set_name("Takeoff").expect("name");
    for (col, h) in ["DRAWING", "TYPE", "QTY", "CMDTY CODE", "SIZE"]
        .iter()
        .enumerate()
    {
        sheet.write(0, col as u16, *h).expect("header");
    }
    for row in 1..=rows {
        sheet
            .write(row, 0, format!("P-{:03}", row / 20))
            .expect("cell");
        sheet.write(row, 1, "Valve").expect("cell");
        sheet.write(row, 2, 1).expect("cell");
        sheet.write(row, 3, format!("VALVE-{row}")).expect("cell");
        sheet.write(row, 4, 2).expect("cell");
    }
    let pivot = book.add_worksheet().set_name("Pivot").expect("name");
    pivot.write(0, 0, "Row Labels").expect("cell");
    pivot.write(0, 1, "Sum of QTY").expect("cell");
    let xlsx = book.save_to_buffer().expect("xlsx");
    let definition = br#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><pivotCacheDefinition xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" r:id="rId1" refreshOnLoad="1"><cacheSource type="worksheet"><worksheetSource ref="A1:E9999" sheet="Takeoff"/></cacheSource><cacheFields count="2"><cacheField name="DRAWING" numFmtId="0"><sharedItems/></cacheField><cacheField name="QTY" numFmtId="0"><sharedItems containsNumber="1"/></cacheField></cacheFields></pivotCacheDefinition>"#;
    let rels = br#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/pivotCacheRecords" Target="pivotCacheRecords1.xml"/></Relationships>"#;
    rewrite_xlsx(
        &xlsx,
        &|name, content| {
            match name {
            "xl/_rels/workbook.xml.rels" => String::from_utf8(content)
                .expect("utf-8")
                .replace("</Relationships>", r#"<Relationship Id="rId99" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/pivotCacheDefinition" Target="pivotCache/pivotCacheDefinition1.xml"/></Relationships>"#)
                .into_bytes(),
            "xl/workbook.xml" => String::from_utf8(content)
                .expect("utf-8")
                .replace("</sheets>", r#"</sheets><pivotCaches><pivotCache cacheId="1" r:id="rId99"/></pivotCaches>"#)
                .into_bytes(),
            _ => content,
        }
        },
        &mut |out| {
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated)
                .compression_level(Some(9));
            out.start_file("xl/pivotCache/pivotCacheDefinition1.xml", options)
                .expect("part");
            out.write_all(definition).expect("write");
            out.start_file(
                "xl/pivotCache/_rels/pivotCacheDefinition1.xml.rels",
                options,
            )
            .expect("part");
            out.write_all(rels).expect("write");
            out.start_file("xl/pivotCache/pivotCacheRecords1.xml", options)
                .expect("part");
            out.write_all(br#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><pivotCacheRecords xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">"#)
                .expect("write");
            let one = br#"<r><x v="0"/><n v="1"/></r>"#;
            for _ in 0..records / one.len() {
                out.write_all(one).expect("write");
            }
            out.write_all(b"</pivotCacheRecords>").expect("write");
        },
    )
}

/// The packed and unpacked sizes of a part of a zip.
pub fn part_sizes(xlsx: &[u8], name: &str) -> (u64, u64) {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(xlsx)).expect("zip");
    let part = archive.by_name(name).expect("part");
    (part.compressed_size(), part.size())
}

/// Two sheets with the same header: the first an old revision, hidden; the second the current
/// one.
pub fn hidden_first_sheet() -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    for (name, hidden, tag) in [("Rev A", true, "OLD"), ("Rev B", false, "NEW")] {
        let sheet = book.add_worksheet().set_name(name).expect("name");
        for (col, h) in ["DRAWING", "TYPE", "QTY", "CMDTY CODE", "SIZE"]
            .iter()
            .enumerate()
        {
            sheet.write(0, col as u16, *h).expect("header");
        }
        for row in 1..=3u32 {
            sheet.write(row, 0, "P-1").expect("cell");
            sheet.write(row, 1, "Valve").expect("cell");
            sheet.write(row, 2, 1).expect("cell");
            sheet.write(row, 3, format!("{tag}-{row}")).expect("cell");
            sheet.write(row, 4, 2).expect("cell");
        }
        if hidden {
            sheet.set_hidden(true);
        } else {
            sheet.set_active(true);
        }
    }
    book.save_to_buffer().expect("xlsx")
}

/// A field-weld workbook in the 1904 date system whose date column holds General-formatted serial
/// numbers (44210 = 2025-01-15 in the 1904 system, 2021-01-14 in the 1900 one).
pub fn general_serials_1904() -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (col, h) in ["WELD ID", "DRAWING", "DATE WELDED"].iter().enumerate() {
        sheet.write(0, col as u16, *h).expect("header");
    }
    sheet.write(1, 0, "W-1").expect("cell");
    sheet.write(1, 1, "P-1").expect("cell");
    sheet.write_number(1, 2, 44_210.0).expect("cell");
    let xlsx = book.save_to_buffer().expect("xlsx");
    rewrite_xlsx(
        &xlsx,
        &|name, content| {
            if name != "xl/workbook.xml" {
                return content;
            }
            let text = String::from_utf8(content).expect("utf-8");
            let text = if text.contains("<workbookPr") {
                text.replacen("<workbookPr", r#"<workbookPr date1904="1""#, 1)
            } else {
                text.replacen("<sheets>", r#"<workbookPr date1904="1"/><sheets>"#, 1)
            };
            text.into_bytes()
        },
        &mut |_| {},
    )
}

/// A takeoff printed as a report: a units row under the header, and the header again every 4
/// rows.
pub fn report_with_repeated_headers() -> Vec<u8> {
    let mut text = String::from("DRAWING,TYPE,QTY,CMDTY CODE,SIZE\n,,(EA),,(in)\n");
    for row in 1..=12 {
        text.push_str(&format!("P-1,Valve,1,V-{row},2\n"));
        if row % 4 == 0 && row < 12 {
            text.push_str("DRAWING,TYPE,QTY,CMDTY CODE,SIZE\n");
        }
    }
    text.into_bytes()
}

/// A PDF and a PNG, as a user might upload them renamed `.xlsx`.
pub fn pdf() -> Vec<u8> {
    b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n".to_vec()
}

pub fn png() -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    png.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0]);
    png
}
