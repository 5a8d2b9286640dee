//! Optimal cut-off of a continuous score: the maximally selected log-rank
//! statistic (R `maxstat`) and the brute-force `survdiff` scan.
//!
//! # Why two methods
//!
//! Clinical papers split a risk score into "low" and "high" at the cut-point
//! that separates survival best. The usual tool is R's
//! `maxstat.test(Surv(time, event) ~ x, smethod = "LogRank")` (what
//! `survminer::surv_cutpoint` wraps), whose statistic is a *linear rank
//! statistic* built from log-rank scores with a permutation variance, and whose
//! p-values (Lausen & Schumacher 1992, Lausen, Sauerbrei & Schumacher 1994)
//! correct for having picked the best of many cuts. Many analysts instead take
//! the cut with the largest ordinary log-rank χ² (`survdiff`, hypergeometric
//! variance). The two statistics differ, and so do their cut-points on real
//! data; we implement both exactly and always say which one produced a cut.
//!
//! # maxstat, exactly (maxstat 0.7-25, exactRankTests 0.8-35)
//!
//! Sort subjects by time; r_k is the largest sorted position sharing the time
//! of position k ("max" rank). f_k = δ_k / (N - r_k + 1) and the log-rank score
//! is a_i = δ_i - Σ_{l ≤ r_i} f_l. Candidates are the distinct x other than
//! max(x) whose count m = #{x ≤ c} lies in [max(1, ⌊N·minprop⌋), ⌊N·maxprop⌋].
//! With S = Σ_{x ≤ c} a, A = Σ a and B = Σ a², E = mA/N and
//! V = m(N - m)(NB - A²)/(N²(N - 1)), M(c) = |S - E|/√V. The estimate is the
//! smallest c with the largest M. Everything is one sort by time, one sort by
//! x and a prefix sum: O(N log N).
//!
//! # survdiff scan in O(N log N)
//!
//! Calling a k-group log-rank test once per candidate costs O(N) each, i.e.
//! O(N²) on a continuous score. Instead we sweep x upwards, moving one subject
//! at a time into the low group. With n1_j the low group's number at risk at
//! event time j, survdiff's O1 - E1 and its variance are
//! E1 = Σ_j (d_j/n_j) n1_j and V = Σ_j (c_j/n_j) n1_j - Σ_j (c_j/n_j²) n1_j²,
//! c_j = d_j (n_j - d_j)/(n_j - 1). A subject at risk at the first k event
//! times adds 1 to n1_j for j < k, so with prefix sums U(k) of c_j/n_j² the
//! quadratic term is Σ_{a,b ∈ low} U(min(k_a, k_b)), which two Fenwick trees
//! (count and U-sum by k) update in O(log N) per subject.
//!
//! Sums use Neumaier compensation so that the statistics agree with R, which
//! accumulates `cumsum` and `sum` in long double, to about 1e-13.

use super::dist::{chisq_sf, norm_pdf, norm_sf};
use super::{SurvData, SurvivalError};
use serde::Serialize;
use std::f64::consts::PI;

/// Which cut-off method produced a result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CutoffMethod {
    /// Maximally selected log-rank statistic (R `maxstat.test`).
    Maxstat,
    /// Largest `survdiff` χ² over the quantile candidates.
    Survdiff,
}

/// The candidate set of the survdiff scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CutCandidates {
    /// maxstat's own candidates (distinct x with m in the proportion range).
    Maxstat,
    /// Every distinct x with q(min_prop) ≤ x ≤ q(max_prop), R `quantile` type 7.
    Quantile,
}

/// Result of [`maxstat`], with R's field meanings.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MaxstatResult {
    /// Estimated cut-point; the low group is `x <= cutoff`.
    pub cutoff: f64,
    /// The maximal standardised statistic M.
    pub statistic: f64,
    /// Lausen & Schumacher (1992) approximate p-value (not clipped to 1).
    pub p_lau92: f64,
    /// Lausen, Sauerbrei & Schumacher (1994) improved Bonferroni bound.
    pub p_lau94: f64,
    pub n_low: usize,
    pub n_high: usize,
    pub min_prop: f64,
    pub max_prop: f64,
    /// Candidate cut-points, ascending.
    pub cuts: Vec<f64>,
    /// M at each candidate.
    pub stats: Vec<f64>,
}

