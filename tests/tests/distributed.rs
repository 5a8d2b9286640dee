//! Data-parallel training with real processes on loopback: the coordinator, workers and
//! client commands as users run them.
//!
//! - the same job on 1, 2 and 3 workers (instance norm) ends with the same weights and
//!   risk scores;
//! - `kill -9` of a worker mid-trial: the trial is re-formed, resumes from its checkpoint
//!   and ends with the risk scores of an uninterrupted run;
//! - `kill -9` of the coordinator mid-job: a restarted coordinator finishes the job and
//!   does not run a finished trial again;
//! - TLS on every channel: a data-parallel job through a TLS coordinator and TLS rings,
//!   which plain-text clients cannot reach.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cohort_tests::{binary, workspace_root};

const TOKEN: &str = "test-token-0123456789abcdef";

fn cohort() -> Command {
    let mut c = Command::new(binary("cohort"));
    c.env("COHORT_TOKEN", TOKEN).env("RUST_LOG", "warn");
    c
}

/// The 64-patient 16^3 cohort of examples/tiny.toml.
fn tiny_cohort(dir: &Path) -> PathBuf {
    let out = dir.join("cohort");
    let status = cohort()
        .args(["synth", "--patients", "64", "--shape", "16x16x16", "--out"])
        .arg(&out)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    out
}

