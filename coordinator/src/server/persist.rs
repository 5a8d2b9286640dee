//! Job state in the artifact store: `jobs/<job_id>/job.json`.
//!
//! Each save is one whole-object put (`Store::put` is atomic), so a crash
//! leaves either the previous or the new state, never a torn file. Loading
//! lists `jobs/` and reads every `<id>/job.json`; trials that were running
//! become pending (their groups died with the old coordinator, and their
//! folders' checkpoints make the next group resume), and jobs whose trials all
//! ended but whose report was not written yet are finished again.

use cohort_common::store::{Store, StoreError};

use super::state::{JobRecord, TrialStatus};

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{url}: {message}")]
    Corrupt { url: String, message: String },
}

pub fn job_path(job_id: &str) -> String {
    format!("jobs/{job_id}/job.json")
}

pub async fn save(store: &Store, job: &JobRecord) -> Result<(), PersistError> {
    let json = serde_json::to_vec_pretty(job).map_err(|e| PersistError::Corrupt {
        url: store.url_of(&job_path(&job.job_id)),
        message: e.to_string(),
    })?;
    store.put(&job_path(&job.job_id), json).await?;
    Ok(())
}

/// Every job under `jobs/`, with running trials put back to pending.
pub async fn load_all(store: &Store) -> Result<Vec<JobRecord>, PersistError> {
    let listing = match store.child("jobs")?.list().await {
        Ok(l) => l,
        Err(StoreError::NotFound { .. }) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let mut jobs = Vec::new();
    for rel in listing {
        let parts: Vec<&str> = rel.split('/').collect();
        if parts.len() != 2 || parts[1] != "job.json" {
            continue;
        }
        let path = job_path(parts[0]);
        let bytes = store.get(&path).await?;
        let mut job: JobRecord =
            serde_json::from_slice(&bytes).map_err(|e| PersistError::Corrupt {
                url: store.url_of(&path),
                message: e.to_string(),
            })?;
        for trial in &mut job.trials {
            if trial.status == TrialStatus::Running {
                trial.status = TrialStatus::Pending;
            }
            trial.group = None;
        }
        jobs.push(job);
    }
    Ok(jobs)
}
