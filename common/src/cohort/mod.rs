//! A cohort: the clinical manifest, its validation and its split.
//!
//! A cohort is a folder (on any [`Store`](crate::store::Store)) holding
//! `clinical.csv` and the MRI volumes it names. The manifest has one row per
//! patient:
//!
//! | column | meaning |
//! |---|---|
//! | `patient_id` | unique, non-empty |
//! | `diagnosis_date` | ISO date `YYYY-MM-DD`; drives the temporal split |
//! | `mri_<sequence>` | one column per MRI sequence (`mri_t1`, `mri_t2`, ...): the volume's path relative to the cohort root |
//! | `dfs_months`, `dfs_event` | disease-free survival: follow-up in months (finite, >= 0) and 1 = event, 0 = censored |
//! | `dmfs_months`, `dmfs_event` | distant-metastasis-free survival, likewise |
//! | `age`, `sex`, `t_stage`, `n_stage`, `ebv_dna`, `concurrent_chemo` | the study's clinical covariates |
//! | anything else | kept as a named covariate |
//!
//! Validation never stops at the first problem: [`manifest::parse`] and
//! [`validate::check_volumes`] collect every problem (up to a limit), each
//! naming its row and column, so that a user fixes a broken manifest in one
//! pass instead of one error per run.
//!
//! The split ([`split`]) is a pure function of the manifest, the
//! [`SplitRule`](split::SplitRule) and its seed: it does not depend on row order.

pub mod manifest;
pub mod split;
pub mod summary;
pub mod validate;

pub use manifest::{Covariate, Endpoint, Manifest, Patient, parse};
pub use split::{Split, SplitAssignment, SplitRule};
pub use validate::{Problem, Problems, Severity};

/// The manifest's file name inside a cohort root.
pub const MANIFEST_FILE: &str = "clinical.csv";
