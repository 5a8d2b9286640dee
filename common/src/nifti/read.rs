//! Decoding: plain and gzip-compressed files, every datatype in either byte
//! order, converted and scaled straight into the output buffer.
//!
//! The hostile-input rules (see the module docs of [`super`]) live here: the
//! header's declared byte count is the one trusted number, and it is checked
//! against the input length (plain), or bounded by deflate's maximum ratio and
//! then checked against what the stream really yields (gzip), before and while
//! the output grows.

use std::io::{self, Read};

use flate2::bufread::MultiGzDecoder;

use super::header::{self, DataType, Extension, Header, NIFTI1_HEADER, NIFTI2_HEADER};
use super::{Nifti, NiftiError};

/// Deflate cannot expand data by more than about 1032:1 (258-byte matches
/// coded in 2 bits); a header that declares more than this times the
/// compressed length, plus some slack for tiny files, is lying.
const MAX_DEFLATE_RATIO: u64 = 1032;
const RATIO_SLACK: u64 = 64 * 1024;
/// Bytes decompressed per conversion step (a multiple of every voxel size).
const CHUNK: usize = 256 * 1024;
/// Largest output reserved before the data has been seen, in voxels.
const INITIAL_RESERVE: usize = 4 << 20;

/// Caps on what a decode may allocate, whatever the file.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest number of voxels a volume may declare.
    pub max_voxels: u64,
}

impl Default for Limits {
    /// 2^30 voxels (4 GiB as `f32`): far above any MRI volume.
    fn default() -> Self {
        Limits {
            max_voxels: 1 << 30,
        }
    }
}

/// An output sample type: `f32` (training) or `f64` (exact statistics).
pub trait Sample: Copy + Send + Sync + std::fmt::Debug + 'static {
    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
}

impl Sample for f32 {
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
}

impl Sample for f64 {
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
}

/// Decodes a `.nii` or `.nii.gz` (detected by content) into scaled `f32`.
pub fn decode(bytes: &[u8]) -> Result<Nifti<f32>, NiftiError> {
    decode_with_limits(bytes, &Limits::default())
}

/// Decodes into scaled `f64` values (or `f32`): [`decode`] for any sample type.
pub fn decode_as<T: Sample>(bytes: &[u8]) -> Result<Nifti<T>, NiftiError> {
    decode_with_limits(bytes, &Limits::default())
}

/// [`decode_as`] with explicit [`Limits`].
pub fn decode_with_limits<T: Sample>(
    bytes: &[u8],
    limits: &Limits,
) -> Result<Nifti<T>, NiftiError> {
    let mut data = Vec::new();
    let header = decode_into_with_limits(bytes, &mut data, limits)?;
    Ok(Nifti { header, data })
}

/// Decodes into a caller's buffer (cleared first, its capacity reused), for
/// loaders that decode many volumes: a warm buffer avoids fresh-page faults,
/// a large part of the cost of a fresh allocation per volume.
pub fn decode_into<T: Sample>(bytes: &[u8], out: &mut Vec<T>) -> Result<Header, NiftiError> {
    decode_into_with_limits(bytes, out, &Limits::default())
}

/// [`decode_into`] with explicit [`Limits`].
pub fn decode_into_with_limits<T: Sample>(
    bytes: &[u8],
    out: &mut Vec<T>,
    limits: &Limits,
) -> Result<Header, NiftiError> {
    out.clear();
    if bytes.is_empty() {
        return Err(NiftiError::Empty);
    }
    if is_gzip(bytes) {
        decode_gzip(bytes, limits, Some(out))
    } else {
        decode_plain(bytes, limits, Some(out))
    }
}

/// Decodes only the header and its extensions (for gzip, only the first
/// bytes of the stream are decompressed). For plain files the data length
/// is checked, for gzip the voxel data is not read.
pub fn decode_header(bytes: &[u8]) -> Result<Header, NiftiError> {
    if bytes.is_empty() {
        return Err(NiftiError::Empty);
    }
    let limits = Limits {
        max_voxels: u64::MAX,
    };
    if is_gzip(bytes) {
        decode_gzip::<f32>(bytes, &limits, None)
    } else {
        decode_plain::<f32>(bytes, &limits, None)
    }
}

