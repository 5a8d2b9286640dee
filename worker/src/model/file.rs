//! A Cohort model on disk: a directory holding `model.json` (the [`DenseNetConfig`]) and
//! `weights.bpk` (every parameter and BatchNorm running statistic, in burn's burnpack
//! format). The config travels with the weights, so `predict` needs nothing but the path.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::Device;

use super::config::DenseNetConfig;
use super::densenet::DenseNet3d;

/// The config file inside a model directory.
pub const CONFIG_FILE: &str = "model.json";
/// The weights file inside a model directory.
pub const WEIGHTS_FILE: &str = "weights.bpk";

/// An error reading or writing a model directory, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum ModelFileError {
    /// I/O on a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// `model.json` is not a valid configuration.
    #[error("{path}: {source}")]
    Config {
        /// The file.
        path: PathBuf,
        /// The error (names the key).
        source: serde_json::Error,
    },
    /// The configuration is invalid.
    #[error("{path}: {source}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The error.
        source: super::config::ConfigError,
    },
    /// burn-store could not write or read the weights.
    #[error("{path}: {message}")]
    Weights {
        /// The file.
        path: PathBuf,
        /// burn-store's message.
        message: String,
    },
}

/// Writes `model` and its `cfg` to the directory `dir` (created if needed; existing files
/// replaced).
pub fn save_model(
    model: &DenseNet3d,
    cfg: &DenseNetConfig,
    dir: &Path,
) -> Result<(), ModelFileError> {
    let io = |path: PathBuf| move |source| ModelFileError::Io { path, source };
    std::fs::create_dir_all(dir).map_err(io(dir.to_path_buf()))?;
    let cfg_path = dir.join(CONFIG_FILE);
    let json = serde_json::to_string_pretty(cfg).expect("a config serialises");
    std::fs::write(&cfg_path, json + "\n").map_err(io(cfg_path.clone()))?;
    let weights = dir.join(WEIGHTS_FILE);
    let mut store = BurnpackStore::from_file(&weights)
        .auto_extension(false)
        .overwrite(true)
        .metadata("cohort_model", "densenet3d");
    // The eval snapshot syncs pending BatchNorm statistics (see `weights_to_bytes`).
    model
        .valid()
        .save_into(&mut store)
        .map_err(|e| ModelFileError::Weights {
            path: weights.clone(),
            message: e.to_string(),
        })
}

/// Reads the model directory `dir` onto `device`.
pub fn load_model(
    dir: &Path,
    device: &Device,
) -> Result<(DenseNet3d, DenseNetConfig), ModelFileError> {
    let cfg_path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&cfg_path).map_err(|source| ModelFileError::Io {
        path: cfg_path.clone(),
        source,
    })?;
    let cfg: DenseNetConfig =
        serde_json::from_str(&text).map_err(|source| ModelFileError::Config {
            path: cfg_path.clone(),
            source,
        })?;
    let mut model = DenseNet3d::new(&cfg, device).map_err(|source| ModelFileError::Invalid {
        path: cfg_path,
        source,
    })?;
    let weights = dir.join(WEIGHTS_FILE);
    let mut store = BurnpackStore::from_file(&weights).auto_extension(false);
    model
        .load_from(&mut store)
        .map_err(|e| ModelFileError::Weights {
            path: weights.clone(),
            message: e.to_string(),
        })?;
    Ok((model, cfg))
}

/// The weights of `model` as burnpack bytes (what `weights.bpk` holds): every parameter with
/// its id, and the BatchNorm running statistics. Checkpoints and object-store model
/// directories are written from these bytes, whole.
///
/// The bytes are taken from the eval snapshot (`valid()`): a BatchNorm's `RunningState`
/// keeps its latest update pending until it is synced, and visiting it (which saving does)
/// reads the value *before* that update; `valid()` syncs first. Saving the model itself
/// would store statistics one step stale, and a resumed run would drift from an
/// uninterrupted one.
pub fn weights_to_bytes(model: &DenseNet3d) -> Result<Vec<u8>, ModelFileError> {
    let mut store = BurnpackStore::from_bytes(None).metadata("cohort_model", "densenet3d");
    model
        .valid()
        .save_into(&mut store)
        .map_err(|e| ModelFileError::Weights {
            path: PathBuf::from("(memory)"),
            message: e.to_string(),
        })?;
    let bytes = store.get_bytes().map_err(|e| ModelFileError::Weights {
        path: PathBuf::from("(memory)"),
        message: e.to_string(),
    })?;
    Ok(bytes.to_vec())
}

/// Loads burnpack `bytes` (from [`weights_to_bytes`]) into `model`, whose config must match;
/// `source` names where the bytes came from, for the error.
pub fn weights_from_bytes(
    model: &mut DenseNet3d,
    bytes: Vec<u8>,
    source: &str,
) -> Result<(), ModelFileError> {
    let mut store = BurnpackStore::from_bytes(Some(burn::tensor::Bytes::from_bytes_vec(bytes)));
    model
        .load_from(&mut store)
        .map_err(|e| ModelFileError::Weights {
            path: PathBuf::from(source),
            message: e.to_string(),
        })?;
    Ok(())
}
