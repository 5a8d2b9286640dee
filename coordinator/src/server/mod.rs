//! The coordinator: the only stateful service of Cohort.
//!
//! It holds the registry of workers and the jobs, gang-schedules trials onto
//! groups of workers, notices lost workers and stalled collectives, and
//! persists every job to the artifact store after every change, so a restarted
//! coordinator resumes every unfinished job and never re-runs a finished trial.
//!
//! Module map:
//! - `state` — what job.json holds; `events` — job events and their text;
//! - `registry` — workers (in memory only);
//! - `transitions` — trial and job transitions; `scheduler` — gang scheduling,
//!   heartbeats, loss and stall detection;
//! - `trials` — expanding a job into trials; `persist` — job.json;
//!   `report` — report.json and the ensemble's scores.csv;
//! - `job_service`, `worker_service` — the gRPC faces; `serve` — the server.
//!
//! Concurrency: one `tokio::sync::Mutex<State>`. Every operation runs
//! [`Coordinator::apply`]: lock, mutate synchronously, schedule, then commit
//! (persist dirty jobs, write finished jobs' reports, send queued commands,
//! wake watchers) before unlocking. Holding the lock across the store writes
//! keeps the writes of one job in order; a control plane's rate of changes is
//! small enough for that.

pub mod events;
pub mod job_service;
pub mod persist;
pub mod registry;
pub mod report;
pub mod scheduler;
pub mod serve;
pub mod state;
pub mod transitions;
pub mod trials;
pub mod worker_service;

use std::collections::VecDeque;
use std::sync::Arc;

use cohort_common::spec::JobSpec;
use cohort_common::store::Store;
use cohort_proto::v1;
use tokio::sync::{Mutex, watch};
use tonic::Status;

use self::events::{Event, EventKind};
use self::state::{JobRecord, JobStatus, TrialRecord, TrialStatus};
use self::transitions::now_ms;
pub use self::transitions::{Config, State};

pub struct Coordinator {
    pub(crate) state: Mutex<State>,
    pub(crate) store: Store,
    /// Bumped after every commit that changed a job; watchers wait on it.
    pub(crate) changed: watch::Sender<u64>,
}

impl Coordinator {
    /// Opens the artifact store and reloads every job in it.
    pub async fn open(artifacts: &str, config: Config) -> Result<Arc<Self>, persist::PersistError> {
        let store = Store::open(artifacts)?;
        let mut state = State::new(config);
        for job in persist::load_all(&store).await? {
            if !job.status.is_terminal() {
                tracing::info!(job = %job.job_id, "resuming job");
                if job.all_trials_ended() {
                    state.finishing.insert(job.job_id.clone());
                }
                state.dirty.insert(job.job_id.clone());
            }
            state.jobs.insert(job.job_id.clone(), job);
        }
        let coordinator = Arc::new(Coordinator {
            state: Mutex::new(state),
            store,
            changed: watch::channel(0).0,
        });
        coordinator.apply(|_| ()).await;
        Ok(coordinator)
    }

    pub fn artifacts_url(&self) -> &str {
        self.store.url()
    }