fn is_gzip(bytes: &[u8]) -> bool {
    bytes.len() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b
}

fn check_limits(header: &Header, limits: &Limits) -> Result<(), NiftiError> {
    if header.voxel_count() as u64 > limits.max_voxels {
        return Err(NiftiError::TooLarge {
            declared: header.data_bytes(),
            limit: limits
                .max_voxels
                .saturating_mul(header.datatype.size() as u64),
        });
    }
    Ok(())
}

/// Parses the header at the start of `head` (`got` valid bytes).
fn parse_head(head: &[u8]) -> Result<Header, NiftiError> {
    if head.len() < 4 {
        return Err(NiftiError::TruncatedHeader {
            got: head.len(),
            need: NIFTI1_HEADER,
            version: 1,
        });
    }
    let (version, big_endian) = header::sniff([head[0], head[1], head[2], head[3]])?;
    let need = version.header_len();
    if head.len() < need {
        return Err(NiftiError::TruncatedHeader {
            got: head.len(),
            need,
            version: version.number(),
        });
    }
    header::parse(&head[..need], version, big_endian)
}

/// Decodes the header, and the voxel data into `out` when given.
fn decode_plain<T: Sample>(
    bytes: &[u8],
    limits: &Limits,
    out: Option<&mut Vec<T>>,
) -> Result<Header, NiftiError> {
    let mut header = parse_head(&bytes[..bytes.len().min(NIFTI2_HEADER)])?;
    let have = bytes.len() as u64;
    let start = header.vox_offset;
    let end = start.saturating_add(header.data_bytes());
    if end > have {
        return Err(NiftiError::ShortData {
            declared: header.data_bytes(),
            end,
            have,
        });
    }
    // `end <= bytes.len()`, so these casts and slices are in range.
    let (start, end) = (start as usize, end as usize);
    header.extensions = parse_extensions(
        &bytes[header.version.header_len()..start],
        header.big_endian,
    );
    let Some(data) = out else {
        return Ok(header);
    };
    check_limits(&header, limits)?;
    if end < bytes.len() {
        return Err(NiftiError::TrailingData {
            declared: end as u64,
        });
    }
    data.reserve_exact(header.voxel_count());
    convert(&bytes[start..end], &header, data);
    Ok(header)
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn fill<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn gzip_error(e: io::Error, got: u64, need: u64) -> NiftiError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        NiftiError::TruncatedGzip { got, need }
    } else {
        NiftiError::Gzip(e)
    }
}

/// Decodes the header, and the voxel data into `out` when given.
fn decode_gzip<T: Sample>(
    bytes: &[u8],
    limits: &Limits,
    out: Option<&mut Vec<T>>,
) -> Result<Header, NiftiError> {
    let mut dec = MultiGzDecoder::new(bytes);
    let mut head = [0u8; NIFTI2_HEADER];
    let got = fill(&mut dec, &mut head[..NIFTI1_HEADER])
        .map_err(|e| gzip_error(e, 0, NIFTI1_HEADER as u64))?;
    let mut got_total = got;
    if got >= 4
        && got == NIFTI1_HEADER
        && header::sniff([head[0], head[1], head[2], head[3]])
            .is_ok_and(|(v, _)| v == header::NiftiVersion::Nifti2)
    {
        got_total += fill(&mut dec, &mut head[NIFTI1_HEADER..])
            .map_err(|e| gzip_error(e, got as u64, NIFTI2_HEADER as u64))?;
    }
    let mut header = parse_head(&head[..got_total])?;
    let hdr_len = header.version.header_len() as u64;
    let declared = header.vox_offset.saturating_add(header.data_bytes());
    let compressed = bytes.len() as u64;
    if out.is_some() {
        check_limits(&header, limits)?;
    }
    if declared > compressed.saturating_mul(MAX_DEFLATE_RATIO) + RATIO_SLACK {
        return Err(NiftiError::ImpossibleRatio {
            declared,
            compressed,
        });
    }

    // Extensions: read what is there, growing with the real stream.
    let ext_len = header.vox_offset - hdr_len;
    let mut ext = Vec::new();
    (&mut dec)
        .take(ext_len)
        .read_to_end(&mut ext)
        .map_err(|e| gzip_error(e, hdr_len, declared))?;
    if (ext.len() as u64) < ext_len {
        return Err(NiftiError::TruncatedGzip {
            got: hdr_len + ext.len() as u64,
            need: declared,
        });
    }
    header.extensions = parse_extensions(&ext, header.big_endian);
    let Some(data) = out else {
        return Ok(header);
    };
    if let Some(header) = one_shot(bytes, declared, limits, data) {
        return Ok(header);
    }

    // Reserve what the header declares, up to a bound: beyond it the buffer
    // grows only as decompressed data actually arrives.
    data.reserve(header.voxel_count().min(INITIAL_RESERVE));
    let mut scratch = GZ_SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
    if scratch.len() != CHUNK {
        scratch.resize(CHUNK, 0);
    }
    let result = inflate_data(&mut dec, &header, declared, &mut scratch, data);
    GZ_SCRATCH.with(|s| *s.borrow_mut() = scratch);
    result.map(|()| header)
}

