//! Job events: a serde mirror of `cohort.v1.JobEvent`, and its conversion.
//!
//! prost messages do not implement serde, and job.json must hold the events
//! (a watcher that connects after a coordinator restart still gets history),
//! so events are kept in this form and converted when sent. `line()` is the
//! one-line text `cohort watch` prints.

use std::collections::BTreeMap;

use cohort_proto::v1;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub sequence: u64,
    pub unix_ms: i64,
    pub kind: EventKind,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    TrialStarted {
        trial: u32,
        worker_ids: Vec<String>,
    },
    EpochDone {
        trial: u32,
        epoch: u64,
        train_loss: f64,
        validation_c_index: f64,
        samples_per_second: f64,
        metrics: BTreeMap<String, f64>,
    },
    WorkerLost {
        worker_id: String,
        trial: u32,
        reason: String,
    },
    TrialResumed {
        trial: u32,
        from_step: u64,
        worker_ids: Vec<String>,
    },
    TrialFinished {
        trial: u32,
        /// `cohort.v1.TrialState` as its number.
        state: i32,
        validation_c_index: f64,
    },
    JobFinished {
        /// `cohort.v1.JobState` as its number.
        state: i32,
        report_url: String,
    },
    StalledCollective {
        trial: u32,
        rank: u32,
        collective: u64,
        message: String,
    },
}

impl Event {
    /// An event whose sequence and time the job fills in (`JobRecord::push_event`).
    pub fn new(kind: EventKind) -> Self {
        Event {
            sequence: 0,
            unix_ms: 0,
            kind,
        }
    }

    pub fn to_proto(&self) -> v1::JobEvent {
        use v1::job_event::Kind;
        let kind = match self.kind.clone() {
            EventKind::TrialStarted { trial, worker_ids } => {
                Kind::TrialStarted(v1::TrialStarted { trial, worker_ids })
            }
            EventKind::EpochDone {
                trial,
                epoch,
                train_loss,
                validation_c_index,
                samples_per_second,
                metrics,
            } => Kind::EpochDone(v1::EpochDone {
                trial,
                epoch,
                train_loss,
                validation_c_index,
                samples_per_second,
                metrics: metrics.into_iter().collect(),
            }),
            EventKind::WorkerLost {
                worker_id,
                trial,
                reason,
            } => Kind::WorkerLost(v1::WorkerLost {
                worker_id,
                trial,
                reason,
            }),
            EventKind::TrialResumed {
                trial,
                from_step,
                worker_ids,
            } => Kind::TrialResumed(v1::TrialResumed {
                trial,
                from_step,
                worker_ids,
            }),
            EventKind::TrialFinished {
                trial,
                state,
                validation_c_index,
            } => Kind::TrialFinished(v1::TrialFinished {
                trial,
                state,
                validation_c_index,
            }),
            EventKind::JobFinished { state, report_url } => {
                Kind::JobFinished(v1::JobFinished { state, report_url })
            }
            EventKind::StalledCollective {
                trial,
                rank,
                collective,
                message,
            } => Kind::StalledCollective(v1::StalledCollective {
                trial,
                rank,
                collective,
                message,
            }),
        };
        v1::JobEvent {
            sequence: self.sequence,
            unix_ms: self.unix_ms,
            kind: Some(kind),
        }
    }
}

/// The line `cohort watch` prints for an event.
pub fn line(event: &v1::JobEvent) -> String {
    use v1::job_event::Kind;
    let text = match &event.kind {
        Some(Kind::TrialStarted(e)) => {
            format!("trial {} started on {}", e.trial, e.worker_ids.join(", "))
        }
        Some(Kind::EpochDone(e)) => {
            let mut line = format!(
                "trial {} epoch {}: train loss {:.4}, validation C {:.4}, {:.1} samples/s",
                e.trial, e.epoch, e.train_loss, e.validation_c_index, e.samples_per_second
            );
            if let (Some(step), Some(share)) = (
                e.metrics.get("seconds_per_step"),
                e.metrics.get("sync_share"),
            ) {
                line += &format!(", {step:.3} s/step ({:.1}% in sync)", share * 100.0);
            }
            line
        }
        Some(Kind::WorkerLost(e)) => format!(
            "worker {} lost (trial {}): {}",
            e.worker_id, e.trial, e.reason
        ),
        Some(Kind::TrialResumed(e)) => format!(
            "trial {} resumed from step {} on {}",
            e.trial,
            e.from_step,
            e.worker_ids.join(", ")
        ),
        Some(Kind::TrialFinished(e)) => format!(
            "trial {} {}: validation C {:.4}",
            e.trial,
            trial_state_name(e.state),
            e.validation_c_index
        ),
        Some(Kind::JobFinished(e)) => {
            format!("job {}: report {}", job_state_name(e.state), e.report_url)
        }
        Some(Kind::StalledCollective(e)) => e.message.clone(),
        None => "unknown event".into(),
    };
    format!("[{}] {text}", event.sequence)
}

pub fn job_state_name(state: i32) -> &'static str {
    match v1::JobState::try_from(state) {
        Ok(v1::JobState::Queued) => "queued",
        Ok(v1::JobState::Running) => "running",
        Ok(v1::JobState::Succeeded) => "succeeded",
        Ok(v1::JobState::Failed) => "failed",
        Ok(v1::JobState::Cancelled) => "cancelled",
        _ => "unknown",
    }
}

pub fn trial_state_name(state: i32) -> &'static str {
    match v1::TrialState::try_from(state) {
        Ok(v1::TrialState::Pending) => "pending",
        Ok(v1::TrialState::Running) => "running",
        Ok(v1::TrialState::Succeeded) => "succeeded",
        Ok(v1::TrialState::Failed) => "failed",
        Ok(v1::TrialState::Pruned) => "pruned",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch_event(metrics: &[(&str, f64)]) -> v1::JobEvent {
        v1::JobEvent {
            kind: Some(v1::job_event::Kind::EpochDone(v1::EpochDone {
                trial: 3,
                epoch: 7,
                train_loss: 3.25,
                validation_c_index: 0.6789,
                samples_per_second: 12.0,
                metrics: metrics.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            })),
            ..Default::default()
        }
    }

    #[test]
    fn an_epoch_line_shows_the_sync_share_when_the_worker_measured_it() {
        assert_eq!(
            line(&epoch_event(&[])),
            "[0] trial 3 epoch 7: train loss 3.2500, validation C 0.6789, 12.0 samples/s"
        );
        let timed = epoch_event(&[("seconds_per_step", 0.8), ("sync_share", 0.02)]);
        assert_eq!(
            line(&timed),
            "[0] trial 3 epoch 7: train loss 3.2500, validation C 0.6789, 12.0 samples/s, \
             0.800 s/step (2.0% in sync)"
        );
    }
}
