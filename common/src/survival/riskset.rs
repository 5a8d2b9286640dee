//! The sorted risk-set structure of the Cox fit and its one-pass kernels
//! (see [`super::cox`] for the model and R's conventions).
//!
//! Subjects are sorted once by (stratum, time) with the radix sort of
//! [`super::sort`], and the rows are scattered (read in input order, written
//! to their sorted place) into one contiguous centred matrix. The per-iteration
//! pass ([`RiskSets::eval`]) runs over the sorted rows from the longest time
//! down; for up to 8 covariates it is compiled for the exact dimension
//! (const generics), so the p-vector and p × p updates are unrolled with no
//! bounds checks.

use super::cox::Ties;
use super::sort::{f64_key, radix_sort_by_key};
use super::{Design, SurvData};

/// `prod · den` with the binary exponent of the result moved into `expo`,
/// so a product of thousands of risk-set sums neither overflows nor needs a
/// logarithm per factor. `den` must be positive and finite (a non-finite or
/// zero value propagates into the product and so into ℓ, where the Newton
/// loop sees it).
#[inline]
fn mul_normalized(prod: f64, expo: i64, den: f64) -> (f64, i64) {
    let v = prod * den;
    let bits = v.to_bits();
    let e = ((bits >> 52) & 0x7ff) as i64;
    if e == 0 || e == 0x7ff {
        return (v, expo);
    }
    (
        f64::from_bits((bits & !(0x7ffu64 << 52)) | (1023u64 << 52)),
        expo + e - 1023,
    )
}

/// Subjects ordered by (stratum, time), ties in input order.
pub(super) fn sort_order(time: &[f64], strata: Option<&[usize]>) -> Vec<usize> {
    let mut by_time: Vec<u32> = (0..time.len() as u32).collect();
    radix_sort_by_key(&mut by_time, |i| f64_key(time[i as usize]));
    match strata {
        None => by_time.into_iter().map(|i| i as usize).collect(),
        Some(s) => {
            // Stable counting sort by stratum on top of the time order.
            let k = s.iter().max().map_or(0, |m| m + 1);
            let mut start = vec![0usize; k + 1];
            for &g in s {
                start[g + 1] += 1;
            }
            for g in 0..k {
                start[g + 1] += start[g];
            }
            let mut out = vec![0usize; s.len()];
            for i in by_time {
                let g = s[i as usize];
                out[start[g]] = i as usize;
                start[g] += 1;
            }
            out
        }
    }
}

/// Subjects sorted by (stratum, time), centred, with the distinct
/// (stratum, time) blocks; built once per fit.
pub(super) struct RiskSets {
    p: usize,
    x: Vec<f64>,
    w: Vec<f64>,
    event: Vec<bool>,
    time: Vec<f64>,
    /// (start, first event, end, stratum) of each block of equal
    /// (stratum, time): censored rows start..mid, events mid..end.
    blocks: Vec<(usize, usize, usize, usize)>,
    /// Σ over events of w · x (centred), constant across iterations.
    wx_events: Vec<f64>,
}

/// Log-likelihood, score and information at one β.
pub(super) struct Eval {
    pub(super) loglik: f64,
    pub(super) u: Vec<f64>,
    pub(super) imat: Vec<f64>,
    /// Baseline hazard increment of each block (at the centring point):
    /// Σ_D w / S (Breslow) or Σ_{r<d} (Σ_D w / d) / (S - (r/d) E) (Efron).
    pub(super) hazard: Vec<f64>,
}

impl Eval {
    pub(super) fn new(p: usize, rs: &RiskSets) -> Self {
        Eval {
            loglik: 0.0,
            u: vec![0.0; p],
            imat: vec![0.0; p * p],
            hazard: vec![0.0; rs.blocks.len()],
        }
    }
}

/// Scratch sums reused by every pass.
pub(super) struct Scratch {
    s1: Vec<f64>,
    s2: Vec<f64>,
    e1: Vec<f64>,
    e2: Vec<f64>,
    mean: Vec<f64>,
    /// w e^η of every sorted row, for the fixed-dimension pass.
    risk: Vec<f64>,
}

impl Scratch {
    pub(super) fn new(p: usize) -> Self {
        Scratch {
            s1: vec![0.0; p],
            s2: vec![0.0; p * p],
            e1: vec![0.0; p],
            e2: vec![0.0; p * p],
            mean: vec![0.0; p],
            risk: Vec::new(),
        }
    }
}

