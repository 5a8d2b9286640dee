//! NIfTI-1 / NIfTI-2 volumes: a reader that refuses hostile files and a
//! deterministic writer.
//!
//! # Why our own reader
//!
//! Every training step starts by decoding thousands of `.nii.gz` volumes that
//! come from users' object stores, so the reader must be fast and must never
//! trust the header: a header is 348 (or 540) bytes that can claim 30000^3
//! voxels, a gzip stream can expand a thousandfold, and a cut upload looks
//! like a valid file until its last byte. The reader therefore:
//!
//! - works on bytes in memory (`&[u8]`, as the store hands them over) and
//!   detects gzip by its magic bytes, not by the file name;
//! - checks the rank, every dimension, the voxel count and its byte size with
//!   checked arithmetic before it allocates anything;
//! - for plain files, checks `vox_offset + data size` against the real length;
//! - for gzip, refuses a header that declares more than deflate can possibly
//!   produce from the compressed length (at most 1032:1), then decompresses
//!   in chunks straight into the output buffer, so what it allocates grows
//!   with the bytes actually decompressed, never with what the header claims,
//!   and refuses a stream that ends early or carries more than declared;
//! - converts every datatype, in either byte order, with the header's
//!   scaling applied (nibabel's rules: a slope of 0 or a non-finite slope
//!   means "no scaling"), into `f32` (the training path) or `f64`
//!   ([`decode_as`], for exact statistics);
//! - computes the affine as nibabel's `get_best_affine` does: the sform if
//!   `sform_code != 0`, else the qform from the quaternion, else a
//!   pixdim-only affine centred on the volume with x flipped.
//!
//! The writer ([`encode`]) produces NIfTI-1 files that nibabel reads back,
//! byte-identical for the same input (gzip mtime 0, fixed level), which is
//! what `cohort synth` needs for reproducible cohorts.
//!
//! Voxel data is always in NIfTI order: the first axis (`i`) varies fastest.

mod header;
mod read;
mod write;

pub use header::{DataType, Extension, Header, NiftiVersion};
pub use read::{
    Limits, Sample, decode, decode_as, decode_header, decode_into, decode_into_with_limits,
    decode_with_limits,
};
pub use write::{Encoding, Volume, encode};

/// Why a volume could not be decoded or encoded.
#[derive(Debug, thiserror::Error)]
pub enum NiftiError {
    #[error("empty input: a NIfTI file holds at least a 348-byte header")]
    Empty,
    #[error("truncated header: only {got} bytes, a NIfTI-{version} header needs {need}")]
    TruncatedHeader {
        got: usize,
        need: usize,
        version: u8,
    },
    #[error("not a NIfTI file: sizeof_hdr is {0} (expected 348 or 540, in either byte order)")]
    NotNifti(i32),
    #[error("bad magic {0:?}: expected \"n+1\", \"ni1\" or \"n+2\"")]
    BadMagic(String),
    #[error(
        "magic {0:?} marks the header of a .hdr/.img pair: the voxel data lives in a separate file"
    )]
    PairedHeader(String),
    #[error("dim[0] is {0}: the number of dimensions must be between 1 and 7")]
    BadRank(i64),
    #[error("dim[{axis}] is {value}: every dimension must be at least 1")]
    BadDim { axis: usize, value: i64 },
    #[error("the voxel count or byte size of dims {0:?} overflows")]
    Overflow(Vec<i64>),
    #[error("datatype code {0} is not a NIfTI type")]
    UnknownDatatype(i32),
    #[error("datatype {0} is a NIfTI type this reader does not support")]
    UnsupportedDatatype(&'static str),
    #[error("vox_offset {0} is not a valid offset")]
    BadVoxOffset(f64),
    #[error("scl_slope is {slope} but scl_inter is {inter}: the intercept must be finite")]
    BadIntercept { slope: f64, inter: f64 },
    #[error("qform quaternion ({b}, {c}, {d}) has norm above 1")]
    BadQuaternion { b: f64, c: f64, d: f64 },
    #[error("header declares {declared} bytes of voxel data, above the limit of {limit}")]
    TooLarge { declared: u64, limit: u64 },
    #[error(
        "header declares {declared} bytes (voxel data ending at offset {end}), but the file holds only {have}"
    )]
    ShortData { declared: u64, end: u64, have: u64 },
    #[error(
        "header declares {declared} decompressed bytes, more than a {compressed}-byte gzip stream can hold"
    )]
    ImpossibleRatio { declared: u64, compressed: u64 },
    #[error("gzip stream ends after {got} decompressed bytes, the header declares {need}")]
    TruncatedGzip { got: u64, need: u64 },
    #[error("corrupt gzip stream: {0}")]
    Gzip(#[source] std::io::Error),
    #[error(
        "file holds more bytes than the {declared} the header declares (header and voxel data)"
    )]
    TrailingData { declared: u64 },
    #[error("shape {0:?} is not a 3D volume (axes past the third must be 1)")]
    NotThreeD(Vec<usize>),
    #[error("cannot encode: {0}")]
    Encode(String),
}

