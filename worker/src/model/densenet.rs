//! The 3D DenseNet modules, layer for layer MONAI 1.6.1's `DenseNet(spatial_dims=3)`.
//!
//! Field names mirror MONAI's module names so the weight mapping is a handful of
//! mechanical renames (see [`super::monai`]): `conv0`, `norm0`, `blocks[i].layers[j]`
//! (`features.denseblock{i+1}.denselayer{j+1}.layers`) with `norm1 conv1 norm2 conv2`,
//! `transitions[i]` (`features.transition{i+1}`) with `norm conv`, `norm5`, `out`
//! (`class_layers.out`).
//!
//! Train and eval behaviour follow burn 0.22's rule: a layer behaves as in training when
//! its input lives on an autodiff device *and* its `training` flag is on. `Module::valid()`
//! returns the eval snapshot (plain device, flags off): BatchNorm then uses its running
//! statistics and dropout is the identity. In training, BatchNorm's running variance is
//! updated as PyTorch does (unbiased batch variance), not as burn's `BatchNorm` does.

use burn::module::{Flag, Module, ModuleVisitor, Param};
use burn::nn::conv::{Conv3d, Conv3dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, GroupNorm, GroupNormConfig, Initializer, InstanceNorm,
    InstanceNormConfig, Linear, LinearConfig, PaddingConfig3d,
};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Distribution, Tensor};

use super::config::{ConfigError, DenseNetConfig, NormKind};
use super::pool::{avg_pool3d, global_avg_pool, max_pool3d};

/// One normalisation slot; which variant is chosen by [`NormKind`].
///
/// burn-store's PyTorch loader skips enum variant names when it matches paths, so MONAI's
/// `features.norm0.weight` lands on `norm0.Batch.gamma` (BatchNorm's `weight`/`bias` are
/// renamed `gamma`/`beta` by `PyTorchToBurnAdapter`).
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Norm {
    /// `BatchNorm3d(c)`, eps 1e-5, momentum 0.1.
    Batch(BatchNorm),
    /// `InstanceNorm3d(c)`: no affine parameters.
    Instance(InstanceNorm),
    /// `GroupNorm(g, c)` with affine parameters.
    Group(GroupNorm),
}

impl Norm {
    /// A norm of `kind` over `channels` channels.
    pub fn new(kind: NormKind, channels: usize, device: &Device) -> Self {
        match kind {
            NormKind::Batch => Norm::Batch(BatchNormConfig::new(channels).init(device)),
            NormKind::Instance => Norm::Instance(
                InstanceNormConfig::new(channels)
                    .with_affine(false)
                    .init(device),
            ),
            NormKind::Group { num_groups } => {
                Norm::Group(GroupNormConfig::new(num_groups, channels).init(device))
            }
        }
    }

    /// Normalises `[N, C, D, H, W]`.
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        match self {
            Norm::Batch(n) if n.training.is_enabled() && x.device().is_autodiff() => {
                batch_norm_train_torch(n, x)
            }
            Norm::Batch(n) => n.forward(x),
            Norm::Instance(n) => n.forward(x),
            Norm::Group(n) => n.forward(x),
        }
    }
}

/// BatchNorm in training mode with PyTorch's running-statistics update.
///
/// burn 0.22's `BatchNorm` folds the *biased* batch variance into `running_var`; PyTorch
/// (and so MONAI) folds the *unbiased* one (`n / (n - 1)` times larger, n = voxels x batch
/// per channel). Normalisation itself uses the biased variance in both. Deep in a 3D
/// DenseNet n is small (2 x 2^3 = 16 at the last block of a 64^3 input at batch 2), so the
/// difference is material for eval after training and for checkpoints exchanged with
/// PyTorch; this keeps the running statistics identical to PyTorch's.
fn batch_norm_train_torch(bn: &BatchNorm, x: Tensor<5>) -> Tensor<5> {
    let [n, _, d, h, w] = x.dims();
    let count = n * d * h * w;
    let device = x.device();
    let out = burn::tensor::module::batch_norm_train(x, bn.gamma.val(), bn.beta.val(), bn.epsilon);
    let m = bn.momentum;
    let unbiased = if count > 1 {
        count as f64 / (count as f64 - 1.0)
    } else {
        1.0
    };
    let mean = bn
        .running_mean
        .value_sync()
        .to_device(&device)
        .mul_scalar(1.0 - m)
        .add(out.mean.detach().mul_scalar(m));
    let var = bn
        .running_var
        .value_sync()
        .to_device(&device)
        .mul_scalar(1.0 - m)
        .add(out.variance.detach().mul_scalar(m * unbiased));
    bn.running_mean.update(mean.detach());
    bn.running_var.update(var.detach());
    out.output
}

