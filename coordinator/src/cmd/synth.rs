//! `cohort synth` (in progress).

use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct SynthArgs {}

pub fn run(_args: SynthArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`cohort synth` is not implemented yet")
}
