//! The NIfTI-1 (348-byte) and NIfTI-2 (540-byte) headers: field layout,
//! validation, and nibabel's affine rules.
//!
//! Parsing never trusts a field: the rank, each dimension and the voxel byte
//! count are checked here with checked arithmetic, so the readers in
//! `read.rs` can compare one trusted number against the bytes they hold.

use super::NiftiError;

/// Size of the NIfTI-1 header.
pub(crate) const NIFTI1_HEADER: usize = 348;
/// Size of the NIfTI-2 header.
pub(crate) const NIFTI2_HEADER: usize = 540;

/// NIfTI format version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum NiftiVersion {
    Nifti1,
    Nifti2,
}

impl NiftiVersion {
    /// 1 or 2.
    pub fn number(self) -> u8 {
        match self {
            NiftiVersion::Nifti1 => 1,
            NiftiVersion::Nifti2 => 2,
        }
    }

    /// Header length in bytes (348 or 540).
    pub fn header_len(self) -> usize {
        match self {
            NiftiVersion::Nifti1 => NIFTI1_HEADER,
            NiftiVersion::Nifti2 => NIFTI2_HEADER,
        }
    }
}

/// The voxel datatypes this reader decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum DataType {
    U8,
    I8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    F32,
    F64,
}

impl DataType {
    /// The datatype for a NIfTI `datatype` code.
    pub fn from_code(code: i32) -> Result<DataType, NiftiError> {
        Ok(match code {
            2 => DataType::U8,
            4 => DataType::I16,
            8 => DataType::I32,
            16 => DataType::F32,
            64 => DataType::F64,
            256 => DataType::I8,
            512 => DataType::U16,
            768 => DataType::U32,
            1024 => DataType::I64,
            1280 => DataType::U64,
            32 => return Err(NiftiError::UnsupportedDatatype("complex64")),
            128 => return Err(NiftiError::UnsupportedDatatype("rgb24")),
            1 => return Err(NiftiError::UnsupportedDatatype("binary")),
            1536 => return Err(NiftiError::UnsupportedDatatype("float128")),
            1792 => return Err(NiftiError::UnsupportedDatatype("complex128")),
            2048 => return Err(NiftiError::UnsupportedDatatype("complex256")),
            2304 => return Err(NiftiError::UnsupportedDatatype("rgba32")),
            other => return Err(NiftiError::UnknownDatatype(other)),
        })
    }

    /// The NIfTI `datatype` code.
    pub fn code(self) -> i16 {
        match self {
            DataType::U8 => 2,
            DataType::I16 => 4,
            DataType::I32 => 8,
            DataType::F32 => 16,
            DataType::F64 => 64,
            DataType::I8 => 256,
            DataType::U16 => 512,
            DataType::U32 => 768,
            DataType::I64 => 1024,
            DataType::U64 => 1280,
        }
    }

    /// Bytes per voxel.
    pub fn size(self) -> usize {
        match self {
            DataType::U8 | DataType::I8 => 1,
            DataType::I16 | DataType::U16 => 2,
            DataType::I32 | DataType::U32 | DataType::F32 => 4,
            DataType::I64 | DataType::U64 | DataType::F64 => 8,
        }
    }

    /// numpy's name for the type (`"int16"`), as nibabel reports it.
    pub fn name(self) -> &'static str {
        match self {
            DataType::U8 => "uint8",
            DataType::I8 => "int8",
            DataType::I16 => "int16",
            DataType::U16 => "uint16",
            DataType::I32 => "int32",
            DataType::U32 => "uint32",
            DataType::I64 => "int64",
            DataType::U64 => "uint64",
            DataType::F32 => "float32",
            DataType::F64 => "float64",
        }
    }

    /// numpy's dtype string with byte order when it matters: `int16` for
    /// little-endian (and single-byte) types, `>i2` for big-endian.
    pub fn numpy_str(self, big_endian: bool) -> String {
        if !big_endian || self.size() == 1 {
            return self.name().to_string();
        }
        let kind = match self {
            DataType::F32 | DataType::F64 => 'f',
            DataType::U16 | DataType::U32 | DataType::U64 | DataType::U8 => 'u',
            _ => 'i',
        };
        format!(">{kind}{}", self.size())
    }
}

/// One header extension (between the header and `vox_offset`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extension {
    pub code: i32,
    pub data: Vec<u8>,
}

