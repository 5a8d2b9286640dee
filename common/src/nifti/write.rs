//! The NIfTI-1 writer: 3D volumes as `float32`, or as `int16` with
//! `scl_slope` / `scl_inter`, plain or gzip-compressed.
//!
//! Output is deterministic (gzip mtime 0, unknown OS, fixed level 6), so a
//! seeded synthetic cohort is byte-identical from run to run. The affine is
//! written as the sform (`sform_code` 2, aligned) and, when its 3x3 part is a
//! rotation times the voxel sizes, also as the qform (`qform_code` 2), so
//! readers that only look at one of them agree.

use std::io::Write;

use flate2::{Compression, GzBuilder};

use super::NiftiError;
use super::header::{DataType, NIFTI1_HEADER};

/// A 3D volume to write (and what [`super::Nifti::into_volume`] returns).
#[derive(Clone, Debug, PartialEq)]
pub struct Volume {
    /// Voxels along i, j, k.
    pub dims: [usize; 3],
    /// Voxel spacing in mm along i, j, k.
    pub pixdim: [f32; 3],
    /// Voxel index to world (mm) transform; the last row is `[0, 0, 0, 1]`.
    pub affine: [[f64; 4]; 4],
    /// `dims[0] * dims[1] * dims[2]` values, i fastest (NIfTI order).
    pub data: Vec<f32>,
}

impl Volume {
    /// The affine of an axis-aligned grid: `diag(pixdim)` with a zero origin.
    pub fn axis_aligned_affine(pixdim: [f32; 3]) -> [[f64; 4]; 4] {
        let mut a = [[0.0; 4]; 4];
        for (i, &p) in pixdim.iter().enumerate() {
            a[i][i] = f64::from(p);
        }
        a[3][3] = 1.0;
        a
    }
}

/// How [`encode`] stores the voxel values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// `float32`, no scaling: exact. NaN allowed.
    Float32,
    /// `int16` with `scl_slope` / `scl_inter` chosen from the finite range of
    /// the data (the whole int16 range is used; error at most slope / 2).
    /// NaN or infinite values are refused.
    Int16Scaled,
}

