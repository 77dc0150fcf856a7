//! Normalization of drawing numbers, sizes, commodity codes and welder stencils (spec §3, §4, §7).

use regex::Regex;
use std::borrow::Cow;
use std::sync::OnceLock;

/// Trim, uppercase and collapse every run of whitespace to one space.
pub fn collapse_upper(raw: &str) -> String {
    raw.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase()
}

/// Commodity codes (and spool ids, weld numbers, tags) compare after trim, uppercase, whitespace collapse.
pub fn commodity_code(raw: &str) -> String {
    collapse_upper(raw)
}

/// A regex from a pattern written in this file. Each is compiled by the unit tests, so the one
/// `expect` of the library is never reached by anything a user sends.
#[allow(clippy::expect_used)]
fn static_regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("a pattern of this file compiles")
}

fn sheet_suffix() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    // A trailing sheet suffix: `01of28`, `1 OF 28`, `SH 1 OF 2`, `SHT. 1 OF 2`, `SHEET 1 OF 2` or
    // `(01of02)`, set off from the number by whitespace or an opening parenthesis.
    RE.get_or_init(|| {
        static_regex(
            r"^(.*?\S)(?:\s+|\s*\(\s*)(?:SH(?:EET|T)?\.?\s*)?0*(\d+)\s*OF\s*0*(\d+)\s*\)?$",
        )
    })
}

/// The text with the look-alikes spreadsheets and keyboards produce folded to plain ASCII:
/// Unicode dashes and minus signs to `-`, full-width forms to ASCII, and every kind of space
/// (non-breaking, ideographic, …) to a plain space.
pub fn fold_lookalikes(raw: &str) -> Cow<'_, str> {
    // Plain ASCII without tabs or line breaks, as most cells are, has nothing to fold.
    if raw.is_ascii() && !raw.bytes().any(|b| b.is_ascii_whitespace() && b != b' ') {
        return Cow::Borrowed(raw);
    }
    raw.chars()
        .map(|c| match c {
            '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{FE58}' | '\u{FE63}' | '\u{FF0D}' => '-',
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            c if c.is_whitespace() => ' ',
            c => c,
        })
        .collect::<String>()
        .into()
}

fn spaced_hyphen() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| static_regex(r"\s*-\s*"))
}

/// The key two spellings of one drawing share: look-alike characters folded, case and runs of
/// spaces ignored, no spaces around a hyphen, and the sheet suffix in one form — `P-94011_3
/// 01of28`, `p‐94011_3 SH 1 OF 28` and `P - 94011_3 (1of28)` all become `P-94011_3 1 OF 28`.
pub fn drawing_key(raw: &str) -> String {
    let collapsed = collapse_upper(&fold_lookalikes(raw));
    let collapsed = if collapsed.contains(" -") || collapsed.contains("- ") {
        spaced_hyphen().replace_all(&collapsed, "-").into_owned()
    } else {
        collapsed
    };
    match sheet_suffix().captures(&collapsed) {
        Some(c) => format!("{} {} OF {}", &c[1], &c[2], &c[3]),
        None => collapsed,
    }
}

/// A key that sorts text in natural order: each run of digits is left-padded to 20 digits, so
/// `ISO-2` comes before `ISO-10` (drawing lists in reports).
pub fn natural_key(raw: &str) -> String {
    let mut key = String::with_capacity(raw.len() + 16);
    let mut digits = String::new();
    for c in raw.chars().chain(std::iter::once('\u{0}')) {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        if !digits.is_empty() {
            let trimmed = digits.trim_start_matches('0');
            for _ in trimmed.len()..20 {
                key.push('0');
            }
            key.push_str(trimmed);
            digits.clear();
        }
        if c != '\u{0}' {
            key.push(c);
        }
    }
    key
}

/// What is left of a drawing key when every character but letters and digits is dropped: two
/// different keys that share it look alike (`P-26B07` and `P26B07`).
pub fn drawing_lookalike(key: &str) -> String {
    key.chars().filter(|c| c.is_alphanumeric()).collect()
}

/// A normalized size: `parsed` is false when the text was kept as it was (uppercased), which
/// imports report as a warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Size {
    pub value: String,
    pub parsed: bool,
}

pub const NO_SIZE: &str = "NOSIZE";