/// Result of [`survdiff_scan`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SurvdiffScan {
    /// The quantiles bounding the candidates (for [`CutCandidates::Quantile`]).
    pub q_low: Option<f64>,
    pub q_high: Option<f64>,
    pub cuts: Vec<f64>,
    /// survdiff χ² (1 df) of `x <= c` against `x > c` at each candidate.
    pub chisq: Vec<f64>,
    /// The first cut with the largest χ².
    pub best_cut: f64,
    pub max_chisq: f64,
    /// √max_chisq, the standardised statistic.
    pub max_z: f64,
    /// P(χ²₁ > max_chisq), not corrected for the selection.
    pub p_unadjusted: f64,
    /// Lausen 1992 / 1994 p-values evaluated at `max_z` with these candidates:
    /// the same selection corrections as maxstat, applied to survdiff's z.
    pub p_lau92: f64,
    pub p_lau94: f64,
    pub n_low: usize,
    pub n_high: usize,
}

/// The common shape both methods report (the `cohort stats cutoff` JSON).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CutoffResult {
    pub method: CutoffMethod,
    pub cutoff: f64,
    /// maxstat's M, or survdiff's largest χ².
    pub statistic: f64,
    pub p_lau92: f64,
    pub p_lau94: f64,
    pub n_low: usize,
    pub n_high: usize,
    pub min_prop: f64,
    pub max_prop: f64,
}

/// Neumaier-compensated running sum.
#[derive(Clone, Copy, Default)]
struct Sum {
    s: f64,
    c: f64,
}

impl Sum {
    fn add(&mut self, x: f64) {
        let t = self.s + x;
        if self.s.abs() >= x.abs() {
            self.c += (self.s - t) + x;
        } else {
            self.c += (x - t) + self.s;
        }
        self.s = t;
    }
    fn value(&self) -> f64 {
        self.s + self.c
    }
}

/// Checks the score against the data and the proportions.
fn validate(data: &SurvData, x: &[f64], min_prop: f64, max_prop: f64) -> Result<(), SurvivalError> {
    if x.len() != data.len() {
        return Err(SurvivalError::Length {
            field: "score".into(),
            expected: data.len(),
            got: x.len(),
        });
    }
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err(SurvivalError::BadValue {
            row: i + 1,
            field: "score".into(),
            value: x[i],
            expected: "a finite number",
        });
    }
    if data.len() < 2 {
        return Err(SurvivalError::Invalid(format!(
            "a cut-off needs at least 2 subjects, got {}",
            data.len()
        )));
    }
    let ok = |p: f64| (0.0..=1.0).contains(&p);
    if !(ok(min_prop) && ok(max_prop) && min_prop <= max_prop) {
        return Err(SurvivalError::Invalid(format!(
            "min_prop {min_prop} and max_prop {max_prop} must satisfy 0 <= min_prop <= max_prop <= 1"
        )));
    }
    Ok(())
}

fn no_candidates(min_prop: f64, max_prop: f64) -> SurvivalError {
    SurvivalError::Invalid(format!(
        "no candidate cut-point leaves between {min_prop} and {max_prop} of the subjects in the low group \
         (too few distinct scores)"
    ))
}

/// Indices 0..n ordered by `key` (stable, total order; inputs are finite).
fn order_by(key: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..key.len()).collect();
    idx.sort_by(|&a, &b| key[a].total_cmp(&key[b]));
    idx
}

/// exactRankTests' log-rank scores (`cscores.Surv`, "max" rank for ties).
pub fn logrank_scores(time: &[f64], event: &[bool]) -> Vec<f64> {
    let n = time.len();
    let ot = order_by(time);
    let mut scores = vec![0.0; n];
    let mut cum = Sum::default();
    let mut start = 0;
    while start < n {
        let mut end = start + 1;
        while end < n && time[ot[end]] == time[ot[start]] {
            end += 1;
        }
        // All of the tie group share the max rank r = end (1-based).
        let denom = (n - end + 1) as f64;
        for &i in &ot[start..end] {
            if event[i] {
                cum.add(1.0 / denom);
            }
        }
        let c = cum.value();
        for &i in &ot[start..end] {
            scores[i] = f64::from(u8::from(event[i])) - c;
        }
        start = end;
    }
    scores
}

