//! A whole trial: train one model, validate it every epoch, checkpoint, and
//! score the cohort with the best weights.
//!
//! [`run_trial`] is written for rank `r` of a group of `n` workers (a
//! [`Collective`](crate::collective::Collective)); `cohort-worker train-local` runs it as a group of one, the
//! distributed worker as one rank of its group. Every rank computes the same
//! global batches, the same updates and the same decisions (early stopping
//! included); only rank 0 writes to the artifact store.
//!
//! A trial's folder in the artifact store:
//!
//! ```text
//! checkpoints/...   see [`super::checkpoint`]
//! best/             model.json + weights.bpk of the best validation epoch
//! last/             the weights after the last step
//! scores.csv        patient_id, split, score (best model, eval mode), every patient
//! trial.json        the summary; written last, so its presence means "finished"
//! ```
//!
//! Resuming is implicit: a trial whose folder holds a checkpoint continues from
//! it, and one that holds `trial.json` is not trained again. Because every
//! random stream is derived from the seed and the position, a resumed trial
//! ends with exactly the weights an uninterrupted one would have.

use std::sync::Arc;
use std::time::{Duration, Instant};

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{AdamConfig, AdamWConfig, ModuleOptimizer, decay::WeightDecayConfig};
use burn::tensor::{Device, Tensor};
use cohort_common::cohort::{Endpoint, Manifest, Split, SplitAssignment};
use cohort_common::rng::Rng;
use cohort_common::spec::{EndpointName, JobSpec};
use cohort_common::store::{Store, StoreError};
use cohort_common::survival::concordance::concordance;
use cohort_common::survival::data::SurvData;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::augment::{augment, sample_rng};
use super::checkpoint::{self, Checkpoint, CheckpointError, EpochRecord, TrainState};
use super::plan::{OptimizerKind, TrialPlan};
use super::sampler::{Sampler, SamplerError, SamplerPosition};
use super::schedule::{EarlyStopping, Verdict, WarmupCosine};
use super::step::{StepBatch, StepError, StepOutcome, train_step};
use crate::collective::{Collective, CollectiveError};
use crate::data::{DataError, VolumeSource, prefetch};
use crate::model::file::{CONFIG_FILE, WEIGHTS_FILE, weights_from_bytes, weights_to_bytes};
use crate::model::{ConfigError, DenseNet3d, ModelFileError};
use crate::score::{score_patients, scores_csv};

/// Why a trial failed.
#[derive(Debug, thiserror::Error)]
pub enum TrialError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Step(#[from] StepError),
    #[error("gradient sync: {0}")]
    Sync(#[from] CollectiveError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Model(#[from] ModelFileError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("training cohort: {0}")]
    Sampler(#[from] SamplerError),
    #[error("{url}: {message}")]
    Corrupt { url: String, message: String },
}

/// What a trial needs besides its group.
pub struct TrialInputs {
    /// The effective job spec (overrides applied).
    pub spec: JobSpec,
    pub plan: TrialPlan,
    pub manifest: Arc<Manifest>,
    pub splits: SplitAssignment,
    pub source: Arc<VolumeSource>,
    /// The trial's folder in the artifact store.
    pub trial: Store,
    /// The plain (non-autodiff) device of the chosen backend.
    pub device: Device,
    /// Patients loaded ahead of the step.
    pub prefetch_depth: usize,
    /// Volumes per forward pass when scoring.
    pub eval_batch_size: usize,
}

/// The summary of a finished trial (`trial.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrialSummary {
    pub fingerprint: String,
    pub steps: u64,
    pub best_epoch: Option<u64>,
    pub best_val_cindex: Option<f64>,
    pub history: Vec<EpochRecord>,
    /// URL of `scores.csv`.
    pub scores_url: String,
    /// URL of the model directory the scores come from (`best/`, or `last/` when no epoch
    /// had a usable validation C-index).
    pub model_url: String,
}

/// How [`run_trial`] ended.
#[derive(Clone, Debug, PartialEq)]
pub enum TrialEnd {
    Finished(TrialSummary),
    /// [`TrialObserver::should_stop`] asked to stop; a checkpoint at `step` was written.
    Interrupted {
        step: u64,
    },
}

/// Where an epoch's training time went on this rank: the steps' wall time
/// (forward, backward, gradient sync, optimizer; not waiting for data), and
/// the part of it inside collectives. Measured, never persisted: a resumed
/// epoch counts only the steps since the resume.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct EpochTiming {
    pub steps: u64,
    pub step_time: Duration,
    pub sync_time: Duration,
}

