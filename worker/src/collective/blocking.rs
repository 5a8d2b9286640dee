//! [`Collective`] over a [`Ring`] for synchronous code: the training loop is
//! burn code on its own thread, while the ring's streams live on the worker's
//! tokio runtime. Each call blocks the calling thread until the collective is
//! done; the runtime's threads do the I/O meanwhile.

use tokio::runtime::Handle;

use super::{Collective, CollectiveError, Progress, Ring};

/// A ring driven from a thread outside the runtime. Calling it from inside an
/// async task would block a runtime thread and is refused by tokio (panic), so
/// keep it on the training thread.
#[derive(Debug)]
pub struct BlockingRing {
    ring: Ring,
    runtime: Handle,
}

impl BlockingRing {
    /// `runtime`: the handle of the (multi-threaded) runtime that serves this
    /// worker's `CollectiveHub`.
    pub fn new(ring: Ring, runtime: Handle) -> Self {
        Self { ring, runtime }
    }

    pub fn into_inner(self) -> Ring {
        self.ring
    }
}

impl Collective for BlockingRing {
    fn world(&self) -> usize {
        self.ring.world()
    }

    fn rank(&self) -> usize {
        self.ring.rank()
    }

    fn all_reduce_sum(&mut self, data: &mut [f32]) -> Result<(), CollectiveError> {
        self.runtime.block_on(self.ring.all_reduce_sum(data))
    }

    fn all_gather(&mut self, local: &[f32]) -> Result<Vec<Vec<f32>>, CollectiveError> {
        self.runtime.block_on(self.ring.all_gather(local))
    }

    fn progress(&self) -> Progress {
        self.ring.progress()
    }
}
