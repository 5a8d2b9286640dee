//! Job specs: what `cohort run` / `cohort submit` take, as TOML.
//!
//! A job names a cohort and its split, the preprocessing, the model, the
//! training settings, the ensemble size, an optional sweep, where artifacts
//! go, and how the work is distributed. Every section has defaults, so the
//! smallest job is `[cohort] url = "..."`. Unknown keys are errors (a typo
//! must not silently fall back to a default), and `--set a.b=value`
//! overrides apply before validation, so they are checked like the file.
//!
//! ```toml
//! name = "npc-densenet"
//! [cohort]
//! url = "s3://bucket/npc"
//! split_rule = "dev=2010-10-01..2015-03-31;val=0.3;test=2015-04-01..2015-09-30;seed=7"
//! endpoint = "dfs"
//! [model]
//! preset = "small"
//! [training]
//! epochs = 30
//! lr = 3e-4
//! [ensemble]
//! members = 5
//! [sweep]
//! method = "grid"
//! parameters = { "training.lr" = [1e-4, 3e-4], "model.growth_rate" = [12, 16] }
//! [artifacts]
//! url = "./runs"
//! [distributed]
//! workers_per_trial = 2
//! collective_timeout_ms = 30000
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cohort::SplitRule;

/// Why a job spec is not usable. Messages name the field.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("job spec {source_name}: {message}")]
    Parse {
        source_name: String,
        message: String,
    },
    #[error("job spec: --set {assignment:?}: {message}")]
    Override { assignment: String, message: String },
    #[error("job spec: {field}: {message}")]
    Invalid { field: String, message: String },
}

fn invalid(field: &str, message: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        field: field.to_string(),
        message: message.into(),
    }
}

/// The survival endpoint a model is trained on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EndpointName {
    #[default]
    Dfs,
    Dmfs,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CohortSection {
    /// The cohort root (folder or store URL).
    pub url: String,
    #[serde(default, with = "split_rule_text")]
    pub split_rule: SplitRule,
    #[serde(default)]
    pub endpoint: EndpointName,
}

mod split_rule_text {
    use super::SplitRule;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(rule: &SplitRule, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&rule.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SplitRule, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// How volumes become network input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PreprocessSection {
    /// Resample to this voxel spacing in mm (`None`: keep the grid).
    pub spacing_mm: Option<[f32; 3]>,
    /// Centred crop / pad to this shape (`[D, H, W]` in NIfTI k, j, i order
    /// is *not* used: this is NIfTI i, j, k like the files).
    pub shape: [usize; 3],
    /// Z-score statistics from: `all`, `nonzero` or `otsu` voxels.
    pub normalize: String,
}

impl Default for PreprocessSection {
    fn default() -> Self {
        PreprocessSection {
            spacing_mm: None,
            shape: [32, 32, 32],
            normalize: "nonzero".into(),
        }
    }
}

/// The 3D DenseNet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSection {
    /// `tiny`, `small`, `densenet121`, `densenet169` or `densenet201`; the fields
    /// below, when given, override the preset's.
    pub preset: String,
    pub growth_rate: Option<usize>,
    pub block_config: Option<Vec<usize>>,
    pub init_features: Option<usize>,
    pub bn_size: Option<usize>,
    pub dropout: Option<f64>,
    /// `batch`, `instance` or `group`.
    pub norm: String,
    /// Groups of a group norm; unset picks the largest of 32, 16, 8, 4, 2, 1 that divides
    /// every norm's channel count.
    pub num_groups: Option<usize>,
}

impl Default for ModelSection {
    fn default() -> Self {
        ModelSection {
            preset: "small".into(),
            growth_rate: None,
            block_config: None,
            init_features: None,
            bn_size: None,
            dropout: None,
            norm: "batch".into(),
            num_groups: None,
        }
    }
}

/// Optimisation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainingSection {
    pub epochs: u64,
    pub batch_size: usize,
    pub min_events_per_batch: usize,
    /// `adam` or `adamw`.
    pub optimizer: String,
    pub lr: f64,
    pub min_lr: f64,
    pub weight_decay: f64,
    pub warmup_epochs: u64,
    /// `efron` or `breslow`.
    pub ties: String,
    /// Epochs without a better validation C-index before stopping (0: never stop early).
    pub patience: u32,
    pub seed: u64,
    /// Checkpoint every this many optimizer steps, besides the end of every epoch
    /// (0: only at epoch ends).
    pub checkpoint_every_steps: u64,
    /// Checkpoints kept in the store (the newest ones); at least 1.
    pub keep_checkpoints: usize,
    pub augment: AugmentSection,
}