impl RiskSets {
    pub(super) fn new(
        data: &SurvData,
        x: &Design,
        cols: &[usize],
        weights: Option<&[f64]>,
        strata: Option<&[usize]>,
        means: &[f64],
    ) -> Self {
        let n = data.len();
        let time = data.time();
        let st = |i: usize| strata.map_or(0, |s| s[i]);
        let event = data.event();
        // Order by (stratum, time, event): three stable radix passes, least
        // significant key first. Censored subjects then come first in each
        // block of equal (stratum, time), so the passes need no per-row branch.
        let mut order: Vec<u32> = (0..n as u32).collect();
        radix_sort_by_key(&mut order, |i| u64::from(event[i as usize]));
        radix_sort_by_key(&mut order, |i| f64_key(time[i as usize]));
        if let Some(s) = strata {
            radix_sort_by_key(&mut order, |i| s[i as usize] as u64);
        }
        let p = cols.len();
        // Scatter rather than gather: read the rows in input order (which
        // the prefetcher follows) and write each to its sorted position.
        let mut pos = vec![0u32; n];
        for (k, &i) in order.iter().enumerate() {
            pos[i as usize] = k as u32;
        }
        let mut xs = vec![0.0; n * p];
        let (mut ws, mut evs, mut ts) = (vec![1.0; n], vec![false; n], vec![0.0; n]);
        let mut ss = vec![0usize; n];
        for i in 0..n {
            let k = pos[i] as usize;
            let row = x.row(i);
            let dst = &mut xs[k * p..(k + 1) * p];
            for ((d, &j), m) in dst.iter_mut().zip(cols).zip(means) {
                *d = row[j] - m;
            }
            if let Some(w) = weights {
                ws[k] = w[i];
            }
            evs[k] = event[i];
            ts[k] = time[i];
            ss[k] = st(i);
        }
        // Blocks of equal (stratum, time) from the sorted arrays.
        let mut blocks = Vec::new();
        let mut start = 0;
        while start < n {
            let mut end = start + 1;
            while end < n && ts[end] == ts[start] && ss[end] == ss[start] {
                end += 1;
            }
            let mid = start + evs[start..end].iter().take_while(|e| !**e).count();
            blocks.push((start, mid, end, ss[start]));
            start = end;
        }
        let mut wx_events = vec![0.0; p];
        for k in 0..n {
            if evs[k] {
                for (acc, v) in wx_events.iter_mut().zip(&xs[k * p..(k + 1) * p]) {
                    *acc += ws[k] * v;
                }
            }
        }
        RiskSets {
            p,
            wx_events,
            x: xs,
            w: ws,
            event: evs,
            time: ts,
            blocks,
        }
    }

    /// One backward pass: ℓ(β), U(β) and I(β).
    pub(super) fn eval(&self, beta: &[f64], ties: Ties, sc: &mut Scratch, out: &mut Eval) {
        match self.p {
            1 => self.eval_fixed::<1>(beta, ties, &mut sc.risk, out),
            2 => self.eval_fixed::<2>(beta, ties, &mut sc.risk, out),
            3 => self.eval_fixed::<3>(beta, ties, &mut sc.risk, out),
            4 => self.eval_fixed::<4>(beta, ties, &mut sc.risk, out),
            5 => self.eval_fixed::<5>(beta, ties, &mut sc.risk, out),
            6 => self.eval_fixed::<6>(beta, ties, &mut sc.risk, out),
            7 => self.eval_fixed::<7>(beta, ties, &mut sc.risk, out),
            8 => self.eval_fixed::<8>(beta, ties, &mut sc.risk, out),
            _ => self.eval_dyn(beta, ties, sc, out),
        }
    }

