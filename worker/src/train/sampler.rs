//! The seeded sampler of global batches.
//!
//! Two properties make distributed training reproducible and exact:
//!
//! - **Batches do not depend on the number of workers.** The sampler yields
//!   *global* batches; a worker of rank `r` in a group of `n` takes its slice
//!   ([`GlobalBatch::shard`]). The same seed gives the same global batches on
//!   1, 2 or 8 workers, so (with the exact Cox gradient) the same training.
//! - **Every batch holds events.** A Cox partial likelihood needs events to
//!   rank against; a batch without any gives no gradient. The sampler
//!   stratifies each epoch: events and censored patients are shuffled
//!   separately and dealt round-robin, so every batch gets `floor(E / B)` or
//!   `ceil(E / B)` of the `E` events. When that would fall below
//!   `min_events`, the epoch uses fewer, larger batches.
//!
//! The sampler's position is `(epoch, batch)`; batches of an epoch are a pure
//! function of `(seed, epoch)`, so a checkpoint only records the position.

use cohort_common::rng::Rng;
use serde::{Deserialize, Serialize};

/// The sampler's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SamplerConfig {
    /// Patients per global batch (before the minimum-events adjustment).
    pub batch_size: usize,
    /// Events every batch must hold (when the epoch has enough).
    pub min_events: usize,
    pub seed: u64,
}

/// Where the sampler is: the next batch to yield.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SamplerPosition {
    pub epoch: u64,
    pub batch: usize,
}

/// One global batch: indices into the sampler's pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalBatch {
    pub epoch: u64,
    pub index: usize,
    pub members: Vec<usize>,
}

impl GlobalBatch {
    /// The contiguous slice of rank `rank` among `world` workers. Slices
    /// differ in size by at most one; a rank may get none in a tiny batch.
    pub fn shard(&self, rank: usize, world: usize) -> &[usize] {
        assert!(world > 0 && rank < world, "rank {rank} of {world}");
        let n = self.members.len();
        let start = rank * n / world;
        let end = (rank + 1) * n / world;
        &self.members[start..end]
    }
}

/// Why a sampler cannot be built.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SamplerError {
    #[error("sampler: batch size must be at least 1")]
    ZeroBatch,
    #[error("sampler: the training pool is empty")]
    EmptyPool,
    #[error("sampler: the training pool has no events; a Cox model cannot learn from it")]
    NoEvents,
}

/// Global batches over a fixed pool of patients.
#[derive(Clone, Debug)]
pub struct Sampler {
    config: SamplerConfig,
    /// The event indicator of each pool member.
    events: Vec<bool>,
}

impl Sampler {
    /// A sampler over a pool whose members have the given event indicators
    /// (pool member `i` is batch member `i`).
    pub fn new(config: SamplerConfig, events: Vec<bool>) -> Result<Self, SamplerError> {
        if config.batch_size == 0 {
            return Err(SamplerError::ZeroBatch);
        }
        if events.is_empty() {
            return Err(SamplerError::EmptyPool);
        }
        if !events.contains(&true) {
            return Err(SamplerError::NoEvents);
        }
        Ok(Sampler { config, events })
    }

    /// Number of batches per epoch.
    pub fn batches_per_epoch(&self) -> usize {
        let n = self.events.len();
        let n_events = self.events.iter().filter(|&&e| e).count();
        let by_size = n.div_ceil(self.config.batch_size);
        let by_events = (n_events / self.config.min_events.max(1)).max(1);
        by_size.min(by_events)
    }