/// The decoded header, with the derived values a reader needs.
#[derive(Clone, Debug)]
pub struct Header {
    pub version: NiftiVersion,
    pub big_endian: bool,
    /// `dim[1..=dim[0]]`, each at least 1.
    pub dims: Vec<usize>,
    pub datatype: DataType,
    /// Voxel spacing per axis (`pixdim[1..=dim[0]]`, made non-negative as
    /// nibabel does).
    pub pixdim: Vec<f64>,
    /// `pixdim[0]`, the qform handedness: -1 or 1 (anything else reads as 1).
    pub qfac: f64,
    /// Byte offset of the voxel data (at least the header length + 4).
    pub vox_offset: u64,
    /// The scaling actually applied: 1 and 0 when the header asks for none.
    pub scl_slope: f64,
    pub scl_inter: f64,
    pub qform_code: i32,
    pub sform_code: i32,
    pub quatern: [f64; 3],
    pub qoffset: [f64; 3],
    pub srow: [[f64; 4]; 3],
    pub xyzt_units: i32,
    pub intent_code: i32,
    pub descrip: String,
    /// nibabel's best affine (sform, else qform, else pixdim-only).
    pub affine: [[f64; 4]; 4],
    pub extensions: Vec<Extension>,
}

impl Header {
    /// Number of voxels (product of `dims`; checked at parse time).
    pub fn voxel_count(&self) -> usize {
        self.dims.iter().product()
    }

    /// Bytes of voxel data the header declares (checked at parse time).
    pub fn data_bytes(&self) -> u64 {
        self.voxel_count() as u64 * self.datatype.size() as u64
    }
}

/// Reads fields of a header buffer in its byte order. Offsets are constants
/// inside the fixed-size buffer, so the slicing cannot fail.
struct Fields<'a> {
    b: &'a [u8],
    be: bool,
}

macro_rules! field {
    ($name:ident, $t:ty, $n:expr) => {
        fn $name(&self, at: usize) -> $t {
            let mut a = [0u8; $n];
            a.copy_from_slice(&self.b[at..at + $n]);
            if self.be {
                <$t>::from_be_bytes(a)
            } else {
                <$t>::from_le_bytes(a)
            }
        }
    };
}

impl Fields<'_> {
    field!(i16, i16, 2);
    field!(i32, i32, 4);
    field!(i64, i64, 8);
    field!(f32, f32, 4);
    field!(f64, f64, 8);
}

/// Which version and byte order the first four bytes announce.
pub(crate) fn sniff(first4: [u8; 4]) -> Result<(NiftiVersion, bool), NiftiError> {
    let le = i32::from_le_bytes(first4);
    let be = i32::from_be_bytes(first4);
    match (le, be) {
        (348, _) => Ok((NiftiVersion::Nifti1, false)),
        (_, 348) => Ok((NiftiVersion::Nifti1, true)),
        (540, _) => Ok((NiftiVersion::Nifti2, false)),
        (_, 540) => Ok((NiftiVersion::Nifti2, true)),
        _ => Err(NiftiError::NotNifti(le)),
    }
}

/// The raw fields common to both versions, widened to 64 bits.
struct Raw {
    datatype: i32,
    dim: [i64; 8],
    pixdim: [f64; 8],
    vox_offset: f64,
    scl_slope: f64,
    scl_inter: f64,
    qform_code: i32,
    sform_code: i32,
    quatern: [f64; 3],
    qoffset: [f64; 3],
    srow: [[f64; 4]; 3],
    xyzt_units: i32,
    intent_code: i32,
    descrip: String,
    magic: [u8; 8],
}