/// Ratio up to which [`one_shot`] may allocate the whole declared size up
/// front (real MRI compresses 2-10x); beyond it only streaming is used, so a
/// lying header never makes us allocate more than this times the input.
const ONE_SHOT_MAX_RATIO: u64 = 64;

/// The fast path: when the gzip trailer's size field agrees with the header
/// and the declared size is plausible for the input, inflate the whole file
/// at once with libdeflate into a reused buffer and decode it as a plain
/// file. Returns `None` whenever anything is off (size, data, trailer), and
/// the streaming path then decodes the file or reports the precise problem.
fn one_shot<T: Sample>(
    bytes: &[u8],
    declared: u64,
    limits: &Limits,
    data: &mut Vec<T>,
) -> Option<Header> {
    let n = bytes.len();
    if n < 18 || declared > (n as u64).saturating_mul(ONE_SHOT_MAX_RATIO) + RATIO_SLACK {
        return None;
    }
    let trailer =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let (crc, isize) = (trailer(n - 8), trailer(n - 4));
    if u64::from(isize) != declared & 0xffff_ffff {
        return None;
    }
    let size = usize::try_from(declared).ok()?;
    let mut raw = RAW.with(|r| std::mem::take(&mut *r.borrow_mut()));
    if raw.len() != size {
        raw.clear();
        raw.resize(size, 0);
    }
    let got = libdeflater::Decompressor::new().gzip_decompress(bytes, &mut raw);
    // The last member's CRC must be that of everything decoded: this catches
    // extra members or trailing bytes that a single-member inflate ignores.
    let ok = matches!(got, Ok(m) if m == size) && libdeflater::crc32(&raw) == crc;
    let result = if ok {
        decode_plain(&raw, limits, Some(data)).ok()
    } else {
        None
    };
    RAW.with(|r| *r.borrow_mut() = raw);
    if result.is_none() {
        data.clear();
    }
    result
}

