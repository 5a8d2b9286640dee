//! Scoring: turning input files into a `[N, C, D, H, W]` batch and a model's eval-mode
//! log-risks for it (what `cohort-worker predict` runs).
//!
//! Two input forms, both checked before any tensor work so a wrong file is an error that
//! names it, never a panic inside a kernel:
//! - NIfTI volumes, one file per channel in channel order, one patient: decoded with
//!   [`cohort_common::nifti`] and stacked with [`cohort_common::preprocess::stack`] on the
//!   volumes' own grid (no resampling, no normalisation: the volumes must already be what
//!   the model was trained on; every channel must share the first one's grid);
//! - a safetensors tensor `batch x channels x D x H x W` (f32 or f64), e.g. an exported
//!   PyTorch batch.
//!
//! Scores are computed in eval mode (running BatchNorm statistics, no dropout), so they do
//! not depend on how samples are grouped into forward passes; [`score`] therefore runs
//! large inputs in chunks to bound memory.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use cohort_common::{nifti, preprocess};

use crate::model::{DenseNet3d, DenseNetConfig};

/// A batch of network input in host memory, `shape = [N, C, D, H, W]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// `[N, C, D, H, W]`.
    pub shape: [usize; 5],
    /// Row-major values.
    pub data: Vec<f32>,
}

/// Why an input cannot be scored; every variant names the file or the mismatch.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Not a safetensors file, or a corrupt one.
    #[error("{path}: not a readable safetensors file: {message}")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// The tensor is not in the file, or no `--tensor` was given and the file has several.
    #[error("{path}: {message} (tensors in the file: {names:?})")]
    TensorName {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
        /// The file's tensor names.
        names: Vec<String>,
    },
    /// The tensor has the wrong rank or an unsupported dtype.
    #[error("{path}: tensor {name:?} {message}")]
    Tensor {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A NIfTI file could not be decoded.
    #[error("{path}: {source}")]
    Nifti {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        source: nifti::NiftiError,
    },
    /// The volumes could not be stacked (different grids, NaN voxels, ...).
    #[error(transparent)]
    Preprocess(#[from] preprocess::PreprocessError),
    /// No input file.
    #[error("no input: give --input FILE (one NIfTI volume per channel, or a safetensors file)")]
    NoInput,
    /// Safetensors and NIfTI inputs mixed, or several safetensors files.
    #[error("--input takes one safetensors file, or one NIfTI volume per channel: {0}")]
    Mixed(String),
    /// The input does not fit the model.
    #[error("input of shape {shape:?} does not fit the model: {message}")]
    Shape {
        /// The input's `[N, C, D, H, W]`.
        shape: [usize; 5],
        /// What is wrong.
        message: String,
    },
}

fn is_safetensors(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("safetensors"))
}

/// Reads `--input` files: one `.safetensors` file (tensor `tensor`, or its only tensor), or
/// NIfTI volumes, one per channel, as a batch of one.
pub fn read_input(paths: &[PathBuf], tensor: Option<&str>) -> Result<Batch, InputError> {
    let first = paths.first().ok_or(InputError::NoInput)?;
    let n_st = paths.iter().filter(|p| is_safetensors(p)).count();
    match (n_st, paths.len()) {
        (0, _) => {
            if let Some(name) = tensor {
                return Err(InputError::Mixed(format!(
                    "--tensor {name} applies to a safetensors input only"
                )));
            }
            read_nifti_channels(paths)
        }
        (1, 1) => read_safetensors_batch(first, tensor),
        _ => Err(InputError::Mixed(format!("got {paths:?}"))),
    }
}

