//! Running the coordinator: both services behind the auth layer (every RPC
//! needs the token), optional TLS, and the periodic loss/stall check.
//!
//! [`Running`] owns the server and the check; dropping it stops both at once
//! (open heartbeat streams included), which is what a crashed coordinator
//! looks like to workers — the restart test relies on that.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cohort_proto::auth::{self, ServerTls, Token};
use cohort_proto::v1::{
    job_service_server::JobServiceServer, worker_service_server::WorkerServiceServer,
};
use tokio::task::JoinHandle;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use super::job_service::JobApi;
use super::worker_service::WorkerApi;
use super::{Config, Coordinator};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("binding {addr}: {message}")]
    Bind { addr: SocketAddr, message: String },
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("the server stopped: {0}")]
    Stopped(String),
    #[error("opening the artifact store: {0}")]
    Persist(#[from] super::persist::PersistError),
}

pub struct ServeOptions {
    pub listen: SocketAddr,
    pub artifacts: String,
    pub token: Token,
    pub tls: Option<ServerTls>,
    pub config: Config,
}

/// A running coordinator.
pub struct Running {
    pub addr: SocketAddr,
    pub coordinator: Arc<Coordinator>,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
    ticker: JoinHandle<()>,
}

impl Running {
    /// Waits until the server stops (it runs until dropped or an error).
    pub async fn wait(mut self) -> Result<(), ServeError> {
        match (&mut self.server).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ServeError::Stopped(e.to_string())),
            Err(e) => Err(ServeError::Stopped(e.to_string())),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.server.abort();
        self.ticker.abort();
    }
}

/// Loads the jobs from the artifact store and starts serving.
pub async fn start(options: ServeOptions) -> Result<Running, ServeError> {
    let interval = options.config.heartbeat_interval;
    let coordinator = Coordinator::open(&options.artifacts, options.config).await?;
    let incoming = TcpIncoming::bind(options.listen).map_err(|e| ServeError::Bind {
        addr: options.listen,
        message: e.to_string(),
    })?;
    let addr = incoming.local_addr().map_err(|e| ServeError::Bind {
        addr: options.listen,
        message: e.to_string(),
    })?;
    let mut builder = Server::builder();
    if let Some(tls) = &options.tls {
        builder = builder
            .tls_config(tls.config()?)
            .map_err(|e| ServeError::Tls(e.to_string()))?;
    }
    let router = builder
        .layer(auth::server_layer(&options.token))
        .add_service(JobServiceServer::new(JobApi(coordinator.clone())))
        .add_service(WorkerServiceServer::new(WorkerApi(coordinator.clone())));
    let server = tokio::spawn(router.serve_with_incoming(incoming));
    let check = coordinator.clone();
    let period = (interval / 2).max(Duration::from_millis(20));
    let ticker = tokio::spawn(async move {
        let mut every = tokio::time::interval(period);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            check.apply(|st| st.tick(Instant::now())).await;
        }
    });
    tracing::info!(%addr, artifacts = %coordinator.artifacts_url(), "coordinator listening");
    Ok(Running {
        addr,
        coordinator,
        server,
        ticker,
    })
}
