//! The study's split: a random train / validation split of a development
//! window of diagnosis dates, and a temporal test window.
//!
//! In the reference study, patients diagnosed October 2010 to March 2015 were
//! split at random into training (n = 878) and validation (n = 376), and the
//! patients of April to September 2015 formed a temporal test cohort (n = 382).
//! [`SplitRule::study`] is that rule.
//!
//! The assignment is a pure function of the set of patient ids and dates, the
//! rule and its seed: patients are sorted by id before the seeded shuffle, so
//! reordering the manifest's rows changes nothing.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::manifest::Manifest;
use crate::rng::Rng;

/// Which part of the study a patient belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Validation,
    Test,
    /// Diagnosed outside both windows.
    Excluded,
}

impl Split {
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
            Split::Test => "test",
            Split::Excluded => "excluded",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An inclusive window of diagnosis dates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DateWindow {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl DateWindow {
    pub fn contains(&self, date: NaiveDate) -> bool {
        self.start <= date && date <= self.end
    }
}

impl fmt::Display for DateWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

/// How many development patients go to validation.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValidationSize {
    /// A fraction of the development window, rounded to the nearest patient.
    Fraction(f64),
    /// An exact count.
    Count(usize),
}

/// The split rule. Its text form (`--split-rule`) is
/// `dev=2010-10-01..2015-03-31;val=0.3;test=2015-04-01..2015-09-30;seed=7`,
/// where `val` is a fraction (`0.3`) or a count (`376`); omitted keys take the
/// study's values.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitRule {
    pub development: DateWindow,
    pub validation: ValidationSize,
    pub test: DateWindow,
    pub seed: u64,
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a valid constant date")
}

impl SplitRule {
    /// The reference study's rule.
    pub fn study() -> Self {
        SplitRule {
            development: DateWindow {
                start: date(2010, 10, 1),
                end: date(2015, 3, 31),
            },
            validation: ValidationSize::Fraction(0.3),
            test: DateWindow {
                start: date(2015, 4, 1),
                end: date(2015, 9, 30),
            },
            seed: 7,
        }
    }

    /// Assigns every patient of the manifest, in manifest order.
    pub fn assign(&self, manifest: &Manifest) -> Result<SplitAssignment, SplitError> {
        let keys: Vec<(&str, NaiveDate)> = manifest
            .patients
            .iter()
            .map(|p| (p.id.as_str(), p.diagnosis_date))
            .collect();
        self.assign_keys(&keys)
    }

    /// Assigns `(patient_id, diagnosis_date)` pairs, in the given order.
    pub fn assign_keys(
        &self,
        patients: &[(&str, NaiveDate)],
    ) -> Result<SplitAssignment, SplitError> {
        if self.development.start > self.development.end || self.test.start > self.test.end {
            return Err(SplitError::EmptyWindow);
        }
        let overlap =
            self.development.start <= self.test.end && self.test.start <= self.development.end;
        if overlap {
            return Err(SplitError::OverlappingWindows);
        }
        let mut splits = vec![Split::Excluded; patients.len()];
        let mut development: Vec<usize> = Vec::new();
        for (i, (_, date)) in patients.iter().enumerate() {
            if self.development.contains(*date) {
                development.push(i);
            } else if self.test.contains(*date) {
                splits[i] = Split::Test;
            }
        }
        development.sort_by(|&a, &b| patients[a].0.cmp(patients[b].0));
        let n_dev = development.len();
        let n_val = match self.validation {
            ValidationSize::Fraction(f) if (0.0..=1.0).contains(&f) => {
                (f * n_dev as f64).round() as usize
            }
            ValidationSize::Fraction(f) => return Err(SplitError::BadFraction(f)),
            ValidationSize::Count(c) if c <= n_dev => c,
            ValidationSize::Count(c) => {
                return Err(SplitError::TooManyValidation {
                    requested: c,
                    available: n_dev,
                });
            }
        };
        let mut rng = Rng::derive(self.seed, "cohort-split");
        rng.shuffle(&mut development);
        for (k, &i) in development.iter().enumerate() {
            splits[i] = if k < n_val {
                Split::Validation
            } else {
                Split::Train
            };
        }
        Ok(SplitAssignment { splits })
    }
}

impl Default for SplitRule {
    fn default() -> Self {
        Self::study()
    }
}

impl fmt::Display for SplitRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let val = match self.validation {
            ValidationSize::Fraction(x) => format!("{x}"),
            ValidationSize::Count(c) => format!("{c}"),
        };
        write!(
            f,
            "dev={};val={val};test={};seed={}",
            self.development, self.test, self.seed
        )
    }
}

/// Why a split rule cannot be parsed or applied.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SplitError {
    #[error("split rule: {0}")]
    Syntax(String),
    #[error("split rule: a window ends before it starts")]
    EmptyWindow,
    #[error("split rule: the development and test windows overlap")]
    OverlappingWindows,
    #[error("split rule: validation fraction {0} is not between 0 and 1")]
    BadFraction(f64),
    #[error(
        "split rule: {requested} validation patients requested, the development window has {available}"
    )]
    TooManyValidation { requested: usize, available: usize },
}

