//! Reading a CSV table into the survival engine's inputs, for the
//! `cohort stats` subcommands (and the tests), with errors that say which
//! file, line and column is wrong.
//!
//! Conventions (the issue's): the first row is a header; values are trimmed;
//! an event column holds 0/1 (or true/false); categorical columns are
//! dummy-coded against their first level in sorted order, numeric order
//! when every level is a number (as an R factor of numbers), byte order
//! otherwise, with one 0/1 column `<column>_<level>` per other level. Empty
//! cells and `NA` are errors: silently dropping subjects would change a
//! study's numbers, so the caller must decide.

use super::{Design, SurvData, SurvivalError};
use std::path::Path;

/// What went wrong reading a table. Lines are 1-based file lines (the
/// header is line 1).
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: line {line}: {message}")]
    Csv {
        path: String,
        line: u64,
        message: String,
    },
    #[error("{path}: no column {column:?} (columns: {})", .available.join(", "))]
    MissingColumn {
        path: String,
        column: String,
        available: Vec<String>,
    },
    #[error("{path}: line {line}, column {column:?}: {value:?} is not {expected}")]
    BadValue {
        path: String,
        line: u64,
        column: String,
        value: String,
        expected: &'static str,
    },
    #[error("{path}: {source}")]
    Survival {
        path: String,
        #[source]
        source: SurvivalError,
    },
}

/// A CSV table held as strings, column-addressable.
#[derive(Clone, Debug)]
pub struct Table {
    path: String,
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    lines: Vec<u64>,
}

/// A grouping column: per-row codes into `levels` (sorted).
#[derive(Clone, Debug, PartialEq)]
pub struct Groups {
    pub codes: Vec<usize>,
    pub levels: Vec<String>,
}