    /// [`RiskSets::eval_dyn`] for a dimension known at compile time.
    // Index loops over fixed-size arrays read like the formulas and unroll.
    #[allow(clippy::needless_range_loop)]
    fn eval_fixed<const P: usize>(
        &self,
        beta: &[f64],
        ties: Ties,
        risk: &mut Vec<f64>,
        out: &mut Eval,
    ) {
        let beta: [f64; P] = beta.try_into().expect("beta has p entries");
        let (rows, _) = self.x.as_chunks::<P>();
        // First w e^η of every row, in parallel chunks on large data (it is
        // independent per row; the risk-set sums below are sequential). At
        // β = 0 (the first evaluation) every e^η is 1.
        let n = self.w.len();
        risk.resize(n, 0.0);
        if beta.iter().all(|&b| b == 0.0) {
            risk.copy_from_slice(&self.w);
        } else {
            const CHUNK: usize = 8192;
            let fill = |c: usize, out: &mut [f64]| {
                for (k, o) in out.iter_mut().enumerate() {
                    let i = c * CHUNK + k;
                    let mut eta = 0.0;
                    for j in 0..P {
                        eta += rows[i][j] * beta[j];
                    }
                    *o = self.w[i] * eta.exp();
                }
            };
            if n >= 4 * CHUNK {
                use rayon::prelude::*;
                risk.par_chunks_mut(CHUNK)
                    .enumerate()
                    .for_each(|(c, out)| fill(c, out));
            } else {
                risk.chunks_mut(CHUNK)
                    .enumerate()
                    .for_each(|(c, out)| fill(c, out));
            }
        }
        // Σ_D w η and Σ_D w x do not depend on the risk sets.
        let mut u = [0.0; P];
        u.copy_from_slice(&self.wx_events);
        let mut loglik: f64 = (0..P).map(|j| beta[j] * u[j]).sum();
        let mut imat = [[0.0; P]; P];
        let (mut s0, mut s1, mut s2) = (0.0, [0.0; P], [[0.0; P]; P]);
        let mut cur_stratum = usize::MAX;
        for (b, &(start, mid, end, stratum)) in self.blocks.iter().enumerate().rev() {
            if stratum != cur_stratum {
                cur_stratum = stratum;
                (s0, s1, s2) = (0.0, [0.0; P], [[0.0; P]; P]);
            }
            for i in start..mid {
                let xi = &rows[i];
                let r = risk[i];
                s0 += r;
                for j in 0..P {
                    let rx = r * xi[j];
                    s1[j] += rx;
                    for k in 0..=j {
                        s2[j][k] += rx * xi[k];
                    }
                }
            }
            let d = end - mid;
            out.hazard[b] = 0.0;
            if d == 0 {
                continue;
            }
            let mut wd = 0.0;
            let (mut e0, mut e1, mut e2) = (0.0, [0.0; P], [[0.0; P]; P]);
            for i in mid..end {
                let xi = &rows[i];
                let r = risk[i];
                wd += self.w[i];
                e0 += r;
                for j in 0..P {
                    let rx = r * xi[j];
                    e1[j] += rx;
                    for k in 0..=j {
                        e2[j][k] += rx * xi[k];
                    }
                }
            }
            // Scalar weights of S-terms and E-terms (see `eval_dyn`).
            let (a0, a1, b0, b1, b2);
            if ties == Ties::Breslow || d == 1 {
                let den = s0 + e0;
                loglik -= wd * den.ln();
                let inv = wd / den;
                (a0, a1, b0, b1, b2) = (inv, inv, inv / den, inv / den, inv / den);
            } else {
                let wtave = wd / d as f64;
                let (mut t0, mut t1, mut q0, mut q1, mut q2) = (0.0, 0.0, 0.0, 0.0, 0.0);
                // Σ_r ln den_r as the log of a running product kept in
                // [1, 2) by moving its binary exponent out: one ln per time.
                let (mut prod, mut expo) = (1.0f64, 0i64);
                for r in 0..d {
                    let f = 1.0 - r as f64 / d as f64;
                    let den = s0 + f * e0;
                    (prod, expo) = mul_normalized(prod, expo, den);
                    let inv = 1.0 / den;
                    let inv2 = inv * inv;
                    t0 += inv;
                    t1 += f * inv;
                    q0 += inv2;
                    q1 += f * inv2;
                    q2 += f * f * inv2;
                }
                loglik -= wtave * (prod.ln() + expo as f64 * std::f64::consts::LN_2);
                (a0, a1, b0, b1, b2) = (wtave * t0, wtave * t1, wtave * q0, wtave * q1, wtave * q2);
            }
            out.hazard[b] = a0;
            for j in 0..P {
                u[j] -= s1[j] * a0 + e1[j] * a1;
                for k in 0..=j {
                    let second = s2[j][k] * a0 + e2[j][k] * a1;
                    let outer = s1[j] * s1[k] * b0
                        + (s1[j] * e1[k] + e1[j] * s1[k]) * b1
                        + e1[j] * e1[k] * b2;
                    imat[j][k] += second - outer;
                }
            }
            s0 += e0;
            for j in 0..P {
                s1[j] += e1[j];
                for k in 0..=j {
                    s2[j][k] += e2[j][k];
                }
            }
        }
        out.loglik = loglik;
        out.u.copy_from_slice(&u);
        for j in 0..P {
            for k in 0..=j {
                out.imat[j * P + k] = imat[j][k];
                out.imat[k * P + j] = imat[j][k];
            }
        }
    }

