//! The 3D DenseNet against MONAI 1.6.1: parameter counts, the fixture's forward pass on
//! imported weights (eval and train mode), and a training step on the autodiff device.

use std::path::PathBuf;

use burn::module::Module;
use burn::nn::BatchNorm;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use cohort_worker::model::{
    DenseNet3d, DenseNetConfig, Norm, NormKind, load_model, load_monai, save_model,
};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/monai")
}

/// The fixture's constructor: `DenseNet(spatial_dims=3, in_channels=2, out_channels=1,
/// init_features=8, growth_rate=4, block_config=(2, 2), bn_size=2, dropout_prob=0.0)`.
fn fixture_config() -> DenseNetConfig {
    serde_json::from_str(
        r#"{"in_channels": 2, "init_features": 8, "growth_rate": 4, "block_config": [2, 2],
            "bn_size": 2, "dropout": 0.0}"#,
    )
    .unwrap()
}

/// A float32 tensor of a safetensors file, as (values, shape).
fn read_tensor(file: &str, name: &str) -> (Vec<f32>, Vec<usize>) {
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

fn fixture_input(device: &Device) -> Tensor<5> {
    let (values, shape) = read_tensor("densenet_small_io.safetensors", "input");
    let shape: [usize; 5] = shape.try_into().unwrap();
    Tensor::from_data(TensorData::new(values, shape), device)
}

fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn parameter_counts_equal_monai() {
    // MONAI 1.6.1, sum(p.numel() for p in DenseNet{121,169,201}(3, in, 1).parameters()).
    let expected = [
        ("densenet121", 1, 11_243_649),
        ("densenet169", 1, 18_544_385),
        ("densenet201", 1, 25_332_737),
        ("densenet121", 3, 11_287_553),
        ("densenet169", 3, 18_588_289),
        ("densenet201", 3, 25_376_641),
    ];
    let device = Device::flex();
    for (preset, in_channels, count) in expected {
        let cfg = DenseNetConfig::preset(preset, in_channels).unwrap();
        assert_eq!(
            cfg.expected_num_params(),
            count,
            "{preset} closed form, {in_channels} in"
        );
        // Parameters are lazy: building DenseNet-201 to count it allocates no weights.
        let model = DenseNet3d::new(&cfg, &device).unwrap();
        assert_eq!(
            model.num_trainable_params(),
            count,
            "{preset} module, {in_channels} in"
        );
    }
    // The fixture's small network: 9633 parameters (densenet_small.json).
    let cfg = fixture_config();
    assert_eq!(
        DenseNet3d::new(&cfg, &device)
            .unwrap()
            .num_trainable_params(),
        9633
    );
    assert_eq!(cfg.expected_num_params(), 9633);
    // Group norm has BatchNorm's affine parameters; instance norm (PyTorch default) none.
    for (preset, norm) in [
        ("small", NormKind::Instance),
        ("tiny", NormKind::Group { num_groups: 4 }),
    ] {
        let cfg = DenseNetConfig::preset(preset, 1).unwrap().with_norm(norm);
        let model = DenseNet3d::new(&cfg, &device).unwrap();
        assert_eq!(
            model.num_trainable_params(),
            cfg.expected_num_params(),
            "{norm:?}"
        );
    }
}

#[test]
fn config_errors_name_their_field() {
    let err = DenseNetConfig::preset("small", 1)
        .unwrap()
        .with_norm(NormKind::Group { num_groups: 32 })
        .validate()
        .unwrap_err();
    assert!(err.to_string().contains("num_groups 32"), "{err}");
    assert!(DenseNetConfig::preset("densenet9", 1).is_err());
    let bad: Result<DenseNetConfig, _> =
        serde_json::from_str(r#"{"in_channels": 1, "growth": 12}"#);
    assert!(bad.unwrap_err().to_string().contains("growth"));
}

/// Every BatchNorm of the model, in forward order.
fn batch_norms(m: &DenseNet3d) -> Vec<&BatchNorm> {
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

/// The fixture was written in this order: randomise the BatchNorm statistics (R0), compute
/// `output_eval` with them, run the train-mode pass (`output_train_mode`, which moved the
/// running statistics to R1 = 0.9 R0 + 0.1 B, B the batch mean and *unbiased* variance, and
/// set `num_batches_tracked` to 1), then save the state dict. So the saved statistics are R1,
/// not the R0 that `output_eval` used, and an eval pass on the saved weights cannot reproduce
/// `output_eval`. This test reproduces MONAI's whole sequence instead:
///
/// 1. load R1 and run the train-mode pass: its output must match `output_train_mode`
///    (batch statistics; the running statistics do not enter);
/// 2. that pass moved our statistics to R2 = 0.9 R1 + 0.1 B (same B: the train pass does not
///    depend on running statistics), so 0.1 B = R2 - 0.9 R1 and R0 = (1.9 R1 - R2) / 0.9;
/// 3. set R0 and run the eval snapshot (`valid()`): it must match `output_eval`.
///
/// Step 3 only matches if step 2's update is PyTorch's (momentum 0.1, unbiased variance),
/// so this also pins the running-statistics update rule.
#[test]
fn monai_fixture_forward_matches_in_train_and_eval_mode() {
    let (want_train, _) = read_tensor("densenet_small_io.safetensors", "output_train_mode");
    let (want_eval, _) = read_tensor("densenet_small_io.safetensors", "output_eval");
    let cfg = fixture_config();
    for file in ["densenet_small.pt", "densenet_small.safetensors"] {
        let device = Device::flex().autodiff();
        let model = load_monai(&cfg, &fixtures().join(file), &device).unwrap();
        let r1: Vec<_> = batch_norms(&model)
            .iter()
            .map(|bn| (bn.running_mean.value(), bn.running_var.value()))
            .collect();

        let got = to_vec(model.forward(fixture_input(&device)));
        let err = max_abs_diff(&got, &want_train);
        eprintln!("{file}: train-mode {got:?}, MONAI {want_train:?}, max abs diff {err:e}");
        assert!(err < 1e-4, "{file}: {got:?} vs MONAI {want_train:?}");

        for (bn, (m1, v1)) in batch_norms(&model).into_iter().zip(r1) {
            // `RunningState::update` is per thread and deferred: `value()` can be one update
            // stale, `value_sync()` folds pending updates in.
            let (m2, v2) = (bn.running_mean.value_sync(), bn.running_var.value_sync());
            bn.running_mean
                .update(m1.mul_scalar(1.9).sub(m2).div_scalar(0.9));
            bn.running_var
                .update(v1.mul_scalar(1.9).sub(v2).div_scalar(0.9));
        }
        let eval = model.valid();
        let got = to_vec(eval.forward(fixture_input(&Device::flex())));
        let err = max_abs_diff(&got, &want_eval);
        eprintln!("{file}: eval {got:?}, MONAI {want_eval:?}, max abs diff {err:e}");
        assert!(err < 1e-4, "{file}: {got:?} vs MONAI {want_eval:?}");
    }
}

/// Eval mode on the saved statistics as they are: deterministic, and the running
/// statistics (not the batch's) are used. (Not comparable to `output_eval`, see above.)
#[test]
fn monai_fixture_eval_uses_running_statistics() {
    let (train, _) = read_tensor("densenet_small_io.safetensors", "output_train_mode");
    let device = Device::flex();
    let model = load_monai(
        &fixture_config(),
        &fixtures().join("densenet_small.pt"),
        &device,
    )
    .unwrap();
    let a = to_vec(model.forward(fixture_input(&device)));
    let b = to_vec(model.forward(fixture_input(&device)));
    assert_eq!(a, b);
    assert!(
        max_abs_diff(&a, &train) > 1e-3,
        "{a:?} vs train-mode {train:?}"
    );
}

#[test]
fn wrong_config_is_refused_with_names() {
    let cfg = DenseNetConfig {
        growth_rate: 6,
        ..fixture_config()
    };
    let err = load_monai(&cfg, &fixtures().join("densenet_small.pt"), &Device::flex())
        .expect_err("a mismatched config must not load");
    eprintln!("{err}");
    assert!(err.to_string().contains("blocks.0.layers"), "{err}");
}

#[test]
fn forward_and_backward_on_a_small_preset() {
    let device = Device::flex().autodiff();
    device.seed(42);
    let cfg = DenseNetConfig::preset("small", 1)
        .unwrap()
        .with_dropout(0.2);
    let model = DenseNet3d::new(&cfg, &device).unwrap();
    let x = Tensor::<5>::random([2, 1, 32, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    let eta = model.log_risk(x);
    assert_eq!(eta.dims(), [2]);
    let values = to_vec(eta.clone());
    assert!(values.iter().all(|v| v.is_finite()), "{values:?}");

    let grads = eta.sum().backward();
    let g0 = model
        .conv0
        .weight
        .val()
        .grad(&grads)
        .expect("stem gradient");
    assert_eq!(g0.dims(), [16, 1, 7, 7, 7]);
    let g0 = to_vec(g0);
    assert!(g0.iter().all(|v| v.is_finite()) && g0.iter().any(|v| *v != 0.0));
    let gh = to_vec(model.out.weight.val().grad(&grads).expect("head gradient"));
    assert!(gh.iter().any(|v| *v != 0.0));

    // Every parameter tensor gets a gradient.
    let grads = GradientsParams::from_grads(grads, &model);
    // conv0 + norm0 (2) + per layer (norm1 2, conv1, norm2 2, conv2) + per transition
    // (norm 2, conv) + norm5 (2) + out (weight, bias).
    let layers: usize = cfg.block_config.iter().sum();
    let n_tensors = 1 + 2 + 6 * layers + 3 * (cfg.block_config.len() - 1) + 2 + 2;
    assert_eq!(grads.len(), n_tensors);
}

#[test]
fn train_and_eval_modes_differ_as_expected() {
    let device = Device::flex().autodiff();
    device.seed(3);
    let cfg = DenseNetConfig::preset("tiny", 1).unwrap().with_dropout(0.5);
    let model = DenseNet3d::new(&cfg, &device).unwrap();
    let x = Tensor::<5>::random([2, 1, 16, 16, 16], Distribution::Normal(0.5, 2.0), &device);

    // Train mode (autodiff device, flags on): dropout draws a new mask each pass.
    let t1 = to_vec(model.forward(x.clone()));
    let t2 = to_vec(model.forward(x.clone()));
    assert!(
        max_abs_diff(&t1, &t2) > 1e-6,
        "dropout must make train passes differ"
    );

    // BatchNorm updated its running statistics in those passes (momentum 0.1).
    let rm = match &model.norm0 {
        Norm::Batch(bn) => to_vec(bn.running_mean.value_sync()),
        _ => unreachable!(),
    };
    assert!(
        rm.iter().any(|v| *v != 0.0),
        "running mean must move from 0 in training"
    );

    // Eval snapshot: deterministic, running statistics, no dropout.
    let eval = model.valid();
    let xe = x.clone().without_autodiff();
    let e1 = to_vec(eval.forward(xe.clone()));
    let e2 = to_vec(eval.forward(xe));
    assert_eq!(e1, e2, "eval passes must be identical");
    assert!(max_abs_diff(&e1, &t1) > 1e-6 && max_abs_diff(&e1, &t2) > 1e-6);

    // Without dropout, train mode is deterministic but still differs from eval (batch vs
    // running statistics).
    let cfg = DenseNetConfig::preset("tiny", 1).unwrap();
    let model = DenseNet3d::new(&cfg, &device).unwrap();
    let a = to_vec(model.forward(x.clone()));
    let b = to_vec(model.forward(x.clone()));
    assert!(max_abs_diff(&a, &b) < 1e-6);
    let e = to_vec(model.valid().forward(x.without_autodiff()));
    assert!(
        max_abs_diff(&a, &e) > 1e-6,
        "batch statistics must differ from running ones"
    );
}

#[test]
fn dropout3d_drops_whole_channels() {
    use cohort_worker::model::Dropout3d;
    let device = Device::flex().autodiff();
    device.seed(11);
    let x = Tensor::<5>::ones([4, 16, 3, 3, 3], &device);
    let y = to_vec(Dropout3d::new(0.5).forward(x));
    // Every (sample, channel) map is all 0 or all 2 (= 1 / (1 - p)).
    let maps: Vec<&[f32]> = y.chunks(27).collect();
    assert!(
        maps.iter()
            .all(|m| m.iter().all(|v| *v == 0.0) || m.iter().all(|v| *v == 2.0))
    );
    let dropped = maps.iter().filter(|m| m[0] == 0.0).count();
    assert!((10..=54).contains(&dropped), "{dropped} of 64 maps dropped");
}

/// Step timings (forward + backward) on the flex backend; run with
/// `cargo test -p cohort-worker --test densenet -- --ignored --nocapture step_timings`.
#[test]
#[ignore]
fn step_timings() {
    let device = Device::flex().autodiff();
    for (preset, shape) in [
        ("small", [4, 1, 32, 32, 32]),
        ("densenet121", [4, 1, 32, 32, 32]),
        ("densenet121", [2, 1, 64, 64, 64]),
    ] {
        let cfg = DenseNetConfig::preset(preset, 1).unwrap();
        let model = DenseNet3d::new(&cfg, &device).unwrap();
        let x = Tensor::<5>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        for i in 0..3 {
            let t = std::time::Instant::now();
            let grads = model.log_risk(x.clone()).sum().backward();
            let g = to_vec(model.conv0.weight.val().grad(&grads).unwrap());
            assert!(g[0].is_finite());
            eprintln!(
                "{preset} {shape:?} step {i}: {:.3} s",
                t.elapsed().as_secs_f64()
            );
        }
    }
}

#[test]
fn model_directory_round_trips() {
    let cfg = fixture_config();
    let device = Device::flex();
    let model = load_monai(&cfg, &fixtures().join("densenet_small.pt"), &device).unwrap();
    let want = to_vec(model.forward(fixture_input(&device)));
    let dir = tempfile::tempdir().unwrap();
    save_model(&model, &cfg, dir.path()).unwrap();
    let (loaded, loaded_cfg) = load_model(dir.path(), &device).unwrap();
    assert_eq!(loaded_cfg, cfg);
    // Bit-identical: parameters and running statistics both travel.
    assert_eq!(to_vec(loaded.forward(fixture_input(&device))), want);
    // A broken config names its file and key.
    std::fs::write(
        dir.path().join("model.json"),
        r#"{"in_channels": 2, "growth": 4}"#,
    )
    .unwrap();
    let err = load_model(dir.path(), &device).unwrap_err().to_string();
    assert!(
        err.contains("model.json") && err.contains("growth"),
        "{err}"
    );
}

#[test]
fn every_norm_kind_runs_forward_and_backward() {
    let device = Device::flex().autodiff();
    device.seed(5);
    for norm in [
        NormKind::Batch,
        NormKind::Instance,
        NormKind::Group { num_groups: 4 },
    ] {
        let cfg = DenseNetConfig::preset("tiny", 2).unwrap().with_norm(norm);
        let model = DenseNet3d::new(&cfg, &device).unwrap();
        let x = Tensor::<5>::random([2, 2, 16, 16, 16], Distribution::Normal(0.0, 1.0), &device);
        let eta = model.log_risk(x.clone());
        let g = eta.sum().backward();
        let g0 = to_vec(model.conv0.weight.val().grad(&g).unwrap());
        assert!(
            g0.iter().all(|v| v.is_finite()) && g0.iter().any(|v| *v != 0.0),
            "{norm:?}"
        );
        let e = to_vec(model.valid().log_risk(x.without_autodiff()));
        assert!(e.iter().all(|v| v.is_finite()), "{norm:?}");
    }
}
