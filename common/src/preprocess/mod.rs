//! Preprocessing of decoded volumes into network input: resampling to a
//! common voxel spacing (or shape), z-score normalisation, centred crop / pad
//! to a fixed shape, and stacking of several MRI sequences as channels.
//!
//! Why this order: resampling first puts every patient on the same physical
//! grid (1 mm means 1 mm whatever the scanner); normalising before padding
//! keeps the padding out of the statistics and makes the pad value (0) equal
//! to the volume's mean; cropping last fixes the tensor shape the model needs.
//!
//! Every step works on [`Volume`] (NIfTI order, i fastest) and keeps its
//! affine up to date. A stacked `[C, D, H, W]` buffer is the channels' data
//! one after another: W is the NIfTI i axis, H is j, D is k. NaN (and
//! infinite) voxels are refused with an error that names the source the
//! caller passed in, since they would silently poison a whole training batch.
//! The heavy loops run on rayon and nest inside callers' own parallelism.

mod normalize;
mod resample;

pub use normalize::{Foreground, ZScore, otsu_threshold, zscore};
pub use resample::{crop_or_pad, resample_to_shape, resample_to_spacing};

use rayon::prelude::*;

use crate::nifti::Volume;

/// Why a volume could not be preprocessed. Every variant names the source
/// (file name or URL) the caller gave.
#[derive(Debug, thiserror::Error)]
pub enum PreprocessError {
    #[error(
        "{source_name}: {count} voxel(s) are NaN or infinite (first at [{}, {}, {}])",
        first[0], first[1], first[2]
    )]
    NonFinite {
        source_name: String,
        count: usize,
        first: [usize; 3],
    },
    #[error("{source_name}: volume has {len} values but dims {dims:?}")]
    BadVolume {
        source_name: String,
        dims: [usize; 3],
        len: usize,
    },
    #[error(
        "{source_name}: geometry differs from {reference}: dims {dims:?} vs {ref_dims:?}, \
         or affines differ by more than {tolerance} mm"
    )]
    GeometryMismatch {
        source_name: String,
        reference: String,
        dims: [usize; 3],
        ref_dims: [usize; 3],
        tolerance: f64,
    },
    #[error("nothing to stack: no channels given")]
    NoChannels,
}

/// How the channels of [`stack`] must relate to each other.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Geometry {
    /// Every sequence must have the first one's dims and affine (within the
    /// tolerance, in mm); a mismatch is an error.
    RequireSame { tolerance_mm: f64 },
    /// Each sequence is resampled on its own to the pipeline's grid.
    ResampleEach,
}

/// The steps applied by [`preprocess`], in this order.
#[derive(Clone, Debug, PartialEq)]
pub struct Pipeline {
    /// Resample to this voxel spacing (mm) ...
    pub spacing: Option<[f32; 3]>,
    /// ... or else to this many voxels over the same field of view.
    pub resize: Option<[usize; 3]>,
    /// Z-score with statistics from these voxels (`None`: no normalisation).
    pub normalize: Option<Foreground>,
    /// Centred crop / pad to this shape.
    pub shape: Option<[usize; 3]>,
    /// Value of padded voxels (after normalisation).
    pub pad_value: f32,
}

impl Default for Pipeline {
    /// 1 mm isotropic, z-score over nonzero voxels, no fixed shape.
    fn default() -> Self {
        Pipeline {
            spacing: Some([1.0; 3]),
            resize: None,
            normalize: Some(Foreground::NonZero),
            shape: None,
            pad_value: 0.0,
        }
    }
}

/// Refuses volumes with NaN or infinite voxels, or data of the wrong length.
pub fn check_finite(volume: &Volume, source: &str) -> Result<(), PreprocessError> {
    let [nx, ny, nz] = volume.dims;
    if volume.data.len() != nx * ny * nz {
        return Err(PreprocessError::BadVolume {
            source_name: source.to_string(),
            dims: volume.dims,
            len: volume.data.len(),
        });
    }
    let count = volume
        .data
        .par_chunks(64 * 1024)
        .map(|c| c.iter().filter(|v| !v.is_finite()).count())
        .sum::<usize>();
    if count == 0 {
        return Ok(());
    }
    let at = volume.data.iter().position(|v| !v.is_finite()).unwrap_or(0);
    let first = [
        at % nx.max(1),
        (at / nx.max(1)) % ny.max(1),
        at / (nx * ny).max(1),
    ];
    Err(PreprocessError::NonFinite {
        source_name: source.to_string(),
        count,
        first,
    })
}

