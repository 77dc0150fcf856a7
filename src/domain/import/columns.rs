//! Header matching (spec §6): drop a trailing `*`, `!` or `#` marker, then compare ignoring case
//! and every character that is not a letter or digit, against each field's accepted names.

use super::Kind;
use std::ops::Range;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Drawing,
    Type,
    CmdtyCode,
    Qty,
    Size,
    Spec,
    Description,
    Comments,
    Area,
    System,
    TestPackage,
    WeldId,
    WeldType,
    WeldSize,
    Schedule,
    BaseMetal,
    XrayPercent,
    Pwht,
    NdeTypes,
    Stencil,
    DateWelded,
    NdeResult,
    /// A component's man-hour budget (spec §11), or a schedule activity's.
    BudgetMh,
    /// A schedule's activity id, name, planned dates, weight and curve.
    ActivityId,
    ActivityName,
    PlannedStart,
    PlannedFinish,
    Weight,
    Curve,
    /// A timesheet's work date, who worked (a person or a crew), their craft and hours.
    WorkDate,
    Person,
    Crew,
    Craft,
    Hours,
    /// The issues column of our own remediation CSV: read back as nothing.
    RemediationNotes,
    /// The remediation CSV's row number in the original file: shown to the user, read as nothing.
    RemediationRow,
    /// The remediation CSV's reference to the original row (`<import id>:<row>`), which ties a
    /// fixed row to what the original row created.
    RemediationRef,
}

/// The header of the issues column the remediation CSV adds.
pub const REMEDIATION_HEADER: &str = "PIPETRAK ISSUES";
/// The header of the original row number the remediation CSV adds.
pub const REMEDIATION_ROW_HEADER: &str = "PIPETRAK ROW";
/// The header of the reference to the original row the remediation CSV adds.
pub const REMEDIATION_REF_HEADER: &str = "PIPETRAK REF";