fn text(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&c| c == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn raw1(f: &Fields) -> Raw {
    let mut dim = [0i64; 8];
    let mut pixdim = [0f64; 8];
    for a in 0..8 {
        dim[a] = i64::from(f.i16(40 + 2 * a));
        pixdim[a] = f64::from(f.f32(76 + 4 * a));
    }
    let row = |at: usize| {
        [
            f64::from(f.f32(at)),
            f64::from(f.f32(at + 4)),
            f64::from(f.f32(at + 8)),
            f64::from(f.f32(at + 12)),
        ]
    };
    let mut magic = [0u8; 8];
    magic[..4].copy_from_slice(&f.b[344..348]);
    Raw {
        datatype: i32::from(f.i16(70)),
        dim,
        pixdim,
        vox_offset: f64::from(f.f32(108)),
        scl_slope: f64::from(f.f32(112)),
        scl_inter: f64::from(f.f32(116)),
        qform_code: i32::from(f.i16(252)),
        sform_code: i32::from(f.i16(254)),
        quatern: [256, 260, 264].map(|o| f64::from(f.f32(o))),
        qoffset: [268, 272, 276].map(|o| f64::from(f.f32(o))),
        srow: [row(280), row(296), row(312)],
        xyzt_units: i32::from(f.b[123]),
        intent_code: i32::from(f.i16(68)),
        descrip: text(&f.b[148..228]),
        magic,
    }
}

fn raw2(f: &Fields) -> Raw {
    let mut dim = [0i64; 8];
    let mut pixdim = [0f64; 8];
    for a in 0..8 {
        dim[a] = f.i64(16 + 8 * a);
        pixdim[a] = f.f64(104 + 8 * a);
    }
    let row = |at: usize| [f.f64(at), f.f64(at + 8), f.f64(at + 16), f.f64(at + 24)];
    let mut magic = [0u8; 8];
    magic.copy_from_slice(&f.b[4..12]);
    let vox = f.i64(168);
    Raw {
        datatype: i32::from(f.i16(12)),
        dim,
        pixdim,
        vox_offset: vox as f64,
        scl_slope: f.f64(176),
        scl_inter: f.f64(184),
        qform_code: f.i32(344),
        sform_code: f.i32(348),
        quatern: [352, 360, 368].map(|o| f.f64(o)),
        qoffset: [376, 384, 392].map(|o| f.f64(o)),
        srow: [row(400), row(432), row(464)],
        xyzt_units: f.i32(500),
        intent_code: f.i32(504),
        descrip: text(&f.b[240..320]),
        magic,
    }
}

/// Parses and validates a header buffer of exactly `version.header_len()`
/// bytes. Extensions are attached later by the reader.
pub(crate) fn parse(
    buf: &[u8],
    version: NiftiVersion,
    big_endian: bool,
) -> Result<Header, NiftiError> {
    let f = Fields {
        b: buf,
        be: big_endian,
    };
    let raw = match version {
        NiftiVersion::Nifti1 => raw1(&f),
        NiftiVersion::Nifti2 => raw2(&f),
    };
    check_magic(&raw.magic, version)?;

    let rank = raw.dim[0];
    if !(1..=7).contains(&rank) {
        return Err(NiftiError::BadRank(rank));
    }
    let rank = rank as usize;
    let mut dims = Vec::with_capacity(rank);
    let mut count: usize = 1;
    for axis in 1..=rank {
        let value = raw.dim[axis];
        if value < 1 {
            return Err(NiftiError::BadDim { axis, value });
        }
        let n = usize::try_from(value).map_err(|_| NiftiError::Overflow(raw.dim.to_vec()))?;
        count = count
            .checked_mul(n)
            .ok_or_else(|| NiftiError::Overflow(raw.dim[1..=rank].to_vec()))?;
        dims.push(n);
    }
    let datatype = DataType::from_code(raw.datatype)?;
    // The byte count must fit in u64 and in usize (we index with it).
    count
        .checked_mul(datatype.size())
        .and_then(|b| u64::try_from(b).ok())
        .ok_or_else(|| NiftiError::Overflow(raw.dim[1..=rank].to_vec()))?;

    let min_offset = (version.header_len() + 4) as u64;
    let vox = raw.vox_offset;
    if !vox.is_finite() || !(0.0..=9.0e15).contains(&vox) {
        return Err(NiftiError::BadVoxOffset(vox));
    }
    let mut vox_offset = vox as u64;
    if vox_offset < min_offset {
        // nibabel fixes a too-low offset of a single-file NIfTI the same way.
        tracing::debug!(
            vox_offset,
            "vox_offset below header size, using {min_offset}"
        );
        vox_offset = min_offset;
    }

    let (scl_slope, scl_inter) = if raw.scl_slope == 0.0 || !raw.scl_slope.is_finite() {
        (1.0, 0.0)
    } else if !raw.scl_inter.is_finite() {
        return Err(NiftiError::BadIntercept {
            slope: raw.scl_slope,
            inter: raw.scl_inter,
        });
    } else {
        (raw.scl_slope, raw.scl_inter)
    };

    let pixdim: Vec<f64> = (1..=rank).map(|a| raw.pixdim[a].abs()).collect();
    let qfac = if raw.pixdim[0] == -1.0 { -1.0 } else { 1.0 };

    let mut header = Header {
        version,
        big_endian,
        dims,
        datatype,
        pixdim,
        qfac,
        vox_offset,
        scl_slope,
        scl_inter,
        qform_code: raw.qform_code,
        sform_code: raw.sform_code,
        quatern: raw.quatern,
        qoffset: raw.qoffset,
        srow: raw.srow,
        xyzt_units: raw.xyzt_units,
        intent_code: raw.intent_code,
        descrip: raw.descrip,
        affine: [[0.0; 4]; 4],
        extensions: Vec::new(),
    };
    header.affine = best_affine(&header, &raw.pixdim)?;
    Ok(header)
}

fn check_magic(magic: &[u8; 8], version: NiftiVersion) -> Result<(), NiftiError> {
    let shown = || text(&magic[..4]);
    match version {
        NiftiVersion::Nifti1 => match &magic[..4] {
            b"n+1\0" => Ok(()),
            b"ni1\0" => Err(NiftiError::PairedHeader(shown())),
            _ => Err(NiftiError::BadMagic(shown())),
        },
        NiftiVersion::Nifti2 => match &magic[..4] {
            b"n+2\0" => Ok(()),
            b"ni2\0" => Err(NiftiError::PairedHeader(shown())),
            _ => Err(NiftiError::BadMagic(shown())),
        },
    }
}

/// nibabel's `get_best_affine`: sform, else qform, else the base affine.
fn best_affine(h: &Header, raw_pixdim: &[f64; 8]) -> Result<[[f64; 4]; 4], NiftiError> {
    if h.sform_code != 0 {
        let s = h.srow;
        return Ok([s[0], s[1], s[2], [0.0, 0.0, 0.0, 1.0]]);
    }
    if h.qform_code != 0 {
        return qform_affine(h);
    }
    // shape_zoom_affine(shape[:3], zooms[:3], x_flip=True), padding with 1.
    let mut out = identity();
    for a in 0..3 {
        let n = h.dims.get(a).copied().unwrap_or(1) as f64;
        let mut zoom = if a < h.dims.len() {
            raw_pixdim[a + 1].abs()
        } else {
            1.0
        };
        if a == 0 {
            zoom = -zoom;
        }
        out[a][a] = zoom;
        out[a][3] = -(n - 1.0) / 2.0 * zoom;
    }
    Ok(out)
}

fn identity() -> [[f64; 4]; 4] {
    let mut m = [[0.0; 4]; 4];
    for (i, row) in m.iter_mut().enumerate() {
        row[i] = 1.0;
    }
    m
}

/// The qform affine: rotation from the quaternion, scaled by pixdim with the
/// qfac sign on the third axis, translated by qoffset.
fn qform_affine(h: &Header) -> Result<[[f64; 4]; 4], NiftiError> {
    let [b, c, d] = h.quatern;
    let threshold = match h.version {
        NiftiVersion::Nifti1 => -3.0 * f64::from(f32::EPSILON),
        NiftiVersion::Nifti2 => -3.0 * f64::EPSILON,
    };
    let w2 = 1.0 - (b * b + c * c + d * d);
    let a = if w2 < 0.0 {
        if w2 < threshold {
            return Err(NiftiError::BadQuaternion { b, c, d });
        }
        0.0
    } else {
        w2.sqrt()
    };
    let n = a * a + b * b + c * c + d * d;
    let r = if n < f64::EPSILON {
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    } else {
        let s = 2.0 / n;
        let (x, y, z) = (b * s, c * s, d * s);
        let (wx, wy, wz) = (a * x, a * y, a * z);
        let (xx, xy, xz) = (b * x, b * y, b * z);
        let (yy, yz, zz) = (c * y, c * z, d * z);
        [
            [1.0 - (yy + zz), xy - wz, xz + wy],
            [xy + wz, 1.0 - (xx + zz), yz - wx],
            [xz - wy, yz + wx, 1.0 - (xx + yy)],
        ]
    };
    let p = |a: usize| h.pixdim.get(a).copied().unwrap_or(1.0);
    let vox = [p(0), p(1), p(2) * h.qfac];
    let mut out = identity();
    for i in 0..3 {
        for j in 0..3 {
            out[i][j] = r[i][j] * vox[j];
        }
        out[i][3] = h.qoffset[i];
    }
    Ok(out)
}
