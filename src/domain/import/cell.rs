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
        if text.as_bytes().contains(&0) {
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

/// The date system of a workbook's serial numbers: 1900 (Windows Excel, every CSV) or 1904 (a
/// workbook saved with "Use 1904 date system", as old Mac Excel did).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DateSystem {
    #[default]
    Excel1900,
    Excel1904,
}

impl DateSystem {
    /// The date of serial number `serial` in this system.
    pub fn date(self, serial: f64) -> Option<NaiveDate> {
        match self {
            DateSystem::Excel1900 => excel_serial_date(serial),
            DateSystem::Excel1904 => {
                if !(0.0..2_957_004.0).contains(&serial) {
                    return None;
                }
                NaiveDate::from_ymd_opt(1904, 1, 1)?
                    .checked_add_signed(chrono::Duration::days(serial.floor() as i64))
            }
        }
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

/// Which comes first in a numeric date: `03/04/2025` is March 4 month-first, April 3 day-first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateOrder {
    MonthFirst,
    DayFirst,
}

/// How a cell reads as a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateReading {
    Exact(NaiveDate),
    /// Day and month could be either way round and the file has not shown which: `used` is
    /// month-first.
    Ambiguous {
        used: NaiveDate,
        other: NaiveDate,
    },
}

impl DateReading {
    pub fn value(self) -> NaiveDate {
        match self {
            DateReading::Exact(d) | DateReading::Ambiguous { used: d, .. } => d,
        }
    }
}

/// `d/m/y`, `d.m.y` or `d-m-y` with one- or two-digit day and month: (first, second, year).
fn numeric_date(text: &str) -> Option<(u32, u32, i32)> {
    let parts: Vec<&str> = text.split(['/', '.', '-']).collect();
    let [first, second, year] = parts.as_slice() else {
        return None;
    };
    let small = |p: &str| (1..=2).contains(&p.len()) && p.chars().all(|c| c.is_ascii_digit());
    if !small(first) || !small(second) || !year.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let year: i32 = match year.len() {
        4 => year.parse().ok()?,
        // Two-digit years are this century's, as Excel reads them up to 29.
        2 => 2000 + year.parse::<i32>().ok()?,
        _ => return None,
    };
    Some((first.parse().ok()?, second.parse().ok()?, year))
}

/// The order a date written as text shows, when only one reading is a real date (`13/04/2025`
/// is day-first, `04/13/2025` month-first).
pub fn date_order_shown(text: &str) -> Option<DateOrder> {
    let (first, second, year) = numeric_date(text.trim().split(['T', ' ']).next()?)?;
    let month_first = NaiveDate::from_ymd_opt(year, first, second).is_some();
    let day_first = NaiveDate::from_ymd_opt(year, second, first).is_some();
    match (month_first, day_first) {
        (true, false) => Some(DateOrder::MonthFirst),
        (false, true) => Some(DateOrder::DayFirst),
        _ => None,
    }
}

/// A date from a cell: an Excel date, a serial number, or text in ISO (2025-01-15), numeric
/// (1/15/2025, 15.01.2025: read in `order`, ambiguous when it is `None` and both readings are
/// dates) or day-month-name (15-Jan-2025) form. A serial number (a General-formatted cell, or one
/// written as text) counts in the workbook's date `system`.
pub fn read_date(cell: &Cell, order: Option<DateOrder>, system: DateSystem) -> Option<DateReading> {
    match cell {
        Cell::Date(d) => Some(DateReading::Exact(*d)),
        Cell::Number(n) => system.date(*n).map(DateReading::Exact),
        Cell::Text(t) => {
            // A schedule marks a constrained date with `*` (Primavera P6: `01-Mar-26*`) and an
            // actual one with a trailing ` A`, which the split below drops.
            let t = t.trim().trim_end_matches('*').trim_end();
            let date_part = t.split(['T', ' ']).next().unwrap_or(t);
            if let Some((first, second, year)) = numeric_date(date_part) {
                let month_first = NaiveDate::from_ymd_opt(year, first, second);
                let day_first = NaiveDate::from_ymd_opt(year, second, first);
                return match (month_first, day_first, order) {
                    (Some(m), Some(d), _) if m == d => Some(DateReading::Exact(m)),
                    (Some(m), Some(_), Some(DateOrder::MonthFirst)) => Some(DateReading::Exact(m)),
                    (Some(_), Some(d), Some(DateOrder::DayFirst)) => Some(DateReading::Exact(d)),
                    (Some(m), Some(d), None) => Some(DateReading::Ambiguous { used: m, other: d }),
                    (Some(m), None, _) => Some(DateReading::Exact(m)),
                    (None, Some(d), _) => Some(DateReading::Exact(d)),
                    (None, None, _) => None,
                };
            }
            // Two-digit years first: chrono's %Y takes `26` as the year 26.
            ["%Y-%m-%d", "%Y/%m/%d", "%d-%b-%y", "%d-%b-%Y"]
                .iter()
                .find_map(|f| NaiveDate::parse_from_str(date_part, f).ok())
                .or_else(|| t.parse::<f64>().ok().and_then(|n| system.date(n)))
                .map(DateReading::Exact)
        }
        _ => None,
    }
}

