//! The persistent state of a job: what `jobs/<job_id>/job.json` holds.
//!
//! Everything needed to resume a job after a coordinator restart lives here
//! and nothing else does: the resolved spec, every trial's state, attempt count,
//! checkpoint pointer, group epoch counter and (for finished trials) the result,
//! plus the recent events so a watcher after a restart still sees history.
//! Worker leases and live progress (step, throughput) are *not* persisted:
//! they describe processes that a restarted coordinator must rediscover.
//!
//! Invariants:
//! - `next_sequence` is greater than every event's sequence; events are kept
//!   in sequence order, at most [`EVENTS_KEPT`] of them.
//! - `next_group_epoch` is greater than every group epoch ever handed out for
//!   this job, and is persisted before an assignment is sent, so a restart can
//!   never reuse one.
//! - A trial in `Succeeded` has `result`; a terminal trial is never scheduled.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::events::Event;

/// Events kept per job (in memory and in job.json).
pub const EVENTS_KEPT: usize = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrialStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl TrialStatus {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }
}

/// The group currently training a trial.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub epoch: u64,
    /// Worker ids, index = rank.
    pub workers: Vec<String>,
}

/// A finished trial's result (rank 0's report).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub scores: Vec<Score>,
    pub best_validation_c_index: f64,
    pub best_epoch: u64,
    pub model_url: String,
    pub metrics: BTreeMap<String, f64>,
    pub checkpoint_urls: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub patient_id: String,
    pub split: String,
    pub score: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrialRecord {
    pub index: u32,
    pub point: u32,
    pub ensemble_member: u32,
    pub settings: BTreeMap<String, String>,
    pub spec_toml: String,
    /// The trial folder (`<artifacts>/jobs/<job_id>/trial-NNNN`).
    pub folder_url: String,
    pub status: TrialStatus,
    /// Group formations that ended in a failure or a loss.
    pub attempts: u32,
    /// True once any group was formed for it (the next formation is a resume).
    pub started: bool,
    pub group: Option<Group>,
    pub epoch: u64,
    pub step: u64,
    pub best_validation_c_index: f64,
    pub checkpoint_url: String,
    pub checkpoint_step: u64,
    /// The newest validated epoch already turned into an event.
    pub last_epoch_reported: Option<u64>,
    pub error: String,
    pub result: Option<Outcome>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub job_id: String,
    pub name: String,
    /// The job's spec, overrides applied (TOML).
    pub spec_toml: String,
    pub status: JobStatus,
    pub trials: Vec<TrialRecord>,
    pub artifacts_url: String,
    pub submitted_unix_ms: i64,
    pub finished_unix_ms: i64,
    pub error: String,
    pub next_group_epoch: u64,
    pub next_sequence: u64,
    pub events: VecDeque<Event>,
    // Copied from the spec so the scheduler need not re-parse it.
    pub workers_per_trial: u32,
    pub loss_timeout_ms: u64,
    pub bucket_bytes: u64,
    pub wire_format: i32,
    pub collective_timeout_ms: u64,
}

impl JobRecord {
    /// Appends an event with the next sequence number and returns it.
    pub fn push_event(&mut self, mut event: Event, unix_ms: i64) -> Event {
        event.sequence = self.next_sequence;
        event.unix_ms = unix_ms;
        self.next_sequence += 1;
        self.events.push_back(event.clone());
        while self.events.len() > EVENTS_KEPT {
            self.events.pop_front();
        }
        event
    }

    /// True when every trial has ended.
    pub fn all_trials_ended(&self) -> bool {
        self.trials.iter().all(|t| t.status.is_terminal())
    }
}
