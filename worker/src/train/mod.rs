//! The pieces of a training run that do not depend on the deep-learning
//! backend: the seeded global-batch sampler, augmentation, the learning-rate
//! schedule and early stopping (plus [`step`], one Cox training step on any
//! backend). Each is a pure function of its settings,
//! seed and position, which is what lets a resumed or re-sharded run end
//! where an uninterrupted one would.

pub mod augment;
pub mod sampler;
pub mod schedule;
pub mod step;

pub use augment::{AugmentConfig, augment, sample_rng};
pub use sampler::{GlobalBatch, Sampler, SamplerConfig, SamplerError, SamplerPosition};
pub use schedule::{EarlyStopping, Verdict, WarmupCosine};
pub use step::{cox_gradients, cox_step};