impl Default for TrainingSection {
    fn default() -> Self {
        TrainingSection {
            epochs: 20,
            batch_size: 16,
            min_events_per_batch: 2,
            optimizer: "adamw".into(),
            lr: 3e-4,
            min_lr: 1e-6,
            weight_decay: 1e-4,
            warmup_epochs: 1,
            ties: "efron".into(),
            patience: 5,
            seed: 1,
            checkpoint_every_steps: 0,
            keep_checkpoints: 2,
            augment: AugmentSection::default(),
        }
    }
}

/// Augmentation (see `cohort_worker::train::augment`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AugmentSection {
    pub flip: [bool; 3],
    pub max_shift: [usize; 3],
    pub intensity_scale: f32,
    pub intensity_shift: f32,
    pub noise_std: f32,
}

impl Default for AugmentSection {
    fn default() -> Self {
        AugmentSection {
            flip: [false, false, true],
            max_shift: [2, 2, 2],
            intensity_scale: 0.1,
            intensity_shift: 0.1,
            noise_std: 0.05,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnsembleSection {
    pub members: usize,
}

impl Default for EnsembleSection {
    fn default() -> Self {
        EnsembleSection { members: 1 }
    }
}

/// A hyperparameter sweep: each point is combined with every ensemble member.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSection {
    /// `grid` (every combination) or `random` (`trials` draws).
    pub method: String,
    #[serde(default)]
    pub trials: Option<usize>,
    #[serde(default)]
    pub seed: u64,
    /// Dotted setting path to candidate values.
    pub parameters: BTreeMap<String, Vec<toml::Value>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArtifactsSection {
    pub url: String,
}

impl Default for ArtifactsSection {
    fn default() -> Self {
        ArtifactsSection {
            url: "./cohort-runs".into(),
        }
    }
}

/// How trials are spread over workers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DistributedSection {
    pub workers_per_trial: usize,
    pub heartbeat_interval_ms: u64,
    pub loss_timeout_ms: u64,
    pub bucket_mb: f64,
    /// `f32` or `bf16` on the wire.
    pub wire_format: String,
    /// How long a rank waits for a peer inside one collective (all-reduce, all-gather)
    /// before it fails the collective naming the rank it waits for. Longer than the
    /// slowest step's compute imbalance; the coordinator passes it in every assignment.
    pub collective_timeout_ms: u64,
}

impl Default for DistributedSection {
    fn default() -> Self {
        DistributedSection {
            workers_per_trial: 1,
            heartbeat_interval_ms: 1000,
            loss_timeout_ms: 10_000,
            bucket_mb: 25.0,
            wire_format: "f32".into(),
            collective_timeout_ms: 30_000,
        }
    }
}

/// A whole job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    #[serde(default = "default_name")]
    pub name: String,
    pub cohort: CohortSection,
    #[serde(default)]
    pub preprocess: PreprocessSection,
    #[serde(default)]
    pub model: ModelSection,
    #[serde(default)]
    pub training: TrainingSection,
    #[serde(default)]
    pub ensemble: EnsembleSection,
    #[serde(default)]
    pub sweep: Option<SweepSection>,
    #[serde(default)]
    pub artifacts: ArtifactsSection,
    #[serde(default)]
    pub distributed: DistributedSection,
}

fn default_name() -> String {
    "cohort-job".into()
}

/// Applies `a.b.c=value` to a TOML tree. The value is parsed as a TOML value
/// (`3e-4`, `true`, `[1, 2]`, `"text"`), falling back to a plain string.
pub fn apply_override(root: &mut toml::Table, assignment: &str) -> Result<(), SpecError> {
    let err = |message: &str| SpecError::Override {
        assignment: assignment.to_string(),
        message: message.to_string(),
    };
    let (path, raw) = assignment
        .split_once('=')
        .ok_or_else(|| err("expected KEY=VALUE"))?;
    let keys: Vec<&str> = path.trim().split('.').collect();
    if keys.iter().any(|k| k.is_empty()) {
        return Err(err("empty key"));
    }
    let value = parse_value(raw.trim());
    let mut table = root;
    for key in &keys[..keys.len() - 1] {
        let entry = table
            .entry(key.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = entry
            .as_table_mut()
            .ok_or_else(|| err(&format!("{key} is not a section")))?;
    }
    table.insert(keys[keys.len() - 1].to_string(), value);
    Ok(())
}

fn parse_value(raw: &str) -> toml::Value {
    let wrapped = format!("v = {raw}");
    match wrapped.parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

impl JobSpec {
    /// Parses TOML text, applies `--set` overrides, then validates.
    pub fn parse(
        text: &str,
        source_name: &str,
        overrides: &[String],
    ) -> Result<JobSpec, SpecError> {
        let mut table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| SpecError::Parse {
                    source_name: source_name.to_string(),
                    message: e.to_string(),
                })?;
        for o in overrides {
            apply_override(&mut table, o)?;
        }
        let spec: JobSpec =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| SpecError::Parse {
                    source_name: source_name.to_string(),
                    message: e.to_string(),
                })?;
        spec.validate()?;
        Ok(spec)
    }

    /// Checks values that types alone cannot.
    pub fn validate(&self) -> Result<(), SpecError> {
        let one_of = |field: &str, value: &str, allowed: &[&str]| {
            if allowed.contains(&value) {
                Ok(())
            } else {
                Err(invalid(
                    field,
                    format!("{value:?} is not one of {}", allowed.join(", ")),
                ))
            }
        };
        if self.cohort.url.trim().is_empty() {
            return Err(invalid("cohort.url", "must name the cohort root"));
        }
        one_of(
            "preprocess.normalize",
            &self.preprocess.normalize,
            &["all", "nonzero", "otsu"],
        )?;
        if self.preprocess.shape.contains(&0) {
            return Err(invalid("preprocess.shape", "every axis must be at least 1"));
        }
        if let Some(s) = self.preprocess.spacing_mm
            && s.iter().any(|v| !(v.is_finite() && *v > 0.0))
        {
            return Err(invalid("preprocess.spacing_mm", "must be positive"));
        }
        one_of(
            "model.preset",
            &self.model.preset,
            &["tiny", "small", "densenet121", "densenet169", "densenet201"],
        )?;
        one_of(
            "model.norm",
            &self.model.norm,
            &["batch", "instance", "group"],
        )?;
        if let Some(d) = self.model.dropout
            && !(0.0..1.0).contains(&d)
        {
            return Err(invalid("model.dropout", "must be in [0, 1)"));
        }
        let t = &self.training;
        one_of("training.optimizer", &t.optimizer, &["adam", "adamw"])?;
        one_of("training.ties", &t.ties, &["efron", "breslow"])?;
        if t.epochs == 0 {
            return Err(invalid("training.epochs", "must be at least 1"));
        }
        if t.batch_size < 2 {
            return Err(invalid(
                "training.batch_size",
                "a Cox batch needs at least 2 patients",
            ));
        }
        if !(t.lr.is_finite() && t.lr > 0.0) {
            return Err(invalid("training.lr", "must be positive"));
        }
        if !(t.min_lr.is_finite() && t.min_lr >= 0.0 && t.min_lr <= t.lr) {
            return Err(invalid("training.min_lr", "must be in [0, training.lr]"));
        }
        if !(t.weight_decay.is_finite() && t.weight_decay >= 0.0) {
            return Err(invalid("training.weight_decay", "must be 0 or more"));
        }
        if t.keep_checkpoints == 0 {
            return Err(invalid("training.keep_checkpoints", "must be at least 1"));
        }
        if self.model.num_groups == Some(0) {
            return Err(invalid("model.num_groups", "must be at least 1"));
        }
        if self.ensemble.members == 0 {
            return Err(invalid("ensemble.members", "must be at least 1"));
        }
        if let Some(sweep) = &self.sweep {
            one_of("sweep.method", &sweep.method, &["grid", "random"])?;
            if sweep.method == "random" && sweep.trials.unwrap_or(0) == 0 {
                return Err(invalid("sweep.trials", "a random sweep needs trials >= 1"));
            }
            for (key, values) in &sweep.parameters {
                if values.is_empty() {
                    return Err(invalid(
                        &format!("sweep.parameters.{key}"),
                        "needs at least one value",
                    ));
                }
            }
        }
        let d = &self.distributed;
        if d.workers_per_trial == 0 {
            return Err(invalid(
                "distributed.workers_per_trial",
                "must be at least 1",
            ));
        }
        if d.workers_per_trial > t.batch_size {
            return Err(invalid(
                "distributed.workers_per_trial",
                format!(
                    "{} workers cannot share a batch of {}",
                    d.workers_per_trial, t.batch_size
                ),
            ));
        }
        one_of("distributed.wire_format", &d.wire_format, &["f32", "bf16"])?;
        if d.loss_timeout_ms <= d.heartbeat_interval_ms {
            return Err(invalid(
                "distributed.loss_timeout_ms",
                "must be longer than the heartbeat interval",
            ));
        }
        if !(d.bucket_mb.is_finite() && d.bucket_mb > 0.0) {
            return Err(invalid("distributed.bucket_mb", "must be positive"));
        }
        if d.collective_timeout_ms == 0 {
            return Err(invalid(
                "distributed.collective_timeout_ms",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smallest_job_takes_every_default() {
        let spec = JobSpec::parse("[cohort]\nurl = \"./c\"\n", "job.toml", &[]).unwrap();
        assert_eq!(spec.cohort.split_rule, SplitRule::study());
        assert_eq!(spec.training, TrainingSection::default());
        assert_eq!(spec.distributed.workers_per_trial, 1);
        assert!(spec.sweep.is_none());
    }

    #[test]
    fn overrides_apply_before_validation() {
        let sets = vec![
            "training.lr=1e-3".to_string(),
            "distributed.workers_per_trial=2".into(),
            "model.block_config=[2, 2]".into(),
            "cohort.endpoint=dmfs".into(),
            "name=my job".into(),
        ];
        let spec = JobSpec::parse("[cohort]\nurl = \"./c\"\n", "job.toml", &sets).unwrap();
        assert_eq!(spec.training.lr, 1e-3);
        assert_eq!(spec.distributed.workers_per_trial, 2);
        assert_eq!(spec.model.block_config, Some(vec![2, 2]));
        assert_eq!(spec.cohort.endpoint, EndpointName::Dmfs);
        assert_eq!(spec.name, "my job");
        let bad = JobSpec::parse(
            "[cohort]\nurl = \"./c\"\n",
            "job.toml",
            &["training.lr=-1".into()],
        );
        assert!(bad.unwrap_err().to_string().contains("training.lr"));
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                "[cohort]\nurl = \"c\"\n[training]\nlearning_rate = 1\n",
                "learning_rate",
            ),
            (
                "[cohort]\nurl = \"c\"\n[model]\nnorm = \"layer\"\n",
                "model.norm",
            ),
            (
                "[cohort]\nurl = \"c\"\nsplit_rule = \"val=abc\"\n",
                "bad count",
            ),
            ("[training]\nepochs = 3\n", "cohort"),
            (
                "[cohort]\nurl = \"c\"\n[distributed]\nworkers_per_trial = 64\n",
                "workers_per_trial",
            ),
            (
                "[cohort]\nurl = \"c\"\n[sweep]\nmethod = \"random\"\nparameters = {}\n",
                "sweep.trials",
            ),
            (
                "[cohort]\nurl = \"c\"\n[distributed]\ncollective_timeout_ms = 0\n",
                "distributed.collective_timeout_ms",
            ),
        ];
        for (text, needle) in cases {
            let err = JobSpec::parse(text, "job.toml", &[])
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{err:?} should mention {needle}");
        }
        let err =
            JobSpec::parse("[cohort]\nurl = \"c\"\n", "job.toml", &["nokey".into()]).unwrap_err();
        assert!(err.to_string().contains("KEY=VALUE"));
    }

    #[test]
    fn a_spec_round_trips_through_toml() {
        let text = "name = \"x\"\n[cohort]\nurl = \"s3://b/c\"\n[sweep]\nmethod = \"grid\"\nparameters = { \"training.lr\" = [1e-4, 3e-4] }\n";
        let spec = JobSpec::parse(text, "job.toml", &[]).unwrap();
        let again = JobSpec::parse(&toml::to_string(&spec).unwrap(), "again", &[]).unwrap();
        assert_eq!(spec, again);
    }
}
