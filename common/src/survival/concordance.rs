//! Harrell's concordance index, as R's `concordance()` (survival 3.5,
//! `timewt = "n"`), with its infinitesimal-jackknife standard error and a
//! seeded percentile bootstrap confidence interval.
//!
//! # Conventions
//!
//! The input is a *risk score*: a higher score predicts a shorter survival
//! (a Cox linear predictor; R's `concordance(fit)` or `reverse = TRUE`). A
//! pair is comparable when the shorter of the two times is an event; an event
//! and a censoring at the same time are comparable (the censored subject
//! outlived the event), two events at the same time are not (`tied_y`), nor
//! are pairs tied on both (`tied_xy`). Ties in the score (`tied_x`) count ½:
//! C = (concordant + tied_x / 2) / (concordant + discordant + tied_x).
//! Case weights multiply (a pair counts w_i · w_j); strata restrict the
//! pairs to subjects of the same stratum, as in R.
//!
//! # Algorithm and variance
//!
//! `concordance3.c`'s walk, with Fenwick trees over score ranks in place of
//! R's balanced tree (radix-sorted, the two trees interleaved in one array): subjects are visited from the longest time down
//! (censorings before events at equal times); each event is compared with
//! everyone already visited, i.e. with the longer-lived, by two prefix sums.
//! A second tree of visited events gives every subject's own concordant,
//! discordant and tied counts (its influence), from which R's variance
//! var = Σ dfbeta_i² / 4, dfbeta_i = w_i ((C_i - D_i)/N - (somers/N)(C_i + D_i + T_i)),
//! N = the number of comparable pairs, follows. `se_cox` is R's alternative
//! `sqrt(cvar)`, the variance under the Cox model. O(n log n) overall.

use super::dist::norm_quantile;
use super::sort::{f64_key, radix_sort_by_key};
use super::{SurvData, SurvivalError};
use crate::rng::Rng;
use serde::Serialize;

/// Harrell's C with its pair counts and standard errors.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Concordance {
    pub c: f64,
    /// Infinitesimal-jackknife SE, R's `sqrt(fit$var)`.
    pub se: f64,
    /// R's `sqrt(fit$cvar)`.
    pub se_cox: f64,
    pub concordant: f64,
    pub discordant: f64,
    pub tied_x: f64,
    pub tied_y: f64,
    pub tied_xy: f64,
    pub n: usize,
}

/// A percentile bootstrap interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct BootstrapCi {
    pub lower: f64,
    pub upper: f64,
    pub replicates: usize,
    pub seed: u64,
    pub conf_level: f64,
}

/// Two Fenwick (binary indexed) trees over score ranks in one array: the
/// weights of every visited subject (slot 0) and of the visited events
/// (slot 1). Every query needs both at the same moment, so interleaving them
/// halves the cache misses of the walk.
struct Fenwick2 {
    tree: Vec<[f64; 2]>,
    node: Vec<[f64; 2]>,
    total: [f64; 2],
}

impl Fenwick2 {
    fn new(m: usize) -> Self {
        Fenwick2 {
            tree: vec![[0.0; 2]; m + 1],
            node: vec![[0.0; 2]; m],
            total: [0.0; 2],
        }
    }
    fn add(&mut self, r: usize, slot: usize, w: f64) {
        self.node[r][slot] += w;
        self.total[slot] += w;
        let mut i = r + 1;
        while i < self.tree.len() {
            self.tree[i][slot] += w;
            i += i & i.wrapping_neg();
        }
    }
    /// Per slot: the weights (greater, less, equal) than rank r.
    fn walk(&self, r: usize) -> [[f64; 3]; 2] {
        let mut less = [0.0; 2];
        let mut i = r;
        while i > 0 {
            less[0] += self.tree[i][0];
            less[1] += self.tree[i][1];
            i -= i & i.wrapping_neg();
        }
        let eq = self.node[r];
        [0, 1].map(|k| [self.total[k] - less[k] - eq[k], less[k], eq[k]])
    }
}

/// R's counts (unreversed: index 0 counts pairs where the longer-lived has
/// the larger score; 5 is the Cox-variance sum).
type Counts = [f64; 6];