    /// Every batch of `epoch`, in order.
    pub fn epoch(&self, epoch: u64) -> Vec<GlobalBatch> {
        let nb = self.batches_per_epoch();
        let mut rng = Rng::derive_indexed(self.config.seed, "sampler-epoch", epoch);
        let mut with_event: Vec<usize> =
            (0..self.events.len()).filter(|&i| self.events[i]).collect();
        let mut censored: Vec<usize> = (0..self.events.len())
            .filter(|&i| !self.events[i])
            .collect();
        rng.shuffle(&mut with_event);
        rng.shuffle(&mut censored);
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); nb];
        // Deal events round-robin, then censored continuing the rotation, so
        // batch sizes differ by at most one.
        for (k, &i) in with_event.iter().chain(&censored).enumerate() {
            members[k % nb].push(i);
        }
        members
            .into_iter()
            .enumerate()
            .map(|(index, mut m)| {
                rng.shuffle(&mut m);
                GlobalBatch {
                    epoch,
                    index,
                    members: m,
                }
            })
            .collect()
    }

    /// The batch at `position`, and the position after it.
    pub fn batch_at(&self, position: SamplerPosition) -> (GlobalBatch, SamplerPosition) {
        let nb = self.batches_per_epoch();
        let position = if position.batch >= nb {
            SamplerPosition {
                epoch: position.epoch + 1,
                batch: 0,
            }
        } else {
            position
        };
        let mut batches = self.epoch(position.epoch);
        let batch = batches.swap_remove(position.batch);
        let next = if position.batch + 1 == nb {
            SamplerPosition {
                epoch: position.epoch + 1,
                batch: 0,
            }
        } else {
            SamplerPosition {
                epoch: position.epoch,
                batch: position.batch + 1,
            }
        };
        (batch, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(n: usize, every: usize) -> Vec<bool> {
        (0..n).map(|i| i % every == 0).collect()
    }

    fn sampler(batch_size: usize, min_events: usize, events: Vec<bool>) -> Sampler {
        Sampler::new(
            SamplerConfig {
                batch_size,
                min_events,
                seed: 11,
            },
            events,
        )
        .unwrap()
    }

    #[test]
    fn an_epoch_covers_the_pool_once_with_balanced_events() {
        let events = pool(103, 4); // 26 events
        let s = sampler(16, 2, events.clone());
        let batches = s.epoch(0);
        assert_eq!(batches.len(), 7);
        let mut all: Vec<usize> = batches.iter().flat_map(|b| b.members.clone()).collect();
        all.sort();
        assert_eq!(all, (0..103).collect::<Vec<_>>());
        for b in &batches {
            let e = b.members.iter().filter(|&&i| events[i]).count();
            assert!((3..=4).contains(&e), "batch {} has {e} events", b.index);
            assert!((14..=15).contains(&b.members.len()));
        }
    }

    #[test]
    fn too_few_events_give_fewer_larger_batches() {
        let events = pool(100, 25); // 4 events
        let s = sampler(10, 2, events.clone());
        assert_eq!(s.batches_per_epoch(), 2);
        for b in s.epoch(3) {
            assert_eq!(b.members.iter().filter(|&&i| events[i]).count(), 2);
        }
    }

    #[test]
    fn epochs_differ_and_repeat_exactly() {
        let s = sampler(8, 1, pool(40, 3));
        assert_eq!(s.epoch(2), s.epoch(2));
        assert_ne!(s.epoch(2), s.epoch(3));
    }

    #[test]
    fn shards_partition_the_global_batch_for_any_world_size() {
        let s = sampler(10, 1, pool(37, 3));
        let batch = &s.epoch(0)[1];
        for world in 1..=4 {
            let joined: Vec<usize> = (0..world)
                .flat_map(|r| batch.shard(r, world).to_vec())
                .collect();
            assert_eq!(&joined, &batch.members);
        }
    }

    #[test]
    fn positions_walk_through_epochs() {
        let s = sampler(10, 1, pool(25, 2));
        assert_eq!(s.batches_per_epoch(), 3);
        let mut pos = SamplerPosition::default();
        let mut seen = Vec::new();
        for _ in 0..7 {
            let (b, next) = s.batch_at(pos);
            seen.push((b.epoch, b.index));
            pos = next;
        }
        assert_eq!(
            seen,
            vec![(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (2, 0)]
        );
        assert_eq!(
            s.batch_at(SamplerPosition { epoch: 1, batch: 2 }).0,
            s.epoch(1)[2]
        );
    }

    #[test]
    fn bad_pools_are_refused() {
        let cfg = SamplerConfig {
            batch_size: 4,
            min_events: 1,
            seed: 0,
        };
        assert_eq!(
            Sampler::new(cfg.clone(), vec![]).unwrap_err(),
            SamplerError::EmptyPool
        );
        assert_eq!(
            Sampler::new(cfg.clone(), vec![false; 3]).unwrap_err(),
            SamplerError::NoEvents
        );
        let zero = SamplerConfig {
            batch_size: 0,
            ..cfg
        };
        assert_eq!(
            Sampler::new(zero, vec![true]).unwrap_err(),
            SamplerError::ZeroBatch
        );
    }
}
