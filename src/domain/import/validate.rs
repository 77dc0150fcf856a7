//! Every row normalized and checked (spec §4, §6, §7), never stopping at the first problem.
//! Rules across rows (repeated spool ids and weld numbers, seq ranges of rows that add up, rows
//! repeated word for word) are set-based SQL over the staged rows; the validator only flags the
//! rows that may repeat an earlier one, with a filter of fixed size, so its memory does not grow
//! with the file and a file without repeats costs nothing more.

use super::cell::{self, Cell, DateOrder, DateReading};
use super::columns::Field;
use super::file::FileSource;
use super::issue::{Issue, IssueCode, Severity};
use super::number::{self, DecimalMark, Reading};
use super::source::{self, Layout, Row};
use super::{Kind, CHUNK_ROWS};
use crate::domain::component_type::{ComponentType, Identity};
use crate::domain::controls::Curve;
use crate::domain::normalize;
use chrono::{Datelike, NaiveDate};
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::str::FromStr;

/// Longest text accepted for a drawing number, id, tag or reference name.
pub const MAX_TEXT: usize = 200;
/// Longest text accepted in any other cell (a description, a comment, a kept attribute).
pub const MAX_CELL_TEXT: usize = 10_000;
/// Most items one row may create.
pub const MAX_ROW_QUANTITY: f64 = 10_000.0;
/// Most feet of pipe one row may hold.
pub const MAX_ROW_FEET: f64 = 1_000_000.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, strum::IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum RowStatus {
    #[default]
    Valid,
    /// Has at least one error: not committed (or skipped when asked to).
    Invalid,
    /// Quantity 0: nothing to create.
    Skipped,
}

impl RowStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Weld facts from a field-weld log row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WeldFacts {
    pub weld_type: Option<String>,
    pub weld_size: Option<String>,
    pub schedule: Option<String>,
    pub base_metal: Option<String>,
    pub xray_percent: Option<i32>,
    pub pwht_required: Option<bool>,
    pub nde_types: Vec<String>,
    pub stencil: Option<String>,
    pub date_welded: Option<NaiveDate>,
    pub nde_result: Option<String>,
}

/// One data row, normalized, with its issues (the remediation CSV reads its original cells again).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportRow {
    pub line: u32,
    pub chunk: u32,
    pub status: RowStatus,
    pub drawing_no: String,
    pub drawing_key: String,
    pub component_type: Option<ComponentType>,
    pub tag: String,
    pub size: String,
    /// Linear feet for pipe, 1 for single items, the count for per-seq items.
    pub quantity: f64,
    /// The seqs the row stands for, as if it were the first row of its item (SQL numbers on the
    /// rows of an item that repeat).
    pub seq_from: u32,
    pub seq_to: u32,
    /// Valid on its own and may repeat an earlier row's cells, id or item.
    pub maybe_repeated: bool,
    /// A hash of the cells as shown, for finding identical rows.
    pub cells_hash: i64,
    pub area: Option<String>,
    pub system: Option<String>,
    pub test_package: Option<String>,
    pub description: Option<String>,
    pub spec: Option<String>,
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub weld: Option<WeldFacts>,
    pub issues: Vec<Issue>,
}

/// Counts over the rows as the reader sees them (SQL adds what the rules across rows and the
/// comparison with the project find).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    pub rows_read: u32,
    pub valid: u32,
    pub invalid: u32,
    pub skipped: u32,
    pub errors: u32,
    pub warnings: u32,
    pub infos: u32,
    /// Rows flagged `maybe_repeated`.
    pub maybe_repeated: u32,
}

/// What the valid rows name: enough to compare a file with a project that holds no components yet
/// without reading the staged rows again. Areas, systems, test packages and welders are few per
/// project; drawings, which grow with the file, are counted in SQL over the staged rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Found {
    /// Components the valid rows stand for (seqs counted out), each row counted as the first of
    /// its item: SQL subtracts the rows it finds repeating an id, a pipe or an instrument.
    pub components: u64,
    pub areas: BTreeSet<String>,
    pub systems: BTreeSet<String>,
    pub test_packages: BTreeSet<String>,
    pub stencils: BTreeSet<String>,
    /// A timesheet's valid rows per group charged (kind, name): what its dry run would record,
    /// summed here so that SQL finds each group once instead of reading every row again.
    pub charged: BTreeMap<(String, Option<String>), Charged>,
}

/// The valid timesheet rows charged to one group: how many, their hours (in hundredths, exact),
/// their first and last work dates, and how many fall in each week (by its Sunday).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Charged {
    pub rows: u64,
    pub hundredths: i64,
    pub first: Option<NaiveDate>,
    pub last: Option<NaiveDate>,
    pub weeks: BTreeMap<NaiveDate, u64>,
}

impl Found {
    fn note(&mut self, row: &ImportRow) {
        // Cloned only when new: most rows repeat a drawing and names already seen.
        fn add(set: &mut BTreeSet<String>, value: Option<&String>) {
            if let Some(value) = value.filter(|v| !set.contains(*v)) {
                set.insert(value.clone());
            }
        }
        add(&mut self.areas, row.area.as_ref());
        add(&mut self.systems, row.system.as_ref());
        add(&mut self.test_packages, row.test_package.as_ref());
        add(
            &mut self.stencils,
            row.weld.as_ref().and_then(|w| w.stencil.as_ref()),
        );
        self.charge(row);
    }

