//! Cohort's data plane: what a worker does with a trial.
//!
//! - [`cox_loss`]: the exact Cox loss of a global batch and its closed-form
//!   gradient with respect to the log-risks, the piece that makes data-parallel
//!   training optimise the true Cox objective.
//! - [`data`]: patients' volumes from the store to preprocessed tensors, with
//!   a content-addressed on-disk cache and prefetching.
//! - [`train`]: the backend-free parts of training: the global-batch sampler,
//!   augmentation, learning-rate schedule and early stopping.
//!
//! The 3D DenseNet, the training loop and the gradient sync live beside it as
//! they land.

pub mod cox_loss;
pub mod data;
pub mod train;
