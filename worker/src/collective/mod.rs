//! Gradient sync: the collectives a data-parallel group needs, behind one
//! small trait the training loop is written against.
//!
//! # The trait
//!
//! [`Collective`] is blocking on purpose: the training loop is synchronous
//! burn code on its own thread. [`LocalCollective`] is a group of one (every
//! operation is the identity, no network). [`BlockingRing`] is the real thing:
//! a [`Ring`] (async, tokio, gRPC) driven from the training thread through a
//! runtime handle.
//!
//! # Ring all-reduce
//!
//! The `n` ranks form a ring; rank `r` sends only to `r + 1` and receives only
//! from `r - 1` (mod n), each over one gRPC client stream per collective
//! (`CollectiveService.Send`, served by every worker's [`CollectiveHub`]).
//! The vector is cut into buckets (default 25 MiB of f32), each bucket into
//! `n` segments, each segment into chunks (default 1 MiB).
//!
//! - **Reduce-scatter**, steps `s = 0 .. n-2`: rank `r` sends segment
//!   `(r - s) mod n`; the receiver adds its own values and passes the partial
//!   sum on at the next step. After `n - 1` steps rank `r` holds the complete
//!   sum of segment `(r + 1) mod n`.
//! - **All-gather**, steps `s = n-1 .. 2n-3`: the complete segments travel
//!   once more around the ring; each rank stores them and forwards the very
//!   same received buffer (`bytes::Bytes`, no copy).
//!
//! Each rank sends `2 (n-1) / n` times the data, the optimum for a ring, and
//! the work is pipelined at chunk granularity: a chunk is forwarded as soon as
//! it arrived, so every link is busy at once.
//!
//! # Invariants
//!
//! - **Bit-identical on every rank, independent of timing.** The sum of
//!   segment `j` is always accumulated in ring order `((x_j + x_{j+1}) +
//!   x_{j+2}) + ...` (indices mod n) by the ranks on its path, and everyone
//!   else receives those exact bits. The order depends only on `n` and the
//!   element's position, never on arrival times. With the bf16 wire, the
//!   owner of a finished segment keeps the bf16-rounded value it sends, so the
//!   ranks still agree bit for bit.
//! - **A fixed stream order.** Chunks on a stream come in (bucket, step,
//!   position) order; the receiver checks every header field against the
//!   chunk it expects, so a mismatched collective (different lengths, kinds,
//!   wire formats, sequence numbers) is an error naming the sender, not
//!   garbage.
//! - **Sequence numbers.** Every collective of a ring (all-reduce or
//!   all-gather) takes the next number, 0, 1, 2, ...; all ranks make the same
//!   calls in the same order, so the numbers agree. [`Progress`] publishes how
//!   many finished, for heartbeats.
//! - **No silent hang.** A rank that receives nothing from its left neighbour
//!   for `timeout` fails with "rank 2 has not joined all-reduce #812" (or "...
//!   stalled at step s") and sends an *abort* chunk around the ring, so every
//!   waiting rank fails with the same message soon after. After any error a
//!   ring is broken for good: the group is re-formed with a new
//!   `group_epoch`.
//! - **World size 1 never touches the network.**
//!
//! # All-gather
//!
//! [`Collective::all_gather`] collects one variable-length f32 slice per rank
//! (the Cox loss's `(eta, time, event)` of every local sample): rank `r`
//! sends its slice, then forwards what it received, `n - 1` steps. It always
//! uses the f32 wire: these are few values and must be exact.

mod blocking;
mod frames;
mod hub;
mod layout;
mod ring;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use blocking::BlockingRing;
pub use cohort_wire::{WireFormat, bf16_round};
pub use hub::{CollectiveHub, GroupKey, HubService, tune_endpoint, tune_server};
pub use ring::{Ring, RingConfig};

