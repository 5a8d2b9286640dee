//! One optimizer step of data-parallel Cox training, exact for any group size.
//!
//! The Cox partial likelihood couples every patient of a batch through its
//! risk sets, so per-worker losses on shards of a batch are *not* the batch's
//! loss, and averaging their gradients is not its gradient. The step instead
//! (DESIGN.md, "exact Cox"):
//!
//! 1. forwards the worker's shard and all-gathers the log-risks `eta` of the
//!    whole global batch (times and events are known everywhere: the sampler
//!    is global and every worker holds the manifest);
//! 2. computes the global loss and its closed-form gradient `g = dL/d eta`
//!    ([`crate::cox_loss`]) identically on every rank;
//! 3. backpropagates the surrogate `sum_i g_i * eta_i` over the local shard,
//!    whose parameter gradient is the shard's share of the true gradient;
//! 4. sums the parameter gradients over the group and steps the optimizer.
//!
//! With one worker, steps 1 and 4 are the identity and the surrogate's
//! gradient equals autodiff of the Cox loss itself.

use std::time::{Duration, Instant};

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};
use cohort_common::survival::cox::Ties;

use super::grads;
use crate::collective::{Collective, CollectiveError};
use crate::cox_loss::{CoxLoss, CoxLossError, cox_loss_and_grad};
use crate::model::DenseNet3d;

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("gradient sync: {0}")]
    Sync(#[from] CollectiveError),
    #[error(transparent)]
    Loss(#[from] CoxLossError),
    #[error("step: rank {rank} sent {got} log-risks, its shard holds {expected}")]
    Gather {
        rank: usize,
        expected: usize,
        got: usize,
    },
    #[error("step: the model produced a non-finite log-risk; lower training.lr?")]
    NonFinite,
}

/// The global batch of a step, and this worker's shard of its inputs.
pub struct StepBatch<'a> {
    /// `time` and `event` of every member of the global batch, in batch order.
    pub time: &'a [f64],
    pub event: &'a [bool],
    /// Members per rank (`shard_sizes[r]` for rank `r`), summing to the batch size.
    pub shard_sizes: &'a [usize],
    /// This rank's stacked inputs, `[n_local, C, D, H, W]` flattened.
    pub inputs: Vec<f32>,
    /// `[C, D, H, W]` of one sample.
    pub sample_shape: [usize; 4],
}

/// What a step reports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepOutcome {
    /// The global batch's Cox loss (per event).
    pub loss: f64,
    /// Events in the global batch.
    pub events: usize,
    /// Wall time this rank spent inside collectives (the all-gather of the
    /// log-risks and the gradient all-reduce), waiting for slower ranks included.
    pub sync: Duration,
}

/// One optimizer step; returns the updated model.
///
/// `device` is the autodiff device the model lives on; `lr` the step's learning rate.
#[allow(clippy::too_many_arguments)]
pub fn train_step(
    model: DenseNet3d,
    optimizer: &mut ModuleOptimizer,
    lr: f64,
    batch: StepBatch<'_>,
    ties: Ties,
    sync: &mut dyn Collective,
    device: &Device,
) -> Result<(DenseNet3d, StepOutcome), StepError> {
    let (grads, outcome) = batch_gradients(&model, batch, ties, sync, device)?;
    Ok((optimizer.step(lr, model, grads), outcome))
}

