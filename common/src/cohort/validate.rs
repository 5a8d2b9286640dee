//! Validation problems, and the checks that need the store.
//!
//! A [`Problem`] names where it is (row and column of `clinical.csv`, and the
//! patient when known) and what is wrong. [`Problems`] collects them up to a
//! limit and counts the rest, so a manifest with a million bad rows neither
//! floods the terminal nor hides how bad it is.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use super::manifest::Manifest;
use crate::store::{Store, StoreError, safe_segments};

/// How bad a problem is: errors make the cohort unusable, warnings do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// One problem in a cohort.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Problem {
    pub severity: Severity,
    /// The file the problem is in (`clinical.csv`, or a volume's path).
    pub file: String,
    /// 1-based data row (the header is row 0), when the problem is in a row.
    pub row: Option<usize>,
    /// The column, when the problem is in one.
    pub column: Option<String>,
    /// The patient, when the row's id could be read.
    pub patient_id: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{level}: {}", self.file)?;
        if let Some(row) = self.row {
            write!(f, " row {row}")?;
        }
        if let Some(column) = &self.column {
            write!(f, ", column {column}")?;
        }
        if let Some(id) = &self.patient_id {
            write!(f, " (patient {id})")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The default number of problems kept; the rest are only counted.
pub const DEFAULT_PROBLEM_LIMIT: usize = 200;

/// Problems collected up to a limit; the ones past it are counted.
#[derive(Clone, Debug, Serialize)]
pub struct Problems {
    pub problems: Vec<Problem>,
    /// Errors and warnings past the limit, not kept.
    pub omitted_errors: usize,
    pub omitted_warnings: usize,
    #[serde(skip)]
    limit: usize,
}

impl Default for Problems {
    fn default() -> Self {
        Self::with_limit(DEFAULT_PROBLEM_LIMIT)
    }
}

impl Problems {
    pub fn with_limit(limit: usize) -> Self {
        Problems {
            problems: Vec::new(),
            omitted_errors: 0,
            omitted_warnings: 0,
            limit,
        }
    }

    pub fn push(&mut self, problem: Problem) {
        if self.problems.len() < self.limit {
            self.problems.push(problem);
        } else if problem.severity == Severity::Error {
            self.omitted_errors += 1;
        } else {
            self.omitted_warnings += 1;
        }
    }

    pub fn extend(&mut self, other: Problems) {
        self.omitted_errors += other.omitted_errors;
        self.omitted_warnings += other.omitted_warnings;
        for p in other.problems {
            self.push(p);
        }
    }

    pub fn error_count(&self) -> usize {
        self.omitted_errors
            + self
                .problems
                .iter()
                .filter(|p| p.severity == Severity::Error)
                .count()
    }

    pub fn warning_count(&self) -> usize {
        self.omitted_warnings
            + self
                .problems
                .iter()
                .filter(|p| p.severity == Severity::Warning)
                .count()
    }

    pub fn has_errors(&self) -> bool {
        self.error_count() > 0
    }

    pub fn iter(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter()
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.problems {
            writeln!(f, "{p}")?;
        }
        if self.omitted_errors + self.omitted_warnings > 0 {
            writeln!(
                f,
                "... and {} more errors and {} more warnings",
                self.omitted_errors, self.omitted_warnings
            )?;
        }
        Ok(())
    }
}

/// Checks that every volume the manifest names exists on the store, with one
/// listing of the cohort root rather than one request per volume. Path safety
/// (absolute paths, `..`) was already checked when parsing.
pub async fn check_volumes(store: &Store, manifest: &Manifest) -> Result<Problems, StoreError> {
    let present: BTreeSet<String> = store.list().await?.into_iter().collect();
    let mut problems = Problems::default();
    for patient in &manifest.patients {
        for (sequence, path) in manifest.sequences.iter().zip(&patient.volumes) {
            if safe_segments(path).is_ok() && !present.contains(path) {
                problems.push(Problem {
                    severity: Severity::Error,
                    file: super::MANIFEST_FILE.to_string(),
                    row: Some(patient.row),
                    column: Some(format!("mri_{sequence}")),
                    patient_id: Some(patient.id.clone()),
                    message: format!(
                        "volume {path} is missing on the store ({})",
                        store.url_of(path)
                    ),
                });
            }
        }
    }
    Ok(problems)
}
