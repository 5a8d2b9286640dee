//! Data augmentation of stacked `[C, D, H, W]` volumes, seeded per sample.
//!
//! Each sample's augmentation draws from its own stream,
//! `Rng::derive_indexed(seed, "augment", epoch * pool + member)`, so it does
//! not depend on which worker loads the sample, on batch order or on thread
//! count: a run on any number of workers sees the same augmented inputs.
//!
//! Transforms, in order: random flips along the chosen spatial axes, a random
//! integer shift (voxels shifted out are dropped, the vacated ones take the
//! fill value), per-channel intensity scale and shift, Gaussian noise.

use cohort_common::rng::Rng;
use serde::{Deserialize, Serialize};

/// What augmentation does; the default is none.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AugmentConfig {
    /// Flip each of the spatial axes `[D, H, W]` with probability 0.5.
    pub flip: [bool; 3],
    /// Largest shift along each spatial axis, in voxels.
    pub max_shift: [usize; 3],
    /// Intensity scale drawn uniformly from `1 ± scale`, per channel.
    pub intensity_scale: f32,
    /// Intensity shift drawn uniformly from `± shift`, per channel.
    pub intensity_shift: f32,
    /// Standard deviation of additive Gaussian noise.
    pub noise_std: f32,
    /// Value of voxels vacated by a shift.
    pub fill: f32,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        AugmentConfig {
            flip: [false; 3],
            max_shift: [0; 3],
            intensity_scale: 0.0,
            intensity_shift: 0.0,
            noise_std: 0.0,
            fill: 0.0,
        }
    }
}

impl AugmentConfig {
    /// Whether the config changes anything.
    pub fn is_identity(&self) -> bool {
        *self
            == AugmentConfig {
                fill: self.fill,
                ..AugmentConfig::default()
            }
    }
}

/// The stream of one sample in one epoch.
pub fn sample_rng(seed: u64, epoch: u64, pool_size: usize, member: usize) -> Rng {
    Rng::derive_indexed(
        seed,
        "augment",
        epoch
            .wrapping_mul(pool_size as u64)
            .wrapping_add(member as u64),
    )
}

