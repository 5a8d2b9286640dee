//! The sending side and the schedule: a [`Ring`] is rank `r` of an `n`-rank
//! group; each collective is one client stream to rank `r + 1` and one
//! mailbox fed by rank `r - 1` (see the module docs of `collective`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cohort_proto::auth::{self, ClientTls, Token};
use cohort_proto::v1;
use cohort_wire::{self as wire, WireFormat};
use tokio::sync::{OnceCell, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tonic::codegen::{Service, http};
use tonic::transport::{Channel, Endpoint};

use super::frames::{self, ChunkBody};
use super::hub::{CollectiveHub, Group, GroupKey, Incoming, MAX_MESSAGE, tune_endpoint};
use super::layout::{Layout, chunks};
use super::{CollectiveError, Progress};

/// Values of one all-gather slice this rank accepts from the network.
const MAX_GATHER: u64 = 1 << 28;

/// Everything a rank needs to join its group's ring.
#[derive(Debug, Clone)]
pub struct RingConfig {
    pub job_id: String,
    pub trial: u32,
    /// The incarnation of the group; a re-formed group gets a new one.
    pub group_epoch: u64,
    pub rank: usize,
    /// Collective addresses (`host:port` or URLs) of every rank, in rank order.
    pub peers: Vec<String>,
    /// Values per bucket are `bucket_bytes / 4` (default 25 MiB).
    pub bucket_bytes: usize,
    /// Values per message are `chunk_bytes / 4` (default 1 MiB).
    pub chunk_bytes: usize,
    pub wire: WireFormat,
    /// How long a rank waits for its left neighbour before it names it.
    pub timeout: Duration,
    pub token: Token,
    pub tls: Option<ClientTls>,
}

impl RingConfig {
    /// A configuration with the defaults: 25 MiB buckets, 1 MiB chunks, f32
    /// wire, 30 s timeout, no TLS.
    pub fn new(rank: usize, peers: Vec<String>, token: Token) -> Self {
        Self {
            job_id: String::new(),
            trial: 0,
            group_epoch: 0,
            rank,
            peers,
            bucket_bytes: 25 << 20,
            chunk_bytes: 1 << 20,
            wire: WireFormat::F32,
            timeout: Duration::from_secs(30),
            token,
            tls: None,
        }
    }

    fn check(&self) -> Result<(), CollectiveError> {
        let bad = |m: String| Err(CollectiveError::Config(m));
        if self.peers.is_empty() {
            return bad("no peers".into());
        }
        if self.rank >= self.peers.len() {
            return bad(format!(
                "rank {} of a group of {}",
                self.rank,
                self.peers.len()
            ));
        }
        if self.peers.len() > u32::MAX as usize {
            return bad("too many peers".into());
        }
        if self.chunk_bytes < 4 || self.chunk_bytes > MAX_MESSAGE / 2 {
            return bad(format!(
                "chunk_bytes {} outside 4 ..= {}",
                self.chunk_bytes,
                MAX_MESSAGE / 2
            ));
        }
        if self.bucket_bytes < 4 {
            return bad(format!("bucket_bytes {} below 4", self.bucket_bytes));
        }
        if self.timeout.is_zero() {
            return bad("zero timeout".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    AllReduce,
    AllGather,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::AllReduce => "all-reduce",
            Kind::AllGather => "all-gather",
        }
    }
    fn proto(self) -> v1::CollectiveKind {
        match self {
            Kind::AllReduce => v1::CollectiveKind::AllReduceSum,
            Kind::AllGather => v1::CollectiveKind::AllGather,
        }
    }
}

fn wire_proto(format: WireFormat) -> v1::WireFormat {
    match format {
        WireFormat::F32 => v1::WireFormat::F32,
        WireFormat::Bf16 => v1::WireFormat::Bf16,
    }
}

/// Rank `r` of an `n`-rank ring. Collectives take `&mut self`: one at a time,
/// in the same order on every rank.
pub struct Ring {
    config: RingConfig,
    key: GroupKey,
    hub: CollectiveHub,
    group: Option<Arc<Group>>,
    endpoint: Option<Endpoint>,
    channel: Arc<OnceCell<Channel>>,
    /// `Bearer <token>`, sent with every stream.
    authorization: http::HeaderValue,
    next_seq: u64,
    broken: Option<String>,
    progress: Progress,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("group", &self.key)
            .field("rank", &self.config.rank)
            .field("world", &self.config.peers.len())
            .field("next_seq", &self.next_seq)
            .finish()
    }
}

impl Ring {
    /// Joins the ring described by `config`, receiving through `hub` (which
    /// this worker serves at `config.peers[config.rank]`). Connecting to the
    /// right neighbour happens at the first collective, which tolerates a
    /// neighbour that is not up yet for `timeout`.
    pub fn new(hub: &CollectiveHub, config: RingConfig) -> Result<Self, CollectiveError> {
        config.check()?;
        let n = config.peers.len();
        let key = GroupKey {
            job_id: config.job_id.clone(),
            trial: config.trial,
            group_epoch: config.group_epoch,
        };
        let (group, endpoint) = if n == 1 {
            (None, None)
        } else {
            let left = ((config.rank + n - 1) % n) as u32;
            let group = hub.register(key.clone(), left).ok_or_else(|| {
                CollectiveError::Config(format!("{key} already has a ring on this worker"))
            })?;
            let right = &config.peers[(config.rank + 1) % n];
            let endpoint = auth::endpoint(right, config.tls.as_ref())
                .map_err(|e| CollectiveError::Config(e.to_string()));
            let endpoint = match endpoint {
                Ok(e) => tune_endpoint(e),
                Err(e) => {
                    hub.unregister(&key);
                    return Err(e);
                }
            };
            (Some(group), Some(endpoint))
        };
        Ok(Self {
            authorization: config.token.bearer_header(),
            config,
            key,
            hub: hub.clone(),
            group,
            endpoint,
            channel: Arc::new(OnceCell::new()),
            next_seq: 0,
            broken: None,
            progress: Progress::default(),
        })
    }

    pub fn world(&self) -> usize {
        self.config.peers.len()
    }

    pub fn rank(&self) -> usize {
        self.config.rank
    }

    pub fn progress(&self) -> Progress {
        self.progress.clone()
    }

    /// Sum all-reduce in place; see the module docs for the schedule.
    pub async fn all_reduce_sum(&mut self, data: &mut [f32]) -> Result<(), CollectiveError> {
        if self.world() == 1 {
            self.advance();
            return Ok(());
        }
        let layout = Layout {
            total: data.len(),
            n: self.world(),
            bucket_elems: (self.config.bucket_bytes / 4).max(1),
            chunk_elems: (self.config.chunk_bytes / 4).max(1),
        };
        let mut session = self.begin(Kind::AllReduce)?;
        let result = session.all_reduce(&layout, data).await;
        self.end(session, result).await
    }

    /// Every rank's `local`, indexed by rank.
    pub async fn all_gather(&mut self, local: &[f32]) -> Result<Vec<Vec<f32>>, CollectiveError> {
        if self.world() == 1 {
            self.advance();
            return Ok(vec![local.to_vec()]);
        }
        let mut session = self.begin(Kind::AllGather)?;
        let mut out = vec![Vec::new(); self.world()];
        let result = session.all_gather(local, &mut out).await;
        self.end(session, result).await.map(|()| out)
    }

    fn advance(&mut self) {
        self.next_seq += 1;
        self.progress.set(self.next_seq);
    }

    fn begin(&mut self, kind: Kind) -> Result<Session, CollectiveError> {
        if let Some(reason) = &self.broken {
            return Err(CollectiveError::Broken(reason.clone()));
        }
        let (Some(group), Some(endpoint)) = (&self.group, &self.endpoint) else {
            unreachable!("a ring of more than one rank has a group and an endpoint")
        };
        let seq = self.next_seq;
        let n = self.world();
        let r = self.rank();
        let inbox = group.take_inbox(seq);
        let (out, rx) = mpsc::unbounded_channel();
        let start = Instant::now();
        let call = tokio::spawn(send_stream(
            endpoint.clone(),
            self.channel.clone(),
            self.authorization.clone(),
            start + self.config.timeout,
            rx,
        ));
        Ok(Session {
            kind,
            seq,
            rank: r,
            n,
            wire: self.config.wire,
            chunk_elems: (self.config.chunk_bytes / 4).max(1),
            timeout: self.config.timeout,
            key: self.key.clone(),
            right_addr: self.config.peers[(r + 1) % n].clone(),
            inbox,
            out: Some(out),
            call: Some(call),
            start,
            last: None,
            total: 0,
        })
    }

    async fn end(
        &mut self,
        mut session: Session,
        result: Result<(), CollectiveError>,
    ) -> Result<(), CollectiveError> {
        let result = match result {
            Ok(()) => session.close().await,
            Err(e) => Err(e),
        };
        if let Some(group) = &self.group {
            group.finish(session.seq);
        }
        match result {
            Ok(()) => {
                self.advance();
                Ok(())
            }
            Err(e) => {
                tracing::warn!(group = %self.key, rank = self.rank(), "{e}");
                session.abort(&e);
                self.broken = Some(e.to_string());
                self.next_seq += 1;
                Err(e)
            }
        }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        if self.group.is_some() {
            self.hub.unregister(&self.key);
        }
    }
}

/// Connects to the right neighbour (retrying until `deadline`: it may still
/// be starting) and streams the chunks of one collective to it, framed by
/// [`frames`] (no copy of the payloads).
async fn send_stream(
    endpoint: Endpoint,
    channel: Arc<OnceCell<Channel>>,
    authorization: http::HeaderValue,
    deadline: Instant,
    rx: mpsc::UnboundedReceiver<v1::Chunk>,
) -> Result<(), String> {
    let mut channel = channel
        .get_or_try_init(|| async {
            let mut wait = Duration::from_millis(20);
            loop {
                match endpoint.connect().await {
                    Ok(channel) => return Ok(channel),
                    Err(e) if Instant::now() + wait >= deadline => {
                        return Err(format!("cannot connect: {e}: {}", error_chain(&e)));
                    }
                    Err(_) => {
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_millis(500));
                    }
                }
            }
        })
        .await?
        .clone();
    let request = frames::request(ChunkBody::new(rx), authorization);
    let response = async {
        std::future::poll_fn(|cx| channel.poll_ready(cx)).await?;
        channel.call(request).await
    }
    .await
    .map_err(|e| format!("{e}: {}", error_chain(&e)))?;
    frames::response_status(response)
        .await
        .map_err(|status| format!("{:?}: {}", status.code(), status.message()))
}

