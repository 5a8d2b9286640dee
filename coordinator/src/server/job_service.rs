//! `JobService`: the coordinator's face for users (`cohort submit / watch /
//! report`). WatchJob replays the kept history after `after_sequence`, then
//! follows live events until the job's JobFinished has been sent.

use std::pin::Pin;
use std::sync::Arc;

use cohort_proto::v1::{self, job_service_server::JobService};
use futures::Stream;
use tonic::{Request, Response, Status};

use super::report::REPORT_FILE;
use super::{Coordinator, job_proto};

pub struct JobApi(pub Arc<Coordinator>);

type EventStream = Pin<Box<dyn Stream<Item = Result<v1::JobEvent, Status>> + Send>>;

#[tonic::async_trait]
impl JobService for JobApi {
    async fn submit_job(
        &self,
        request: Request<v1::SubmitJobRequest>,
    ) -> Result<Response<v1::SubmitJobResponse>, Status> {
        let req = request.into_inner();
        let (job_id, trials) = self.0.submit(&req.spec_toml, &req.overrides).await?;
        Ok(Response::new(v1::SubmitJobResponse { job_id, trials }))
    }

    async fn get_job(
        &self,
        request: Request<v1::GetJobRequest>,
    ) -> Result<Response<v1::Job>, Status> {
        let id = request.into_inner().job_id;
        let st = self.0.state.lock().await;
        let job = st
            .jobs
            .get(&id)
            .ok_or_else(|| Status::not_found(format!("no job {id}")))?;
        Ok(Response::new(job_proto(job)))
    }

    async fn list_jobs(
        &self,
        _: Request<v1::ListJobsRequest>,
    ) -> Result<Response<v1::ListJobsResponse>, Status> {
        let st = self.0.state.lock().await;
        let mut jobs: Vec<_> = st.jobs.values().collect();
        jobs.sort_by_key(|j| (j.submitted_unix_ms, j.job_id.clone()));
        Ok(Response::new(v1::ListJobsResponse {
            jobs: jobs.into_iter().map(job_proto).collect(),
        }))
    }

    async fn cancel_job(
        &self,
        request: Request<v1::CancelJobRequest>,
    ) -> Result<Response<v1::Job>, Status> {
        let id = request.into_inner().job_id;
        self.0.apply(|st| st.cancel_job(&id)).await?;
        let st = self.0.state.lock().await;
        Ok(Response::new(job_proto(&st.jobs[&id])))
    }

    type WatchJobStream = EventStream;

    async fn watch_job(
        &self,
        request: Request<v1::WatchJobRequest>,
    ) -> Result<Response<Self::WatchJobStream>, Status> {
        let req = request.into_inner();
        let coordinator = self.0.clone();
        // Fail fast for an unknown job.
        coordinator.events_after(&req.job_id, u64::MAX).await?;
        let mut changed = coordinator.changed.subscribe();
        let stream = async_stream(move |tx| async move {
            let mut after = req.after_sequence;
            loop {
                changed.borrow_and_update();
                let (events, ended) = match coordinator.events_after(&req.job_id, after).await {
                    Ok(x) => x,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                for e in events {
                    after = e.sequence;
                    if tx.send(Ok(e.to_proto())).await.is_err() {
                        return;
                    }
                }
                if ended {
                    return;
                }
                if changed.changed().await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(stream))
    }

    async fn get_report(
        &self,
        request: Request<v1::GetReportRequest>,
    ) -> Result<Response<v1::Report>, Status> {
        let id = request.into_inner().job_id;
        {
            let st = self.0.state.lock().await;
            if !st.jobs.contains_key(&id) {
                return Err(Status::not_found(format!("no job {id}")));
            }
        }
        let rel = format!("jobs/{id}/{REPORT_FILE}");
        let bytes = match self.0.store.get(&rel).await {
            Ok(b) => b,
            Err(cohort_common::store::StoreError::NotFound { .. }) => {
                return Err(Status::failed_precondition(format!(
                    "job {id} has no report yet (it has not finished)"
                )));
            }
            Err(e) => return Err(Status::unavailable(e.to_string())),
        };
        let report_json = String::from_utf8(bytes.to_vec())
            .map_err(|_| Status::data_loss(format!("{rel} is not UTF-8")))?;
        Ok(Response::new(v1::Report {
            job_id: id,
            report_json,
            report_url: self.0.store.url_of(&rel),
        }))
    }
}

/// A stream fed by a spawned task through a small channel (no async-stream
/// macro dependency needed).
fn async_stream<F, Fut>(body: F) -> EventStream
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<v1::JobEvent, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(body(tx));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}
