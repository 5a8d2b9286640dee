//! One assignment on its own thread: rank `r` of a group training one trial.
//!
//! The thread opens the trial ([`crate::train::open_trial`]), joins the ring
//! (or runs alone when the group has one member), runs
//! [`crate::train::run_trial`] and sends exactly one `TrialResult` back. The
//! shared [`Status`] is what the heartbeat reports; the stop flag is how a
//! cancellation, a lost coordinator or SIGTERM reaches the training loop
//! between two steps.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cohort_common::spec::JobSpec;
use cohort_common::store::Store;
use cohort_proto::auth::{ClientTls, Token};
use cohort_proto::v1::{Assignment, EpochReport, PatientScore, TrialResult};
use tokio::runtime::Handle;
use tokio::sync::mpsc::UnboundedSender;

use crate::collective::{
    BlockingRing, Collective, CollectiveHub, LocalCollective, Progress, Ring, RingConfig,
    WireFormat,
};
use crate::train::{
    EpochRecord, EpochTiming, Resources, StepOutcome, TrialEnd, TrialObserver, TrialSummary,
    open_trial, run_trial,
};

/// What the heartbeat reports about the current assignment.
#[derive(Clone, Debug, Default)]
pub struct Status {
    pub job_id: String,
    pub trial: u32,
    pub group_epoch: u64,
    pub step: u64,
    pub epoch: u64,
    pub samples_per_second: f64,
    pub checkpoint_url: String,
    pub checkpoint_step: u64,
    pub last_epoch: Option<EpochReport>,
    pub collectives: Option<Progress>,
}

/// The end of an assignment, for the coordinator.
pub struct AssignmentEnd(pub TrialResult);

