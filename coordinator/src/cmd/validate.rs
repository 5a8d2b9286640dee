//! `cohort validate` (in progress).

use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct ValidateArgs {}

pub fn run(_args: ValidateArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`cohort validate` is not implemented yet")
}
