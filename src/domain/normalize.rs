//! Normalization of drawing numbers, sizes, commodity codes and welder stencils (spec §3, §4, §7).

use regex::Regex;
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

fn sheet_suffix() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    // A trailing "NN OF MM" sheet suffix, separated from the number by whitespace.
    RE.get_or_init(|| Regex::new(r"^(.*\S)\s+0*(\d+)\s*OF\s*0*(\d+)$").expect("static regex"))
}

/// The key two spellings of one drawing share: `P-94011_3  01of28` and `P-94011_3 1OF28`
/// both become `P-94011_3 1 OF 28`.
pub fn drawing_key(raw: &str) -> String {
    let collapsed = collapse_upper(raw);
    match sheet_suffix().captures(&collapsed) {
        Some(c) => format!("{} {} OF {}", &c[1], &c[2], &c[3]),
        None => collapsed,
    }
}

/// A normalized size: `parsed` is false when the text was kept as it was (uppercased), which
/// imports report as a warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Size {
    pub value: String,
    pub parsed: bool,
}

pub const NO_SIZE: &str = "NOSIZE";

/// `1 1/2"` → `1.5`, `3/4` → `0.75`, `2"` → `2`, `1 1/2"X1"` → `1.5X1`, empty → `NOSIZE`.
pub fn size(raw: &str) -> Size {
    let text: String = raw
        .trim()
        .to_uppercase()
        .chars()
        .filter(|c| !matches!(c, '"' | '”' | '″' | '“'))
        .collect();
    let text = text.replace("''", "");
    if text.trim().is_empty() {
        return Size {
            value: NO_SIZE.to_string(),
            parsed: true,
        };
    }
    let parts: Option<Vec<String>> = text
        .split(['X', '×'])
        .map(|part| inches(part.trim()).map(format_inches))
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

/// Reads `2`, `2.5`, `.75`, `3/4`, `1 1/2` or `1-1/2` as inches in ten-thousandths
/// (exact for every fraction down to sixteenths).
fn inches(text: &str) -> Option<u64> {
    let text = text.trim_end_matches("IN").trim();
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
    RE.get_or_init(|| Regex::new(r"^[A-Z0-9-]{2,12}$").expect("static regex"))
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
        let odd = size("dn 50");
        assert_eq!(
            odd,
            Size {
                value: "DN50".into(),
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
}
