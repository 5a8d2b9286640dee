//! Nomogram of a fitted Cox model, in the layout of R `rms::nomogram`.
//!
//! Each factor k contributes β_k·x_k (a categorical factor: the β of its
//! level's dummy, 0 for the reference level) to the linear predictor. On its
//! axis the smallest contribution earns 0 points, and the scale is chosen so
//! that the factor with the widest range of contributions spans 0-100 points
//! (rms's `maxscale = 100`). Total points are the sum; since they are a
//! linear function of the linear predictor lp = xᵀβ, each total maps to a
//! predicted survival S(t | x) = exp(-Λ₀(t) e^{lp}) at every horizon t, from
//! the model's baseline hazard at x = 0.
//!
//! A continuous factor's axis is labelled, as rms does (`nint = 10`), at
//! R's `pretty(range(x), 10)` values, which may reach slightly beyond the
//! data; a covariate with two values shows just those. The points of a
//! factor are 0 at its smallest labelled contribution, so the 0-100 scale is
//! set by the labelled range, exactly as in `rms::nomogram` (checked against
//! rms 6.5 in `common/tests/survival_subgroup.rs`). This module produces the numbers; the
//! figure is drawn by `crate::plot::nomogram`.

use super::cox::CoxFit;
use super::{Design, SurvivalError};
use serde::Serialize;

/// How the model's columns make up one factor of the nomogram.
#[derive(Clone, Debug, PartialEq)]
pub enum FactorSpec {
    /// A numeric covariate: model column `column`.
    Continuous { name: String, column: usize },
    /// A dummy-coded factor: each level's (column, value) settings; columns
    /// not listed are 0 (the first level usually lists none).
    Categorical {
        name: String,
        levels: Vec<(String, Vec<(usize, f64)>)>,
    },
}

/// One labelled value on a factor axis.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FactorPoint {
    pub label: String,
    /// The covariate value (continuous factors only).
    pub value: Option<f64>,
    pub points: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NomogramFactor {
    pub name: String,
    pub points: Vec<FactorPoint>,
    /// Points per unit of the covariate (continuous factors; may be < 0).
    pub points_per_unit: Option<f64>,
}

/// Total points giving a predicted survival probability at a horizon.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SurvivalTick {
    pub survival: f64,
    pub total_points: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NomogramHorizon {
    pub time: f64,
    /// S₀(t) at x = 0.
    pub baseline_survival: f64,
    pub ticks: Vec<SurvivalTick>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Nomogram {
    /// Points per unit of the linear predictor.
    pub points_per_lp: f64,
    /// The linear predictor of 0 total points.
    pub lp_at_zero: f64,
    pub factors: Vec<NomogramFactor>,
    /// The largest possible total (every factor at its maximum).
    pub total_points_max: f64,
    pub horizons: Vec<NomogramHorizon>,
    #[serde(skip)]
    specs: Vec<FactorSpec>,
    #[serde(skip)]
    coef: Vec<f64>,
    #[serde(skip)]
    offsets: Vec<f64>,
    #[serde(skip)]
    stratum: usize,
    #[serde(skip)]
    fit_baseline: Vec<(f64, f64)>,
}

/// R's `pretty(c(lo, hi), n)`: about `n` intervals of 1, 2 or 5 × 10^k
/// (R's default biases `high.u.bias = 1.5`, `u5.bias = 0.5 + 1.5 · 1.5`),
/// covering [lo, hi].
pub fn pretty_ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi < lo {
        return vec![];
    }
    let (h, h5) = (1.5, 0.5 + 1.5 * 1.5);
    let dx = hi - lo;
    let mut cell = lo.abs().max(hi.abs());
    let u = 1.0
        + if h5 >= 1.5 * h + 0.5 {
            1.0 / (1.0 + h)
        } else {
            1.5 / (1.0 + h5)
        };
    let small = dx < cell * u * (n.max(1) as f64) * f64::EPSILON * 3.0;
    if small {
        if cell > 10.0 {
            cell = 9.0 + cell / 10.0;
        }
        if n > 1 {
            cell /= n as f64;
        }
    } else {
        cell = dx;
        if n > 1 {
            cell /= n as f64;
        }
    }
    let base = 10f64.powf(cell.log10().floor());
    let mut unit = base;
    if 2.0 * base - cell < h * (cell - unit) {
        unit = 2.0 * base;
        if 5.0 * base - cell < h5 * (cell - unit) {
            unit = 5.0 * base;
            if 10.0 * base - cell < h * (cell - unit) {
                unit = 10.0 * base;
            }
        }
    }
    let mut ns = (lo / unit + 1e-7).floor();
    let mut nu = (hi / unit - 1e-7).ceil();
    while ns * unit > lo + 1e-10 * unit {
        ns -= 1.0;
    }
    while nu * unit < hi - 1e-10 * unit {
        nu += 1.0;
    }
    if small && nu == ns {
        nu += 1.0;
    }
    (ns as i64..=nu as i64).map(|k| k as f64 * unit).collect()
}