impl EpochTiming {
    fn add(&mut self, step_time: Duration, sync_time: Duration) {
        self.steps += 1;
        self.step_time += step_time;
        self.sync_time += sync_time;
    }

    /// Mean seconds per step (0 without steps).
    pub fn seconds_per_step(&self) -> f64 {
        self.step_time.as_secs_f64() / self.steps.max(1) as f64
    }

    /// Mean seconds per step spent in collectives.
    pub fn sync_seconds_per_step(&self) -> f64 {
        self.sync_time.as_secs_f64() / self.steps.max(1) as f64
    }
}

/// Progress callbacks (progress bars, heartbeats) and the stop request.
pub trait TrialObserver {
    /// Training starts (or resumes after `resumed_at` steps) toward `total_steps`.
    fn started(&mut self, _total_steps: u64, _resumed_at: Option<u64>) {}
    /// A step finished.
    fn step(&mut self, _step: u64, _epoch: u64, _outcome: &StepOutcome, _lr: f64) {}
    /// An epoch finished and was validated; `timing` covers its steps on this rank.
    fn epoch(&mut self, _record: &EpochRecord, _timing: &EpochTiming) {}
    /// A checkpoint was written.
    fn checkpoint(&mut self, _step: u64, _url: &str) {}
    /// Scoring progress: `done` of `total` patients (this rank's share).
    fn scoring(&mut self, _done: usize, _total: usize) {}
    /// Polled between steps; `true` makes the trial checkpoint and return.
    fn should_stop(&self) -> bool {
        false
    }
}

/// An observer that observes nothing.
pub struct Quiet;
impl TrialObserver for Quiet {}

