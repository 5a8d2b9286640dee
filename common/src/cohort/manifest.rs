//! Parsing `clinical.csv` into a [`Manifest`], collecting every problem.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use serde::Serialize;

use super::validate::{Problem, Problems, Severity};
use crate::store::safe_segments;

/// The columns every manifest must have (besides at least one `mri_*`).
pub const REQUIRED_COLUMNS: [&str; 6] = [
    "patient_id",
    "diagnosis_date",
    "dfs_months",
    "dfs_event",
    "dmfs_months",
    "dmfs_event",
];

/// The study's clinical covariates: expected, and a warning when absent.
pub const STANDARD_COVARIATES: [&str; 6] = [
    "age",
    "sex",
    "t_stage",
    "n_stage",
    "ebv_dna",
    "concurrent_chemo",
];

/// The prefix that marks a column as an MRI sequence: `mri_t1` is sequence `t1`.
pub const SEQUENCE_PREFIX: &str = "mri_";

/// One survival endpoint of a patient.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Endpoint {
    /// Follow-up in months: to the event, or to the last contact if censored.
    pub months: f64,
    /// `true` for an event, `false` for censoring.
    pub event: bool,
}

/// A covariate value.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Covariate {
    Number(f64),
    Category(String),
    Missing,
}

impl Covariate {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Covariate::Number(x) => Some(*x),
            _ => None,
        }
    }
}

/// One patient of the cohort.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Patient {
    pub id: String,
    /// 1-based data row in `clinical.csv`, for messages.
    pub row: usize,
    pub diagnosis_date: NaiveDate,
    /// Volume paths relative to the cohort root, one per [`Manifest::sequences`].
    pub volumes: Vec<String>,
    pub dfs: Endpoint,
    pub dmfs: Endpoint,
    /// Covariate values, one per [`Manifest::covariate_names`].
    pub covariates: Vec<Covariate>,
}

/// The parsed manifest: every row that parsed without an error.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Manifest {
    /// The MRI sequences, in column order (`t1`, `t2`, `t1c`).
    pub sequences: Vec<String>,
    /// The covariate columns, in column order.
    pub covariate_names: Vec<String>,
    pub patients: Vec<Patient>,
}

impl Manifest {
    /// The index of a covariate column.
    pub fn covariate_index(&self, name: &str) -> Option<usize> {
        self.covariate_names.iter().position(|n| n == name)
    }

    /// A covariate of every patient, in patient order.
    pub fn covariate(&self, name: &str) -> Option<Vec<&Covariate>> {
        let i = self.covariate_index(name)?;
        Some(self.patients.iter().map(|p| &p.covariates[i]).collect())
    }
}

/// The result of parsing: the valid rows and every problem found.
#[derive(Clone, Debug)]
pub struct Parsed {
    pub manifest: Manifest,
    pub problems: Problems,
}

struct RowContext<'a> {
    file: &'a str,
    row: usize,
    patient_id: Option<String>,
    problems: &'a mut Problems,
    failed: bool,
}

impl RowContext<'_> {
    fn report(&mut self, severity: Severity, column: &str, message: String) {
        if severity == Severity::Error {
            self.failed = true;
        }
        self.problems.push(Problem {
            severity,
            file: self.file.to_string(),
            row: Some(self.row),
            column: Some(column.to_string()),
            patient_id: self.patient_id.clone(),
            message,
        });
    }

    fn error(&mut self, column: &str, message: String) {
        self.report(Severity::Error, column, message);
    }

    fn months(&mut self, column: &str, raw: &str) -> f64 {
        if is_missing(raw) {
            self.error(column, "missing time".to_string());
            return f64::NAN;
        }
        match raw.parse::<f64>() {
            Ok(x) if x.is_nan() => {
                self.error(column, "time is NaN".to_string());
                x
            }
            Ok(x) if !x.is_finite() => {
                self.error(column, format!("time {raw} is not finite"));
                x
            }
            Ok(x) if x < 0.0 => {
                self.error(column, format!("negative time {raw}"));
                x
            }
            Ok(x) => x,
            Err(_) => {
                self.error(column, format!("time {raw:?} is not a number"));
                f64::NAN
            }
        }
    }

    fn event(&mut self, column: &str, raw: &str) -> bool {
        match raw {
            "1" => true,
            "0" => false,
            _ if is_missing(raw) => {
                self.error(column, "missing event indicator".to_string());
                false
            }
            _ => {
                self.error(column, format!("event must be 0 or 1, found {raw:?}"));
                false
            }
        }
    }
}

