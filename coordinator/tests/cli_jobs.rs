//! The job commands of the real `cohort` binary, end to end on loopback.
//!
//! This test target has no libtest harness: the same executable is also the
//! fake worker that `cohort run` spawns (through `COHORT_WORKER_BIN`), chosen
//! by its arguments (`--coordinator URL --listen ADDR`, as `cohort-worker`
//! takes them). The fake follows the worker contract — register, heartbeat,
//! take an assignment, report the result of rank 0 with scores — without
//! training, so the embedded mode is tested without the real worker.

use std::process::Command;
use std::time::Duration;

use cohort_proto::auth::{ClientAuth, Token};
use cohort_proto::v1::{self, worker_command::Kind, worker_service_client::WorkerServiceClient};
use tokio::sync::mpsc;

const COHORT: &str = env!("CARGO_BIN_EXE_cohort");

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--coordinator") {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(fake_worker(args[i + 1].clone()));
        return;
    }
    let filter = args.iter().skip(1).find(|a| !a.starts_with('-'));
    let tests: [(&str, fn()); 3] = [
        ("run_embedded_job_succeeds", run_embedded_job_succeeds),
        (
            "coordinator_refuses_to_start_without_a_token",
            coordinator_refuses_to_start_without_a_token,
        ),
        (
            "submit_watch_report_against_a_coordinator",
            submit_watch_report_against_a_coordinator,
        ),
    ];
    for (name, test) in tests {
        if filter.is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        println!("test {name} ...");
        test();
        println!("test {name} ... ok");
    }
}

fn write_job(dir: &std::path::Path, members: usize, workers: usize) -> std::path::PathBuf {
    let job = dir.join("job.toml");
    std::fs::write(
        &job,
        format!(
            "name = \"cli\"\n[cohort]\nurl = \"./cohort-data\"\n[ensemble]\nmembers = {members}\n\
             [artifacts]\nurl = \"./runs\"\n[distributed]\nworkers_per_trial = {workers}\n\
             heartbeat_interval_ms = 50\nloss_timeout_ms = 2000\n"
        ),
    )
    .unwrap();
    job
}

fn run_embedded_job_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let job = write_job(dir.path(), 2, 2);
    let out = Command::new(COHORT)
        .current_dir(dir.path())
        .args([
            "run",
            "job.toml",
            "--local-workers",
            "2",
            "--set",
            "training.seed=3",
        ])
        .env("COHORT_WORKER_BIN", std::env::current_exe().unwrap())
        .env_remove("COHORT_TOKEN")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("trial 0 started on"), "{stdout}");
    assert!(stdout.contains("job succeeded"), "{stdout}");
    for i in 0..2 {
        let prefix = format!("[worker {i}] fake worker fake-");
        assert!(
            stderr.lines().any(|l| l.starts_with(&prefix)),
            "worker {i}'s output is passed on, prefixed:\n{stderr}"
        );
    }
    let folder = stdout
        .lines()
        .find_map(|l| l.strip_prefix("artifacts: "))
        .expect("the artifacts folder is printed");
    assert!(folder.contains("/runs/jobs/cli-"), "{folder}");
    let job_dir = dir
        .path()
        .join("runs/jobs")
        .join(folder.rsplit('/').next().unwrap());
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(job_dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["state"], "succeeded");
    // The relative cohort path was made absolute before submission.
    let spec = std::fs::read_to_string(job_dir.join("job.json")).unwrap();
    let expected = dir.path().join("cohort-data");
    assert!(spec.contains(&expected.display().to_string()), "{spec}");
    drop(job);
}

fn coordinator_refuses_to_start_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(COHORT)
        .args(["coordinator", "--listen", "127.0.0.1:0", "--artifacts"])
        .arg(dir.path())
        .env_remove("COHORT_TOKEN")
        .env_remove("COHORT_TOKEN_FILE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("token"), "{stderr}");
}