thread_local! {
    /// The whole decompressed file of [`one_shot`], reused across decodes.
    static RAW: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    /// The decompression chunk buffer, reused across decodes on a thread.
    static GZ_SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Decompresses exactly the declared voxel bytes into `data`, then checks
/// that the stream ends (and its CRC) right there.
fn inflate_data<T: Sample, R: Read>(
    dec: &mut R,
    header: &Header,
    declared: u64,
    scratch: &mut [u8],
    data: &mut Vec<T>,
) -> Result<(), NiftiError> {
    let mut remaining = header.data_bytes();
    while remaining > 0 {
        let want = remaining.min(CHUNK as u64) as usize;
        let n = fill(dec, &mut scratch[..want])
            .map_err(|e| gzip_error(e, declared - remaining, declared))?;
        if n < want {
            return Err(NiftiError::TruncatedGzip {
                got: declared - remaining + n as u64,
                need: declared,
            });
        }
        convert(&scratch[..n], header, data);
        remaining -= n as u64;
    }
    // The stream must end here; reading to its end also checks the CRC.
    let extra = fill(dec, &mut scratch[..1]).map_err(|e| gzip_error(e, declared, declared))?;
    if extra > 0 {
        return Err(NiftiError::TrailingData { declared });
    }
    Ok(())
}

/// Extensions between the header and `vox_offset`: a 4-byte extender whose
/// first byte says whether any follow, then `(esize, ecode, data)` records.
/// A malformed record ends the list (as nibabel does) rather than the decode.
fn parse_extensions(region: &[u8], big_endian: bool) -> Vec<Extension> {
    let mut out = Vec::new();
    if region.len() < 4 || region[0] == 0 {
        return out;
    }
    let int = |b: &[u8]| {
        let a = [b[0], b[1], b[2], b[3]];
        if big_endian {
            i32::from_be_bytes(a)
        } else {
            i32::from_le_bytes(a)
        }
    };
    let mut pos = 4usize;
    while region.len() - pos >= 8 {
        let esize = int(&region[pos..pos + 4]);
        let ecode = int(&region[pos + 4..pos + 8]);
        let Ok(size) = usize::try_from(esize) else {
            break;
        };
        if size < 8 || size > region.len() - pos {
            tracing::debug!(esize, "malformed NIfTI extension, ignoring the rest");
            break;
        }
        out.push(Extension {
            code: ecode,
            data: region[pos + 8..pos + size].to_vec(),
        });
        pos += size;
    }
    out
}

/// A stored voxel type.
trait Stored: Copy {
    const N: usize;
    fn le(b: &[u8]) -> Self;
    fn be(b: &[u8]) -> Self;
    fn widen(self) -> f64;
}

macro_rules! stored {
    ($t:ty, $n:expr) => {
        impl Stored for $t {
            const N: usize = $n;
            #[inline(always)]
            fn le(b: &[u8]) -> Self {
                let mut a = [0u8; $n];
                a.copy_from_slice(b);
                <$t>::from_le_bytes(a)
            }
            #[inline(always)]
            fn be(b: &[u8]) -> Self {
                let mut a = [0u8; $n];
                a.copy_from_slice(b);
                <$t>::from_be_bytes(a)
            }
            #[inline(always)]
            fn widen(self) -> f64 {
                self as f64
            }
        }
    };
}

stored!(u8, 1);
stored!(i8, 1);
stored!(i16, 2);
stored!(u16, 2);
stored!(i32, 4);
stored!(u32, 4);
stored!(i64, 8);
stored!(u64, 8);
stored!(f32, 4);
stored!(f64, 8);

/// Appends the voxels of `src` (a whole number of voxels) to `out`, scaled.
fn convert<T: Sample>(src: &[u8], h: &Header, out: &mut Vec<T>) {
    match h.datatype {
        DataType::U8 => convert_as::<u8, T>(src, h, out),
        DataType::I8 => convert_as::<i8, T>(src, h, out),
        DataType::I16 => convert_as::<i16, T>(src, h, out),
        DataType::U16 => convert_as::<u16, T>(src, h, out),
        DataType::I32 => convert_as::<i32, T>(src, h, out),
        DataType::U32 => convert_as::<u32, T>(src, h, out),
        DataType::I64 => convert_as::<i64, T>(src, h, out),
        DataType::U64 => convert_as::<u64, T>(src, h, out),
        DataType::F32 => convert_as::<f32, T>(src, h, out),
        DataType::F64 => convert_as::<f64, T>(src, h, out),
    }
}

fn convert_as<S: Stored, T: Sample>(src: &[u8], h: &Header, out: &mut Vec<T>) {
    let chunks = src.chunks_exact(S::N);
    let (m, c) = (h.scl_slope, h.scl_inter);
    let scaled = m != 1.0 || c != 0.0;
    match (h.big_endian, scaled) {
        (false, false) => out.extend(chunks.map(|b| T::from_f64(S::le(b).widen()))),
        (true, false) => out.extend(chunks.map(|b| T::from_f64(S::be(b).widen()))),
        (false, true) => out.extend(chunks.map(|b| T::from_f64(S::le(b).widen() * m + c))),
        (true, true) => out.extend(chunks.map(|b| T::from_f64(S::be(b).widen() * m + c))),
    }
}