/// The gradient of the global batch's Cox loss with respect to the parameters, identical on
/// every rank (steps 1-4 of the module docs, without the optimizer).
pub fn batch_gradients(
    model: &DenseNet3d,
    batch: StepBatch<'_>,
    ties: Ties,
    sync: &mut dyn Collective,
    device: &Device,
) -> Result<(GradientsParams, StepOutcome), StepError> {
    let rank = sync.rank();
    let world = sync.world();
    let local_n = batch.shard_sizes[rank];
    let [c, d, h, w] = batch.sample_shape;

    let eta = (local_n > 0).then(|| {
        let x =
            Tensor::<5>::from_data(TensorData::new(batch.inputs, [local_n, c, d, h, w]), device);
        model.log_risk(x)
    });
    let local_eta: Vec<f32> = match &eta {
        Some(t) => t
            .clone()
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("f32 after convert"),
        None => Vec::new(),
    };

    let gather_started = Instant::now();
    let gathered = sync.all_gather(&local_eta)?;
    let mut sync_time = gather_started.elapsed();
    let mut global_eta = Vec::with_capacity(batch.time.len());
    for (r, part) in gathered.iter().enumerate() {
        let expected = batch.shard_sizes.get(r).copied().unwrap_or(0);
        if part.len() != expected {
            return Err(StepError::Gather {
                rank: r,
                expected,
                got: part.len(),
            });
        }
        global_eta.extend(part.iter().map(|&v| v as f64));
    }
    if global_eta.iter().any(|v| !v.is_finite()) {
        return Err(StepError::NonFinite);
    }
    let cox = cox_loss_and_grad(&global_eta, batch.time, batch.event, ties)?;

    let offset: usize = batch.shard_sizes[..rank].iter().sum();
    let inner = device.clone().inner();
    let local_grads = match eta {
        Some(eta) => surrogate_gradients(model, eta, &cox.grad[offset..offset + local_n]),
        None => GradientsParams::new(),
    };
    let mut grads = if world == 1 {
        local_grads
    } else {
        let mut flat = grads::flatten(model, &local_grads);
        let reduce_started = Instant::now();
        sync.all_reduce_sum(&mut flat)?;
        sync_time += reduce_started.elapsed();
        grads::unflatten(model, &flat, &inner)
    };
    // The Cox partial likelihood does not change when every log-risk shifts by the same
    // amount, so the head's bias has a zero gradient up to rounding. Adam would normalise
    // that rounding noise into full-size steps (a random walk that differs between group
    // sizes and runs), so the bias is left out of the update and keeps its initial zero.
    if let Some(bias) = &model.out.bias {
        let _ = grads.remove::<1>(bias.id);
    }
    Ok((
        grads,
        StepOutcome {
            loss: cox.loss,
            events: cox.events,
            sync: sync_time,
        },
    ))
}

/// The parameter gradients of one batch's Cox loss, and the loss, for a batch already on an
/// autodiff device: the single-worker case without host inputs, which the step benchmark
/// and the backend-equivalence tests use on any backend.
pub fn cox_gradients(
    model: &DenseNet3d,
    x: Tensor<5>,
    time: &[f64],
    event: &[bool],
    ties: Ties,
) -> Result<(GradientsParams, CoxLoss), CoxLossError> {
    let eta = model.log_risk(x);
    let host: Vec<f64> = eta
        .clone()
        .into_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .unwrap_or_default();
    let loss = cox_loss_and_grad(&host, time, event, ties)?;
    Ok((surrogate_gradients(model, eta, &loss.grad), loss))
}

/// The parameter gradients of `sum_k g_k * eta_k` with `g` a constant: the chain rule's
/// second half, once `g = dL/d eta` is known in closed form.
fn surrogate_gradients(model: &DenseNet3d, eta: Tensor<1>, g: &[f64]) -> GradientsParams {
    let device = eta.device();
    let g: Vec<f32> = g.iter().map(|&v| v as f32).collect();
    let n = g.len();
    let g = Tensor::<1>::from_data(TensorData::new(g, [n]), &device);
    GradientsParams::from_grads((eta * g).sum().backward(), model)
}

/// [`cox_gradients`], then `optim` at learning rate `lr`: the updated model and the loss
/// before the update.
pub fn cox_step(
    model: DenseNet3d,
    optim: &mut ModuleOptimizer,
    lr: f64,
    x: Tensor<5>,
    time: &[f64],
    event: &[bool],
    ties: Ties,
) -> Result<(DenseNet3d, CoxLoss), CoxLossError> {
    let (grads, loss) = cox_gradients(&model, x, time, event, ties)?;
    Ok((optim.step(lr, model, grads), loss))
}