/// One stratum: `idx` are its subjects; writes their influence rows (R's
/// imat columns 0..3) into `imat` when given (and then also the Cox
/// variance term).
fn count_stratum(
    time: &[f64],
    event: &[bool],
    rank: &[usize],
    w: &[f64],
    idx: &mut [u32],
    n_ranks: usize,
    imat: Option<&mut [[f64; 3]]>,
) -> Counts {
    // Longest time first, censorings before events, then by score: three
    // stable radix passes, least significant key first.
    radix_sort_by_key(idx, |i| rank[i as usize] as u64);
    radix_sort_by_key(idx, |i| u64::from(event[i as usize]));
    radix_sort_by_key(idx, |i| !f64_key(time[i as usize]));
    // Gather the sorted subjects once (independent loads, which the CPU
    // overlaps), so the walk below reads memory sequentially except for the
    // trees; influence rows are kept by sorted position and scattered back.
    let sub: Vec<(f64, f64, usize, bool)> = idx
        .iter()
        .map(|&i| {
            let i = i as usize;
            (time[i], w[i], rank[i], event[i])
        })
        .collect();
    let mut inf = if imat.is_some() {
        vec![[0.0f64; 3]; idx.len()]
    } else {
        Vec::new()
    };
    let with_var = imat.is_some();
    let mut fen = Fenwick2::new(n_ranks);
    let mut c = [0.0; 6];
    let mut z2 = 0.0;
    let cox_term = |ws: [f64; 3], wt: f64| {
        wt * (ws[0] * (wt + 2.0 * (ws[1] + ws[2]))
            + ws[1] * (wt + 2.0 * (ws[0] + ws[2]))
            + (ws[0] - ws[1]) * (ws[0] - ws[1]))
    };
    let n = sub.len();
    let mut i = 0;
    while i < n {
        let (ti, wi, ri, ei) = sub[i];
        if !ei {
            if with_var {
                let [all, dead] = fen.walk(ri);
                inf[i] = [-dead[1], -dead[0], -dead[2]];
                z2 += cox_term(all, wi);
            }
            fen.add(ri, 0, wi);
            i += 1;
            continue;
        }
        // All events at this time (contiguous, sorted by score).
        let mut j = i;
        let (mut dwt, mut dwt2) = (0.0, 0.0);
        let mut xsave = ri;
        while j < n && sub[j].3 && sub[j].0 == ti {
            let (_, wj, rj, _) = sub[j];
            c[3] += wj * dwt;
            dwt += wj;
            if rj != xsave {
                dwt2 = 0.0;
                xsave = rj;
            }
            c[4] += wj * dwt2;
            dwt2 += wj;
            let ws = fen.walk(rj)[0];
            for k in 0..3 {
                c[k] += wj * ws[k];
            }
            if with_var {
                inf[j] = ws;
            }
            fen.add(rj, 1, wj);
            j += 1;
        }
        for (k, &(_, wk, rk, _)) in sub.iter().enumerate().take(j).skip(i) {
            if with_var {
                let [all, dead] = fen.walk(rk);
                inf[k][0] -= dead[1];
                inf[k][1] -= dead[0];
                inf[k][2] -= dead[2];
                z2 += cox_term(all, wk);
            }
            fen.add(rk, 0, wk);
        }
        if with_var {
            c[5] += dwt * z2 / fen.total[0];
        }
        i = j;
    }
    if let Some(m) = imat {
        // The event tree is complete now: static prefix sums replace walks.
        let mut below = vec![0.0; n_ranks + 1];
        for r in 0..n_ranks {
            below[r + 1] = below[r] + fen.node[r][1];
        }
        let total = fen.total[1];
        for (k, (&id, &(_, _, r, _))) in idx.iter().zip(&sub).enumerate() {
            let (less, eq) = (below[r], fen.node[r][1]);
            let row = &mut m[id as usize];
            row[0] += inf[k][0] + less;
            row[1] += inf[k][1] + total - less - eq;
            row[2] += inf[k][2] + eq;
        }
    }
    c[3] -= c[4];
    c
}

fn validate(
    data: &SurvData,
    score: &[f64],
    weights: Option<&[f64]>,
    strata: Option<&[usize]>,
) -> Result<(), SurvivalError> {
    let n = data.len();
    if score.len() != n {
        return Err(SurvivalError::Length {
            field: "score".into(),
            expected: n,
            got: score.len(),
        });
    }
    if let Some(i) = score.iter().position(|v| !v.is_finite()) {
        return Err(SurvivalError::BadValue {
            row: i + 1,
            field: "score".into(),
            value: score[i],
            expected: "a finite number",
        });
    }
    super::data::check_weights(weights, n)?;
    super::data::check_groups(strata, n, "strata")
}

