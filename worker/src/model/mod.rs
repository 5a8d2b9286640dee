//! The 3D DenseNet survival model.
//!
//! Why a DenseNet, and why exactly MONAI's: the study (DESIGN.md) trains MONAI-style
//! `DenseNet121/169/201(spatial_dims=3)` models on MRI volumes, so Cohort reproduces that
//! architecture layer for layer: same modules, same channel arithmetic, same parameter
//! counts (11,243,649 / 18,544,385 / 25,332,737 with one input channel and one output), and
//! it loads MONAI `state_dict`s, so a model trained in PyTorch can be scored here and the
//! two implementations can be checked against each other on the same weights.
//!
//! - [`config`]: [`DenseNetConfig`] (MONAI's constructor arguments, presets, validation,
//!   the closed-form parameter count) and [`NormKind`].
//! - [`densenet`]: the burn modules ([`DenseNet3d`], [`DenseLayer`], [`Transition`],
//!   [`Norm`], [`Dropout3d`]).
//! - [`pool`]: 3D max/average pooling, which burn 0.22 lacks, built exactly from its 2D
//!   pooling kernels (pooling over a cube is separable).
//! - [`monai`]: loading MONAI weights from `.pt` or safetensors, with the key mapping.
//! - [`file`]: a Cohort model directory (`model.json` + `weights.bpk`), save and load.
//! - [`summary`]: the layer table and parameter count of a configuration.
//!
//! The model is backend-agnostic: burn 0.22 tensors carry their backend in their
//! [`burn::tensor::Device`] (`Device::flex()` for the pure-Rust CPU backend,
//! `device.autodiff()` for training), so nothing here names a backend type.

pub mod config;
pub mod densenet;
pub mod file;
pub mod monai;
pub mod pool;
pub mod summary;

pub use config::{ConfigError, DenseNetConfig, NormKind, PRESETS};
pub use densenet::{DenseBlock, DenseLayer, DenseNet3d, Dropout3d, Norm, Transition};
pub use file::{ModelFileError, load_model, save_model};
pub use monai::{ImportError, load_monai, load_monai_into, monai_key_rules};
pub use summary::{LayerRow, Summary, summary};