/// Sorted x, and for each distinct value other than the largest, the count
/// m = #{x ≤ value}: the possible splits.
struct Splits {
    order: Vec<usize>,
    /// (m, cut value) for every distinct value except the maximum.
    all: Vec<(usize, f64)>,
}

fn splits(x: &[f64]) -> Splits {
    let order = order_by(x);
    let mut all = Vec::new();
    for i in 1..order.len() {
        if x[order[i]] != x[order[i - 1]] {
            all.push((i, x[order[i - 1]]));
        }
    }
    Splits { order, all }
}

/// maxstat's candidate filter on m (R: `m >= max(1, floor(N*minprop))` and
/// `m <= floor(N*maxprop)`, or all but the extremes when the range is [0, 1]).
fn maxstat_candidates(
    sp: &Splits,
    n: usize,
    min_prop: f64,
    max_prop: f64,
) -> Result<Vec<(usize, f64)>, SurvivalError> {
    let c: Vec<(usize, f64)> = if min_prop == 0.0 && max_prop == 1.0 {
        // R's special case `m[2:(length(m) - 1)]` also drops the split at the
        // second-largest distinct value.
        sp.all[..sp.all.len().saturating_sub(1)].to_vec()
    } else {
        let lo = ((n as f64 * min_prop).floor() as usize).max(1);
        let hi = (n as f64 * max_prop).floor() as usize;
        sp.all
            .iter()
            .copied()
            .filter(|&(m, _)| m >= lo && m <= hi)
            .collect()
    };
    if c.is_empty() {
        return Err(no_candidates(min_prop, max_prop));
    }
    Ok(c)
}

/// Index of the first value within a relative 1e-12 of the maximum (R picks
/// the first exact maximum; the tolerance keeps mathematically tied cuts from
/// flipping on the last bit of rounding).
fn first_max(values: &[f64]) -> usize {
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    values
        .iter()
        .position(|&v| v >= max - 1e-12 * max.abs())
        .unwrap_or(0)
}

/// Lausen & Schumacher (1992): 4φ(b)/b + φ(b)(b - 1/b) log(maxprop(1 - minprop)
/// / ((1 - maxprop) minprop)), floored at 0, and 1 for b < 1 (maxstat's rule).
pub fn p_lausen92(b: f64, min_prop: f64, max_prop: f64) -> f64 {
    if b < 1.0 {
        return 1.0;
    }
    let db = norm_pdf(b);
    let p = 4.0 * db / b
        + db * (b - 1.0 / b) * ((max_prop * (1.0 - min_prop)) / ((1.0 - max_prop) * min_prop)).ln();
    p.max(0.0)
}

/// Lausen, Sauerbrei & Schumacher (1994) improved Bonferroni bound over the
/// candidate sizes `m` (ascending): 2(1 - Φ(b)) + Σ (1/π) e^{-b²/2}
/// (t_i - (b²/4 - 1) t_i³/6), t_i = √(1 - m_i(N - m_{i+1})/((N - m_i) m_{i+1})).
pub fn p_lausen94(b: f64, n: usize, m: &[usize]) -> f64 {
    let nf = n as f64;
    let e = (-b * b / 2.0).exp() / PI;
    let mut d = Sum::default();
    for w in m.windows(2) {
        let (m1, m2) = (w[0] as f64, w[1] as f64);
        let t = (1.0 - m1 * (nf - m2) / ((nf - m1) * m2)).sqrt();
        d.add(e * (t - (b * b / 4.0 - 1.0) * t.powi(3) / 6.0));
    }
    2.0 * norm_sf(b) + d.value()
}

