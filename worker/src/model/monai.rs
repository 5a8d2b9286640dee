//! Loading a MONAI `DenseNet` `state_dict` (`.pt` from `torch.save`, or safetensors with
//! MONAI's key names) into a [`DenseNet3d`].
//!
//! burn-store does the reading and the layout work: `PytorchStore` (pickle/zip `.pt`) and
//! `SafetensorsStore` hand tensors to the module through `PyTorchToBurnAdapter`, which
//! transposes `Linear` weights (PyTorch `[out, in]`, burn `[in, out]`) and renames
//! BatchNorm/GroupNorm `weight`/`bias` to burn's `gamma`/`beta`. Conv weights have the same
//! `[out, in, kd, kh, kw]` layout in both. What is left is the module-name mapping, done here
//! with one anchored regex per module (generated from the config, so `denselayer1.` never
//! catches `denselayer10.`):
//!
//! | MONAI                                              | burn                          |
//! |----------------------------------------------------|-------------------------------|
//! | `features.conv0.`                                  | `conv0.`                      |
//! | `features.norm0.`                                  | `norm0.`                      |
//! | `features.denseblock{i}.denselayer{j}.layers.`     | `blocks.{i-1}.layers.{j-1}.`  |
//! | `features.transition{i}.`                          | `transitions.{i-1}.`          |
//! | `features.norm5.`                                  | `norm5.`                      |
//! | `class_layers.out.`                                | `out.`                        |
//!
//! Norm slots are an enum ([`super::Norm`]); enum variant names are skipped when matching,
//! so `norm0.weight` finds `norm0.Batch.gamma`. `num_batches_tracked` has no counterpart
//! (burn's BatchNorm has a fixed momentum): burn-store reports it as unused and it is
//! ignored. (A store filter would not drop it: filters select *module* paths to load.) The load is strict: every
//! parameter and running statistic of the burn module must be found with the right shape,
//! and every MONAI tensor must be used, so a config that does not match the checkpoint fails
//! with the names involved rather than silently leaving random weights.

use std::path::Path;

use burn::store::{
    ApplyResult, KeyRemapper, ModuleSnapshot, PyTorchToBurnAdapter, PytorchStore, SafetensorsStore,
};
use burn::tensor::Device;

use super::config::DenseNetConfig;
use super::densenet::DenseNet3d;

/// An error loading MONAI weights.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] super::config::ConfigError),
    /// The file's extension is neither `.pt`/`.pth` nor `.safetensors`.
    #[error("{0}: expected a .pt, .pth or .safetensors MONAI state_dict")]
    Format(String),
    /// burn-store could not read or apply the file.
    #[error("{path}: {message}")]
    Store {
        /// The file.
        path: String,
        /// burn-store's message (lists missing / mismatched tensors).
        message: String,
    },
    /// Tensors of the file that the model has no place for.
    #[error(
        "{path}: tensors not used by the model (does the config match the checkpoint?): {unused:?}"
    )]
    Unused {
        /// The file.
        path: String,
        /// MONAI names after remapping.
        unused: Vec<String>,
    },
}

/// The MONAI -> burn module-name rules for `cfg`, as `(regex, replacement)` pairs.
pub fn monai_key_rules(cfg: &DenseNetConfig) -> Vec<(String, String)> {
    let mut rules = vec![
        (r"^features\.conv0\.".to_string(), "conv0.".to_string()),
        (r"^features\.norm0\.".to_string(), "norm0.".to_string()),
        (r"^features\.norm5\.".to_string(), "norm5.".to_string()),
        (r"^class_layers\.out\.".to_string(), "out.".to_string()),
    ];
    for (i, &layers) in cfg.block_config.iter().enumerate() {
        for j in 0..layers {
            rules.push((
                format!(
                    r"^features\.denseblock{}\.denselayer{}\.layers\.",
                    i + 1,
                    j + 1
                ),
                format!("blocks.{i}.layers.{j}."),
            ));
        }
        if i + 1 < cfg.block_config.len() {
            rules.push((
                format!(r"^features\.transition{}\.", i + 1),
                format!("transitions.{i}."),
            ));
        }
    }
    rules
}

fn remapper(cfg: &DenseNetConfig) -> KeyRemapper {
    KeyRemapper::from_patterns(monai_key_rules(cfg)).expect("the MONAI key rules are valid regexes")
}

/// Loads MONAI weights from `path` (`.pt`, `.pth` or `.safetensors`) into `model`, built
/// with the same `cfg`. Returns burn-store's report of what was applied.
pub fn load_monai_into(
    model: &mut DenseNet3d,
    cfg: &DenseNetConfig,
    path: &Path,
) -> Result<ApplyResult, ImportError> {
    let shown = path.display().to_string();
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let store_err = |e: &dyn std::fmt::Display| ImportError::Store {
        path: shown.clone(),
        message: e.to_string(),
    };
    let result = match ext.as_str() {
        "pt" | "pth" => {
            let mut store = PytorchStore::from_file(path)
                .remap(remapper(cfg))
                // Our indices are already contiguous; don't renumber anything.
                .map_indices_contiguous(false)
                .validate(true)
                .allow_partial(false);
            model.load_from(&mut store).map_err(|e| store_err(&e))?
        }
        "safetensors" => {
            let mut store = SafetensorsStore::from_file(path)
                .with_from_adapter(PyTorchToBurnAdapter)
                .remap(remapper(cfg))
                .skip_enum_variants(true)
                .validate(true)
                .allow_partial(false);
            model.load_from(&mut store).map_err(|e| store_err(&e))?
        }
        _ => return Err(ImportError::Format(shown)),
    };
    let unused: Vec<String> = result
        .unused
        .iter()
        .filter(|k| !k.ends_with("num_batches_tracked"))
        .cloned()
        .collect();
    if !unused.is_empty() {
        return Err(ImportError::Unused {
            path: shown,
            unused,
        });
    }
    Ok(result)
}

/// Builds a [`DenseNet3d`] for `cfg` on `device` and loads MONAI weights from `path` into it.
pub fn load_monai(
    cfg: &DenseNetConfig,
    path: &Path,
    device: &Device,
) -> Result<DenseNet3d, ImportError> {
    let mut model = DenseNet3d::new(cfg, device)?;
    load_monai_into(&mut model, cfg, path)?;
    Ok(model)
}