/// `1 1/2"` → `1.5`, `3/4` → `0.75`, `1½` → `1.5`, `NPS 2` / `2 in` → `2`, `1 1/2"X1"` → `1.5X1`,
/// metric `DN50` / `50mm` → `2` (through the standard DN → NPS table; in a reducer written with
/// one metric part, the others are metric too), empty → `NOSIZE`.
pub fn size(raw: &str) -> Size {
    let mut text = String::with_capacity(raw.len());
    for c in fold_lookalikes(raw).trim().to_uppercase().chars() {
        match c {
            '"' | '”' | '″' | '“' => {}
            // Vulgar fractions, set off as a word so `1½` reads as `1 1/2`.
            '½' => text.push_str(" 1/2"),
            '¼' => text.push_str(" 1/4"),
            '¾' => text.push_str(" 3/4"),
            '⅛' => text.push_str(" 1/8"),
            '⅜' => text.push_str(" 3/8"),
            '⅝' => text.push_str(" 5/8"),
            '⅞' => text.push_str(" 7/8"),
            c => text.push(c),
        }
    }
    let text = text.replace("''", "");
    if text.trim().is_empty() {
        return Size {
            value: NO_SIZE.to_string(),
            parsed: true,
        };
    }
    let words: Vec<&str> = text.split(['X', '×']).map(str::trim).collect();
    let metric = words.iter().any(|w| metric_millimetres(w).is_some());
    let parts: Option<Vec<String>> = words
        .iter()
        .map(|part| {
            if metric {
                metric_millimetres(part)
                    .or_else(|| {
                        decimal(part)
                            .filter(|n| n % 10_000 == 0)
                            .map(|n| n / 10_000)
                    })
                    .and_then(nps_of_dn)
            } else {
                inches(part)
            }
            .map(format_inches)
        })
        .collect();
    match parts {
        Some(parts) if !parts.is_empty() => Size {
            value: parts.join("X"),
            parsed: true,
        },
        _ => Size {
            value: collapse_upper(&text).replace(' ', ""),
            parsed: false,
        },
    }
}

/// `DN50`, `DN 50`, `50MM` or `50 MM`: the nominal diameter in millimetres.
fn metric_millimetres(word: &str) -> Option<u64> {
    let number = word
        .strip_prefix("DN")
        .or_else(|| word.strip_suffix("MM"))?
        .trim();
    number.parse().ok()
}

/// The NPS (in ten-thousandths of an inch) of a DN, from the standard table (ISO 6708 / ASME
/// B36.10 nominal sizes); `None` for a DN that has no NPS.
fn nps_of_dn(dn: u64) -> Option<u64> {
    const TABLE: &[(u64, u64)] = &[
        (6, 1_250),
        (8, 2_500),
        (10, 3_750),
        (15, 5_000),
        (20, 7_500),
        (25, 10_000),
        (32, 12_500),
        (40, 15_000),
        (50, 20_000),
        (65, 25_000),
        (80, 30_000),
        (90, 35_000),
        (100, 40_000),
        (125, 50_000),
        (150, 60_000),
        (200, 80_000),
        (250, 100_000),
        (300, 120_000),
        (350, 140_000),
        (400, 160_000),
        (450, 180_000),
        (500, 200_000),
        (550, 220_000),
        (600, 240_000),
        (650, 260_000),
        (700, 280_000),
        (750, 300_000),
        (800, 320_000),
        (850, 340_000),
        (900, 360_000),
        (950, 380_000),
        (1000, 400_000),
        (1050, 420_000),
        (1100, 440_000),
        (1150, 460_000),
        (1200, 480_000),
    ];
    TABLE.iter().find(|(d, _)| *d == dn).map(|&(_, nps)| nps)
}

/// Reads `2`, `2.5`, `.75`, `3/4`, `1 1/2`, `1-1/2`, `NPS 2` or `2 in` as inches in
/// ten-thousandths (exact for every fraction down to sixteenths).
fn inches(text: &str) -> Option<u64> {
    let text = text.strip_prefix("NPS").unwrap_or(text).trim();
    let text = ["INCHES", "INCH", "IN.", "IN"]
        .iter()
        .find_map(|unit| text.strip_suffix(unit))
        .unwrap_or(text)
        .trim();
    if text.is_empty() {
        return None;
    }
    let words: Vec<&str> = text.split([' ', '-']).filter(|w| !w.is_empty()).collect();
    match words.as_slice() {
        [single] if single.contains('/') => fraction(single),
        [single] => decimal(single),
        [whole, frac] if frac.contains('/') && !whole.contains(['/', '.']) => {
            Some(decimal(whole)? + fraction(frac)?)
        }
        _ => None,
    }
}

fn decimal(text: &str) -> Option<u64> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if (whole.is_empty() && frac.is_empty())
        || !whole.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
        || frac.len() > 4
        || whole.len() > 6
    {
        return None;
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let frac_digits = format!("{frac:0<4}");
    Some(whole * 10_000 + frac_digits.parse::<u64>().ok()?)
}

fn fraction(text: &str) -> Option<u64> {
    let (num, den) = text.split_once('/')?;
    let num: u64 = num.trim().parse().ok()?;
    let den: u64 = den.trim().parse().ok()?;
    if den == 0 || num > 1_000_000 || den > 1_000_000 {
        return None;
    }
    // Rounded to ten-thousandths: exact for halves down to sixteenths.
    Some((num * 10_000 * 2 + den) / (2 * den))
}

fn format_inches(ten_thousandths: u64) -> String {
    let whole = ten_thousandths / 10_000;
    let frac = ten_thousandths % 10_000;
    if frac == 0 {
        whole.to_string()
    } else {
        let digits = format!("{frac:04}");
        format!("{whole}.{}", digits.trim_end_matches('0'))
    }
}

