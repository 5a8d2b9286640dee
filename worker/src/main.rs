//! `cohort-worker`: the data plane of Cohort.
//!
//! A worker trains 3D DenseNet survival models on its shard of a cohort and
//! syncs gradients with its group.

mod cli;

use burn::tensor::Device;
use clap::{Parser, Subcommand};

/// Cohort's worker: trains and scores 3D DenseNet survival models.
#[derive(Parser, Debug)]
#[command(name = "cohort-worker", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train one model in this process (no coordinator), checkpointing and scoring the cohort.
    TrainLocal(cli::train_local::TrainLocalArgs),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::TrainLocal(args) => cli::train_local::run(args, Device::flex()),
    }
}