/// The causes behind a transport error (tonic's own message is only "transport error").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut causes = Vec::new();
    let mut source = e.source();
    while let Some(s) = source {
        causes.push(s.to_string());
        source = s.source();
    }
    causes.join(": ")
}

/// One collective in flight on one rank.
struct Session {
    kind: Kind,
    seq: u64,
    rank: usize,
    n: usize,
    wire: WireFormat,
    chunk_elems: usize,
    timeout: Duration,
    key: GroupKey,
    right_addr: String,
    inbox: mpsc::Receiver<Incoming>,
    out: Option<mpsc::UnboundedSender<v1::Chunk>>,
    call: Option<JoinHandle<Result<(), String>>>,
    start: Instant,
    /// When the last chunk from the left arrived (`None`: nothing yet).
    last: Option<Instant>,
    /// Values in this collective (all-reduce), checked against every header.
    total: u64,
}

/// What the receiver expects of the next chunk.
struct Expect {
    bucket: usize,
    step: usize,
    segment: usize,
    segment_len: usize,
    offset: usize,
    len: usize,
}

impl Session {
    fn left(&self) -> usize {
        (self.rank + self.n - 1) % self.n
    }

    fn header(&self, bucket: usize, step: usize, segment: usize, segment_len: usize) -> v1::Chunk {
        v1::Chunk {
            job_id: self.key.job_id.clone(),
            trial: self.key.trial,
            group_epoch: self.key.group_epoch,
            collective: self.seq,
            kind: self.kind.proto() as i32,
            from_rank: self.rank as u32,
            format: wire_proto(self.format()) as i32,
            total: self.total,
            bucket: bucket as u32,
            step: step as u32,
            segment: segment as u32,
            segment_len: segment_len as u64,
            offset: 0,
            data: Bytes::new(),
            abort: String::new(),
        }
    }