/// Runs the pipeline on one volume. `source` names it in errors.
pub fn preprocess(
    volume: &Volume,
    source: &str,
    pipeline: &Pipeline,
) -> Result<Volume, PreprocessError> {
    check_finite(volume, source)?;
    let target = match (pipeline.spacing, pipeline.resize) {
        (Some(spacing), _) => Some(resample::spacing_target(volume, spacing)),
        (None, Some(shape)) => Some(resample::shape_target(volume, shape)),
        (None, None) => None,
    };
    // The resampled volume lives in this thread's scratch when a crop / pad
    // follows, so only the final tensor is a fresh allocation.
    resample::with_scratch(|scratch| {
        let buf = &mut scratch[2];
        let (dims, pixdim, affine) = match target {
            Some((shape, spacing)) => {
                let (pixdim, affine) = resample::resample_into(volume, shape, spacing, buf);
                (shape, pixdim, affine)
            }
            None => {
                buf.clear();
                buf.extend_from_slice(&volume.data);
                (volume.dims, volume.pixdim, volume.affine)
            }
        };
        if let Some(fg) = pipeline.normalize {
            let z = zscore(buf, fg);
            tracing::trace!(source, mean = z.mean, std = z.std, "z-scored");
        }
        Ok(match pipeline.shape {
            Some(shape) if shape != dims => {
                resample::crop_or_pad_slice(buf, dims, pixdim, affine, shape, pipeline.pad_value)
            }
            _ => Volume {
                dims,
                pixdim,
                affine,
                data: std::mem::take(buf),
            },
        })
    })
}

/// Channels stacked into one `[C, D, H, W]` buffer (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct Stacked {
    /// `[C, D, H, W]` = `[channels, nz, ny, nx]`.
    pub shape: [usize; 4],
    pub data: Vec<f32>,
    /// Geometry of the (common) output grid.
    pub pixdim: [f32; 3],
    pub affine: [[f64; 4]; 4],
}

/// Preprocesses each `(source, volume)` in parallel and stacks them as
/// channels, in the order given.
pub fn stack(
    channels: &[(&str, &Volume)],
    pipeline: &Pipeline,
    geometry: Geometry,
) -> Result<Stacked, PreprocessError> {
    let (first_name, first) = channels.first().ok_or(PreprocessError::NoChannels)?;
    if let Geometry::RequireSame { tolerance_mm } = geometry {
        for (name, v) in &channels[1..] {
            if !same_geometry(first, v, tolerance_mm) {
                return Err(PreprocessError::GeometryMismatch {
                    source_name: name.to_string(),
                    reference: first_name.to_string(),
                    dims: v.dims,
                    ref_dims: first.dims,
                    tolerance: tolerance_mm,
                });
            }
        }
    }
    let done: Vec<Volume> = channels
        .par_iter()
        .map(|(name, v)| preprocess(v, name, pipeline))
        .collect::<Result<_, _>>()?;
    let reference = &done[0];
    for ((name, _), v) in channels.iter().zip(&done).skip(1) {
        if v.dims != reference.dims {
            // Only possible without a fixed shape: say which one differs.
            return Err(PreprocessError::GeometryMismatch {
                source_name: name.to_string(),
                reference: first_name.to_string(),
                dims: v.dims,
                ref_dims: reference.dims,
                tolerance: 0.0,
            });
        }
    }
    let [nx, ny, nz] = reference.dims;
    let mut data = Vec::with_capacity(done.len() * nx * ny * nz);
    for v in &done {
        data.extend_from_slice(&v.data);
    }
    Ok(Stacked {
        shape: [done.len(), nz, ny, nx],
        data,
        pixdim: reference.pixdim,
        affine: reference.affine,
    })
}

/// Same dims, and every voxel corner lands within `tolerance` mm: compares
/// the affine's columns scaled by the extent, and its origin.
fn same_geometry(a: &Volume, b: &Volume, tolerance: f64) -> bool {
    if a.dims != b.dims {
        return false;
    }
    (0..3).all(|r| {
        let origin = (a.affine[r][3] - b.affine[r][3]).abs() <= tolerance;
        let axes =
            (0..3).all(|c| (a.affine[r][c] - b.affine[r][c]).abs() * a.dims[c] as f64 <= tolerance);
        origin && axes
    })
}