fn submit_watch_report_against_a_coordinator() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "cli-secret\n").unwrap();
    // A free port: bind, read, release.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let server = std::process::Command::new(COHORT)
        .args([
            "coordinator",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--heartbeat-interval-ms",
            "50",
            "--lease-ms",
            "2000",
            "--artifacts",
        ])
        .arg(dir.path().join("artifacts"))
        .arg("--token-file")
        .arg(&token_file)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let cli = |args: &[&str]| {
        Command::new(COHORT)
            .current_dir(dir.path())
            .args(args)
            .args(["--coordinator", &url])
            .env("COHORT_TOKEN_FILE", &token_file)
            .output()
            .unwrap()
    };
    write_job(dir.path(), 1, 1);
    let mut submitted = None;
    for _ in 0..100 {
        let out = cli(&["submit", "job.toml"]);
        if out.status.success() {
            submitted = Some(String::from_utf8(out.stdout).unwrap().trim().to_string());
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let job_id = submitted.expect("submit succeeds once the coordinator is up");
    let worker = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--coordinator", &url, "--listen", "127.0.0.1:0"])
        .env("COHORT_TOKEN", "cli-secret")
        .spawn()
        .unwrap();
    let watch = cli(&["watch", &job_id]);
    let stdout = String::from_utf8_lossy(&watch.stdout);
    assert!(
        watch.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&watch.stderr)
    );
    assert!(
        stdout.lines().last().unwrap().contains("job succeeded"),
        "{stdout}"
    );
    let report = cli(&["report", &job_id]);
    assert!(report.status.success());
    let value: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(value["job_id"], job_id.as_str());
    // A wrong token is refused.
    let wrong = Command::new(COHORT)
        .args(["report", &job_id, "--coordinator", &url])
        .env("COHORT_TOKEN", "wrong")
        .env_remove("COHORT_TOKEN_FILE")
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    for mut child in [server, worker] {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A worker that trains nothing: every assignment ends at once, rank 0
/// reporting a score per patient.
async fn fake_worker(url: String) {
    let token = Token::require_env().unwrap();
    let channel = cohort_proto::auth::endpoint(&url, None)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = WorkerServiceClient::with_interceptor(channel, ClientAuth::new(&token));
    let worker_id = format!("fake-{}", std::process::id());
    let registered = client
        .register(v1::RegisterRequest {
            worker_id: worker_id.clone(),
            collective_address: "127.0.0.1:1".into(),
            device: "cpu".into(),
            cpu_threads: 1,
        })
        .await
        .unwrap()
        .into_inner();
    // What a real worker logs; `cohort run` passes it on, prefixed.
    eprintln!("fake worker {worker_id} registered");
    let (tx, rx) = mpsc::channel(4);
    let idle = v1::HeartbeatRequest {
        worker_id: worker_id.clone(),
        ..Default::default()
    };
    tx.send(idle.clone()).await.unwrap();
    let mut commands = client
        .heartbeat(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let interval = Duration::from_millis(registered.heartbeat_interval_ms);
    let beats = tokio::spawn(async move {
        loop {
            tokio::time::sleep(interval).await;
            if tx.send(idle.clone()).await.is_err() {
                return;
            }
        }
    });
    while let Ok(Some(command)) = commands.message().await {
        let Some(Kind::Assign(a)) = command.kind else {
            continue;
        };
        let scores = if a.rank == 0 {
            (0..4)
                .map(|p| v1::PatientScore {
                    patient_id: format!("p{p}"),
                    split: "test".into(),
                    score: p as f64 + a.trial as f64,
                })
                .collect()
        } else {
            vec![]
        };
        client
            .report_result(v1::TrialResult {
                worker_id: worker_id.clone(),
                job_id: a.job_id.clone(),
                trial: a.trial,
                rank: a.rank,
                scores,
                best_validation_c_index: 0.6,
                best_epoch: 1,
                model_url: format!("{}/model", a.checkpoint_url),
                group_epoch: a.group_epoch,
                ..Default::default()
            })
            .await
            .unwrap();
    }
    beats.abort();
}
