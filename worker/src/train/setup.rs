//! Everything a trial needs before its first step: the cohort's manifest and
//! split, the resolved plan and the volume source, read once and checked, so
//! a bad cohort or setting fails before any training with a message naming
//! the file, row or key. `train-local` and the distributed worker both start
//! trials through [`open_trial`].

use std::sync::Arc;

use burn::tensor::Device;
use cohort_common::cohort::split::SplitError;
use cohort_common::cohort::{MANIFEST_FILE, manifest};
use cohort_common::preprocess::Geometry;
use cohort_common::spec::JobSpec;
use cohort_common::store::{Store, StoreError};

use super::plan::{PlanError, TrialPlan};
use super::trial::TrialInputs;
use crate::data::{VolumeCache, VolumeSource};

/// Why a trial cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cohort.url = {url:?}: {source}")]
    Cohort {
        url: String,
        #[source]
        source: StoreError,
    },
    #[error("no manifest: {url} does not exist")]
    NoManifest { url: String },
    #[error("{url} has {errors} errors (run `cohort validate` on the cohort):\n{listed}")]
    Manifest {
        url: String,
        errors: usize,
        listed: String,
    },
    #[error(transparent)]
    Split(#[from] SplitError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the process offers every trial it runs.
#[derive(Clone, Debug)]
pub struct Resources {
    /// The plain (non-autodiff) device of the chosen backend.
    pub device: Device,
    /// The on-disk cache of preprocessed volumes, if any.
    pub cache: Option<VolumeCache>,
    pub prefetch_depth: usize,
    pub eval_batch_size: usize,
}

/// Reads and checks the cohort of `spec` and prepares the trial whose folder is `trial`.
pub async fn open_trial(
    spec: JobSpec,
    trial: Store,
    resources: &Resources,
) -> Result<TrialInputs, SetupError> {
    let cohort = Store::open(&spec.cohort.url).map_err(|source| SetupError::Cohort {
        url: spec.cohort.url.clone(),
        source,
    })?;
    let manifest_url = cohort.url_of(MANIFEST_FILE);
    let bytes = match cohort.get(MANIFEST_FILE).await {
        Ok(b) => b,
        Err(StoreError::NotFound { .. }) => {
            return Err(SetupError::NoManifest { url: manifest_url });
        }
        Err(e) => return Err(e.into()),
    };
    let parsed = manifest::parse(&bytes, &manifest_url);
    if parsed.problems.has_errors() {
        let listed: Vec<String> = parsed
            .problems
            .iter()
            .take(10)
            .map(|p| p.to_string())
            .collect();
        return Err(SetupError::Manifest {
            url: manifest_url,
            errors: parsed.problems.error_count(),
            listed: listed.join("\n"),
        });
    }
    let manifest = Arc::new(parsed.manifest);
    let splits = spec.cohort.split_rule.assign(&manifest)?;
    let plan = TrialPlan::from_spec(&spec, manifest.sequences.len())?;
    let source = Arc::new(VolumeSource {
        store: cohort,
        manifest: manifest.clone(),
        pipeline: plan.pipeline.clone(),
        geometry: Geometry::ResampleEach,
        cache: resources.cache.clone(),
    });
    Ok(TrialInputs {
        spec,
        plan,
        manifest,
        splits,
        source,
        trial,
        device: resources.device.clone(),
        prefetch_depth: resources.prefetch_depth,
        eval_batch_size: resources.eval_batch_size,
    })
}
