//! The data pipeline of a worker: patients' volumes from the object store to
//! preprocessed tensors, cached on local disk and prefetched ahead of the
//! training step.

pub mod cache;
pub mod loader;

pub use cache::{CacheError, VolumeCache};
pub use loader::{DataError, Prefetcher, VolumeSource, prefetch};