fn is_missing(raw: &str) -> bool {
    matches!(raw, "" | "NA" | "na" | "NaN" | "nan" | "null" | "NULL")
}

/// Parses `clinical.csv` bytes. `file` names the source in problems.
///
/// Rows with errors are left out of the manifest and reported; the caller
/// decides whether warnings are acceptable ([`Problems::has_errors`]).
pub fn parse(bytes: &[u8], file: &str) -> Parsed {
    parse_with_limit(bytes, file, super::validate::DEFAULT_PROBLEM_LIMIT)
}

/// [`parse`] keeping at most `limit` problems.
pub fn parse_with_limit(bytes: &[u8], file: &str, limit: usize) -> Parsed {
    let mut problems = Problems::with_limit(limit);
    let empty = Manifest {
        sequences: Vec::new(),
        covariate_names: Vec::new(),
        patients: Vec::new(),
    };
    let file_problem = |message: String| Problem {
        severity: Severity::Error,
        file: file.to_string(),
        row: None,
        column: None,
        patient_id: None,
        message,
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let header: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(str::to_string).collect(),
        Err(e) => {
            problems.push(file_problem(format!("cannot read the header: {e}")));
            return Parsed {
                manifest: empty,
                problems,
            };
        }
    };
    if header.iter().all(String::is_empty) {
        problems.push(file_problem(
            "the file is empty or has no header".to_string(),
        ));
        return Parsed {
            manifest: empty,
            problems,
        };
    }

    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, name) in header.iter().enumerate() {
        if index.insert(name.as_str(), i).is_some() {
            problems.push(Problem {
                column: Some(name.clone()),
                ..file_problem("duplicate column".to_string())
            });
        }
    }
    let mut missing_required = false;
    for column in REQUIRED_COLUMNS {
        if !index.contains_key(column) {
            missing_required = true;
            problems.push(Problem {
                column: Some(column.to_string()),
                ..file_problem("missing required column".to_string())
            });
        }
    }
    for column in STANDARD_COVARIATES {
        if !index.contains_key(column) {
            problems.push(Problem {
                severity: Severity::Warning,
                column: Some(column.to_string()),
                ..file_problem("the study's covariate column is absent".to_string())
            });
        }
    }
    let sequence_columns: Vec<(String, usize)> = header
        .iter()
        .enumerate()
        .filter_map(|(i, name)| {
            let seq = name.strip_prefix(SEQUENCE_PREFIX)?;
            (!seq.is_empty()).then(|| (seq.to_string(), i))
        })
        .collect();
    if sequence_columns.is_empty() {
        missing_required = true;
        problems.push(file_problem(format!(
            "no MRI sequence column: name one column per sequence {SEQUENCE_PREFIX}<name>, e.g. mri_t1"
        )));
    }
    if missing_required {
        return Parsed {
            manifest: empty,
            problems,
        };
    }

    let covariate_columns: Vec<(String, usize)> = header
        .iter()
        .enumerate()
        .filter(|(_, name)| {
            !REQUIRED_COLUMNS.contains(&name.as_str())
                && !name.starts_with(SEQUENCE_PREFIX)
                && !name.is_empty()
        })
        .map(|(i, name)| (name.clone(), i))
        .collect();

    let col = |name: &str| index[name];
    let mut seen_ids: HashMap<String, usize> = HashMap::new();
    let mut patients = Vec::new();
    let mut raw_covariates: Vec<Vec<String>> = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let row = i + 1;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                problems.push(Problem {
                    row: Some(row),
                    ..file_problem(format!("unreadable row: {e}"))
                });
                continue;
            }
        };
        if record.len() != header.len() {
            problems.push(Problem {
                row: Some(row),
                ..file_problem(format!(
                    "row has {} fields, the header has {}",
                    record.len(),
                    header.len()
                ))
            });
            continue;
        }
        let get = |c: usize| record.get(c).unwrap_or("");
        let id = get(col("patient_id")).to_string();
        let mut ctx = RowContext {
            file,
            row,
            patient_id: (!id.is_empty()).then(|| id.clone()),
            problems: &mut problems,
            failed: false,
        };
        if id.is_empty() {
            ctx.error("patient_id", "missing patient id".to_string());
        } else if let Some(first) = seen_ids.get(&id) {
            ctx.error(
                "patient_id",
                format!("duplicate patient id {id:?} (first in row {first})"),
            );
        } else {
            seen_ids.insert(id.clone(), row);
        }
        let raw_date = get(col("diagnosis_date"));
        let diagnosis_date = match NaiveDate::parse_from_str(raw_date, "%Y-%m-%d") {
            Ok(d) => d,
            Err(_) => {
                ctx.error(
                    "diagnosis_date",
                    format!("bad date {raw_date:?}: expected an ISO date YYYY-MM-DD"),
                );
                NaiveDate::MIN
            }
        };
        let dfs = Endpoint {
            months: ctx.months("dfs_months", get(col("dfs_months"))),
            event: ctx.event("dfs_event", get(col("dfs_event"))),
        };
        let dmfs = Endpoint {
            months: ctx.months("dmfs_months", get(col("dmfs_months"))),
            event: ctx.event("dmfs_event", get(col("dmfs_event"))),
        };
        let mut volumes = Vec::with_capacity(sequence_columns.len());
        for (seq, c) in &sequence_columns {
            let path = get(*c);
            let column = format!("{SEQUENCE_PREFIX}{seq}");
            if path.is_empty() {
                ctx.error(&column, "missing volume path".to_string());
            } else if let Err(e) = safe_segments(path) {
                let reason = match e {
                    crate::store::StoreError::UnsafePath { reason, .. } => reason,
                    _ => "unsafe path",
                };
                ctx.error(
                    &column,
                    format!("volume path {path:?} must be relative to the cohort root: {reason}"),
                );
            }
            volumes.push(path.to_string());
        }
        let raw: Vec<String> = covariate_columns
            .iter()
            .map(|(_, c)| get(*c).to_string())
            .collect();
        if ctx.failed {
            continue;
        }
        patients.push(Patient {
            id,
            row,
            diagnosis_date,
            volumes,
            dfs,
            dmfs,
            covariates: Vec::new(),
        });
        raw_covariates.push(raw);
    }

    let names: Vec<String> = covariate_columns.into_iter().map(|(n, _)| n).collect();
    type_covariates(file, &names, &mut patients, raw_covariates, &mut problems);
    if patients.is_empty() && !problems.has_errors() {
        problems.push(file_problem("the manifest has no patients".to_string()));
    }
    Parsed {
        manifest: Manifest {
            sequences: sequence_columns.into_iter().map(|(s, _)| s).collect(),
            covariate_names: names,
            patients,
        },
        problems,
    }
}

