//! Numbers written as text, in either locale: `1,250.5` (decimal point) and `1.250,5` (decimal
//! comma). A file's decimal mark is decided once (`Layout::decimal`): a `;`-separated CSV is what
//! Excel writes where the comma is the decimal mark, a `,`-separated one where the point is; other
//! files decide from numbers that can be read only one way (`decimal_mark_shown`). Only one form
//! reads two ways — one separator followed by exactly three digits after one to three digits
//! (`1,250`, `1.250`) — and it is read by the file's mark; where the file has none, it is an
//! ambiguity the caller reports with both readings, never a silent guess.

/// Which character separates a number's decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecimalMark {
    Point,
    Comma,
}

impl DecimalMark {
    pub fn char(self) -> char {
        match self {
            DecimalMark::Point => '.',
            DecimalMark::Comma => ',',
        }
    }

    fn other(self) -> DecimalMark {
        match self {
            DecimalMark::Point => DecimalMark::Comma,
            DecimalMark::Comma => DecimalMark::Point,
        }
    }

    fn of(c: char) -> DecimalMark {
        if c == ',' {
            DecimalMark::Comma
        } else {
            DecimalMark::Point
        }
    }
}

/// How a text reads as a number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reading {
    Exact(f64),
    /// Two readings and no way to choose in this file: `used` is the decimal-point reading.
    Ambiguous {
        used: f64,
        other: f64,
    },
}

impl Reading {
    pub fn value(self) -> f64 {
        match self {
            Reading::Exact(n) | Reading::Ambiguous { used: n, .. } => n,
        }
    }
}

/// Spaces that group thousands (`1 250,5`, `1 250.5`).
fn is_group_space(c: char) -> bool {
    matches!(c, ' ' | '\u{a0}' | '\u{202f}' | '\u{2009}')
}

/// Digits grouped by `separator` in threes after a first group of one to three digits; the digits.
fn grouped(text: &str, separator: char) -> Option<String> {
    let mut groups = text.split(separator);
    let first = groups.next()?;
    if first.is_empty() || first.len() > 3 || !first.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut digits = first.to_string();
    for group in groups {
        if group.len() != 3 || !group.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        digits.push_str(group);
    }
    Some(digits)
}

/// Whole digits, grouped by spaces or not.
fn whole_digits(text: &str) -> Option<String> {
    if text.chars().all(|c| c.is_ascii_digit()) {
        return Some(text.to_string());
    }
    let spaced: String = text
        .chars()
        .map(|c| if is_group_space(c) { ' ' } else { c })
        .collect();
    grouped(&spaced, ' ')
}

fn number(negative: bool, whole: &str, fraction: &str) -> Option<f64> {
    let whole = if whole.is_empty() { "0" } else { whole };
    let n: f64 = format!("{whole}.{fraction}0").parse().ok()?;
    n.is_finite().then_some(if negative { -n } else { n })
}

