//! The inputs every survival statistic shares: follow-up times with event
//! indicators ([`SurvData`]) and a covariate matrix ([`Design`]), validated
//! once so the estimators can assume clean numbers.
//!
//! Rows in error messages are 1-based positions in the data as given (row 1 is
//! the first subject); the CSV loader in [`super::table`] reports file lines
//! instead, before the data ever gets here.

use super::SurvivalError;

/// Right-censored survival outcomes: `time[i]` is the follow-up time of
/// subject i and `event[i]` is true when it ended in an event (false:
/// censored). Times must be finite; they may be zero.
#[derive(Clone, Debug, PartialEq)]
pub struct SurvData {
    time: Vec<f64>,
    event: Vec<bool>,
}

impl SurvData {
    /// Validates lengths and that every time is a finite, non-negative number.
    pub fn new(time: Vec<f64>, event: Vec<bool>) -> Result<Self, SurvivalError> {
        if time.len() != event.len() {
            return Err(SurvivalError::Length {
                field: "event".into(),
                expected: time.len(),
                got: event.len(),
            });
        }
        if time.is_empty() {
            return Err(SurvivalError::Empty);
        }
        for (i, &t) in time.iter().enumerate() {
            if !t.is_finite() || t < 0.0 {
                return Err(SurvivalError::BadValue {
                    row: i + 1,
                    field: "time".into(),
                    value: t,
                    expected: "a finite, non-negative number",
                });
            }
        }
        Ok(SurvData { time, event })
    }

    pub fn time(&self) -> &[f64] {
        &self.time
    }

    pub fn event(&self) -> &[bool] {
        &self.event
    }

    pub fn len(&self) -> usize {
        self.time.len()
    }

    /// Never true: construction rejects empty data.
    pub fn is_empty(&self) -> bool {
        self.time.is_empty()
    }

    pub fn n_events(&self) -> usize {
        self.event.iter().filter(|&&e| e).count()
    }

    /// The subset of rows `idx` (in that order).
    pub fn subset(&self, idx: &[usize]) -> Result<SurvData, SurvivalError> {
        SurvData::new(
            idx.iter().map(|&i| self.time[i]).collect(),
            idx.iter().map(|&i| self.event[i]).collect(),
        )
    }
}

/// A numeric covariate matrix, n rows by p named columns, stored row-major
/// (the Cox fit reads one subject at a time).
#[derive(Clone, Debug, PartialEq)]
pub struct Design {
    names: Vec<String>,
    n: usize,
    values: Vec<f64>,
}

impl Design {
    /// Builds from named columns of equal length with finite values.
    pub fn from_columns(columns: Vec<(String, Vec<f64>)>) -> Result<Self, SurvivalError> {
        let n = columns.first().map_or(0, |c| c.1.len());
        let p = columns.len();
        let mut values = vec![0.0; n * p];
        let mut names = Vec::with_capacity(p);
        for (j, (name, col)) in columns.into_iter().enumerate() {
            if col.len() != n {
                return Err(SurvivalError::Length {
                    field: name,
                    expected: n,
                    got: col.len(),
                });
            }
            for (i, &v) in col.iter().enumerate() {
                if !v.is_finite() {
                    return Err(SurvivalError::BadValue {
                        row: i + 1,
                        field: name,
                        value: v,
                        expected: "a finite number",
                    });
                }
                values[i * p + j] = v;
            }
            names.push(name);
        }
        Ok(Design { names, n, values })
    }

    /// A design with no columns for `n` subjects (the null model).
    pub fn empty(n: usize) -> Self {
        Design {
            names: Vec::new(),
            n,
            values: Vec::new(),
        }
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn n_rows(&self) -> usize {
        self.n
    }

    pub fn n_cols(&self) -> usize {
        self.names.len()
    }

    /// Row i (p values).
    pub fn row(&self, i: usize) -> &[f64] {
        let p = self.n_cols();
        &self.values[i * p..(i + 1) * p]
    }

    /// Column j, copied out.
    pub fn column(&self, j: usize) -> Vec<f64> {
        let p = self.n_cols();
        (0..self.n).map(|i| self.values[i * p + j]).collect()
    }

    /// The columns `cols` only, in that order.
    pub fn select(&self, cols: &[usize]) -> Design {
        let p = self.n_cols();
        let mut values = Vec::with_capacity(self.n * cols.len());
        for i in 0..self.n {
            values.extend(cols.iter().map(|&j| self.values[i * p + j]));
        }
        Design {
            names: cols.iter().map(|&j| self.names[j].clone()).collect(),
            n: self.n,
            values,
        }
    }

    /// The rows `idx` only, in that order.
    pub fn subset(&self, idx: &[usize]) -> Design {
        let mut values = Vec::with_capacity(idx.len() * self.n_cols());
        for &i in idx {
            values.extend_from_slice(self.row(i));
        }
        Design {
            names: self.names.clone(),
            n: idx.len(),
            values,
        }
    }
}

/// Checks optional case weights (positive, finite, one per subject).
pub(crate) fn check_weights(weights: Option<&[f64]>, n: usize) -> Result<(), SurvivalError> {
    if let Some(w) = weights {
        if w.len() != n {
            return Err(SurvivalError::Length {
                field: "weights".into(),
                expected: n,
                got: w.len(),
            });
        }
        for (i, &v) in w.iter().enumerate() {
            if !v.is_finite() || v <= 0.0 {
                return Err(SurvivalError::BadValue {
                    row: i + 1,
                    field: "weight".into(),
                    value: v,
                    expected: "a positive, finite number",
                });
            }
        }
    }
    Ok(())
}

/// Checks an optional per-subject grouping (strata or groups).
pub(crate) fn check_groups(
    groups: Option<&[usize]>,
    n: usize,
    field: &str,
) -> Result<(), SurvivalError> {
    if let Some(g) = groups
        && g.len() != n
    {
        return Err(SurvivalError::Length {
            field: field.into(),
            expected: n,
            got: g.len(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_input_naming_row_and_field() {
        let err = SurvData::new(vec![1.0, f64::NAN], vec![true, false]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "row 2: time is NaN, expected a finite, non-negative number"
        );
        assert!(matches!(
            SurvData::new(vec![1.0], vec![true, false]),
            Err(SurvivalError::Length { .. })
        ));
        let err = Design::from_columns(vec![
            ("age".into(), vec![1.0, 2.0]),
            ("sex".into(), vec![1.0, f64::INFINITY]),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("row 2: sex"), "{err}");
        assert!(check_weights(Some(&[1.0, 0.0]), 2).is_err());
    }

    #[test]
    fn design_rows_columns_select() {
        let d = Design::from_columns(vec![
            ("a".into(), vec![1.0, 2.0, 3.0]),
            ("b".into(), vec![4.0, 5.0, 6.0]),
        ])
        .unwrap();
        assert_eq!(d.row(1), &[2.0, 5.0]);
        assert_eq!(d.column(1), vec![4.0, 5.0, 6.0]);
        assert_eq!(d.select(&[1]).row(2), &[6.0]);
        assert_eq!(d.subset(&[2, 0]).row(0), &[3.0, 6.0]);
    }
}
