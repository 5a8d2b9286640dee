//! The survival-analysis engine, checked against R's `survival` package.
//!
//! Every statistic of the study lives here, in pure Rust with no
//! deep-learning dependency, so the coordinator can run it centrally and the
//! `cohort stats` commands can use it on any CSV table. R (survival 3.5) is
//! the reference: each module states the R call it reproduces and the
//! conventions it shares with it, and `common/tests/survival_*.rs` check the
//! numbers against values R computed.
//!
//! - [`dist`]: normal and chi-square distribution functions with log-p
//!   versions (p-values on 100,000 rows underflow; their logs do not).
//! - [`data`]: validated inputs, [`SurvData`] (time, event) and [`Design`]
//!   (the covariate matrix).
//! - [`cox`]: Cox proportional hazards (`coxph`), Efron and Breslow ties,
//!   strata, weights, the three global tests, baseline hazard and S(t | x).
//! - [`km`]: Kaplan-Meier (`survfit`) with Greenwood SE, log-scale CI and
//!   R's quantile (median) rules.
//! - [`logrank`]: the k-group and stratified log-rank test (`survdiff`).
//! - [`concordance`]: Harrell's C (`concordance`) with R's infinitesimal
//!   jackknife SE and a seeded bootstrap CI, in O(n log n).
//! - [`subgroup`]: hazard ratios of a binary factor within the levels of
//!   another, with the interaction test.
//! - [`nomogram`] and [`calibration`]: points, total points and t-year
//!   survival from a fitted Cox model; predicted against observed survival.
//! - [`table`]: reading a CSV table into these types, with errors that name
//!   the file, line and column (shared by the `cohort stats` subcommands).
//!
//! Shared conventions (R's): a censoring at time t is in the risk set at t;
//! events at t are processed before censorings at t; p-values are upper
//! tails; confidence intervals are 95% unless asked otherwise.

pub mod calibration;
pub mod concordance;
pub mod cox;
pub mod data;
pub mod dist;
mod error;
pub mod km;
mod linalg;
pub mod logrank;
pub mod nomogram;
mod riskset;
mod sort;
pub mod subgroup;
pub mod table;

pub use data::{Design, SurvData};
pub use error::SurvivalError;
pub mod auc;
pub mod cutoff;
