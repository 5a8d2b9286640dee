//! `cohort watch JOB --coordinator URL`: prints a job's events line by line
//! until it ends; exits 0 only if it succeeded.

use std::process::ExitCode;

use cohort_proto::v1;

use super::remote::{ConnectArgs, connect, print_events};

#[derive(clap::Args, Debug)]
pub struct WatchArgs {
    /// The job id (as `cohort submit` printed it).
    pub job: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub fn run(args: WatchArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let mut jobs = connect(&args.connect).await?;
        let state = print_events(&mut jobs, &args.job).await?;
        Ok(exit_code(state))
    })
}

/// 0 for a succeeded job, 1 otherwise.
pub fn exit_code(state: v1::JobState) -> ExitCode {
    if state == v1::JobState::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