    /// A valid timesheet row's hours, to its group's sums (other rows carry no hours).
    fn charge(&mut self, row: &ImportRow) {
        let Some(values) = row.attributes.get(CONTROLS_KEY) else {
            return;
        };
        let (Some(hours), Some(day)) = (
            values["hours"].as_f64(),
            values["work_date"]
                .as_str()
                .and_then(|d| d.parse::<NaiveDate>().ok()),
        ) else {
            return;
        };
        let key = (
            values["group_by"].as_str().unwrap_or("project").to_string(),
            values["group"].as_str().map(str::to_string),
        );
        let group = self.charged.entry(key).or_default();
        group.rows += 1;
        group.hundredths += (hours * 100.0).round() as i64;
        group.first = Some(group.first.map_or(day, |f| f.min(day)));
        group.last = Some(group.last.map_or(day, |l| l.max(day)));
        let sunday = day + chrono::Days::new(u64::from(6 - day.weekday().num_days_from_monday()));
        *group.weeks.entry(sunday).or_default() += 1;
    }
}

pub struct Validator {
    kind: Kind,
    today: NaiveDate,
    /// The order of day and month in text dates: the file's, or learned from its first date that
    /// reads only one way.
    date_order: Option<DateOrder>,
    /// Rows that hold nothing but an id: how many, and the first one's row.
    placeholders: (u32, u32),
    /// The last drawing number read and its key: rows of one drawing mostly follow each other.
    last_drawing: (String, String),
    /// Cells, ids and items of the rows so far.
    seen: SeenFilter,
    pub counts: Counts,
    found: Found,
}

impl Validator {
    pub fn new(kind: Kind, today: NaiveDate) -> Validator {
        Validator {
            kind,
            today,
            date_order: None,
            placeholders: (0, 0),
            last_drawing: (String::new(), String::new()),
            seen: SeenFilter::new(),
            counts: Counts::default(),
            found: Found::default(),
        }
    }

    /// Checks one data row; `None` for a blank row or a placeholder (not counted as rows).
    pub fn row(&mut self, layout: &Layout, source_row: &Row) -> Option<ImportRow> {
        let line = source_row.line;
        // Only the table's columns: cells beside it belong to another table.
        let cells = &source_row.cells[..source_row.cells.len().min(layout.table.end)];
        let filled = || (layout.table.start..cells.len()).filter(|&i| !cells[i].is_blank());
        let first_filled = filled().next()?;
        let id_field = match self.kind {
            Kind::Takeoff => Field::CmdtyCode,
            Kind::FieldWelds => Field::WeldId,
            Kind::Schedule => Field::ActivityId,
            Kind::Timesheet => Field::WorkDate,
        };
        if layout.mapping.index(id_field) == Some(first_filled) && filled().nth(1).is_none() {
            if self.placeholders.0 == 0 {
                self.placeholders.1 = line;
            }
            self.placeholders.0 += 1;
            return None;
        }
        if self.date_order.is_none() {
            self.date_order = layout.date_order;
        }
        let mut row = ImportRow {
            line,
            chunk: self.counts.rows_read / CHUNK_ROWS,
            ..ImportRow::default()
        };
        self.counts.rows_read += 1;
        let read = Reader {
            layout,
            cells,
            line,
        };
        if source_row.read_as_windows_1252 {
            row.issues.push(Issue::new(
                line,
                IssueCode::LineNotUtf8,
                "This row is not UTF-8 like the rest of the file; it was read as Windows-1252",
            ));
        }
        let mut too_long = false;
        for index in filled() {
            if let Cell::Text(text) = &cells[index] {
                if text.len() > MAX_CELL_TEXT && text.chars().count() > MAX_CELL_TEXT {
                    too_long = true;
                    let header = layout.header.get(index).map_or("", |h| h.trim());
                    let mut issue = Issue::new(
                        line,
                        IssueCode::ValueTooLong,
                        format!(
                            "The cell holds {} characters, more than {MAX_CELL_TEXT}",
                            text.chars().count()
                        ),
                    );
                    issue.column = Some(header.to_string());
                    issue.value = Some(text.chars().take(50).chain("…".chars()).collect());
                    row.issues.push(issue);
                }
            }
        }
        for (field, index) in &layout.mapping.fields {
            if let Some(Cell::Error(e)) = cells.get(*index) {
                row.issues.push(read.issue(
                    *field,
                    IssueCode::CellError,
                    format!("The cell shows the formula error {e}"),
                ));
            }
        }
        match self.kind {
            Kind::Takeoff => self.takeoff(&read, &mut row),
            Kind::FieldWelds => self.field_weld(&read, &mut row),
            Kind::Schedule => self.activity(&read, &mut row),
            Kind::Timesheet => self.hours(&read, &mut row),
        }
        if let Some(text) = read.optional(Field::RemediationRef) {
            if reference(&text).is_none() {
                row.issues.push(read.issue(
                    Field::RemediationRef,
                    IssueCode::InvalidReference,
                    format!("{text:?} is not a reference to an imported row"),
                ));
            }
        }
        row.attributes.extend(read.attributes());
        self.budget(&read, &mut row);
        if too_long {
            // Not staged: the row is invalid and the report reads its cells from the file.
            let long = |t: &String| t.chars().count() > MAX_CELL_TEXT;
            row.description = row.description.filter(|t| !long(t));
            row.spec = row.spec.filter(|t| !long(t));
            row.attributes.retain(|_, v| {
                v.as_str()
                    .is_none_or(|t| t.chars().count() <= MAX_CELL_TEXT)
            });
        }
        if row.issues.iter().any(Issue::is_error) {
            row.status = RowStatus::Invalid;
        }
        if row.status == RowStatus::Valid {
            self.register(&mut row, cells);
            self.found.note(&row);
        }
        match row.status {
            RowStatus::Valid => self.counts.valid += 1,
            RowStatus::Invalid => self.counts.invalid += 1,
            RowStatus::Skipped => self.counts.skipped += 1,
        }
        for issue in &row.issues {
            match issue.severity {
                Severity::Error => self.counts.errors += 1,
                Severity::Warning => self.counts.warnings += 1,
                Severity::Info => self.counts.infos += 1,
            }
        }
        Some(row)
    }