/// Channel-wise dropout for volumes (PyTorch's `nn.Dropout3d`, which MONAI's
/// `Dropout[DROPOUT, 3]` is): every `(sample, channel)` feature map is zeroed with
/// probability `prob` and the survivors are scaled by `1 / (1 - prob)`.
///
/// burn's `Dropout` drops single elements, a different regulariser, hence this module.
/// Same training rule as burn's layers: active only on an autodiff device with the flag on.
#[derive(Module, Debug)]
pub struct Dropout3d {
    /// Drop probability.
    pub prob: f64,
    /// Whether training behaviour is enabled.
    pub training: Param<Flag>,
}

impl Dropout3d {
    /// Channel dropout with probability `prob`.
    pub fn new(prob: f64) -> Self {
        Self {
            prob,
            training: Param::from_bool(true),
        }
    }

    /// Applies channel dropout to `[N, C, D, H, W]`.
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        if self.prob == 0.0 || !self.training.is_enabled() || !x.device().is_autodiff() {
            return x;
        }
        let [n, c, _, _, _] = x.dims();
        let keep = 1.0 - self.prob;
        let mask = Tensor::<5>::random([n, c, 1, 1, 1], Distribution::Bernoulli(keep), &x.device());
        x * mask.mul_scalar(1.0 / keep)
    }
}

/// Kaiming-normal (fan-in, gain sqrt 2) bias-free 3D convolution, MONAI's initialisation
/// (`nn.init.kaiming_normal_` on every conv weight).
fn conv3d(
    c_in: usize,
    c_out: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    device: &Device,
) -> Conv3d {
    Conv3dConfig::new([c_in, c_out], [kernel; 3])
        .with_stride([stride; 3])
        .with_padding(PaddingConfig3d::Explicit(padding, padding, padding))
        .with_bias(false)
        .with_initializer(Initializer::KaimingNormal {
            gain: 2f64.sqrt(),
            fan_out_only: false,
        })
        .init(device)
}

/// A dense layer: norm-ReLU-conv1^3(bn_size*k)-norm-ReLU-conv3^3(k)-dropout, whose output
/// is concatenated onto its input (MONAI's `_DenseLayer`).
#[derive(Module, Debug)]
pub struct DenseLayer {
    /// Norm before the bottleneck.
    pub norm1: Norm,
    /// 1^3 bottleneck convolution to `bn_size * growth_rate` channels.
    pub conv1: Conv3d,
    /// Norm before the 3^3 convolution.
    pub norm2: Norm,
    /// 3^3 convolution (padding 1) to `growth_rate` channels.
    pub conv2: Conv3d,
    /// Channel dropout on the new features.
    pub dropout: Dropout3d,
}

impl DenseLayer {
    fn new(cfg: &DenseNetConfig, c_in: usize, device: &Device) -> Self {
        let b = cfg.bn_size * cfg.growth_rate;
        Self {
            norm1: Norm::new(cfg.norm, c_in, device),
            conv1: conv3d(c_in, b, 1, 1, 0, device),
            norm2: Norm::new(cfg.norm, b, device),
            conv2: conv3d(b, cfg.growth_rate, 3, 1, 1, device),
            dropout: Dropout3d::new(cfg.dropout),
        }
    }

    /// `cat([x, layers(x)], dim = 1)`.
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        let y = self.conv1.forward(relu(self.norm1.forward(x.clone())));
        let y = self.conv2.forward(relu(self.norm2.forward(y)));
        let y = self.dropout.forward(y);
        Tensor::cat(vec![x, y], 1)
    }
}

/// A dense block (MONAI's `_DenseBlock`): dense layers in sequence.
#[derive(Module, Debug)]
pub struct DenseBlock {
    /// The dense layers; `layers[j]` is MONAI's `denselayer{j+1}`.
    pub layers: Vec<DenseLayer>,
}

impl DenseBlock {
    /// Runs the layers in order.
    pub fn forward(&self, mut x: Tensor<5>) -> Tensor<5> {
        for layer in &self.layers {
            x = layer.forward(x);
        }
        x
    }
}

/// A transition (MONAI's `_Transition`): norm-ReLU-conv1^3 (halving channels)-AvgPool3d(2).
#[derive(Module, Debug)]
pub struct Transition {
    /// Norm.
    pub norm: Norm,
    /// 1^3 convolution to `c / 2` channels.
    pub conv: Conv3d,
}

impl Transition {
    /// Applies the transition.
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        avg_pool3d(self.conv.forward(relu(self.norm.forward(x))), 2)
    }
}

