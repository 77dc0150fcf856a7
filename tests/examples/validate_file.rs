//! Times the Rust half of an import validation (read, map, validate every row) on a file, without
//! a database: the floor under `import_validate`. Usage:
//! cargo run --release --example validate_file -- FILE [takeoff|field_welds]

use pipetrak::domain::import::validate::validate_file;
use pipetrak::domain::import::Kind;
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .expect("usage: validate_file FILE [takeoff|field_welds]");
    let kind = Kind::parse(&args.next().unwrap_or_else(|| "takeoff".into()))
        .expect("kind: takeoff or field_welds");
    let bytes = std::fs::read(&path).expect("readable file");
    let today = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).expect("a date");
    let started = Instant::now();
    let mut rows = 0usize;
    let outcome = validate_file(&bytes, kind, today, &mut |_row| rows += 1);
    println!(
        "{path}: {rows} rows in {:.1} ms; {:?}",
        started.elapsed().as_secs_f64() * 1000.0,
        outcome.counts
    );
}