    fn format(&self) -> WireFormat {
        match self.kind {
            Kind::AllReduce => self.wire,
            Kind::AllGather => WireFormat::F32,
        }
    }

    fn send(&self, chunk: v1::Chunk) {
        // A closed queue means the call ended; `recv` reports why.
        if let Some(out) = &self.out {
            let _ = out.send(chunk);
        }
    }

    fn send_error(&self, reason: String) -> CollectiveError {
        CollectiveError::Send {
            rank: (self.rank + 1) % self.n,
            addr: self.right_addr.clone(),
            kind: self.kind.name(),
            seq: self.seq,
            reason,
        }
    }

    fn protocol(&self, detail: String) -> CollectiveError {
        CollectiveError::Protocol {
            rank: self.left(),
            kind: self.kind.name(),
            seq: self.seq,
            detail,
        }
    }

    /// The next chunk from the left neighbour, or the reason there is none.
    async fn recv(&mut self, step: usize) -> Result<v1::Chunk, CollectiveError> {
        let (deadline, joined) = match self.last {
            None => (self.start + self.timeout, false),
            // A rank whose neighbour joined waits a little longer than one
            // whose neighbour never did, so the abort that names the rank
            // which never joined arrives before this rank gives up on its own.
            Some(last) => (last + self.timeout + self.timeout / 4, true),
        };
        let item = loop {
            let waited = match self.call.as_mut() {
                Some(call) => tokio::select! {
                    item = tokio::time::timeout_at(deadline, self.inbox.recv()) => Ok(item),
                    done = call => Err(done),
                },
                None => Ok(tokio::time::timeout_at(deadline, self.inbox.recv()).await),
            };
            match waited {
                Ok(item) => break item,
                // The stream to the right ended on its own: only an error
                // (a clean end needs our end of stream first) is news.
                Err(done) => {
                    self.call = None;
                    match done {
                        Ok(Ok(())) => {}
                        Ok(Err(reason)) => return Err(self.send_error(reason)),
                        Err(join) => return Err(self.send_error(join.to_string())),
                    }
                }
            }
        };
        let chunk = match item {
            Err(_elapsed) if !joined => {
                return Err(CollectiveError::NotJoined {
                    rank: self.left(),
                    kind: self.kind.name(),
                    seq: self.seq,
                });
            }
            Err(_elapsed) => {
                return Err(CollectiveError::Stalled {
                    rank: self.left(),
                    kind: self.kind.name(),
                    seq: self.seq,
                    step: step as u32,
                    waited_ms: self.last.map_or(0, |l| l.elapsed().as_millis() as u64),
                });
            }
            Ok(None) => return Err(self.receive_error("mailbox closed".into())),
            Ok(Some(Incoming::End)) => {
                return Err(self.receive_error(format!("stream ended before step {step}")));
            }
            Ok(Some(Incoming::Failed(status))) => {
                return Err(self.receive_error(format!(
                    "{:?}: {}",
                    status.code(),
                    status.message()
                )));
            }
            Ok(Some(Incoming::Chunk(chunk))) => chunk,
        };
        self.last = Some(Instant::now());
        if !chunk.abort.is_empty() {
            return Err(CollectiveError::Aborted(chunk.abort));
        }
        if chunk.collective != self.seq
            || chunk.kind != self.kind.proto() as i32
            || chunk.format != wire_proto(self.format()) as i32
        {
            let kind = v1::CollectiveKind::try_from(chunk.kind)
                .map(|k| k.as_str_name())
                .unwrap_or("an unknown kind");
            return Err(self.protocol(format!(
                "got collective #{} ({kind}, wire {}) while this rank is in #{} ({}, wire {:?})",
                chunk.collective,
                chunk.format,
                self.seq,
                self.kind.name(),
                self.format()
            )));
        }
        Ok(chunk)
    }

