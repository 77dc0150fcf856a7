//! Milestone templates: the system defaults of spec §5 and the checks a (re-weighted) template must pass.

use super::component_type::ComponentType;
use super::error::DomainError;

/// The report category a milestone counts toward.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString, strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
pub enum Category {
    Receive,
    Install,
    Punch,
    Test,
    Restore,
}

impl Category {
    pub const ALL: &'static [Category] = <Category as strum::VariantArray>::VARIANTS;

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(text: &str) -> Option<Category> {
        text.parse().ok()
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// The category of a default milestone name (spec §5).
    pub fn of_milestone(name: &str) -> Category {
        match name {
            "Receive" => Category::Receive,
            "Punch" => Category::Punch,
            "Test" => Category::Test,
            "Restore" => Category::Restore,
            _ => Category::Install,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Milestone {
    pub name: String,
    /// Integer percent; a template's weights sum to 100.
    pub weight: u32,
    /// Partial milestones take any value 0–100; discrete ones 0 or 100.
    pub partial: bool,
    pub category: Category,
}

/// The system default template of a component type.
pub fn default_template(component_type: ComponentType) -> Vec<Milestone> {
    use ComponentType::*;
    let rows: &[(&str, u32, bool)] = match component_type {
        Spool => &[
            ("Receive", 5, false),
            ("Erect", 40, false),
            ("Connect", 40, false),
            ("Punch", 5, false),
            ("Test", 5, false),
            ("Restore", 5, false),
        ],
        FieldWeld => &[
            ("Fit-up", 10, false),
            ("Weld Complete", 60, false),
            ("Punch", 10, false),
            ("Test", 15, false),
            ("Restore", 5, false),
        ],
        Pipe => &[
            ("Receive", 5, true),
            ("Erect", 30, true),
            ("Connect", 30, true),
            ("Support", 20, true),
            ("Punch", 5, false),
            ("Test", 5, false),
            ("Restore", 5, false),
        ],
        ThreadedPipe => &[
            ("Fabricate", 16, true),
            ("Erect", 20, true),
            ("Connect", 20, true),
            ("Support", 24, true),
            ("Punch", 5, false),
            ("Test", 10, false),
            ("Restore", 5, false),
        ],
        Valve | Fitting | Flange | Gasket | Bolt | Support | Instrument | Tubing | Hose
        | MiscComponent => &[
            ("Receive", 10, false),
            ("Install", 60, false),
            ("Punch", 10, false),
            ("Test", 15, false),
            ("Restore", 5, false),
        ],
    };
    rows.iter()
        .map(|&(name, weight, partial)| Milestone {
            name: name.to_string(),
            weight,
            partial,
            category: Category::of_milestone(name),
        })
        .collect()
}

/// A template is usable when it has milestones, unique names, and weights that sum to exactly 100.
pub fn validate(template: &[Milestone]) -> Result<(), DomainError> {
    if template.is_empty() {
        return Err(DomainError::InvalidTemplate("it has no milestones".into()));
    }
    let total: u32 = template.iter().map(|m| m.weight).sum();
    if total != 100 {
        return Err(DomainError::InvalidTemplate(format!(
            "the weights sum to {total}, not 100"
        )));
    }
    for (i, m) in template.iter().enumerate() {
        if template[..i].iter().any(|o| o.name == m.name) {
            return Err(DomainError::InvalidTemplate(format!(
                "{:?} appears twice",
                m.name
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_template_is_valid() {
        for &t in ComponentType::ALL {
            let template = default_template(t);
            assert_eq!(validate(&template), Ok(()), "{t:?}");
        }
    }

    #[test]
    fn categories_follow_the_spec() {
        let weld = default_template(ComponentType::FieldWeld);
        assert_eq!(weld[0].category, Category::Install); // Fit-up
        assert_eq!(weld[1].category, Category::Install); // Weld Complete
        let pipe = default_template(ComponentType::Pipe);
        assert!(pipe[..4].iter().all(|m| m.partial));
        assert!(!pipe[4].partial);
        assert_eq!(Category::of_milestone("Fabricate"), Category::Install);
        assert_eq!(Category::parse("punch"), Some(Category::Punch));
        assert_eq!(Category::parse("Punch"), None);
    }

    #[test]
    fn invalid_templates_are_refused() {
        let mut t = default_template(ComponentType::Valve);
        t[0].weight += 1;
        assert_eq!(validate(&t).map_err(|e| e.code()), Err("invalid_template"));
        let mut t = default_template(ComponentType::Valve);
        t[1].name = "Receive".into();
        assert!(validate(&t).is_err());
        assert!(validate(&[]).is_err());
    }
}
