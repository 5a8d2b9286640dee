//! The worker's conversation with the coordinator: register, heartbeat,
//! take assignments, report their ends; reconnect with backoff; shut down
//! gracefully.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cohort_proto::auth::{self, AuthError, ClientAuth, ClientTls, ServerTls, Token};
use cohort_proto::v1::worker_service_client::WorkerServiceClient;
use cohort_proto::v1::{
    DeregisterRequest, HeartbeatRequest, RegisterRequest, TrialResult, worker_command,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Server};

use super::runner::{self, AssignmentEnd, RunnerContext, RunningAssignment, Status};
use crate::collective::{CollectiveHub, tune_server};
use crate::train::Resources;

type Client = WorkerServiceClient<InterceptedService<Channel, ClientAuth>>;

/// Why the worker could not run.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(
        "TLS is half set up: the worker {0} but {1}; ring neighbours dial each other \
         with the same settings, so give both a CA and a certificate with its key, or neither"
    )]
    HalfTls(&'static str, &'static str),
    #[error("the collective service's TLS configuration: {0}")]
    ServerTls(String),
}

/// How a worker process is set up.
#[derive(Clone)]
pub struct AgentConfig {
    /// The coordinator's URL (`http://host:port`, or `https://` with TLS).
    pub coordinator: String,
    /// Where the collective service listens (`127.0.0.1:0`: any free port).
    pub listen: SocketAddr,
    /// The address peers dial (default: the bound listen address).
    pub advertise: Option<String>,
    pub worker_id: String,
    pub token: Token,
    /// How this worker verifies the coordinator and its ring neighbours
    /// (their CA; this worker's certificate for mutual TLS).
    pub tls: Option<ClientTls>,
    /// The certificate the collective service presents to ring neighbours.
    /// Every channel is TLS or none is: peers dial with `tls`, so a worker
    /// with a client CA must serve TLS too (checked in [`run_agent`]).
    pub server_tls: Option<ServerTls>,
    pub resources: Resources,
    /// Device description for the coordinator (`cpu`, `cuda:0`).
    pub device_name: String,
}

/// Runs the worker until SIGTERM / Ctrl-C.
pub async fn run_agent(config: AgentConfig) -> Result<(), AgentError> {
    match (&config.tls, &config.server_tls) {
        (Some(_), None) => {
            return Err(AgentError::HalfTls(
                "verifies peers with a CA",
                "serves no certificate",
            ));
        }
        (None, Some(_)) => {
            return Err(AgentError::HalfTls(
                "serves a certificate",
                "has no CA to verify peers with",
            ));
        }
        _ => {}
    }
    let mut builder = tune_server(Server::builder());
    if let Some(tls) = &config.server_tls {
        builder = builder
            .tls_config(tls.config()?)
            .map_err(|e| AgentError::ServerTls(e.to_string()))?;
    }
    let incoming = TcpIncoming::bind(config.listen)
        .map_err(|source| AgentError::Listen {
            addr: config.listen,
            source,
        })?
        .with_nodelay(Some(true));
    let bound = incoming.local_addr().map_err(|source| AgentError::Listen {
        addr: config.listen,
        source,
    })?;
    let advertise = config
        .advertise
        .clone()
        .unwrap_or_else(|| bound.to_string());
    let hub = CollectiveHub::new(Duration::from_secs(60));
    let server = builder
        .layer(auth::server_layer(&config.token))
        .add_service(hub.service())
        .serve_with_incoming(incoming);
    tokio::spawn(async move {
        if let Err(e) = server.await {
            tracing::error!(error = %e, "the collective server stopped");
        }
    });
    tracing::info!(worker = %config.worker_id, collective = %advertise, coordinator = %config.coordinator, "worker up");

    let context = RunnerContext {
        worker_id: config.worker_id.clone(),
        hub,
        token: config.token.clone(),
        tls: config.tls.clone(),
        resources: config.resources.clone(),
        runtime: tokio::runtime::Handle::current(),
    };
    let mut session = Session {
        config,
        advertise,
        context,
        status: Arc::new(Mutex::new(Status::default())),
        running: None,
        reports: VecDeque::new(),
    };
    session.run().await;
    Ok(())
}