    fn receive_error(&self, reason: String) -> CollectiveError {
        CollectiveError::Receive {
            rank: self.left(),
            kind: self.kind.name(),
            seq: self.seq,
            reason,
        }
    }

    /// Checks a chunk's position against the schedule.
    fn check(&self, chunk: &v1::Chunk, e: &Expect) -> Result<(), CollectiveError> {
        let got = (
            chunk.total,
            chunk.bucket as usize,
            chunk.step as usize,
            chunk.segment as usize,
            chunk.segment_len,
            chunk.offset,
        );
        let want = (
            self.total,
            e.bucket,
            e.step,
            e.segment,
            e.segment_len as u64,
            e.offset as u64,
        );
        if got != want {
            return Err(self.protocol(format!(
                "(total, bucket, step, segment, segment_len, offset) = {got:?}, expected {want:?}"
            )));
        }
        let bytes = e.len * self.format().bytes_per_value();
        if chunk.data.len() != bytes {
            return Err(self.protocol(format!(
                "{} bytes of data, expected {bytes}",
                chunk.data.len()
            )));
        }
        Ok(())
    }

    async fn all_reduce(
        &mut self,
        layout: &Layout,
        data: &mut [f32],
    ) -> Result<(), CollectiveError> {
        let (r, n, format) = (self.rank, self.n, self.wire);
        self.total = data.len() as u64;
        let steps = layout.steps();
        for b in 0..layout.buckets() {
            let j = layout.send_segment(r, 0);
            let seg = layout.segment(b, j);
            for c in layout.chunks(seg.len()) {
                let mut chunk = self.header(b, 0, j, seg.len());
                chunk.offset = c.start as u64;
                chunk.data = wire::encode(&data[seg.start + c.start..seg.start + c.end], format);
                self.send(chunk);
            }
            for s in 0..steps {
                let j = layout.recv_segment(r, s);
                let seg = layout.segment(b, j);
                for c in layout.chunks(seg.len()) {
                    let mut chunk = self.recv(s).await?;
                    let expect = Expect {
                        bucket: b,
                        step: s,
                        segment: j,
                        segment_len: seg.len(),
                        offset: c.start,
                        len: c.len(),
                    };
                    self.check(&chunk, &expect)?;
                    let local = &mut data[seg.start + c.start..seg.start + c.end];
                    if s < n - 1 {
                        // Reduce-scatter; at its last step this rank owns the
                        // finished segment and keeps what it sends.
                        chunk.data = wire::reduce(&chunk.data, local, format, s == n - 2);
                    } else {
                        wire::decode_into(&chunk.data, local, format);
                    }
                    if s + 1 < steps {
                        chunk.step += 1;
                        chunk.from_rank = r as u32;
                        self.send(chunk);
                    }
                }
            }
        }
        Ok(())
    }

