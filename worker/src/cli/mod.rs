//! The subcommands of `cohort-worker`, one module each, and the arguments they share.
//!
//! Each module defines its clap `Args` and a `run` function returning `anyhow::Result`;
//! [`run`] dispatches. To add a subcommand (e.g. `train-local`), add `cli/<name>.rs` with
//! the same shape, a `mod` line and a [`Command`] variant; [`DeviceArgs`] gives it
//! `--backend`/`--device` with the same parsing and errors as `predict`.

mod model;
mod predict;
mod serve;
pub mod train_local;

use clap::{Args, Parser, Subcommand};

use cohort_worker::backend::{Backend, DeviceKind, DeviceSpec};

/// Cohort's worker: trains and scores 3D DenseNet survival models.
#[derive(Parser, Debug)]
#[command(name = "cohort-worker", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Without a subcommand: run as a distributed worker.
    #[command(flatten)]
    serve: serve::ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Inspect and import models: `model summary`, `model import`.
    Model(model::ModelArgs),
    /// Score volumes or a tensor batch with a Cohort model (eval mode).
    Predict(predict::PredictArgs),
    /// Train one model in this process (no coordinator): checkpoints, the best and last
    /// models and the cohort's risk scores go to the job's artifacts folder.
    TrainLocal(train_local::TrainLocalArgs),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::Model(args)) => model::run(args),
        Some(Command::Predict(args)) => predict::run(args),
        Some(Command::TrainLocal(args)) => train_local::run(args),
        None => serve::run(cli.serve),
    }
}

/// `--backend` and `--device`, for every subcommand that computes.
#[derive(Args, Debug, Clone)]
pub struct DeviceArgs {
    /// Where to compute: `cpu`, or `cuda:N` (a GPU; needs the tch backend).
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    pub device: DeviceKind,
    /// burn backend: `flex` (pure Rust, CPU) or `tch` (libtorch; a binary built with
    /// `--features cohort-worker/tch`). Default: flex on the CPU, tch on a GPU.
    #[arg(long, value_parser = parse_backend)]
    pub backend: Option<Backend>,
}

impl DeviceArgs {
    /// The checked backend and device.
    pub fn spec(&self) -> anyhow::Result<DeviceSpec> {
        Ok(DeviceSpec::new(self.backend, self.device)?)
    }
}

fn parse_device(s: &str) -> Result<DeviceKind, String> {
    s.parse()
        .map_err(|e: cohort_worker::backend::BackendError| e.to_string())
}

fn parse_backend(s: &str) -> Result<Backend, String> {
    s.parse()
        .map_err(|e: cohort_worker::backend::BackendError| e.to_string())
}

/// Prints `value` as one pretty JSON document on stdout. A reader that stops early
/// (`| head`) is not an error: it has what it wanted.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    use std::io::Write;
    let text = serde_json::to_string_pretty(value)?;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
