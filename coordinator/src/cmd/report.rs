//! `cohort report JOB --coordinator URL`: prints the job's report.json.

use std::process::ExitCode;

use cohort_proto::v1;

use super::remote::{ConnectArgs, connect};

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// The job id.
    pub job: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let mut jobs = connect(&args.connect).await?;
        let report = jobs
            .get_report(v1::GetReportRequest {
                job_id: args.job.clone(),
            })
            .await
            .map_err(|s| anyhow::anyhow!("job {}: {}", args.job, s.message()))?
            .into_inner();
        println!("{}", report.report_json);
        Ok(ExitCode::SUCCESS)
    })
}
