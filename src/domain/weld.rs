//! A field weld's QC status from its NDE results (spec §7): `rejected` when any current result is
//! FAIL; otherwise `accepted` when every required method has a current PASS (with no required
//! method, when the latest current result is a PASS); else `active`.

/// An NDE method.
pub const METHODS: [&str; 5] = ["RT", "UT", "PT", "MT", "VT"];
/// What an NDE record may say (a record without a result clears the method).
pub const RESULTS: [&str; 3] = ["PASS", "FAIL", "PENDING"];

/// The weld types a field weld may have.
pub const WELD_TYPES: [&str; 5] = ["BW", "SW", "FW", "TW", "CW"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum WeldStatus {
    Active,
    Accepted,
    Rejected,
}

impl WeldStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The methods a weld needs: the ones listed for it, and RT when it has an x-ray tier above 0.
pub fn required_methods(listed: &[String], xray_percent: Option<i32>) -> Vec<String> {
    let mut required: Vec<String> = listed.to_vec();
    if xray_percent.is_some_and(|p| p > 0) && !required.iter().any(|m| m == "RT") {
        required.push("RT".to_string());
    }
    required
}

/// The methods a repair must pass (spec §7: it carries the examination duty of the weld it
/// replaces, whatever the tier): every method the rejected weld required, and each method that
/// failed it, listed so that its status is `accepted` only once all of them pass on the repair
/// itself — a 5 % tier alone would let an unexamined repair clear its package.
pub fn repair_methods(
    listed: &[String],
    xray_percent: Option<i32>,
    failed: &[String],
) -> Vec<String> {
    let mut methods = required_methods(listed, xray_percent);
    for method in failed {
        if !methods.contains(method) {
            methods.push(method.clone());
        }
    }
    methods
}

/// The status of a weld from its current result per method, oldest first (`(method, result)`;
/// the last one is the latest recorded).
pub fn status(required: &[String], current: &[(String, String)]) -> WeldStatus {
    if current.iter().any(|(_, result)| result == "FAIL") {
        return WeldStatus::Rejected;
    }
    let passed = |method: &String| {
        current
            .iter()
            .any(|(m, result)| m == method && result == "PASS")
    };
    let accepted = if required.is_empty() {
        current.last().is_some_and(|(_, result)| result == "PASS")
    } else {
        required.iter().all(passed)
    };
    if accepted {
        WeldStatus::Accepted
    } else {
        WeldStatus::Active
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn results(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(m, r)| (m.to_string(), r.to_string()))
            .collect()
    }

    #[test]
    fn any_current_fail_rejects() {
        let required = strings(&["RT", "PT"]);
        let current = results(&[("RT", "PASS"), ("PT", "FAIL")]);
        assert_eq!(status(&required, &current), WeldStatus::Rejected);
        assert_eq!(
            status(&[], &results(&[("VT", "FAIL")])),
            WeldStatus::Rejected
        );
    }

    #[test]
    fn every_required_method_must_pass() {
        let required = strings(&["RT", "PT"]);
        assert_eq!(
            status(&required, &results(&[("RT", "PASS")])),
            WeldStatus::Active
        );
        assert_eq!(
            status(&required, &results(&[("RT", "PASS"), ("PT", "PENDING")])),
            WeldStatus::Active
        );
        assert_eq!(
            status(&required, &results(&[("PT", "PASS"), ("RT", "PASS")])),
            WeldStatus::Accepted
        );
        // A method nobody asked for does not make up for a required one.
        assert_eq!(
            status(&required, &results(&[("RT", "PASS"), ("UT", "PASS")])),
            WeldStatus::Active
        );
    }

    #[test]
    fn without_required_methods_the_latest_result_decides() {
        assert_eq!(status(&[], &[]), WeldStatus::Active);
        assert_eq!(
            status(&[], &results(&[("VT", "PASS")])),
            WeldStatus::Accepted
        );
        assert_eq!(
            status(&[], &results(&[("VT", "PASS"), ("UT", "PENDING")])),
            WeldStatus::Active
        );
    }

    #[test]
    fn a_repair_needs_every_required_and_every_failed_method() {
        assert_eq!(repair_methods(&[], Some(5), &strings(&["RT"])), ["RT"]);
        assert_eq!(
            repair_methods(&strings(&["PT"]), Some(10), &strings(&["UT"])),
            ["PT", "RT", "UT"]
        );
        assert_eq!(repair_methods(&[], Some(0), &strings(&["VT"])), ["VT"]);
        // Listed once, whatever failed twice.
        assert_eq!(
            repair_methods(&strings(&["RT"]), Some(100), &strings(&["RT"])),
            ["RT"]
        );
    }

    #[test]
    fn an_xray_tier_requires_rt() {
        assert_eq!(required_methods(&strings(&["PT"]), Some(5)), ["PT", "RT"]);
        assert_eq!(required_methods(&strings(&["RT"]), Some(100)), ["RT"]);
        assert_eq!(required_methods(&strings(&["PT"]), Some(0)), ["PT"]);
        assert_eq!(required_methods(&[], None), Vec::<String>::new());
    }
}