fn parse_num(s: &str) -> Option<f64> {
    if s.is_empty() || s.eq_ignore_ascii_case("na") || s.eq_ignore_ascii_case("nan") {
        return None;
    }
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Sorts level labels numerically when all are numbers, else by bytes.
fn sort_levels(levels: &mut [String]) {
    let all_num = levels.iter().all(|l| parse_num(l).is_some());
    if all_num {
        levels.sort_by(|a, b| {
            parse_num(a)
                .unwrap_or(0.0)
                .total_cmp(&parse_num(b).unwrap_or(0.0))
        });
    } else {
        levels.sort();
    }
}

impl Table {
    /// Reads a CSV file.
    pub fn read(path: &Path) -> Result<Table, TableError> {
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|source| TableError::Io {
            path: name.clone(),
            source,
        })?;
        Self::from_reader(&name, file)
    }

    /// Reads CSV text from any reader; `name` is used in error messages.
    pub fn from_reader(name: &str, reader: impl std::io::Read) -> Result<Table, TableError> {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .trim(csv::Trim::All)
            .from_reader(reader);
        let csv_err = |e: csv::Error| TableError::Csv {
            path: name.to_string(),
            line: e.position().map_or(0, |p| p.line()),
            message: e.to_string(),
        };
        let headers: Vec<String> = rdr
            .headers()
            .map_err(csv_err)?
            .iter()
            .map(str::to_string)
            .collect();
        let mut rows = Vec::new();
        let mut lines = Vec::new();
        for rec in rdr.records() {
            let rec = rec.map_err(csv_err)?;
            lines.push(rec.position().map_or(0, |p| p.line()));
            rows.push(rec.iter().map(str::to_string).collect());
        }
        if rows.is_empty() {
            return Err(TableError::Csv {
                path: name.to_string(),
                line: 1,
                message: "the table has a header but no data rows".into(),
            });
        }
        Ok(Table {
            path: name.to_string(),
            headers,
            rows,
            lines,
        })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    pub fn n_rows(&self) -> usize {
        self.rows.len()
    }

    /// The index of a column, or an error listing the available ones.
    pub fn column_index(&self, column: &str) -> Result<usize, TableError> {
        self.headers
            .iter()
            .position(|h| h == column)
            .ok_or_else(|| TableError::MissingColumn {
                path: self.path.clone(),
                column: column.to_string(),
                available: self.headers.clone(),
            })
    }

    /// A column's raw strings.
    pub fn strings(&self, column: &str) -> Result<Vec<String>, TableError> {
        let j = self.column_index(column)?;
        let mut out = Vec::with_capacity(self.rows.len());
        for (r, line) in self.rows.iter().zip(&self.lines) {
            let v = r.get(j).cloned().unwrap_or_default();
            if v.is_empty() || v.eq_ignore_ascii_case("na") {
                return Err(self.bad(
                    *line,
                    column,
                    &v,
                    "a value (missing values are not allowed)",
                ));
            }
            out.push(v);
        }
        Ok(out)
    }

    fn bad(&self, line: u64, column: &str, value: &str, expected: &'static str) -> TableError {
        TableError::BadValue {
            path: self.path.clone(),
            line,
            column: column.to_string(),
            value: value.to_string(),
            expected,
        }
    }

    /// A numeric column (finite numbers only).
    pub fn numeric(&self, column: &str) -> Result<Vec<f64>, TableError> {
        let j = self.column_index(column)?;
        self.rows
            .iter()
            .zip(&self.lines)
            .map(|(r, &line)| {
                let v = r.get(j).map_or("", String::as_str);
                parse_num(v).ok_or_else(|| self.bad(line, column, v, "a finite number"))
            })
            .collect()
    }

    /// An event indicator column: 1/0, true/false, yes/no.
    pub fn events(&self, column: &str) -> Result<Vec<bool>, TableError> {
        let j = self.column_index(column)?;
        self.rows
            .iter()
            .zip(&self.lines)
            .map(|(r, &line)| {
                let v = r.get(j).map_or("", String::as_str);
                match v.to_ascii_lowercase().as_str() {
                    "1" | "1.0" | "true" | "yes" => Ok(true),
                    "0" | "0.0" | "false" | "no" => Ok(false),
                    _ => Err(self.bad(
                        line,
                        column,
                        v,
                        "an event indicator (1 = event, 0 = censored)",
                    )),
                }
            })
            .collect()
    }

    /// Survival outcomes from a time and an event column.
    pub fn surv(&self, time: &str, event: &str) -> Result<SurvData, TableError> {
        let t = self.numeric(time)?;
        if let Some(i) = t.iter().position(|&v| v < 0.0) {
            return Err(self.bad(
                self.lines[i],
                time,
                &self.rows[i][self.column_index(time)?],
                "a non-negative time",
            ));
        }
        let e = self.events(event)?;
        SurvData::new(t, e).map_err(|source| TableError::Survival {
            path: self.path.clone(),
            source,
        })
    }

    /// A grouping column with its sorted levels.
    pub fn groups(&self, column: &str) -> Result<Groups, TableError> {
        let raw = self.strings(column)?;
        let mut levels: Vec<String> = raw.clone();
        levels.sort();
        levels.dedup();
        sort_levels(&mut levels);
        let codes = raw
            .iter()
            .map(|v| levels.iter().position(|l| l == v).unwrap_or(0))
            .collect();
        Ok(Groups { codes, levels })
    }

    /// The design matrix for `covariates`, in order; those also listed in
    /// `categorical` are dummy-coded (see the module doc).
    pub fn design(
        &self,
        covariates: &[String],
        categorical: &[String],
    ) -> Result<Design, TableError> {
        for c in categorical {
            if !covariates.contains(c) {
                self.column_index(c)?;
            }
        }
        let mut cols = Vec::new();
        for c in covariates {
            if categorical.contains(c) {
                let g = self.groups(c)?;
                for (k, level) in g.levels.iter().enumerate().skip(1) {
                    cols.push((
                        format!("{c}_{level}"),
                        g.codes
                            .iter()
                            .map(|&v| if v == k { 1.0 } else { 0.0 })
                            .collect(),
                    ));
                }
            } else {
                cols.push((c.clone(), self.numeric(c)?));
            }
        }
        if cols.is_empty() {
            return Ok(Design::empty(self.n_rows()));
        }
        Design::from_columns(cols).map_err(|source| TableError::Survival {
            path: self.path.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "time,event,age,stage\n5,1,60,II\n3,0,55,I\n9,1,71,III\n4,1,48,II\n";

    #[test]
    fn reads_columns_and_dummy_codes() {
        let t = Table::from_reader("t.csv", CSV.as_bytes()).unwrap();
        let s = t.surv("time", "event").unwrap();
        assert_eq!(s.n_events(), 3);
        let d = t
            .design(&["age".into(), "stage".into()], &["stage".into()])
            .unwrap();
        assert_eq!(d.names(), &["age", "stage_II", "stage_III"]);
        assert_eq!(d.row(0), &[60.0, 1.0, 0.0]);
        assert_eq!(d.row(1), &[55.0, 0.0, 0.0]);
    }

    #[test]
    fn numeric_levels_sort_numerically() {
        let t = Table::from_reader("t.csv", "g\n10\n9\n2\n".as_bytes()).unwrap();
        assert_eq!(t.groups("g").unwrap().levels, vec!["2", "9", "10"]);
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let t = Table::from_reader("t.csv", "time,event\n5,1\nx,0\n".as_bytes()).unwrap();
        let e = t.surv("time", "event").unwrap_err().to_string();
        assert_eq!(
            e,
            "t.csv: line 3, column \"time\": \"x\" is not a finite number"
        );
        let e = t.numeric("age").unwrap_err().to_string();
        assert!(
            e.contains("no column \"age\"") && e.contains("time, event"),
            "{e}"
        );
        let t = Table::from_reader("t.csv", "time,event\n5,2\n".as_bytes()).unwrap();
        assert!(
            t.events("event")
                .unwrap_err()
                .to_string()
                .contains("line 2")
        );
    }
}