/// Encodes a 3D volume as NIfTI-1 bytes (`.nii`, or `.nii.gz` when `gzip`).
pub fn encode(volume: &Volume, encoding: Encoding, gzip: bool) -> Result<Vec<u8>, NiftiError> {
    let [nx, ny, nz] = volume.dims;
    let count = nx
        .checked_mul(ny)
        .and_then(|v| v.checked_mul(nz))
        .ok_or_else(|| NiftiError::Encode(format!("dims {:?} overflow", volume.dims)))?;
    if volume.dims.iter().any(|&n| n == 0 || n > i16::MAX as usize) {
        return Err(NiftiError::Encode(format!(
            "dims {:?}: each must be between 1 and 32767 in NIfTI-1",
            volume.dims
        )));
    }
    if volume.data.len() != count {
        return Err(NiftiError::Encode(format!(
            "dims {:?} need {count} values, data holds {}",
            volume.dims,
            volume.data.len()
        )));
    }
    let (datatype, slope, inter) = match encoding {
        Encoding::Float32 => (DataType::F32, 1.0f32, 0.0f32),
        Encoding::Int16Scaled => {
            let (slope, inter) = int16_scaling(&volume.data)?;
            (DataType::I16, slope, inter)
        }
    };
    let mut out = Vec::with_capacity(NIFTI1_HEADER + 4 + count * datatype.size());
    write_header(&mut out, volume, datatype, slope, inter);
    match encoding {
        Encoding::Float32 => {
            for &v in &volume.data {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        Encoding::Int16Scaled => {
            let (m, c) = (f64::from(slope), f64::from(inter));
            for &v in &volume.data {
                let q = ((f64::from(v) - c) / m).round().clamp(-32768.0, 32767.0) as i16;
                out.extend_from_slice(&q.to_le_bytes());
            }
        }
    }
    if !gzip {
        return Ok(out);
    }
    let mut enc = GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::with_capacity(out.len() / 2), Compression::new(6));
    enc.write_all(&out)
        .and_then(|()| enc.finish())
        .map_err(|e| NiftiError::Encode(format!("gzip: {e}")))
}

/// Slope and intercept mapping the data's finite range onto [-32767, 32767].
fn int16_scaling(data: &[f32]) -> Result<(f32, f32), NiftiError> {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for &v in data {
        if !v.is_finite() {
            return Err(NiftiError::Encode(format!(
                "value {v} cannot be stored as scaled int16"
            )));
        }
        lo = lo.min(f64::from(v));
        hi = hi.max(f64::from(v));
    }
    if data.is_empty() || hi == lo {
        // A constant volume: slope 1 and the constant as the intercept.
        let c = if data.is_empty() { 0.0 } else { lo };
        return Ok((1.0, c as f32));
    }
    let inter = ((hi + lo) / 2.0) as f32;
    // Widen the slope slightly so rounding of the f32 header values cannot
    // push the extremes outside the int16 range.
    let half = (hi - f64::from(inter)).max(f64::from(inter) - lo);
    let mut slope = (half / 32767.0) as f32;
    slope = f32::from_bits(slope.to_bits() + 1);
    Ok((slope, inter))
}

fn put_i16(out: &mut [u8], at: usize, v: i16) {
    out[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put_f32(out: &mut [u8], at: usize, v: f32) {
    out[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn write_header(out: &mut Vec<u8>, v: &Volume, datatype: DataType, slope: f32, inter: f32) {
    let mut h = [0u8; NIFTI1_HEADER + 4];
    h[0..4].copy_from_slice(&(NIFTI1_HEADER as i32).to_le_bytes());
    let dims = [3, v.dims[0], v.dims[1], v.dims[2], 1, 1, 1, 1];
    for (a, &d) in dims.iter().enumerate() {
        put_i16(&mut h, 40 + 2 * a, d as i16);
    }
    put_i16(&mut h, 70, datatype.code());
    put_i16(&mut h, 72, (datatype.size() * 8) as i16);
    let quat = qform_of(&v.affine, v.pixdim);
    let qfac = quat.as_ref().map_or(1.0, |q| q.qfac);
    let pixdim = [
        qfac,
        v.pixdim[0],
        v.pixdim[1],
        v.pixdim[2],
        1.0,
        1.0,
        1.0,
        1.0,
    ];
    for (a, &p) in pixdim.iter().enumerate() {
        put_f32(&mut h, 76 + 4 * a, p);
    }
    put_f32(&mut h, 108, (NIFTI1_HEADER + 4) as f32);
    put_f32(&mut h, 112, slope);
    put_f32(&mut h, 116, inter);
    h[123] = 2; // xyzt_units: mm
    let descrip = b"cohort";
    h[148..148 + descrip.len()].copy_from_slice(descrip);
    if let Some(q) = quat {
        put_i16(&mut h, 252, 2);
        for (i, &x) in q.bcd.iter().chain(q.offset.iter()).enumerate() {
            put_f32(&mut h, 256 + 4 * i, x as f32);
        }
    }
    put_i16(&mut h, 254, 2);
    for r in 0..3 {
        for c in 0..4 {
            put_f32(&mut h, 280 + 16 * r + 4 * c, v.affine[r][c] as f32);
        }
    }
    h[344..348].copy_from_slice(b"n+1\0");
    out.extend_from_slice(&h);
}

struct Quaternion {
    bcd: [f64; 3],
    offset: [f64; 3],
    qfac: f32,
}

/// The qform of an affine whose 3x3 part is a rotation (possibly with a
/// reflection of the third axis) times the voxel sizes; `None` otherwise
/// (shears, or spacings that disagree with `pixdim`).
fn qform_of(affine: &[[f64; 4]; 4], pixdim: [f32; 3]) -> Option<Quaternion> {
    let mut r = [[0.0f64; 3]; 3];
    for j in 0..3 {
        let p = f64::from(pixdim[j]);
        if p <= 0.0 || !p.is_finite() {
            return None;
        }
        for i in 0..3 {
            r[i][j] = affine[i][j] / p;
        }
    }
    // Orthonormal columns within single precision.
    for a in 0..3 {
        for b in 0..3 {
            let dot: f64 = (0..3).map(|i| r[i][a] * r[i][b]).sum();
            let want = if a == b { 1.0 } else { 0.0 };
            if (dot - want).abs() > 1e-5 {
                return None;
            }
        }
    }
    let det = r[0][0] * (r[1][1] * r[2][2] - r[1][2] * r[2][1])
        - r[0][1] * (r[1][0] * r[2][2] - r[1][2] * r[2][0])
        + r[0][2] * (r[1][0] * r[2][1] - r[1][1] * r[2][0]);
    let qfac = if det < 0.0 {
        for row in &mut r {
            row[2] = -row[2];
        }
        -1.0
    } else {
        1.0
    };
    // Rotation matrix to quaternion (Shepperd's method), a >= 0.
    let tr = r[0][0] + r[1][1] + r[2][2];
    let (a, b, c, d) = if tr > 0.0 {
        let s = (tr + 1.0).sqrt() * 2.0;
        (
            0.25 * s,
            (r[2][1] - r[1][2]) / s,
            (r[0][2] - r[2][0]) / s,
            (r[1][0] - r[0][1]) / s,
        )
    } else if r[0][0] > r[1][1] && r[0][0] > r[2][2] {
        let s = (1.0 + r[0][0] - r[1][1] - r[2][2]).sqrt() * 2.0;
        (
            (r[2][1] - r[1][2]) / s,
            0.25 * s,
            (r[0][1] + r[1][0]) / s,
            (r[0][2] + r[2][0]) / s,
        )
    } else if r[1][1] > r[2][2] {
        let s = (1.0 + r[1][1] - r[0][0] - r[2][2]).sqrt() * 2.0;
        (
            (r[0][2] - r[2][0]) / s,
            (r[0][1] + r[1][0]) / s,
            0.25 * s,
            (r[1][2] + r[2][1]) / s,
        )
    } else {
        let s = (1.0 + r[2][2] - r[0][0] - r[1][1]).sqrt() * 2.0;
        (
            (r[1][0] - r[0][1]) / s,
            (r[0][2] + r[2][0]) / s,
            (r[1][2] + r[2][1]) / s,
            0.25 * s,
        )
    };
    let sign = if a < 0.0 { -1.0 } else { 1.0 };
    Some(Quaternion {
        bcd: [b * sign, c * sign, d * sign],
        offset: [affine[0][3], affine[1][3], affine[2][3]],
        qfac,
    })
}
