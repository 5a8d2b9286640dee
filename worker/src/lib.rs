//! Cohort's data plane: what a worker does with a trial.
//!
//! - [`cox_loss`]: the exact Cox loss of a global batch and its closed-form
//!   gradient with respect to the log-risks, the piece that makes data-parallel
//!   training optimise the true Cox objective.
//! - [`model`]: the 3D DenseNet (MONAI's structure and parameter counts), 3D pooling on
//!   burn's 2D kernels, and loading MONAI weights.
//!
//! The training loop and the gradient sync live beside them as they land.

pub mod cox_loss;
pub mod model;