/// A running assignment: its identity, its stop flag and its thread.
pub struct RunningAssignment {
    pub job_id: String,
    pub trial: u32,
    pub group_epoch: u64,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RunningAssignment {
    /// Asks the trial to stop after its current step (rank 0 checkpoints first).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Waits for the thread (after its result was received).
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What every assignment of this process shares.
#[derive(Clone)]
pub struct RunnerContext {
    pub worker_id: String,
    pub hub: CollectiveHub,
    pub token: Token,
    pub tls: Option<ClientTls>,
    pub resources: Resources,
    pub runtime: Handle,
}

/// Starts `assignment` on a new thread; its result goes to `done`.
pub fn start(
    assignment: Assignment,
    context: RunnerContext,
    status: Arc<Mutex<Status>>,
    done: UnboundedSender<AssignmentEnd>,
) -> RunningAssignment {
    let stop = Arc::new(AtomicBool::new(false));
    {
        let mut s = status.lock().expect("status lock");
        *s = Status {
            job_id: assignment.job_id.clone(),
            trial: assignment.trial,
            group_epoch: assignment.group_epoch,
            ..Status::default()
        };
    }
    let running = RunningAssignment {
        job_id: assignment.job_id.clone(),
        trial: assignment.trial,
        group_epoch: assignment.group_epoch,
        stop: stop.clone(),
        thread: None,
    };
    let thread = std::thread::Builder::new()
        .name(format!("trial-{}", assignment.trial))
        .spawn(move || {
            let mut result = TrialResult {
                worker_id: context.worker_id.clone(),
                job_id: assignment.job_id.clone(),
                trial: assignment.trial,
                rank: assignment.rank,
                group_epoch: assignment.group_epoch,
                ..TrialResult::default()
            };
            match execute(&assignment, &context, &status, &stop) {
                Ok(Outcome::Finished(summary, scores)) => {
                    result.scores = scores;
                    result.best_validation_c_index = summary.best_val_cindex.unwrap_or(f64::NAN);
                    result.best_epoch = summary.best_epoch.unwrap_or(0);
                    result.model_url = summary.model_url.clone();
                    result.metrics.insert("steps".into(), summary.steps as f64);
                    if let Some(last) = summary.history.last() {
                        result.metrics.insert("train_loss".into(), last.train_loss);
                    }
                }
                Ok(Outcome::Interrupted) => result.interrupted = true,
                Err(e) => {
                    tracing::warn!(trial = assignment.trial, rank = assignment.rank, error = %e, "assignment failed");
                    result.error = e;
                }
            }
            let _ = done.send(AssignmentEnd(result));
        })
        .expect("spawning a trial thread");
    RunningAssignment {
        thread: Some(thread),
        ..running
    }
}

enum Outcome {
    Finished(TrialSummary, Vec<PatientScore>),
    Interrupted,
}

fn execute(
    assignment: &Assignment,
    context: &RunnerContext,
    status: &Arc<Mutex<Status>>,
    stop: &Arc<AtomicBool>,
) -> Result<Outcome, String> {
    let spec = JobSpec::parse(&assignment.trial_spec_toml, "assignment", &[])
        .map_err(|e| e.to_string())?;
    let trial = Store::open(&assignment.checkpoint_url).map_err(|e| e.to_string())?;
    let inputs = context
        .runtime
        .block_on(open_trial(spec, trial, &context.resources))
        .map_err(|e| e.to_string())?;
    let world = assignment.world_size.max(1) as usize;
    let rank = assignment.rank as usize;
    let mut collective: Box<dyn Collective> = if world == 1 {
        Box::new(LocalCollective::new())
    } else {
        let mut config = RingConfig::new(rank, assignment.peers.clone(), context.token.clone());
        config.job_id = assignment.job_id.clone();
        config.trial = assignment.trial;
        config.group_epoch = assignment.group_epoch;
        if assignment.bucket_bytes > 0 {
            config.bucket_bytes = assignment.bucket_bytes as usize;
        }
        config.wire = if assignment.wire_format == cohort_proto::v1::WireFormat::Bf16 as i32 {
            WireFormat::Bf16
        } else {
            WireFormat::F32
        };
        if assignment.collective_timeout_ms > 0 {
            config.timeout = Duration::from_millis(assignment.collective_timeout_ms);
        }
        config.tls = context.tls.clone();
        let _runtime = context.runtime.enter();
        let ring = Ring::new(&context.hub, config).map_err(|e| e.to_string())?;
        Box::new(BlockingRing::new(ring, context.runtime.clone()))
    };
    status.lock().expect("status lock").collectives = Some(collective.progress());
    let mut observer = Reporter {
        status: status.clone(),
        stop: stop.clone(),
        batch_size: inputs.plan.sampler.batch_size,
        last_step: Instant::now(),
    };
    let end = run_trial(
        &inputs,
        collective.as_mut(),
        &mut observer,
        &context.runtime,
    )
    .map_err(|e| format!("rank {rank}: {e}"))?;
    match end {
        TrialEnd::Interrupted { .. } => Ok(Outcome::Interrupted),
        TrialEnd::Finished(summary) => {
            let scores = if rank == 0 {
                read_scores(&inputs.trial, &context.runtime)?
            } else {
                Vec::new()
            };
            Ok(Outcome::Finished(summary, scores))
        }
    }
}

/// `scores.csv` of a finished trial as the result's scores.
fn read_scores(trial: &Store, runtime: &Handle) -> Result<Vec<PatientScore>, String> {
    let bytes = runtime
        .block_on(trial.get("scores.csv"))
        .map_err(|e| e.to_string())?;
    let mut reader = csv::Reader::from_reader(bytes.as_ref());
    let mut out = Vec::new();
    for (i, row) in reader.records().enumerate() {
        let row = row.map_err(|e| format!("{}: {e}", trial.url_of("scores.csv")))?;
        let bad = || format!("{}: row {}: malformed", trial.url_of("scores.csv"), i + 2);
        let score = row.get(2).ok_or_else(bad)?;
        out.push(PatientScore {
            patient_id: row.get(0).ok_or_else(bad)?.to_string(),
            split: row.get(1).ok_or_else(bad)?.to_string(),
            score: if score.is_empty() {
                f64::NAN
            } else {
                score.parse().map_err(|_| bad())?
            },
        });
    }
    Ok(out)
}

/// Feeds the heartbeat's [`Status`] and polls the stop flag.
struct Reporter {
    status: Arc<Mutex<Status>>,
    stop: Arc<AtomicBool>,
    batch_size: usize,
    last_step: Instant,
}

impl TrialObserver for Reporter {
    fn started(&mut self, _total_steps: u64, resumed_at: Option<u64>) {
        let mut s = self.status.lock().expect("status lock");
        s.step = resumed_at.unwrap_or(0);
        s.checkpoint_step = s.step;
        self.last_step = Instant::now();
    }

    fn step(&mut self, step: u64, epoch: u64, _outcome: &StepOutcome, _lr: f64) {
        let elapsed = self.last_step.elapsed().as_secs_f64();
        self.last_step = Instant::now();
        let mut s = self.status.lock().expect("status lock");
        s.step = step;
        s.epoch = epoch;
        if elapsed > 0.0 {
            s.samples_per_second = self.batch_size as f64 / elapsed;
        }
    }

    fn epoch(&mut self, record: &EpochRecord, timing: &EpochTiming) {
        self.status.lock().expect("status lock").last_epoch = Some(EpochReport {
            epoch: record.epoch,
            train_loss: record.train_loss,
            validation_c_index: record.val_cindex,
            learning_rate: record.lr,
            steps: record.steps,
            seconds_per_step: timing.seconds_per_step(),
            sync_seconds_per_step: timing.sync_seconds_per_step(),
        });
    }

    fn checkpoint(&mut self, step: u64, url: &str) {
        let mut s = self.status.lock().expect("status lock");
        s.checkpoint_step = step;
        s.checkpoint_url = url.to_string();
    }

    fn should_stop(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}