impl Field {
    /// The name reports use for the column.
    pub fn label(self) -> &'static str {
        self.names()[0]
    }

    /// Accepted header spellings; the first is the canonical one.
    pub fn names(self) -> &'static [&'static str] {
        use Field::*;
        match self {
            Drawing => &[
                "DRAWING",
                "DRAWINGS",
                "DRAWING NUMBER",
                "DRAWING NO",
                "DRAWING ID",
                "DWG",
                "DWG NO",
                "ISO",
                "DRAWING / ISOMETRIC NUMBER",
                "ISO NUMBER",
                "ISO NO",
                "ISOMETRIC",
                "ISOMETRIC NUMBER",
                "LINE NUMBER",
                "LINE NO",
            ],
            Type => &[
                "TYPE",
                "COMPONENT TYPE",
                "ITEM TYPE",
                "CATEGORY",
                "COMPONENT",
            ],
            CmdtyCode => &[
                "CMDTY CODE",
                "COMMODITY CODE",
                "CMDTY",
                "COMMODITY",
                "PART NO",
                "COMPONENT ID",
                "TAG",
                "ITEM CODE",
                "MATERIAL CODE",
                "IDENT",
                "IDENT CODE",
            ],
            Qty => &[
                "QTY",
                "QUANTITY",
                "COUNT",
                "TOTAL QUANTITY",
                "TOTAL QTY",
                "QTY TOTAL",
                "QUANTITY TOTAL",
                "QTY REQUIRED",
            ],
            Size => &[
                "SIZE",
                "NOM SIZE",
                "NOMINAL SIZE",
                "NPS",
                "DIA",
                "SIZE (IN)",
                "NOMINAL DIAMETER",
                "PIPE SIZE",
            ],
            Spec => &["SPEC", "SPECIFICATION"],
            Description => &[
                "DESCRIPTION",
                "DESC",
                "ITEM DESCRIPTION",
                "MATERIAL DESCRIPTION",
                "SHORT DESCRIPTION",
            ],
            Comments => &["COMMENTS", "COMMENT", "NOTES", "REMARKS"],
            Area => &["AREA", "AREA CODE", "PLANT AREA", "UNIT"],
            System => &["SYSTEM", "SYSTEM CODE", "SYSTEM NO"],
            TestPackage => &[
                "TEST PACKAGE",
                "TEST_PACKAGE",
                "TEST PKG",
                "PACKAGE",
                "TEST PACK",
                "TEST PACKAGE NO",
                "HYDRO PACKAGE",
            ],
            WeldId => &[
                "WELD ID",
                "WELD NUMBER",
                "WELD NO",
                "WELD #",
                "WELD ID NUMBER",
                "JOINT NO",
                "JOINT NUMBER",
                "WELD JOINT",
            ],
            WeldType => &["WELD TYPE", "WELD TYPE CODE", "JOINT TYPE"],
            WeldSize => &["WELD SIZE", "SIZE"],
            Schedule => &["SCHEDULE", "SCH"],
            BaseMetal => &["BASE METAL"],
            XrayPercent => &["X-RAY %", "X-RAY PERCENT", "RT %", "XRAY %"],
            Pwht => &["PWHT REQUIRED", "PWHT"],
            NdeTypes => &["NDE TYPES", "NDE TYPE", "NDE"],
            Stencil => &[
                "WELDER STENCIL",
                "STENCIL",
                "WELDER ID",
                "WELDER",
                "WELDER NO",
            ],
            DateWelded => &["DATE WELDED", "WELD DATE", "WELDED ON"],
            NdeResult => &["NDE RESULT", "NDE STATUS", "RT RESULT"],
            BudgetMh => &[
                "BUDGET MH",
                "MAN HOURS",
                "MH",
                "BUDGET MAN HOURS",
                "BUDGETED MH",
                "MANHOURS",
                "BUDGET HOURS",
                "BUDGETED LABOR UNITS",
                "BUDGETED UNITS",
                // Primavera P6's field code for the budgeted labor units.
                "TARGET WORK QTY",
            ],
            ActivityId => &[
                "ACTIVITY ID",
                "ACTIVITY",
                "ACTIVITY CODE",
                "ACT ID",
                "TASK ID",
                "TASK CODE",
            ],
            ActivityName => &[
                "ACTIVITY NAME",
                "TASK NAME",
                "NAME",
                "DESCRIPTION",
                "ACTIVITY DESCRIPTION",
            ],
            // The baseline's dates before the current ones (see `ranked`).
            PlannedStart => &[
                "PLANNED START",
                "BL PROJECT START",
                "BL START",
                "BASELINE START",
                // Primavera P6's field code for the planned start.
                "TARGET START DATE",
                "START",
                "START DATE",
                "EARLY START",
            ],
            PlannedFinish => &[
                "PLANNED FINISH",
                "BL PROJECT FINISH",
                "BL FINISH",
                "BASELINE FINISH",
                "TARGET END DATE",
                "FINISH",
                "FINISH DATE",
                "EARLY FINISH",
                "END DATE",
            ],
            Weight => &["WEIGHT", "WEIGHTING", "WEIGHT FACTOR"],
            Curve => &["CURVE", "CURVE TYPE", "DISTRIBUTION", "RESOURCE CURVE"],
            WorkDate => &["WORK DATE", "DATE", "DAY", "DATE WORKED", "TIMESHEET DATE"],
            Person => &[
                "PERSON",
                "EMPLOYEE",
                "EMPLOYEE NAME",
                "NAME",
                "WORKER",
                "EMPLOYEE ID",
                "BADGE",
            ],
            Crew => &["CREW", "CREW ID", "CREW NAME", "GANG"],
            Craft => &["CRAFT", "TRADE", "CLASSIFICATION", "DISCIPLINE"],
            Hours => &[
                "HOURS",
                "HRS",
                "ACTUAL HOURS",
                "HOURS WORKED",
                "TOTAL HOURS",
                "MAN HOURS",
                "MH",
            ],
            RemediationNotes => &[REMEDIATION_HEADER],
            RemediationRow => &[REMEDIATION_ROW_HEADER],
            RemediationRef => &[REMEDIATION_REF_HEADER],
        }
    }

    /// The fields a file of this kind can hold, in matching order.
    pub fn of_kind(kind: Kind) -> &'static [Field] {
        use Field::*;
        match kind {
            Kind::Takeoff => &[
                Drawing,
                Type,
                CmdtyCode,
                Qty,
                Size,
                Spec,
                Description,
                Comments,
                Area,
                System,
                TestPackage,
                BudgetMh,
                RemediationNotes,
                RemediationRow,
                RemediationRef,
            ],
            Kind::FieldWelds => &[
                WeldId,
                Drawing,
                Type,
                WeldType,
                WeldSize,
                Schedule,
                BaseMetal,
                Spec,
                XrayPercent,
                Pwht,
                NdeTypes,
                Stencil,
                DateWelded,
                NdeResult,
                Area,
                System,
                TestPackage,
                Comments,
                Description,
                RemediationNotes,
                RemediationRow,
                RemediationRef,
            ],
            // The group an activity plans or hours are charged to: an area, system, test package
            // or drawing column (none: the project).
            Kind::Schedule => &[
                ActivityId,
                ActivityName,
                PlannedStart,
                PlannedFinish,
                BudgetMh,
                Weight,
                Curve,
                Area,
                System,
                TestPackage,
                Drawing,
                Comments,
                RemediationNotes,
                RemediationRow,
                RemediationRef,
            ],
            Kind::Timesheet => &[
                WorkDate,
                Person,
                Crew,
                Craft,
                Hours,
                Area,
                System,
                TestPackage,
                Drawing,
                Comments,
                RemediationNotes,
                RemediationRow,
                RemediationRef,
            ],
        }
    }

    /// Fields whose columns rank by the name they match, not by their order: a schedule export
    /// shows the current dates (`Start`) beside the baseline's (`BL Project Start`), and a
    /// baseline is planned on the baseline's.
    fn ranked(self) -> bool {
        matches!(self, Field::PlannedStart | Field::PlannedFinish)
    }

    /// Where a header key stands among the field's names (lower: preferred).
    fn rank(self, key: &str) -> usize {
        self.names()
            .iter()
            .position(|n| header_key(n) == key)
            .unwrap_or(usize::MAX)
    }

    pub fn required(kind: Kind) -> &'static [Field] {
        match kind {
            Kind::Takeoff => &[Field::Drawing, Field::Type, Field::CmdtyCode],
            Kind::FieldWelds => &[Field::WeldId, Field::Drawing],
            Kind::Schedule => &[Field::ActivityId, Field::PlannedStart, Field::PlannedFinish],
            Kind::Timesheet => &[Field::WorkDate, Field::Hours],
        }
    }
}