    /// Runs `f` on the state, schedules, and commits (see the module docs).
    pub async fn apply<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut st = self.state.lock().await;
        let out = f(&mut st);
        st.schedule();
        self.commit(&mut st).await;
        out
    }

    async fn commit(&self, st: &mut State) {
        for job_id in std::mem::take(&mut st.finishing) {
            self.finish_job(st, &job_id).await;
        }
        if st.dirty.is_empty() && st.outbox.is_empty() {
            return;
        }
        let mut failed = false;
        for job_id in std::mem::take(&mut st.dirty) {
            let Some(job) = st.jobs.get(&job_id) else {
                continue;
            };
            if let Err(e) = persist::save(&self.store, job).await {
                tracing::error!(job = %job_id, error = %e, "persisting the job failed; retrying at the next change");
                st.dirty.insert(job_id);
                failed = true;
            }
        }
        if failed {
            // Commands wait until what caused them is durable.
            return;
        }
        for (worker_id, command) in std::mem::take(&mut st.outbox) {
            if let Some(w) = st.workers.get(&worker_id) {
                w.send(command);
            }
        }
        self.changed.send_modify(|v| *v += 1);
    }

    /// Writes the report of a job whose trials all ended, then JobFinished.
    async fn finish_job(&self, st: &mut State, job_id: &str) {
        let Some(job) = st.jobs.get_mut(job_id) else {
            return;
        };
        if !job.status.is_terminal() {
            let failed = job.trials.iter().any(|t| t.status == TrialStatus::Failed);
            job.status = if failed {
                JobStatus::Failed
            } else {
                JobStatus::Succeeded
            };
        }
        job.finished_unix_ms = now_ms();
        let folder = format!("jobs/{job_id}");
        let state = job_state(job.status);
        let (report, scores) = report::build(
            job,
            events::job_state_name(state as i32),
            &self.store.url_of(&folder),
        );
        let mut result = self
            .store
            .put(&format!("{folder}/{}", report::REPORT_FILE), report)
            .await;
        if let (Ok(()), Some(csv)) = (&result, scores) {
            result = self
                .store
                .put(&format!("{folder}/{}", report::SCORES_FILE), csv)
                .await;
        }
        if let Err(e) = result {
            tracing::error!(job = %job_id, error = %e, "writing the report failed; retrying");
            st.finishing.insert(job_id.to_string());
            return;
        }
        let report_url = self
            .store
            .url_of(&format!("{folder}/{}", report::REPORT_FILE));
        tracing::info!(job = %job_id, state = events::job_state_name(state as i32), "job finished");
        st.event(
            job_id,
            EventKind::JobFinished {
                state: state as i32,
                report_url,
            },
        );
    }

    /// SubmitJob: parse, validate, expand, persist.
    pub async fn submit(
        &self,
        spec_toml: &str,
        overrides: &[String],
    ) -> Result<(String, u32), Status> {
        let mut spec = JobSpec::parse(spec_toml, "submitted job", overrides)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        // Artifacts go where this coordinator keeps them, whatever the file said.
        spec.artifacts.url = self.store.url().to_string();
        let plans = trials::expand(&spec).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let resolved = toml::to_string(&spec).map_err(|e| Status::internal(e.to_string()))?;
        let n = plans.len() as u32;
        let store = self.store.clone();
        let job_id = self
            .apply(move |st| {
                let job_id = new_job_id(&spec.name, |id| st.jobs.contains_key(id));
                let d = &spec.distributed;
                let trials = plans
                    .into_iter()
                    .map(|p| TrialRecord {
                        index: p.index,
                        point: p.point,
                        ensemble_member: p.ensemble_member,
                        settings: p.settings,
                        spec_toml: p.spec_toml,
                        folder_url: store.url_of(&format!("jobs/{job_id}/trial-{:04}", p.index)),
                        status: TrialStatus::Pending,
                        attempts: 0,
                        started: false,
                        group: None,
                        epoch: 0,
                        step: 0,
                        best_validation_c_index: 0.0,
                        checkpoint_url: String::new(),
                        checkpoint_step: 0,
                        last_epoch_reported: None,
                        error: String::new(),
                        result: None,
                    })
                    .collect();
                let job = JobRecord {
                    job_id: job_id.clone(),
                    name: spec.name.clone(),
                    spec_toml: resolved,
                    status: JobStatus::Queued,
                    trials,
                    artifacts_url: store.url_of(&format!("jobs/{job_id}")),
                    submitted_unix_ms: now_ms(),
                    finished_unix_ms: 0,
                    error: String::new(),
                    next_group_epoch: 1,
                    next_sequence: 1,
                    events: VecDeque::new(),
                    workers_per_trial: d.workers_per_trial as u32,
                    loss_timeout_ms: d.loss_timeout_ms,
                    bucket_bytes: (d.bucket_mb * 1024.0 * 1024.0).round() as u64,
                    wire_format: wire_format(&d.wire_format) as i32,
                    collective_timeout_ms: d.collective_timeout_ms,
                };
                tracing::info!(job = %job_id, trials = job.trials.len(), "job submitted");
                st.jobs.insert(job_id.clone(), job);
                st.dirty.insert(job_id.clone());
                job_id
            })
            .await;
        Ok((job_id, n))
    }

    /// Events of a job after `after`, and whether the job has ended.
    pub async fn events_after(
        &self,
        job_id: &str,
        after: u64,
    ) -> Result<(Vec<Event>, bool), Status> {
        let st = self.state.lock().await;
        let job = st
            .jobs
            .get(job_id)
            .ok_or_else(|| Status::not_found(format!("no job {job_id}")))?;
        let events = job
            .events
            .iter()
            .filter(|e| e.sequence > after)
            .cloned()
            .collect();
        let ended = job.status.is_terminal()
            && job
                .events
                .back()
                .is_some_and(|e| matches!(e.kind, EventKind::JobFinished { .. }));
        Ok((events, ended))
    }
}

