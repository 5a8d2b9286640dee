//! Loading patients' volumes: fetch, decode, preprocess, cache, and prefetch
//! ahead of the training step.
//!
//! [`VolumeSource::load`] turns one patient of a manifest into its stacked
//! `[C, D, H, W]` tensor. [`prefetch`] runs loads for a known order of
//! patients (the sampler's batches) on a background thread, several at a
//! time, and hands them over in order through a bounded queue, so decoding
//! overlaps the model's forward and backward passes and memory stays bounded
//! by the queue depth.
//!
//! Every error names the patient, the sequence and the volume's URL.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use cohort_common::cohort::Manifest;
use cohort_common::nifti;
use cohort_common::preprocess::{self, Geometry, Pipeline, Stacked};
use cohort_common::store::{Store, StoreError};
use futures::StreamExt;

use super::cache::{CacheError, Digest32, VolumeCache, entry_key, sha256};

/// Why a patient's volumes could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("patient {patient_id}, sequence {sequence}: {source}")]
    Store {
        patient_id: String,
        sequence: String,
        #[source]
        source: Box<StoreError>,
    },
    #[error("patient {patient_id}, sequence {sequence} ({url}): {source}")]
    Nifti {
        patient_id: String,
        sequence: String,
        url: String,
        #[source]
        source: Box<nifti::NiftiError>,
    },
    #[error("patient {patient_id}: {source}")]
    Preprocess {
        patient_id: String,
        #[source]
        source: Box<preprocess::PreprocessError>,
    },
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("patient index {index} is out of range (the manifest has {len} patients)")]
    NoSuchPatient { index: usize, len: usize },
    #[error("loading patient {patient_id}: worker task failed: {message}")]
    Task { patient_id: String, message: String },
}

/// Where a worker's volumes come from and how they are prepared.
#[derive(Clone, Debug)]
pub struct VolumeSource {
    pub store: Store,
    pub manifest: Arc<Manifest>,
    pub pipeline: Pipeline,
    pub geometry: Geometry,
    pub cache: Option<VolumeCache>,
}

impl VolumeSource {
    /// One patient's stacked volumes, from the cache when possible.
    pub async fn load(&self, index: usize) -> Result<Stacked, DataError> {
        let patient = self
            .manifest
            .patients
            .get(index)
            .ok_or(DataError::NoSuchPatient {
                index,
                len: self.manifest.patients.len(),
            })?;
        let store_error = |sequence: &str, source| DataError::Store {
            patient_id: patient.id.clone(),
            sequence: sequence.to_string(),
            source: Box::new(source),
        };
        let sequences = &self.manifest.sequences;

        // Unchanged objects whose content we have hashed before: no fetch at all.
        let mut infos = Vec::with_capacity(sequences.len());
        if let Some(cache) = &self.cache {
            let mut known: Vec<Digest32> = Vec::new();
            for (seq, path) in sequences.iter().zip(&patient.volumes) {
                let info = self
                    .store
                    .meta(path)
                    .await
                    .map_err(|e| store_error(seq, e))?;
                if let Some(d) = cache.known_content(&self.store.url_of(path), &info) {
                    known.push(d);
                }
                infos.push(info);
            }
            if known.len() == sequences.len()
                && let Some(hit) = cache.get(&entry_key(&known, &self.pipeline))?
            {
                return Ok(hit);
            }
        }

        let fetched = futures::future::join_all(
            sequences
                .iter()
                .zip(&patient.volumes)
                .map(|(seq, path)| async move {
                    self.store.get(path).await.map_err(|e| store_error(seq, e))
                }),
        )
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;

        let key = match &self.cache {
            Some(cache) => {
                let contents: Vec<Digest32> = fetched.iter().map(|b| sha256(b)).collect();
                for ((path, info), content) in patient.volumes.iter().zip(&infos).zip(&contents) {
                    cache.remember_content(&self.store.url_of(path), info, content)?;
                }
                let key = entry_key(&contents, &self.pipeline);
                if let Some(hit) = cache.get(&key)? {
                    return Ok(hit);
                }
                Some(key)
            }
            None => None,
        };

        let source = self.clone();
        let patient_id = patient.id.clone();
        let stacked = tokio::task::spawn_blocking(move || source.decode_and_stack(index, &fetched))
            .await
            .map_err(|e| DataError::Task {
                patient_id,
                message: e.to_string(),
            })??;
        if let (Some(cache), Some(key)) = (&self.cache, key) {
            cache.put(&key, &stacked)?;
        }
        Ok(stacked)
    }

