//! `cohort volume` (in progress).

use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum VolumeCommand {
    /// Header and value summary of a NIfTI volume.
    Info {},
}

pub fn run(_command: VolumeCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`cohort volume` is not implemented yet")
}