/// Augments one sample in place. `shape` is `[C, D, H, W]`.
pub fn augment(data: &mut [f32], shape: [usize; 4], config: &AugmentConfig, rng: &mut Rng) {
    if config.is_identity() {
        return;
    }
    let [c, d, h, w] = shape;
    assert_eq!(
        data.len(),
        c * d * h * w,
        "augment: data does not match shape {shape:?}"
    );
    let spatial = [d, h, w];
    // Draw everything first, in a fixed order, so the stream does not depend
    // on which transforms are enabled further down.
    let flips: Vec<bool> = (0..3)
        .map(|a| rng.bernoulli(0.5) && config.flip[a])
        .collect();
    let shifts: Vec<isize> = (0..3)
        .map(|a| {
            let m = config.max_shift[a].min(spatial[a].saturating_sub(1));
            let r = rng.below(2 * m as u64 + 1) as isize;
            r - m as isize
        })
        .collect();
    let scales: Vec<f32> = (0..c)
        .map(|_| 1.0 + config.intensity_scale * (2.0 * rng.uniform() as f32 - 1.0))
        .collect();
    let offsets: Vec<f32> = (0..c)
        .map(|_| config.intensity_shift * (2.0 * rng.uniform() as f32 - 1.0))
        .collect();

    if flips.iter().any(|&f| f) || shifts.iter().any(|&s| s != 0) {
        let mut out = vec![config.fill; data.len()];
        let source = |out_index: usize, axis: usize| -> Option<usize> {
            let n = spatial[axis] as isize;
            let shifted = out_index as isize - shifts[axis];
            if !(0..n).contains(&shifted) {
                return None;
            }
            let s = shifted as usize;
            Some(if flips[axis] {
                spatial[axis] - 1 - s
            } else {
                s
            })
        };
        for ch in 0..c {
            for z in 0..d {
                let Some(sz) = source(z, 0) else { continue };
                for y in 0..h {
                    let Some(sy) = source(y, 1) else { continue };
                    let row_out = ((ch * d + z) * h + y) * w;
                    let row_in = ((ch * d + sz) * h + sy) * w;
                    for x in 0..w {
                        if let Some(sx) = source(x, 2) {
                            out[row_out + x] = data[row_in + sx];
                        }
                    }
                }
            }
        }
        data.copy_from_slice(&out);
    }
    let per_channel = d * h * w;
    for ch in 0..c {
        for v in &mut data[ch * per_channel..(ch + 1) * per_channel] {
            *v = *v * scales[ch] + offsets[ch];
        }
    }
    if config.noise_std > 0.0 {
        for v in data.iter_mut() {
            *v += config.noise_std * rng.normal() as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(shape: [usize; 4]) -> Vec<f32> {
        (0..shape.iter().product::<usize>())
            .map(|i| i as f32)
            .collect()
    }

    #[test]
    fn identity_changes_nothing() {
        let shape = [2, 3, 4, 5];
        let mut data = ramp(shape);
        augment(
            &mut data,
            shape,
            &AugmentConfig::default(),
            &mut Rng::seed_from_u64(1),
        );
        assert_eq!(data, ramp(shape));
    }

    #[test]
    fn a_flip_reverses_an_axis_and_twice_is_identity() {
        let shape = [1, 2, 3, 4];
        let config = AugmentConfig {
            flip: [false, false, true],
            ..AugmentConfig::default()
        };
        // Find a seed whose first draw flips.
        let seed = (0..100)
            .find(|&s| Rng::seed_from_u64(s).bernoulli(0.5))
            .unwrap();
        let mut data = ramp(shape);
        augment(&mut data, shape, &config, &mut Rng::seed_from_u64(seed));
        assert_eq!(&data[..4], &[3.0, 2.0, 1.0, 0.0]);
        augment(&mut data, shape, &config, &mut Rng::seed_from_u64(seed));
        assert_eq!(data, ramp(shape));
    }

    #[test]
    fn shifts_move_content_and_fill_the_gap() {
        let shape = [1, 1, 1, 6];
        let config = AugmentConfig {
            max_shift: [0, 0, 2],
            fill: -9.0,
            ..AugmentConfig::default()
        };
        for seed in 0..20 {
            let mut data = ramp(shape);
            augment(&mut data, shape, &config, &mut Rng::seed_from_u64(seed));
            let k = data.iter().filter(|&&v| v == -9.0).count();
            assert!(k <= 2);
            let kept: Vec<f32> = data.iter().copied().filter(|&v| v != -9.0).collect();
            assert!(kept.windows(2).all(|p| p[1] == p[0] + 1.0), "{data:?}");
        }
    }

    #[test]
    fn intensity_and_noise_are_seeded_per_sample() {
        let shape = [2, 2, 2, 2];
        let config = AugmentConfig {
            intensity_scale: 0.1,
            intensity_shift: 0.5,
            noise_std: 0.2,
            ..AugmentConfig::default()
        };
        let run = |epoch, member| {
            let mut data = ramp(shape);
            augment(
                &mut data,
                shape,
                &config,
                &mut sample_rng(3, epoch, 100, member),
            );
            data
        };
        assert_eq!(run(1, 7), run(1, 7));
        assert_ne!(run(1, 7), run(1, 8));
        assert_ne!(run(1, 7), run(2, 7));
        // Without noise, each channel is an affine map of the input within bounds.
        let affine_only = AugmentConfig {
            noise_std: 0.0,
            ..config.clone()
        };
        let mut data = ramp(shape);
        augment(
            &mut data,
            shape,
            &affine_only,
            &mut sample_rng(3, 0, 100, 0),
        );
        for ch in 0..2 {
            let (input, out) = (&ramp(shape)[ch * 8..ch * 8 + 8], &data[ch * 8..ch * 8 + 8]);
            let scale = (out[1] - out[0]) / (input[1] - input[0]);
            let offset = out[0] - scale * input[0];
            assert!(
                (0.9..=1.1).contains(&scale) && offset.abs() <= 0.5,
                "{scale} {offset}"
            );
            for (a, b) in input.iter().zip(out) {
                assert!((a * scale + offset - b).abs() < 1e-4);
            }
        }
        // Noise alone has the configured spread.
        let noise_only = AugmentConfig {
            noise_std: 0.2,
            ..AugmentConfig::default()
        };
        let big = [1, 20, 20, 20];
        let mut zeros = vec![0.0f32; 8000];
        augment(&mut zeros, big, &noise_only, &mut Rng::seed_from_u64(5));
        let sd = (zeros.iter().map(|v| v * v).sum::<f32>() / 8000.0).sqrt();
        assert!((sd - 0.2).abs() < 0.01, "noise sd {sd}");
    }
}
