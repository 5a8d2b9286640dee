//! What a training step needs from its group of workers.
//!
//! The step is written once, for any group size: a single worker is a group of
//! one whose collectives are the identity ([`SingleWorker`]); a data-parallel
//! group plugs in the gRPC ring behind the same trait. Keeping the surface to
//! two collectives (an all-gather of the log-risks for the exact Cox gradient
//! and a sum all-reduce of the parameter gradients) is what makes 1, 2 or 8
//! workers compute the same update.

/// A collective failed (a peer was lost, timed out or sent garbage).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SyncError(pub String);

/// The collectives of a group of `world()` workers, seen from rank `rank()`.
///
/// Every rank calls the same collectives in the same order; results are
/// identical on every rank, bit for bit.
pub trait GroupSync {
    /// This worker's rank, `0..world()`.
    fn rank(&self) -> usize;
    /// Workers in the group.
    fn world(&self) -> usize;
    /// Every rank's `local` slice, indexed by rank.
    fn all_gather(&mut self, local: &[f32]) -> Result<Vec<Vec<f32>>, SyncError>;
    /// Replaces `data` by its element-wise sum over the ranks.
    fn all_reduce_sum(&mut self, data: &mut [f32]) -> Result<(), SyncError>;
}

/// A group of one: every collective is the identity.
#[derive(Clone, Copy, Debug, Default)]
pub struct SingleWorker;

impl GroupSync for SingleWorker {
    fn rank(&self) -> usize {
        0
    }
    fn world(&self) -> usize {
        1
    }
    fn all_gather(&mut self, local: &[f32]) -> Result<Vec<Vec<f32>>, SyncError> {
        Ok(vec![local.to_vec()])
    }
    fn all_reduce_sum(&mut self, _data: &mut [f32]) -> Result<(), SyncError> {
        Ok(())
    }
}