    fn takeoff(&mut self, read: &Reader<'_>, row: &mut ImportRow) {
        self.drawing(read, row);
        let type_text = read.text(Field::Type);
        row.component_type = ComponentType::parse(&type_text);
        if type_text.is_empty() {
            row.issues.push(read.issue(
                Field::Type,
                IssueCode::MissingValue,
                "The component type is empty",
            ));
        } else if row.component_type.is_none() {
            row.issues.push(read.issue(
                Field::Type,
                IssueCode::UnknownComponentType,
                format!(
                    "{type_text:?} is not a component type; accepted: {}",
                    ComponentType::accepted_names()
                ),
            ));
        }
        row.tag = normalize::commodity_code(&read.text(Field::CmdtyCode));
        read.required_text(
            Field::CmdtyCode,
            &row.tag,
            "The commodity code / id is empty",
            &mut row.issues,
        );
        self.size(read, Field::Size, row);
        self.quantity(read, row);
        self.references(read, row);
        row.description = read.optional(Field::Description);
        row.spec = read.optional(Field::Spec);
    }

    fn field_weld(&mut self, read: &Reader<'_>, row: &mut ImportRow) {
        self.drawing(read, row);
        row.component_type = Some(ComponentType::FieldWeld);
        let type_text = read.text(Field::Type);
        if !type_text.is_empty()
            && ComponentType::parse(&type_text) != Some(ComponentType::FieldWeld)
        {
            row.issues.push(read.issue(
                Field::Type,
                IssueCode::NotAFieldWeld,
                format!("{type_text:?} is not a field weld"),
            ));
        }
        row.tag = normalize::commodity_code(&read.text(Field::WeldId));
        read.required_text(
            Field::WeldId,
            &row.tag,
            "The weld number is empty",
            &mut row.issues,
        );
        self.size(read, Field::WeldSize, row);
        row.quantity = 1.0;
        (row.seq_from, row.seq_to) = (1, 1);
        self.references(read, row);
        row.description = read.optional(Field::Description);
        row.spec = read.optional(Field::Spec);

        let mut weld = WeldFacts {
            weld_size: read.optional(Field::WeldSize),
            schedule: read.optional(Field::Schedule),
            base_metal: read.optional(Field::BaseMetal),
            ..WeldFacts::default()
        };
        let issues = &mut row.issues;
        if let Some(t) = read.optional(Field::WeldType) {
            let t = t.to_uppercase();
            if crate::domain::weld::WELD_TYPES.contains(&t.as_str()) {
                weld.weld_type = Some(t);
            } else {
                issues.push(read.issue(
                    Field::WeldType,
                    IssueCode::InvalidWeldType,
                    format!("{t:?} is not a weld type"),
                ));
            }
        }
        if let Some(text) = read.optional(Field::XrayPercent) {
            weld.xray_percent =
                xray_percent(read.cell(Field::XrayPercent), &text, read.layout.decimal);
            if weld.xray_percent.is_none() {
                issues.push(read.issue(
                    Field::XrayPercent,
                    IssueCode::InvalidXrayPercent,
                    format!("{text:?} is not an x-ray tier (0, 5, 10 or 100 %)"),
                ));
            }
        }
        if let Some(text) = read.optional(Field::Pwht) {
            weld.pwht_required = boolean(read.cell(Field::Pwht));
            if weld.pwht_required.is_none() {
                issues.push(read.issue(
                    Field::Pwht,
                    IssueCode::InvalidBoolean,
                    format!("{text:?} is not yes or no"),
                ));
            }
        }
        if let Some(text) = read.optional(Field::NdeTypes) {
            for part in text
                .split([',', ';', '/', '+', ' '])
                .map(str::trim)
                .filter(|p| !p.is_empty())
            {
                let part = part.to_uppercase();
                if !crate::domain::weld::METHODS.contains(&part.as_str()) {
                    issues.push(read.issue(
                        Field::NdeTypes,
                        IssueCode::InvalidNdeType,
                        format!("{part:?} is not an NDE type"),
                    ));
                } else if !weld.nde_types.contains(&part) {
                    weld.nde_types.push(part);
                }
            }
        }
        if let Some(text) = read.optional(Field::Stencil) {
            weld.stencil = normalize::stencil(&text);
            if weld.stencil.is_none() {
                issues.push(read.issue(
                    Field::Stencil,
                    IssueCode::InvalidStencil,
                    format!("{text:?} is not a welder stencil"),
                ));
            }
        }
        weld.date_welded = self.date(read, Field::DateWelded, false, issues);
        if let Some(text) = read.optional(Field::NdeResult) {
            weld.nde_result = match text.to_uppercase().as_str() {
                "PASS" | "PASSED" | "ACC" | "ACCEPT" | "ACCEPTED" => Some("PASS".into()),
                "FAIL" | "FAILED" | "REJ" | "REJECT" | "REJECTED" => Some("FAIL".into()),
                "PENDING" => Some("PENDING".into()),
                _ => {
                    issues.push(read.issue(
                        Field::NdeResult,
                        IssueCode::InvalidNdeResult,
                        format!("{text:?} is not an NDE result"),
                    ));
                    None
                }
            };
        }
        row.weld = Some(weld);
    }

