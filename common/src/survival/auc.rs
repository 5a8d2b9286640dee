//! Time-dependent AUC: the cumulative/dynamic AUC at given horizons with
//! inverse probability of censoring weights, and its integrated mean, exactly
//! as scikit-survival's `cumulative_dynamic_auc` (0.28).
//!
//! # Why
//!
//! Harrell's C summarises discrimination over the whole follow-up; clinical
//! papers also report how well a risk score separates patients who have an
//! event by t years from those still event-free at t (Uno et al. 2007; Hung
//! & Chiang 2010), at the horizons of interest (3 and 5 years). Censoring
//! hides some cases, so each case is weighted by 1 / G(T_i), the inverse
//! probability of remaining uncensored.
//!
//! # Definition (sksurv's, reproduced to the last convention)
//!
//! At horizon t, cases are subjects with an event at T_i ≤ t, controls those
//! with T_i > t. Subjects are sorted by decreasing score; the ROC curve has
//! true-positive rate Σ_{cases above threshold} w_i / Σ_{cases} w_i and
//! false-positive rate #{controls above threshold} / #controls, with one
//! point per distinct score (scores closer than 1e-8 count as tied, and only
//! the last point of a tied run is kept), starting at (0, 0); the AUC is the
//! trapezoidal area. w_i = 1 / G(T_i), where G is the Kaplan-Meier estimate of
//! the *censoring* distribution from the training data, in sksurv's
//! convention: at each distinct time the events there leave the risk set
//! before the censorings are counted, G(t) = Π_{s ≤ t} (1 - c_s / (n_s - d_s)),
//! and it is evaluated at T_i inclusive. (R's `survfit` on flipped event
//! indicators would divide by n_s instead, a different estimate; this is why
//! the censoring curve is computed here rather than with [`super::km`].)
//! G = 1 when the training data have no censoring. An event where G = 0, or a
//! test time beyond the training data while G > 0 there, is an error, as in
//! sksurv.
//!
//! The mean AUC integrates the AUC over the test data's Kaplan-Meier S(t):
//! Σ_k AUC(t_k) (S(t_{k-1}) - S(t_k)) / (1 - S(t_last)), with S(t_0) = 1;
//! with a single horizon it is that horizon's AUC.
//!
//! Cost: one sort by score, then O(n) per horizon.

use super::km::kaplan_meier;
use super::{SurvData, SurvivalError};
use serde::Serialize;

/// Scores closer than this are tied (sksurv's `tied_tol`).
pub const TIED_TOL: f64 = 1e-8;

/// AUC at each horizon (ascending, duplicates removed) and the mean AUC.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AucResult {
    pub times: Vec<f64>,
    pub auc: Vec<f64>,
    pub mean_auc: f64,
}

/// The censoring Kaplan-Meier curve G in sksurv's convention (see the module
/// docs): distinct times and G just after each.
struct CensoringKm {
    time: Vec<f64>,
    prob: Vec<f64>,
}

impl CensoringKm {
    fn fit(train: &SurvData) -> Self {
        let (time, event) = (train.time(), train.event());
        let mut order: Vec<usize> = (0..time.len()).collect();
        order.sort_by(|&a, &b| time[a].total_cmp(&time[b]));
        let n = time.len();
        let (mut out_t, mut out_p) = (Vec::new(), Vec::new());
        let mut g = 1.0;
        let mut start = 0;
        while start < n {
            let t = time[order[start]];
            let mut end = start;
            let mut d = 0usize;
            while end < n && time[order[end]] == t {
                d += usize::from(event[order[end]]);
                end += 1;
            }
            let c = end - start - d;
            let at_risk = n - start - d;
            // (With no censoring at all, sksurv sets G = 1 outright, which
            // is what this product gives.)
            if c > 0 {
                g *= 1.0 - c as f64 / at_risk as f64;
            }
            out_t.push(t);
            out_p.push(g);
            start = end;
        }
        CensoringKm {
            time: out_t,
            prob: out_p,
        }
    }

    /// G(t), the last step at or before t (1 before the first time).
    fn at(&self, t: f64) -> Result<f64, SurvivalError> {
        let Some(&last) = self.time.last() else {
            return Ok(1.0);
        };
        let last_p = *self.prob.last().unwrap_or(&1.0);
        if t > last {
            if last_p > 0.0 {
                return Err(SurvivalError::Invalid(format!(
                    "time {t} is beyond the largest training time {last}, where the \
                     censoring distribution is still {last_p}"
                )));
            }
            return Ok(0.0);
        }
        let k = self.time.partition_point(|&s| s <= t);
        Ok(if k == 0 { 1.0 } else { self.prob[k - 1] })
    }
}

