//! Kaplan-Meier estimation, as R's `survfit(Surv(time, event) ~ 1)` with its
//! defaults (Greenwood variance, `conf.type = "log"`, 95%).
//!
//! # Conventions (R's)
//!
//! - One row per distinct observed time, event or censoring
//!   (`summary(survfit, censored = TRUE)`); n_risk = #{time ≥ t}, and events
//!   at t come before censorings at t, so the factor is 1 - d/n.
//! - `std_err` is R's `fit$std.err`: the SE of log S (equivalently of the
//!   cumulative hazard), Greenwood's sqrt(Σ d / (n (n - d))), +∞ where S = 0.
//!   [`KmCurve::se_surv`] is the SE of S itself, S · std_err, as
//!   `summary.survfit` prints it.
//! - CI on the log scale: exp(log S ∓ z · std_err), the upper limit capped at
//!   1, NaN (R's NA) where S = 0.
//! - Quantiles (the median and its CI) follow `quantile.survfit`: the first
//!   time the curve reaches 1 - p; where it sits exactly at 1 - p (within
//!   sqrt(ε) ≈ 1.5e-8) over an interval starting at t_k, the midpoint of t_k
//!   and the next time the curve drops (or the last observed time). The CI
//!   limits apply the same rule to the lower confidence curve (giving the
//!   lower limit: it falls first) and to the upper one (the upper limit), as
//!   `survival:::doquant` does; a curve that never gets there gives `None`.

use super::dist::norm_quantile;
use super::{SurvData, SurvivalError};
use serde::Serialize;

/// One Kaplan-Meier curve.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KmCurve {
    pub n: usize,
    pub events: usize,
    pub time: Vec<f64>,
    pub n_risk: Vec<usize>,
    pub n_event: Vec<usize>,
    pub n_censor: Vec<usize>,
    pub surv: Vec<f64>,
    /// SE of log S (R's `std.err`), +∞ where S = 0.
    pub std_err: Vec<f64>,
    pub lower: Vec<f64>,
    pub upper: Vec<f64>,
    /// Nelson-Aalen cumulative hazard Σ d/n and its SE sqrt(Σ d/n²).
    pub cumhaz: Vec<f64>,
    pub std_chaz: Vec<f64>,
    pub conf_level: f64,
}

/// A survival-time quantile with its confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct KmQuantile {
    pub prob: f64,
    pub quantile: Option<f64>,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
}

/// Kaplan-Meier estimate of all subjects, with `conf_level` (e.g. 0.95)
/// log-scale confidence limits.
pub fn kaplan_meier(data: &SurvData, conf_level: f64) -> Result<KmCurve, SurvivalError> {
    let idx: Vec<usize> = (0..data.len()).collect();
    km_of(data, &idx, conf_level)
}

/// One curve per group; `groups[i]` is subject i's group code in
/// `0..n_groups`. A group without subjects gets `None`.
pub fn kaplan_meier_by(
    data: &SurvData,
    groups: &[usize],
    n_groups: usize,
    conf_level: f64,
) -> Result<Vec<Option<KmCurve>>, SurvivalError> {
    super::data::check_groups(Some(groups), data.len(), "group")?;
    let mut members = vec![Vec::new(); n_groups];
    for (i, &g) in groups.iter().enumerate() {
        members
            .get_mut(g)
            .ok_or_else(|| {
                SurvivalError::Invalid(format!("row {}: group code {g} ≥ {n_groups}", i + 1))
            })?
            .push(i);
    }
    members
        .iter()
        .map(|m| {
            if m.is_empty() {
                Ok(None)
            } else {
                km_of(data, m, conf_level).map(Some)
            }
        })
        .collect()
}

fn km_of(data: &SurvData, idx: &[usize], conf_level: f64) -> Result<KmCurve, SurvivalError> {
    if !(conf_level > 0.0 && conf_level < 1.0) {
        return Err(SurvivalError::Invalid(format!(
            "confidence level {conf_level} must lie in (0, 1)"
        )));
    }
    let t = data.time();
    let e = data.event();
    let mut order = idx.to_vec();
    order.sort_unstable_by(|&a, &b| t[a].total_cmp(&t[b]));
    let z = norm_quantile(1.0 - (1.0 - conf_level) / 2.0);
    let mut c = KmCurve {
        n: idx.len(),
        events: idx.iter().filter(|&&i| e[i]).count(),
        time: Vec::new(),
        n_risk: Vec::new(),
        n_event: Vec::new(),
        n_censor: Vec::new(),
        surv: Vec::new(),
        std_err: Vec::new(),
        lower: Vec::new(),
        upper: Vec::new(),
        cumhaz: Vec::new(),
        std_chaz: Vec::new(),
        conf_level,
    };
    let (mut s, mut green, mut h, mut vh) = (1.0f64, 0.0f64, 0.0f64, 0.0f64);
    let mut at_risk = order.len();
    let mut k = 0;
    while k < order.len() {
        let tk = t[order[k]];
        let mut end = k;
        let mut d = 0;
        while end < order.len() && t[order[end]] == tk {
            d += usize::from(e[order[end]]);
            end += 1;
        }
        let m = end - k;
        let (nf, df) = (at_risk as f64, d as f64);
        if d > 0 {
            s *= 1.0 - df / nf;
            green += if d < at_risk {
                df / (nf * (nf - df))
            } else {
                f64::INFINITY
            };
            h += df / nf;
            vh += df / (nf * nf);
        }
        let se = green.sqrt();
        let (lo, up) = if s > 0.0 {
            ((s.ln() - z * se).exp(), (s.ln() + z * se).exp().min(1.0))
        } else {
            (f64::NAN, f64::NAN)
        };
        c.time.push(tk);
        c.n_risk.push(at_risk);
        c.n_event.push(d);
        c.n_censor.push(m - d);
        c.surv.push(s);
        c.std_err.push(se);
        c.lower.push(lo);
        c.upper.push(up);
        c.cumhaz.push(h);
        c.std_chaz.push(vh.sqrt());
        at_risk -= m;
        k = end;
    }
    Ok(c)
}