    /// A date cell, or none when it is empty or not a date (an issue says which); a date after
    /// today is refused unless `future` (a schedule's plan). Learns the file's day/month order
    /// from the first date written as text.
    fn date(
        &mut self,
        read: &Reader<'_>,
        field: Field,
        future: bool,
        issues: &mut Vec<Issue>,
    ) -> Option<NaiveDate> {
        let text = read.optional(field)?;
        let cell = read.cell(field);
        if let (None, Cell::Text(t)) = (self.date_order, cell) {
            self.date_order = cell::date_order_shown(t);
        }
        let reading = cell::read_date(cell, self.date_order, read.layout.date_system);
        if let Some(DateReading::Ambiguous { used, other }) = reading {
            issues.push(read.issue(
                field,
                IssueCode::AmbiguousDate,
                format!(
                    "{text:?} reads as {used} (month first) or {other} (day first); {used} is used"
                ),
            ));
        }
        // Years 1 to 9999: what a date of the database reads back as written.
        match reading
            .map(DateReading::value)
            .filter(|d| (1..=9999).contains(&d.year()))
        {
            None => {
                issues.push(read.issue(
                    field,
                    IssueCode::InvalidDate,
                    format!("{text:?} is not a date"),
                ));
                None
            }
            Some(d) if d > self.today && !future => {
                issues.push(read.issue(
                    field,
                    IssueCode::FutureDate,
                    format!("{d} is in the future"),
                ));
                None
            }
            Some(d) => Some(d),
        }
    }

    /// A positive number of a cell (or none, when empty); an issue of `code` when it is not one.
    fn positive(
        &self,
        read: &Reader<'_>,
        field: Field,
        code: IssueCode,
        issues: &mut Vec<Issue>,
    ) -> Option<f64> {
        let text = read.optional(field)?;
        let value = match read.cell(field) {
            Cell::Number(n) => Some(*n),
            _ => number::read(text.trim(), read.layout.decimal).map(Reading::value),
        };
        match value {
            Some(n) if n.is_finite() && n > 0.0 && n < 1e9 => Some(n),
            _ => {
                issues.push(read.issue(field, code, format!("{text:?} is not a number above 0")));
                None
            }
        }
    }

    /// The group a schedule activity plans or hours are charged to: the first of the row's area,
    /// system, test package and drawing cells that holds a name (SQL finds it in the project).
    fn group(&self, read: &Reader<'_>, row: &mut ImportRow) -> Option<(&'static str, String)> {
        [
            (Field::Area, "area"),
            (Field::System, "system"),
            (Field::TestPackage, "test_package"),
            (Field::Drawing, "drawing"),
        ]
        .into_iter()
        .find_map(|(field, kind)| {
            let name = read.optional(field)?;
            if name.chars().count() > MAX_TEXT {
                row.issues.push(read.issue(
                    field,
                    IssueCode::ValueTooLong,
                    format!("The name is longer than {MAX_TEXT} characters"),
                ));
            }
            Some((kind, name.split_whitespace().collect::<Vec<_>>().join(" ")))
        })
    }

    /// A schedule activity: its id, name, planned dates (inclusive), budget man-hours (read by
    /// `budget`), weight and curve, staged under `CONTROLS_KEY`.
    fn activity(&mut self, read: &Reader<'_>, row: &mut ImportRow) {
        row.tag = read.text(Field::ActivityId).trim().to_string();
        read.required_text(
            Field::ActivityId,
            &row.tag,
            "The activity id is empty",
            &mut row.issues,
        );
        let name = read.optional(Field::ActivityName);
        if name.as_ref().is_some_and(|n| n.chars().count() > 500) {
            row.issues.push(read.issue(
                Field::ActivityName,
                IssueCode::ValueTooLong,
                "The activity name is longer than 500 characters",
            ));
        }
        let mut issues = Vec::new();
        let start = self.date(read, Field::PlannedStart, true, &mut issues);
        let finish = self.date(read, Field::PlannedFinish, true, &mut issues);
        for (field, value) in [(Field::PlannedStart, start), (Field::PlannedFinish, finish)] {
            if value.is_none() && read.optional(field).is_none() {
                issues.push(read.issue(
                    field,
                    IssueCode::MissingValue,
                    "The planned date is empty",
                ));
            }
        }
        if let (Some(s), Some(f)) = (start, finish) {
            if f < s {
                issues.push(read.issue(
                    Field::PlannedFinish,
                    IssueCode::FinishBeforeStart,
                    format!("The activity finishes ({f}) before it starts ({s})"),
                ));
            }
        }
        let weight = match self.positive(read, Field::Weight, IssueCode::InvalidWeight, &mut issues)
        {
            // Kept to 0.0001: a smaller weight would be nothing.
            Some(w) if w < 0.0001 => {
                issues.push(read.issue(
                    Field::Weight,
                    IssueCode::InvalidWeight,
                    format!("{w} is below 0.0001"),
                ));
                None
            }
            other => other,
        };
        let curve = match read.optional(Field::Curve) {
            None => Some(Curve::Linear),
            Some(text) => {
                let key = text.trim().to_lowercase().replace([' ', '-'], "_");
                let curve = match key.as_str() {
                    "s" | "bell" | "bell_shaped" => Some(Curve::SCurve),
                    "front" | "front_load" => Some(Curve::FrontLoaded),
                    "back" | "back_load" => Some(Curve::BackLoaded),
                    "uniform" | "flat" => Some(Curve::Linear),
                    other => Curve::from_str(other).ok(),
                };
                if curve.is_none() {
                    issues.push(read.issue(
                        Field::Curve,
                        IssueCode::InvalidCurve,
                        format!("{text:?} is not a curve"),
                    ));
                }
                curve
            }
        };
        let group = self.group(read, row);
        row.issues.extend(issues);
        let curve: Option<&'static str> = curve.map(Into::into);
        row.attributes.insert(
            CONTROLS_KEY.into(),
            serde_json::json!({
                "name": name,
                "planned_start": start.map(|d| d.to_string()),
                "planned_finish": finish.map(|d| d.to_string()),
                "weight": weight,
                "curve": curve,
                "group_by": group.as_ref().map_or("project", |g| g.0),
                "group": group.map(|g| g.1),
            }),
        );
    }