    /// The pass for any p (lower triangle, then mirrored).
    fn eval_dyn(&self, beta: &[f64], ties: Ties, sc: &mut Scratch, out: &mut Eval) {
        let p = self.p;
        out.loglik = 0.0;
        out.u.iter_mut().for_each(|v| *v = 0.0);
        out.imat.iter_mut().for_each(|v| *v = 0.0);
        let mut s0 = 0.0;
        let mut cur_stratum = usize::MAX;
        for (b, &(start, _, end, stratum)) in self.blocks.iter().enumerate().rev() {
            out.hazard[b] = 0.0;
            if stratum != cur_stratum {
                cur_stratum = stratum;
                s0 = 0.0;
                sc.s1.iter_mut().for_each(|v| *v = 0.0);
                sc.s2.iter_mut().for_each(|v| *v = 0.0);
            }
            let (mut d, mut wd, mut e0) = (0usize, 0.0, 0.0);
            for i in start..end {
                let xi = &self.x[i * p..(i + 1) * p];
                let eta: f64 = xi.iter().zip(beta).map(|(a, b)| a * b).sum();
                let w = self.w[i];
                let r = w * eta.exp();
                let (z0, z1, z2) = if self.event[i] {
                    if d == 0 {
                        sc.e1.iter_mut().for_each(|v| *v = 0.0);
                        sc.e2.iter_mut().for_each(|v| *v = 0.0);
                    }
                    d += 1;
                    wd += w;
                    out.loglik += w * eta;
                    for (u, &xv) in out.u.iter_mut().zip(xi) {
                        *u += w * xv;
                    }
                    (&mut e0, &mut sc.e1, &mut sc.e2)
                } else {
                    (&mut s0, &mut sc.s1, &mut sc.s2)
                };
                *z0 += r;
                for j in 0..p {
                    let rx = r * xi[j];
                    z1[j] += rx;
                    let row = &mut z2[j * p..j * p + j + 1];
                    for (k, v) in row.iter_mut().enumerate() {
                        *v += rx * xi[k];
                    }
                }
            }
            if d == 0 {
                continue;
            }
            if ties == Ties::Breslow || d == 1 {
                s0 += e0;
                for j in 0..p {
                    sc.s1[j] += sc.e1[j];
                    for k in 0..=j {
                        sc.s2[j * p + k] += sc.e2[j * p + k];
                    }
                }
                out.loglik -= wd * s0.ln();
                out.hazard[b] = wd / s0;
                for j in 0..p {
                    sc.mean[j] = sc.s1[j] / s0;
                    out.u[j] -= wd * sc.mean[j];
                }
                for j in 0..p {
                    for k in 0..=j {
                        out.imat[j * p + k] +=
                            wd * (sc.s2[j * p + k] / s0 - sc.mean[j] * sc.mean[k]);
                    }
                }
            } else {
                // Efron: Σ_{r<d} over den_r = S + f_r E with f_r = 1 - r/d.
                // The p-vector and p×p terms are linear in (S, E) with scalar
                // weights, so only scalar sums run over r: O(d + p²) per time.
                let wtave = wd / d as f64;
                let (mut a0, mut a1, mut b0, mut b1, mut b2) = (0.0, 0.0, 0.0, 0.0, 0.0);
                for r in 0..d {
                    let f = 1.0 - r as f64 / d as f64;
                    let den = s0 + f * e0;
                    out.loglik -= wtave * den.ln();
                    let inv = 1.0 / den;
                    out.hazard[b] += wtave * inv;
                    let inv2 = inv * inv;
                    a0 += inv;
                    a1 += f * inv;
                    b0 += inv2;
                    b1 += f * inv2;
                    b2 += f * f * inv2;
                }
                for j in 0..p {
                    out.u[j] -= wtave * (sc.s1[j] * a0 + sc.e1[j] * a1);
                }
                for j in 0..p {
                    let (sj, ej) = (sc.s1[j], sc.e1[j]);
                    for k in 0..=j {
                        let idx = j * p + k;
                        let (sk, ek) = (sc.s1[k], sc.e1[k]);
                        // Σ_r (S2 + f E2)/den - m_r m_rᵀ, m_r = (S1 + f E1)/den.
                        let second = sc.s2[idx] * a0 + sc.e2[idx] * a1;
                        let outer = sj * sk * b0 + (sj * ek + ej * sk) * b1 + ej * ek * b2;
                        out.imat[idx] += wtave * (second - outer);
                    }
                }
                s0 += e0;
                for j in 0..p {
                    sc.s1[j] += sc.e1[j];
                    for k in 0..=j {
                        sc.s2[j * p + k] += sc.e2[j * p + k];
                    }
                }
            }
        }
        for j in 0..p {
            for k in 0..j {
                out.imat[k * p + j] = out.imat[j * p + k];
            }
        }
    }

    /// Baseline cumulative hazard at the centring point, per stratum, at
    /// every distinct time, from the block increments of the last pass.
    pub(super) fn baseline(&self, hazard: &[f64]) -> Vec<(usize, Vec<f64>, Vec<f64>)> {
        let inc = hazard;
        let mut out: Vec<(usize, Vec<f64>, Vec<f64>)> = Vec::new();
        let mut cum = 0.0;
        for (b, &(start, _, _, stratum)) in self.blocks.iter().enumerate() {
            if out.last().is_none_or(|o| o.0 != stratum) {
                out.push((stratum, Vec::new(), Vec::new()));
                cum = 0.0;
            }
            cum += inc[b];
            let last = out.last_mut().expect("pushed above");
            last.1.push(self.time[start]);
            last.2.push(cum);
        }
        out
    }
}
