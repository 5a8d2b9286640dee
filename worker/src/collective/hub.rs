//! The receiving side: `CollectiveService`, served once per worker process,
//! routes every incoming stream to the ring and collective it belongs to.
//!
//! A left neighbour may start a collective before this rank does (it finished
//! the previous one first), or even before this worker has built its ring for
//! the trial (its assignment arrived first). So the hub keeps a mailbox per
//! (group, sequence number), created by whichever side comes first, and a
//! stream for a group that is not registered yet waits a while for it.
//! Mailboxes are bounded; a full one stops reading the HTTP/2 stream, whose
//! flow control then stops the sender: memory stays bounded without any
//! protocol of our own.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use cohort_proto::v1;
use tokio::sync::{Notify, mpsc};
use tonic::Status;
use tonic::body::Body;
use tonic::codegen::{BoxFuture, Service, http};
use tonic::transport::server::TcpConnectInfo;
use tonic::transport::{Endpoint, Server};

use super::frames::{self, ChunkReader};

/// Identifies one incarnation of one trial's group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupKey {
    pub job_id: String,
    pub trial: u32,
    pub group_epoch: u64,
}

impl std::fmt::Display for GroupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "job {} trial {} (group epoch {})",
            self.job_id, self.trial, self.group_epoch
        )
    }
}

/// What the hub hands a ring: chunks in stream order, then the stream's end
/// or its failure.
#[derive(Debug)]
pub(crate) enum Incoming {
    Chunk(v1::Chunk),
    End,
    Failed(Status),
}

/// Chunks a mailbox holds before the stream feeding it is paused.
const MAILBOX_CHUNKS: usize = 16;
/// How far ahead of this rank a left neighbour may be (in collectives).
const AHEAD: u64 = 4;
/// Largest message the hub decodes: a chunk plus its header.
pub(crate) const MAX_MESSAGE: usize = 64 << 20;

/// The per-process receiving side of every ring on this worker. Cloning is
/// cheap (shared state).
#[derive(Clone)]
pub struct CollectiveHub {
    inner: Arc<HubInner>,
}

struct HubInner {
    groups: Mutex<HashMap<GroupKey, Arc<Group>>>,
    registered: Notify,
    join_wait: Duration,
}

/// One registered ring's mailboxes.
pub(crate) struct Group {
    left: u32,
    state: Mutex<GroupState>,
}

#[derive(Default)]
struct GroupState {
    /// The next collective the local ring will start; older ones are over.
    next: u64,
    slots: HashMap<u64, Slot>,
}

struct Slot {
    tx: mpsc::Sender<Incoming>,
    rx: Option<mpsc::Receiver<Incoming>>,
    attached: bool,
}

