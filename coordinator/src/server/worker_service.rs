//! `WorkerService`: the coordinator's face for workers.
//!
//! The heartbeat call is a bidirectional stream: the worker sends
//! HeartbeatRequest every `heartbeat_interval_ms`, the coordinator sends
//! WorkerCommand (Assign, Cancel) back on the same call. The first message of
//! a stream names the worker; its command sender is attached to the registry
//! entry (replacing an older stream's). A heartbeat from a worker the registry
//! does not know (lost, or the coordinator restarted) ends the stream with
//! `FailedPrecondition`, telling the worker to Register again; so does a
//! heartbeat on a stream superseded by a newer Register or stream of the same
//! worker id (a restarted process must not be confused with its old self).

use std::sync::Arc;
use std::time::Instant;

use cohort_proto::v1::{self, worker_service_server::WorkerService};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::Coordinator;
use super::registry::AssignmentKey;

pub struct WorkerApi(pub Arc<Coordinator>);

#[tonic::async_trait]
impl WorkerService for WorkerApi {
    async fn register(
        &self,
        request: Request<v1::RegisterRequest>,
    ) -> Result<Response<v1::RegisterResponse>, Status> {
        let req = request.into_inner();
        let (lease, interval) = self
            .0
            .apply(|st| {
                st.register(&req)?;
                Ok::<_, Status>((st.config.lease, st.config.heartbeat_interval))
            })
            .await?;
        Ok(Response::new(v1::RegisterResponse {
            lease_ms: lease.as_millis() as u64,
            heartbeat_interval_ms: interval.as_millis() as u64,
        }))
    }

    type HeartbeatStream = UnboundedReceiverStream<Result<v1::WorkerCommand, Status>>;

    async fn heartbeat(
        &self,
        request: Request<Streaming<v1::HeartbeatRequest>>,
    ) -> Result<Response<Self::HeartbeatStream>, Status> {
        let mut inbound = request.into_inner();
        let first = inbound
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("the heartbeat stream sent no message"))?;
        let worker_id = first.worker_id.clone();
        let (tx, rx) = mpsc::unbounded_channel();
        let attach_tx = tx.clone();
        let stream_id = self
            .0
            .apply(|st| {
                st.heartbeat(&first, Instant::now())?;
                let id = st.next_stream_id;
                st.next_stream_id += 1;
                let w = st
                    .workers
                    .get_mut(&first.worker_id)
                    .expect("heartbeat checked it");
                w.commands = Some(attach_tx);
                w.stream_id = id;
                // An assignment the worker has not acknowledged may have been
                // lost with its previous stream: send it again.
                if let (Some((key, _)), Some(assign)) = (&w.assignment, &w.last_assign) {
                    let acked = w.reported.as_ref() == Some(key);
                    if !acked && assign_key(assign) == *key {
                        let cmd = v1::worker_command::Kind::Assign(assign.clone());
                        st.outbox.push((first.worker_id.clone(), cmd));
                    }
                }
                Ok::<_, Status>(id)
            })
            .await?;
        let coordinator = self.0.clone();
        tokio::spawn(async move {
            loop {
                let hb = match inbound.message().await {
                    Ok(Some(hb)) => hb,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!(worker = %worker_id, error = %e, "heartbeat stream broke");
                        break;
                    }
                };
                if hb.worker_id != worker_id {
                    let _ = tx.send(Err(Status::invalid_argument(format!(
                        "worker_id: this stream belongs to {worker_id}, not {}",
                        hb.worker_id
                    ))));
                    break;
                }
                let result = coordinator
                    .apply(|st| {
                        // A newer registration or stream supersedes this one.
                        if st.workers.get(&worker_id).is_some_and(|w| w.stream_id != stream_id) {
                            return Err(Status::failed_precondition(format!(
                                "worker {worker_id}: this heartbeat stream was superseded by a newer registration or stream"
                            )));
                        }
                        st.heartbeat(&hb, Instant::now())
                    })
                    .await;
                if let Err(status) = result {
                    let _ = tx.send(Err(status));
                    break;
                }
            }
            coordinator
                .apply(|st| {
                    if let Some(w) = st.workers.get_mut(&worker_id)
                        && w.stream_id == stream_id
                    {
                        w.commands = None;
                    }
                })
                .await;
        });
        Ok(Response::new(UnboundedReceiverStream::new(rx)))
    }

    async fn report_result(
        &self,
        request: Request<v1::TrialResult>,
    ) -> Result<Response<v1::ReportResultResponse>, Status> {
        let result = request.into_inner();
        self.0.apply(|st| st.report_result(&result)).await?;
        Ok(Response::new(v1::ReportResultResponse {}))
    }

    async fn deregister(
        &self,
        request: Request<v1::DeregisterRequest>,
    ) -> Result<Response<v1::DeregisterResponse>, Status> {
        let req = request.into_inner();
        let reason = if req.reason.is_empty() {
            "deregistered".to_string()
        } else {
            format!("deregistered: {}", req.reason)
        };
        self.0
            .apply(|st| st.lose_worker(&req.worker_id, &reason))
            .await;
        Ok(Response::new(v1::DeregisterResponse {}))
    }
}

fn assign_key(a: &v1::Assignment) -> AssignmentKey {
    AssignmentKey {
        job_id: a.job_id.clone(),
        trial: a.trial,
        group_epoch: a.group_epoch,
    }
}
