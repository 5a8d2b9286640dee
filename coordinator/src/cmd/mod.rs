//! One module per `cohort` subcommand. Each exposes its `clap` arguments and a
//! `run` function returning the process exit code.

pub mod stats;
pub mod synth;
pub mod validate;
pub mod volume;