/// R's `findq`: the first x where the non-decreasing y reaches p, with the
/// midpoint rule at flat stretches equal to p (see the module doc).
fn findq(x: &[f64], y: &[f64], p: f64, xmax: f64) -> Option<f64> {
    let tol = f64::EPSILON.sqrt();
    // Drop repeated y values (keep the first x of each level), then NaN.
    let mut xs = Vec::with_capacity(x.len());
    let mut ys: Vec<f64> = Vec::with_capacity(y.len());
    let mut seen_nan = false;
    for (&xv, &yv) in x.iter().zip(y) {
        if yv.is_nan() {
            seen_nan = true;
            continue;
        }
        if ys.last() == Some(&yv) || seen_nan && ys.contains(&yv) {
            continue;
        }
        xs.push(xv);
        ys.push(yv);
    }
    let max = ys.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if ys.is_empty() || max < p {
        return None;
    }
    if p == 0.0 {
        return Some(xs[0]);
    }
    // approx(y ± tol, 1:n, p, "constant", f = 1): first index with y + tol ≥ p.
    let i1 = ys.iter().position(|&v| v + tol >= p)?;
    let i2 = ys.iter().position(|&v| v - tol >= p);
    let last = *ys.last().expect("non-empty");
    if (p - last).abs() < tol {
        return Some((xs[i1] + xmax) / 2.0);
    }
    i2.map(|i2| (xs[i1] + xs[i2]) / 2.0)
}

impl KmCurve {
    /// SE of S (S · std_err); NaN where S = 0 (R's NA).
    pub fn se_surv(&self) -> Vec<f64> {
        self.surv
            .iter()
            .zip(&self.std_err)
            .map(|(s, e)| if *s > 0.0 { s * e } else { f64::NAN })
            .collect()
    }

    /// S(t): the estimate at the last time ≤ t (1 before the first).
    pub fn survival_at(&self, t: f64) -> f64 {
        let k = self.time.partition_point(|&s| s <= t);
        if k == 0 { 1.0 } else { self.surv[k - 1] }
    }

    /// Index of the last row with time ≤ t.
    pub fn row_at(&self, t: f64) -> Option<usize> {
        self.time.partition_point(|&s| s <= t).checked_sub(1)
    }

    /// The time by which a fraction `prob` has failed (0.5: the median),
    /// with its confidence interval, by R's rules.
    pub fn quantile(&self, prob: f64) -> KmQuantile {
        let mut x = Vec::with_capacity(self.time.len() + 1);
        x.push(0f64.min(self.time.first().copied().unwrap_or(0.0)));
        x.extend_from_slice(&self.time);
        let xmax = *x.last().expect("non-empty");
        let curve = |v: &[f64]| -> Vec<f64> {
            std::iter::once(0.0)
                .chain(v.iter().map(|s| 1.0 - s))
                .collect()
        };
        KmQuantile {
            prob,
            quantile: findq(&x, &curve(&self.surv), prob, xmax),
            lower: findq(&x, &curve(&self.lower), prob, xmax),
            upper: findq(&x, &curve(&self.upper), prob, xmax),
        }
    }

    /// Median survival with its confidence interval.
    pub fn median(&self) -> KmQuantile {
        self.quantile(0.5)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn textbook_curve() {
        // Six subjects, one tie: S = 5/6, then 5/6·3/4 ...
        let d = SurvData::new(
            vec![1.0, 2.0, 2.0, 3.0, 4.0, 5.0],
            vec![true, true, false, false, true, true],
        )
        .unwrap();
        let c = kaplan_meier(&d, 0.95).unwrap();
        assert_eq!(c.time, vec![1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(c.n_risk, vec![6, 5, 3, 2, 1]);
        assert_eq!(c.n_censor, vec![0, 1, 1, 0, 0]);
        let s2 = 5.0 / 6.0 * 4.0 / 5.0;
        assert!((c.surv[1] - s2).abs() < 1e-15);
        assert_eq!(c.surv[4], 0.0);
        assert!(c.lower[4].is_nan() && c.std_err[4].is_infinite());
        // S = 1/3 after t = 4 (< 0.5), S = 2/3 at t = 2..3: median 4.
        assert_eq!(c.median().quantile, Some(4.0));
    }

    #[test]
    fn median_midpoint_rule() {
        // S drops to exactly 0.5 at t = 2 and stays until t = 5.
        let d = SurvData::new(vec![1.0, 2.0, 5.0, 6.0], vec![true, true, true, false]).unwrap();
        let c = kaplan_meier(&d, 0.95).unwrap();
        assert_eq!(c.surv[1], 0.5);
        assert_eq!(c.median().quantile, Some(3.5));
    }
}
