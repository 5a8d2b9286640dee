//! 3D pooling built from burn's 2D pooling kernels.
//!
//! burn 0.22 has `max_pool2d`, `avg_pool2d` and `adaptive_avg_pool3d`, but no 3D max or
//! average pooling. A cubic max (or mean, when every window has the same size) is separable:
//! the max over a `k x k x k` window is the max over depth of the maxes over `k x k` in-plane
//! windows. So a 3D pool is two 2D pools on reshaped views, with no copy of the volume beyond
//! what the 2D kernels write:
//!
//! 1. `[N, C, D, H, W] -> [N, C*D, H, W]`, pool `k x k` in-plane (stride `s`, padding `p`);
//! 2. `[N, C*D, H', W'] -> [N, C, D, H'*W']`, pool `k x 1` along depth (stride `s x 1`,
//!    padding `p x 0`); reshape to `[N, C, D', H', W']`.
//!
//! Max pooling pads with `-inf` (burn and PyTorch both), so the padded separable max equals
//! PyTorch's `MaxPool3d(k, s, p)` exactly; output sizes use the same floor rule. Average
//! pooling here is only used unpadded (`AvgPool3d(2)` in the transitions), where every
//! window holds `k^3` voxels and the mean of means is exact. Both are differentiable through
//! the 2D kernels' backward passes (for tied maxima the gradient may go to a different,
//! equally maximal voxel than PyTorch's; the value is identical).

use burn::tensor::Tensor;
use burn::tensor::module::{avg_pool2d, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, MaxPoolOptions};

/// `MaxPool3d(kernel_size = k, stride = s, padding = p)` with cubic windows.
pub fn max_pool3d(x: Tensor<5>, k: usize, s: usize, p: usize) -> Tensor<5> {
    let [n, c, d, h, w] = x.dims();
    let y = max_pool2d(
        x.reshape([n, c * d, h, w]),
        MaxPoolOptions::new([k, k])
            .with_stride([s, s])
            .with_padding([p, p]),
    );
    let [_, _, h2, w2] = y.dims();
    let y = max_pool2d(
        y.reshape([n, c, d, h2 * w2]),
        MaxPoolOptions::new([k, 1])
            .with_stride([s, 1])
            .with_padding([p, 0]),
    );
    let [_, _, d2, _] = y.dims();
    y.reshape([n, c, d2, h2, w2])
}

/// `AvgPool3d(kernel_size = k, stride = k)` without padding (odd trailing voxels dropped,
/// as PyTorch's floor mode does).
pub fn avg_pool3d(x: Tensor<5>, k: usize) -> Tensor<5> {
    let [n, c, d, h, w] = x.dims();
    let y = avg_pool2d(x.reshape([n, c * d, h, w]), AvgPoolOptions::new([k, k]));
    let [_, _, h2, w2] = y.dims();
    let y = avg_pool2d(
        y.reshape([n, c, d, h2 * w2]),
        AvgPoolOptions::new([k, 1]).with_stride([k, 1]),
    );
    let [_, _, d2, _] = y.dims();
    y.reshape([n, c, d2, h2, w2])
}

/// Global average pooling to `[N, C]` (MONAI's `AdaptiveAvgPool3d(1)` + `Flatten(1)`).
pub fn global_avg_pool(x: Tensor<5>) -> Tensor<2> {
    let [n, c, d, h, w] = x.dims();
    x.reshape([n, c, d * h * w]).mean_dim(2).reshape([n, c])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution, TensorData};

    /// Direct (non-separable) 3D pooling on host data, PyTorch semantics.
    fn naive(
        x: &[f32],
        [n, c, d, h, w]: [usize; 5],
        k: usize,
        s: usize,
        p: usize,
        max: bool,
    ) -> (Vec<f32>, [usize; 5]) {
        let o = |len: usize| (len + 2 * p - k) / s + 1;
        let (od, oh, ow) = (o(d), o(h), o(w));
        let mut out = Vec::with_capacity(n * c * od * oh * ow);
        for b in 0..n * c {
            for z in 0..od {
                for y in 0..oh {
                    for xx in 0..ow {
                        let mut acc = if max { f32::NEG_INFINITY } else { 0.0 };
                        for dz in 0..k {
                            for dy in 0..k {
                                for dx in 0..k {
                                    let (iz, iy, ix) = (
                                        (z * s + dz) as isize - p as isize,
                                        (y * s + dy) as isize - p as isize,
                                        (xx * s + dx) as isize - p as isize,
                                    );
                                    if iz < 0
                                        || iy < 0
                                        || ix < 0
                                        || iz >= d as isize
                                        || iy >= h as isize
                                        || ix >= w as isize
                                    {
                                        continue;
                                    }
                                    let v = x[b * d * h * w
                                        + iz as usize * h * w
                                        + iy as usize * w
                                        + ix as usize];
                                    if max { acc = acc.max(v) } else { acc += v }
                                }
                            }
                        }
                        out.push(if max { acc } else { acc / (k * k * k) as f32 });
                    }
                }
            }
        }
        (out, [n, c, od, oh, ow])
    }

    fn check(shape: [usize; 5], k: usize, s: usize, p: usize, max: bool) {
        let device = Device::flex();
        device.seed(7);
        let x = Tensor::<5>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        let host: Vec<f32> = x.to_data().try_to_vec::<f32>().unwrap();
        let (want, want_shape) = naive(&host, shape, k, s, p, max);
        let got = if max {
            max_pool3d(x, k, s, p)
        } else {
            avg_pool3d(x, k)
        };
        assert_eq!(got.dims(), want_shape, "shape for {shape:?} k{k} s{s} p{p}");
        let got: Vec<f32> = got.to_data().try_to_vec::<f32>().unwrap();
        let err = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            err < 1e-6,
            "max abs err {err} for {shape:?} k{k} s{s} p{p} max={max}"
        );
    }

    #[test]
    fn max_pool3d_matches_direct_pooling() {
        // The stem's pool (3, 2, 1) on even and odd sizes, and an anisotropic volume.
        check([2, 3, 8, 8, 8], 3, 2, 1, true);
        check([1, 2, 7, 9, 5], 3, 2, 1, true);
        check([1, 1, 4, 6, 10], 2, 2, 0, true);
    }

    #[test]
    fn avg_pool3d_matches_direct_pooling() {
        check([2, 3, 8, 8, 8], 2, 2, 0, false);
        check([1, 2, 7, 9, 5], 2, 2, 0, false);
    }

    #[test]
    fn global_avg_pool_is_the_spatial_mean() {
        let device = Device::flex();
        let x = Tensor::<5>::from_data(
            TensorData::new(
                (0..16).map(|v| v as f32).collect::<Vec<_>>(),
                [1, 2, 2, 2, 2],
            ),
            &device,
        );
        let got: Vec<f32> = global_avg_pool(x).to_data().try_to_vec::<f32>().unwrap();
        assert_eq!(got, vec![3.5, 11.5]);
    }
}