/// Ranks of the distinct scores (0 = smallest) and their count.
fn ranks(score: &[f64]) -> (Vec<usize>, usize) {
    let mut order: Vec<u32> = (0..score.len() as u32).collect();
    radix_sort_by_key(&mut order, |i| f64_key(score[i as usize]));
    let mut rank = vec![0usize; score.len()];
    let mut r = 0;
    for k in 0..order.len() {
        let i = order[k] as usize;
        if k > 0 && score[i] != score[order[k - 1] as usize] {
            r += 1;
        }
        rank[i] = r;
    }
    (rank, if score.is_empty() { 0 } else { r + 1 })
}

fn strata_members(n: usize, strata: Option<&[usize]>) -> Vec<Vec<u32>> {
    match strata {
        None => vec![(0..n as u32).collect()],
        Some(s) => {
            let k = s.iter().max().map_or(0, |m| m + 1);
            let mut out = vec![Vec::new(); k];
            for (i, &g) in s.iter().enumerate() {
                out[g].push(i as u32);
            }
            out.retain(|m| !m.is_empty());
            out
        }
    }
}

/// Harrell's C of a risk score (higher = shorter survival) with R's SE.
pub fn concordance(
    data: &SurvData,
    score: &[f64],
    weights: Option<&[f64]>,
    strata: Option<&[usize]>,
) -> Result<Concordance, SurvivalError> {
    validate(data, score, weights, strata)?;
    let n = data.len();
    let (rank, m) = ranks(score);
    let w: Vec<f64> = weights.map_or_else(|| vec![1.0; n], <[f64]>::to_vec);
    let mut imat = vec![[0.0f64; 3]; n];
    let mut tot = [0.0; 6];
    for mut members in strata_members(n, strata) {
        let c = count_stratum(
            data.time(),
            data.event(),
            &rank,
            &w,
            &mut members,
            m,
            Some(&mut imat),
        );
        for (t, v) in tot.iter_mut().zip(c) {
            *t += v;
        }
    }
    let npair = tot[0] + tot[1] + tot[2];
    if npair <= 0.0 {
        return Err(SurvivalError::Invalid(
            "no comparable pairs: the concordance index is undefined".into(),
        ));
    }
    let somer = (tot[0] - tot[1]) / npair;
    let var: f64 = imat
        .iter()
        .zip(&w)
        .map(|(m, wi)| {
            let d = wi * ((m[0] - m[1]) / npair - somer / npair * (m[0] + m[1] + m[2]));
            d * d
        })
        .sum::<f64>()
        / 4.0;
    // Unreversed C is (somer + 1)/2; a risk score reverses it.
    Ok(Concordance {
        c: 1.0 - (somer + 1.0) / 2.0,
        se: var.sqrt(),
        se_cox: (tot[5] / (4.0 * npair * npair)).sqrt(),
        concordant: tot[1],
        discordant: tot[0],
        tied_x: tot[2],
        tied_y: tot[3],
        tied_xy: tot[4],
        n,
    })
}

/// C only (no variance), for the bootstrap.
fn c_only(
    time: &[f64],
    event: &[bool],
    rank: &[usize],
    w: &[f64],
    m: usize,
    members: &mut [Vec<u32>],
) -> f64 {
    let mut tot = [0.0; 3];
    for mem in members.iter_mut() {
        let c = count_stratum(time, event, rank, w, mem, m, None);
        for (t, v) in tot.iter_mut().zip(c) {
            *t += v;
        }
    }
    let npair = tot[0] + tot[1] + tot[2];
    (tot[1] + 0.5 * tot[2]) / npair
}

