//! The DenseNet's configuration: MONAI's constructor arguments, the named presets, and the
//! checks that catch an impossible configuration before any tensor is allocated.

use serde::{Deserialize, Serialize};

/// Which normalisation every norm slot of the network uses.
///
/// MONAI's `norm` argument: `"batch"` (the default, `BatchNorm3d`), `"instance"`
/// (`InstanceNorm3d` with PyTorch's defaults: no affine parameters, no running statistics)
/// or `("group", {"num_groups": G})` (`GroupNorm` with affine parameters).
///
/// In JSON: `"batch"`, `"instance"`, `{"group": {"num_groups": 8}}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum NormKind {
    /// Batch normalisation; statistics of the (per-worker) batch in training, running
    /// statistics in evaluation.
    #[default]
    Batch,
    /// Instance normalisation without affine parameters (PyTorch's `InstanceNorm3d` default).
    Instance,
    /// Group normalisation with `num_groups` groups and affine parameters.
    Group {
        /// Number of channel groups; must divide every norm's channel count.
        num_groups: usize,
    },
}

/// The constructor of a 3D DenseNet, with MONAI's argument names and defaults
/// (`DenseNet(spatial_dims=3, in_channels, out_channels, init_features=64, growth_rate=32,
/// block_config=(6, 12, 24, 16), bn_size=4, norm="batch", dropout_prob=0.0)`).
///
/// Serialised as the `MODEL.json` of `cohort-worker model import --config`:
/// `{"in_channels", "init_features", "growth_rate", "block_config", "bn_size", "dropout"}`,
/// plus the optional `out_channels` (1) and `norm` ("batch"). Unknown keys are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenseNetConfig {
    /// Input channels: one per MRI sequence.
    pub in_channels: usize,
    /// Outputs of the linear head; 1 for a log-risk.
    #[serde(default = "default_out_channels")]
    pub out_channels: usize,
    /// Channels after the stem convolution.
    #[serde(default = "default_init_features")]
    pub init_features: usize,
    /// Channels each dense layer adds (k).
    #[serde(default = "default_growth_rate")]
    pub growth_rate: usize,
    /// Dense layers per block; a transition (halving channels and resolution) sits between
    /// consecutive blocks.
    #[serde(default = "default_block_config")]
    pub block_config: Vec<usize>,
    /// Bottleneck width multiplier: the 1^3 convolution of a dense layer has
    /// `bn_size * growth_rate` output channels.
    #[serde(default = "default_bn_size")]
    pub bn_size: usize,
    /// Channel-wise dropout probability after each dense layer (MONAI's `dropout_prob`,
    /// `nn.Dropout3d`).
    #[serde(default)]
    pub dropout: f64,
    /// Normalisation kind.
    #[serde(default)]
    pub norm: NormKind,
}

fn default_out_channels() -> usize {
    1
}
fn default_init_features() -> usize {
    64
}
fn default_growth_rate() -> usize {
    32
}
fn default_block_config() -> Vec<usize> {
    vec![6, 12, 24, 16]
}
fn default_bn_size() -> usize {
    4
}

/// The named presets: `densenet121`, `densenet169`, `densenet201` (MONAI's
/// `DenseNet121/169/201`), and small CPU variants.
pub const PRESETS: &[(&str, &str)] = &[
    (
        "densenet121",
        "MONAI DenseNet121: init 64, growth 32, blocks (6,12,24,16), bn 4",
    ),
    (
        "densenet169",
        "MONAI DenseNet169: init 64, growth 32, blocks (6,12,32,32), bn 4",
    ),
    (
        "densenet201",
        "MONAI DenseNet201: init 64, growth 32, blocks (6,12,48,32), bn 4",
    ),
    (
        "small",
        "CPU preset: init 16, growth 12, blocks (3,3,3), bn 4",
    ),
    ("tiny", "Test preset: init 8, growth 4, blocks (2,2), bn 2"),
];

/// A configuration error, naming the offending field.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    /// An unknown preset name.
    #[error(
        "unknown model preset {0:?} (known: densenet121, densenet169, densenet201, small, tiny)"
    )]
    UnknownPreset(String),
    /// A field that must be positive is zero.
    #[error("model.{0} must be at least 1")]
    Zero(&'static str),
    /// `block_config` is empty or has an empty block.
    #[error("model.block_config must be a non-empty list of positive layer counts, got {0:?}")]
    BlockConfig(Vec<usize>),
    /// Dropout outside `[0, 1)`.
    #[error("model.dropout must be in [0, 1), got {0}")]
    Dropout(f64),
    /// Group norm whose group count does not divide a norm's channels.
    #[error("model.norm: num_groups {groups} does not divide the {channels} channels of {layer}")]
    Groups {
        /// The group count.
        groups: usize,
        /// The channels of the offending norm.
        channels: usize,
        /// Which norm.
        layer: String,
    },
}