fn parse_window(raw: &str) -> Result<DateWindow, SplitError> {
    let (a, b) = raw.split_once("..").ok_or_else(|| {
        SplitError::Syntax(format!(
            "window {raw:?} must look like 2010-10-01..2015-03-31"
        ))
    })?;
    let parse = |s: &str| {
        NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .map_err(|_| SplitError::Syntax(format!("bad date {s:?} in window {raw:?}")))
    };
    Ok(DateWindow {
        start: parse(a)?,
        end: parse(b)?,
    })
}

impl FromStr for SplitRule {
    type Err = SplitError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut rule = SplitRule::study();
        for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| SplitError::Syntax(format!("{part:?} is not key=value")))?;
            match key.trim() {
                "dev" => rule.development = parse_window(value)?,
                "test" => rule.test = parse_window(value)?,
                "val" => {
                    let value = value.trim();
                    rule.validation =
                        if value.contains('.') {
                            ValidationSize::Fraction(value.parse().map_err(|_| {
                                SplitError::Syntax(format!("bad fraction {value:?}"))
                            })?)
                        } else {
                            ValidationSize::Count(
                                value.parse().map_err(|_| {
                                    SplitError::Syntax(format!("bad count {value:?}"))
                                })?,
                            )
                        };
                }
                "seed" => {
                    rule.seed = value
                        .trim()
                        .parse()
                        .map_err(|_| SplitError::Syntax(format!("bad seed {value:?}")))?
                }
                other => {
                    return Err(SplitError::Syntax(format!(
                        "unknown key {other:?} (expected dev, val, test or seed)"
                    )));
                }
            }
        }
        Ok(rule)
    }
}

/// The split of every patient, in manifest order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitAssignment {
    pub splits: Vec<Split>,
}

impl SplitAssignment {
    pub fn count(&self, split: Split) -> usize {
        self.splits.iter().filter(|&&s| s == split).count()
    }

    /// Indices (into the manifest's patients) of one split.
    pub fn indices(&self, split: Split) -> Vec<usize> {
        (0..self.splits.len())
            .filter(|&i| self.splits[i] == split)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patients(n: usize, window: DateWindow) -> Vec<(String, NaiveDate)> {
        let days = (window.end - window.start).num_days();
        (0..n)
            .map(|i| {
                let offset = (i as i64 * 7919) % (days + 1);
                (
                    format!("P{i:05}"),
                    window.start + chrono::Duration::days(offset),
                )
            })
            .collect()
    }

    #[test]
    fn study_rule_gives_the_study_counts() {
        let rule = SplitRule::study();
        let mut all = patients(1254, rule.development);
        all.extend(
            patients(382, rule.test)
                .into_iter()
                .map(|(id, d)| (format!("T{id}"), d)),
        );
        let keys: Vec<(&str, NaiveDate)> = all.iter().map(|(id, d)| (id.as_str(), *d)).collect();
        let a = rule.assign_keys(&keys).unwrap();
        assert_eq!(a.count(Split::Train), 878);
        assert_eq!(a.count(Split::Validation), 376);
        assert_eq!(a.count(Split::Test), 382);
        assert_eq!(a.count(Split::Excluded), 0);
    }

    #[test]
    fn split_does_not_depend_on_row_order_and_depends_on_seed() {
        let rule = SplitRule::study();
        let all = patients(300, rule.development);
        let keys: Vec<(&str, NaiveDate)> = all.iter().map(|(id, d)| (id.as_str(), *d)).collect();
        let a = rule.assign_keys(&keys).unwrap();
        let mut reversed = keys.clone();
        reversed.reverse();
        let b = rule.assign_keys(&reversed).unwrap();
        let mut b_splits = b.splits.clone();
        b_splits.reverse();
        assert_eq!(a.splits, b_splits);
        let other = SplitRule { seed: 8, ..rule }.assign_keys(&keys).unwrap();
        assert_ne!(a.splits, other.splits);
        assert_eq!(other.count(Split::Validation), 90);
    }

    #[test]
    fn rule_text_round_trips_and_errors_are_named() {
        let rule: SplitRule = "dev=2011-01-01..2012-12-31;val=100;seed=3".parse().unwrap();
        assert_eq!(rule.validation, ValidationSize::Count(100));
        assert_eq!(rule.seed, 3);
        assert_eq!(rule.to_string().parse::<SplitRule>().unwrap(), rule);
        assert!(matches!(
            "dev=2011-13-01..2012-01-01".parse::<SplitRule>(),
            Err(SplitError::Syntax(_))
        ));
        assert!(matches!(
            "foo=1".parse::<SplitRule>(),
            Err(SplitError::Syntax(_))
        ));
        let overlapping: SplitRule = "test=2015-01-01..2015-09-30".parse().unwrap();
        assert_eq!(
            overlapping.assign_keys(&[]),
            Err(SplitError::OverlappingWindows)
        );
        let too_many: SplitRule = "val=5".parse().unwrap();
        assert!(matches!(
            too_many.assign_keys(&[("a", date(2012, 1, 1))]),
            Err(SplitError::TooManyValidation {
                requested: 5,
                available: 1
            })
        ));
    }
}
