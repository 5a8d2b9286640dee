//! `cohort-worker`: the data plane of Cohort.
//!
//! A worker trains 3D DenseNet survival models on its shard of a cohort and
//! syncs gradients with its group. This binary only describes itself for now;
//! the model, the training loop and the gradient sync land with their issues.

use clap::Parser;

/// Cohort's worker: trains and scores 3D DenseNet survival models.
#[derive(Parser, Debug)]
#[command(name = "cohort-worker", version, about, long_about = None)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let _cli = Cli::parse();
    tracing::info!("cohort-worker has no commands yet; see --help");
    Ok(())
}