/// The maximally selected log-rank statistic, as
/// `maxstat.test(Surv(time, event) ~ x, smethod = "LogRank", minprop, maxprop)`.
pub fn maxstat(
    data: &SurvData,
    x: &[f64],
    min_prop: f64,
    max_prop: f64,
) -> Result<MaxstatResult, SurvivalError> {
    validate(data, x, min_prop, max_prop)?;
    let (time, event) = (data.time(), data.event());
    let n = time.len();
    let nf = n as f64;
    let scores = logrank_scores(time, event);
    let sp = splits(x);
    let cand = maxstat_candidates(&sp, n, min_prop, max_prop)?;

    let (mut a, mut b) = (Sum::default(), Sum::default());
    for &s in &scores {
        a.add(s);
        b.add(s * s);
    }
    let (a, b) = (a.value(), b.value());
    let spread = nf * b - a * a;
    if spread.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return Err(SurvivalError::NoEvents(
            "the maximally selected log-rank statistic",
        ));
    }
    // Prefix sums of the scores in x order, read at each candidate m.
    let mut stats = Vec::with_capacity(cand.len());
    let mut cum = Sum::default();
    let mut pos = 0;
    for &(m, _) in &cand {
        while pos < m {
            cum.add(scores[sp.order[pos]]);
            pos += 1;
        }
        let mf = m as f64;
        let e = mf / nf * a;
        let v = mf * (nf - mf) / (nf * nf * (nf - 1.0)) * spread;
        stats.push(((cum.value() - e) / v.sqrt()).abs());
    }
    let best = first_max(&stats);
    let statistic = stats[best];
    let ms: Vec<usize> = cand.iter().map(|&(m, _)| m).collect();
    let result = MaxstatResult {
        cutoff: cand[best].1,
        statistic,
        p_lau92: p_lausen92(statistic, min_prop, max_prop),
        p_lau94: p_lausen94(statistic, n, &ms),
        n_low: cand[best].0,
        n_high: n - cand[best].0,
        min_prop,
        max_prop,
        cuts: cand.iter().map(|&(_, c)| c).collect(),
        stats,
    };
    tracing::debug!(
        cutoff = result.cutoff,
        statistic,
        n_cuts = result.cuts.len(),
        "maxstat"
    );
    Ok(result)
}

/// R `quantile(x, p, type = 7)` of already sorted values.
pub fn quantile_type7(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    let index = (n - 1) as f64 * p; // 0-based
    let lo = index.floor();
    let hi = index.ceil();
    let (lo_i, hi_i) = (lo as usize, (hi as usize).min(n - 1));
    let q = sorted[lo_i];
    if index > lo && sorted[hi_i] != q {
        let h = index - lo;
        (1.0 - h) * q + h * sorted[hi_i]
    } else {
        q
    }
}

/// Fenwick tree of sums over 0..n.
struct Fenwick(Vec<f64>);

impl Fenwick {
    fn new(n: usize) -> Self {
        Fenwick(vec![0.0; n + 1])
    }
    fn add(&mut self, i: usize, v: f64) {
        let mut i = i + 1;
        while i < self.0.len() {
            self.0[i] += v;
            i += i & i.wrapping_neg();
        }
    }
    /// Sum over indices < i.
    fn prefix(&self, i: usize) -> f64 {
        let mut i = i.min(self.0.len() - 1);
        let mut s = 0.0;
        while i > 0 {
            s += self.0[i];
            i -= i & i.wrapping_neg();
        }
        s
    }
}

