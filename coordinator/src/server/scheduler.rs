//! Gang scheduling, heartbeats, loss and stall detection.
//!
//! - **Gang scheduling.** Jobs are served in submission order, their trials in
//!   index order. A pending trial gets `workers_per_trial` idle workers at
//!   once, ranks in worker-id order. When fewer are idle, *no* worker is
//!   busy (so nobody will become free) and no worker registered within the
//!   job's loss timeout (so workers that are still starting are waited for),
//!   it gets every idle worker, at least one: a job whose worker died still
//!   finishes, on a smaller group (batches do not depend on the group size, so
//!   the result is the same).
//! - **Loss.** A worker silent for longer than its lease (its job's
//!   `loss_timeout_ms` while it runs a trial) is lost: WorkerLost, the rest of
//!   its group is cancelled, the trial goes back to pending and is resumed
//!   from its newest checkpoint by the next group (TrialResumed).
//! - **Lost commands.** A rank whose heartbeats never report its assignment
//!   within twice the loss timeout fails the attempt (the group is re-formed).
//! - **Stalls.** Ranks of one group finish each collective together; a rank
//!   whose `collectives_done` stays behind the group's maximum for
//!   `stall_heartbeats` heartbeat intervals is named once per collective:
//!   "trial 3: rank 2 has not joined all-reduce #812 (last heartbeat 4 s ago)".

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cohort_proto::v1;
use tonic::Status;

use super::events::EventKind;
use super::registry::AssignmentKey;
use super::state::{Group, JobStatus, TrialStatus};
use super::transitions::State;

impl State {
    /// One heartbeat from a worker.
    pub fn heartbeat(&mut self, hb: &v1::HeartbeatRequest, now: Instant) -> Result<(), Status> {
        let Some(w) = self.workers.get_mut(&hb.worker_id) else {
            return Err(Status::failed_precondition(format!(
                "worker {} is not registered (the coordinator may have restarted): call Register again",
                hb.worker_id
            )));
        };
        w.last_heartbeat = now;
        w.heartbeat_seen = true;
        let reported = (!hb.job_id.is_empty()).then(|| AssignmentKey {
            job_id: hb.job_id.clone(),
            trial: hb.trial,
            group_epoch: hb.group_epoch,
        });
        if hb.collectives_done != w.collectives_done {
            w.collectives_done = hb.collectives_done;
            w.behind_since = None;
        }
        w.reported = reported.clone();
        let assigned = w.assignment.clone();
        if !hb.error.is_empty() {
            // Informational: the failure itself arrives as a ReportResult.
            tracing::debug!(worker = %hb.worker_id, job = %hb.job_id, trial = hb.trial, error = %hb.error, "worker reports an error");
        }
        match (&reported, &assigned) {
            (Some(r), Some((a, _))) if r == a => w.taken_up = true,
            (Some(r), _) => {
                // Running something the coordinator dissolved (or does not know
                // after a restart): stop it, once.
                if w.cancelled.as_ref() != Some(r) {
                    w.cancelled = Some(r.clone());
                    let key = r.clone();
                    self.outbox.push((
                        hb.worker_id.clone(),
                        v1::worker_command::Kind::Cancel(v1::Cancel {
                            job_id: key.job_id,
                            trial: key.trial,
                            reason: "this group was dissolved".into(),
                        }),
                    ));
                }
                return Ok(());
            }
            _ => {}
        }
        let Some((key, rank)) = assigned else {
            return Ok(());
        };
        if reported.is_none() {
            return Ok(());
        }
        self.progress(&key, rank, hb);
        Ok(())
    }

