//! One Cox training step on any backend: forward, exact Cox loss of the batch, backward,
//! optimizer step.
//!
//! The loss is not an autodiff graph: [`cox_loss_and_grad`] computes it and its gradient
//! `g = dL/d eta` in closed form on the host (in f64), and the backward pass starts from
//! the surrogate `sum_k g_k * eta_k` with `g` a constant, whose parameter gradient equals the
//! Cox loss's. That is the data-parallel recipe of DESIGN.md ("Exact Cox loss") with one
//! worker; the same function serves the benchmark and the backend-equivalence tests.

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Tensor, TensorData};
use cohort_common::survival::cox::Ties;

use crate::cox_loss::{CoxLoss, CoxLossError, cox_loss_and_grad};
use crate::model::DenseNet3d;

/// The parameter gradients of the batch's Cox loss, and the loss. `x` must live on an
/// autodiff device (and `model` with it); `time`/`event` are the batch's outcomes.
pub fn cox_gradients(
    model: &DenseNet3d,
    x: Tensor<5>,
    time: &[f64],
    event: &[bool],
    ties: Ties,
) -> Result<(GradientsParams, CoxLoss), CoxLossError> {
    let device = x.device();
    let eta = model.log_risk(x);
    let host: Vec<f64> = eta
        .clone()
        .into_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .unwrap_or_default();
    let loss = cox_loss_and_grad(&host, time, event, ties)?;
    let g: Vec<f32> = loss.grad.iter().map(|&v| v as f32).collect();
    let n = g.len();
    let g = Tensor::<1>::from_data(TensorData::new(g, [n]), &device);
    let grads = (eta * g).sum().backward();
    Ok((GradientsParams::from_grads(grads, model), loss))
}

/// A whole step: [`cox_gradients`], then `optim` at learning rate `lr`. Returns the updated
/// model and the loss before the update.
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
