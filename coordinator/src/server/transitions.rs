//! The coordinator's in-memory state and the transitions of trials and jobs.
//!
//! Every RPC handler and the periodic check lock the whole [`State`], mutate
//! it with the synchronous methods here and in `scheduler.rs`, and then call
//! `Coordinator::commit` (in `mod.rs`) while still holding the lock. Commit
//! persists every job marked dirty, writes the reports of jobs whose trials all
//! ended, and only *then* sends the queued worker commands.
//!
//! Invariants:
//! - Commands to workers go through `outbox` and leave after the state that
//!   caused them is persisted: a restarted coordinator never hands out a group
//!   epoch that a running group already uses, and never forgets a result it
//!   acknowledged.
//! - A trial's `group` lists exactly the workers whose `assignment` points at
//!   that (job, trial, group epoch); dissolving a group clears both sides.
//! - Results and reports from anything but a trial's current group are ignored.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use cohort_proto::v1;
use tonic::Status;

use super::events::{Event, EventKind};
use super::registry::{AssignmentKey, Registry, WorkerEntry};
use super::state::{JobRecord, JobStatus, Outcome, Score, TrialStatus};

/// Coordinator-wide settings (the per-job ones come from the spec).
#[derive(Clone, Debug)]
pub struct Config {
    /// Told to workers at Register.
    pub heartbeat_interval: Duration,
    /// How long an idle worker may stay silent; a worker running a trial uses
    /// its job's `distributed.loss_timeout_ms`.
    pub lease: Duration,
    /// Group formations that may fail before the trial (and the job) fails.
    pub max_attempts: u32,
    /// A rank behind the others' collective count for this many heartbeat
    /// intervals is reported as stalled.
    pub stall_heartbeats: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            heartbeat_interval: Duration::from_millis(1000),
            lease: Duration::from_millis(10_000),
            max_attempts: 5,
            stall_heartbeats: 3,
        }
    }
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[derive(Debug)]
pub struct State {
    pub config: Config,
    pub jobs: BTreeMap<String, JobRecord>,
    pub workers: Registry,
    /// Jobs changed since the last commit.
    pub dirty: BTreeSet<String>,
    /// Jobs whose trials all ended; commit writes their report and finishes them.
    pub finishing: BTreeSet<String>,
    /// Commands to send after the next commit, in order.
    pub outbox: Vec<(String, v1::worker_command::Kind)>,
    pub next_stream_id: u64,
    /// When a worker last registered (a smaller group waits for the fleet to settle).
    pub last_registration: Option<Instant>,
}

impl State {
    pub fn new(config: Config) -> Self {
        State {
            config,
            jobs: BTreeMap::new(),
            workers: Registry::new(),
            dirty: BTreeSet::new(),
            finishing: BTreeSet::new(),
            outbox: Vec::new(),
            next_stream_id: 1,
            last_registration: None,
        }
    }

    /// Appends an event to a job and marks it dirty.
    pub fn event(&mut self, job_id: &str, kind: EventKind) {
        if let Some(job) = self.jobs.get_mut(job_id) {
            job.push_event(Event::new(kind), now_ms());
            self.dirty.insert(job_id.to_string());
        }
    }

    /// Tells a worker still assigned to `key` to stop. Workers that already
    /// ended it (the one reporting a failure) or are gone get nothing.
    fn cancel_worker(&mut self, worker_id: &str, key: &AssignmentKey, reason: &str) {
        let Some(w) = self.workers.get_mut(worker_id) else {
            return;
        };
        if !w.assignment.as_ref().is_some_and(|(k, _)| k == key) {
            return;
        }
        w.assignment = None;
        w.cancelled = Some(key.clone());
        self.outbox.push((
            worker_id.to_string(),
            v1::worker_command::Kind::Cancel(v1::Cancel {
                job_id: key.job_id.clone(),
                trial: key.trial,
                reason: reason.to_string(),
            }),
        ));
    }