/// The cumulative/dynamic AUC of `estimate` (a risk score: higher means
/// earlier events) on `test` at each of `times`, with censoring weights from
/// `train` (pass the test data again when there is no separate training set).
pub fn cumulative_dynamic_auc(
    train: &SurvData,
    test: &SurvData,
    estimate: &[f64],
    times: &[f64],
) -> Result<AucResult, SurvivalError> {
    let n = test.len();
    if estimate.len() != n {
        return Err(SurvivalError::Length {
            field: "score".into(),
            expected: n,
            got: estimate.len(),
        });
    }
    if let Some(i) = estimate.iter().position(|v| !v.is_finite()) {
        return Err(SurvivalError::BadValue {
            row: i + 1,
            field: "score".into(),
            value: estimate[i],
            expected: "a finite number",
        });
    }
    let mut horizons: Vec<f64> = times.to_vec();
    if let Some(t) = horizons.iter().find(|t| !t.is_finite()) {
        return Err(SurvivalError::Invalid(format!(
            "AUC time {t} is not finite"
        )));
    }
    horizons.sort_by(f64::total_cmp);
    horizons.dedup();
    let (t_time, t_event) = (test.time(), test.event());
    let t_min = t_time.iter().copied().fold(f64::INFINITY, f64::min);
    let t_max = t_time.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    match (horizons.first(), horizons.last()) {
        (Some(&lo), Some(&hi)) if lo >= t_min && hi < t_max => {}
        (None, _) | (_, None) => {
            return Err(SurvivalError::Invalid("no AUC times given".into()));
        }
        _ => {
            return Err(SurvivalError::Invalid(format!(
                "all AUC times must be within the follow-up of the test data: [{t_min}; {t_max}["
            )));
        }
    }

    let g = CensoringKm::fit(train);
    let mut w = vec![0.0; n];
    for i in 0..n {
        if t_event[i] {
            let gi = g.at(t_time[i])?;
            if gi == 0.0 {
                return Err(SurvivalError::Invalid(format!(
                    "the censoring survival function is zero at time {} (row {}): every \
                     subject still at risk there is censored, so inverse probability of \
                     censoring weights do not exist",
                    t_time[i],
                    i + 1
                )));
            }
            w[i] = 1.0 / gi;
        }
    }

    // Decreasing score; `last_of_tie[k]` marks the end of a run of tied scores.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| estimate[b].total_cmp(&estimate[a]));
    let last_of_tie: Vec<bool> = (0..n)
        .map(|k| k + 1 == n || (estimate[order[k + 1]] - estimate[order[k]]).abs() > TIED_TOL)
        .collect();

    let mut auc = Vec::with_capacity(horizons.len());
    for &t in &horizons {
        let mut total_tp = 0.0;
        let mut n_controls = 0usize;
        for i in 0..n {
            if t_time[i] <= t && t_event[i] {
                total_tp += w[i];
            } else if t_time[i] > t {
                n_controls += 1;
            }
        }
        if total_tp == 0.0 || n_controls == 0 {
            return Err(SurvivalError::Invalid(format!(
                "the AUC at time {t} needs at least one event by then and one subject still \
                 event-free after it"
            )));
        }
        let (mut cum_tp, mut cum_fp) = (0.0, 0.0);
        let (mut prev_tp, mut prev_fp) = (0.0, 0.0);
        let mut area = 0.0;
        for (k, &i) in order.iter().enumerate() {
            if t_time[i] <= t && t_event[i] {
                cum_tp += w[i];
            } else if t_time[i] > t {
                cum_fp += 1.0;
            }
            if last_of_tie[k] {
                let (tp, fp) = (cum_tp / total_tp, cum_fp / n_controls as f64);
                area += (fp - prev_fp) * (tp + prev_tp) / 2.0;
                prev_tp = tp;
                prev_fp = fp;
            }
        }
        auc.push(area);
    }

    let mean_auc = if horizons.len() == 1 {
        auc[0]
    } else {
        let km = kaplan_meier(test, 0.95)?;
        let s: Vec<f64> = horizons.iter().map(|&t| km.survival_at(t)).collect();
        let mut prev = 1.0;
        let mut integral = 0.0;
        for (a, &sk) in auc.iter().zip(&s) {
            integral += a * (prev - sk);
            prev = sk;
        }
        integral / (1.0 - prev)
    };
    tracing::debug!(?horizons, ?auc, mean_auc, "cumulative/dynamic AUC");
    Ok(AucResult {
        times: horizons,
        auc,
        mean_auc,
    })
}
