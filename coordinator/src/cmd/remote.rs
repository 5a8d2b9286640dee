//! What the client commands (`submit`, `watch`, `report`) share: connecting
//! to a coordinator with the token (and TLS when a CA is given), preparing a
//! job file for submission, and printing a job's events.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use cohort_common::spec::JobSpec;
use cohort_coordinator::server::events;
use cohort_proto::auth::{ClientAuth, ClientTls, Token};
use cohort_proto::v1::{self, job_event::Kind, job_service_client::JobServiceClient};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub type Jobs = JobServiceClient<InterceptedService<Channel, ClientAuth>>;

/// How to reach the coordinator.
#[derive(clap::Args, Debug, Clone)]
pub struct ConnectArgs {
    /// The coordinator's URL, e.g. http://127.0.0.1:50051.
    #[arg(long, env = "COHORT_COORDINATOR")]
    pub coordinator: String,
    /// File holding the bearer token (else COHORT_TOKEN_FILE or COHORT_TOKEN).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// CA certificate (PEM) to trust for TLS (else COHORT_TLS_CA; none: plain HTTP/2).
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
}

/// The token from a flag, or from the environment; none is an error.
pub fn load_token(file: Option<&Path>) -> anyhow::Result<Token> {
    Ok(match file {
        Some(path) => Token::from_file(path)?,
        None => Token::require_env()?,
    })
}

pub async fn connect(args: &ConnectArgs) -> anyhow::Result<Jobs> {
    let token = load_token(args.token_file.as_deref())?;
    let tls = match &args.tls_ca {
        Some(ca) => Some(ClientTls {
            ca: Some(ca.clone()),
            ..ClientTls::default()
        }),
        None => ClientTls::from_env()?,
    };
    let channel = cohort_proto::auth::endpoint(&args.coordinator, tls.as_ref())?
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .await
        .with_context(|| format!("connecting to the coordinator at {}", args.coordinator))?;
    Ok(JobServiceClient::with_interceptor(
        channel,
        ClientAuth::new(&token),
    ))
}

/// Reads a job file, applies the overrides, validates it, and makes relative
/// local paths (`cohort.url`, `artifacts.url`) absolute, because the
/// coordinator and the workers may run in another directory or machine.
/// Returns the resolved spec and its TOML.
pub fn prepare_spec(path: &Path, sets: &[String]) -> anyhow::Result<(JobSpec, String)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut spec = JobSpec::parse(&text, &path.display().to_string(), sets)?;
    spec.cohort.url = absolute_if_local(&spec.cohort.url)?;
    spec.artifacts.url = absolute_if_local(&spec.artifacts.url)?;
    let toml = toml::to_string(&spec).context("serialising the job spec")?;
    Ok((spec, toml))
}

fn absolute_if_local(url: &str) -> anyhow::Result<String> {
    if url.contains("://") || Path::new(url).is_absolute() {
        return Ok(url.to_string());
    }
    let abs = std::path::absolute(url).with_context(|| format!("resolving {url}"))?;
    Ok(abs.display().to_string())
}

/// Submits a prepared job file (see [`prepare_spec`]); the coordinator's answer.
pub async fn submit_spec(
    jobs: &mut Jobs,
    spec_toml: String,
) -> anyhow::Result<v1::SubmitJobResponse> {
    Ok(jobs
        .submit_job(v1::SubmitJobRequest {
            spec_toml,
            overrides: vec![],
        })
        .await
        .map_err(|s| anyhow::anyhow!("submitting: {}", s.message()))?
        .into_inner())
}

/// Prints a job's events line by line until it ends, resuming after the last
/// one seen when the connection drops (e.g. a coordinator restart). Returns
/// the job's final state.
pub async fn print_events(jobs: &mut Jobs, job_id: &str) -> anyhow::Result<v1::JobState> {
    let mut after = 0;
    let mut failures = 0;
    loop {
        let request = v1::WatchJobRequest {
            job_id: job_id.to_string(),
            after_sequence: after,
        };
        let result = async {
            let mut stream = jobs.watch_job(request).await?.into_inner();
            while let Some(event) = stream.message().await? {
                after = event.sequence;
                println!("{}", events::line(&event));
                if let Some(Kind::JobFinished(f)) = &event.kind {
                    return Ok(Some(
                        v1::JobState::try_from(f.state).unwrap_or(v1::JobState::Unspecified),
                    ));
                }
            }
            Ok::<_, tonic::Status>(None)
        }
        .await;
        match result {
            Ok(Some(state)) => return Ok(state),
            Ok(None) => bail!("the event stream of job {job_id} ended before the job did"),
            Err(status) if is_transient(&status) && failures < 30 => {
                failures += 1;
                tracing::warn!(error = %status, "watch interrupted; reconnecting");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(status) => bail!("watching job {job_id}: {}", status.message()),
        }
    }
}

fn is_transient(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Internal
    )
}
