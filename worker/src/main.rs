//! `cohort-worker`: the data plane of Cohort.
//!
//! Without a subcommand it is a distributed worker (`--coordinator URL --listen ADDR`):
//! it registers with the coordinator, trains the trials it is assigned as one rank of a
//! group, and serves the gradient ring for its neighbours. Subcommands run single-process
//! tools (`train-local`).

mod cli;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use burn::tensor::Device;
use clap::{Parser, Subcommand};
use cohort_proto::auth::{ClientTls, Token};
use cohort_worker::agent::{AgentConfig, run_agent};
use cohort_worker::data::VolumeCache;
use cohort_worker::train::Resources;

/// Cohort's worker: trains and scores 3D DenseNet survival models.
#[derive(Parser, Debug)]
#[command(name = "cohort-worker", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// The coordinator to serve (`http://host:port`); runs this process as a worker.
    #[arg(long, env = "COHORT_COORDINATOR")]
    coordinator: Option<String>,
    /// Where this worker's collective service listens for its ring neighbours.
    #[arg(long, default_value = "0.0.0.0:7070")]
    listen: SocketAddr,
    /// The address peers use to reach `--listen` (default: the bound address).
    #[arg(long, env = "COHORT_ADVERTISE")]
    advertise: Option<String>,
    /// This worker's id (default: host name and process id).
    #[arg(long, env = "COHORT_WORKER_ID")]
    worker_id: Option<String>,
    /// The bearer token's file (else COHORT_TOKEN_FILE or COHORT_TOKEN).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Where preprocessed volumes are cached.
    #[arg(long, env = "COHORT_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Patients decoded ahead of the training step.
    #[arg(long, default_value_t = 32)]
    prefetch: usize,
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
    let cli = Cli::parse();
    match cli.command {
        Some(Command::TrainLocal(args)) => cli::train_local::run(args, Device::flex()),
        None => serve(cli),
    }
}

fn serve(cli: Cli) -> anyhow::Result<()> {
    let coordinator = cli
        .coordinator
        .context("--coordinator URL is required (or a subcommand; see --help)")?;
    let token = match &cli.token_file {
        Some(path) => Token::from_file(path)?,
        None => Token::require_env()?,
    };
    let cache = match &cli.cache_dir {
        Some(dir) => Some(VolumeCache::open(dir).with_context(|| format!("cache {}", dir.display()))?),
        None => Some(VolumeCache::open(cli::train_local::default_cache_dir())?),
    };
    let worker_id = cli.worker_id.unwrap_or_else(|| {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".into());
        format!("{host}-{}", std::process::id())
    });
    let config = AgentConfig {
        coordinator,
        listen: cli.listen,
        advertise: cli.advertise,
        worker_id,
        token,
        tls: ClientTls::from_env()?,
        resources: Resources {
            device: Device::flex(),
            cache,
            prefetch_depth: cli.prefetch,
            eval_batch_size: 16,
        },
        device_name: "cpu".into(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run_agent(config))?;
    Ok(())
}
