//! Cohort's data plane: what a worker does with a trial.
//!
//! - [`backend`]: which burn backend and device (`--backend flex|tch`, `--device cpu|cuda:N`).
//! - [`cox_loss`]: the exact Cox loss of a global batch and its closed-form
//!   gradient with respect to the log-risks, the piece that makes data-parallel
//!   training optimise the true Cox objective.
//! - [`data`]: patients' volumes from the store to preprocessed tensors, with
//!   a content-addressed on-disk cache and prefetching.
//! - [`train`]: the backend-free parts of training: the global-batch sampler,
//!   augmentation, learning-rate schedule and early stopping.
//! - [`model`]: the 3D DenseNet (MONAI's structure and parameter counts), 3D pooling on
//!   burn's 2D kernels, and loading MONAI weights.
//! - [`score`]: reading NIfTI or safetensors input and eval-mode risk scores.
//!
//! The training loop and the gradient sync live beside them as they land.

pub mod backend;
pub mod cox_loss;
pub mod data;
pub mod model;
pub mod score;
pub mod train;
