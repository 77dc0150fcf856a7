//! The domain's error keys. Each key is a row of `sql/01_bootstrap.sql`, which gives it its SQLSTATE,
//! message and hint; the SQL layer raises it (custom SQLSTATEs cannot be raised from Rust).

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    #[error("unknown milestone {0:?} for this component type")]
    UnknownMilestone(String),
    #[error("milestone value {0:?} is not a number between 0 and 100 with at most two decimals")]
    InvalidMilestoneValue(String),
    #[error("milestone {0:?} is done or not done: its value must be 0 or 100")]
    DiscreteMilestoneValue(String),
    #[error("the update breaks the milestone sequence")]
    OutOfSequence,
    #[error("the work date is in the future")]
    WorkDateInFuture,
    #[error("the work date is in a locked week")]
    WorkWeekLocked,
    #[error("the template is not valid: {0}")]
    InvalidTemplate(String),
}

impl DomainError {
    /// The stable snake_case key clients match on (and the primary key of `pipetrak.error_codes`).
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::UnknownMilestone(_) => "unknown_milestone",
            DomainError::InvalidMilestoneValue(_) => "invalid_milestone_value",
            DomainError::DiscreteMilestoneValue(_) => "discrete_milestone_value",
            DomainError::OutOfSequence => "out_of_sequence",
            DomainError::WorkDateInFuture => "work_date_in_future",
            DomainError::WorkWeekLocked => "work_week_locked",
            DomainError::InvalidTemplate(_) => "invalid_template",
        }
    }

    /// Every key, so a test can check the SQL catalog has each one.
    pub const ALL_CODES: &'static [&'static str] = &[
        "unknown_milestone",
        "invalid_milestone_value",
        "discrete_milestone_value",
        "out_of_sequence",
        "work_date_in_future",
        "work_week_locked",
        "invalid_template",
    ];
}
