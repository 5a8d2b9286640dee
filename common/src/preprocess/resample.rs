//! Trilinear resampling and centred crop / pad of 3D volumes.
//!
//! Trilinear interpolation on a regular grid is the tensor product of three
//! 1D linear interpolations, so it is done as three separable passes (one per
//! axis). Each output voxel costs 2 reads per pass instead of 8 scattered
//! reads, the inner loops run along contiguous memory, and every pass is
//! split across rayon's threads by planes.
//!
//! Sample positions are cell-centred: output voxel `o` along an axis with
//! zoom `r = out_spacing / in_spacing` samples input coordinate
//! `(o + 0.5) * r - 0.5`, so the field of view keeps its centre and the output
//! spacing is exactly the one asked for; samples past the edge repeat the
//! edge voxel. The affine is updated to match, so world coordinates of the
//! anatomy are unchanged.

use rayon::prelude::*;

use crate::nifti::Volume;

/// One output position along an axis: the two input indices and the weight
/// of the second.
#[derive(Clone, Copy)]
struct Tap {
    i0: usize,
    i1: usize,
    w: f32,
}

fn taps(n_in: usize, n_out: usize, ratio: f64) -> Vec<Tap> {
    let last = n_in.saturating_sub(1);
    (0..n_out)
        .map(|o| {
            let x = ((o as f64 + 0.5) * ratio - 0.5).clamp(0.0, last as f64);
            let i0 = (x.floor() as usize).min(last);
            let i1 = (i0 + 1).min(last);
            Tap {
                i0,
                i1,
                w: (x - i0 as f64) as f32,
            }
        })
        .collect()
}

/// Resamples to `spacing` (mm), keeping the field of view: each axis gets
/// `round(n * pixdim / spacing)` voxels (at least 1).
pub fn resample_to_spacing(volume: &Volume, spacing: [f32; 3]) -> Volume {
    let (shape, spacing) = spacing_target(volume, spacing);
    let mut data = Vec::new();
    let (pixdim, affine) = resample_into(volume, shape, spacing, &mut data);
    Volume {
        dims: shape,
        pixdim,
        affine,
        data,
    }
}

/// Resamples to `shape` voxels over the same field of view (the spacing
/// changes by `dims / shape` per axis).
pub fn resample_to_shape(volume: &Volume, shape: [usize; 3]) -> Volume {
    let (shape, spacing) = shape_target(volume, shape);
    let mut data = Vec::new();
    let (pixdim, affine) = resample_into(volume, shape, spacing, &mut data);
    Volume {
        dims: shape,
        pixdim,
        affine,
        data,
    }
}

pub(super) fn spacing_target(volume: &Volume, spacing: [f32; 3]) -> ([usize; 3], [f64; 3]) {
    let mut shape = [0usize; 3];
    for a in 0..3 {
        let extent = volume.dims[a] as f64 * f64::from(volume.pixdim[a]);
        shape[a] = ((extent / f64::from(spacing[a])).round() as usize).max(1);
    }
    (shape, spacing.map(f64::from))
}

pub(super) fn shape_target(volume: &Volume, shape: [usize; 3]) -> ([usize; 3], [f64; 3]) {
    let shape = shape.map(|n| n.max(1));
    let mut spacing = [0f64; 3];
    for a in 0..3 {
        spacing[a] = f64::from(volume.pixdim[a]) * volume.dims[a] as f64 / shape[a] as f64;
    }
    (shape, spacing)
}

thread_local! {
    /// Intermediate buffers of the separable passes, kept per thread so that
    /// decoding thousands of volumes does not pay fresh-page faults for
    /// every intermediate (they dominated the profile).
    static SCRATCH: std::cell::RefCell<[Vec<f32>; 3]> = std::cell::RefCell::default();
}

/// Runs `f` with this thread's scratch buffers. They are moved out for the
/// call, so a nested use (rayon may run another task on this thread while
/// `f` waits) simply gets fresh buffers instead of a borrow conflict.
pub(super) fn with_scratch<R>(f: impl FnOnce(&mut [Vec<f32>; 3]) -> R) -> R {
    let mut bufs = SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
    let r = f(&mut bufs);
    SCRATCH.with(|s| *s.borrow_mut() = bufs);
    r
}

/// Resamples `volume` onto `shape` voxels of `spacing` into `out`; returns
/// the new pixdim and affine.
pub(super) fn resample_into(
    volume: &Volume,
    shape: [usize; 3],
    spacing: [f64; 3],
    out: &mut Vec<f32>,
) -> ([f32; 3], [[f64; 4]; 4]) {
    let [nx, ny, nz] = volume.dims;
    let mut ratio = [1f64; 3];
    for a in 0..3 {
        let p = f64::from(volume.pixdim[a]);
        ratio[a] = if p > 0.0 && p.is_finite() {
            spacing[a] / p
        } else {
            volume.dims[a] as f64 / shape[a] as f64
        };
    }
    let [mx, my, mz] = shape;
    if shape == volume.dims && ratio == [1.0; 3] {
        out.clear();
        out.extend_from_slice(&volume.data);
    } else {
        with_scratch(|s| {
            let [a, b, _] = s;
            pass_x(&volume.data, [nx, ny, nz], &taps(nx, mx, ratio[0]), a);
            pass_y(a, [mx, ny, nz], &taps(ny, my, ratio[1]), b);
            pass_z(b, [mx, my, nz], &taps(nz, mz, ratio[2]), out);
        });
    }
    let mut affine = volume.affine;
    for row in affine.iter_mut().take(3) {
        let old = *row;
        for a in 0..3 {
            row[a] = old[a] * ratio[a];
            row[3] += old[a] * (ratio[a] - 1.0) / 2.0;
        }
    }
    (spacing.map(|s| s as f32), affine)
}