impl Slot {
    fn new() -> Self {
        let (tx, rx) = mpsc::channel(MAILBOX_CHUNKS);
        Self {
            tx,
            rx: Some(rx),
            attached: false,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks leaves plain maps behind, still valid.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Group {
    /// The mailbox of collective `seq`, for the local ring that starts it.
    pub(crate) fn take_inbox(&self, seq: u64) -> mpsc::Receiver<Incoming> {
        let mut state = lock(&self.state);
        state.next = state.next.max(seq);
        let slot = state.slots.entry(seq).or_insert_with(Slot::new);
        match slot.rx.take() {
            Some(rx) => rx,
            // Taken twice means the ring reused a number; hand out a dead box
            // (the collective then times out with a clear message) rather than panic.
            None => mpsc::channel(1).1,
        }
    }

    /// Collective `seq` is over on this rank, whatever the outcome.
    pub(crate) fn finish(&self, seq: u64) {
        let mut state = lock(&self.state);
        state.slots.remove(&seq);
        state.next = state.next.max(seq + 1);
    }

    fn attach(&self, seq: u64) -> Result<mpsc::Sender<Incoming>, Status> {
        let mut state = lock(&self.state);
        if seq < state.next && !state.slots.contains_key(&seq) {
            return Err(Status::failed_precondition(format!(
                "collective #{seq} is already over on this rank"
            )));
        }
        if seq >= state.next + AHEAD {
            return Err(Status::failed_precondition(format!(
                "collective #{seq} is too far ahead of this rank (at #{})",
                state.next
            )));
        }
        let slot = state.slots.entry(seq).or_insert_with(Slot::new);
        if slot.attached {
            return Err(Status::already_exists(format!(
                "collective #{seq} already has a sender"
            )));
        }
        slot.attached = true;
        Ok(slot.tx.clone())
    }
}

impl Default for CollectiveHub {
    fn default() -> Self {
        Self::new(Duration::from_secs(30))
    }
}

impl CollectiveHub {
    /// `join_wait`: how long a stream for a group this worker has not built a
    /// ring for yet waits before it is refused.
    pub fn new(join_wait: Duration) -> Self {
        Self {
            inner: Arc::new(HubInner {
                groups: Mutex::new(HashMap::new()),
                registered: Notify::new(),
                join_wait,
            }),
        }
    }

    /// The gRPC service to add to this worker's server (behind the auth layer).
    pub fn service(&self) -> HubService {
        HubService(self.clone())
    }

    pub(crate) fn register(&self, key: GroupKey, left: u32) -> Option<Arc<Group>> {
        let mut groups = lock(&self.inner.groups);
        if groups.contains_key(&key) {
            return None;
        }
        let group = Arc::new(Group {
            left,
            state: Mutex::new(GroupState::default()),
        });
        groups.insert(key, group.clone());
        drop(groups);
        self.inner.registered.notify_waiters();
        Some(group)
    }

    pub(crate) fn unregister(&self, key: &GroupKey) {
        lock(&self.inner.groups).remove(key);
    }

    async fn find(&self, key: &GroupKey) -> Option<Arc<Group>> {
        let deadline = tokio::time::Instant::now() + self.inner.join_wait;
        loop {
            let notified = self.inner.registered.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(group) = lock(&self.inner.groups).get(key) {
                return Some(group.clone());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }
}

/// `CollectiveService` over a [`CollectiveHub`]: a tower service for tonic's
/// server, speaking gRPC through the hand-written framing of
/// [`frames`](super::frames) rather than tonic's codec.
#[derive(Clone)]
pub struct HubService(CollectiveHub);

impl tonic::server::NamedService for HubService {
    const NAME: &'static str = "cohort.v1.CollectiveService";
}

impl Service<http::Request<Body>> for HubService {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<http::Response<Body>, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let hub = self.0.clone();
        Box::pin(async move {
            if request.uri().path() != frames::SEND_PATH {
                let method = request.uri().path().to_string();
                return Ok(Status::unimplemented(format!("no method {method}")).into_http());
            }
            let peer = request
                .extensions()
                .get::<TcpConnectInfo>()
                .and_then(|i| i.remote_addr());
            let reader = ChunkReader::new(request.into_body(), MAX_MESSAGE);
            Ok(match hub.receive(peer, reader).await {
                Ok(()) => frames::ok_response(),
                Err(status) => status.into_http(),
            })
        })
    }
}

impl CollectiveHub {
    /// One `Send` stream: routes its chunks to the mailbox of the collective
    /// its first chunk names.
    async fn receive(
        &self,
        peer: Option<std::net::SocketAddr>,
        mut stream: ChunkReader,
    ) -> Result<(), Status> {
        let Some(first) = stream.message().await? else {
            return Ok(());
        };
        let key = GroupKey {
            job_id: first.job_id.clone(),
            trial: first.trial,
            group_epoch: first.group_epoch,
        };
        let Some(group) = self.find(&key).await else {
            return Err(Status::not_found(format!(
                "no ring for {key} on this worker"
            )));
        };
        if first.from_rank != group.left {
            return Err(Status::permission_denied(format!(
                "{key}: rank {} sent to a rank whose left neighbour is rank {}",
                first.from_rank, group.left
            )));
        }
        let seq = first.collective;
        let tx = group.attach(seq)?;
        tracing::trace!(?peer, %key, seq, "collective stream attached");
        let mut next = Some(first);
        loop {
            let item = match next.take() {
                Some(chunk) => Incoming::Chunk(chunk),
                None => match stream.message().await {
                    Ok(Some(chunk)) => Incoming::Chunk(chunk),
                    Ok(None) => Incoming::End,
                    Err(status) => Incoming::Failed(status),
                },
            };
            let last = !matches!(item, Incoming::Chunk(_));
            let end = matches!(item, Incoming::End);
            if tx.send(item).await.is_err() && !end {
                // The local collective is over (failed); the sender learns it
                // here. (A finished one drops its mailbox before the end
                // marker arrives; only a chunk nobody takes is news.)
                return Err(Status::aborted(format!(
                    "collective #{seq} of {key} was abandoned by this rank"
                )));
            }
            if last {
                return Ok(());
            }
        }
    }
}

/// HTTP/2 settings for a server that carries collectives: large flow-control
/// windows and frames (the defaults, 64 KiB windows and 16 KiB frames, cap a
/// stream at a few hundred MB/s on loopback), no Nagle delay.
pub fn tune_server(server: Server) -> Server {
    server
        .initial_stream_window_size(Some(16 << 20))
        .initial_connection_window_size(Some(32 << 20))
        .max_frame_size(Some((1 << 24) - 1))
        .http2_adaptive_window(Some(false))
        .tcp_nodelay(true)
}

/// The matching client settings.
pub fn tune_endpoint(endpoint: Endpoint) -> Endpoint {
    endpoint
        .initial_stream_window_size(Some(16 << 20))
        .initial_connection_window_size(Some(32 << 20))
        .http2_adaptive_window(false)
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
}
