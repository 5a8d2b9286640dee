//! `cohort submit JOB.toml --coordinator URL [--set k=v]...`: hands a job to a
//! coordinator and prints its id.

use std::path::PathBuf;
use std::process::ExitCode;

use cohort_proto::v1;

use super::remote::{ConnectArgs, connect, prepare_spec};

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
        let response = jobs
            .submit_job(v1::SubmitJobRequest {
                spec_toml,
                overrides: vec![],
            })
            .await
            .map_err(|s| anyhow::anyhow!("submitting: {}", s.message()))?
            .into_inner();
        tracing::info!(trials = response.trials, "job submitted");
        println!("{}", response.job_id);
        Ok(ExitCode::SUCCESS)
    })
}
