//! The one error type of the survival engine.

/// Why a survival statistic could not be computed. Rows are 1-based
/// positions in the data as passed in.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SurvivalError {
    #[error("{field} has {got} values, expected {expected} (one per subject)")]
    Length {
        field: String,
        expected: usize,
        got: usize,
    },
    #[error("no subjects")]
    Empty,
    #[error("row {row}: {field} is {value}, expected {expected}")]
    BadValue {
        row: usize,
        field: String,
        value: f64,
        expected: &'static str,
    },
    #[error("no events: {0} needs at least one observed event")]
    NoEvents(&'static str),
    #[error("covariates {} are linear combinations of the others (collinear); drop them", .columns.join(", "))]
    Collinear { columns: Vec<String> },
    #[error("{0}")]
    Invalid(String),
}
