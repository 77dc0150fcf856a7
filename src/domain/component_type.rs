//! The fourteen component types, the names imports accept for them, and how each is identified.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum ComponentType {
    Spool,
    FieldWeld,
    Pipe,
    ThreadedPipe,
    Valve,
    Fitting,
    Flange,
    Gasket,
    Bolt,
    Support,
    Instrument,
    Tubing,
    Hose,
    MiscComponent,
}

/// What makes a component unique among the live components of a project (spec §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
pub enum Identity {
    /// One per id in the project: spool id.
    ById,
    /// One per (drawing, number): field welds, whose numbers restart in each weld log of a job.
    PerDrawing,
    /// One aggregate per (drawing, size, commodity code); quantity is linear feet.
    LinearAggregate,
    /// One per (drawing, tag, size); a quantity above one is a warning.
    Single,
    /// (drawing, commodity code, size, seq): quantity n makes seq 1..n.
    PerSeq,
}

impl ComponentType {
    pub const ALL: &'static [ComponentType] = <ComponentType as strum::VariantArray>::VARIANTS;

    /// The canonical name (snake_case of the variant). `parse` reads the spellings people use.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The canonical names of the types identified by `identity`, for SQL that needs the rule.
    pub fn identified_by(identity: Identity) -> Vec<&'static str> {
        ComponentType::ALL
            .iter()
            .filter(|t| t.identity() == identity)
            .map(|t| t.as_str())
            .collect()
    }

    pub fn identity(self) -> Identity {
        match self {
            ComponentType::Spool => Identity::ById,
            ComponentType::FieldWeld => Identity::PerDrawing,
            ComponentType::Pipe | ComponentType::ThreadedPipe => Identity::LinearAggregate,
            ComponentType::Instrument => Identity::Single,
            _ => Identity::PerSeq,
        }
    }

    /// Reads a type name the way people write it: any case, separators, plurals, common spellings.
    pub fn parse(input: &str) -> Option<ComponentType> {
        let key: String = input
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect();
        if key.is_empty() {
            return None;
        }
        Self::from_key(&key)
            .or_else(|| key.strip_suffix('s').and_then(Self::from_key))
            .or_else(|| key.strip_suffix("es").and_then(Self::from_key))
    }

    fn from_key(key: &str) -> Option<ComponentType> {
        Some(match key {
            "spool" | "pipespool" => ComponentType::Spool,
            "fieldweld" | "weld" | "fw" => ComponentType::FieldWeld,
            "pipe" | "pipeline" => ComponentType::Pipe,
            "threadedpipe" => ComponentType::ThreadedPipe,
            "valve" => ComponentType::Valve,
            "fitting" => ComponentType::Fitting,
            "flange" => ComponentType::Flange,
            "gasket" => ComponentType::Gasket,
            "bolt" | "studbolt" | "stud" | "boltset" => ComponentType::Bolt,
            "support" | "pipesupport" | "hanger" => ComponentType::Support,
            "instrument" | "inst" => ComponentType::Instrument,
            "tubing" | "tube" => ComponentType::Tubing,
            "hose" => ComponentType::Hose,
            "misccomponent" | "misc" | "miscellaneous" => ComponentType::MiscComponent,
            _ => return None,
        })
    }

    /// The list an error message shows when a name is not recognised.
    pub fn accepted_names() -> String {
        Self::ALL
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_case_plurals_and_spellings() {
        for (input, expected) in [
            ("Field Weld", ComponentType::FieldWeld),
            ("FIELD_WELD", ComponentType::FieldWeld),
            ("Valves", ComponentType::Valve),
            ("Stud Bolt", ComponentType::Bolt),
            ("Stud Bolts", ComponentType::Bolt),
            ("Misc", ComponentType::MiscComponent),
            ("misc_component", ComponentType::MiscComponent),
            ("Threaded Pipe", ComponentType::ThreadedPipe),
            ("SUPPORT", ComponentType::Support),
            ("hoses", ComponentType::Hose),
            (" spool ", ComponentType::Spool),
        ] {
            assert_eq!(ComponentType::parse(input), Some(expected), "{input}");
        }
    }

    #[test]
    fn rejects_unknown_names() {
        for input in ["", "  ", "widget", "valv", "s", "es"] {
            assert_eq!(ComponentType::parse(input), None, "{input:?}");
        }
    }

    #[test]
    fn every_canonical_name_round_trips() {
        for &t in ComponentType::ALL {
            assert_eq!(ComponentType::parse(t.as_str()), Some(t));
        }
        assert_eq!(ComponentType::accepted_names().split(", ").count(), 14);
    }

    #[test]
    fn identity_follows_the_spec_table() {
        assert_eq!(ComponentType::Spool.identity(), Identity::ById);
        assert_eq!(ComponentType::FieldWeld.identity(), Identity::PerDrawing);
        assert_eq!(ComponentType::Pipe.identity(), Identity::LinearAggregate);
        assert_eq!(
            ComponentType::ThreadedPipe.identity(),
            Identity::LinearAggregate
        );
        assert_eq!(ComponentType::Instrument.identity(), Identity::Single);
        assert_eq!(ComponentType::Gasket.identity(), Identity::PerSeq);
    }

    #[test]
    fn every_type_has_exactly_one_identity_rule() {
        let groups = [
            "by_id",
            "per_drawing",
            "linear_aggregate",
            "single",
            "per_seq",
        ]
        .map(|name| ComponentType::identified_by(name.parse().expect("an identity")));
        assert_eq!(groups[0], ["spool"]);
        assert_eq!(groups[1], ["field_weld"]);
        assert_eq!(groups[2], ["pipe", "threaded_pipe"]);
        assert_eq!(groups[3], ["instrument"]);
        assert_eq!(
            groups.iter().map(Vec::len).sum::<usize>(),
            ComponentType::ALL.len()
        );
    }
}