impl DenseNetConfig {
    /// MONAI's defaults (DenseNet121's structure) for `in_channels` inputs and one output.
    pub fn new(in_channels: usize) -> Self {
        Self {
            in_channels,
            out_channels: 1,
            init_features: default_init_features(),
            growth_rate: default_growth_rate(),
            block_config: default_block_config(),
            bn_size: default_bn_size(),
            dropout: 0.0,
            norm: NormKind::Batch,
        }
    }

    /// A named preset (see [`PRESETS`]) with `in_channels` inputs and one output.
    pub fn preset(name: &str, in_channels: usize) -> Result<Self, ConfigError> {
        let base = Self::new(in_channels);
        let cfg = match name {
            "densenet121" => base,
            "densenet169" => Self {
                block_config: vec![6, 12, 32, 32],
                ..base
            },
            "densenet201" => Self {
                block_config: vec![6, 12, 48, 32],
                ..base
            },
            "small" => Self {
                init_features: 16,
                growth_rate: 12,
                block_config: vec![3, 3, 3],
                bn_size: 4,
                ..base
            },
            "tiny" => Self {
                init_features: 8,
                growth_rate: 4,
                block_config: vec![2, 2],
                bn_size: 2,
                ..base
            },
            other => return Err(ConfigError::UnknownPreset(other.to_string())),
        };
        Ok(cfg)
    }

    /// Sets the norm kind.
    pub fn with_norm(mut self, norm: NormKind) -> Self {
        self.norm = norm;
        self
    }

    /// Sets the dropout probability.
    pub fn with_dropout(mut self, dropout: f64) -> Self {
        self.dropout = dropout;
        self
    }

    /// The channel count entering every norm, in forward order, with MONAI's module name
    /// (`features.norm0`, `features.denseblock1.denselayer1.layers.norm1`, ...). Also the
    /// channel bookkeeping the model builder follows.
    pub fn norm_channels(&self) -> Vec<(String, usize)> {
        let mut out = vec![("features.norm0".to_string(), self.init_features)];
        let mut c = self.init_features;
        let bottleneck = self.bn_size * self.growth_rate;
        for (i, &layers) in self.block_config.iter().enumerate() {
            for j in 0..layers {
                let p = format!("features.denseblock{}.denselayer{}.layers", i + 1, j + 1);
                out.push((format!("{p}.norm1"), c));
                out.push((format!("{p}.norm2"), bottleneck));
                c += self.growth_rate;
            }
            if i + 1 == self.block_config.len() {
                out.push(("features.norm5".to_string(), c));
            } else {
                out.push((format!("features.transition{}.norm", i + 1), c));
                c /= 2;
            }
        }
        out
    }

    /// Channels entering the linear head.
    pub fn head_features(&self) -> usize {
        self.norm_channels()
            .last()
            .map(|(_, c)| *c)
            .unwrap_or(self.init_features)
    }

    /// Checks the configuration; every error names its field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, v) in [
            ("in_channels", self.in_channels),
            ("out_channels", self.out_channels),
            ("init_features", self.init_features),
            ("growth_rate", self.growth_rate),
            ("bn_size", self.bn_size),
        ] {
            if v == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        if self.block_config.is_empty() || self.block_config.contains(&0) {
            return Err(ConfigError::BlockConfig(self.block_config.clone()));
        }
        if !(self.dropout.is_finite() && (0.0..1.0).contains(&self.dropout)) {
            return Err(ConfigError::Dropout(self.dropout));
        }
        if let NormKind::Group { num_groups } = self.norm {
            if num_groups == 0 {
                return Err(ConfigError::Zero("norm.group.num_groups"));
            }
            for (layer, channels) in self.norm_channels() {
                if channels % num_groups != 0 {
                    return Err(ConfigError::Groups {
                        groups: num_groups,
                        channels,
                        layer,
                    });
                }
            }
        }
        Ok(())
    }

    /// The parameter count MONAI reports (`sum(p.numel() for p in model.parameters())`),
    /// computed from the configuration alone. BatchNorm running statistics are buffers, not
    /// parameters, and are not counted; instance norm has no parameters.
    pub fn expected_num_params(&self) -> usize {
        let norm = |c: usize| match self.norm {
            NormKind::Batch | NormKind::Group { .. } => 2 * c,
            NormKind::Instance => 0,
        };
        let k = self.growth_rate;
        let b = self.bn_size * k;
        let mut p = self.in_channels * self.init_features * 343 + norm(self.init_features);
        let mut c = self.init_features;
        for (i, &layers) in self.block_config.iter().enumerate() {
            for _ in 0..layers {
                p += norm(c) + c * b + norm(b) + b * k * 27;
                c += k;
            }
            p += norm(c);
            if i + 1 < self.block_config.len() {
                p += c * (c / 2);
                c /= 2;
            }
        }
        p + c * self.out_channels + self.out_channels
    }
}
