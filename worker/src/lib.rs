//! Cohort's data plane: what a worker does with a trial.
//!
//! - [`backend`]: which burn backend and device (`--backend flex|tch`, `--device cpu|cuda:N`).
//! - [`cox_loss`]: the exact Cox loss of a global batch and its closed-form
//!   gradient with respect to the log-risks, the piece that makes data-parallel
//!   training optimise the true Cox objective.
//! - [`data`]: patients' volumes from the store to preprocessed tensors, with
//!   a content-addressed on-disk cache and prefetching.
//! - [`train`]: the training loop: global-batch sampler, augmentation, schedule,
//!   the exact-Cox step for rank `r` of `n`, checkpoints, whole trials.
//! - [`model`]: the 3D DenseNet (MONAI's structure and parameter counts), 3D pooling on
//!   burn's 2D kernels, and loading MONAI weights.
//! - [`input`]: reading NIfTI or safetensors input for `predict`, and scoring it.
//! - [`backend`]: which burn backend and device compute (flex, tch).
//! - [`agent`]: the long-running worker process: coordinator session, assignments.
//! - [`score`]: risk scores of a cohort and `scores.csv`.
//! - [`collective`]: gradient sync: the [`collective::Collective`] trait the
//!   training loop is written against, a group of one, and ring all-reduce /
//!   all-gather over gRPC between workers.

pub mod agent;
pub mod alloc;
pub mod backend;
pub mod collective;
pub mod cox_loss;
pub mod data;
pub mod input;
pub mod model;
pub mod score;
pub mod train;
