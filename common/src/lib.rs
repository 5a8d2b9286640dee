//! Cohort's shared library.
//!
//! Everything both the coordinator and the workers need, and nothing that
//! pulls in a deep-learning framework, so the control plane builds fast and the
//! statistics can be used on their own:
//!
//! - [`store`]: object-store URLs (`file://`, plain paths, `s3://`, `gs://`,
//!   `az://`, `memory://`), whole-object and byte-range reads, atomic writes.
//! - [`cohort`]: the clinical manifest (`clinical.csv`), its validation and the
//!   study's train / validation / temporal-test split.
//! - [`nifti`]: a NIfTI-1/2 reader and writer that refuses hostile files.
//! - [`preprocess`]: resampling, crop/pad, z-scoring and channel stacking.
//! - [`synth`]: the synthetic NPC cohort with a known ground truth.
//! - [`survival`]: the survival-analysis engine (Cox, Kaplan-Meier, log-rank,
//!   concordance, cut-offs, nomograms), checked against R's `survival`.
//! - [`spec`]: job specs (TOML) with `--set` overrides and field-naming errors.
//! - [`rng`]: the one seeded random generator every deterministic step uses.

pub mod cohort;
pub mod nifti;
pub mod plot;
pub mod preprocess;
pub mod rng;
pub mod spec;
pub mod store;
pub mod survival;
pub mod synth;
