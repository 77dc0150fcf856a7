//! Writes a synthetic takeoff of N rows as CSV and .xlsx (same rows) for the import benchmark:
//! 20 rows to a drawing, a realistic mix of counted items (QTY 1–4), pipe footage, spools and
//! instruments, with areas and systems.
//! Usage: cargo run --release --example generate_takeoff -- ROWS OUT_DIR

use rust_xlsxwriter::Workbook;
use std::io::Write;

const HEADER: [&str; 10] = [
    "DRAWING",
    "TYPE",
    "QTY",
    "CMDTY CODE",
    "SIZE",
    "SPEC",
    "DESCRIPTION",
    "COMMENTS",
    "AREA",
    "SYSTEM",
];

fn row(i: u64) -> [String; 10] {
    let drawing = format!(
        "P-{:05}_{} {:02}of04",
        i / 80,
        (i / 20) % 4 + 1,
        (i / 20) % 4 + 1
    );
    let (kind, qty, code) = match i % 10 {
        0 => ("Spool", "1".to_string(), format!("SP-{i}")),
        1 => (
            "Pipe",
            format!("{}.5", i % 40 + 1),
            format!("PIPE-CS-{}", i % 3),
        ),
        2 => ("Instrument", "1".to_string(), format!("FT-{i}")),
        3 => ("Valve", format!("{}", i % 4 + 1), format!("VGA{}", i % 50)),
        4 => ("Gasket", format!("{}", i % 4 + 1), format!("GSK{}", i % 30)),
        5 => (
            "Stud Bolt",
            format!("{}", i % 4 + 1),
            format!("BLT{}", i % 30),
        ),
        6 => ("Support", "1".to_string(), format!("SUP{}", i % 40)),
        7 => ("Flange", format!("{}", i % 2 + 1), format!("FLG{}", i % 30)),
        8 => (
            "Fitting",
            format!("{}", i % 3 + 1),
            format!("ELL{}", i % 60),
        ),
        _ => ("Field Weld", "1".to_string(), format!("W-{i}")),
    };
    let size = ["2\"", "3/4", "1 1/2\"", "6", "2X1"][(i % 5) as usize].to_string();
    [
        drawing,
        kind.to_string(),
        qty,
        code,
        size,
        format!("HC-{:02}", i % 7),
        format!("{kind} item {i}"),
        if i.is_multiple_of(3) {
            format!("height {} mm", i % 900)
        } else {
            String::new()
        },
        format!("Area {}", i % 12),
        format!("System {}", i % 25),
    ]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let rows: u64 = args.next().ok_or("ROWS")?.parse()?;
    let dir = std::path::PathBuf::from(args.next().ok_or("OUT_DIR")?);
    std::fs::create_dir_all(&dir)?;

    let mut csv = csv::Writer::from_writer(std::io::BufWriter::new(std::fs::File::create(
        dir.join(format!("takeoff-{rows}.csv")),
    )?));
    csv.write_record(HEADER)?;
    let mut book = Workbook::new();
    let sheet = book.add_worksheet().set_name("Material Takeoff")?;
    for (col, h) in HEADER.iter().enumerate() {
        sheet.write(0, col as u16, *h)?;
    }
    for i in 0..rows {
        let r = row(i);
        csv.write_record(&r)?;
        for (col, value) in r.iter().enumerate() {
            // Quantities as numbers, the way Excel stores typed cells.
            match (col, value.parse::<f64>()) {
                (2, Ok(n)) => sheet.write(i as u32 + 1, col as u16, n)?,
                _ => sheet.write(i as u32 + 1, col as u16, value.as_str())?,
            };
        }
    }
    csv.flush()?;
    book.save(dir.join(format!("takeoff-{rows}.xlsx")))?;
    writeln!(std::io::stdout(), "wrote {rows} rows to {}", dir.display())?;
    Ok(())
}