    async fn all_gather(
        &mut self,
        local: &[f32],
        out: &mut [Vec<f32>],
    ) -> Result<(), CollectiveError> {
        let (r, n) = (self.rank, self.n);
        for c in chunks(local.len(), self.chunk_elems) {
            let mut chunk = self.header(0, 0, r, local.len());
            chunk.offset = c.start as u64;
            chunk.data = wire::encode(&local[c], WireFormat::F32);
            self.send(chunk);
        }
        out[r] = local.to_vec();
        for s in 0..n - 1 {
            let origin = (r + n - 1 - s) % n;
            let mut slice: Vec<f32> = Vec::new();
            let mut len = None;
            loop {
                let mut chunk = self.recv(s).await?;
                let segment_len = *len.get_or_insert(chunk.segment_len);
                if segment_len > MAX_GATHER {
                    return Err(self.protocol(format!(
                        "an all-gather slice of {segment_len} values (limit {MAX_GATHER})"
                    )));
                }
                let segment_len = segment_len as usize;
                let offset = slice.len();
                let expect = Expect {
                    bucket: 0,
                    step: s,
                    segment: origin,
                    segment_len,
                    offset,
                    len: (segment_len - offset).min(self.chunk_elems),
                };
                self.check(&chunk, &expect)?;
                let at = slice.len();
                slice.resize(at + expect.len, 0.0);
                wire::decode_into(&chunk.data, &mut slice[at..], WireFormat::F32);
                let complete = slice.len() == segment_len;
                if s + 1 < n - 1 {
                    chunk.step += 1;
                    chunk.from_rank = r as u32;
                    self.send(chunk);
                }
                if complete {
                    break;
                }
            }
            out[origin] = slice;
        }
        Ok(())
    }

    /// Ends the stream to the right neighbour and waits until it took every chunk.
    async fn close(&mut self) -> Result<(), CollectiveError> {
        self.out = None;
        let Some(call) = self.call.take() else {
            return Ok(());
        };
        let wait = self.timeout + self.timeout / 4;
        match tokio::time::timeout(wait, call).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(reason))) => Err(self.send_error(reason)),
            Ok(Err(join)) => Err(self.send_error(join.to_string())),
            Err(_) => Err(self.send_error(format!(
                "rank {} took no more chunks for {} ms",
                (self.rank + 1) % self.n,
                wait.as_millis()
            ))),
        }
    }

    /// Tells the right neighbour why this rank gave up, so it does not wait
    /// for the timeout and reports the same cause. The stream task is left
    /// running to deliver it.
    fn abort(&mut self, error: &CollectiveError) {
        let mut chunk = self.header(0, 0, self.rank, 0);
        chunk.abort = error.to_string();
        self.send(chunk);
        self.out = None;
        if let Some(call) = self.call.take() {
            drop(call);
        }
    }
}
