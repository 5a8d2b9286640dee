//! `cohort run JOB.toml --local-workers N`: the embedded mode.
//!
//! Starts the coordinator in this process on 127.0.0.1 (a random port, a
//! fresh random token, artifacts at the spec's `artifacts.url`), spawns N
//! `cohort-worker` processes against it (the binary next to this one, or
//! `COHORT_WORKER_BIN`; the token travels in their environment, never on a
//! command line), submits the job, prints its events like `cohort watch`,
//! stops the workers and exits 0 only if the job succeeded. The workers' output
//! comes through on this process's stderr, each line prefixed `[worker i]`, so
//! interleaved logs still say who wrote them.

use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use cohort_coordinator::server::Config;
use cohort_coordinator::server::serve::{ServeOptions, start};
use cohort_proto::auth::{ClientAuth, TOKEN_ENV, TOKEN_FILE_ENV, Token};
use cohort_proto::v1::job_service_client::JobServiceClient;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use super::remote::{prepare_spec, print_events, submit_spec};
use super::watch::exit_code;

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The job file (TOML).
    pub job: PathBuf,
    /// Worker processes to start on this machine.
    #[arg(long, default_value_t = 1)]
    pub local_workers: usize,
    /// Override a setting, `section.key=value` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    if args.local_workers == 0 {
        bail!("--local-workers must be at least 1");
    }
    let (spec, spec_toml) = prepare_spec(&args.job, &args.sets)?;
    let token = random_token()?;
    let worker_bin = worker_binary()?;
    let d = &spec.distributed;
    let config = Config {
        heartbeat_interval: Duration::from_millis(d.heartbeat_interval_ms),
        lease: Duration::from_millis(d.loss_timeout_ms),
        ..Config::default()
    };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let running = start(ServeOptions {
            listen: "127.0.0.1:0".parse().expect("a valid address"),
            artifacts: spec.artifacts.url.clone(),
            token: token.clone(),
            tls: None,
            config,
        })
        .await?;
        let url = format!("http://{}", running.addr);
        let mut workers = Vec::with_capacity(args.local_workers);
        for i in 0..args.local_workers {
            let mut child = Command::new(&worker_bin)
                .args(["--coordinator", &url, "--listen", "127.0.0.1:0"])
                .env(TOKEN_ENV, token.expose())
                .env_remove(TOKEN_FILE_ENV)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("starting worker {i}: {}", worker_bin.display()))?;
            if let Some(out) = child.stdout.take() {
                tokio::spawn(prefix_lines(i, out));
            }
            if let Some(err) = child.stderr.take() {
                tokio::spawn(prefix_lines(i, err));
            }
            workers.push(child);
        }
        let channel = cohort_proto::auth::endpoint(&url, None)?.connect().await?;
        let mut jobs = JobServiceClient::with_interceptor(channel, ClientAuth::new(&token));
        let submitted = submit_spec(&mut jobs, spec_toml).await?;
        println!("job {} ({} trials)", submitted.job_id, submitted.trials);
        let outcome = tokio::select! {
            state = print_events(&mut jobs, &submitted.job_id) => state,
            _ = all_exited(&mut workers) => Err(anyhow::anyhow!("every worker exited before the job ended")),
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        };
        stop(&mut workers).await;
        let folder = running
            .coordinator
            .artifacts_url()
            .to_string()
            + &format!("/jobs/{}", submitted.job_id);
        println!("artifacts: {folder}");
        Ok(exit_code(outcome?))
    })
}

/// `COHORT_WORKER_BIN`, else `cohort-worker` next to this executable.
fn worker_binary() -> anyhow::Result<PathBuf> {
    if let Some(bin) = std::env::var_os("COHORT_WORKER_BIN").filter(|b| !b.is_empty()) {
        return Ok(bin.into());
    }
    let exe = std::env::current_exe().context("locating the cohort executable")?;
    let bin = exe.with_file_name(format!("cohort-worker{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        bail!(
            "{} not found; build it (cargo build -p cohort-worker) or set COHORT_WORKER_BIN",
            bin.display()
        );
    }
    Ok(bin)
}

/// 32 bytes from the OS's generator, hex.
fn random_token() -> anyhow::Result<Token> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom for a token")?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(Token::new(&hex, "a random token")?)
}

/// Copies `stream` to stderr line by line, each line prefixed `[worker i]`
/// (bytes that are not UTF-8 are shown as U+FFFD, never dropped silently).
async fn prefix_lines(i: usize, stream: impl AsyncRead + Unpin) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                eprintln!("[worker {i}] {}", text.trim_end_matches(['\n', '\r']));
            }
        }
    }
}

async fn all_exited(workers: &mut [Child]) {
    for w in workers.iter_mut() {
        let _ = w.wait().await;
    }
}

/// SIGTERM first, so workers deregister; then kill what is left.
async fn stop(workers: &mut [Child]) {
    for w in workers.iter_mut() {
        if let Some(pid) = w.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }
    for w in workers.iter_mut() {
        if tokio::time::timeout(Duration::from_secs(5), w.wait())
            .await
            .is_err()
        {
            let _ = w.kill().await;
        }
    }
}