/// The settings that identify a trial: a checkpoint is only resumed by the same ones.
pub fn fingerprint(spec: &JobSpec) -> String {
    let identity =
        serde_json::to_vec(&(&spec.cohort, &spec.preprocess, &spec.model, &spec.training))
            .expect("spec sections serialise");
    let digest = Sha256::digest(&identity);
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The contiguous share of `n` items of rank `rank` in `world` (sizes differ by at most one).
pub fn shard_range(n: usize, rank: usize, world: usize) -> std::ops::Range<usize> {
    rank * n / world..(rank + 1) * n / world
}

/// Runs (or resumes, or merely reports) the trial in `inputs.trial`.
pub fn run_trial(
    inputs: &TrialInputs,
    sync: &mut dyn Collective,
    observer: &mut dyn TrialObserver,
    runtime: &tokio::runtime::Handle,
) -> Result<TrialEnd, TrialError> {
    let fp = fingerprint(&inputs.spec);
    if let Some(done) = finished_summary(inputs, runtime)? {
        return Ok(TrialEnd::Finished(done));
    }
    let plan = &inputs.plan;
    let train = Trainer::new(inputs)?;
    let ad = inputs.device.clone().autodiff();

    inputs
        .device
        .seed(Rng::derive(plan.seed, "model-init").next_u64());
    let mut model = DenseNet3d::new(&plan.model, &ad)?;
    initialise_now(&model);
    let mut optimizer = new_optimizer(plan);
    let mut best: Option<Vec<u8>> = None;

    let mut state = match runtime.block_on(checkpoint::load_latest(&inputs.trial, &fp))? {
        Some(c) => {
            let url = inputs.trial.url_of("checkpoints/latest.json");
            weights_from_bytes(&mut model, c.model, &url)?;
            optimizer = optimizer
                .from_bytes(burn::tensor::Bytes::from_bytes_vec(c.optimizer))
                .map_err(|e| TrialError::Corrupt {
                    url: url.clone(),
                    message: format!("optimizer state: {e}"),
                })?;
            if c.state.early_stopping.best.is_some() {
                let rel = format!("best/{WEIGHTS_FILE}");
                best = Some(runtime.block_on(inputs.trial.get(&rel))?.to_vec());
            }
            c.state
        }
        None => TrainState {
            fingerprint: fp.clone(),
            step: 0,
            position: SamplerPosition::default(),
            epoch_loss_sum: 0.0,
            epoch_steps: 0,
            // Patience 0 means "never stop early", not "stop at the first flat epoch".
            early_stopping: EarlyStopping::new(
                if plan.patience == 0 {
                    u32::MAX
                } else {
                    plan.patience
                },
                0.0,
            ),
            history: Vec::new(),
            training_done: false,
        },
    };
    let total_steps = plan.epochs * train.batches_per_epoch as u64;
    observer.started(total_steps, (state.step > 0).then_some(state.step));

    while !state.training_done {
        let epoch = state.position.epoch;
        if epoch >= plan.epochs {
            state.training_done = true;
            break;
        }
        let batches = train.sampler.epoch(epoch);
        let remaining = &batches[state.position.batch.min(batches.len())..];
        let order: Vec<usize> = remaining
            .iter()
            .flat_map(|b| b.shard(sync.rank(), sync.world()).to_vec())
            .map(|member| train.pool[member])
            .collect();
        let mut loads = prefetch(inputs.source.clone(), order, inputs.prefetch_depth);
        let mut timing = EpochTiming::default();
        for batch in remaining {
            let lr = train.schedule.at(state.step);
            let members = batch.shard(sync.rank(), sync.world());
            let mut samples = Vec::new();
            let mut sample_shape = [0; 4];
            for &member in members {
                let (_, loaded) = loads.next().ok_or_else(|| DataError::Task {
                    patient_id: "(training)".into(),
                    message: "the prefetch thread ended early".into(),
                })?;
                let mut stacked = loaded?;
                let mut rng = sample_rng(plan.seed, epoch, train.pool.len(), member);
                augment(&mut stacked.data, stacked.shape, &plan.augment, &mut rng);
                sample_shape = stacked.shape;
                samples.extend_from_slice(&stacked.data);
            }
            let time: Vec<f64> = batch.members.iter().map(|&m| train.time[m]).collect();
            let event: Vec<bool> = batch.members.iter().map(|&m| train.event[m]).collect();
            let shard_sizes: Vec<usize> = (0..sync.world())
                .map(|r| batch.shard(r, sync.world()).len())
                .collect();
            inputs.device.seed(
                Rng::derive_indexed(
                    plan.seed,
                    "dropout",
                    state.step * sync.world() as u64 + sync.rank() as u64,
                )
                .next_u64(),
            );
            let step_started = Instant::now();
            let (next, outcome) = train_step(
                model,
                &mut optimizer,
                lr,
                StepBatch {
                    time: &time,
                    event: &event,
                    shard_sizes: &shard_sizes,
                    inputs: samples,
                    sample_shape,
                },
                plan.ties,
                sync,
                &ad,
            )?;
            model = next;
            timing.add(step_started.elapsed(), outcome.sync);
            state.step += 1;
            state.position = SamplerPosition {
                epoch,
                batch: batch.index + 1,
            };
            state.epoch_loss_sum += outcome.loss;
            state.epoch_steps += 1;
            observer.step(state.step, epoch, &outcome, lr);
            let periodic = plan.checkpoint_every_steps > 0
                && state.step % plan.checkpoint_every_steps == 0
                && batch.index + 1 < batches.len();
            let stop = observer.should_stop();
            if periodic || stop {
                save_checkpoint(inputs, sync, observer, runtime, &model, &optimizer, &state)?;
            }
            if stop {
                return Ok(TrialEnd::Interrupted { step: state.step });
            }
        }
        drop(loads);

        let val_cindex = train.validate(inputs, sync, &model, observer)?;
        let record = EpochRecord {
            epoch,
            train_loss: state.epoch_loss_sum / state.epoch_steps.max(1) as f64,
            val_cindex,
            lr: train.schedule.at(state.step.saturating_sub(1)),
            steps: state.step,
        };
        observer.epoch(&record, &timing);
        state.history.push(record);
        state.epoch_loss_sum = 0.0;
        state.epoch_steps = 0;
        state.position = SamplerPosition {
            epoch: epoch + 1,
            batch: 0,
        };
        let verdict = state.early_stopping.observe(epoch, val_cindex);
        if verdict == Verdict::Improved {
            let bytes = weights_to_bytes(&model)?;
            if sync.rank() == 0 {
                put_model_dir(inputs, runtime, "best", &bytes)?;
            }
            best = Some(bytes);
        }
        if verdict == Verdict::Stop || epoch + 1 >= plan.epochs {
            state.training_done = true;
        }
        save_checkpoint(inputs, sync, observer, runtime, &model, &optimizer, &state)?;
    }

    let last = weights_to_bytes(&model)?;
    let (scoring_bytes, model_dir) = match best {
        Some(b) => (b, "best"),
        None => (last.clone(), "last"),
    };
    let mut scorer = DenseNet3d::new(&plan.model, &inputs.device)?;
    weights_from_bytes(&mut scorer, scoring_bytes, model_dir)?;
    let all: Vec<usize> = (0..inputs.manifest.patients.len()).collect();
    let scores = train.score_sharded(inputs, sync, &scorer, &all, observer)?;
    let summary = TrialSummary {
        fingerprint: fp,
        steps: state.step,
        best_epoch: state.early_stopping.best_epoch,
        best_val_cindex: state.early_stopping.best,
        history: state.history.clone(),
        scores_url: inputs.trial.url_of("scores.csv"),
        model_url: inputs.trial.url_of(model_dir),
    };
    if sync.rank() == 0 {
        put_model_dir(inputs, runtime, "last", &last)?;
        let scores: Vec<Option<f64>> = scores.into_iter().map(Some).collect();
        let csv = scores_csv(&inputs.manifest, &inputs.splits, &scores);
        runtime.block_on(inputs.trial.put("scores.csv", csv.into_bytes()))?;
        let json = serde_json::to_vec_pretty(&summary).expect("summary serialises");
        runtime.block_on(inputs.trial.put("trial.json", json))?;
    }
    Ok(TrialEnd::Finished(summary))
}

/// The summary of a trial that already finished, if its `trial.json` exists.
fn finished_summary(
    inputs: &TrialInputs,
    runtime: &tokio::runtime::Handle,
) -> Result<Option<TrialSummary>, TrialError> {
    match runtime.block_on(inputs.trial.get("trial.json")) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| TrialError::Corrupt {
                url: inputs.trial.url_of("trial.json"),
                message: e.to_string(),
            }),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The training cohort as the sampler sees it, and the schedule over it.
struct Trainer {
    /// Pool member -> manifest index (the training split, in manifest order).
    pool: Vec<usize>,
    time: Vec<f64>,
    event: Vec<bool>,
    sampler: Sampler,
    batches_per_epoch: usize,
    schedule: WarmupCosine,
    validation: Vec<usize>,
}

impl Trainer {
    fn new(inputs: &TrialInputs) -> Result<Trainer, TrialError> {
        let plan = &inputs.plan;
        let pool = inputs.splits.indices(Split::Train);
        let time: Vec<f64> = pool.iter().map(|&i| endpoint(inputs, i).months).collect();
        let event: Vec<bool> = pool.iter().map(|&i| endpoint(inputs, i).event).collect();
        let sampler = Sampler::new(plan.sampler.clone(), event.clone())?;
        let batches_per_epoch = sampler.batches_per_epoch();
        let per_epoch = batches_per_epoch as u64;
        let schedule = WarmupCosine {
            peak: plan.lr,
            floor: plan.min_lr,
            warmup_steps: plan.warmup_epochs * per_epoch,
            total_steps: plan.epochs * per_epoch,
        };
        Ok(Trainer {
            pool,
            time,
            event,
            sampler,
            batches_per_epoch,
            schedule,
            validation: inputs.splits.indices(Split::Validation),
        })
    }

    /// Harrell's C of the validation cohort under the current weights (eval mode).
    fn validate(
        &self,
        inputs: &TrialInputs,
        sync: &mut dyn Collective,
        model: &DenseNet3d,
        observer: &mut dyn TrialObserver,
    ) -> Result<f64, TrialError> {
        if self.validation.is_empty() {
            return Ok(f64::NAN);
        }
        let eval = model.valid();
        let scores = self.score_sharded(inputs, sync, &eval, &self.validation, observer)?;
        let (time, event): (Vec<f64>, Vec<bool>) = self
            .validation
            .iter()
            .map(|&i| {
                let e = endpoint(inputs, i);
                (e.months, e.event)
            })
            .unzip();
        let c = SurvData::new(time, event)
            .ok()
            .and_then(|data| concordance(&data, &scores, None, None).ok())
            .map_or(f64::NAN, |c| c.c);
        Ok(c)
    }

    /// Scores `indices` split over the group; every rank gets every score.
    fn score_sharded(
        &self,
        inputs: &TrialInputs,
        sync: &mut dyn Collective,
        eval: &DenseNet3d,
        indices: &[usize],
        observer: &mut dyn TrialObserver,
    ) -> Result<Vec<f64>, TrialError> {
        let mine = &indices[shard_range(indices.len(), sync.rank(), sync.world())];
        let local = score_patients(
            eval,
            inputs.source.clone(),
            mine,
            inputs.eval_batch_size,
            inputs.prefetch_depth,
            &inputs.device,
            |done| observer.scoring(done, mine.len()),
        )?;
        let local: Vec<f32> = local.into_iter().map(|s| s as f32).collect();
        let gathered = sync.all_gather(&local)?;
        Ok(gathered.into_iter().flatten().map(f64::from).collect())
    }
}

/// Manifest patient `i`'s outcome on the trial's endpoint.
fn endpoint(inputs: &TrialInputs, i: usize) -> Endpoint {
    let p = &inputs.manifest.patients[i];
    match inputs.plan.endpoint {
        EndpointName::Dfs => p.dfs,
        EndpointName::Dmfs => p.dmfs,
    }
}

fn new_optimizer(plan: &TrialPlan) -> ModuleOptimizer {
    // PyTorch's defaults (eps 1e-8), not burn's (1e-5), so hyperparameters carry over.
    match plan.optimizer {
        OptimizerKind::AdamW => AdamWConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(plan.weight_decay as f32)
            .init(),
        OptimizerKind::Adam => AdamConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(
                (plan.weight_decay > 0.0).then(|| WeightDecayConfig::new(plan.weight_decay as f32)),
            )
            .init(),
    }
}

/// Materialises every lazily initialised parameter now, in visiting order, so the
/// initial weights are a function of the seed alone (not of when a parameter is first used).
fn initialise_now(model: &DenseNet3d) {
    struct Touch;
    impl ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    model.visit(&mut Touch);
}

#[allow(clippy::too_many_arguments)]
fn save_checkpoint(
    inputs: &TrialInputs,
    sync: &dyn Collective,
    observer: &mut dyn TrialObserver,
    runtime: &tokio::runtime::Handle,
    model: &DenseNet3d,
    optimizer: &ModuleOptimizer,
    state: &TrainState,
) -> Result<(), TrialError> {
    if sync.rank() != 0 {
        return Ok(());
    }
    let started = Instant::now();
    let optimizer_bytes = optimizer.into_bytes().map_err(|e| TrialError::Corrupt {
        url: inputs.trial.url_of("checkpoints"),
        message: format!("serialising the optimizer state: {e}"),
    })?;
    let c = Checkpoint {
        model: weights_to_bytes(model)?,
        optimizer: optimizer_bytes.to_vec(),
        state: state.clone(),
    };
    let url = runtime.block_on(checkpoint::save(
        &inputs.trial,
        c,
        inputs.plan.keep_checkpoints,
    ))?;
    tracing::debug!(step = state.step, %url, elapsed = ?started.elapsed(), "checkpoint written");
    observer.checkpoint(state.step, &url);
    Ok(())
}

/// Writes a model directory (`model.json` after `weights.bpk`) under the trial folder.
fn put_model_dir(
    inputs: &TrialInputs,
    runtime: &tokio::runtime::Handle,
    dir: &str,
    weights: &[u8],
) -> Result<(), TrialError> {
    let json = serde_json::to_string_pretty(&inputs.plan.model).expect("config serialises") + "\n";
    runtime.block_on(async {
        inputs
            .trial
            .put(&format!("{dir}/{WEIGHTS_FILE}"), weights.to_vec())
            .await?;
        inputs
            .trial
            .put(&format!("{dir}/{CONFIG_FILE}"), json.into_bytes())
            .await
    })?;
    Ok(())
}