struct Session {
    config: AgentConfig,
    advertise: String,
    context: RunnerContext,
    status: Arc<Mutex<Status>>,
    running: Option<RunningAssignment>,
    /// Ends not yet accepted by the coordinator, oldest first.
    reports: VecDeque<TrialResult>,
}

enum Disconnect {
    Lost,
    Shutdown,
}

impl Session {
    async fn run(&mut self) {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<AssignmentEnd>();
        let mut shutdown = Box::pin(shutdown_signal());
        let mut backoff = Duration::from_millis(100);
        loop {
            let outcome = match self.connect().await {
                Ok((client, interval)) => {
                    backoff = Duration::from_millis(100);
                    self.serve(client, interval, &done_tx, &mut done_rx, &mut shutdown)
                        .await
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "cannot reach the coordinator");
                    Disconnect::Lost
                }
            };
            if let Some(r) = &self.running {
                r.stop();
            }
            if matches!(outcome, Disconnect::Shutdown) {
                self.shut_down(&mut done_rx).await;
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = &mut shutdown => {
                    self.shut_down(&mut done_rx).await;
                    return;
                }
                Some(end) = done_rx.recv() => self.finished(end),
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    async fn connect(&self) -> Result<(Client, Duration), String> {
        let endpoint = auth::endpoint(&self.config.coordinator, self.config.tls.as_ref())
            .map_err(|e| e.to_string())?;
        let channel = endpoint.connect().await.map_err(|e| e.to_string())?;
        let mut client =
            WorkerServiceClient::with_interceptor(channel, ClientAuth::new(&self.config.token));
        let reply = client
            .register(RegisterRequest {
                worker_id: self.config.worker_id.clone(),
                collective_address: self.advertise.clone(),
                device: self.config.device_name.clone(),
                cpu_threads: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
            })
            .await
            .map_err(|s| format!("register: {}", s.message()))?
            .into_inner();
        let interval = Duration::from_millis(reply.heartbeat_interval_ms.clamp(50, 60_000));
        tracing::info!(interval = ?interval, "registered");
        Ok((client, interval))
    }

    /// One connected session; returns when the stream breaks or on shutdown.
    async fn serve(
        &mut self,
        mut client: Client,
        interval: Duration,
        done_tx: &mpsc::UnboundedSender<AssignmentEnd>,
        done_rx: &mut mpsc::UnboundedReceiver<AssignmentEnd>,
        shutdown: &mut std::pin::Pin<Box<impl std::future::Future<Output = ()>>>,
    ) -> Disconnect {
        if !self.flush_reports(&mut client).await {
            return Disconnect::Lost;
        }
        let (beats, beat_rx) = mpsc::channel(16);
        let _ = beats.try_send(self.heartbeat());
        let mut commands = match client.heartbeat(ReceiverStream::new(beat_rx)).await {
            Ok(r) => r.into_inner(),
            Err(s) => {
                tracing::warn!(error = %s.message(), "heartbeat stream refused");
                return Disconnect::Lost;
            }
        };
        let mut tick = tokio::time::interval(interval);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if beats.send(self.heartbeat()).await.is_err() {
                        return Disconnect::Lost;
                    }
                }
                command = commands.message() => match command {
                    Ok(Some(c)) => match c.kind {
                        Some(worker_command::Kind::Assign(a)) => {
                            if let Some(old) = self.running.take() {
                                old.stop();
                                if let Some(end) = done_rx.recv().await {
                                    old.join();
                                    self.reports.push_back(end.0);
                                }
                            }
                            *self.status.lock().expect("status lock") = Status::default();
                            tracing::info!(job = %a.job_id, trial = a.trial, rank = a.rank, world = a.world_size, group = a.group_epoch, "assigned");
                            self.running = Some(runner::start(a, self.context.clone(), self.status.clone(), done_tx.clone()));
                            if !self.flush_reports(&mut client).await {
                                return Disconnect::Lost;
                            }
                        }
                        Some(worker_command::Kind::Cancel(c)) => {
                            if let Some(r) = &self.running
                                && r.job_id == c.job_id
                                && r.trial == c.trial
                            {
                                tracing::info!(job = %c.job_id, trial = c.trial, reason = %c.reason, "cancelled");
                                r.stop();
                            }
                        }
                        None => {}
                    },
                    Ok(None) => {
                        tracing::warn!("the coordinator closed the heartbeat stream");
                        return Disconnect::Lost;
                    }
                    Err(s) => {
                        tracing::warn!(error = %s.message(), "heartbeat stream broke");
                        return Disconnect::Lost;
                    }
                },
                Some(end) = done_rx.recv() => {
                    self.finished(end);
                    if !self.flush_reports(&mut client).await {
                        return Disconnect::Lost;
                    }
                    let _ = beats.try_send(self.heartbeat());
                }
                _ = &mut *shutdown => {
                    if let Some(r) = &self.running {
                        r.stop();
                    }
                    if self.running.is_some()
                        && let Some(end) = done_rx.recv().await
                    {
                        self.finished(end);
                    }
                    let _ = self.flush_reports(&mut client).await;
                    let _ = client
                        .deregister(DeregisterRequest {
                            worker_id: self.config.worker_id.clone(),
                            reason: "shutting down".into(),
                        })
                        .await;
                    return Disconnect::Shutdown;
                }
            }
        }
    }

    /// Records an assignment's end: the worker is idle again.
    fn finished(&mut self, end: AssignmentEnd) {
        if let Some(r) = self.running.take() {
            r.join();
        }
        *self.status.lock().expect("status lock") = Status::default();
        self.reports.push_back(end.0);
    }

    /// Delivers queued reports; `false` when the coordinator is unreachable.
    async fn flush_reports(&mut self, client: &mut Client) -> bool {
        while let Some(report) = self.reports.front() {
            match client.report_result(report.clone()).await {
                Ok(_) => {
                    self.reports.pop_front();
                }
                // A refusal of the report itself: keeping it would block every later one.
                Err(s)
                    if matches!(
                        s.code(),
                        tonic::Code::InvalidArgument
                            | tonic::Code::NotFound
                            | tonic::Code::FailedPrecondition
                            | tonic::Code::AlreadyExists
                    ) =>
                {
                    tracing::warn!(error = %s.message(), "the coordinator refused a report; dropping it");
                    self.reports.pop_front();
                }
                // The connection (or the coordinator) is gone: keep it for the next session.
                Err(_) => return false,
            }
        }
        true
    }

    /// Shutdown without a coordinator: stop the trial and wait for it.
    async fn shut_down(&mut self, done_rx: &mut mpsc::UnboundedReceiver<AssignmentEnd>) {
        if let Some(r) = &self.running {
            r.stop();
            if let Some(end) = done_rx.recv().await {
                self.finished(end);
            }
        }
        tracing::info!("worker stopped");
    }

    fn heartbeat(&self) -> HeartbeatRequest {
        let s = self.status.lock().expect("status lock");
        HeartbeatRequest {
            worker_id: self.config.worker_id.clone(),
            job_id: s.job_id.clone(),
            trial: s.trial,
            step: s.step,
            samples_per_second: s.samples_per_second,
            collectives_done: s.collectives.as_ref().map_or(0, |p| p.done()),
            epoch: s.epoch,
            checkpoint_url: s.checkpoint_url.clone(),
            checkpoint_step: s.checkpoint_step,
            error: String::new(),
            group_epoch: s.group_epoch,
            last_epoch: s.last_epoch,
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
