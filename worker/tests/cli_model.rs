//! The `cohort-worker` binary end to end: `model summary`, `model import` of the MONAI
//! fixture, `predict` on its input (matching MONAI's eval output), and the errors a user
//! meets (bad config key, missing file, wrong tensor, GPU without the tch build).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use burn::module::Module;
use burn::tensor::Device;
use cohort_common::nifti;
use cohort_worker::model::{load_monai, save_model};
use common::{
    FIXTURE_MODEL_JSON, fixture_config, fixture_input, fixture_model_with_r0, fixtures,
    max_abs_diff, read_tensor, to_vec,
};

fn worker(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cohort-worker"))
        .args(args)
        .output()
        .expect("run cohort-worker")
}

/// Runs and expects success; returns stdout.
fn ok(args: &[&str]) -> String {
    let out = worker(args);
    assert!(
        out.status.success(),
        "cohort-worker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs and expects failure; returns stderr.
fn fails(args: &[&str]) -> String {
    let out = worker(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "cohort-worker {args:?} should fail; stdout {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        !stderr.contains("panicked"),
        "cohort-worker {args:?} panicked: {stderr}"
    );
    stderr
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn write_model_json(dir: &Path) -> PathBuf {
    let path = dir.join("MODEL.json");
    std::fs::write(&path, FIXTURE_MODEL_JSON).unwrap();
    path
}

fn scores(stdout: &str) -> Vec<f32> {
    let v: serde_json::Value = serde_json::from_str(stdout).unwrap();
    v["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[test]
fn summary_counts_equal_monai() {
    for (channels, want) in [("1", 11_243_649u64), ("3", 11_287_553)] {
        let out = ok(&[
            "model",
            "summary",
            "--preset",
            "densenet121",
            "--in-channels",
            channels,
            "--json",
        ]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            v["total_params"].as_u64(),
            Some(want),
            "{channels} channels"
        );
        assert_eq!(
            v["config"]["in_channels"].as_u64(),
            Some(channels.parse().unwrap())
        );
        assert!(v["layers"].as_array().unwrap().len() > 100);
    }
    let table = ok(&["model", "summary", "--preset", "densenet121"]);
    assert!(table.contains("features.denseblock4.denselayer16.layers.conv2"));
    assert!(table.contains("total parameters: 11243649"), "{table}");
    let err = fails(&["model", "summary", "--preset", "densenet9"]);
    assert!(err.contains("unknown model preset"), "{err}");
}

#[test]
fn import_writes_a_model_atomically_from_pt_and_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_model_json(dir.path());
    let device = Device::flex();
    let want = to_vec(
        load_monai(
            &fixture_config(),
            &fixtures().join("densenet_small.pt"),
            &device,
        )
        .unwrap()
        .forward(fixture_input(&device)),
    );
    for file in ["densenet_small.pt", "densenet_small.safetensors"] {
        let out = dir.path().join(format!("model-{file}"));
        let report = ok(&[
            "model",
            "import",
            "--monai",
            s(&fixtures().join(file)),
            "--config",
            s(&cfg),
            "--out",
            s(&out),
            "--json",
        ]);
        let v: serde_json::Value = serde_json::from_str(&report).unwrap();
        assert_eq!(v["total_params"].as_u64(), Some(9633), "{report}");
        assert!(out.join("model.json").is_file() && out.join("weights.bpk").is_file());

        // The imported model scores the fixture's input as the library does (eval mode on
        // the saved running statistics).
        let got = scores(&ok(&[
            "predict",
            "--model",
            s(&out),
            "--input",
            s(&fixtures().join("densenet_small_io.safetensors")),
            "--tensor",
            "input",
            "--json",
        ]));
        let err = max_abs_diff(&got, &want);
        assert!(err < 1e-5, "{file}: {got:?} vs {want:?}");
    }
    // Nothing half-written or temporary is left beside the models.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");

    // An existing directory is kept unless --force.
    let out = dir.path().join("model-densenet_small.pt");
    let pt = fixtures().join("densenet_small.pt");
    let args = [
        "model",
        "import",
        "--monai",
        s(&pt),
        "--config",
        s(&cfg),
        "--out",
        s(&out),
    ];
    let err = fails(&args);
    assert!(err.contains("exists") && err.contains("--force"), "{err}");
    let mut forced = args.to_vec();
    forced.push("--force");
    ok(&forced);
    assert!(out.join("weights.bpk").is_file());
}

/// `predict` on a model holding the running statistics MONAI's `output_eval` used
/// (reconstructed as `tests/densenet.rs` explains) reproduces MONAI's eval output to 1e-4.
#[test]
fn predict_matches_monai_eval_output() {
    let (want, _) = read_tensor("densenet_small_io.safetensors", "output_eval");
    let (want_train, _) = read_tensor("densenet_small_io.safetensors", "output_train_mode");
    let (model, train_out) =
        fixture_model_with_r0("densenet_small.safetensors", &Device::flex().autodiff());
    assert!(max_abs_diff(&train_out, &want_train) < 1e-4);
    let dir = tempfile::tempdir().unwrap();
    let model_dir = dir.path().join("monai-r0");
    save_model(&model.valid(), &fixture_config(), &model_dir).unwrap();
    let input = fixtures().join("densenet_small_io.safetensors");
    for batch_size in ["1", "8"] {
        let got = scores(&ok(&[
            "predict",
            "--model",
            s(&model_dir),
            "--input",
            s(&input),
            "--tensor",
            "input",
            "--batch-size",
            batch_size,
            "--json",
        ]));
        let err = max_abs_diff(&got, &want);
        eprintln!("predict {got:?}, MONAI output_eval {want:?}, max abs diff {err:e}");
        assert!(err < 1e-4, "{got:?} vs MONAI {want:?}");
    }

    // The same first sample as two NIfTI volumes (one per channel) scores the same.
    let (values, _) = read_tensor("densenet_small_io.safetensors", "input");
    let voxels = 16 * 16 * 16;
    let mut paths = Vec::new();
    for c in 0..2 {
        let volume = nifti::Volume {
            dims: [16, 16, 16],
            pixdim: [1.0; 3],
            affine: nifti::Volume::axis_aligned_affine([1.0; 3]),
            data: values[c * voxels..(c + 1) * voxels].to_vec(),
        };
        let bytes = nifti::encode(&volume, nifti::Encoding::Float32, true).unwrap();
        let path = dir.path().join(format!("ch{c}.nii.gz"));
        std::fs::write(&path, bytes).unwrap();
        paths.push(path);
    }
    let got = scores(&ok(&[
        "predict",
        "--model",
        s(&model_dir),
        "--input",
        s(&paths[0]),
        "--input",
        s(&paths[1]),
        "--json",
    ]));
    assert_eq!(got.len(), 1);
    assert!((got[0] - want[0]).abs() < 1e-4, "{got:?} vs {want:?}");

    // A table without --json.
    let table = ok(&[
        "predict",
        "--model",
        s(&model_dir),
        "--input",
        s(&input),
        "--tensor",
        "input",
    ]);
    assert!(
        table.contains("score") && table.lines().count() == 3,
        "{table}"
    );
}

#[test]
fn clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let pt = fixtures().join("densenet_small.pt");
    let out = dir.path().join("m");

    // The fixture's description is not a MODEL.json: its first unknown key is named.
    let err = fails(&[
        "model",
        "import",
        "--monai",
        s(&pt),
        "--config",
        s(&fixtures().join("densenet_small.json")),
        "--out",
        s(&out),
    ]);
    assert!(
        err.contains("densenet_small.json") && err.contains("unknown field `monai_version`"),
        "{err}"
    );
    // A misspelt key.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"in_channels": 2, "growth": 4}"#).unwrap();
    let err = fails(&[
        "model",
        "import",
        "--monai",
        s(&pt),
        "--config",
        s(&bad),
        "--out",
        s(&out),
    ]);
    assert!(err.contains("unknown field `growth`"), "{err}");
    // A valid key with an impossible value.
    std::fs::write(&bad, r#"{"in_channels": 2, "dropout": 1.5}"#).unwrap();
    let err = fails(&[
        "model",
        "import",
        "--monai",
        s(&pt),
        "--config",
        s(&bad),
        "--out",
        s(&out),
    ]);
    assert!(err.contains("model.dropout"), "{err}");
    // A config that does not match the checkpoint names the tensors involved.
    let err = fails(&[
        "model",
        "import",
        "--monai",
        s(&pt),
        "--preset",
        "small",
        "--in-channels",
        "2",
        "--out",
        s(&out),
    ]);
    assert!(err.contains("densenet_small.pt"), "{err}");
    assert!(!out.exists(), "a failed import must not leave a model");

    // Missing files.
    let cfg = write_model_json(dir.path());
    let missing = dir.path().join("nope.pt");
    let err = fails(&[
        "model",
        "import",
        "--monai",
        s(&missing),
        "--config",
        s(&cfg),
        "--out",
        s(&out),
    ]);
    assert!(
        err.contains("nope.pt") && err.contains("No such file"),
        "{err}"
    );
    let err = fails(&[
        "model",
        "import",
        "--monai",
        s(&pt),
        "--config",
        s(&dir.path().join("x.json")),
        "--out",
        s(&out),
    ]);
    assert!(
        err.contains("x.json") && err.contains("No such file"),
        "{err}"
    );
    let io = fixtures().join("densenet_small_io.safetensors");
    let err = fails(&[
        "predict",
        "--model",
        s(&out),
        "--input",
        s(&io),
        "--tensor",
        "input",
    ]);
    assert!(err.contains("model.json"), "{err}");

    // Input problems, with a real model.
    ok(&[
        "model",
        "import",
        "--monai",
        s(&pt),
        "--config",
        s(&cfg),
        "--out",
        s(&out),
    ]);
    let err = fails(&["predict", "--model", s(&out), "--input", s(&io)]);
    assert!(
        err.contains("--tensor") && err.contains("output_eval"),
        "{err}"
    );
    let err = fails(&[
        "predict",
        "--model",
        s(&out),
        "--input",
        s(&io),
        "--tensor",
        "x",
    ]);
    assert!(err.contains("no tensor \"x\""), "{err}");
    let err = fails(&[
        "predict",
        "--model",
        s(&out),
        "--input",
        s(&io),
        "--tensor",
        "output_eval",
    ]);
    assert!(err.contains("batch x channels x D x H x W"), "{err}");
    let err = fails(&[
        "predict",
        "--model",
        s(&out),
        "--input",
        s(&dir.path().join("ch.nii.gz")),
    ]);
    assert!(
        err.contains("ch.nii.gz") && err.contains("No such file"),
        "{err}"
    );

    // Devices.
    let err = fails(&[
        "predict",
        "--model",
        s(&out),
        "--input",
        s(&io),
        "--tensor",
        "input",
        "--device",
        "gpu",
    ]);
    assert!(err.contains("cpu or cuda:N"), "{err}");
    let err = fails(&[
        "predict",
        "--model",
        s(&out),
        "--input",
        s(&io),
        "--tensor",
        "input",
        "--backend",
        "flex",
        "--device",
        "cuda:0",
    ]);
    assert!(err.contains("CPU only"), "{err}");
    if !cfg!(feature = "tch") {
        let err = fails(&[
            "predict",
            "--model",
            s(&out),
            "--input",
            s(&io),
            "--tensor",
            "input",
            "--device",
            "cuda:0",
        ]);
        assert!(
            err.contains("cuda:0") && err.contains("--features cohort-worker/tch"),
            "{err}"
        );
    }
}

#[test]
fn a_reader_that_stops_early_is_not_an_error() {
    // `cohort-worker model summary --json | head -1`: the pipe closes before the
    // document is written; the command still exits 0 (no panic on EPIPE).
    let mut child = Command::new(env!("CARGO_BIN_EXE_cohort-worker"))
        .args(["model", "summary", "--preset", "densenet121", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