    /// A timesheet row: the work date (not in the future), who (a person or a crew), craft and
    /// hours, and the group charged, staged under `CONTROLS_KEY`.
    fn hours(&mut self, read: &Reader<'_>, row: &mut ImportRow) {
        let mut issues = Vec::new();
        let work_date = self.date(read, Field::WorkDate, false, &mut issues);
        if work_date.is_none() && read.optional(Field::WorkDate).is_none() {
            issues.push(read.issue(
                Field::WorkDate,
                IssueCode::MissingValue,
                "The work date is empty",
            ));
        }
        let person = read.optional(Field::Person);
        let crew = read.optional(Field::Crew);
        let craft = read.optional(Field::Craft);
        for (field, value) in [
            (Field::Person, &person),
            (Field::Crew, &crew),
            (Field::Craft, &craft),
        ] {
            if value.as_ref().is_some_and(|v| v.chars().count() > MAX_TEXT) {
                issues.push(read.issue(
                    field,
                    IssueCode::ValueTooLong,
                    format!("The name is longer than {MAX_TEXT} characters"),
                ));
            }
        }
        if person.is_none() && crew.is_none() {
            let field = if read.layout.mapping.index(Field::Person).is_some() {
                Field::Person
            } else {
                Field::Crew
            };
            issues.push(read.issue(
                field,
                IssueCode::MissingValue,
                "Neither a person nor a crew is named",
            ));
        }
        let hours = match self.positive(read, Field::Hours, IssueCode::InvalidHours, &mut issues) {
            Some(h)
                if !(0.01..=100_000.0).contains(&h)
                    || (h * 100.0 - (h * 100.0).round()).abs() > 1e-6 =>
            {
                issues.push(read.issue(
                    Field::Hours,
                    IssueCode::InvalidHours,
                    format!("{h} is over 100,000 hours or has more than two decimals"),
                ));
                None
            }
            None if read.optional(Field::Hours).is_none() => {
                issues.push(read.issue(
                    Field::Hours,
                    IssueCode::MissingValue,
                    "The hours are empty",
                ));
                None
            }
            other => other,
        };
        row.tag = person.clone().or_else(|| crew.clone()).unwrap_or_default();
        let group = self.group(read, row);
        row.issues.extend(issues);
        row.attributes.insert(
            CONTROLS_KEY.into(),
            serde_json::json!({
                "work_date": work_date.map(|d| d.to_string()),
                "person": person,
                "crew": crew,
                "craft": craft,
                "hours": hours.map(|h| (h * 100.0).round() / 100.0),
                "group_by": group.as_ref().map_or("project", |g| g.0),
                "group": group.map(|g| g.1),
            }),
        );
    }

    fn drawing(&mut self, read: &Reader<'_>, row: &mut ImportRow) {
        row.drawing_no = read.text(Field::Drawing);
        if self.last_drawing.0 != row.drawing_no {
            self.last_drawing = (
                row.drawing_no.clone(),
                normalize::drawing_key(&row.drawing_no),
            );
        }
        row.drawing_key = self.last_drawing.1.clone();
        read.required_text(
            Field::Drawing,
            &row.drawing_no,
            "The drawing number is empty",
            &mut row.issues,
        );
    }

    fn size(&self, read: &Reader<'_>, field: Field, row: &mut ImportRow) {
        let text = read.text(field);
        // `1,5` is 1.5 inches where the comma is the decimal mark.
        let size = if read.layout.decimal == Some(DecimalMark::Comma) {
            normalize::size(&text.replace(',', "."))
        } else {
            normalize::size(&text)
        };
        if !size.parsed {
            row.issues.push(read.issue(
                field,
                IssueCode::UnparsedSize,
                format!("{text:?} is not a size in inches; kept as {}", size.value),
            ));
        }
        row.size = size.value;
    }

