//! `cohort-worker predict`: eval-mode risk scores of a Cohort model for NIfTI volumes (one
//! file per channel, one patient) or a safetensors batch, on the chosen backend and device.
//! The reading and checking of inputs is [`cohort_worker::input`]'s; this is the command
//! line around it.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use cohort_worker::{input, model};

use super::{DeviceArgs, print_json};

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// A Cohort model directory (`model import` writes one).
    #[arg(long, value_name = "MODEL_DIR")]
    model: PathBuf,
    /// Input: one NIfTI volume per channel (repeat in channel order), or one
    /// `.safetensors` file holding a batch x channels x D x H x W tensor.
    #[arg(long, value_name = "FILE", required = true)]
    input: Vec<PathBuf>,
    /// The tensor of a safetensors input (default: its only tensor).
    #[arg(long, value_name = "NAME")]
    tensor: Option<String>,
    #[command(flatten)]
    device: DeviceArgs,
    /// Samples per forward pass (eval mode: scores do not depend on it).
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Print `{"scores": [...]}` instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Scores {
    scores: Vec<f32>,
}

/// Runs `predict`.
pub fn run(args: PredictArgs) -> anyhow::Result<()> {
    let spec = args.device.spec()?;
    let device = spec.device()?;
    let batch = input::read_input(&args.input, args.tensor.as_deref())?;
    let (net, cfg) = model::load_model(&args.model, &device)
        .with_context(|| format!("loading the model {}", args.model.display()))?;
    tracing::info!(shape = ?batch.shape, %spec, "scoring");
    let scores = input::score(&net, &cfg, &batch, &device, args.batch_size)?;
    if args.json {
        print_json(&Scores { scores })
    } else {
        println!("{:>6}  {:>12}", "sample", "score");
        for (i, s) in scores.iter().enumerate() {
            println!("{i:>6}  {s:>12.6}");
        }
        Ok(())
    }
}
