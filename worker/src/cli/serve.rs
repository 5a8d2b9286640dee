//! `cohort-worker --coordinator URL --listen ADDR`: the distributed worker (see
//! `cohort_worker::agent`).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use cohort_proto::auth::{ClientTls, ServerTls, Token};
use cohort_worker::agent::{AgentConfig, run_agent};
use cohort_worker::data::VolumeCache;
use cohort_worker::train::Resources;

/// The worker's flags (used when no subcommand is given).
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The coordinator to serve (`http://host:port`); runs this process as a worker.
    #[arg(long, env = "COHORT_COORDINATOR")]
    coordinator: Option<String>,
    /// Where this worker's collective service listens for its ring neighbours.
    #[arg(long, default_value = "0.0.0.0:7070")]
    listen: SocketAddr,
    /// The address peers use to reach `--listen` (default: the bound address).
    #[arg(long, env = "COHORT_ADVERTISE")]
    advertise: Option<String>,
    /// This worker's id (default: host name and process id).
    #[arg(long, env = "COHORT_WORKER_ID")]
    worker_id: Option<String>,
    /// The bearer token's file (else COHORT_TOKEN_FILE or COHORT_TOKEN).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// This worker's TLS certificate chain (PEM): served to ring neighbours,
    /// and presented to the coordinator when it requires client certificates.
    /// With --tls-key and --tls-ca; without all three, every channel is plain HTTP/2.
    #[arg(long, env = "COHORT_TLS_CERT", requires_all = ["tls_key", "tls_ca"])]
    tls_cert: Option<PathBuf>,
    #[arg(long, env = "COHORT_TLS_KEY", requires_all = ["tls_cert", "tls_ca"])]
    tls_key: Option<PathBuf>,
    /// The CA that signed the coordinator's and the other workers' certificates.
    #[arg(long, env = "COHORT_TLS_CA", requires_all = ["tls_cert", "tls_key"])]
    tls_ca: Option<PathBuf>,
    /// Where preprocessed volumes are cached.
    #[arg(long, env = "COHORT_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Patients decoded ahead of the training step.
    #[arg(long, default_value_t = 32)]
    prefetch: usize,
    #[command(flatten)]
    device: super::DeviceArgs,
}

/// Runs the worker until SIGTERM / Ctrl-C.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let coordinator = args
        .coordinator
        .context("--coordinator URL is required (or a subcommand; see --help)")?;
    let token = match &args.token_file {
        Some(path) => Token::from_file(path)?,
        None => Token::require_env()?,
    };
    let cache_dir = args
        .cache_dir
        .clone()
        .unwrap_or_else(super::train_local::default_cache_dir);
    let cache =
        VolumeCache::open(&cache_dir).with_context(|| format!("cache {}", cache_dir.display()))?;
    let worker_id = args.worker_id.unwrap_or_else(|| {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".into());
        format!("{host}-{}", std::process::id())
    });
    let (tls, server_tls) = match (args.tls_cert, args.tls_key, args.tls_ca) {
        (Some(cert), Some(key), Some(ca)) => (
            Some(ClientTls {
                ca: Some(ca),
                domain: None,
                identity: Some((cert.clone(), key.clone())),
            }),
            Some(ServerTls {
                cert,
                key,
                client_ca: None,
            }),
        ),
        _ => (None, None),
    };
    let spec = args.device.spec()?;
    let config = AgentConfig {
        coordinator,
        listen: args.listen,
        advertise: args.advertise,
        worker_id,
        token,
        tls,
        server_tls,
        resources: Resources {
            device: spec.device()?,
            cache: Some(cache),
            prefetch_depth: args.prefetch,
            eval_batch_size: 16,
        },
        device_name: args.device.device.to_string(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run_agent(config))?;
    Ok(())
}