/// The survdiff log-rank χ² of `x <= c` against `x > c` at every candidate c,
/// in one O(N log N) sweep, and the best cut (first largest χ²).
pub fn survdiff_scan(
    data: &SurvData,
    x: &[f64],
    candidates: CutCandidates,
    min_prop: f64,
    max_prop: f64,
) -> Result<SurvdiffScan, SurvivalError> {
    validate(data, x, min_prop, max_prop)?;
    let (time, event) = (data.time(), data.event());
    let n = time.len();
    let sp = splits(x);
    let (cand, q_low, q_high) = match candidates {
        CutCandidates::Maxstat => (maxstat_candidates(&sp, n, min_prop, max_prop)?, None, None),
        CutCandidates::Quantile => {
            let sorted: Vec<f64> = sp.order.iter().map(|&i| x[i]).collect();
            let ql = quantile_type7(&sorted, min_prop);
            let qh = quantile_type7(&sorted, max_prop);
            let c: Vec<(usize, f64)> = sp
                .all
                .iter()
                .copied()
                .filter(|&(_, c)| ql <= c && c <= qh)
                .collect();
            if c.is_empty() {
                return Err(no_candidates(min_prop, max_prop));
            }
            (c, Some(ql), Some(qh))
        }
    };

    // Distinct event times with d_j and n_j; k_i = #{event times <= t_i}.
    let ot = order_by(time);
    let mut ev_times: Vec<(f64, f64, f64)> = Vec::new(); // (t, d, n)
    let mut start = 0;
    while start < n {
        let mut end = start + 1;
        while end < n && time[ot[end]] == time[ot[start]] {
            end += 1;
        }
        let d = ot[start..end].iter().filter(|&&i| event[i]).count();
        if d > 0 {
            ev_times.push((time[ot[start]], d as f64, (n - start) as f64));
        }
        start = end;
    }
    let nj = ev_times.len();
    let (mut pa, mut pw, mut pu) = (vec![0.0; nj + 1], vec![0.0; nj + 1], vec![0.0; nj + 1]);
    let (mut sa, mut sw, mut su) = (Sum::default(), Sum::default(), Sum::default());
    for (j, &(_, d, nr)) in ev_times.iter().enumerate() {
        let c = if nr > 1.0 {
            d * (nr - d) / (nr - 1.0)
        } else {
            0.0
        };
        sa.add(d / nr);
        sw.add(c / nr);
        su.add(c / (nr * nr));
        pa[j + 1] = sa.value();
        pw[j + 1] = sw.value();
        pu[j + 1] = su.value();
    }
    let k_of = |t: f64| ev_times.partition_point(|&(te, _, _)| te <= t);

    let mut count = Fenwick::new(nj + 1);
    let mut usum = Fenwick::new(nj + 1);
    let (mut o1, mut e1, mut lin, mut quad) = (
        Sum::default(),
        Sum::default(),
        Sum::default(),
        Sum::default(),
    );
    let mut in_low = 0usize;
    let mut chisq = Vec::with_capacity(cand.len());
    let mut pos = 0;
    for &(m, _) in &cand {
        while pos < m {
            let i = sp.order[pos];
            let k = k_of(time[i]);
            let u = pu[k];
            let below = usum.prefix(k);
            let at_or_above = in_low as f64 - count.prefix(k);
            quad.add(u + 2.0 * (below + u * at_or_above));
            count.add(k, 1.0);
            usum.add(k, u);
            in_low += 1;
            e1.add(pa[k]);
            lin.add(pw[k]);
            if event[i] {
                o1.add(1.0);
            }
            pos += 1;
        }
        let v = lin.value() - quad.value();
        let diff = o1.value() - e1.value();
        chisq.push(if v > 0.0 { diff * diff / v } else { 0.0 });
    }
    let best = first_max(&chisq);
    let max_chisq = chisq[best];
    let max_z = max_chisq.sqrt();
    let ms: Vec<usize> = cand.iter().map(|&(m, _)| m).collect();
    Ok(SurvdiffScan {
        q_low,
        q_high,
        cuts: cand.iter().map(|&(_, c)| c).collect(),
        chisq,
        best_cut: cand[best].1,
        max_chisq,
        max_z,
        p_unadjusted: chisq_sf(max_chisq, 1.0),
        p_lau92: p_lausen92(max_z, min_prop, max_prop),
        p_lau94: p_lausen94(max_z, n, &ms),
        n_low: cand[best].0,
        n_high: n - cand[best].0,
    })
}

/// The optimal cut-off by either method, in the shape `cohort stats cutoff`
/// reports. `Survdiff` scans the quantile candidates.
pub fn optimal_cutoff(
    data: &SurvData,
    x: &[f64],
    method: CutoffMethod,
    min_prop: f64,
    max_prop: f64,
) -> Result<CutoffResult, SurvivalError> {
    Ok(match method {
        CutoffMethod::Maxstat => {
            let r = maxstat(data, x, min_prop, max_prop)?;
            CutoffResult {
                method,
                cutoff: r.cutoff,
                statistic: r.statistic,
                p_lau92: r.p_lau92,
                p_lau94: r.p_lau94,
                n_low: r.n_low,
                n_high: r.n_high,
                min_prop,
                max_prop,
            }
        }
        CutoffMethod::Survdiff => {
            let r = survdiff_scan(data, x, CutCandidates::Quantile, min_prop, max_prop)?;
            CutoffResult {
                method,
                cutoff: r.best_cut,
                statistic: r.max_chisq,
                p_lau92: r.p_lau92,
                p_lau94: r.p_lau94,
                n_low: r.n_low,
                n_high: r.n_high,
                min_prop,
                max_prop,
            }
        }
    })
}

/// Group membership at a cut: `true` for the low group (`x <= cutoff`).
pub fn low_group(x: &[f64], cutoff: f64) -> Vec<bool> {
    x.iter().map(|&v| v <= cutoff).collect()
}