    /// Folds a current group member's heartbeat into its trial.
    fn progress(&mut self, key: &AssignmentKey, rank: u32, hb: &v1::HeartbeatRequest) {
        let Some(job) = self.jobs.get_mut(&key.job_id) else {
            return;
        };
        let Some(trial) = job.trials.get_mut(key.trial as usize) else {
            return;
        };
        trial.step = trial.step.max(hb.step);
        trial.epoch = trial.epoch.max(hb.epoch);
        if !hb.checkpoint_url.is_empty() && hb.checkpoint_step > trial.checkpoint_step {
            trial.checkpoint_url = hb.checkpoint_url.clone();
            trial.checkpoint_step = hb.checkpoint_step;
            self.dirty.insert(key.job_id.clone());
        }
        if rank != 0 {
            return;
        }
        let Some(e) = &hb.last_epoch else {
            return;
        };
        if trial
            .last_epoch_reported
            .is_some_and(|seen| seen >= e.epoch)
        {
            return;
        }
        trial.last_epoch_reported = Some(e.epoch);
        trial.best_validation_c_index = trial.best_validation_c_index.max(e.validation_c_index);
        let mut metrics: BTreeMap<String, f64> = [
            ("learning_rate".to_string(), e.learning_rate),
            ("steps".to_string(), e.steps as f64),
        ]
        .into_iter()
        .collect();
        if e.seconds_per_step > 0.0 {
            metrics.insert("seconds_per_step".into(), e.seconds_per_step);
            metrics.insert("sync_seconds_per_step".into(), e.sync_seconds_per_step);
            metrics.insert(
                "sync_share".into(),
                e.sync_seconds_per_step / e.seconds_per_step,
            );
        }
        let kind = EventKind::EpochDone {
            trial: key.trial,
            epoch: e.epoch,
            train_loss: e.train_loss,
            validation_c_index: e.validation_c_index,
            samples_per_second: hb.samples_per_second,
            metrics,
        };
        self.event(&key.job_id, kind);
    }

    /// Forms groups for pending trials while workers are free.
    pub fn schedule(&mut self) {
        let mut order: Vec<(i64, String)> = self
            .jobs
            .values()
            .filter(|j| !j.status.is_terminal())
            .map(|j| (j.submitted_unix_ms, j.job_id.clone()))
            .collect();
        order.sort();
        for (_, job_id) in order {
            let pending: Vec<u32> = self.jobs[&job_id]
                .trials
                .iter()
                .filter(|t| t.status == TrialStatus::Pending)
                .map(|t| t.index)
                .collect();
            for index in pending {
                let idle: Vec<String> = self
                    .workers
                    .iter()
                    .filter(|(_, w)| w.is_idle())
                    .map(|(id, _)| id.clone())
                    .collect();
                if idle.is_empty() {
                    return;
                }
                let busy = self.workers.values().any(|w| !w.is_idle());
                let job = &self.jobs[&job_id];
                let want = job.workers_per_trial.max(1) as usize;
                let window = Duration::from_millis(job.loss_timeout_ms);
                let settled = self.last_registration.is_none_or(|t| t.elapsed() >= window);
                let n = if idle.len() >= want {
                    want
                } else if !busy && settled {
                    idle.len()
                } else {
                    return;
                };
                self.form_group(&job_id, index, idle[..n].to_vec());
            }
        }
    }

    fn form_group(&mut self, job_id: &str, index: u32, workers: Vec<String>) {
        let job = self.jobs.get_mut(job_id).expect("scheduled jobs exist");
        let epoch = job.next_group_epoch;
        job.next_group_epoch += 1;
        if job.status == JobStatus::Queued {
            job.status = JobStatus::Running;
        }
        let (bucket_bytes, wire_format, timeout) =
            (job.bucket_bytes, job.wire_format, job.collective_timeout_ms);
        let trial = &mut job.trials[index as usize];
        trial.status = TrialStatus::Running;
        trial.group = Some(Group {
            epoch,
            workers: workers.clone(),
        });
        let resumed = trial.started;
        trial.started = true;
        let (from_step, spec_toml, folder) = (
            trial.checkpoint_step,
            trial.spec_toml.clone(),
            trial.folder_url.clone(),
        );
        let peers: Vec<String> = workers
            .iter()
            .map(|w| self.workers[w].collective_address.clone())
            .collect();
        let key = AssignmentKey {
            job_id: job_id.to_string(),
            trial: index,
            group_epoch: epoch,
        };
        let now = Instant::now();
        for (rank, id) in workers.iter().enumerate() {
            let w = self.workers.get_mut(id).expect("idle workers exist");
            w.assignment = Some((key.clone(), rank as u32));
            w.cancelled = None;
            w.stall_reported = None;
            w.collectives_done = 0;
            w.behind_since = None;
            w.last_heartbeat = now;
            w.assigned_at = now;
            w.taken_up = false;
            let assignment = v1::Assignment {
                job_id: job_id.to_string(),
                trial: index,
                trial_spec_toml: spec_toml.clone(),
                rank: rank as u32,
                world_size: workers.len() as u32,
                peers: peers.clone(),
                checkpoint_url: folder.clone(),
                group_epoch: epoch,
                bucket_bytes,
                wire_format,
                collective_timeout_ms: timeout,
            };
            w.last_assign = Some(assignment.clone());
            self.outbox
                .push((id.clone(), v1::worker_command::Kind::Assign(assignment)));
        }
        tracing::info!(job = %job_id, trial = index, group_epoch = epoch, workers = ?workers, "group formed");
        let kind = if resumed {
            EventKind::TrialResumed {
                trial: index,
                from_step,
                worker_ids: workers,
            }
        } else {
            EventKind::TrialStarted {
                trial: index,
                worker_ids: workers,
            }
        };
        self.event(job_id, kind);
    }