/// Reads `text` in a file whose decimal mark is `decimal` (`None`: not decided). `None` when
/// the text is not a number.
pub fn read(text: &str, decimal: Option<DecimalMark>) -> Option<Reading> {
    let text = text.trim();
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if body.is_empty() {
        return None;
    }
    // Scientific notation (`1.5E3`) is read as Rust reads it, in the decimal-point form only.
    if body.contains(['e', 'E']) {
        let n: f64 = body.parse().ok()?;
        return n
            .is_finite()
            .then_some(Reading::Exact(if negative { -n } else { n }));
    }
    if !body
        .chars()
        .all(|c| c.is_ascii_digit() || c == '.' || c == ',' || is_group_space(c))
    {
        return None;
    }
    let points = body.matches('.').count();
    let commas = body.matches(',').count();
    let exact = |whole: &str, fraction: &str| number(negative, whole, fraction).map(Reading::Exact);
    match (points, commas) {
        (0, 0) => exact(&whole_digits(body)?, ""),
        // Both marks: the last one is the decimal mark and the other groups thousands.
        (p, c) if p > 0 && c > 0 => {
            let at = body.rfind(['.', ','])?;
            let mark = body[at..].chars().next()?;
            let (whole, fraction) = (&body[..at], &body[at + 1..]);
            if body.matches(mark).count() != 1 || !fraction.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let thousands = DecimalMark::of(mark).other().char();
            exact(&grouped(whole, thousands)?, fraction)
        }
        // One mark, several times: it groups thousands.
        (p, c) if p > 1 || c > 1 => {
            let mark = if p > 1 { '.' } else { ',' };
            exact(&grouped(body, mark)?, "")
        }
        _ => {
            let mark = if points == 1 { '.' } else { ',' };
            let (whole, fraction) = body.split_once(mark)?;
            if !fraction.chars().all(|c| c.is_ascii_digit())
                || (whole.is_empty() && fraction.is_empty())
            {
                return None;
            }
            let whole_digits = if whole.is_empty() {
                String::new()
            } else {
                whole_digits(whole)?
            };
            let as_decimal = number(negative, &whole_digits, fraction)?;
            // Read as thousands only with 1–3 whole digits not starting with 0 and 3 after.
            let could_group = fraction.len() == 3
                && (1..=3).contains(&whole.len())
                && whole.chars().all(|c| c.is_ascii_digit())
                && !whole.starts_with('0');
            if !could_group {
                return Some(Reading::Exact(as_decimal));
            }
            let as_thousands = number(negative, &format!("{whole}{fraction}"), "")?;
            Some(match decimal {
                Some(d) if d == DecimalMark::of(mark) => Reading::Exact(as_decimal),
                Some(_) => Reading::Exact(as_thousands),
                None if mark == '.' => Reading::Ambiguous {
                    used: as_decimal,
                    other: as_thousands,
                },
                None => Reading::Ambiguous {
                    used: as_thousands,
                    other: as_decimal,
                },
            })
        }
    }
}