/// `Drawing ID`, `drawingId`, `DRAWING_ID` and `DRAWING ID*` all become `drawingid`.
pub fn header_key(header: &str) -> String {
    header
        .trim()
        .trim_end_matches(['*', '!', '#'])
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

fn field_for(kind: Kind, key: &str) -> Option<Field> {
    Field::of_kind(kind)
        .iter()
        .copied()
        .find(|f| f.names().iter().any(|n| header_key(n) == key))
}

/// Where each field is in a header row, the columns kept as attributes, and the duplicates.
#[derive(Debug, Clone, Default)]
pub struct Mapping {
    pub fields: Vec<(Field, usize)>,
    /// (column index, header text) of columns that map to no field.
    pub extra: Vec<(usize, String)>,
    /// (column index, header text) of a second column for an already mapped field.
    pub duplicates: Vec<(usize, String)>,
}

impl Mapping {
    pub fn of(kind: Kind, header: &[String]) -> Mapping {
        let mut mapping = Mapping::default();
        for (index, text) in header.iter().enumerate() {
            let key = header_key(text);
            if key.is_empty() {
                continue;
            }
            match field_for(kind, &key) {
                // A better-named column for a ranked field takes its place; the other is the
                // duplicate.
                Some(f)
                    if f.ranked()
                        && mapping
                            .index(f)
                            .is_some_and(|i| f.rank(&key) < f.rank(&header_key(&header[i]))) =>
                {
                    let earlier = mapping.index(f).unwrap_or(index);
                    mapping
                        .duplicates
                        .push((earlier, header[earlier].trim().to_string()));
                    mapping.fields.retain(|(field, _)| *field != f);
                    mapping.fields.push((f, index));
                }
                Some(f) if mapping.index(f).is_some() => {
                    mapping.duplicates.push((index, text.trim().to_string()))
                }
                Some(f) => mapping.fields.push((f, index)),
                None => mapping.extra.push((index, text.trim().to_string())),
            }
        }
        mapping
    }

    pub fn index(&self, field: Field) -> Option<usize> {
        self.fields
            .iter()
            .find(|(f, _)| *f == field)
            .map(|&(_, i)| i)
    }

    pub fn missing_required(&self, kind: Kind) -> Vec<Field> {
        Field::required(kind)
            .iter()
            .copied()
            .filter(|f| self.index(*f).is_none())
            .collect()
    }

    /// The mapping of the table the header row starts: its contiguous non-empty header cells
    /// (from the run that holds the first required column to the run that holds the last one).
    /// Columns beyond, after an empty header cell, belong to something else (a welder list beside
    /// a weld log) and are not read. Returns the mapping, the table's columns and the headers of
    /// the columns left out.
    pub fn within_table(
        &self,
        header: &[String],
        kind: Kind,
    ) -> (Mapping, Range<usize>, Vec<String>) {
        let filled = |i: usize| header.get(i).is_some_and(|h| !h.trim().is_empty());
        let required: Vec<usize> = Field::required(kind)
            .iter()
            .filter_map(|f| self.index(*f))
            .collect();
        let (Some(&first), Some(&last)) = (required.iter().min(), required.iter().max()) else {
            return (self.clone(), 0..header.len(), Vec::new());
        };
        let mut start = first;
        while start > 0 && filled(start - 1) {
            start -= 1;
        }
        let mut end = last + 1;
        while filled(end) {
            end += 1;
        }
        let beside: Vec<String> = header
            .iter()
            .enumerate()
            .filter(|(i, h)| !(start..end).contains(i) && !h.trim().is_empty())
            .map(|(_, h)| h.trim().to_string())
            .collect();
        if beside.is_empty() {
            return (self.clone(), start..end.max(header.len()), beside);
        }
        let masked: Vec<String> = header
            .iter()
            .enumerate()
            .map(|(i, h)| {
                if (start..end).contains(&i) {
                    h.clone()
                } else {
                    String::new()
                }
            })
            .collect();
        (Mapping::of(kind, &masked), start..end, beside)
    }

    /// How well a row works as this kind's header (used to pick the header row).
    pub fn score(&self, kind: Kind) -> usize {
        let required = Field::required(kind).len() - self.missing_required(kind).len();
        required * 100 + self.fields.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn spellings_match_after_dropping_markers_case_and_punctuation() {
        for h in [
            "Drawing ID",
            "drawingId",
            "DRAWING_ID",
            "DRAWING*",
            "dwg no",
            "ISO",
        ] {
            let m = Mapping::of(Kind::Takeoff, &header(&[h]));
            assert_eq!(m.index(Field::Drawing), Some(0), "{h}");
        }
        let m = Mapping::of(
            Kind::FieldWelds,
            &header(&["Weld #", "X-ray Percent", "RT %", "Weld Type Code"]),
        );
        assert_eq!(m.index(Field::WeldId), Some(0));
        assert_eq!(m.index(Field::XrayPercent), Some(1));
        assert_eq!(m.duplicates, vec![(2, "RT %".to_string())]);
        assert_eq!(m.index(Field::WeldType), Some(3));
    }

    #[test]
    fn unknown_columns_are_kept_and_required_ones_reported() {
        let m = Mapping::of(
            Kind::Takeoff,
            &header(&["componentId", "type", "material", "", "drawingId"]),
        );
        assert_eq!(m.index(Field::CmdtyCode), Some(0));
        assert_eq!(m.extra, vec![(2, "material".to_string())]);
        assert!(m.missing_required(Kind::Takeoff).is_empty());
        let m = Mapping::of(Kind::Takeoff, &header(&["DRAWING", "QTY"]));
        assert_eq!(
            m.missing_required(Kind::Takeoff),
            vec![Field::Type, Field::CmdtyCode]
        );
    }
}