/// A 3D DenseNet survival model: `[N, C, D, H, W]` volumes to `[N, out_channels]` outputs
/// (one log-risk per patient with `out_channels = 1`).
#[derive(Module, Debug)]
pub struct DenseNet3d {
    /// Stem convolution 7^3, stride 2, padding 3.
    pub conv0: Conv3d,
    /// Stem norm (followed by ReLU and MaxPool3d(3, 2, 1)).
    pub norm0: Norm,
    /// The dense blocks; `blocks[i]` is MONAI's `features.denseblock{i+1}`.
    pub blocks: Vec<DenseBlock>,
    /// The transitions between blocks; `transitions[i]` is `features.transition{i+1}`.
    pub transitions: Vec<Transition>,
    /// Final norm (followed by ReLU and global average pooling).
    pub norm5: Norm,
    /// Linear head (`class_layers.out`).
    pub out: Linear,
}

impl DenseNet3d {
    /// Builds the network for `cfg` on `device` (parameters are initialised lazily, on first
    /// use, so building even DenseNet-201 just to count its parameters is cheap).
    pub fn new(cfg: &DenseNetConfig, device: &Device) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let conv0 = conv3d(cfg.in_channels, cfg.init_features, 7, 2, 3, device);
        let norm0 = Norm::new(cfg.norm, cfg.init_features, device);
        let mut c = cfg.init_features;
        let mut blocks = Vec::with_capacity(cfg.block_config.len());
        let mut transitions = Vec::with_capacity(cfg.block_config.len().saturating_sub(1));
        for (i, &n_layers) in cfg.block_config.iter().enumerate() {
            let mut layers = Vec::with_capacity(n_layers);
            for _ in 0..n_layers {
                layers.push(DenseLayer::new(cfg, c, device));
                c += cfg.growth_rate;
            }
            blocks.push(DenseBlock { layers });
            if i + 1 < cfg.block_config.len() {
                transitions.push(Transition {
                    norm: Norm::new(cfg.norm, c, device),
                    conv: conv3d(c, c / 2, 1, 1, 0, device),
                });
                c /= 2;
            }
        }
        let norm5 = Norm::new(cfg.norm, c, device);
        // PyTorch's default Linear weight init (kaiming uniform, a = sqrt 5, i.e. U(+-1/sqrt
        // fan_in)); MONAI zeroes the bias.
        let mut out = LinearConfig::new(c, cfg.out_channels)
            .with_initializer(Initializer::KaimingUniform {
                gain: 1.0 / 3f64.sqrt(),
                fan_out_only: false,
            })
            .init(device);
        out.bias = Some(Initializer::Zeros.init([cfg.out_channels], device));
        Ok(Self {
            conv0,
            norm0,
            blocks,
            transitions,
            norm5,
            out,
        })
    }

    /// The forward pass: `[N, C, D, H, W] -> [N, out_channels]`.
    pub fn forward(&self, x: Tensor<5>) -> Tensor<2> {
        let x = self.conv0.forward(x);
        let mut x = max_pool3d(relu(self.norm0.forward(x)), 3, 2, 1);
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.forward(x);
            if let Some(t) = self.transitions.get(i) {
                x = t.forward(x);
            }
        }
        let x = relu(self.norm5.forward(x));
        self.out.forward(global_avg_pool(x))
    }

    /// Trainable parameters, what PyTorch's `sum(p.numel() for p in model.parameters())`
    /// counts. burn's `Module::num_params` also counts BatchNorm's running mean and variance
    /// (a `RunningState` is visited like a parameter), so those are skipped here by name.
    /// Lazy parameters are not initialised.
    pub fn num_trainable_params(&self) -> usize {
        struct Count {
            path: Vec<String>,
            total: usize,
        }
        impl ModuleVisitor for Count {
            fn enter_module(&mut self, name: &str, _container_type: &str) {
                self.path.push(name.to_string());
            }
            fn exit_module(&mut self, _name: &str, _container_type: &str) {
                self.path.pop();
            }
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let buffer = matches!(
                    self.path.last().map(String::as_str),
                    Some("running_mean" | "running_var")
                );
                if !buffer {
                    self.total += param.lazy_shape().num_elements();
                }
            }
        }
        let mut count = Count {
            path: Vec::new(),
            total: 0,
        };
        self.visit(&mut count);
        count.total
    }

    /// The log-risk of every sample, `[N]` (the first output column).
    pub fn log_risk(&self, x: Tensor<5>) -> Tensor<1> {
        let y = self.forward(x);
        let [n, _] = y.dims();
        y.slice([0..n, 0..1]).reshape([n])
    }
}
