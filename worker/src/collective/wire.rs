//! Values on the wire: little-endian f32 or bf16, and the fused kernels that
//! decode a received chunk, add the local values and encode the result in one
//! pass (the reduce-scatter inner loop).
//!
//! bf16 is the upper half of an f32, rounded to nearest, ties to even; NaN
//! stays NaN (quiet). Arithmetic is always f32: only the wire is narrow.

use bytes::Bytes;

use cohort_proto::v1;

/// How values travel between ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WireFormat {
    /// 4 bytes per value, exact.
    #[default]
    F32,
    /// 2 bytes per value: half the traffic, about 3 significant digits.
    Bf16,
}

impl WireFormat {
    pub fn bytes_per_value(self) -> usize {
        match self {
            WireFormat::F32 => 4,
            WireFormat::Bf16 => 2,
        }
    }

    pub(crate) fn to_proto(self) -> v1::WireFormat {
        match self {
            WireFormat::F32 => v1::WireFormat::F32,
            WireFormat::Bf16 => v1::WireFormat::Bf16,
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

/// Encodes `values`.
pub(crate) fn encode(values: &[f32], format: WireFormat) -> Bytes {
    let mut out = vec![0u8; values.len() * format.bytes_per_value()];
    match format {
        WireFormat::F32 => {
            for (o, v) in out.chunks_exact_mut(4).zip(values) {
                o.copy_from_slice(&v.to_le_bytes());
            }
        }
        WireFormat::Bf16 => {
            for (o, v) in out.chunks_exact_mut(2).zip(values) {
                o.copy_from_slice(&to_bf16(*v).to_le_bytes());
            }
        }
    }
    Bytes::from(out)
}

/// Decodes `bytes` into `dst`; the caller checked `bytes.len()`.
pub(crate) fn decode_into(bytes: &[u8], dst: &mut [f32], format: WireFormat) {
    debug_assert_eq!(bytes.len(), dst.len() * format.bytes_per_value());
    match format {
        WireFormat::F32 => {
            for (d, b) in dst.iter_mut().zip(bytes.chunks_exact(4)) {
                *d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        WireFormat::Bf16 => {
            for (d, b) in dst.iter_mut().zip(bytes.chunks_exact(2)) {
                *d = from_bf16(u16::from_le_bytes([b[0], b[1]]));
            }
        }
    }
}

/// One reduce-scatter step: `incoming + local`, encoded for the next hop.
/// With `store`, the sum (as the wire rounds it) is also written back into
/// `local`: the last step, where this rank owns the finished segment and must
/// keep exactly the bits the others will receive.
pub(crate) fn reduce(incoming: &[u8], local: &mut [f32], format: WireFormat, store: bool) -> Bytes {
    debug_assert_eq!(incoming.len(), local.len() * format.bytes_per_value());
    let mut out = vec![0u8; incoming.len()];
    match format {
        WireFormat::F32 => {
            let triples = out
                .chunks_exact_mut(4)
                .zip(incoming.chunks_exact(4))
                .zip(local.iter_mut());
            for ((o, i), l) in triples {
                let sum = f32::from_le_bytes([i[0], i[1], i[2], i[3]]) + *l;
                o.copy_from_slice(&sum.to_le_bytes());
                if store {
                    *l = sum;
                }
            }
        }
        WireFormat::Bf16 => {
            let triples = out
                .chunks_exact_mut(2)
                .zip(incoming.chunks_exact(2))
                .zip(local.iter_mut());
            for ((o, i), l) in triples {
                let sum = from_bf16(u16::from_le_bytes([i[0], i[1]])) + *l;
                let wire = to_bf16(sum);
                o.copy_from_slice(&wire.to_le_bytes());
                if store {
                    *l = from_bf16(wire);
                }
            }
        }
    }
    Bytes::from(out)
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
        let values = [1.5f32, -0.25, 3.0e7, 0.0];
        for format in [WireFormat::F32, WireFormat::Bf16] {
            let bytes = encode(&values, format);
            assert_eq!(bytes.len(), 4 * format.bytes_per_value());
            let mut back = [9.0f32; 4];
            decode_into(&bytes, &mut back, format);
            let rounded: Vec<f32> = values.iter().map(|v| format.round(*v)).collect();
            assert_eq!(back.to_vec(), rounded);

            let mut local = [1.0f32, 1.0, 1.0, 1.0];
            let out = reduce(&bytes, &mut local, format, true);
            let mut sums = [0.0f32; 4];
            decode_into(&out, &mut sums, format);
            assert_eq!(local, sums, "the owner keeps the bits it sends");
        }
    }
}