/// Percentile bootstrap CI of Harrell's C: `replicates` resamples of the
/// subjects with replacement (within strata), drawn from the project's
/// seeded [`Rng`], so the same seed gives the same interval. Resamples
/// without a comparable pair are skipped.
pub fn bootstrap_ci(
    data: &SurvData,
    score: &[f64],
    strata: Option<&[usize]>,
    replicates: usize,
    conf_level: f64,
    seed: u64,
) -> Result<BootstrapCi, SurvivalError> {
    validate(data, score, None, strata)?;
    if replicates < 2 || !(conf_level > 0.0 && conf_level < 1.0) {
        return Err(SurvivalError::Invalid(format!(
            "bootstrap needs ≥ 2 replicates and a level in (0, 1) (got {replicates}, {conf_level})"
        )));
    }
    let n = data.len();
    let groups = strata_members(n, strata);
    let mut rng = Rng::derive(seed, "concordance-bootstrap");
    let mut cs = Vec::with_capacity(replicates);
    let (mut bt, mut be, mut bs) = (vec![0.0; n], vec![false; n], vec![0.0; n]);
    let w = vec![1.0; n];
    for _ in 0..replicates {
        let mut members: Vec<Vec<u32>> = Vec::with_capacity(groups.len());
        let mut pos = 0;
        for g in &groups {
            let mut mem = Vec::with_capacity(g.len());
            for _ in 0..g.len() {
                let i = g[rng.below(g.len() as u64) as usize] as usize;
                bt[pos] = data.time()[i];
                be[pos] = data.event()[i];
                bs[pos] = score[i];
                mem.push(pos as u32);
                pos += 1;
            }
            members.push(mem);
        }
        let (rank, m) = ranks(&bs);
        let c = c_only(&bt, &be, &rank, &w, m, &mut members);
        if c.is_finite() {
            cs.push(c);
        }
    }
    if cs.len() < 2 {
        return Err(SurvivalError::Invalid(
            "bootstrap: too few resamples with comparable pairs".into(),
        ));
    }
    cs.sort_unstable_by(f64::total_cmp);
    let alpha = (1.0 - conf_level) / 2.0;
    Ok(BootstrapCi {
        lower: quantile_type7(&cs, alpha),
        upper: quantile_type7(&cs, 1.0 - alpha),
        replicates,
        seed,
        conf_level,
    })
}

/// R's default `quantile(type = 7)` of sorted data.
pub(crate) fn quantile_type7(sorted: &[f64], p: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * p;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Normal-approximation interval C ∓ z · se, clipped to [0, 1].
pub fn normal_ci(c: &Concordance, conf_level: f64) -> (f64, f64) {
    let z = norm_quantile(1.0 - (1.0 - conf_level) / 2.0);
    ((c.c - z * c.se).max(0.0), (c.c + z * c.se).min(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// O(n²) pair counting, straight from the definition.
    fn brute(time: &[f64], event: &[bool], s: &[f64]) -> (f64, f64, f64, f64) {
        let (mut con, mut dis, mut tx, mut ty) = (0.0, 0.0, 0.0, 0.0);
        for i in 0..time.len() {
            for j in 0..time.len() {
                if !event[i] || i == j {
                    continue;
                }
                let later = time[j] > time[i] || (time[j] == time[i] && !event[j]);
                if later {
                    if s[i] > s[j] {
                        con += 1.0
                    } else if s[i] < s[j] {
                        dis += 1.0
                    } else {
                        tx += 1.0
                    }
                } else if time[j] == time[i] && event[j] && j > i && s[i] != s[j] {
                    ty += 1.0;
                }
            }
        }
        (con, dis, tx, ty)
    }

    #[test]
    fn counts_match_brute_force() {
        let mut rng = Rng::seed_from_u64(5);
        let n = 300;
        let time: Vec<f64> = (0..n).map(|_| rng.below(40) as f64).collect();
        let event: Vec<bool> = (0..n).map(|_| rng.bernoulli(0.6)).collect();
        let s: Vec<f64> = (0..n).map(|_| rng.below(25) as f64).collect();
        let d = SurvData::new(time.clone(), event.clone()).unwrap();
        let c = concordance(&d, &s, None, None).unwrap();
        let (con, dis, tx, ty) = brute(&time, &event, &s);
        assert_eq!(
            (c.concordant, c.discordant, c.tied_x, c.tied_y),
            (con, dis, tx, ty)
        );
        let rev: Vec<f64> = s.iter().map(|v| -v).collect();
        let r = concordance(&d, &rev, None, None).unwrap();
        assert!((c.c + r.c - 1.0).abs() < 1e-15);
        assert!((c.se - r.se).abs() < 1e-15);
    }

    #[test]
    fn bootstrap_is_deterministic_and_brackets_c() {
        let mut rng = Rng::seed_from_u64(9);
        let n = 200;
        let s: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let time: Vec<f64> = s.iter().map(|v| (-v).exp() * rng.exponential()).collect();
        let d = SurvData::new(time, vec![true; n]).unwrap();
        let c = concordance(&d, &s, None, None).unwrap();
        let a = bootstrap_ci(&d, &s, None, 200, 0.95, 1).unwrap();
        let b = bootstrap_ci(&d, &s, None, 200, 0.95, 1).unwrap();
        assert_eq!(a, b);
        assert!(a.lower < c.c && c.c < a.upper, "{a:?} {}", c.c);
    }
}
