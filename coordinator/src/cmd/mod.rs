//! One module per `cohort` subcommand. Each exposes its `clap` arguments and a
//! `run` function returning the process exit code.

pub mod coordinator;
pub mod remote;
pub mod report;
pub mod run;
pub mod stats;
pub mod submit;
pub mod synth;
pub mod validate;
pub mod volume;
pub mod watch;
