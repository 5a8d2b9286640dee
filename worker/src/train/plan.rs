//! From a job spec to the concrete settings of one trial.
//!
//! A [`JobSpec`] speaks the user's language (a preset name with overrides, a
//! normalisation keyword, an optimizer name); the training loop needs typed,
//! validated values. [`TrialPlan::from_spec`] does that translation once, so
//! every error about a setting is raised before any volume is read, and it
//! names the job-file key (`model.num_groups`, `preprocess.normalize`, ...).

use cohort_common::preprocess::{Foreground, Pipeline};
use cohort_common::spec::{EndpointName, JobSpec};
use cohort_common::survival::cox::Ties;
use serde::{Deserialize, Serialize};

use super::augment::AugmentConfig;
use super::sampler::SamplerConfig;
use crate::model::{DenseNetConfig, NormKind};

/// Why a job spec cannot become a trial.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlanError {
    /// A setting is out of range or inconsistent; names the job-file key.
    #[error("job spec: {key}: {message}")]
    Setting {
        /// The job-file key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

fn setting(key: &str, message: impl Into<String>) -> PlanError {
    PlanError::Setting {
        key: key.to_string(),
        message: message.into(),
    }
}

/// Which optimizer updates the weights.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Adam with L2 weight decay added to the gradient (PyTorch's `Adam(weight_decay=)`).
    Adam,
    /// AdamW: decoupled weight decay (PyTorch's `AdamW`).
    AdamW,
}

/// Everything one trial needs, resolved and validated.
#[derive(Clone, Debug, PartialEq)]
pub struct TrialPlan {
    /// The network.
    pub model: DenseNetConfig,
    /// Global batches.
    pub sampler: SamplerConfig,
    /// Augmentation of training samples.
    pub augment: AugmentConfig,
    /// Preprocessing of every volume.
    pub pipeline: Pipeline,
    /// The endpoint trained on.
    pub endpoint: EndpointName,
    /// Tie handling of the Cox loss.
    pub ties: Ties,
    /// The optimizer.
    pub optimizer: OptimizerKind,
    /// Peak and final learning rate.
    pub lr: f64,
    pub min_lr: f64,
    pub weight_decay: f64,
    pub epochs: u64,
    pub warmup_epochs: u64,
    /// Early-stopping patience in epochs (0: never stop early).
    pub patience: u32,
    /// The trial's seed: model initialisation, dropout, sampler and augmentation streams
    /// all derive from it.
    pub seed: u64,
    pub checkpoint_every_steps: u64,
    pub keep_checkpoints: usize,
}