/// A factor before scaling: name, (label, value, β·x) per tick, β.
type RawFactor = (String, Vec<(String, Option<f64>, f64)>, Option<f64>);

/// Survival probabilities labelled on the outcome axes.
const SURV_TICKS: [f64; 11] = [0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05];

impl Nomogram {
    /// Builds the nomogram of `fit` (fitted on `x`) for the factors `specs`
    /// and the survival horizons, for the baseline of `stratum` (0 without
    /// strata).
    pub fn build(
        fit: &CoxFit,
        x: &Design,
        specs: &[FactorSpec],
        horizons: &[f64],
        stratum: usize,
    ) -> Result<Nomogram, SurvivalError> {
        let p = fit.coef.len();
        let coef: Vec<f64> = fit
            .coef
            .iter()
            .map(|b| if b.is_finite() { *b } else { 0.0 })
            .collect();
        // Per factor: the labelled values with their contributions β·x.
        let mut raw: Vec<RawFactor> = Vec::new();
        for spec in specs {
            match spec {
                FactorSpec::Continuous { name, column } => {
                    if *column >= p {
                        return Err(SurvivalError::Invalid(format!(
                            "nomogram: no model column {column}"
                        )));
                    }
                    let mut v = x.column(*column);
                    v.sort_unstable_by(f64::total_cmp);
                    let (lo, hi) = (v[0], v[v.len() - 1]);
                    let mut distinct = v.clone();
                    distinct.dedup();
                    let mut ticks = if distinct.len() <= 2 {
                        // A binary covariate: label its two values.
                        distinct
                    } else {
                        pretty_ticks(lo, hi, 10)
                    };
                    if ticks.is_empty() {
                        ticks = vec![lo, hi];
                    }
                    let b = coef[*column];
                    raw.push((
                        name.clone(),
                        ticks
                            .iter()
                            .map(|&t| (format_value(t), Some(t), b * t))
                            .collect(),
                        Some(b),
                    ));
                }
                FactorSpec::Categorical { name, levels } => {
                    let mut vals = Vec::new();
                    for (label, set) in levels {
                        let mut c = 0.0;
                        for &(col, val) in set {
                            if col >= p {
                                return Err(SurvivalError::Invalid(format!(
                                    "nomogram: no model column {col}"
                                )));
                            }
                            c += coef[col] * val;
                        }
                        vals.push((label.clone(), None, c));
                    }
                    raw.push((name.clone(), vals, None));
                }
            }
        }
        let ranges: Vec<(f64, f64)> = raw
            .iter()
            .map(|(_, v, _)| {
                v.iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), (_, _, c)| {
                        (a.min(*c), b.max(*c))
                    })
            })
            .collect();
        let widest = ranges.iter().map(|(a, b)| b - a).fold(0.0, f64::max);
        if widest.is_nan() || widest <= 0.0 {
            return Err(SurvivalError::Invalid(
                "nomogram: every factor has a zero effect; nothing to scale".into(),
            ));
        }
        let scale = 100.0 / widest;
        let offsets: Vec<f64> = ranges.iter().map(|r| r.0).collect();
        let lp_at_zero: f64 = offsets.iter().sum();
        let factors = raw
            .into_iter()
            .zip(&offsets)
            .map(|((name, vals, b), off)| NomogramFactor {
                name,
                points: vals
                    .into_iter()
                    .map(|(label, value, c)| FactorPoint {
                        label,
                        value,
                        points: (c - off) * scale,
                    })
                    .collect(),
                points_per_unit: b.map(|b| b * scale),
            })
            .collect::<Vec<_>>();
        let total_points_max: f64 = ranges.iter().map(|(a, b)| (b - a) * scale).sum();
        let base = fit
            .baseline
            .iter()
            .find(|b| b.stratum == stratum)
            .ok_or_else(|| SurvivalError::Invalid(format!("nomogram: no stratum {stratum}")))?;
        let mut nomo = Nomogram {
            points_per_lp: scale,
            lp_at_zero,
            factors,
            total_points_max,
            horizons: Vec::new(),
            specs: specs.to_vec(),
            coef,
            offsets,
            stratum,
            fit_baseline: base
                .time
                .iter()
                .copied()
                .zip(base.cumhaz.iter().copied())
                .collect(),
        };
        for &t in horizons {
            let h0 = nomo.cumhaz0(t);
            let ticks = SURV_TICKS
                .iter()
                .filter_map(|&s| {
                    // S = exp(-h0 e^lp)  ⇒  lp = ln(-ln S / h0).
                    let lp = ((-s.ln()) / h0).ln();
                    let tp = (lp - lp_at_zero) * scale;
                    (tp.is_finite() && (0.0..=total_points_max).contains(&tp)).then_some(
                        SurvivalTick {
                            survival: s,
                            total_points: tp,
                        },
                    )
                })
                .collect();
            nomo.horizons.push(NomogramHorizon {
                time: t,
                baseline_survival: (-h0).exp(),
                ticks,
            });
        }
        Ok(nomo)
    }

    fn cumhaz0(&self, t: f64) -> f64 {
        let k = self.fit_baseline.partition_point(|&(s, _)| s <= t);
        if k == 0 {
            0.0
        } else {
            self.fit_baseline[k - 1].1
        }
    }

    /// Each factor's points and the total for one subject's model row.
    pub fn points(&self, row: &[f64]) -> (Vec<f64>, f64) {
        let per: Vec<f64> = self
            .specs
            .iter()
            .zip(&self.offsets)
            .map(|(spec, off)| {
                let c = match spec {
                    FactorSpec::Continuous { column, .. } => self.coef[*column] * row[*column],
                    FactorSpec::Categorical { levels, .. } => levels
                        .iter()
                        .flat_map(|(_, set)| set.iter().map(|&(col, _)| col))
                        .collect::<std::collections::BTreeSet<_>>()
                        .into_iter()
                        .map(|col| self.coef[col] * row[col])
                        .sum(),
                };
                (c - off) * self.points_per_lp
            })
            .collect();
        let total = per.iter().sum();
        (per, total)
    }

    /// Predicted survival at time `t` for a total of `total_points`.
    pub fn survival(&self, total_points: f64, t: f64) -> f64 {
        let lp = total_points / self.points_per_lp + self.lp_at_zero;
        (-self.cumhaz0(t) * lp.exp()).exp()
    }

    /// The stratum whose baseline the outcome axes use.
    pub fn stratum(&self) -> usize {
        self.stratum
    }
}

fn format_value(v: f64) -> String {
    if v == v.round() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.6}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_ticks_are_round() {
        // R: pretty(c(0, 10)), pretty(c(17, 44), 10), pretty(c(33, 81), 6).
        assert_eq!(
            pretty_ticks(0.0, 10.0, 5),
            vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
        );
        let t = pretty_ticks(17.0, 44.0, 10);
        assert_eq!((t[0], t[t.len() - 1], t.len()), (16.0, 44.0, 15));
        assert_eq!(
            pretty_ticks(33.0, 81.0, 6),
            vec![30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0]
        );
    }
}
