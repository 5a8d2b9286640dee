//! The libtorch backend (feature `tch`) against the default flex backend and MONAI: same
//! weights give the same forward pass, the MONAI fixture matches on libtorch too, and one
//! Cox training step (backward + Adam) gives the same gradients and updated weights.
//! Built only with `--features cohort-worker/tch`.
#![cfg(feature = "tch")]

mod common;

use burn::module::Module;
use burn::optim::AdamConfig;
use burn::tensor::{Device, Tensor, TensorData};
use cohort_common::rng::Rng;
use cohort_common::survival::cox::Ties;
use cohort_worker::backend::{Backend, DeviceKind, DeviceSpec};
use cohort_worker::model::{DenseNet3d, DenseNetConfig, load_model, load_monai, save_model};
use cohort_worker::train::{cox_gradients, cox_step};
use common::{
    fixture_config, fixture_input, fixture_model_with_r0, fixtures, max_abs_diff, read_tensor,
    to_vec,
};

fn tch() -> Device {
    DeviceSpec::new(Some(Backend::Tch), DeviceKind::Cpu)
        .unwrap()
        .device()
        .unwrap()
}

/// Deterministic normal-ish host data (sum of uniforms), for inputs built identically on
/// both backends.
fn host_input(shape: [usize; 5], seed: u64) -> TensorData {
    let mut rng = Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n)
        .map(|_| ((0..4).map(|_| rng.uniform()).sum::<f64>() - 2.0) as f32)
        .collect();
    TensorData::new(values, shape)
}

/// The same model on both backends: built (and randomly initialised) on flex, saved, and
/// loaded on libtorch, so every parameter and statistic is bit-identical. The directory is
/// returned because burnpack loads lazily: tensors are read on first use.
fn same_model_on_both(
    cfg: &DenseNetConfig,
    autodiff: bool,
) -> (DenseNet3d, DenseNet3d, tempfile::TempDir) {
    let flex = Device::flex();
    flex.seed(17);
    let model = DenseNet3d::new(cfg, &flex).unwrap();
    let dir = tempfile::tempdir().unwrap();
    save_model(&model, cfg, dir.path()).unwrap();
    let (ad_flex, ad_tch) = if autodiff {
        (flex.autodiff(), tch().autodiff())
    } else {
        (flex, tch())
    };
    let (a, _) = load_model(dir.path(), &ad_flex).unwrap();
    let (b, _) = load_model(dir.path(), &ad_tch).unwrap();
    (a, b, dir)
}

#[test]
fn forward_matches_flex_on_the_same_weights() {
    let cfg = DenseNetConfig::preset("small", 1).unwrap();
    let (a, b, _dir) = same_model_on_both(&cfg, false);
    let x = host_input([2, 1, 32, 32, 32], 3);
    let ya = to_vec(a.forward(Tensor::from_data(x.clone(), &Device::flex())));
    let yb = to_vec(b.forward(Tensor::from_data(x, &tch())));
    let err = max_abs_diff(&ya, &yb);
    eprintln!("eval forward: flex {ya:?}, tch {yb:?}, max abs diff {err:e}");
    assert!(err < 1e-4, "{ya:?} vs {yb:?}");

    // Imported MONAI weights, eval mode on the saved statistics.
    for file in ["densenet_small.pt", "densenet_small.safetensors"] {
        let path = fixtures().join(file);
        let a = load_monai(&fixture_config(), &path, &Device::flex()).unwrap();
        let b = load_monai(&fixture_config(), &path, &tch()).unwrap();
        let ya = to_vec(a.forward(fixture_input(&Device::flex())));
        let yb = to_vec(b.forward(fixture_input(&tch())));
        assert!(max_abs_diff(&ya, &yb) < 1e-4, "{file}: {ya:?} vs {yb:?}");
    }
}

