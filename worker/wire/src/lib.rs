//! Values on the wire of Cohort's collectives: little-endian f32 or bf16, and
//! the fused kernel that decodes a received chunk, adds the local values and
//! encodes the result in one pass (the reduce-scatter inner loop).
//!
//! Why a crate of its own: these loops move every byte of every gradient, and
//! the workspace compiles its own crates at opt-level 1 in dev builds, where
//! LLVM neither inlines the iterator adapters nor vectorises; the kernels ran
//! 4-5x slower there and dominated a loopback all-reduce. The root manifest
//! compiles this crate (and only this one of ours) at opt-level 3 in dev too.
//!
//! bf16 is the upper half of an f32, rounded to nearest, ties to even; NaN
//! stays NaN (quiet). Arithmetic is always f32: only the wire is narrow.
//!
//! The public kernels are `#[inline(never)]`: inlined into a caller they
//! would be compiled at the caller's opt-level, which is the point to avoid.
//! Each call handles a whole chunk, so the call costs nothing.
//!
//! Outputs are built by collecting into `Vec<[u8; N]>` (no zero-filling
//! first, vectorised) and handed to `bytes::Bytes` without another copy.

use bytes::Bytes;

/// How values travel between ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WireFormat {
    /// 4 bytes per value, exact.
    #[default]
    F32,
    /// 2 bytes per value: half the traffic, 8 significant bits.
    Bf16,
}

impl WireFormat {
    pub fn bytes_per_value(self) -> usize {
        match self {
            WireFormat::F32 => 4,
            WireFormat::Bf16 => 2,
        }
    }

    /// What a value becomes after a trip over this wire.
    pub fn round(self, x: f32) -> f32 {
        match self {
            WireFormat::F32 => x,
            WireFormat::Bf16 => bf16_round(x),
        }
    }
}

/// f32 -> bf16 bits, round to nearest even.
#[inline]
fn to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    if x.is_nan() {
        return ((bits >> 16) | 0x0040) as u16;
    }
    let round = 0x7fff + ((bits >> 16) & 1);
    (bits.wrapping_add(round) >> 16) as u16
}

#[inline]
fn from_bf16(b: u16) -> f32 {
    f32::from_bits((b as u32) << 16)
}

/// `x` rounded to the nearest bf16 (ties to even), as an f32.
#[inline]
pub fn bf16_round(x: f32) -> f32 {
    from_bf16(to_bf16(x))
}

/// Owns the encoded bytes of a chunk, so `Bytes` can point into it.
struct Encoded<const N: usize>(Vec<[u8; N]>);

impl<const N: usize> AsRef<[u8]> for Encoded<N> {
    fn as_ref(&self) -> &[u8] {
        self.0.as_flattened()
    }
}

fn into_bytes<const N: usize>(v: Vec<[u8; N]>) -> Bytes {
    Bytes::from_owner(Encoded(v))
}

