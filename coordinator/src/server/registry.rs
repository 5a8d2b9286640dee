//! The registry of workers: who is there, how to reach them, what they run.
//!
//! It is in memory only: after a coordinator restart the workers re-register
//! (a heartbeat from an unknown worker is refused with `FailedPrecondition`,
//! which tells the worker to call Register again).
//!
//! Invariants:
//! - A worker is *idle* (may be given a trial) only when the coordinator has
//!   no assignment for it, it has an open heartbeat stream to receive the
//!   command, and its newest heartbeat said it runs nothing. The last
//!   condition keeps a worker that is still winding down a cancelled trial
//!   from being put into a new group that shares the trial folder.
//! - `assignment` is the coordinator's view; `reported` is the worker's.
//!   When they disagree the worker is running something the coordinator has
//!   dissolved, and it is sent a Cancel.

use std::collections::BTreeMap;
use std::time::Instant;

use cohort_proto::v1;
use tokio::sync::mpsc;

/// What a worker runs: (job id, trial, group epoch).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AssignmentKey {
    pub job_id: String,
    pub trial: u32,
    pub group_epoch: u64,
}

#[derive(Debug)]
pub struct WorkerEntry {
    pub collective_address: String,
    pub device: String,
    pub cpu_threads: u32,
    pub last_heartbeat: Instant,
    /// The coordinator's assignment for this worker, with its rank.
    pub assignment: Option<(AssignmentKey, u32)>,
    /// What the newest heartbeat said the worker runs.
    pub reported: Option<AssignmentKey>,
    /// Whether a heartbeat arrived since (re-)registration.
    pub heartbeat_seen: bool,
    /// Commands go here (the heartbeat stream's response side).
    pub commands: Option<mpsc::UnboundedSender<Result<v1::WorkerCommand, tonic::Status>>>,
    /// Identifies the heartbeat stream that owns `commands`, so a stream that
    /// ends after a newer one opened does not drop the newer sender.
    pub stream_id: u64,
    pub collectives_done: u64,
    /// Since when this rank has been seen behind its group's collective count.
    pub behind_since: Option<Instant>,
    /// When the current assignment was sent, and whether a heartbeat has
    /// reported it since (an assignment nobody takes up is a lost command).
    pub assigned_at: Instant,
    pub taken_up: bool,
    /// The newest assignment sent, re-sent when a new heartbeat stream opens
    /// before the worker acknowledged it (the old stream may have lost it).
    pub last_assign: Option<v1::Assignment>,
    /// The stall already reported for this worker (collective number).
    pub stall_reported: Option<u64>,
    /// Assignments already sent a Cancel (not repeated every heartbeat).
    pub cancelled: Option<AssignmentKey>,
}

impl WorkerEntry {
    pub fn new(req: &v1::RegisterRequest, now: Instant) -> Self {
        WorkerEntry {
            collective_address: req.collective_address.clone(),
            device: req.device.clone(),
            cpu_threads: req.cpu_threads,
            last_heartbeat: now,
            assignment: None,
            reported: None,
            heartbeat_seen: false,
            commands: None,
            stream_id: 0,
            collectives_done: 0,
            behind_since: None,
            last_assign: None,
            assigned_at: now,
            taken_up: false,
            stall_reported: None,
            cancelled: None,
        }
    }

    pub fn is_idle(&self) -> bool {
        self.assignment.is_none()
            && self.commands.is_some()
            && self.heartbeat_seen
            && self.reported.is_none()
    }

    /// Sends a command; a closed stream is not an error here (loss detection
    /// handles a worker that went away).
    pub fn send(&self, command: v1::worker_command::Kind) {
        if let Some(tx) = &self.commands {
            let _ = tx.send(Ok(v1::WorkerCommand {
                kind: Some(command),
            }));
        }
    }
}

/// Workers by id (sorted, so "a stable order" is the id order).
pub type Registry = BTreeMap<String, WorkerEntry>;
