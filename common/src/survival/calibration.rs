//! Calibration of predicted t-year survival: subjects are split into groups
//! of (nearly) equal size by their predicted survival at the horizon, and in
//! each group the mean predicted survival is set against the Kaplan-Meier
//! estimate at the horizon with its 95% log-scale CI (the "apparent"
//! calibration curve of R `rms::calibrate(..., u = t)` without the bootstrap
//! bias correction, and the grouping of a Hosmer-Lemeshow-type plot).
//! The figure is drawn by `crate::plot::calibration`.

use super::km::kaplan_meier;
use super::{SurvData, SurvivalError};
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CalibrationGroup {
    pub group: usize,
    pub n: usize,
    pub events: usize,
    /// Range of predicted survival in the group.
    pub predicted_min: f64,
    pub predicted_max: f64,
    /// Mean predicted survival at the horizon.
    pub predicted: f64,
    /// Kaplan-Meier survival at the horizon, with its CI.
    pub observed: f64,
    pub lower: f64,
    pub upper: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Calibration {
    pub horizon: f64,
    pub groups: Vec<CalibrationGroup>,
}

/// Predicted (`predicted[i]` = S(horizon | x_i)) against observed survival
/// in `n_groups` groups of predicted survival.
pub fn calibration(
    data: &SurvData,
    predicted: &[f64],
    horizon: f64,
    n_groups: usize,
) -> Result<Calibration, SurvivalError> {
    let n = data.len();
    if predicted.len() != n {
        return Err(SurvivalError::Length {
            field: "predicted".into(),
            expected: n,
            got: predicted.len(),
        });
    }
    if let Some(i) = predicted.iter().position(|p| !(0.0..=1.0).contains(p)) {
        return Err(SurvivalError::BadValue {
            row: i + 1,
            field: "predicted survival".into(),
            value: predicted[i],
            expected: "a probability",
        });
    }
    if n_groups == 0 || n_groups > n {
        return Err(SurvivalError::Invalid(format!(
            "calibration: {n_groups} groups for {n} subjects"
        )));
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| predicted[a].total_cmp(&predicted[b]));
    let mut groups = Vec::with_capacity(n_groups);
    for g in 0..n_groups {
        let (lo, hi) = (g * n / n_groups, (g + 1) * n / n_groups);
        let rows = &order[lo..hi];
        let sub = data.subset(rows)?;
        let km = kaplan_meier(&sub, 0.95)?;
        let (observed, lower, upper) = match km.row_at(horizon) {
            None => (1.0, 1.0, 1.0),
            Some(k) => (km.surv[k], km.lower[k], km.upper[k]),
        };
        let preds: Vec<f64> = rows.iter().map(|&i| predicted[i]).collect();
        groups.push(CalibrationGroup {
            group: g,
            n: rows.len(),
            events: sub.n_events(),
            predicted_min: preds[0],
            predicted_max: preds[preds.len() - 1],
            predicted: preds.iter().sum::<f64>() / preds.len() as f64,
            observed,
            lower,
            upper,
        });
    }
    Ok(Calibration { horizon, groups })
}