    fn quantity(&self, read: &Reader<'_>, row: &mut ImportRow) {
        let identity = row.component_type.map(ComponentType::identity);
        let text = read.text(Field::Qty);
        let parsed = if read.layout.mapping.index(Field::Qty).is_none() {
            Some(1.0)
        } else if text.is_empty() {
            row.issues.push(read.issue(
                Field::Qty,
                IssueCode::QuantityDefaulted,
                "The quantity is empty; 1 is used",
            ));
            Some(1.0)
        } else {
            let trimmed = text.trim_end_matches(['\'', '’']).trim();
            let trimmed = ["LF", "FT", "FEET"]
                .iter()
                .find_map(|u| {
                    trimmed
                        .to_uppercase()
                        .strip_suffix(u)
                        .map(|s| s.trim().to_string())
                })
                .unwrap_or_else(|| trimmed.to_string());
            match read.cell(Field::Qty) {
                Cell::Number(n) => Some(*n),
                _ => match number::read(&trimmed, read.layout.decimal) {
                    Some(Reading::Ambiguous { used, other }) => {
                        row.issues.push(read.issue(
                            Field::Qty,
                            IssueCode::AmbiguousNumber,
                            format!(
                                "{trimmed:?} reads as {} or {}; {} is used",
                                cell::number_text(used),
                                cell::number_text(other),
                                cell::number_text(used)
                            ),
                        ));
                        Some(used)
                    }
                    reading => reading.map(Reading::value),
                },
            }
        };
        let linear = identity == Some(Identity::LinearAggregate);
        let quantity = match parsed {
            Some(n) if n < 0.0 || (!linear && n.fract() != 0.0) => None,
            other => other,
        };
        match quantity {
            None => {
                let expected = if linear {
                    "decimal feet"
                } else {
                    "a whole number"
                };
                row.issues.push(read.issue(
                    Field::Qty,
                    IssueCode::InvalidQuantity,
                    format!("{text:?} is not a quantity ({expected})"),
                ));
            }
            Some(0.0) => {
                row.issues.push(read.issue(
                    Field::Qty,
                    IssueCode::ZeroQuantity,
                    "Quantity 0: the row is skipped",
                ));
                row.status = RowStatus::Skipped;
            }
            Some(n) if !linear && n > MAX_ROW_QUANTITY => {
                row.issues.push(read.issue(
                    Field::Qty,
                    IssueCode::QuantityTooLarge,
                    format!("{text} items in one row is more than {MAX_ROW_QUANTITY}"),
                ));
            }
            Some(n) if linear && n > MAX_ROW_FEET => {
                row.issues.push(read.issue(
                    Field::Qty,
                    IssueCode::QuantityTooLarge,
                    format!("{text} feet in one row is more than {MAX_ROW_FEET}"),
                ));
            }
            Some(n)
                if n > 1.0
                    && matches!(
                        identity,
                        Some(Identity::ById | Identity::PerDrawing | Identity::Single)
                    ) =>
            {
                row.issues.push(read.issue(
                    Field::Qty,
                    IssueCode::QuantityIgnored,
                    format!("Quantity {text}: one is created for this id"),
                ));
                row.quantity = 1.0;
            }
            Some(n) if linear => row.quantity = (n * 100.0).round() / 100.0,
            Some(n) => row.quantity = n,
        }
    }

    /// The row's man-hour budget (spec §11), staged in its attributes as `pipetrak_budget_mh` (SQL
    /// takes it out, as it does the remediation reference): at least 0, under a billion.
    fn budget(&self, read: &Reader<'_>, row: &mut ImportRow) {
        let text = read.text(Field::BudgetMh);
        if read.layout.mapping.index(Field::BudgetMh).is_none() || text.is_empty() {
            return;
        }
        let value = match read.cell(Field::BudgetMh) {
            Cell::Number(n) => Some(*n),
            _ => number::read(text.trim(), read.layout.decimal).map(Reading::value),
        };
        match value {
            Some(n) if n.is_finite() && (0.0..1e9).contains(&n) => {
                row.attributes.insert(
                    BUDGET_KEY.into(),
                    serde_json::json!((n * 10_000.0).round() / 10_000.0),
                );
            }
            _ => row.issues.push(read.issue(
                Field::BudgetMh,
                IssueCode::InvalidBudget,
                format!("{text:?} is not a number of man-hours"),
            )),
        }
    }

    fn references(&self, read: &Reader<'_>, row: &mut ImportRow) {
        for (field, target) in [
            (Field::Area, &mut row.area),
            (Field::System, &mut row.system),
            (Field::TestPackage, &mut row.test_package),
        ] {
            *target = read
                .optional(field)
                .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "));
            if target
                .as_ref()
                .is_some_and(|t| t.chars().count() > MAX_TEXT)
            {
                row.issues.push(read.issue(
                    field,
                    IssueCode::ValueTooLong,
                    format!("The name is longer than {MAX_TEXT} characters"),
                ));
            }
        }
    }

    /// Notes a row that is valid on its own in the filter and flags it when its cells, its id or
    /// its item may have been seen before. Its seqs are numbered as the first of its item.
    fn register(&mut self, row: &mut ImportRow, cells: &[Cell]) {
        let Some(component_type) = row.component_type else {
            return;
        };
        let cells_hash = hash_of(&AsShown(cells));
        row.cells_hash = cells_hash as i64;
        let mut seen_before = self.seen.insert(cells_hash);
        let count = match component_type.identity() {
            Identity::ById => {
                seen_before |= self.seen.insert(hash_of(&("id", &row.tag)));
                1
            }
            Identity::PerDrawing => {
                seen_before |= self
                    .seen
                    .insert(hash_of(&("id", &row.drawing_key, &row.tag)));
                1
            }
            identity => {
                seen_before |= self.seen.insert(hash_of(&(
                    "item",
                    component_type,
                    &row.drawing_key,
                    &row.tag,
                    &row.size,
                )));
                if identity == Identity::PerSeq {
                    row.quantity as u32
                } else {
                    1
                }
            }
        };
        (row.seq_from, row.seq_to) = (1, count);
        self.found.components += u64::from(count);
        row.maybe_repeated = seen_before;
        self.counts.maybe_repeated += u32::from(seen_before);
    }
}

