//! `cohort coordinator --listen ADDR --artifacts URL`: runs the control plane.
//!
//! It refuses to start without a token (`--token-file`, `COHORT_TOKEN_FILE` or
//! `COHORT_TOKEN`): an open coordinator would hand jobs and cohort URLs to
//! anyone who can reach the port. TLS is used when a certificate and key are
//! given (flags or `COHORT_TLS_CERT` / `COHORT_TLS_KEY`, plus a client CA for
//! mutual TLS).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use cohort_coordinator::server::Config;
use cohort_coordinator::server::serve::{ServeOptions, start};
use cohort_proto::auth::ServerTls;

use super::remote::load_token;

#[derive(clap::Args, Debug)]
pub struct CoordinatorArgs {
    /// Address to serve on.
    #[arg(long, default_value = "0.0.0.0:50051")]
    pub listen: SocketAddr,
    /// Where jobs, checkpoints, models and reports go (a folder or store URL).
    #[arg(long, env = "COHORT_ARTIFACTS")]
    pub artifacts: String,
    /// File holding the bearer token (else COHORT_TOKEN_FILE or COHORT_TOKEN).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Heartbeat interval told to workers.
    #[arg(long, default_value_t = 1000)]
    pub heartbeat_interval_ms: u64,
    /// How long an idle worker may be silent before it is dropped (a worker
    /// running a trial uses its job's distributed.loss_timeout_ms).
    #[arg(long, default_value_t = 10_000)]
    pub lease_ms: u64,
    /// Failed group formations before a trial, and its job, fail.
    #[arg(long, default_value_t = 5)]
    pub max_attempts: u32,
    /// TLS certificate chain (PEM); with --tls-key.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// CA whose client certificates are required (mutual TLS).
    #[arg(long, requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
}

pub fn run(args: CoordinatorArgs) -> anyhow::Result<ExitCode> {
    let token = load_token(args.token_file.as_deref())
        .context("the coordinator does not run without a token")?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(ServerTls {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: args.tls_client_ca.clone(),
        }),
        _ => ServerTls::from_env()?,
    };
    if args.heartbeat_interval_ms == 0 || args.lease_ms <= args.heartbeat_interval_ms {
        anyhow::bail!("--lease-ms must be longer than --heartbeat-interval-ms (and both positive)");
    }
    let config = Config {
        heartbeat_interval: Duration::from_millis(args.heartbeat_interval_ms),
        lease: Duration::from_millis(args.lease_ms),
        max_attempts: args.max_attempts.max(1),
        ..Config::default()
    };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let running = start(ServeOptions {
            listen: args.listen,
            artifacts: args.artifacts.clone(),
            token,
            tls,
            config,
        })
        .await?;
        println!(
            "coordinator listening on {} (artifacts {})",
            running.addr,
            running.coordinator.artifacts_url()
        );
        tokio::select! {
            result = running.wait() => result?,
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; stopping"),
        }
        Ok(ExitCode::SUCCESS)
    })
}