/// Resizes `out` to `n` values, reusing its capacity. The contents are left
/// as they are (every pass overwrites all of them), so a scratch buffer that
/// already has the size (the usual case: a cohort's volumes share a shape)
/// costs nothing.
fn sized(out: &mut Vec<f32>, n: usize) {
    if out.len() != n {
        out.clear();
        out.resize(n, 0.0);
    }
}

fn lerp_rows(out: &mut [f32], a: &[f32], b: &[f32], w: f32) {
    if w == 0.0 {
        out.copy_from_slice(a);
    } else {
        for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
            *o = x + (y - x) * w;
        }
    }
}

/// Along i (contiguous): every input row becomes one output row.
fn pass_x(src: &[f32], [nx, ny, nz]: [usize; 3], t: &[Tap], out: &mut Vec<f32>) {
    let mx = t.len();
    sized(out, mx * ny * nz);
    if mx == 0 || nx == 0 {
        return;
    }
    out.par_chunks_mut(mx * ny)
        .zip(src.par_chunks(nx * ny))
        .for_each(|(oplane, iplane)| {
            for (orow, irow) in oplane.chunks_mut(mx).zip(iplane.chunks(nx)) {
                for (o, tap) in orow.iter_mut().zip(t) {
                    let (x, y) = (irow[tap.i0], irow[tap.i1]);
                    *o = x + (y - x) * tap.w;
                }
            }
        });
}

/// Along j: within each k plane, output row = lerp of two input rows.
fn pass_y(src: &[f32], [nx, ny, nz]: [usize; 3], t: &[Tap], out: &mut Vec<f32>) {
    let my = t.len();
    sized(out, nx * my * nz);
    if nx == 0 || my == 0 {
        return;
    }
    out.par_chunks_mut(nx * my)
        .zip(src.par_chunks(nx * ny))
        .for_each(|(oplane, iplane)| {
            for (orow, tap) in oplane.chunks_mut(nx).zip(t) {
                let a = &iplane[tap.i0 * nx..(tap.i0 + 1) * nx];
                let b = &iplane[tap.i1 * nx..(tap.i1 + 1) * nx];
                lerp_rows(orow, a, b, tap.w);
            }
        });
}

/// Along k: output plane = lerp of two input planes.
fn pass_z(src: &[f32], [nx, ny, _nz]: [usize; 3], t: &[Tap], out: &mut Vec<f32>) {
    let plane = nx * ny;
    sized(out, plane * t.len());
    if plane == 0 {
        return;
    }
    out.par_chunks_mut(plane)
        .zip(t.par_iter())
        .for_each(|(oplane, tap)| {
            let a = &src[tap.i0 * plane..(tap.i0 + 1) * plane];
            let b = &src[tap.i1 * plane..(tap.i1 + 1) * plane];
            lerp_rows(oplane, a, b, tap.w);
        });
}

/// Crops or pads each axis to `shape` around the centre (padding with
/// `pad_value`); for odd differences the extra voxel is cropped from (or
/// padded at) the end. The affine is shifted so voxels keep their world
/// position.
pub fn crop_or_pad(volume: &Volume, shape: [usize; 3], pad_value: f32) -> Volume {
    if shape == volume.dims {
        return volume.clone();
    }
    crop_or_pad_slice(
        &volume.data,
        volume.dims,
        volume.pixdim,
        volume.affine,
        shape,
        pad_value,
    )
}

/// [`crop_or_pad`] of raw data on a grid.
pub(super) fn crop_or_pad_slice(
    src: &[f32],
    dims: [usize; 3],
    pixdim: [f32; 3],
    affine: [[f64; 4]; 4],
    shape: [usize; 3],
    pad_value: f32,
) -> Volume {
    let [nx, ny, nz] = dims;
    let [mx, my, mz] = shape;
    // Input index of output index 0 along each axis (negative when padding).
    let off: [i64; 3] = std::array::from_fn(|a| (dims[a] as i64 - shape[a] as i64) / 2);
    let mut data = vec![pad_value; mx * my * mz];
    if mx > 0 && my > 0 {
        data.par_chunks_mut(mx * my)
            .enumerate()
            .for_each(|(z, oplane)| {
                let iz = z as i64 + off[2];
                if iz < 0 || iz >= nz as i64 {
                    return;
                }
                // The range of x copied: output [x0, x1) from input [x0 + off, ..).
                let x0 = (-off[0]).max(0) as usize;
                let x1 = ((nx as i64 - off[0]).min(mx as i64)).max(x0 as i64) as usize;
                for (y, orow) in oplane.chunks_mut(mx).enumerate() {
                    let iy = y as i64 + off[1];
                    if iy < 0 || iy >= ny as i64 || x1 <= x0 {
                        continue;
                    }
                    let base = (iz as usize * ny + iy as usize) * nx;
                    let ix0 = (x0 as i64 + off[0]) as usize;
                    orow[x0..x1].copy_from_slice(&src[base + ix0..base + ix0 + (x1 - x0)]);
                }
            });
    }
    let mut affine = affine;
    for row in affine.iter_mut().take(3) {
        let shift: f64 = (0..3).map(|a| row[a] * off[a] as f64).sum();
        row[3] += shift;
    }
    Volume {
        dims: shape,
        pixdim,
        affine,
        data,
    }
}