/// A Bloom filter of fixed size (2 MB): whether a hash may have been inserted before. It never
/// misses a repeat. It flags no new key among the 200,000 of a 100,000-row file and about one in
/// 10,000 of a million keys; a wrong flag costs SQL a little time and changes no result. Each hash
/// sets 8 bits within one 64-byte block, so an insert costs one cache miss, not eight.
struct SeenFilter {
    blocks: Vec<[u64; 8]>,
}

const SEEN_FILTER_BLOCKS: u64 = 1 << 15;

impl SeenFilter {
    fn new() -> SeenFilter {
        SeenFilter {
            blocks: vec![[0; 8]; SEEN_FILTER_BLOCKS as usize],
        }
    }

    /// Sets the hash's bits; true when all were already set.
    fn insert(&mut self, hash: u64) -> bool {
        let block = &mut self.blocks[(hash % SEEN_FILTER_BLOCKS) as usize];
        // Eight of the block's 512 bits, each from the top bits of a multiplicative step over
        // the whole hash, so that keys share positions only when their hashes are equal.
        let mut state = hash;
        let mut all_set = true;
        for _ in 0..8 {
            state = state
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(0x632B_E59B_D9B4_E019);
            let bit = state >> 55;
            let (word, mask) = ((bit / 64) as usize, 1u64 << (bit % 64));
            all_set &= block[word] & mask != 0;
            block[word] |= mask;
        }
        all_set
    }
}

/// A row's cells hashed as the user sees them (what `Cell::text` prints), without building strings.
struct AsShown<'a>(&'a [Cell]);

impl Hash for AsShown<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_usize(self.0.len());
        for cell in self.0 {
            match cell {
                Cell::Text(text) => text.trim().hash(state),
                other => other.text().hash(state),
            }
        }
    }
}

fn hash_of(key: &impl Hash) -> u64 {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
}

/// Cell access for one row through the layout's mapping.
struct Reader<'a> {
    layout: &'a Layout,
    cells: &'a [Cell],
    line: u32,
}

impl Reader<'_> {
    fn cell(&self, field: Field) -> &Cell {
        self.layout
            .mapping
            .index(field)
            .and_then(|i| self.cells.get(i))
            .unwrap_or(&Cell::Empty)
    }

    fn text(&self, field: Field) -> String {
        match self.cell(field) {
            Cell::Error(_) => String::new(),
            cell => cell.text(),
        }
    }

    fn optional(&self, field: Field) -> Option<String> {
        Some(self.text(field)).filter(|t| !t.is_empty())
    }

    fn header(&self, field: Field) -> String {
        self.layout
            .mapping
            .index(field)
            .and_then(|i| self.layout.header.get(i))
            .map_or_else(|| field.label().to_string(), |h| h.trim().to_string())
    }

    fn issue(&self, field: Field, code: IssueCode, message: impl Into<String>) -> Issue {
        Issue::new(self.line, code, message).at(&self.header(field), &self.cell(field).text())
    }

    fn required_text(
        &self,
        field: Field,
        value: &str,
        empty_message: &str,
        issues: &mut Vec<Issue>,
    ) {
        if value.is_empty() {
            issues.push(self.issue(field, IssueCode::MissingValue, empty_message));
        } else if value.chars().count() > MAX_TEXT {
            issues.push(self.issue(
                field,
                IssueCode::ValueTooLong,
                format!("The value is longer than {MAX_TEXT} characters"),
            ));
        }
    }

    /// Unmapped columns by their header, and COMMENTS, kept as the component's attributes; the
    /// remediation CSV's reference to the original row as `pipetrak_ref` (SQL takes it out: the
    /// staging statement serves every installed version, so it has no column of its own).
    fn attributes(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut attributes = serde_json::Map::new();
        // A column headed like a key the import stages its own values under is not kept: it
        // would replace them.
        for (index, header) in &self.layout.mapping.extra {
            let text = self.cells.get(*index).map(Cell::text).unwrap_or_default();
            if !text.is_empty() && !RESERVED_KEYS.contains(&header.as_str()) {
                attributes.insert(header.clone(), text.into());
            }
        }
        if let Some(reference) = self
            .optional(Field::RemediationRef)
            .as_deref()
            .and_then(reference)
        {
            attributes.insert(ORIGIN_KEY.into(), reference.into());
        }
        if let Some(comments) = self.optional(Field::Comments) {
            attributes.insert("comments".into(), comments.into());
        }
        attributes
    }
}

/// The attribute that carries a remediation row's reference to its original row to SQL.
pub const ORIGIN_KEY: &str = "pipetrak_ref";
/// The attributes the import stages its own values under (no column of a file takes them).
const RESERVED_KEYS: [&str; 4] = [ORIGIN_KEY, BUDGET_KEY, CONTROLS_KEY, "comments"];
/// The attribute that carries a row's man-hour budget into staging (see `budget`).
pub const BUDGET_KEY: &str = "pipetrak_budget_mh";
/// The attribute holding a schedule activity's or a timesheet row's typed values (SQL takes it
/// out into the baseline or the timesheet).
pub const CONTROLS_KEY: &str = "pipetrak_controls";

