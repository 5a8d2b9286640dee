//! `cohort-worker train-local` end to end on a tiny synthetic cohort: the artifacts it
//! writes, a finished trial not trained again, and resuming after a graceful stop and after
//! `kill -9` ending with exactly the weights of an uninterrupted run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use cohort_common::store::Store;
use cohort_common::synth::{SynthConfig, write_cohort};
use cohort_worker::model::load_model;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A 64-patient 16^3 cohort in `dir/cohort`, the one examples/tiny.toml describes.
fn tiny_cohort(dir: &Path) -> PathBuf {
    let root = dir.join("cohort");
    let store = Store::open(root.to_str().unwrap()).unwrap();
    let config = SynthConfig {
        patients: 64,
        shape: [16, 16, 16],
        ..SynthConfig::default()
    };
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(write_cohort(&store, &config, &|_| {}))
        .unwrap();
    root
}

fn train_local(cohort: &Path, runs: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cohort-worker"));
    cmd.arg("train-local")
        .arg(workspace().join("examples/tiny.toml"))
        .arg("--set")
        .arg(format!("cohort.url={:?}", cohort.to_str().unwrap()))
        .arg("--set")
        .arg(format!("artifacts.url={:?}", runs.to_str().unwrap()))
        .arg("--no-cache")
        .arg("--quiet");
    for e in extra {
        cmd.arg("--set").arg(e);
    }
    cmd.env("RUST_LOG", "warn");
    cmd
}

fn run_ok(mut cmd: Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "train-local failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn trial_dir(runs: &Path) -> PathBuf {
    runs.join("tiny/trial-0000")
}

/// Every float of a model directory (parameters and BatchNorm statistics), in visiting order.
fn weights(dir: &Path) -> Vec<f32> {
    struct Collect(Vec<f32>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let data = param.val().into_data().convert::<f32>();
            self.0.extend_from_slice(data.as_slice::<f32>().unwrap());
        }
    }
    let (model, _) = load_model(dir, &Device::flex()).unwrap();
    // Freshly loaded: no pending BatchNorm update, a plain visit sees every value.
    let mut c = Collect(Vec::new());
    model.visit(&mut c);
    c.0
}

#[test]
fn a_tiny_job_writes_scores_models_and_a_summary_and_is_not_trained_twice() {
    let dir = tempfile::tempdir().unwrap();
    let cohort = tiny_cohort(dir.path());
    let runs = dir.path().join("runs");
    let out = run_ok(train_local(&cohort, &runs, &[]));
    assert!(out.contains("trial finished"), "{out}");

    let trial = trial_dir(&runs);
    let scores = std::fs::read_to_string(trial.join("scores.csv")).unwrap();
    let mut lines = scores.lines();
    assert_eq!(lines.next(), Some("patient_id,split,score"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 64, "one row per patient");
    for row in &rows {
        assert!(
            ["train", "validation", "test", "excluded"].contains(&row[1]),
            "{row:?}"
        );
        assert!(row[2].parse::<f64>().unwrap().is_finite(), "{row:?}");
    }
    let distinct: std::collections::BTreeSet<&str> = rows.iter().map(|r| r[2]).collect();
    assert!(distinct.len() > 32, "scores should differ between patients");

    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(trial.join("trial.json")).unwrap()).unwrap();
    assert_eq!(
        summary["history"].as_array().unwrap().len(),
        2,
        "two epochs"
    );
    assert!(summary["steps"].as_u64().unwrap() >= 2);
    let last = weights(&trial.join("last"));
    assert!(!last.is_empty() && last.iter().all(|v| v.is_finite()));
    let model_url = summary["model_url"].as_str().unwrap();
    assert!(
        model_url.ends_with("/best") || model_url.ends_with("/last"),
        "{model_url}"
    );

    // Started again, the finished trial is reported, not recomputed.
    let before = std::fs::metadata(trial.join("scores.csv"))
        .unwrap()
        .modified()
        .unwrap();
    let again = run_ok(train_local(&cohort, &runs, &[]));
    assert!(again.contains("trial finished"), "{again}");
    let after = std::fs::metadata(trial.join("scores.csv"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(before, after, "scores.csv must not be rewritten");
}

#[test]
fn a_bad_job_setting_is_refused_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = train_local(dir.path(), &dir.path().join("runs"), &["training.lr=-1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("training.lr"), "{err}");
    let out = train_local(&dir.path().join("nothing"), &dir.path().join("runs"), &[])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("clinical.csv"), "{err}");
}

/// Settings of the resume tests: many short epochs, a checkpoint after every step, dropout
/// on (so the dropout streams must resume too), early stopping off.
const RESUME: &[&str] = &[
    "training.epochs=12",
    "training.checkpoint_every_steps=1",
    "training.patience=0",
    "model.dropout=0.2",
];

fn uninterrupted(cohort: &Path, root: &Path) -> (Vec<f32>, String) {
    let runs = root.join("uninterrupted");
    run_ok(train_local(cohort, &runs, RESUME));
    let trial = trial_dir(&runs);
    (
        weights(&trial.join("last")),
        std::fs::read_to_string(trial.join("scores.csv")).unwrap(),
    )
}

/// Exact equality, reported as the first differing value rather than two huge vectors.
fn assert_same_weights(got: &[f32], expected: &[f32], what: &str) {
    assert_eq!(got.len(), expected.len(), "{what}: weight count");
    let diffs = got.iter().zip(expected).filter(|(a, b)| a != b).count();
    let first = got.iter().zip(expected).position(|(a, b)| a != b);
    assert_eq!(
        diffs,
        0,
        "{what}: {diffs} of {} values differ, the first at {first:?}",
        got.len()
    );
}

#[test]
fn resuming_after_a_graceful_stop_and_after_kill_9_gives_the_uninterrupted_weights() {
    let dir = tempfile::tempdir().unwrap();
    let cohort = tiny_cohort(dir.path());
    let (expected, expected_scores) = uninterrupted(&cohort, dir.path());

    // Graceful: stop after 5 steps (mid-epoch), start again.
    let runs = dir.path().join("stopped");
    let mut first = train_local(&cohort, &runs, RESUME);
    first.arg("--stop-after-steps").arg("5");
    let out = run_ok(first);
    assert!(out.contains("interrupted after step 5"), "{out}");
    assert!(!trial_dir(&runs).join("trial.json").exists());
    run_ok(train_local(&cohort, &runs, RESUME));
    let trial = trial_dir(&runs);
    assert_same_weights(&weights(&trial.join("last")), &expected, "graceful stop");
    assert_eq!(
        std::fs::read_to_string(trial.join("scores.csv")).unwrap(),
        expected_scores
    );

    // Crash: kill -9 as soon as a checkpoint exists, start again.
    let runs = dir.path().join("killed");
    let latest = trial_dir(&runs).join("checkpoints/latest.json");
    let mut child = train_local(&cohort, &runs, RESUME)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !latest.exists() {
        assert!(Instant::now() < deadline, "no checkpoint within 120 s");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    assert!(
        !trial_dir(&runs).join("trial.json").exists(),
        "the run finished before it could be killed; the test needs a longer job"
    );
    run_ok(train_local(&cohort, &runs, RESUME));
    let trial = trial_dir(&runs);
    assert_same_weights(&weights(&trial.join("last")), &expected, "kill -9");
    assert_eq!(
        std::fs::read_to_string(trial.join("scores.csv")).unwrap(),
        expected_scores
    );
}