/// The MONAI fixture on libtorch: train mode matches `output_train_mode`, and eval with
/// the reconstructed statistics (see `common::fixture_model_with_r0`) `output_eval`.
#[test]
fn monai_fixture_matches_on_tch() {
    let (want_train, _) = read_tensor("densenet_small_io.safetensors", "output_train_mode");
    let (want_eval, _) = read_tensor("densenet_small_io.safetensors", "output_eval");
    for file in ["densenet_small.pt", "densenet_small.safetensors"] {
        let (model, train_out) = fixture_model_with_r0(file, &tch().autodiff());
        let err = max_abs_diff(&train_out, &want_train);
        assert!(err < 1e-4, "{file} train: {train_out:?} vs {want_train:?}");
        let got = to_vec(model.valid().forward(fixture_input(&tch())));
        let err = max_abs_diff(&got, &want_eval);
        eprintln!("tch {file}: eval {got:?}, MONAI {want_eval:?}, max abs diff {err:e}");
        assert!(err < 1e-4, "{file} eval: {got:?} vs {want_eval:?}");
    }
}

/// Relative difference of two gradient tensors: max |a - b| / max |a|.
fn rel_diff(a: &[f32], b: &[f32]) -> f32 {
    let scale = a.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-12);
    max_abs_diff(a, b) / scale
}

#[test]
fn a_training_step_matches_flex() {
    let cfg = DenseNetConfig::preset("small", 1).unwrap();
    let (a, b, _dir) = same_model_on_both(&cfg, true);
    let x = host_input([4, 1, 32, 32, 32], 9);
    let time = [5.0, 12.0, 3.0, 8.0];
    let event = [true, false, true, true];
    let xa = Tensor::<5>::from_data(x.clone(), &Device::flex().autodiff());
    let xb = Tensor::<5>::from_data(x.clone(), &tch().autodiff());

    let (ga, la) = cox_gradients(&a, xa.clone(), &time, &event, Ties::Efron).unwrap();
    let (gb, lb) = cox_gradients(&b, xb.clone(), &time, &event, Ties::Efron).unwrap();
    assert!(
        (la.loss - lb.loss).abs() < 1e-4,
        "{} vs {}",
        la.loss,
        lb.loss
    );
    let pairs = [
        ("conv0", a.conv0.weight.id, b.conv0.weight.id),
        (
            "blocks.1.layers.2.conv2",
            a.blocks[1].layers[2].conv2.weight.id,
            b.blocks[1].layers[2].conv2.weight.id,
        ),
        (
            "transitions.0.conv",
            a.transitions[0].conv.weight.id,
            b.transitions[0].conv.weight.id,
        ),
    ];
    for (name, ia, ib) in pairs {
        let da = to_vec(ga.get::<5>(ia).unwrap());
        let db = to_vec(gb.get::<5>(ib).unwrap());
        let err = rel_diff(&da, &db);
        eprintln!("grad {name}: relative max diff {err:e}");
        assert!(err < 1e-3, "{name}: {err}");
    }
    let ha = to_vec(ga.get::<2>(a.out.weight.id).unwrap());
    let hb = to_vec(gb.get::<2>(b.out.weight.id).unwrap());
    assert!(rel_diff(&ha, &hb) < 1e-3, "head: {ha:?} vs {hb:?}");

    // A full step (same gradients, Adam at lr 1e-3) lands on the same weights.
    let mut oa = AdamConfig::new().init();
    let mut ob = AdamConfig::new().init();
    let (a, _) = cox_step(a, &mut oa, 1e-3, xa, &time, &event, Ties::Efron).unwrap();
    let (b, _) = cox_step(b, &mut ob, 1e-3, xb, &time, &event, Ties::Efron).unwrap();
    let wa = to_vec(a.conv0.weight.val());
    let wb = to_vec(b.conv0.weight.val());
    let err = max_abs_diff(&wa, &wb);
    eprintln!("conv0 after one Adam step: max abs diff {err:e}");
    assert!(err < 1e-5, "{err}");
    let ya = to_vec(
        a.valid()
            .forward(Tensor::from_data(x.clone(), &Device::flex())),
    );
    let yb = to_vec(b.valid().forward(Tensor::from_data(x, &tch())));
    assert!(max_abs_diff(&ya, &yb) < 1e-3, "{ya:?} vs {yb:?}");
}

#[test]
fn cuda_without_a_gpu_is_an_error_not_a_panic() {
    let spec = DeviceSpec::new(None, DeviceKind::Cuda(0)).unwrap();
    assert_eq!(spec.backend, Backend::Tch);
    let n = cohort_worker::backend::cuda_device_count();
    match spec.device() {
        Ok(_) => assert!(n > 0),
        Err(e) => {
            assert_eq!(n, 0);
            assert!(e.to_string().contains("0 CUDA device"), "{e}");
        }
    }
}
