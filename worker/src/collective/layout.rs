//! Where every value goes: buckets, segments, chunks and the ring schedule.
//!
//! Pure arithmetic, shared by sender and receiver, so both sides derive the
//! same chunk boundaries from `(total, n, bucket, chunk)` alone.

use std::ops::Range;

/// `len` split into `parts` nearly equal ranges (the first ones may be one
/// shorter); part `i`.
pub(crate) fn part(len: usize, parts: usize, i: usize) -> Range<usize> {
    let at = |k: usize| ((k as u128 * len as u128) / parts as u128) as usize;
    at(i)..at(i + 1)
}

/// Geometry of one all-reduce of `total` values over `n` ranks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    pub total: usize,
    pub n: usize,
    pub bucket_elems: usize,
    pub chunk_elems: usize,
}

impl Layout {
    pub fn buckets(&self) -> usize {
        self.total.div_ceil(self.bucket_elems).max(1)
    }

    /// Absolute range of bucket `b`.
    pub fn bucket(&self, b: usize) -> Range<usize> {
        let start = (b * self.bucket_elems).min(self.total);
        start..(start + self.bucket_elems).min(self.total)
    }

    /// Absolute range of segment `j` of bucket `b`.
    pub fn segment(&self, b: usize, j: usize) -> Range<usize> {
        let bucket = self.bucket(b);
        let p = part(bucket.len(), self.n, j);
        bucket.start + p.start..bucket.start + p.end
    }

    /// Chunk ranges relative to a segment of `len` values; always at least
    /// one (an empty segment still sends one empty chunk, so every step of
    /// the schedule has a message and lengths are checked).
    pub fn chunks(&self, len: usize) -> impl Iterator<Item = Range<usize>> + use<> {
        chunks(len, self.chunk_elems)
    }

    /// Number of ring steps of an all-reduce: reduce-scatter then all-gather.
    pub fn steps(&self) -> usize {
        2 * (self.n - 1)
    }

    /// Segment rank `r` sends at step `s`.
    pub fn send_segment(&self, r: usize, s: usize) -> usize {
        let n = self.n;
        if s < n - 1 {
            (r + n - s % n) % n
        } else {
            let t = s - (n - 1);
            (r + 1 + n - t % n) % n
        }
    }

    /// Segment rank `r` receives at step `s` (what its left neighbour sends).
    pub fn recv_segment(&self, r: usize, s: usize) -> usize {
        self.send_segment((r + self.n - 1) % self.n, s)
    }
}

/// Chunks of `chunk` values covering `0..len`; one empty chunk when `len == 0`.
pub(crate) fn chunks(len: usize, chunk: usize) -> impl Iterator<Item = Range<usize>> + use<> {
    let count = len.div_ceil(chunk).max(1);
    (0..count).map(move |c| (c * chunk).min(len)..((c + 1) * chunk).min(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_exactly() {
        for len in [0, 1, 2, 7, 100] {
            for parts in 1..6 {
                let mut next = 0;
                for i in 0..parts {
                    let r = part(len, parts, i);
                    assert_eq!(r.start, next);
                    next = r.end;
                }
                assert_eq!(next, len);
            }
        }
    }

    #[test]
    fn schedule_reduces_every_segment_once_per_rank() {
        for n in 2..6 {
            let l = Layout {
                total: 10,
                n,
                bucket_elems: 10,
                chunk_elems: 3,
            };
            // Reduce-scatter: segment j passes ranks j, j+1, ..., j+n-1 and
            // finishes at rank j-1 = j+n-1, which then owns it.
            for j in 0..n {
                let mut holder = j;
                for s in 0..n - 1 {
                    assert_eq!(l.send_segment(holder, s), j);
                    holder = (holder + 1) % n;
                    assert_eq!(l.recv_segment(holder, s), j);
                }
                assert_eq!((holder + 1) % n, j, "rank j-1 owns segment j");
                // All-gather: the owner sends it first, n-1 hops reach everyone.
                for s in n - 1..l.steps() {
                    assert_eq!(l.send_segment(holder, s), j);
                    holder = (holder + 1) % n;
                }
            }
        }
    }

    #[test]
    fn chunks_and_buckets() {
        assert_eq!(chunks(0, 4).collect::<Vec<_>>(), vec![0..0]);
        assert_eq!(chunks(9, 4).collect::<Vec<_>>(), vec![0..4, 4..8, 8..9]);
        let l = Layout {
            total: 10,
            n: 3,
            bucket_elems: 4,
            chunk_elems: 2,
        };
        assert_eq!(l.buckets(), 3);
        assert_eq!(l.bucket(2), 8..10);
        assert_eq!(l.segment(2, 0), 8..8);
        assert_eq!(l.segment(2, 2), 9..10);
        let empty = Layout { total: 0, ..l };
        assert_eq!(empty.buckets(), 1);
        assert_eq!(empty.bucket(0), 0..0);
    }
}
