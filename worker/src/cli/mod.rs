//! The subcommands of `cohort-worker`, one module each.

pub mod train_local;