    /// A (re-)registration. A worker that registers again while the
    /// coordinator thinks it runs something restarted: its group is broken.
    pub fn register(&mut self, req: &v1::RegisterRequest) -> Result<(), Status> {
        if req.worker_id.trim().is_empty() {
            return Err(Status::invalid_argument("worker_id: must not be empty"));
        }
        if req.collective_address.trim().is_empty() {
            return Err(Status::invalid_argument(
                "collective_address: must be host:port",
            ));
        }
        if let Some(old) = self.workers.remove(&req.worker_id)
            && let Some((key, _)) = old.assignment
        {
            let reason = "the worker registered again (it restarted)";
            self.event(
                &key.job_id,
                EventKind::WorkerLost {
                    worker_id: req.worker_id.clone(),
                    trial: key.trial,
                    reason: reason.into(),
                },
            );
            self.break_group(&key, &format!("worker {}: {reason}", req.worker_id), true);
        }
        tracing::info!(worker = %req.worker_id, address = %req.collective_address, "worker registered");
        let now = Instant::now();
        self.last_registration = Some(now);
        self.workers
            .insert(req.worker_id.clone(), WorkerEntry::new(req, now));
        Ok(())
    }

    /// A worker is gone (missed heartbeats or deregistered).
    pub fn lose_worker(&mut self, worker_id: &str, reason: &str) {
        let Some(entry) = self.workers.remove(worker_id) else {
            return;
        };
        tracing::warn!(worker = %worker_id, %reason, "worker lost");
        if let Some((key, _)) = entry.assignment {
            self.event(
                &key.job_id,
                EventKind::WorkerLost {
                    worker_id: worker_id.to_string(),
                    trial: key.trial,
                    reason: reason.to_string(),
                },
            );
            self.break_group(&key, &format!("worker {worker_id} lost: {reason}"), true);
        }
    }

    /// Dissolves the current group of a trial: the other ranks are cancelled
    /// and the trial goes back to pending (or fails after too many attempts).
    pub fn break_group(&mut self, key: &AssignmentKey, error: &str, count_attempt: bool) {
        let max_attempts = self.config.max_attempts;
        let Some(job) = self.jobs.get_mut(&key.job_id) else {
            return;
        };
        let Some(trial) = job.trials.get_mut(key.trial as usize) else {
            return;
        };
        let Some(group) = trial.group.take().filter(|g| g.epoch == key.group_epoch) else {
            return;
        };
        trial.status = TrialStatus::Pending;
        trial.error = error.to_string();
        if count_attempt {
            trial.attempts += 1;
        }
        let attempts = trial.attempts;
        self.dirty.insert(key.job_id.clone());
        for worker in &group.workers {
            self.cancel_worker(worker, key, error);
        }
        if attempts >= max_attempts {
            self.fail_trial(
                &key.job_id,
                key.trial,
                &format!("failed after {attempts} attempts; last error: {error}"),
            );
        }
    }

    /// A trial failed for good, and with it the job.
    pub fn fail_trial(&mut self, job_id: &str, index: u32, error: &str) {
        let Some(job) = self.jobs.get_mut(job_id) else {
            return;
        };
        let Some(trial) = job.trials.get_mut(index as usize) else {
            return;
        };
        trial.status = TrialStatus::Failed;
        trial.error = error.to_string();
        let c = trial.best_validation_c_index;
        job.error = format!("trial {index} {error}");
        tracing::error!(job = %job_id, trial = index, %error, "trial failed");
        self.event(
            job_id,
            EventKind::TrialFinished {
                trial: index,
                state: v1::TrialState::Failed as i32,
                validation_c_index: c,
            },
        );
        self.end_unfinished_trials(job_id, "the job failed");
        self.finishing.insert(job_id.to_string());
    }

    /// Cancels every running group of a job and fails its unfinished trials.
    fn end_unfinished_trials(&mut self, job_id: &str, reason: &str) {
        let Some(job) = self.jobs.get_mut(job_id) else {
            return;
        };
        let mut cancels = Vec::new();
        for trial in job.trials.iter_mut().filter(|t| !t.status.is_terminal()) {
            if let Some(group) = trial.group.take() {
                let key = AssignmentKey {
                    job_id: job_id.to_string(),
                    trial: trial.index,
                    group_epoch: group.epoch,
                };
                cancels.extend(group.workers.into_iter().map(|w| (w, key.clone())));
            }
            trial.status = TrialStatus::Failed;
            trial.error = reason.to_string();
        }
        self.dirty.insert(job_id.to_string());
        for (worker, key) in cancels {
            self.cancel_worker(&worker, &key, reason);
        }
    }

    /// CancelJob.
    pub fn cancel_job(&mut self, job_id: &str) -> Result<(), Status> {
        let job = self
            .jobs
            .get_mut(job_id)
            .ok_or_else(|| Status::not_found(format!("no job {job_id}")))?;
        if job.status.is_terminal() {
            return Ok(());
        }
        job.status = JobStatus::Cancelled;
        job.error = "cancelled".into();
        self.end_unfinished_trials(job_id, "cancelled");
        self.finishing.insert(job_id.to_string());
        Ok(())
    }

