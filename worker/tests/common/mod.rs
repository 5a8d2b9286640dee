//! Helpers shared by the integration tests that use the MONAI fixture
//! (`../shared/fixtures/monai`, see its README).
#![allow(dead_code)] // each test binary uses its own subset

use std::path::PathBuf;

use burn::nn::BatchNorm;
use burn::tensor::{Device, Tensor, TensorData};
use cohort_worker::model::{DenseNet3d, DenseNetConfig, Norm, load_monai};

/// The fixture directory.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/monai")
}

/// The fixture's constructor as a MODEL.json: `DenseNet(spatial_dims=3, in_channels=2,
/// out_channels=1, init_features=8, growth_rate=4, block_config=(2, 2), bn_size=2,
/// dropout_prob=0.0)`.
pub const FIXTURE_MODEL_JSON: &str = r#"{"in_channels": 2, "init_features": 8, "growth_rate": 4,
  "block_config": [2, 2], "bn_size": 2, "dropout": 0.0}"#;

/// [`FIXTURE_MODEL_JSON`] parsed.
pub fn fixture_config() -> DenseNetConfig {
    serde_json::from_str(FIXTURE_MODEL_JSON).unwrap()
}

/// A float32 tensor of a fixture safetensors file, as (values, shape).
pub fn read_tensor(file: &str, name: &str) -> (Vec<f32>, Vec<usize>) {
    let bytes = std::fs::read(fixtures().join(file)).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let view = st.tensor(name).unwrap();
    assert_eq!(view.dtype(), safetensors::Dtype::F32, "{name} is not f32");
    let values = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    (values, view.shape().to_vec())
}

/// The fixture's input `[2, 2, 16, 16, 16]` on `device`.
pub fn fixture_input(device: &Device) -> Tensor<5> {
    let (values, shape) = read_tensor("densenet_small_io.safetensors", "input");
    let shape: [usize; 5] = shape.try_into().unwrap();
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// A tensor's values as f32.
pub fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

/// Largest absolute difference.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Every BatchNorm of the model, in forward order.
pub fn batch_norms(m: &DenseNet3d) -> Vec<&BatchNorm> {
    let mut norms = vec![&m.norm0];
    for (i, block) in m.blocks.iter().enumerate() {
        for layer in &block.layers {
            norms.extend([&layer.norm1, &layer.norm2]);
        }
        if let Some(t) = m.transitions.get(i) {
            norms.push(&t.norm);
        }
    }
    norms.push(&m.norm5);
    norms
        .into_iter()
        .map(|n| match n {
            Norm::Batch(bn) => bn,
            _ => panic!("not a batch norm"),
        })
        .collect()
}

/// The fixture model with the running statistics MONAI's `output_eval` was computed with.
///
/// The fixture saved its state dict *after* a train-mode pass, so its running statistics
/// are R1 = 0.9 R0 + 0.1 B, not the R0 that `output_eval` used (see `tests/densenet.rs`).
/// One more train-mode pass here gives R2 = 0.9 R1 + 0.1 B with the same B, so
/// R0 = (1.9 R1 - R2) / 0.9. `device` must be an autodiff device; returns the model (R0 set)
/// and the train-mode output of that pass, which must match `output_train_mode`.
pub fn fixture_model_with_r0(file: &str, device: &Device) -> (DenseNet3d, Vec<f32>) {
    assert!(device.is_autodiff());
    let model = load_monai(&fixture_config(), &fixtures().join(file), device).unwrap();
    let r1: Vec<_> = batch_norms(&model)
        .iter()
        .map(|bn| (bn.running_mean.value(), bn.running_var.value()))
        .collect();
    let train_out = to_vec(model.forward(fixture_input(device)));
    for (bn, (m1, v1)) in batch_norms(&model).into_iter().zip(r1) {
        // `value_sync()` folds in the pending (per-thread, deferred) update.
        let (m2, v2) = (bn.running_mean.value_sync(), bn.running_var.value_sync());
        bn.running_mean
            .update(m1.mul_scalar(1.9).sub(m2).div_scalar(0.9));
        bn.running_var
            .update(v1.mul_scalar(1.9).sub(v2).div_scalar(0.9));
    }
    (model, train_out)
}