    /// The periodic check: lost workers, then stalled collectives.
    pub fn tick(&mut self, now: Instant) {
        let lost: Vec<(String, Duration)> = self
            .workers
            .iter()
            .filter_map(|(id, w)| {
                let lease = match &w.assignment {
                    Some((k, _)) => self
                        .jobs
                        .get(&k.job_id)
                        .map(|j| Duration::from_millis(j.loss_timeout_ms))
                        .unwrap_or(self.config.lease),
                    None => self.config.lease,
                };
                let silent = now.saturating_duration_since(w.last_heartbeat);
                (silent > lease).then(|| (id.clone(), silent))
            })
            .collect();
        for (id, silent) in lost {
            let reason = format!("no heartbeat for {:.1} s", silent.as_secs_f64());
            self.lose_worker(&id, &reason);
        }
        // A worker that heartbeats but never reports its assignment lost the
        // command (or refuses it): after twice the loss timeout the attempt
        // is a failure, so the trial is re-formed rather than waiting forever.
        let unstarted: Vec<(String, AssignmentKey, Duration)> = self
            .workers
            .iter()
            .filter_map(|(id, w)| {
                let (key, _) = w.assignment.as_ref().filter(|_| !w.taken_up)?;
                let job = self.jobs.get(&key.job_id)?;
                let window = Duration::from_millis(job.loss_timeout_ms) * 2;
                let waited = now.saturating_duration_since(w.assigned_at);
                (waited > window).then(|| (id.clone(), key.clone(), waited))
            })
            .collect();
        for (id, key, waited) in unstarted {
            let error = format!(
                "worker {id} did not take up its assignment within {:.1} s",
                waited.as_secs_f64()
            );
            tracing::warn!(job = %key.job_id, trial = key.trial, "{error}");
            self.break_group(&key, &error, true);
            if let Some(w) = self.workers.get_mut(&id)
                && w.assignment.as_ref().is_some_and(|(k, _)| *k == key)
            {
                w.assignment = None;
            }
        }
        self.check_stalls(now);
    }

    fn check_stalls(&mut self, now: Instant) {
        let threshold = self.config.heartbeat_interval * self.config.stall_heartbeats;
        let mut stalls = Vec::new();
        for job in self.jobs.values() {
            for trial in &job.trials {
                let Some(group) = &trial.group else { continue };
                if group.workers.len() < 2 {
                    continue;
                }
                // Only ranks that run this very group count: one that already
                // ended it (rank 1 done while rank 0 scores) reports idle counts.
                let key = AssignmentKey {
                    job_id: job.job_id.clone(),
                    trial: trial.index,
                    group_epoch: group.epoch,
                };
                let members: Vec<(usize, &String, u64)> = group
                    .workers
                    .iter()
                    .enumerate()
                    .filter_map(|(rank, id)| {
                        let w = self.workers.get(id)?;
                        let current = w.assignment.as_ref().is_some_and(|(k, _)| *k == key)
                            && w.reported.as_ref() == Some(&key);
                        current.then_some((rank, id, w.collectives_done))
                    })
                    .collect();
                let max = members.iter().map(|m| m.2).max().unwrap_or(0);
                for (rank, id, done) in members {
                    stalls.push((job.job_id.clone(), trial.index, rank, id.clone(), max, done));
                }
            }
        }
        for (job_id, trial, rank, id, max, done) in stalls {
            let w = self.workers.get_mut(&id).expect("collected above");
            if done >= max {
                w.behind_since = None;
                continue;
            }
            let since = *w.behind_since.get_or_insert(now);
            if now.saturating_duration_since(since) < threshold || w.stall_reported == Some(done) {
                continue;
            }
            w.stall_reported = Some(done);
            let ago = now
                .saturating_duration_since(w.last_heartbeat)
                .as_secs_f64()
                .round();
            let message = format!(
                "trial {trial}: rank {rank} has not joined all-reduce #{done} (last heartbeat {ago} s ago)"
            );
            tracing::warn!(job = %job_id, worker = %id, "{message}");
            self.event(
                &job_id,
                EventKind::StalledCollective {
                    trial,
                    rank: rank as u32,
                    collective: done,
                    message,
                },
            );
        }
    }
}