/// The collectives a data-parallel training loop needs. All ranks of a group
/// must make the same calls in the same order (the sequence numbers of
/// [`Progress`] count them).
pub trait Collective: Send {
    /// Number of ranks in the group.
    fn world(&self) -> usize;
    /// This rank, `0 .. world()`.
    fn rank(&self) -> usize;
    /// Replaces `data` with the element-wise sum over all ranks. Every rank
    /// passes the same length; every rank gets bit-identical results.
    fn all_reduce_sum(&mut self, data: &mut [f32]) -> Result<(), CollectiveError>;
    /// Every rank's `local`, indexed by rank (lengths may differ by rank).
    fn all_gather(&mut self, local: &[f32]) -> Result<Vec<Vec<f32>>, CollectiveError>;
    /// A handle on the count of finished collectives, for heartbeats from
    /// another thread.
    fn progress(&self) -> Progress;
}

/// How many collectives a rank has finished (the next one's sequence number).
#[derive(Clone, Debug, Default)]
pub struct Progress(Arc<AtomicU64>);

impl Progress {
    /// Collectives finished so far.
    pub fn done(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    pub(crate) fn set(&self, done: u64) {
        self.0.store(done, Ordering::Relaxed);
    }
}

/// What a collective can fail with. Messages name the rank and the
/// collective, the two things an operator needs to find the culprit.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CollectiveError {
    /// Nothing at all arrived from the left neighbour within the timeout.
    #[error("rank {rank} has not joined {kind} #{seq}")]
    NotJoined {
        rank: usize,
        kind: &'static str,
        seq: u64,
    },
    /// The left neighbour joined but then sent nothing for the timeout.
    #[error("{kind} #{seq} stalled at step {step}: nothing from rank {rank} for {waited_ms} ms")]
    Stalled {
        rank: usize,
        kind: &'static str,
        seq: u64,
        step: u32,
        waited_ms: u64,
    },
    /// Another rank gave up on this collective; the message is its reason.
    #[error("{0}")]
    Aborted(String),
    /// The right neighbour could not be reached or its stream failed.
    #[error("sending {kind} #{seq} to rank {rank} ({addr}) failed: {reason}")]
    Send {
        rank: usize,
        addr: String,
        kind: &'static str,
        seq: u64,
        reason: String,
    },
    /// The left neighbour's stream broke or ended early.
    #[error("receiving {kind} #{seq} from rank {rank} failed: {reason}")]
    Receive {
        rank: usize,
        kind: &'static str,
        seq: u64,
        reason: String,
    },
    /// A malformed or unexpected chunk.
    #[error("malformed chunk of {kind} #{seq} from rank {rank}: {detail}")]
    Protocol {
        rank: usize,
        kind: &'static str,
        seq: u64,
        detail: String,
    },
    /// The ring failed earlier and cannot be used again.
    #[error("the ring is broken since an earlier error: {0}")]
    Broken(String),
    /// Bad configuration (peer list, sizes).
    #[error("invalid ring configuration: {0}")]
    Config(String),
}

/// A group of one: all-reduce and all-gather are the identity, with no
/// network. The single-worker training loop uses it, so it runs the same
/// code path as a distributed one.
#[derive(Debug, Default)]
pub struct LocalCollective {
    progress: Progress,
}

impl LocalCollective {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Collective for LocalCollective {
    fn world(&self) -> usize {
        1
    }
    fn rank(&self) -> usize {
        0
    }
    fn all_reduce_sum(&mut self, _data: &mut [f32]) -> Result<(), CollectiveError> {
        self.progress.set(self.progress.done() + 1);
        Ok(())
    }
    fn all_gather(&mut self, local: &[f32]) -> Result<Vec<Vec<f32>>, CollectiveError> {
        self.progress.set(self.progress.done() + 1);
        Ok(vec![local.to_vec()])
    }
    fn progress(&self) -> Progress {
        self.progress.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_collective_is_the_identity() {
        let mut c = LocalCollective::new();
        let mut v = vec![1.0, -2.5, 3.0];
        c.all_reduce_sum(&mut v).unwrap();
        assert_eq!(v, [1.0, -2.5, 3.0]);
        assert_eq!(c.all_gather(&[4.0]).unwrap(), vec![vec![4.0]]);
        assert_eq!((c.world(), c.rank(), c.progress().done()), (1, 0, 2));
    }
}
