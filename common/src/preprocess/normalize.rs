//! Z-score normalisation, optionally with statistics from a foreground mask.
//!
//! MRI intensities have no absolute scale, so each volume is standardised.
//! Much of a head volume is air; its statistics would swamp the tissue's, so
//! the mean and standard deviation can come from foreground voxels only
//! (nonzero, above a threshold, or above an Otsu threshold), and are then
//! applied to every voxel, as nnU-Net does.

use rayon::prelude::*;

/// Which voxels the z-score statistics come from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Foreground {
    /// Every voxel.
    All,
    /// Voxels that are not 0.
    NonZero,
    /// Voxels strictly above a value.
    Above(f32),
    /// Voxels above the Otsu threshold of a 256-bin histogram.
    Otsu,
}

/// Mean and standard deviation used by [`zscore`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ZScore {
    pub mean: f64,
    pub std: f64,
    /// Voxels the statistics came from (all of them when the mask was empty).
    pub voxels: usize,
}

/// Standardises `data` in place with statistics from the foreground voxels;
/// falls back to all voxels when the foreground is empty, and to a standard
/// deviation of 1 for a constant volume. `data` must be free of NaN.
pub fn zscore(data: &mut [f32], foreground: Foreground) -> ZScore {
    let threshold = match foreground {
        Foreground::All => None,
        Foreground::NonZero => Some(Mask::NonZero),
        Foreground::Above(t) => Some(Mask::Above(t)),
        Foreground::Otsu => Some(Mask::Above(otsu_threshold(data))),
    };
    let stats = |mask: Option<Mask>| {
        data.par_chunks(64 * 1024)
            .map(|c| match mask {
                None => moments(c, |_| true),
                Some(Mask::NonZero) => moments(c, |v| v != 0.0),
                Some(Mask::Above(t)) => moments(c, |v| v > t),
            })
            .reduce(|| (0.0, 0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2))
    };
    let (n, mut s, mut s2) = stats(threshold);
    let mut n = n as usize;
    if n == 0 {
        tracing::debug!(?foreground, "empty foreground, z-scoring over all voxels");
        let all = stats(None);
        (n, s, s2) = (all.0 as usize, all.1, all.2);
    }
    let mean = if n > 0 { s / n as f64 } else { 0.0 };
    let var = if n > 0 {
        (s2 / n as f64 - mean * mean).max(0.0)
    } else {
        0.0
    };
    let std = if var.sqrt() > 1e-12 { var.sqrt() } else { 1.0 };
    let (m, inv) = (mean as f32, (1.0 / std) as f32);
    data.par_chunks_mut(64 * 1024).for_each(|c| {
        for v in c {
            *v = (*v - m) * inv;
        }
    });
    ZScore {
        mean,
        std,
        voxels: n,
    }
}

/// Count, sum and sum of squares of the kept values, in `f64`. Eight
/// independent lanes let the compiler vectorise the reduction (a single
/// floating-point accumulator cannot be reordered).
#[inline(always)]
fn moments(c: &[f32], keep: impl Fn(f32) -> bool) -> (f64, f64, f64) {
    const L: usize = 8;
    let (mut n, mut s, mut s2) = ([0f64; L], [0f64; L], [0f64; L]);
    let chunks = c.chunks_exact(L);
    let rest = chunks.remainder();
    for ch in chunks {
        for l in 0..L {
            let k = if keep(ch[l]) { 1.0 } else { 0.0 };
            let v = f64::from(ch[l]) * k;
            n[l] += k;
            s[l] += v;
            s2[l] += v * v;
        }
    }
    for &x in rest {
        if keep(x) {
            let v = f64::from(x);
            n[0] += 1.0;
            s[0] += v;
            s2[0] += v * v;
        }
    }
    (n.iter().sum(), s.iter().sum(), s2.iter().sum())
}

#[derive(Clone, Copy, Debug)]
enum Mask {
    NonZero,
    Above(f32),
}

/// The Otsu threshold (maximal between-class variance) of a 256-bin
/// histogram over the data's range.
pub fn otsu_threshold(data: &[f32]) -> f32 {
    let (lo, hi) = data
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        return lo;
    }
    const BINS: usize = 256;
    let width = (hi - lo) / BINS as f32;
    let mut hist = [0u64; BINS];
    for &v in data {
        let b = (((v - lo) / width) as usize).min(BINS - 1);
        hist[b] += 1;
    }
    let total = data.len() as f64;
    let sum_all: f64 = hist
        .iter()
        .enumerate()
        .map(|(i, &h)| i as f64 * h as f64)
        .sum();
    let (mut w0, mut sum0) = (0f64, 0f64);
    let (mut best, mut best_bin) = (-1f64, 0usize);
    for (i, &h) in hist.iter().enumerate() {
        w0 += h as f64;
        sum0 += i as f64 * h as f64;
        let w1 = total - w0;
        if w0 == 0.0 || w1 == 0.0 {
            continue;
        }
        let (m0, m1) = (sum0 / w0, (sum_all - sum0) / w1);
        let between = w0 * w1 * (m0 - m1) * (m0 - m1);
        if between > best {
            best = between;
            best_bin = i;
        }
    }
    lo + width * (best_bin + 1) as f32
}
