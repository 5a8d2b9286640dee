//! `cohort synth`: write the synthetic NPC cohort to any store URL.

use std::process::ExitCode;

use anyhow::Context;
use cohort_common::cohort::SplitRule;
use cohort_common::store::Store;
use cohort_common::synth::{self, SynthConfig};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(clap::Args, Debug)]
pub struct SynthArgs {
    /// Number of patients (the study had 1636).
    #[arg(long, default_value_t = 1636)]
    pub patients: usize,
    /// Volume shape in voxels, `DxHxW` (NIfTI i x j x k).
    #[arg(long, default_value = "32x32x32")]
    pub shape: String,
    /// MRI sequences, one volume per patient each.
    #[arg(long, value_delimiter = ',', default_value = "t1,t2,t1c")]
    pub sequences: Vec<String>,
    /// Seed: the same seed writes byte-identical files.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Where to write: a folder or a store URL (file://, s3://, gs://, az://, memory://).
    #[arg(long, default_value = "./cohort-data")]
    pub out: String,
    /// The windows diagnosis dates are drawn from (see `cohort validate --help`).
    #[arg(long, default_value_t = SplitRule::study())]
    pub split_rule: SplitRule,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run(args: SynthArgs) -> anyhow::Result<ExitCode> {
    let config = SynthConfig {
        patients: args.patients,
        shape: synth::parse_shape(&args.shape)?,
        sequences: args
            .sequences
            .iter()
            .map(|s| s.trim().to_string())
            .collect(),
        seed: args.seed,
        rule: args.split_rule,
        ..SynthConfig::default()
    };
    let store = Store::open(&args.out).with_context(|| format!("opening {}", args.out))?;
    let bar = if args.quiet || args.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(config.patients as u64)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:40}] {pos}/{len} patients ({per_sec}, eta {eta})",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar.set_message(format!("writing {}", store.url()));
    let started = std::time::Instant::now();
    let runtime = tokio::runtime::Runtime::new()?;
    let summary = runtime.block_on(synth::write_cohort(&store, &config, &|n| bar.inc(n)))?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        let mut value = serde_json::to_value(&summary)?;
        value["url"] = store.url().into();
        value["seconds"] = seconds.into();
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!(
            "wrote {} patients ({} development, {} test), {} volumes, {:.1} MB to {} in {:.1} s",
            summary.patients,
            summary.development,
            summary.test,
            summary.volumes,
            summary.bytes_written as f64 / 1e6,
            store.url(),
            seconds
        );
        println!(
            "DFS events: {} ({:.1}%), DMFS events: {} ({:.1}%)",
            summary.dfs_events,
            100.0 * summary.dfs_events as f64 / summary.patients as f64,
            summary.dmfs_events,
            100.0 * summary.dmfs_events as f64 / summary.patients as f64
        );
    }
    Ok(ExitCode::SUCCESS)
}