impl TrialPlan {
    /// Resolves `spec` for a cohort with `in_channels` MRI sequences.
    pub fn from_spec(spec: &JobSpec, in_channels: usize) -> Result<TrialPlan, PlanError> {
        let m = &spec.model;
        let mut model = DenseNetConfig::preset(&m.preset, in_channels)
            .map_err(|e| setting("model.preset", e.to_string()))?;
        if let Some(v) = m.growth_rate {
            model.growth_rate = v;
        }
        if let Some(v) = &m.block_config {
            model.block_config = v.clone();
        }
        if let Some(v) = m.init_features {
            model.init_features = v;
        }
        if let Some(v) = m.bn_size {
            model.bn_size = v;
        }
        if let Some(v) = m.dropout {
            model.dropout = v;
        }
        model.norm = match m.norm.as_str() {
            "batch" => NormKind::Batch,
            "instance" => NormKind::Instance,
            "group" => NormKind::Group {
                num_groups: match m.num_groups {
                    Some(g) => g,
                    None => auto_groups(&model),
                },
            },
            other => return Err(setting("model.norm", format!("unknown norm {other:?}"))),
        };
        model
            .validate()
            .map_err(|e| setting("model", e.to_string()))?;

        let p = &spec.preprocess;
        let normalize = match p.normalize.as_str() {
            "all" => Foreground::All,
            "nonzero" => Foreground::NonZero,
            "otsu" => Foreground::Otsu,
            other => {
                return Err(setting(
                    "preprocess.normalize",
                    format!("unknown normalisation {other:?}"),
                ));
            }
        };
        let pipeline = Pipeline {
            spacing: p.spacing_mm,
            resize: None,
            normalize: Some(normalize),
            shape: Some(p.shape),
            pad_value: 0.0,
        };

        let t = &spec.training;
        let a = &t.augment;
        let augment = AugmentConfig {
            flip: a.flip,
            max_shift: a.max_shift,
            intensity_scale: a.intensity_scale,
            intensity_shift: a.intensity_shift,
            noise_std: a.noise_std,
            fill: 0.0,
        };
        let ties = match t.ties.as_str() {
            "efron" => Ties::Efron,
            "breslow" => Ties::Breslow,
            other => return Err(setting("training.ties", format!("unknown ties {other:?}"))),
        };
        let optimizer = match t.optimizer.as_str() {
            "adam" => OptimizerKind::Adam,
            "adamw" => OptimizerKind::AdamW,
            other => {
                return Err(setting(
                    "training.optimizer",
                    format!("unknown optimizer {other:?}"),
                ));
            }
        };
        Ok(TrialPlan {
            model,
            sampler: SamplerConfig {
                batch_size: t.batch_size,
                min_events: t.min_events_per_batch,
                seed: t.seed,
            },
            augment,
            pipeline,
            endpoint: spec.cohort.endpoint,
            ties,
            optimizer,
            lr: t.lr,
            min_lr: t.min_lr,
            weight_decay: t.weight_decay,
            epochs: t.epochs,
            warmup_epochs: t.warmup_epochs,
            patience: t.patience,
            seed: t.seed,
            checkpoint_every_steps: t.checkpoint_every_steps,
            keep_checkpoints: t.keep_checkpoints.max(1),
        })
    }
}

/// The largest group count among 32, 16, 8, 4, 2, 1 that divides every norm of `cfg`
/// (`small`, whose channel counts include 31, gets 1: layer-norm-like groups).
fn auto_groups(cfg: &DenseNetConfig) -> usize {
    let channels: Vec<usize> = cfg.norm_channels().into_iter().map(|(_, c)| c).collect();
    [32, 16, 8, 4, 2, 1]
        .into_iter()
        .find(|g| channels.iter().all(|c| c % g == 0))
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: &[&str]) -> JobSpec {
        let sets: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        JobSpec::parse("[cohort]\nurl = \"./c\"\n", "job.toml", &sets).unwrap()
    }

    #[test]
    fn preset_fields_are_overridden_by_the_job() {
        let plan = TrialPlan::from_spec(
            &spec(&[
                "model.preset=tiny",
                "model.growth_rate=6",
                "model.dropout=0.1",
            ]),
            3,
        )
        .unwrap();
        assert_eq!(plan.model.in_channels, 3);
        assert_eq!(plan.model.growth_rate, 6);
        assert_eq!(plan.model.init_features, 8);
        assert_eq!(plan.model.dropout, 0.1);
        assert_eq!(plan.optimizer, OptimizerKind::AdamW);
        assert_eq!(plan.ties, Ties::Efron);
    }

    #[test]
    fn group_norm_picks_a_group_count_dividing_every_norm() {
        let plan =
            TrialPlan::from_spec(&spec(&["model.preset=tiny", "model.norm=group"]), 1).unwrap();
        let NormKind::Group { num_groups } = plan.model.norm else {
            panic!("expected group norm, got {:?}", plan.model.norm);
        };
        // tiny's norms see 8, 12 and 16 channels (and 8 in its bottlenecks).
        assert_eq!(num_groups, 4);
        assert!(
            plan.model
                .norm_channels()
                .iter()
                .all(|(_, c)| c % num_groups == 0)
        );
        let err = TrialPlan::from_spec(
            &spec(&[
                "model.preset=small",
                "model.norm=group",
                "model.num_groups=5",
            ]),
            1,
        )
        .unwrap_err();
        assert!(err.to_string().contains("num_groups 5"), "{err}");
    }
}
