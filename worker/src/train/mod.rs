//! Training a model.
//!
//! The backend-free pieces are pure functions of their settings, seed and
//! position, which is what lets a resumed or re-sharded run end where an
//! uninterrupted one would:
//!
//! - [`sampler`]: seeded global batches, independent of the number of workers;
//! - [`augment`]: augmentation seeded per sample;
//! - [`schedule`]: warm-up + cosine learning rate, early stopping;
//! - [`plan`]: a job spec resolved into one trial's typed settings.
//!
//! The loop itself:
//!
//! - [`grads`]: parameter gradients as one flat buffer for the all-reduce;
//! - [`step`]: one exact-Cox optimizer step for rank `r` of `n`;
//! - [`checkpoint`]: atomic checkpoints in the artifact store;
//! - [`setup`]: reading and checking a trial's cohort and settings;
//! - [`trial`]: epochs, validation, early stopping, checkpoints, final scores.

pub mod augment;
pub mod checkpoint;
pub mod grads;
pub mod plan;
pub mod sampler;
pub mod schedule;
pub mod setup;
pub mod step;
pub mod trial;

pub use augment::{AugmentConfig, augment, sample_rng};
pub use checkpoint::{Checkpoint, CheckpointError, EpochRecord, TrainState};
pub use plan::{OptimizerKind, PlanError, TrialPlan};
pub use sampler::{GlobalBatch, Sampler, SamplerConfig, SamplerError, SamplerPosition};
pub use schedule::{EarlyStopping, Verdict, WarmupCosine};
pub use setup::{Resources, SetupError, open_trial};
pub use step::{
    StepBatch, StepError, StepOutcome, batch_gradients, cox_gradients, cox_step, train_step,
};
pub use trial::{
    EpochTiming, Quiet, TrialEnd, TrialError, TrialInputs, TrialObserver, TrialSummary,
    fingerprint, run_trial, shard_range,
};
