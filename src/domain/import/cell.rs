//! One spreadsheet cell as the importer sees it: CSV gives text, Excel gives typed values.

use chrono::NaiveDate;

#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    Number(f64),
    Bool(bool),
    Date(NaiveDate),
    /// A formula error such as `#N/A`.
    Error(String),
}

impl Cell {
    /// A text cell as read from a file. PostgreSQL text can't hold NUL, so NUL characters (a
    /// stray byte in a CSV, `_x0000_` in a workbook) are dropped here, before any use.
    pub fn from_text(text: &str) -> Cell {
        if text.contains('\0') {
            Cell::Text(text.replace('\0', ""))
        } else {
            Cell::Text(text.to_string())
        }
    }

    pub fn is_blank(&self) -> bool {
        match self {
            Cell::Empty => true,
            Cell::Text(t) => t.trim().is_empty(),
            _ => false,
        }
    }

    /// The cell as the user sees it in Excel: integers without `.0`, booleans as TRUE/FALSE,
    /// dates as ISO dates.
    pub fn text(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(t) => t.trim().to_string(),
            Cell::Number(n) => number_text(*n),
            Cell::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
            Cell::Date(d) => d.format("%Y-%m-%d").to_string(),
            Cell::Error(e) => e.clone(),
        }
    }

    /// The cell's number, if it is one or is text that reads as one (`1,234.5` does too).
    pub fn number(&self) -> Option<f64> {
        match self {
            Cell::Number(n) if n.is_finite() => Some(*n),
            Cell::Text(t) => t
                .trim()
                .replace(',', "")
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite()),
            _ => None,
        }
    }
}

/// Integers print without a fraction; other numbers as the shortest decimal that reads back.
pub fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// An Excel serial date in the 1900 date system (day 60 is Excel's phantom 1900-02-29).
pub fn excel_serial_date(serial: f64) -> Option<NaiveDate> {
    if !(1.0..2_958_466.0).contains(&serial) {
        return None;
    }
    let days = serial.floor() as i64;
    let epoch = NaiveDate::from_ymd_opt(1899, 12, 30)?;
    // Serials before 1900-03-01 are off by one because Excel counts a 1900-02-29.
    let days = if days < 61 { days + 1 } else { days };
    epoch.checked_add_signed(chrono::Duration::days(days))
}

/// A date from a cell: an Excel date, a serial number, or text in ISO (2025-01-15), US
/// (1/15/2025) or day-month-name (15-Jan-2025) form.
pub fn date(cell: &Cell) -> Option<NaiveDate> {
    match cell {
        Cell::Date(d) => Some(*d),
        Cell::Number(n) => excel_serial_date(*n),
        Cell::Text(t) => {
            let t = t.trim();
            let date_part = t.split(['T', ' ']).next().unwrap_or(t);
            ["%Y-%m-%d", "%Y/%m/%d", "%m/%d/%Y", "%d-%b-%Y", "%d-%b-%y"]
                .iter()
                .find_map(|f| NaiveDate::parse_from_str(date_part, f).ok())
                .or_else(|| t.parse::<f64>().ok().and_then(excel_serial_date))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_as_excel_shows_them() {
        assert_eq!(Cell::Number(1.0).text(), "1");
        assert_eq!(Cell::Number(0.05).text(), "0.05");
        assert_eq!(Cell::Bool(true).text(), "TRUE");
        assert_eq!(Cell::Text(" P-1 ".into()).text(), "P-1");
    }

    #[test]
    fn text_cells_never_hold_nul() {
        assert_eq!(Cell::from_text("P-\u{0}1"), Cell::Text("P-1".into()));
    }

    #[test]
    fn serial_dates_follow_the_1900_system() {
        assert_eq!(
            excel_serial_date(45672.0),
            NaiveDate::from_ymd_opt(2025, 1, 15)
        );
        assert_eq!(excel_serial_date(1.0), NaiveDate::from_ymd_opt(1900, 1, 1));
        assert_eq!(excel_serial_date(61.0), NaiveDate::from_ymd_opt(1900, 3, 1));
        assert_eq!(excel_serial_date(-3.0), None);
    }

    #[test]
    fn text_dates_in_common_forms() {
        let d = NaiveDate::from_ymd_opt(2025, 1, 15);
        for t in [
            "2025-01-15",
            "2025/01/15",
            "1/15/2025",
            "15-Jan-2025",
            "2025-01-15T00:00:00",
            "45672",
        ] {
            assert_eq!(date(&Cell::Text(t.into())), d, "{t}");
        }
        assert_eq!(date(&Cell::Text("yesterday".into())), None);
        assert_eq!(date(&Cell::Text("2025-02-30".into())), None);
    }
}