/// `<import id>:<row>`, as the remediation CSV writes it.
fn reference(text: &str) -> Option<String> {
    let (import, line) = text.trim().split_once(':')?;
    let import: u64 = import.trim().parse().ok()?;
    let line: u32 = line.trim().parse().ok()?;
    (import > 0 && line > 0 && import <= i64::MAX as u64 && line <= i32::MAX as u32)
        .then(|| format!("{import}:{line}"))
}

/// `5%`, `5` and `0.05` all mean 5; the tiers are 0, 5, 10 and 100.
fn xray_percent(cell: &Cell, text: &str, decimal: Option<DecimalMark>) -> Option<i32> {
    let percent_sign = text.trim_end().ends_with('%');
    // Every reading of an ambiguous text is far from a tier but one: `0,050` and `0.050` are
    // not ambiguous (a leading 0 never groups thousands).
    let n = number::read(text.trim().trim_end_matches('%'), decimal)
        .map(Reading::value)
        .or_else(|| cell.number())?;
    let percent = if !percent_sign && n > 0.0 && n <= 1.0 {
        n * 100.0
    } else {
        n
    };
    let rounded = percent.round();
    ((percent - rounded).abs() < 1e-6 && [0.0, 5.0, 10.0, 100.0].contains(&rounded))
        .then_some(rounded as i32)
}

fn boolean(cell: &Cell) -> Option<bool> {
    match cell {
        Cell::Bool(b) => Some(*b),
        Cell::Number(n) if *n == 1.0 => Some(true),
        Cell::Number(n) if *n == 0.0 => Some(false),
        _ => match cell.text().to_uppercase().as_str() {
            "TRUE" | "YES" | "Y" | "1" | "X" => Some(true),
            "FALSE" | "NO" | "N" | "0" => Some(false),
            _ => None,
        },
    }
}

/// The outcome of reading a whole file: its layout (or why it has none) and the row counts.
#[derive(Debug, Clone)]
pub struct FileOutcome {
    pub layout: Result<Layout, Issue>,
    pub counts: Counts,
    pub found: Found,
}

/// Reads and validates a whole file in memory, handing every non-blank row to `on_row` as it goes.
impl FileOutcome {
    /// A file the reader had to give up on, with why.
    pub fn unreadable(why: &str) -> FileOutcome {
        FileOutcome {
            layout: Err(Issue::new(
                0,
                IssueCode::UnsupportedFile,
                format!("The file can't be read: {why}"),
            )),
            counts: Counts::default(),
            found: Found::default(),
        }
    }
}

pub fn validate_file(
    bytes: &[u8],
    kind: Kind,
    today: NaiveDate,
    on_row: &mut dyn FnMut(ImportRow),
) -> FileOutcome {
    let mut file = bytes;
    validate_source(&mut file, kind, today, on_row)
}

/// Reads and validates a whole file, a block at a time, handing every non-blank row to `on_row`.
pub fn validate_source(
    file: &mut dyn FileSource,
    kind: Kind,
    today: NaiveDate,
    on_row: &mut dyn FnMut(ImportRow),
) -> FileOutcome {
    let mut validator = Validator::new(kind, today);
    let mut layout = source::read(file, kind, &mut |layout, row| {
        if let Some(row) = validator.row(layout, &row) {
            on_row(row);
        }
    });
    if let Ok(layout) = &mut layout {
        let (placeholders, first) = validator.placeholders;
        if placeholders > 0 {
            let id = match kind {
                Kind::Takeoff => "a commodity code",
                Kind::FieldWelds => "a weld number",
                Kind::Schedule => "an activity id",
                Kind::Timesheet => "a date",
            };
            layout.notes.push(Issue::new(
                first,
                IssueCode::PlaceholderRows,
                format!("{placeholders} rows hold only {id} and were not imported (the first is row {first})"),
            ));
        }
        if validator.counts.rows_read == 0 {
            layout.notes.push(Issue::new(
                layout.header_line,
                IssueCode::NoDataRows,
                "The file has a header but no rows to import",
            ));
        }
        validator.counts.errors += layout.notes.iter().filter(|n| n.is_error()).count() as u32;
        validator.counts.warnings += layout
            .notes
            .iter()
            .filter(|n| n.severity == Severity::Warning)
            .count() as u32;
        validator.counts.infos += layout
            .notes
            .iter()
            .filter(|n| n.severity == Severity::Info)
            .count() as u32;
    } else {
        validator.counts.errors += 1;
    }
    FileOutcome {
        layout,
        found: validator.found,
        counts: validator.counts,
    }
}

#[cfg(test)]
mod tests {
    use super::{hash_of, SeenFilter};

    #[test]
    fn the_seen_filter_never_misses_a_repeat_and_rarely_flags_a_new_key() {
        let mut seen = SeenFilter::new();
        // Two keys per row of a 100,000-row file, all distinct: next to no wrong flags.
        let wrong = (0..200_000u32)
            .filter(|i| seen.insert(hash_of(&("key", i))))
            .count();
        assert!(wrong <= 2, "{wrong} new keys flagged as seen");
        // Every key inserted again is flagged.
        assert!((0..200_000u32).all(|i| seen.insert(hash_of(&("key", i)))));
    }
}