/// `--set` arguments of a deterministic, exact job on `cohort`, writing under `runs`.
fn sets(cohort: &Path, runs: &Path, extra: &[&str]) -> Vec<String> {
    let mut v = vec![
        format!("cohort.url={:?}", cohort.to_str().unwrap()),
        format!("artifacts.url={:?}", runs.to_str().unwrap()),
        // Instance norm: per-sample statistics, so the group size cannot change them.
        "model.norm=instance".into(),
        "model.dropout=0.0".into(),
        // 4 batches per epoch on the tiny cohort: 20 steps.
        "training.epochs=5".into(),
        // Groups of different sizes add the same gradients in a different order, so
        // runs differ in the last bits (about 1e-7 after one step). At lr 1e-3 a
        // ReLU crossing or Adam's normalisation of near-zero gradients can amplify
        // that to 1e-3 within 20 steps (seen on a CPU with AVX-512 kernels); at 1e-4
        // the trajectories stay within 1e-6 of each other.
        "training.lr=1e-4".into(),
        "training.patience=0".into(),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    v.into_iter()
        .flat_map(|s| ["--set".to_string(), s])
        .collect()
}

fn job_file() -> PathBuf {
    workspace_root().join("examples/tiny.toml")
}

/// The only job folder under `runs/jobs`.
fn trial_folder(runs: &Path, trial: usize) -> PathBuf {
    let jobs: Vec<PathBuf> = std::fs::read_dir(runs.join("jobs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(jobs.len(), 1, "one job under {}", runs.display());
    jobs[0].join(format!("trial-{trial:04}"))
}

fn weights(model_dir: &Path) -> Vec<(String, Vec<f64>)> {
    let out = Command::new(binary("cohort-worker"))
        .args(["model", "weights", "--model"])
        .arg(model_dir)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["path"].as_str().unwrap().to_string(),
                t["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap())
                    .collect(),
            )
        })
        .collect()
}

fn scores(trial: &Path) -> Vec<(String, f64)> {
    std::fs::read_to_string(trial.join("scores.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_string(), f[2].parse().unwrap())
        })
        .collect()
}

/// Every value within `rel` of the reference, relative to the tensor's (or the score
/// vector's) largest magnitude.
fn assert_close(got: &[f64], expected: &[f64], rel: f64, what: &str) {
    assert_eq!(got.len(), expected.len(), "{what}: lengths");
    let scale = expected.iter().fold(1e-12f64, |m, v| m.max(v.abs()));
    let worst = got
        .iter()
        .zip(expected)
        .map(|(a, b)| (a - b).abs() / scale)
        .fold(0.0, f64::max);
    assert!(
        worst <= rel,
        "{what}: differs by {worst:e} (relative), more than {rel:e}"
    );
}

fn assert_same_model(a: &Path, b: &Path, what: &str) {
    let (wa, wb) = (weights(a), weights(b));
    assert_eq!(wa.len(), wb.len());
    for ((pa, va), (pb, vb)) in wa.iter().zip(&wb) {
        assert_eq!(pa, pb);
        assert_close(vb, va, 1e-5, &format!("{what}: {pa}"));
    }
}

fn assert_same_scores(a: &Path, b: &Path, what: &str) {
    let (sa, sb) = (scores(a), scores(b));
    let ids_a: Vec<&String> = sa.iter().map(|(i, _)| i).collect();
    let ids_b: Vec<&String> = sb.iter().map(|(i, _)| i).collect();
    assert_eq!(ids_a, ids_b);
    let va: Vec<f64> = sa.iter().map(|(_, s)| *s).collect();
    let vb: Vec<f64> = sb.iter().map(|(_, s)| *s).collect();
    assert_close(&vb, &va, 1e-5, what);
}

#[test]
fn the_same_job_on_1_2_and_3_workers_gives_the_same_weights_and_scores() {
    let dir = tempfile::tempdir().unwrap();
    let cohort_dir = tiny_cohort(dir.path());
    let mut trials = Vec::new();
    for n in [1usize, 2, 3] {
        let runs = dir.path().join(format!("runs-{n}"));
        let wpt = format!("distributed.workers_per_trial={n}");
        let out = cohort()
            .arg("run")
            .arg(job_file())
            .args(["--local-workers", &n.to_string()])
            .args(sets(&cohort_dir, &runs, &[&wpt]))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cohort run with {n} workers failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let trial = trial_folder(&runs, 0);
        let summary: serde_json::Value =
            serde_json::from_slice(&std::fs::read(trial.join("trial.json")).unwrap()).unwrap();
        assert_eq!(summary["steps"].as_u64(), Some(20), "{n} workers: steps");
        trials.push(trial);
    }
    for (n, t) in [(2, &trials[1]), (3, &trials[2])] {
        assert_same_model(
            &trials[0].join("last"),
            &t.join("last"),
            &format!("{n} workers"),
        );
        assert_same_scores(&trials[0], t, &format!("{n} workers: scores"));
    }
}

/// A coordinator process on a free loopback port; killed when dropped.
struct Coordinator {
    child: Child,
    url: String,
}

impl Coordinator {
    fn kill_9(&mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Worker processes, killed when dropped (also when a test fails).
struct Workers(Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for w in &mut self.0 {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A self-signed certificate for 127.0.0.1 and localhost (its own CA), written as PEM.
struct TestTls {
    cert: PathBuf,
    key: PathBuf,
}

impl TestTls {
    fn new(dir: &Path) -> Self {
        let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        let certified = rcgen::generate_simple_self_signed(names).unwrap();
        let tls = Self {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        std::fs::write(&tls.cert, certified.cert.pem()).unwrap();
        std::fs::write(&tls.key, certified.signing_key.serialize_pem()).unwrap();
        tls
    }
}

fn start_coordinator(port: u16, artifacts: &Path) -> Coordinator {
    start_coordinator_with(port, artifacts, None)
}

fn start_coordinator_with(port: u16, artifacts: &Path, tls: Option<&TestTls>) -> Coordinator {
    let mut command = cohort();
    command
        .args([
            "coordinator",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--artifacts",
        ])
        .arg(artifacts);
    if let Some(tls) = tls {
        command
            .arg("--tls-cert")
            .arg(&tls.cert)
            .arg("--tls-key")
            .arg(&tls.key);
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    Coordinator {
        child: command.stdout(Stdio::null()).spawn().unwrap(),
        url: format!("{scheme}://127.0.0.1:{port}"),
    }
}

fn start_worker(coordinator: &str, cache: &Path) -> Child {
    start_worker_with(coordinator, cache, None)
}

fn start_worker_with(coordinator: &str, cache: &Path, tls: Option<&TestTls>) -> Child {
    let mut command = Command::new(binary("cohort-worker"));
    command
        .args([
            "--coordinator",
            coordinator,
            "--listen",
            "127.0.0.1:0",
            "--cache-dir",
        ])
        .arg(cache);
    if let Some(tls) = tls {
        command
            .arg("--tls-cert")
            .arg(&tls.cert)
            .arg("--tls-key")
            .arg(&tls.key)
            .arg("--tls-ca")
            .arg(&tls.cert);
    }
    command
        .env("COHORT_TOKEN", TOKEN)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

fn submit(coordinator: &str, args: &[String]) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = cohort()
            .arg("submit")
            .arg(job_file())
            .args(["--coordinator", coordinator])
            .args(args)
            .output()
            .unwrap();
        if out.status.success() {
            return String::from_utf8(out.stdout).unwrap().trim().to_string();
        }
        // The coordinator may still be starting.
        assert!(
            Instant::now() < deadline,
            "submit failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `cohort watch` until the job ends; whether it succeeded, and what watch printed.
/// Retries while the coordinator is not reachable yet (a restarted one is still starting).
fn watch_until_done(coordinator: &str, job: &str) -> (bool, String) {
    watch_until_done_with(coordinator, job, &[])
}

/// [`watch_until_done`] with more arguments for `cohort watch` (`--tls-ca FILE`).
fn watch_until_done_with(coordinator: &str, job: &str, extra: &[String]) -> (bool, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = cohort()
            .args(["watch", job, "--coordinator", coordinator])
            .args(extra)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success()
            || !text.contains("connecting to the coordinator")
            || Instant::now() > deadline
        {
            return (out.status.success(), text);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_for(path: &Path, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while !path.exists() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Settings that make losses visible within seconds.
const FAST_FAILURE: &[&str] = &[
    "distributed.heartbeat_interval_ms=200",
    "distributed.loss_timeout_ms=5000",
    "distributed.collective_timeout_ms=8000",
    "training.checkpoint_every_steps=1",
];

#[test]
fn kill_9_of_a_worker_mid_trial_resumes_and_ends_with_the_uninterrupted_scores() {
    let dir = tempfile::tempdir().unwrap();
    let cohort_dir = tiny_cohort(dir.path());
    let runs = dir.path().join("runs");
    let coordinator = start_coordinator(free_port(), &runs);
    let cache = dir.path().join("cache");
    let mut workers = Workers(vec![
        start_worker(&coordinator.url, &cache),
        start_worker(&coordinator.url, &cache),
    ]);
    let mut extra = FAST_FAILURE.to_vec();
    extra.push("distributed.workers_per_trial=2");
    let job = submit(&coordinator.url, &sets(&cohort_dir, &runs, &extra));
    let trial = runs.join("jobs").join(&job).join("trial-0000");
    wait_for(&trial.join("checkpoints/latest.json"), "a first checkpoint");
    workers.0[1].kill().unwrap(); // SIGKILL
    workers.0[1].wait().unwrap();
    assert!(
        !trial.join("trial.json").exists(),
        "the trial ended before the kill"
    );
    let (ok, events) = watch_until_done(&coordinator.url, &job);
    assert!(
        ok,
        "the job did not succeed:
{events}"
    );
    assert!(trial.join("trial.json").exists());

    // The same job again, uninterrupted, on the one remaining worker.
    let again = submit(&coordinator.url, &sets(&cohort_dir, &runs, &extra));
    let (ok, events) = watch_until_done(&coordinator.url, &again);
    assert!(ok, "the reference job did not succeed:\n{events}");
    let reference = runs.join("jobs").join(&again).join("trial-0000");
    assert_same_scores(&reference, &trial, "after kill -9 of a worker");
}

#[test]
fn kill_9_of_the_coordinator_mid_job_a_restarted_one_finishes_without_rerunning_trials() {
    let dir = tempfile::tempdir().unwrap();
    let cohort_dir = tiny_cohort(dir.path());
    let runs = dir.path().join("runs");
    let port = free_port();
    let mut coordinator = start_coordinator(port, &runs);
    let cache = dir.path().join("cache");
    let _worker = Workers(vec![start_worker(&coordinator.url, &cache)]);
    let mut extra = FAST_FAILURE.to_vec();
    extra.push("ensemble.members=2");
    let job = submit(&coordinator.url, &sets(&cohort_dir, &runs, &extra));
    let folder = runs.join("jobs").join(&job);
    let first = folder.join("trial-0000/trial.json");
    wait_for(&first, "the first trial to finish");
    let finished_at = std::fs::metadata(&first).unwrap().modified().unwrap();
    coordinator.kill_9();

    let mut restarted = start_coordinator(port, &runs);
    let (ok, events) = watch_until_done(&restarted.url, &job);
    let log = std::fs::read_to_string(runs.with_extension("coordinator.log")).unwrap_or_default();
    assert!(
        ok,
        "the restarted coordinator did not finish the job:\n{events}\ncoordinator log:\n{log}\nexit: {:?}",
        restarted.child.try_wait()
    );
    assert!(folder.join("trial-0001/trial.json").exists());
    assert_eq!(
        std::fs::metadata(&first).unwrap().modified().unwrap(),
        finished_at,
        "the finished trial was run again"
    );
    assert!(folder.join("report.json").exists());
}

#[test]
fn with_tls_on_every_channel_a_data_parallel_job_runs_and_plain_text_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tls = TestTls::new(dir.path());
    let cohort_dir = tiny_cohort(dir.path());
    let runs = dir.path().join("runs");
    let coordinator = start_coordinator_with(free_port(), &runs, Some(&tls));
    assert!(coordinator.url.starts_with("https://"));
    let cache = dir.path().join("cache");
    let _workers = Workers(vec![
        start_worker_with(&coordinator.url, &cache, Some(&tls)),
        start_worker_with(&coordinator.url, &cache, Some(&tls)),
    ]);
    let ca = vec![
        "--tls-ca".to_string(),
        tls.cert.to_str().unwrap().to_string(),
    ];
    // Two workers per trial: the gradients travel over the workers' TLS ring.
    let extra = ["distributed.workers_per_trial=2", "training.epochs=1"];
    let mut args = sets(&cohort_dir, &runs, &extra);
    args.extend(ca.iter().cloned());
    let job = submit(&coordinator.url, &args);
    let (ok, events) = watch_until_done_with(&coordinator.url, &job, &ca);
    assert!(ok, "the TLS job did not succeed:\n{events}");
    assert!(trial_folder(&runs, 0).join("trial.json").exists());
    let started = events
        .lines()
        .find_map(|l| l.split_once("trial 0 started on ").map(|(_, ids)| ids))
        .unwrap_or_else(|| panic!("no start event:\n{events}"));
    assert_eq!(
        started.split(", ").count(),
        2,
        "the trial ran on a group of two:\n{events}"
    );

    // The same coordinator over plain HTTP/2, and over TLS without trusting its CA.
    let plain = coordinator.url.replacen("https://", "http://", 1);
    for url in [plain.as_str(), coordinator.url.as_str()] {
        let out = cohort()
            .args(["report", &job, "--coordinator", url])
            .env_remove("COHORT_TLS_CA")
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "`cohort report` over {url} without the CA got through"
        );
    }
}
