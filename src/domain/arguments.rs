//! The size limits of the API's arguments, by argument name: one vocabulary for every function
//! (a `name` is 200 characters wherever it is sent). Each `pipetrak_api` function passes its text,
//! JSON and list arguments through `pipetrak.limited`, which asks `limit` (folded into the plan:
//! the name is a constant) before anything else runs. Texts count characters, JSON values bytes as
//! sent, lists items. A batch holds 10,000 items, each with a note or reason of up to 2,000
//! characters, in 16 MB; no NOTIFY payload reaches 8,000 bytes. A file has its own limit (50 MB).

/// What a limit counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Characters,
    Bytes,
    Items,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Characters => "characters",
            Unit::Bytes => "bytes",
            Unit::Items => "items",
        }
    }
}

/// Every limit, sorted by argument name.
pub const LIMITS: &[(&str, u32, Unit)] = &[
    ("activities", 16_777_216, Unit::Bytes),
    ("after_weld_number", 200, Unit::Characters),
    ("attributes", 16_384, Unit::Bytes),
    ("changes", 65_536, Unit::Bytes),
    ("client", 200, Unit::Characters),
    ("client_request_id", 200, Unit::Characters),
    ("client_spec", 200, Unit::Characters),
    ("company_role", 200, Unit::Characters),
    ("component_ids", 10_000, Unit::Items),
    ("component_type", 100, Unit::Characters),
    ("confirm_name", 200, Unit::Characters),
    ("corrections", 16_777_216, Unit::Bytes),
    ("craft", 200, Unit::Characters),
    ("crew", 200, Unit::Characters),
    ("data", 65_536, Unit::Bytes),
    ("description", 2_000, Unit::Characters),
    ("display_name", 200, Unit::Characters),
    ("drawing_no", 200, Unit::Characters),
    ("email", 320, Unit::Characters),
    ("filename", 255, Unit::Characters),
    ("group", 200, Unit::Characters),
    ("group_by", 50, Unit::Characters),
    ("group_key", 200, Unit::Characters),
    ("job_number", 100, Unit::Characters),
    ("kind", 50, Unit::Characters),
    ("line_numbers", 4_000, Unit::Characters),
    ("medium", 200, Unit::Characters),
    ("method", 20, Unit::Characters),
    ("milestone", 100, Unit::Characters),
    ("name", 200, Unit::Characters),
    ("note", 2_000, Unit::Characters),
    ("notes", 2_000, Unit::Characters),
    ("payload", 7_999, Unit::Characters),
    ("person", 200, Unit::Characters),
    ("query", 200, Unit::Characters),
    ("reason", 2_000, Unit::Characters),
    ("report_number", 100, Unit::Characters),
    ("result", 20, Unit::Characters),
    ("revision", 50, Unit::Characters),
    ("role", 50, Unit::Characters),
    ("search", 200, Unit::Characters),
    ("sequence_mode", 20, Unit::Characters),
    ("sheet", 50, Unit::Characters),
    ("signoff", 50, Unit::Characters),
    ("size", 50, Unit::Characters),
    ("spec", 200, Unit::Characters),
    ("stage", 50, Unit::Characters),
    ("status", 50, Unit::Characters),
    ("stencil", 50, Unit::Characters),
    ("tag", 200, Unit::Characters),
    ("temperature_unit", 20, Unit::Characters),
    ("test_pressure_unit", 20, Unit::Characters),
    ("test_type", 50, Unit::Characters),
    ("time_zone", 100, Unit::Characters),
    ("title", 500, Unit::Characters),
    ("token", 200, Unit::Characters),
    ("updates", 16_777_216, Unit::Bytes),
    ("weights", 16_384, Unit::Bytes),
    ("weld_number", 200, Unit::Characters),
    ("weld_type", 50, Unit::Characters),
    ("welder", 50, Unit::Characters),
];

/// The limit of an argument, None for a name the registry lacks.
pub fn limit(argument: &str) -> Option<u32> {
    LIMITS
        .binary_search_by(|(name, _, _)| name.cmp(&argument))
        .ok()
        .map(|i| LIMITS[i].1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_sorted_and_unique_so_lookups_find_each() {
        assert!(LIMITS.windows(2).all(|w| w[0].0 < w[1].0));
        for (name, max, _) in LIMITS {
            assert_eq!(limit(name), Some(*max));
        }
        assert_eq!(limit("no such argument"), None);
    }

    #[test]
    fn a_name_is_two_hundred_characters_and_a_batch_ten_thousand_items() {
        assert_eq!(limit("name"), Some(200));
        assert_eq!(limit("component_ids"), Some(10_000));
    }
}
