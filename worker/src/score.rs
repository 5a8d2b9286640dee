//! Risk scores: a model's log-risk for patients of a cohort, and the
//! `scores.csv` the survival analysis reads.
//!
//! Scoring runs the eval snapshot of the model (`Module::valid()`: BatchNorm on
//! its running statistics, dropout off), so a patient's score does not depend
//! on which other patients share its batch, nor on the worker that scored it.

use std::sync::Arc;

use burn::tensor::{Device, Tensor, TensorData};
use cohort_common::cohort::{Manifest, SplitAssignment};

use crate::data::{DataError, VolumeSource, prefetch};
use crate::model::DenseNet3d;

/// Log-risks of the manifest patients `indices`, in that order, from the eval-mode `model`
/// on `device` (a plain, non-autodiff device), `batch` volumes per forward pass.
/// `progress` is called with the number scored so far.
pub fn score_patients(
    model: &DenseNet3d,
    source: Arc<VolumeSource>,
    indices: &[usize],
    batch: usize,
    prefetch_depth: usize,
    device: &Device,
    mut progress: impl FnMut(usize),
) -> Result<Vec<f64>, DataError> {
    let batch = batch.max(1);
    let mut loads = prefetch(source, indices.to_vec(), prefetch_depth.max(batch));
    let mut scores = Vec::with_capacity(indices.len());
    while scores.len() < indices.len() {
        let n = batch.min(indices.len() - scores.len());
        let mut data = Vec::new();
        let mut shape = [0; 4];
        for _ in 0..n {
            let (_, loaded) = loads.next().ok_or_else(|| DataError::Task {
                patient_id: "(scoring)".into(),
                message: "the prefetch thread ended early".into(),
            })?;
            let stacked = loaded?;
            shape = stacked.shape;
            data.extend_from_slice(&stacked.data);
        }
        let [c, d, h, w] = shape;
        let x = Tensor::<5>::from_data(TensorData::new(data, [n, c, d, h, w]), device);
        let eta = model
            .log_risk(x)
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("f32 after convert");
        scores.extend(eta.into_iter().map(f64::from));
        progress(scores.len());
    }
    Ok(scores)
}

/// `patient_id,split,score` for every patient of the manifest, in manifest order;
/// `scores[i]` is patient `i`'s score (`None`: not scored, left empty).
pub fn scores_csv(manifest: &Manifest, splits: &SplitAssignment, scores: &[Option<f64>]) -> String {
    let mut out = String::from("patient_id,split,score\n");
    for ((patient, split), score) in manifest.patients.iter().zip(&splits.splits).zip(scores) {
        let score = score.map(|s| format!("{}", s as f32)).unwrap_or_default();
        out.push_str(&format!("{},{},{score}\n", csv_field(&patient.id), split));
    }
    out
}

/// Quotes a CSV field when it needs it.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}