#[inline]
fn f32_at(b: &[u8]) -> f32 {
    f32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

#[inline]
fn bf16_at(b: &[u8]) -> f32 {
    from_bf16(u16::from_le_bytes([b[0], b[1]]))
}

/// Encodes `values`.
#[inline(never)]
pub fn encode(values: &[f32], format: WireFormat) -> Bytes {
    match format {
        WireFormat::F32 => into_bytes(values.iter().map(|v| v.to_le_bytes()).collect()),
        WireFormat::Bf16 => into_bytes(values.iter().map(|v| to_bf16(*v).to_le_bytes()).collect()),
    }
}

/// Decodes `bytes` into `dst`. Panics unless `bytes.len()` is `dst.len()`
/// values (callers check lengths from the network before).
#[inline(never)]
pub fn decode_into(bytes: &[u8], dst: &mut [f32], format: WireFormat) {
    assert_eq!(bytes.len(), dst.len() * format.bytes_per_value());
    match format {
        WireFormat::F32 => {
            for (d, b) in dst.iter_mut().zip(bytes.chunks_exact(4)) {
                *d = f32_at(b);
            }
        }
        WireFormat::Bf16 => {
            for (d, b) in dst.iter_mut().zip(bytes.chunks_exact(2)) {
                *d = bf16_at(b);
            }
        }
    }
}

/// One reduce-scatter step: `incoming + local`, encoded for the next hop.
/// With `store`, the sum (as the wire rounds it) is also written back into
/// `local`: the last step, where this rank owns the finished segment and must
/// keep exactly the bits the others will receive. Panics on a length
/// mismatch, like [`decode_into`].
#[inline(never)]
pub fn reduce(incoming: &[u8], local: &mut [f32], format: WireFormat, store: bool) -> Bytes {
    assert_eq!(incoming.len(), local.len() * format.bytes_per_value());
    match (format, store) {
        (WireFormat::F32, false) => into_bytes(
            incoming
                .chunks_exact(4)
                .zip(local.iter())
                .map(|(i, l)| (f32_at(i) + l).to_le_bytes())
                .collect(),
        ),
        (WireFormat::F32, true) => {
            for (l, i) in local.iter_mut().zip(incoming.chunks_exact(4)) {
                *l += f32_at(i);
            }
            encode(local, WireFormat::F32)
        }
        (WireFormat::Bf16, false) => into_bytes(
            incoming
                .chunks_exact(2)
                .zip(local.iter())
                .map(|(i, l)| to_bf16(bf16_at(i) + l).to_le_bytes())
                .collect(),
        ),
        (WireFormat::Bf16, true) => {
            for (l, i) in local.iter_mut().zip(incoming.chunks_exact(2)) {
                *l = bf16_round(bf16_at(i) + *l);
            }
            encode(local, WireFormat::Bf16)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_rounds_to_nearest_even() {
        // 1 + 2^-8 is exactly between 1 and 1 + 2^-7: ties go to the even (1).
        assert_eq!(bf16_round(1.0 + 2f32.powi(-8)), 1.0);
        // 1 + 3 * 2^-8 is between 1 + 2^-7 (odd) and 1 + 2^-6: goes up to even.
        assert_eq!(bf16_round(1.0 + 3.0 * 2f32.powi(-8)), 1.0 + 2f32.powi(-6));
        // Just above the tie rounds up.
        assert_eq!(
            bf16_round(1.0 + 2f32.powi(-8) + 2f32.powi(-20)),
            1.0 + 2f32.powi(-7)
        );
        assert_eq!(bf16_round(-2.0), -2.0);
        assert!(bf16_round(f32::NAN).is_nan());
        assert_eq!(bf16_round(f32::INFINITY), f32::INFINITY);
        // The largest finite f32 overflows to infinity, as IEEE rounding does.
        assert_eq!(bf16_round(f32::MAX), f32::INFINITY);
    }

    #[test]
    fn encode_decode_and_reduce() {
        let values = [1.5f32, -0.25, 3.0e7, 0.0, 1.0 + 2f32.powi(-8)];
        for format in [WireFormat::F32, WireFormat::Bf16] {
            let bytes = encode(&values, format);
            assert_eq!(bytes.len(), values.len() * format.bytes_per_value());
            let mut back = [9.0f32; 5];
            decode_into(&bytes, &mut back, format);
            let rounded: Vec<f32> = values.iter().map(|v| format.round(*v)).collect();
            assert_eq!(back.to_vec(), rounded);

            for store in [false, true] {
                let mut local = [1.0f32; 5];
                let out = reduce(&bytes, &mut local, format, store);
                let mut sums = [0.0f32; 5];
                decode_into(&out, &mut sums, format);
                let want: Vec<f32> = rounded.iter().map(|v| format.round(v + 1.0)).collect();
                assert_eq!(sums.to_vec(), want);
                if store {
                    assert_eq!(local, sums, "the owner keeps the bits it sends");
                } else {
                    assert_eq!(local, [1.0; 5]);
                }
            }
        }
    }
}