/// Summary statistics of the (scaled) voxel values, NaN ignored, computed in
/// `f64` whatever the storage type.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Stats {
    pub count: usize,
    pub nan_count: usize,
    pub sum: f64,
    /// `NaN` when every voxel is NaN.
    pub mean: f64,
    pub min: f64,
    pub max: f64,
}

impl Stats {
    /// Statistics of a slice of samples.
    pub fn of<T: Sample>(data: &[T]) -> Stats {
        let mut nan_count = 0usize;
        let mut sum = 0.0f64;
        let mut min = f64::INFINITY;
        let mut max = f64::NEG_INFINITY;
        for &v in data {
            let v = v.to_f64();
            if v.is_nan() {
                nan_count += 1;
                continue;
            }
            sum += v;
            min = min.min(v);
            max = max.max(v);
        }
        let n = data.len() - nan_count;
        let (mean, min, max) = if n == 0 {
            (f64::NAN, f64::NAN, f64::NAN)
        } else {
            (sum / n as f64, min, max)
        };
        Stats {
            count: data.len(),
            nan_count,
            sum,
            mean,
            min,
            max,
        }
    }
}

/// A decoded volume: its header and its scaled voxel values in NIfTI order.
#[derive(Clone, Debug)]
pub struct Nifti<T = f32> {
    pub header: Header,
    /// `header.dims` product values, `i` fastest, scaling applied.
    pub data: Vec<T>,
}

impl<T: Sample> Nifti<T> {
    /// The shape, one entry per dimension (`dim[1..=dim[0]]`).
    pub fn shape(&self) -> &[usize] {
        &self.header.dims
    }

    /// The value at a multi-index (as nibabel's `get_fdata()[i, j, k, ...]`),
    /// or `None` when the index has the wrong rank or is out of bounds.
    pub fn get(&self, index: &[usize]) -> Option<T> {
        if index.len() != self.header.dims.len() {
            return None;
        }
        let mut flat = 0usize;
        let mut stride = 1usize;
        for (&i, &n) in index.iter().zip(&self.header.dims) {
            if i >= n {
                return None;
            }
            flat += i * stride;
            stride *= n;
        }
        self.data.get(flat).copied()
    }

    /// Sum, mean, min, max and NaN count of the scaled values.
    pub fn stats(&self) -> Stats {
        Stats::of(&self.data)
    }
}

impl Nifti<f32> {
    /// The volume as a 3D [`Volume`]: trailing singleton axes (a 4D file with
    /// one time point) are dropped, fewer than 3 axes are padded with 1.
    /// Fails when a fourth or later axis is longer than 1.
    pub fn into_volume(self) -> Result<Volume, NiftiError> {
        let dims = &self.header.dims;
        if dims.iter().skip(3).any(|&n| n != 1) {
            return Err(NiftiError::NotThreeD(dims.clone()));
        }
        let d = |a: usize| dims.get(a).copied().unwrap_or(1);
        let p = |a: usize| self.header.pixdim.get(a).copied().unwrap_or(1.0) as f32;
        Ok(Volume {
            dims: [d(0), d(1), d(2)],
            pixdim: [p(0), p(1), p(2)],
            affine: self.header.affine,
            data: self.data,
        })
    }
}