pub fn wire_format(name: &str) -> v1::WireFormat {
    match name {
        "bf16" => v1::WireFormat::Bf16,
        _ => v1::WireFormat::F32,
    }
}

pub fn job_state(s: JobStatus) -> v1::JobState {
    match s {
        JobStatus::Queued => v1::JobState::Queued,
        JobStatus::Running => v1::JobState::Running,
        JobStatus::Succeeded => v1::JobState::Succeeded,
        JobStatus::Failed => v1::JobState::Failed,
        JobStatus::Cancelled => v1::JobState::Cancelled,
    }
}

pub fn trial_state(s: TrialStatus) -> v1::TrialState {
    match s {
        TrialStatus::Pending => v1::TrialState::Pending,
        TrialStatus::Running => v1::TrialState::Running,
        TrialStatus::Succeeded => v1::TrialState::Succeeded,
        TrialStatus::Failed => v1::TrialState::Failed,
    }
}

/// The proto view of a job.
pub fn job_proto(job: &JobRecord) -> v1::Job {
    v1::Job {
        job_id: job.job_id.clone(),
        name: job.name.clone(),
        state: job_state(job.status) as i32,
        trials: job
            .trials
            .iter()
            .map(|t| v1::Trial {
                index: t.index,
                settings: t.settings.clone().into_iter().collect(),
                ensemble_member: t.ensemble_member,
                state: trial_state(t.status) as i32,
                epoch: t.epoch,
                step: t.step,
                best_validation_c_index: t.best_validation_c_index,
                worker_ids: t
                    .group
                    .as_ref()
                    .map(|g| g.workers.clone())
                    .unwrap_or_default(),
                checkpoint_url: t.checkpoint_url.clone(),
                error: t.error.clone(),
            })
            .collect(),
        artifacts_url: job.artifacts_url.clone(),
        submitted_unix_ms: job.submitted_unix_ms,
        finished_unix_ms: job.finished_unix_ms,
        error: job.error.clone(),
    }
}

/// `<name>-<yyyymmdd-hhmmss>-<4 hex>`, restricted to `[a-z0-9-]` so it is a
/// safe path segment and a valid Kubernetes label.
fn new_job_id(name: &str, taken: impl Fn(&str) -> bool) -> String {
    let slug: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let slug = slug.trim_matches('-');
    let slug = if slug.is_empty() {
        "job"
    } else {
        &slug[..slug.len().min(40)]
    };
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut rng = cohort_common::rng::Rng::seed_from_u64(nanos);
    loop {
        let id = format!(
            "{}-{stamp}-{:04x}",
            slug.trim_end_matches('-'),
            rng.below(0x10000)
        );
        if !taken(&id) {
            return id;
        }
    }
}