/// Gives each covariate column a type: numeric when every present value is a
/// number, categorical otherwise; `concurrent_chemo` must be 0/1 and `age` and
/// `ebv_dna` numeric and non-negative. Missing standard covariates are warnings.
fn type_covariates(
    file: &str,
    names: &[String],
    patients: &mut [Patient],
    raw: Vec<Vec<String>>,
    problems: &mut Problems,
) {
    let mut columns_numeric: Vec<bool> = vec![true; names.len()];
    for row in &raw {
        for (j, v) in row.iter().enumerate() {
            if !is_missing(v) && v.parse::<f64>().is_err() {
                columns_numeric[j] = false;
            }
        }
    }
    let numeric_required: HashSet<&str> = ["age", "ebv_dna", "concurrent_chemo"].into();
    for (patient, row) in patients.iter_mut().zip(raw) {
        let mut warn = |column: &str, message: String, severity: Severity| {
            problems.push(Problem {
                severity,
                file: file.to_string(),
                row: Some(patient.row),
                column: Some(column.to_string()),
                patient_id: Some(patient.id.clone()),
                message,
            })
        };
        let mut values = Vec::with_capacity(names.len());
        for (j, v) in row.into_iter().enumerate() {
            let name = names[j].as_str();
            let value = if is_missing(&v) {
                if STANDARD_COVARIATES.contains(&name) {
                    warn(name, "missing value".to_string(), Severity::Warning);
                }
                Covariate::Missing
            } else if numeric_required.contains(name) {
                match v.parse::<f64>() {
                    Ok(x) if name == "concurrent_chemo" && x != 0.0 && x != 1.0 => {
                        warn(
                            name,
                            format!("must be 0 or 1, found {v:?}"),
                            Severity::Error,
                        );
                        Covariate::Missing
                    }
                    Ok(x) if !x.is_finite() || x < 0.0 => {
                        warn(
                            name,
                            format!("must be a non-negative number, found {v:?}"),
                            Severity::Error,
                        );
                        Covariate::Missing
                    }
                    Ok(x) => Covariate::Number(x),
                    Err(_) => {
                        warn(name, format!("{v:?} is not a number"), Severity::Error);
                        Covariate::Missing
                    }
                }
            } else if columns_numeric[j] {
                Covariate::Number(v.parse().unwrap_or(f64::NAN))
            } else {
                Covariate::Category(v)
            };
            values.push(value);
        }
        patient.covariates = values;
    }
}