    /// ReportResult.
    pub fn report_result(&mut self, r: &v1::TrialResult) -> Result<(), Status> {
        let key = AssignmentKey {
            job_id: r.job_id.clone(),
            trial: r.trial,
            group_epoch: r.group_epoch,
        };
        if let Some(w) = self.workers.get_mut(&r.worker_id)
            && w.assignment.as_ref().is_some_and(|(k, _)| *k == key)
        {
            w.assignment = None;
        }
        let Some(job) = self.jobs.get(&r.job_id) else {
            return Err(Status::not_found(format!("job_id: no job {}", r.job_id)));
        };
        let Some(trial) = job.trials.get(r.trial as usize) else {
            return Err(Status::invalid_argument(format!(
                "trial: job {} has no trial {}",
                r.job_id, r.trial
            )));
        };
        let current = trial.group.as_ref().is_some_and(|g| {
            g.epoch == r.group_epoch && g.workers.get(r.rank as usize) == Some(&r.worker_id)
        });
        if !current || trial.status != TrialStatus::Running {
            tracing::debug!(job = %r.job_id, trial = r.trial, group_epoch = r.group_epoch, "stale result ignored");
            return Ok(());
        }
        if !r.error.is_empty() {
            let error = format!("rank {} ({}): {}", r.rank, r.worker_id, r.error);
            tracing::warn!(job = %r.job_id, trial = r.trial, %error, "trial attempt failed");
            self.break_group(&key, &error, true);
            return Ok(());
        }
        if r.interrupted {
            let error = format!("rank {} ({}) was interrupted", r.rank, r.worker_id);
            self.break_group(&key, &error, false);
            return Ok(());
        }
        if r.rank != 0 {
            return Ok(());
        }
        let outcome = outcome_of(r)?;
        self.succeed_trial(&r.job_id, r.trial, outcome);
        Ok(())
    }

    fn succeed_trial(&mut self, job_id: &str, index: u32, outcome: Outcome) {
        let Some(job) = self.jobs.get_mut(job_id) else {
            return;
        };
        let trial = &mut job.trials[index as usize];
        trial.status = TrialStatus::Succeeded;
        trial.best_validation_c_index = outcome.best_validation_c_index;
        trial.error.clear();
        let c = outcome.best_validation_c_index;
        trial.result = Some(outcome);
        // The other ranks have finished too (the group ends together); any
        // that has not reported is told to stop, so it becomes idle.
        if let Some(group) = trial.group.take() {
            let key = AssignmentKey {
                job_id: job_id.to_string(),
                trial: index,
                group_epoch: group.epoch,
            };
            for w in &group.workers {
                if let Some(e) = self.workers.get_mut(w)
                    && e.assignment.as_ref().is_some_and(|(k, _)| *k == key)
                {
                    e.assignment = None;
                }
            }
        }
        let all_ended = job.all_trials_ended();
        self.event(
            job_id,
            EventKind::TrialFinished {
                trial: index,
                state: v1::TrialState::Succeeded as i32,
                validation_c_index: c,
            },
        );
        if all_ended {
            self.finishing.insert(job_id.to_string());
        }
    }
}

/// Checks rank 0's result of a successful trial.
fn outcome_of(r: &v1::TrialResult) -> Result<Outcome, Status> {
    let mut scores = Vec::with_capacity(r.scores.len());
    for (i, s) in r.scores.iter().enumerate() {
        if s.patient_id.is_empty() {
            return Err(Status::invalid_argument(format!(
                "scores[{i}].patient_id: empty"
            )));
        }
        if !matches!(s.split.as_str(), "train" | "validation" | "test") {
            return Err(Status::invalid_argument(format!(
                "scores[{i}].split: {:?} is not train, validation or test",
                s.split
            )));
        }
        if !s.score.is_finite() {
            return Err(Status::invalid_argument(format!(
                "scores[{i}].score: not finite for patient {}",
                s.patient_id
            )));
        }
        scores.push(Score {
            patient_id: s.patient_id.clone(),
            split: s.split.clone(),
            score: s.score,
        });
    }
    Ok(Outcome {
        scores,
        best_validation_c_index: r.best_validation_c_index,
        best_epoch: r.best_epoch,
        model_url: r.model_url.clone(),
        metrics: r.metrics.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        checkpoint_urls: r.checkpoint_urls.clone(),
    })
}