fn stencil_pattern() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| static_regex(r"^[A-Z0-9-]{2,12}$"))
}

/// A welder stencil, uppercased and trimmed; `None` when it does not match `^[A-Z0-9-]{2,12}$`.
pub fn stencil(raw: &str) -> Option<String> {
    let value = raw.trim().to_uppercase();
    stencil_pattern().is_match(&value).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drawing_keys_agree_on_sheet_suffix_spellings() {
        assert_eq!(drawing_key("P-94011_3  01of28"), "P-94011_3 1 OF 28");
        assert_eq!(drawing_key("P-94011_3 1OF28"), "P-94011_3 1 OF 28");
        assert_eq!(drawing_key(" p-94011_3 01 OF 028 "), "P-94011_3 1 OF 28");
        assert_eq!(drawing_key("P-94011_3 00of00"), "P-94011_3 0 OF 0");
    }

    #[test]
    fn drawing_keys_fold_lookalikes_spaced_hyphens_and_sheet_spellings() {
        for raw in [
            "P-26B07",
            "P\u{2010}26B07",
            "P\u{2013}26B07",
            "P \u{2212} 26B07",
            "Ｐ－２６Ｂ０７",
            "P - 26B07",
            "p-26b07",
            "P-26B07\u{a0}",
        ] {
            assert_eq!(drawing_key(raw), "P-26B07", "{raw:?}");
        }
        for raw in [
            "P-100 Sh 1 of 2",
            "P-100 SHT. 1 OF 2",
            "P-100 SHEET 01 OF 02",
            "P-100 (01of02)",
            "P-100(1 of 2)",
            "P-100\u{a0}1of2",
        ] {
            assert_eq!(drawing_key(raw), "P-100 1 OF 2", "{raw:?}");
        }
        assert_eq!(drawing_lookalike("P-26B07"), drawing_lookalike("P26B07"));
        assert_ne!(drawing_key("P-26B07"), drawing_key("P26B07"));
    }

    #[test]
    fn drawing_keys_trim_uppercase_and_collapse() {
        assert_eq!(drawing_key("  dwg   001\t a "), "DWG 001 A");
        assert_eq!(drawing_key("P-26B07"), "P-26B07");
        // "OF" inside a number without a separated sheet is left alone.
        assert_eq!(drawing_key("ROOF-12"), "ROOF-12");
        assert_eq!(drawing_key(""), "");
    }

    #[test]
    fn sizes_read_fractions_mixed_numbers_and_reducers() {
        for (raw, expected) in [
            ("1 1/2\"", "1.5"),
            ("3/4", "0.75"),
            ("2\"", "2"),
            ("2", "2"),
            ("2X1", "2X1"),
            ("1 1/2\"X1\"", "1.5X1"),
            ("1-1/2\" x 3/4\"", "1.5X0.75"),
            ("0.50", "0.5"),
            (".75", "0.75"),
            ("1/16", "0.0625"),
            ("12''", "12"),
            ("6 in", "6"),
            ("½", "0.5"),
            ("¾\"", "0.75"),
            ("1½", "1.5"),
            ("1 ¼", "1.25"),
            ("NPS 2", "2"),
            ("2 in", "2"),
            ("2 inch", "2"),
            ("DN50", "2"),
            ("dn 15", "0.5"),
            ("50mm", "2"),
            ("150 MM", "6"),
            ("DN50 x 25", "2X1"),
            ("２\"", "2"),
        ] {
            assert_eq!(
                size(raw),
                Size {
                    value: expected.into(),
                    parsed: true
                },
                "{raw}"
            );
        }
    }

    #[test]
    fn empty_size_is_nosize_and_garbage_is_kept_with_a_flag() {
        assert_eq!(size("  ").value, NO_SIZE);
        assert!(size("").parsed);
        let odd = size("dn 55");
        assert_eq!(
            odd,
            Size {
                value: "DN55".into(),
                parsed: false
            }
        );
        assert!(!size("1/0").parsed);
        assert!(!size("4'").parsed);
        assert!(!size("X").parsed);
    }

    #[test]
    fn commodity_codes_collapse() {
        assert_eq!(commodity_code("  abc  123 "), "ABC 123");
    }

    #[test]
    fn stencils_follow_the_pattern() {
        assert_eq!(stencil(" wld001 "), Some("WLD001".into()));
        assert_eq!(stencil("K-12"), Some("K-12".into()));
        assert_eq!(stencil("A"), None);
        assert_eq!(stencil("THIRTEENCHARS"), None);
        assert_eq!(stencil("W 1"), None);
    }

    #[test]
    fn natural_keys_sort_numbers_by_value() {
        let mut drawings = vec!["ISO-10", "ISO-2", "ISO-2A", "A-01-3", "A-1-20"];
        drawings.sort_by_key(|d| natural_key(d));
        assert_eq!(drawings, ["A-01-3", "A-1-20", "ISO-2", "ISO-2A", "ISO-10"]);
        assert_eq!(natural_key("W7"), format!("W{:0>20}", 7));
    }
}
