//! `cohort submit JOB.toml --coordinator URL [--set k=v]...`: hands a job to a
//! coordinator and prints its id.

use std::path::PathBuf;
use std::process::ExitCode;

use super::remote::{ConnectArgs, connect, prepare_spec, submit_spec};

#[derive(clap::Args, Debug)]
pub struct SubmitArgs {
    /// The job file (TOML).
    pub job: PathBuf,
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Override a setting, `section.key=value` (repeatable), applied before validation.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

pub fn run(args: SubmitArgs) -> anyhow::Result<ExitCode> {
    let (_, spec_toml) = prepare_spec(&args.job, &args.sets)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let mut jobs = connect(&args.connect).await?;
        let response = submit_spec(&mut jobs, spec_toml).await?;
        tracing::info!(trials = response.trials, "job submitted");
        println!("{}", response.job_id);
        Ok(ExitCode::SUCCESS)
    })
}
