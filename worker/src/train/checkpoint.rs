//! Checkpoints of a trial in the artifact store, written so a crash at any
//! instant leaves either the previous checkpoint or the new one, never a mix.
//!
//! Layout under the trial's folder:
//!
//! ```text
//! checkpoints/step-00000120/model.bpk      weights + BatchNorm statistics (burnpack)
//! checkpoints/step-00000120/optimizer.bpk  Adam moments and step counts (burnpack)
//! checkpoints/step-00000120/state.json     sampler position, step, early stopping, history
//! checkpoints/latest.json                  {"step": 120, "dir": "checkpoints/step-00000120"}
//! ```
//!
//! Every object is put whole (the store's puts are atomic), and `latest.json`
//! is written only after the three files of its checkpoint, so it never points
//! at a partial one. Older checkpoints are pruned after the pointer moves.
//!
//! The state needs no random-generator snapshots: every stream of a trial
//! (initialisation, dropout, sampler, augmentation) is derived from the seed
//! and the position (step, epoch, sample), so the position *is* the RNG state.

use cohort_common::store::{Store, StoreError};
use serde::{Deserialize, Serialize};

use super::sampler::SamplerPosition;
use super::schedule::EarlyStopping;

/// Why a checkpoint could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{url}: {message}")]
    Corrupt { url: String, message: String },
    #[error(
        "{url}: the checkpoint was written by a trial with other settings (fingerprint {found}, this trial {expected}); use a fresh artifacts folder or the original job file"
    )]
    Mismatch {
        url: String,
        found: String,
        expected: String,
    },
}

/// The metrics of one finished epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: u64,
    /// Mean global-batch Cox loss over the epoch's steps.
    pub train_loss: f64,
    /// Harrell's C of the validation cohort (NaN when it has no usable pairs).
    pub val_cindex: f64,
    /// Learning rate of the epoch's last step.
    pub lr: f64,
    /// Optimizer steps taken so far (all epochs).
    pub steps: u64,
}

/// Everything besides tensors that a resumed trial needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Identifies the settings the trial was started with.
    pub fingerprint: String,
    /// Optimizer steps taken.
    pub step: u64,
    /// The next global batch.
    pub position: SamplerPosition,
    /// Sum and count of the current epoch's losses so far.
    pub epoch_loss_sum: f64,
    pub epoch_steps: u64,
    pub early_stopping: EarlyStopping,
    pub history: Vec<EpochRecord>,
    /// Set once early stopping or the epoch budget ended training.
    pub training_done: bool,
}

/// A checkpoint: the tensors as burnpack bytes and the state.
pub struct Checkpoint {
    pub model: Vec<u8>,
    pub optimizer: Vec<u8>,
    pub state: TrainState,
}

#[derive(Serialize, Deserialize)]
struct Latest {
    step: u64,
    dir: String,
}

const LATEST: &str = "checkpoints/latest.json";

/// Writes `checkpoint` under `trial` and moves `latest.json` to it; keeps the newest
/// `keep` checkpoints. Returns the checkpoint folder's URL.
pub async fn save(
    trial: &Store,
    checkpoint: Checkpoint,
    keep: usize,
) -> Result<String, CheckpointError> {
    let dir = format!("checkpoints/step-{:08}", checkpoint.state.step);
    let state = serde_json::to_vec_pretty(&checkpoint.state).expect("state serialises");
    trial
        .put(&format!("{dir}/model.bpk"), checkpoint.model)
        .await?;
    trial
        .put(
            &format!("{dir}/optimizer.bpk"),
            checkpoint.optimizer.clone(),
        )
        .await?;
    trial.put(&format!("{dir}/state.json"), state).await?;
    let latest = Latest {
        step: checkpoint.state.step,
        dir: dir.clone(),
    };
    trial
        .put(
            LATEST,
            serde_json::to_vec(&latest).expect("pointer serialises"),
        )
        .await?;
    prune(trial, keep.max(1)).await?;
    Ok(trial.url_of(&dir))
}

/// Deletes all but the newest `keep` checkpoint folders (by step).
async fn prune(trial: &Store, keep: usize) -> Result<(), StoreError> {
    let folder = trial.child("checkpoints")?;
    let mut steps: Vec<String> = folder
        .list()
        .await?
        .into_iter()
        .filter_map(|p| p.split_once('/').map(|(d, _)| d.to_string()))
        .filter(|d| d.starts_with("step-"))
        .collect();
    steps.sort();
    steps.dedup();
    let stale = steps.len().saturating_sub(keep);
    for dir in &steps[..stale] {
        for file in ["state.json", "optimizer.bpk", "model.bpk"] {
            folder.delete(&format!("{dir}/{file}")).await?;
        }
    }
    Ok(())
}

/// The newest complete checkpoint of `trial`, if any; refuses one written with another
/// `fingerprint`.
pub async fn load_latest(
    trial: &Store,
    fingerprint: &str,
) -> Result<Option<Checkpoint>, CheckpointError> {
    let pointer = match trial.get(LATEST).await {
        Ok(b) => b,
        Err(StoreError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let corrupt = |url: String, message: String| CheckpointError::Corrupt { url, message };
    let latest: Latest = serde_json::from_slice(&pointer)
        .map_err(|e| corrupt(trial.url_of(LATEST), e.to_string()))?;
    let state_rel = format!("{}/state.json", latest.dir);
    let state: TrainState = serde_json::from_slice(&trial.get(&state_rel).await?)
        .map_err(|e| corrupt(trial.url_of(&state_rel), e.to_string()))?;
    if state.fingerprint != fingerprint {
        return Err(CheckpointError::Mismatch {
            url: trial.url_of(&state_rel),
            found: state.fingerprint,
            expected: fingerprint.to_string(),
        });
    }
    let model = trial
        .get(&format!("{}/model.bpk", latest.dir))
        .await?
        .to_vec();
    let optimizer = trial
        .get(&format!("{}/optimizer.bpk", latest.dir))
        .await?
        .to_vec();
    Ok(Some(Checkpoint {
        model,
        optimizer,
        state,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(step: u64) -> TrainState {
        TrainState {
            fingerprint: "abc".into(),
            step,
            position: SamplerPosition { epoch: 1, batch: 2 },
            epoch_loss_sum: 1.5,
            epoch_steps: 2,
            early_stopping: EarlyStopping::new(3, 0.0),
            history: Vec::new(),
            training_done: false,
        }
    }

    #[tokio::test]
    async fn the_latest_pointer_moves_last_and_old_checkpoints_are_pruned() {
        let store = Store::open("memory://checkpoint-test/trial").unwrap();
        assert!(load_latest(&store, "abc").await.unwrap().is_none());
        for step in [10, 20, 30] {
            let c = Checkpoint {
                model: vec![step as u8; 4],
                optimizer: vec![1, 2, 3],
                state: state(step),
            };
            save(&store, c, 2).await.unwrap();
        }
        let got = load_latest(&store, "abc").await.unwrap().unwrap();
        assert_eq!(got.state, state(30));
        assert_eq!(got.model, vec![30u8; 4]);
        let listed = store.list().await.unwrap();
        assert!(!listed.iter().any(|p| p.contains("step-00000010")));
        assert!(listed.iter().any(|p| p.contains("step-00000020")));
        let err = load_latest(&store, "other").await.err().unwrap();
        assert!(err.to_string().contains("other settings"), "{err}");
    }
}
