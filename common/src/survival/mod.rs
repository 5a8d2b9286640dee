//! The survival-analysis engine, checked against R's `survival` package.
//!
//! Every statistic of the study lives here, in pure Rust with no
//! deep-learning dependency, so the coordinator can run it centrally and the
//! `cohort stats` commands can use it on any CSV table.
//!
//! - [`dist`]: normal and chi-square distribution functions with log-p
//!   versions (p-values on 100,000 rows underflow; their logs do not).
pub mod dist;
