//! Test harness for the control plane: a coordinator on loopback and fake
//! workers that follow the worker contract (register, heartbeat every
//! interval with their current assignment, accept commands, report results)
//! without training anything.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cohort_coordinator::server::Config;
use cohort_coordinator::server::serve::{Running, ServeOptions, start};
use cohort_proto::auth::{ClientAuth, Token};
use cohort_proto::v1::job_service_client::JobServiceClient;
use cohort_proto::v1::worker_service_client::WorkerServiceClient;
use cohort_proto::v1::{self, worker_command::Kind};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub const HEARTBEAT: Duration = Duration::from_millis(50);

pub type Jobs = JobServiceClient<InterceptedService<Channel, ClientAuth>>;
pub type Workers = WorkerServiceClient<InterceptedService<Channel, ClientAuth>>;

pub fn token() -> Token {
    Token::new("test-token", "test").unwrap()
}

pub async fn coordinator(artifacts: &str) -> Running {
    start(ServeOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        artifacts: artifacts.to_string(),
        token: token(),
        tls: None,
        config: Config {
            heartbeat_interval: HEARTBEAT,
            lease: Duration::from_secs(5),
            max_attempts: 5,
            stall_heartbeats: 3,
        },
    })
    .await
    .unwrap()
}

async fn channel(running: &Running) -> Channel {
    Channel::from_shared(format!("http://{}", running.addr))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

pub async fn jobs(running: &Running) -> Jobs {
    JobServiceClient::with_interceptor(channel(running).await, ClientAuth::new(&token()))
}

/// A job spec for tests: fast heartbeats and loss timeout.
pub fn spec(members: usize, workers_per_trial: usize) -> String {
    format!(
        "name = \"test job\"\n[cohort]\nurl = \"/nowhere\"\n[training]\nseed = 5\n\
         [ensemble]\nmembers = {members}\n[distributed]\nworkers_per_trial = {workers_per_trial}\n\
         heartbeat_interval_ms = 50\nloss_timeout_ms = 400\n"
    )
}

pub async fn submit(jobs: &mut Jobs, spec: &str) -> (String, u32) {
    let r = jobs
        .submit_job(v1::SubmitJobRequest {
            spec_toml: spec.to_string(),
            overrides: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    (r.job_id, r.trials)
}

/// Every event of a job until it ends (or the timeout).
pub async fn watch_all(jobs: &mut Jobs, job_id: &str, timeout: Duration) -> Vec<v1::JobEvent> {
    let mut stream = jobs
        .watch_job(v1::WatchJobRequest {
            job_id: job_id.to_string(),
            after_sequence: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(timeout, async {
        while let Some(e) = stream.message().await.unwrap() {
            out.push(e);
        }
    })
    .await;
    out
}

/// Waits until an event matching `pred` shows up in the job's history.
pub async fn wait_event(
    jobs: &mut Jobs,
    job_id: &str,
    pred: impl Fn(&v1::job_event::Kind) -> bool,
) -> v1::JobEvent {
    let mut stream = jobs
        .watch_job(v1::WatchJobRequest {
            job_id: job_id.to_string(),
            after_sequence: 0,
        })
        .await
        .unwrap()
        .into_inner();
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(e) = stream.message().await.unwrap() {
            if e.kind.as_ref().is_some_and(&pred) {
                return e;
            }
        }
        panic!("the job ended without the event");
    })
    .await
    .expect("timed out waiting for an event")
}

/// What the fake worker puts in its heartbeats.
#[derive(Clone, Default)]
pub struct Beat {
    pub job_id: String,
    pub trial: u32,
    pub group_epoch: u64,
    pub step: u64,
    pub collectives_done: u64,
    pub checkpoint_url: String,
    pub checkpoint_step: u64,
    pub last_epoch: Option<v1::EpochReport>,
}

pub struct FakeWorker {
    pub id: String,
    pub address: String,
    pub client: Workers,
    commands: mpsc::UnboundedReceiver<v1::WorkerCommand>,
    pub beat: Arc<Mutex<Beat>>,
    heartbeats: JoinHandle<()>,
}

impl FakeWorker {
    pub async fn start(running: &Running, id: &str) -> FakeWorker {
        let mut client = WorkerServiceClient::with_interceptor(
            channel(running).await,
            ClientAuth::new(&token()),
        );
        let address = format!("{id}.test:7000");
        let r = client
            .register(v1::RegisterRequest {
                worker_id: id.to_string(),
                collective_address: address.clone(),
                device: "cpu".into(),
                cpu_threads: 1,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.heartbeat_interval_ms, HEARTBEAT.as_millis() as u64);
        let beat = Arc::new(Mutex::new(Beat::default()));
        let (out_tx, out_rx) = mpsc::channel(4);
        let (cmd_tx, commands) = mpsc::unbounded_channel();
        let worker_id = id.to_string();
        let state = beat.clone();
        let mut hb_client = client.clone();
        let heartbeats = tokio::spawn(async move {
            let send = {
                let worker_id = worker_id.clone();
                let state = state.clone();
                move || {
                    let b = state.lock().unwrap().clone();
                    v1::HeartbeatRequest {
                        worker_id: worker_id.clone(),
                        job_id: b.job_id,
                        trial: b.trial,
                        step: b.step,
                        samples_per_second: 10.0,
                        collectives_done: b.collectives_done,
                        epoch: 0,
                        checkpoint_url: b.checkpoint_url,
                        checkpoint_step: b.checkpoint_step,
                        error: String::new(),
                        group_epoch: b.group_epoch,
                        last_epoch: b.last_epoch,
                    }
                }
            };
            out_tx.send(send()).await.unwrap();
            let response = hb_client
                .heartbeat(tokio_stream::wrappers::ReceiverStream::new(out_rx))
                .await
                .unwrap();
            let mut inbound = response.into_inner();
            let reader = tokio::spawn(async move {
                while let Ok(Some(c)) = inbound.message().await {
                    let _ = cmd_tx.send(c);
                }
            });
            let mut every = tokio::time::interval(HEARTBEAT);
            loop {
                every.tick().await;
                if out_tx.send(send()).await.is_err() {
                    break;
                }
            }
            reader.abort();
        });
        FakeWorker {
            id: id.to_string(),
            address,
            client,
            commands,
            beat,
            heartbeats,
        }
    }

    pub async fn next_command(&mut self) -> Kind {
        tokio::time::timeout(Duration::from_secs(10), self.commands.recv())
            .await
            .unwrap_or_else(|_| panic!("{}: no command within 10 s", self.id))
            .expect("command stream open")
            .kind
            .expect("command has a kind")
    }

    pub async fn next_assignment(&mut self) -> v1::Assignment {
        match self.next_command().await {
            Kind::Assign(a) => a,
            other => panic!("{}: expected an assignment, got {other:?}", self.id),
        }
    }

    pub async fn next_cancel(&mut self) -> v1::Cancel {
        loop {
            if let Kind::Cancel(c) = self.next_command().await {
                return c;
            }
        }
    }

    /// Heartbeats now report this assignment.
    pub fn running(&self, a: &v1::Assignment) {
        let mut b = self.beat.lock().unwrap();
        *b = Beat {
            job_id: a.job_id.clone(),
            trial: a.trial,
            group_epoch: a.group_epoch,
            ..Beat::default()
        };
    }

    pub fn idle(&self) {
        *self.beat.lock().unwrap() = Beat::default();
    }

    /// Stops heartbeating (as a killed process would).
    pub fn kill(&self) {
        self.heartbeats.abort();
    }

    /// Reports a successful end of `a` (rank 0 with scores) and goes idle.
    pub async fn succeed(&mut self, a: &v1::Assignment, scores: &[(&str, &str, f64)], c: f64) {
        self.idle();
        let result = v1::TrialResult {
            worker_id: self.id.clone(),
            job_id: a.job_id.clone(),
            trial: a.trial,
            rank: a.rank,
            scores: if a.rank == 0 {
                scores
                    .iter()
                    .map(|(p, s, v)| v1::PatientScore {
                        patient_id: p.to_string(),
                        split: s.to_string(),
                        score: *v,
                    })
                    .collect()
            } else {
                vec![]
            },
            best_validation_c_index: c,
            best_epoch: 2,
            model_url: format!("{}/model-best", a.checkpoint_url),
            error: String::new(),
            metrics: [("steps".to_string(), 40.0)].into_iter().collect(),
            checkpoint_urls: vec![],
            group_epoch: a.group_epoch,
            interrupted: false,
        };
        self.client.report_result(result).await.unwrap();
    }
}

impl FakeWorker {
    /// Reports that `a` failed on this rank and goes idle.
    pub async fn fail(&mut self, a: &v1::Assignment, error: &str) {
        self.idle();
        let result = v1::TrialResult {
            worker_id: self.id.clone(),
            job_id: a.job_id.clone(),
            trial: a.trial,
            rank: a.rank,
            error: error.to_string(),
            group_epoch: a.group_epoch,
            ..Default::default()
        };
        self.client.report_result(result).await.unwrap();
    }

    /// Graceful shutdown: Deregister, then stop heartbeating.
    pub async fn deregister(&mut self) {
        self.client
            .deregister(v1::DeregisterRequest {
                worker_id: self.id.clone(),
                reason: "SIGTERM".into(),
            })
            .await
            .unwrap();
        self.kill();
    }
}

impl Drop for FakeWorker {
    fn drop(&mut self) {
        self.heartbeats.abort();
    }
}