/// A date from a cell, numeric forms read month-first (see `read_date`).
pub fn date(cell: &Cell) -> Option<NaiveDate> {
    read_date(cell, Some(DateOrder::MonthFirst), DateSystem::Excel1900).map(DateReading::value)
}

/// What makes a spreadsheet read a cell as a formula (OWASP's list for CSV injection).
fn starts_a_formula(c: char) -> bool {
    matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r')
}

/// A cell as the report writes it: one that Excel would run as a formula gets a leading `'`, and
/// so does one that already starts with `'` before such a character or another `'`, so that
/// `restore_formula` gives every cell back exactly (a remediation report writes its cells this
/// way; reading one back in restores them).
pub fn neutralize_formula(cell: &str) -> std::borrow::Cow<'_, str> {
    let mut chars = cell.chars();
    let escape = match chars.next() {
        Some(c) if starts_a_formula(c) => true,
        Some('\'') => chars
            .next()
            .is_some_and(|c| c == '\'' || starts_a_formula(c)),
        _ => false,
    };
    if escape {
        format!("'{cell}").into()
    } else {
        cell.into()
    }
}

/// The cell `neutralize_formula` was given (applied to cells of a report read back in).
pub fn restore_formula(cell: &str) -> Option<&str> {
    let rest = cell.strip_prefix('\'')?;
    rest.chars()
        .next()
        .filter(|&c| c == '\'' || starts_a_formula(c))
        .map(|_| rest)
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
    fn serial_dates_of_a_1904_workbook_count_from_1904() {
        // 2025-01-15 is serial 45672 in the 1900 system and 44210 in the 1904 system.
        let date = NaiveDate::from_ymd_opt(2025, 1, 15);
        assert_eq!(DateSystem::Excel1904.date(44_210.0), date);
        assert_eq!(
            read_date(&Cell::Number(44_210.0), None, DateSystem::Excel1904).map(DateReading::value),
            date
        );
        assert_eq!(
            read_date(&Cell::Text("44210".into()), None, DateSystem::Excel1904)
                .map(DateReading::value),
            date
        );
        assert_eq!(
            DateSystem::Excel1904.date(0.0),
            NaiveDate::from_ymd_opt(1904, 1, 1)
        );
    }

    #[test]
    fn text_dates_in_common_forms() {
        let d = NaiveDate::from_ymd_opt(2025, 1, 15);
        for t in [
            "2025-01-15",
            "2025/01/15",
            "1/15/2025",
            "15-Jan-2025",
            // Two-digit years, and a schedule's constrained (`*`) and actual (` A`) marks.
            "15-Jan-25",
            "15-Jan-25 08:00 A",
            "15-Jan-25*",
            "2025-01-15T00:00:00",
            "45672",
        ] {
            assert_eq!(date(&Cell::Text(t.into())), d, "{t}");
        }
        assert_eq!(date(&Cell::Text("yesterday".into())), None);
        assert_eq!(date(&Cell::Text("2025-02-30".into())), None);
    }

    #[test]
    fn day_first_dates_are_read_by_the_files_order_or_reported() {
        let ymd = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("date");
        let text = |t: &str| Cell::Text(t.into());
        assert_eq!(
            read_date(&text("03/04/2025"), None, DateSystem::Excel1900),
            Some(DateReading::Ambiguous {
                used: ymd(2025, 3, 4),
                other: ymd(2025, 4, 3)
            })
        );
        assert_eq!(
            read_date(
                &text("03/04/2025"),
                Some(DateOrder::DayFirst),
                DateSystem::Excel1900
            ),
            Some(DateReading::Exact(ymd(2025, 4, 3)))
        );
        assert_eq!(
            read_date(&text("13.04.2025"), None, DateSystem::Excel1900),
            Some(DateReading::Exact(ymd(2025, 4, 13)))
        );
        assert_eq!(
            read_date(&text("04/04/25"), None, DateSystem::Excel1900),
            Some(DateReading::Exact(ymd(2025, 4, 4)))
        );
        assert_eq!(date_order_shown("13/04/2025"), Some(DateOrder::DayFirst));
        assert_eq!(date_order_shown("04/13/2025"), Some(DateOrder::MonthFirst));
        assert_eq!(date_order_shown("03/04/2025"), None);
        assert_eq!(
            read_date(&text("13/13/2025"), None, DateSystem::Excel1900),
            None
        );
    }
}
