//! `cohort-worker train-local JOB.toml`: one trial, in this process, as a group of one.
//!
//! For debugging, benchmarks and laptops: the same trial code a distributed
//! worker runs (`train::run_trial`), without a coordinator. It writes
//! checkpoints, the best and last models, `scores.csv` and `trial.json` to
//! `<artifacts.url>/<name>/trial-0000/`, and resumes from the newest
//! checkpoint there when started again.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use cohort_common::cohort::Split;
use cohort_common::spec::JobSpec;
use cohort_common::store::Store;
use cohort_worker::collective::LocalCollective;
use cohort_worker::data::VolumeCache;
use cohort_worker::train::{
    EpochRecord, EpochTiming, Resources, StepOutcome, TrialEnd, TrialObserver, open_trial,
    run_trial,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Arguments of `train-local`.
#[derive(clap::Args, Debug)]
pub struct TrainLocalArgs {
    /// The job file (TOML).
    pub job: PathBuf,
    /// Override a job setting, `section.key=value` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Where preprocessed volumes are cached (content-addressed; safe to share between jobs).
    #[arg(long, env = "COHORT_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Do not cache preprocessed volumes.
    #[arg(long)]
    pub no_cache: bool,
    /// Patients decoded ahead of the training step.
    #[arg(long, default_value_t = 32)]
    pub prefetch: usize,
    /// Volumes per forward pass when scoring.
    #[arg(long, default_value_t = 16)]
    pub eval_batch_size: usize,
    /// Checkpoint and exit after this many optimizer steps in total (for time-sliced
    /// runs); starting again resumes.
    #[arg(long)]
    pub stop_after_steps: Option<u64>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub device: super::DeviceArgs,
}

pub fn default_cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("cohort")
        .join("volumes")
}

/// Runs the command.
pub fn run(args: TrainLocalArgs) -> anyhow::Result<()> {
    let device = args.device.spec()?.device()?;
    let text = std::fs::read_to_string(&args.job)
        .with_context(|| format!("reading {}", args.job.display()))?;
    let spec = JobSpec::parse(&text, &args.job.display().to_string(), &args.set)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let handle = runtime.handle().clone();

    let cache = if args.no_cache {
        None
    } else {
        let dir = args.cache_dir.clone().unwrap_or_else(default_cache_dir);
        Some(VolumeCache::open(&dir).with_context(|| format!("cache {}", dir.display()))?)
    };
    let resources = Resources {
        device,
        cache,
        prefetch_depth: args.prefetch,
        eval_batch_size: args.eval_batch_size,
    };
    let trial = Store::open(&spec.artifacts.url)
        .with_context(|| format!("artifacts.url = {:?}", spec.artifacts.url))?
        .child(&format!("{}/trial-0000", spec.name))
        .context("name: must be usable as a folder name")?;
    let inputs = handle.block_on(open_trial(spec, trial, &resources))?;
    tracing::info!(
        trial = inputs.trial.url(),
        patients = inputs.manifest.patients.len(),
        train = inputs.splits.count(Split::Train),
        validation = inputs.splits.count(Split::Validation),
        params = inputs.plan.model.expected_num_params(),
        "training locally"
    );
    let mut observer = Bars::new(args.quiet, args.stop_after_steps);
    let started = Instant::now();
    let end = run_trial(&inputs, &mut LocalCollective::new(), &mut observer, &handle)?;
    observer.bar.finish_and_clear();
    match end {
        TrialEnd::Finished(summary) => {
            let best = summary
                .best_val_cindex
                .map_or("none".to_string(), |c| format!("{c:.4}"));
            println!(
                "trial finished: {} steps, best validation C-index {best} (epoch {}), {:.1} s\nscores: {}\nmodel:  {}",
                summary.steps,
                summary
                    .best_epoch
                    .map_or("-".to_string(), |e| e.to_string()),
                started.elapsed().as_secs_f64(),
                summary.scores_url,
                summary.model_url,
            );
        }
        TrialEnd::Interrupted { step } => println!("trial interrupted after step {step}"),
    }
    Ok(())
}

/// Progress bar over the trial's steps; epoch metrics as log lines above it.
struct Bars {
    bar: ProgressBar,
    epoch_started: Instant,
    stop_after_steps: Option<u64>,
    steps: u64,
}

impl Bars {
    fn new(quiet: bool, stop_after_steps: Option<u64>) -> Self {
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps  {msg}",
                )
                .expect("valid template"),
            );
            b.enable_steady_tick(Duration::from_millis(250));
            b
        };
        Bars {
            bar,
            epoch_started: Instant::now(),
            stop_after_steps,
            steps: 0,
        }
    }
}

impl TrialObserver for Bars {
    fn started(&mut self, total_steps: u64, resumed_at: Option<u64>) {
        self.bar.set_length(total_steps);
        self.steps = resumed_at.unwrap_or(0);
        if let Some(step) = resumed_at {
            self.bar.set_position(step);
            tracing::info!(step, "resumed from the latest checkpoint");
        }
        self.epoch_started = Instant::now();
    }

    fn step(&mut self, step: u64, epoch: u64, outcome: &StepOutcome, lr: f64) {
        self.steps = step;
        self.bar.set_position(step);
        self.bar.set_message(format!(
            "epoch {epoch}  loss {:.4}  lr {lr:.2e}",
            outcome.loss
        ));
    }

    fn epoch(&mut self, record: &EpochRecord, _timing: &EpochTiming) {
        let line = format!(
            "epoch {:>3}  train loss {:.4}  validation C {:.4}  lr {:.2e}  {:.1} s",
            record.epoch,
            record.train_loss,
            record.val_cindex,
            record.lr,
            self.epoch_started.elapsed().as_secs_f64()
        );
        self.bar.suspend(|| tracing::info!("{line}"));
        self.epoch_started = Instant::now();
    }

    fn scoring(&mut self, done: usize, total: usize) {
        self.bar.set_message(format!("scoring {done}/{total}"));
    }

    fn should_stop(&self) -> bool {
        self.stop_after_steps.is_some_and(|n| self.steps >= n)
    }
}