/// The tensor `name` (or the file's only tensor) of a safetensors file as a 5D batch.
pub fn read_safetensors_batch(path: &Path, name: Option<&str>) -> Result<Batch, InputError> {
    let bytes = std::fs::read(path).map_err(|source| InputError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let st =
        safetensors::SafeTensors::deserialize(&bytes).map_err(|e| InputError::Safetensors {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
    names.sort();
    let name_err = |message: String| InputError::TensorName {
        path: path.to_path_buf(),
        message,
        names: names.clone(),
    };
    let name = match name {
        Some(n) if names.iter().any(|k| k == n) => n.to_string(),
        Some(n) => return Err(name_err(format!("no tensor {n:?}"))),
        None if names.len() == 1 => names[0].clone(),
        None => {
            return Err(name_err(
                "several tensors; choose one with --tensor NAME".into(),
            ));
        }
    };
    let view = st
        .tensor(&name)
        .map_err(|e| name_err(format!("tensor {name:?}: {e}")))?;
    let tensor_err = |message: String| InputError::Tensor {
        path: path.to_path_buf(),
        name: name.clone(),
        message,
    };
    let shape: [usize; 5] = view.shape().try_into().map_err(|_| {
        tensor_err(format!(
            "has shape {:?}; expected batch x channels x D x H x W",
            view.shape()
        ))
    })?;
    let data: Vec<f32> = match view.dtype() {
        safetensors::Dtype::F32 => view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        safetensors::Dtype::F64 => view
            .data()
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32)
            .collect(),
        other => {
            return Err(tensor_err(format!(
                "has dtype {other:?}; expected F32 or F64"
            )));
        }
    };
    if data.len() != shape.iter().product::<usize>() {
        return Err(tensor_err(
            "has a data length that does not match its shape".into(),
        ));
    }
    Ok(Batch { shape, data })
}

/// NIfTI volumes, one per channel, stacked on the first volume's grid as a batch of one.
pub fn read_nifti_channels(paths: &[PathBuf]) -> Result<Batch, InputError> {
    let mut volumes = Vec::with_capacity(paths.len());
    for path in paths {
        let bytes = std::fs::read(path).map_err(|source| InputError::Io {
            path: path.clone(),
            source,
        })?;
        let volume = nifti::decode(&bytes)
            .and_then(nifti::Nifti::into_volume)
            .map_err(|source| InputError::Nifti {
                path: path.clone(),
                source,
            })?;
        volumes.push((path.display().to_string(), volume));
    }
    let channels: Vec<(&str, &nifti::Volume)> =
        volumes.iter().map(|(p, v)| (p.as_str(), v)).collect();
    // The volumes' own grid: no resampling, no normalisation, no crop.
    let pipeline = preprocess::Pipeline {
        spacing: None,
        resize: None,
        normalize: None,
        shape: None,
        pad_value: 0.0,
    };
    let geometry = preprocess::Geometry::RequireSame { tolerance_mm: 0.01 };
    let stacked = preprocess::stack(&channels, &pipeline, geometry)?;
    let [c, d, h, w] = stacked.shape;
    Ok(Batch {
        shape: [1, c, d, h, w],
        data: stacked.data,
    })
}

/// Checks that `shape` fits `cfg`: the channel count, and a volume large enough that every
/// transition's 2^3 average pool still has a voxel to pool (the stem halves each axis twice,
/// each transition once more).
pub fn check_input(cfg: &DenseNetConfig, shape: [usize; 5]) -> Result<(), InputError> {
    let [n, c, d, h, w] = shape;
    let err = |message: String| InputError::Shape { shape, message };
    if n == 0 {
        return Err(err("the batch is empty".into()));
    }
    if c != cfg.in_channels {
        return Err(err(format!(
            "the model takes {} input channel(s), the input has {c}",
            cfg.in_channels
        )));
    }
    let transitions = cfg.block_config.len().saturating_sub(1);
    for (axis, len) in [("D", d), ("H", h), ("W", w)] {
        if len == 0 {
            return Err(err(format!("axis {axis} is empty")));
        }
        // conv 7^3 stride 2 padding 3, then max pool 3^3 stride 2 padding 1.
        let mut s = (len - 1) / 2 + 1;
        s = (s - 1) / 2 + 1;
        for t in 0..transitions {
            if s < 2 {
                return Err(err(format!(
                    "axis {axis} ({len} voxels) shrinks to {s} before transition {}; \
                     the model needs at least {} voxels per axis",
                    t + 1,
                    min_axis_len(transitions)
                )));
            }
            s /= 2;
        }
    }
    Ok(())
}

/// The smallest axis length with which `transitions` transitions each still see 2 voxels.
fn min_axis_len(transitions: usize) -> usize {
    // After the stem a length L becomes ceil(ceil(L / 2) / 2); we need 2^transitions there.
    let need = 1usize << transitions;
    if transitions == 0 {
        1
    } else {
        4 * (need - 1) + 1
    }
}

/// Eval-mode scores (first output column: the log-risk) of `batch` under `model`, on
/// `device`, `chunk` samples per forward pass.
pub fn score(
    model: &DenseNet3d,
    cfg: &DenseNetConfig,
    batch: &Batch,
    device: &Device,
    chunk: usize,
) -> Result<Vec<f32>, InputError> {
    check_input(cfg, batch.shape)?;
    let model = model.valid();
    let [n, c, d, h, w] = batch.shape;
    let per_sample = c * d * h * w;
    let chunk = chunk.max(1);
    let mut scores = Vec::with_capacity(n);
    for start in (0..n).step_by(chunk) {
        let m = chunk.min(n - start);
        let values = batch.data[start * per_sample..(start + m) * per_sample].to_vec();
        let x = Tensor::<5>::from_data(TensorData::new(values, [m, c, d, h, w]), device);
        let eta = model.log_risk(x);
        let eta: Vec<f32> = eta
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| InputError::Shape {
                shape: batch.shape,
                message: format!("reading the scores back: {e:?}"),
            })?;
        scores.extend(eta);
    }
    Ok(scores)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimum_sizes() {
        let cfg = DenseNetConfig::preset("densenet121", 1).unwrap();
        assert_eq!(min_axis_len(3), 29);
        assert!(check_input(&cfg, [1, 1, 29, 29, 29]).is_ok());
        let err = check_input(&cfg, [1, 1, 28, 32, 32])
            .unwrap_err()
            .to_string();
        assert!(err.contains("axis D") && err.contains("29"), "{err}");
        let err = check_input(&cfg, [1, 2, 32, 32, 32])
            .unwrap_err()
            .to_string();
        assert!(err.contains("1 input channel"), "{err}");
        let tiny = DenseNetConfig::preset("tiny", 1).unwrap();
        assert_eq!(min_axis_len(1), 5);
        assert!(check_input(&tiny, [1, 1, 5, 5, 5]).is_ok());
        assert!(check_input(&tiny, [1, 1, 4, 5, 5]).is_err());
    }
}