/// The decimal mark a number shows, when it can be read only one way: `12,5` and `1.250,5` show
/// the comma, `12.5` and `1,250.5` the point, `1,250,000` the point (commas group). `None` for
/// integers, for `1,250` or `1.250`, and for what is not a number.
pub fn decimal_mark_shown(text: &str) -> Option<DecimalMark> {
    let text = text.trim();
    let body = text.trim_start_matches(['-', '+']);
    if body.is_empty()
        || !body
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == ',')
    {
        return None;
    }
    let points = body.matches('.').count();
    let commas = body.matches(',').count();
    // Readable in a file of unknown locale without ambiguity, and readable with a mark.
    match read(text, None)? {
        Reading::Ambiguous { .. } => None,
        Reading::Exact(_) => match (points, commas) {
            (0, 0) => None,
            (p, c) if p > 0 && c > 0 => body
                .rfind(['.', ','])
                .map(|at| DecimalMark::of(body[at..].chars().next().unwrap_or('.'))),
            (p, 0) if p > 1 => Some(DecimalMark::Comma),
            (0, c) if c > 1 => Some(DecimalMark::Point),
            (1, 0) => Some(DecimalMark::Point),
            _ => Some(DecimalMark::Comma),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn exact(text: &str, decimal: Option<DecimalMark>) -> Option<f64> {
        match read(text, decimal)? {
            Reading::Exact(n) => Some(n),
            Reading::Ambiguous { .. } => None,
        }
    }

    #[test]
    fn decimal_commas_and_thousands_in_both_locales() {
        let eu = Some(DecimalMark::Comma);
        let us = Some(DecimalMark::Point);
        assert_eq!(exact("12,5", eu), Some(12.5));
        assert_eq!(exact("0,75", eu), Some(0.75));
        assert_eq!(exact("1.250,5", eu), Some(1250.5));
        assert_eq!(exact("1.250,5", us), Some(1250.5));
        assert_eq!(exact("1,250.5", eu), Some(1250.5));
        assert_eq!(exact("1,250", eu), Some(1.25));
        assert_eq!(exact("1.250", eu), Some(1250.0));
        assert_eq!(exact("1,250", us), Some(1250.0));
        assert_eq!(exact("1 250,5", eu), Some(1250.5));
        assert_eq!(exact("1.250.000", eu), Some(1_250_000.0));
        assert_eq!(exact("-3,5", eu), Some(-3.5));
        assert_eq!(exact("12,5", None), Some(12.5));
        assert_eq!(
            read("1,250", None),
            Some(Reading::Ambiguous {
                used: 1250.0,
                other: 1.25
            })
        );
        assert_eq!(
            read("1.250", None),
            Some(Reading::Ambiguous {
                used: 1.25,
                other: 1250.0
            })
        );
        for bad in ["", "abc", "1,2,3", "1.2.3,4,5", "1..2", "12a", "1,25,0.5"] {
            assert_eq!(read(bad, None), None, "{bad:?}");
        }
    }

    #[test]
    fn only_unambiguous_numbers_show_a_decimal_mark() {
        assert_eq!(decimal_mark_shown("12,5"), Some(DecimalMark::Comma));
        assert_eq!(decimal_mark_shown("1.250,5"), Some(DecimalMark::Comma));
        assert_eq!(decimal_mark_shown("12.5"), Some(DecimalMark::Point));
        assert_eq!(decimal_mark_shown("1,250,000"), Some(DecimalMark::Point));
        assert_eq!(decimal_mark_shown("1,250"), None);
        assert_eq!(decimal_mark_shown("1250"), None);
        assert_eq!(decimal_mark_shown("P-12.5"), None);
    }

    /// A number as a locale prints it: two decimals at most, thousands grouped or not.
    fn printed(cents: i64, decimals: usize, mark: DecimalMark, group: bool) -> String {
        let sign = if cents < 0 { "-" } else { "" };
        let cents = cents.unsigned_abs();
        let whole = (cents / 100).to_string();
        let whole = if group {
            let thousands = mark.other().char();
            let digits: Vec<char> = whole.chars().collect();
            let mut out = String::new();
            for (i, c) in digits.iter().enumerate() {
                if i > 0 && (digits.len() - i).is_multiple_of(3) {
                    out.push(thousands);
                }
                out.push(*c);
            }
            out
        } else {
            whole
        };
        let fraction = format!("{:02}", cents % 100);
        match decimals {
            0 => format!("{sign}{whole}"),
            d => format!(
                "{sign}{whole}{}{}",
                mark.char(),
                &format!("{fraction}0")[..d]
            ),
        }
    }

    proptest! {
        /// Printed in either locale and read in a file of that locale, or of none decided: the
        /// same number, or an ambiguity that names it — never a different number.
        #[test]
        fn numbers_read_back_exactly_or_are_reported_ambiguous(
            cents in -10_000_000_000i64..10_000_000_000,
            decimals in 0usize..=3,
            comma in any::<bool>(),
            group in any::<bool>(),
            decided in any::<bool>(),
        ) {
            let mark = if comma { DecimalMark::Comma } else { DecimalMark::Point };
            // With no decimals printed, the number is whole.
            let cents = if decimals == 0 { cents / 100 * 100 } else if decimals == 1 { cents / 10 * 10 } else { cents };
            let text = printed(cents, decimals, mark, group);
            let expected = cents as f64 / 100.0;
            let reading = read(&text, decided.then_some(mark));
            match reading {
                Some(Reading::Exact(n)) => prop_assert_eq!(n, expected, "{}", text),
                Some(Reading::Ambiguous { used, other }) => {
                    prop_assert!(!decided, "{} is ambiguous in a file of its own locale", text);
                    prop_assert!(used == expected || other == expected, "{}: {} / {}", text, used, other);
                }
                None => prop_assert!(false, "{} does not read", text),
            }
        }
    }
}