    fn decode_and_stack(
        &self,
        index: usize,
        fetched: &[bytes::Bytes],
    ) -> Result<Stacked, DataError> {
        let patient = &self.manifest.patients[index];
        let mut volumes = Vec::with_capacity(fetched.len());
        for ((seq, path), bytes) in self
            .manifest
            .sequences
            .iter()
            .zip(&patient.volumes)
            .zip(fetched)
        {
            let url = self.store.url_of(path);
            let nifti_error = |source| DataError::Nifti {
                patient_id: patient.id.clone(),
                sequence: seq.clone(),
                url: url.clone(),
                source: Box::new(source),
            };
            let volume = nifti::decode(bytes)
                .and_then(nifti::Nifti::into_volume)
                .map_err(nifti_error)?;
            volumes.push((url, volume));
        }
        let channels: Vec<(&str, &nifti::Volume)> =
            volumes.iter().map(|(u, v)| (u.as_str(), v)).collect();
        preprocess::stack(&channels, &self.pipeline, self.geometry).map_err(|source| {
            DataError::Preprocess {
                patient_id: patient.id.clone(),
                source: Box::new(source),
            }
        })
    }
}

/// Loads handed over in order by [`prefetch`].
pub struct Prefetcher {
    receiver: Receiver<(usize, Result<Stacked, DataError>)>,
    thread: Option<JoinHandle<()>>,
}

impl Iterator for Prefetcher {
    /// `(patient index, stacked volumes)`.
    type Item = (usize, Result<Stacked, DataError>);

    fn next(&mut self) -> Option<Self::Item> {
        self.receiver.recv().ok()
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        // Dropping the receiver makes the producer's next send fail, which
        // ends its loop; wait so no load outlives the prefetcher.
        let (_, dead) = sync_channel(0);
        drop(std::mem::replace(&mut self.receiver, dead));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts loading `order` on a background thread, `depth` patients at a time
/// and at most `depth` finished ones waiting; yields them in `order`.
pub fn prefetch(source: Arc<VolumeSource>, order: Vec<usize>, depth: usize) -> Prefetcher {
    let depth = depth.max(1);
    let (sender, receiver) = sync_channel(depth);
    let thread = std::thread::Builder::new()
        .name("cohort-prefetch".into())
        .spawn(move || run_prefetch(source, order, depth, sender))
        .expect("spawning the prefetch thread");
    Prefetcher {
        receiver,
        thread: Some(thread),
    }
}

fn run_prefetch(
    source: Arc<VolumeSource>,
    order: Vec<usize>,
    depth: usize,
    sender: SyncSender<(usize, Result<Stacked, DataError>)>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let error = DataError::Task {
                patient_id: "(all)".into(),
                message: format!("cannot start the prefetch runtime: {e}"),
            };
            let _ = sender.send((order.first().copied().unwrap_or(0), Err(error)));
            return;
        }
    };
    runtime.block_on(async move {
        let mut loads = futures::stream::iter(order)
            .map(|i| {
                let source = source.clone();
                async move { (i, source.load(i).await) }
            })
            .buffered(depth);
        while let Some(item) = loads.next().await {
            if sender.send(item).is_err() {
                break;
            }
        }
    });
}
