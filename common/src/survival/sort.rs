//! Stable LSD radix sorting of index permutations, shared by the Cox risk
//! sets and the concordance walk. On 100,000 rows it is several times faster
//! than a comparison sort through a closure, because it reads the keys
//! sequentially and skips the 11-bit digits that do not vary (integer-valued
//! times, small rank ranges).

/// A u64 whose unsigned order is the numeric order of the finite double `v`
/// (-0.0 and +0.0 map to the same key).
#[inline]
pub(crate) fn f64_key(v: f64) -> u64 {
    let b = (v + 0.0).to_bits();
    if b >> 63 == 1 { !b } else { b | (1 << 63) }
}

/// Sorts `order` stably by `key(element)`.
pub(crate) fn radix_sort_by_key(order: &mut [u32], key: impl Fn(u32) -> u64) {
    const BITS: u32 = 11;
    const BUCKETS: usize = 1 << BITS;
    let n = order.len();
    if n < 2 {
        return;
    }
    let keys: Vec<u64> = order.iter().map(|&i| key(i)).collect();
    let (all_or, all_and) = keys
        .iter()
        .fold((0u64, u64::MAX), |(o, a), &k| (o | k, a & k));
    let varying = all_or ^ all_and;
    // Permute (key, element) pairs together so each pass reads sequentially.
    let mut cur: Vec<(u64, u32)> = keys.into_iter().zip(order.iter().copied()).collect();
    let mut tmp = vec![(0u64, 0u32); n];
    let mut shift = 0;
    while shift < 64 {
        if varying & (((BUCKETS as u64) - 1) << shift) != 0 {
            let mut count = vec![0usize; BUCKETS + 1];
            for &(k, _) in &cur {
                count[((k >> shift) as usize & (BUCKETS - 1)) + 1] += 1;
            }
            for b in 0..BUCKETS {
                count[b + 1] += count[b];
            }
            for &kv in &cur {
                let d = (kv.0 >> shift) as usize & (BUCKETS - 1);
                tmp[count[d]] = kv;
                count[d] += 1;
            }
            std::mem::swap(&mut cur, &mut tmp);
        }
        shift += BITS;
    }
    for (o, (_, i)) in order.iter_mut().zip(cur) {
        *o = i;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn matches_a_stable_comparison_sort() {
        let mut rng = Rng::seed_from_u64(4);
        let v: Vec<f64> = (0..5000)
            .map(|i| match i % 4 {
                0 => rng.normal() * 1e6,
                1 => -(rng.below(30) as f64),
                2 => 0.0,
                _ => rng.uniform() * 1e-300,
            })
            .chain([-0.0, f64::MAX, f64::MIN])
            .collect();
        let mut order: Vec<u32> = (0..v.len() as u32).collect();
        radix_sort_by_key(&mut order, |i| f64_key(v[i as usize]));
        let mut want: Vec<u32> = (0..v.len() as u32).collect();
        want.sort_by(|&a, &b| v[a as usize].total_cmp(&v[b as usize]).then(a.cmp(&b)));
        // total_cmp orders -0.0 before +0.0; the key treats them as equal.
        let same = |a: &[u32], b: &[u32]| {
            a.iter()
                .zip(b)
                .all(|(x, y)| v[*x as usize] == v[*y as usize])
        };
        assert!(same(&order, &want));
        for w in order.windows(2) {
            let (a, b) = (v[w[0] as usize], v[w[1] as usize]);
            assert!(a < b || (a == b && w[0] < w[1]));
        }
    }
}
