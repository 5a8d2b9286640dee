//! `CollectiveService.Send` on the wire, framed by hand so a chunk's payload
//! is never copied in user space.
//!
//! # Why not tonic's generated client and server
//!
//! tonic's codec copies every message twice: the sender encodes it into the
//! codec's buffer, and the receiver appends every HTTP/2 DATA frame to its
//! decode buffer before decoding. For the collectives, which move every byte
//! of every gradient `2 (n-1) / n` times per step, those are two extra passes
//! over the data per hop (plus the allocations behind them), on the same
//! cores that compute the sums. Here a chunk travels as two DATA frames:
//!
//! 1. gRPC's 5-byte message prefix, the protobuf fields of the header and the
//!    key and length of field 14 (`data`), the payload's own framing;
//! 2. the payload: the very `bytes::Bytes` the sender's kernel produced
//!    (`cohort_wire::encode` or `reduce`), handed to HTTP/2 as is.
//!
//! The receiver keeps the DATA frames it got as a queue of `Bytes` and decodes
//! each message out of it with prost, whose `bytes` fields take a slice of the
//! queue's front frame when the payload lies in one frame (the usual case: the
//! sender wrote it as one, and the receiver's 16 MiB maximum frame size keeps
//! it whole; flow control may still split it, then the pieces are joined).
//!
//! The bytes on the wire are plain gRPC: `Send` is served under its usual path,
//! behind the same authentication layer, and tonic's generated client and
//! server for `cohort.v1.CollectiveService` talk to these unchanged (the tests
//! call this server with the generated client).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use cohort_proto::v1;
use http_body::Frame;
use http_body_util::BodyExt;
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};
use tokio::sync::mpsc;
use tonic::Status;
use tonic::body::Body;
use tonic::codegen::http;

/// The HTTP/2 path of `CollectiveService.Send`.
pub(crate) const SEND_PATH: &str = "/cohort.v1.CollectiveService/Send";
const GRPC_CONTENT_TYPE: &str = "application/grpc";
/// Protobuf field number of `Chunk.data`.
const DATA_FIELD: u32 = 14;

/// A chunk as the two DATA frames described in the module docs: the prefix
/// and header, and the payload (empty when the chunk carries none).
pub(crate) fn encode(mut chunk: v1::Chunk) -> (Bytes, Bytes) {
    let data = std::mem::take(&mut chunk.data);
    let header_len = chunk.encoded_len();
    let data_field = if data.is_empty() {
        0
    } else {
        // Tag 14 (wire type 2) fits one byte.
        1 + encoded_len_varint(data.len() as u64) + data.len()
    };
    let message_len = header_len + data_field;
    let mut head = BytesMut::with_capacity(5 + header_len + 11);
    head.put_u8(0); // not compressed
    head.put_u32(u32::try_from(message_len).expect("chunks are below 4 GiB"));
    chunk
        .encode(&mut head)
        .expect("the buffer has room for the header");
    if !data.is_empty() {
        encode_key(DATA_FIELD, WireType::LengthDelimited, &mut head);
        encode_varint(data.len() as u64, &mut head);
    }
    (head.freeze(), data)
}

/// The request body of one `Send` call: the chunks queued on `rx`, each as
/// its two frames, until the queue's sender is dropped.
pub(crate) struct ChunkBody {
    rx: mpsc::UnboundedReceiver<v1::Chunk>,
    payload: Option<Bytes>,
}

impl ChunkBody {
    pub(crate) fn new(rx: mpsc::UnboundedReceiver<v1::Chunk>) -> Self {
        Self { rx, payload: None }
    }
}

impl http_body::Body for ChunkBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(payload) = self.payload.take() {
            return Poll::Ready(Some(Ok(Frame::data(payload))));
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(chunk)) => {
                let (head, payload) = encode(chunk);
                if !payload.is_empty() {
                    self.payload = Some(payload);
                }
                Poll::Ready(Some(Ok(Frame::data(head))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The `Send` request for `body`, with the `authorization` header given.
pub(crate) fn request(body: ChunkBody, authorization: http::HeaderValue) -> http::Request<Body> {
    let mut request = http::Request::new(Body::new(body));
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = http::Uri::from_static(SEND_PATH);
    let headers = request.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(GRPC_CONTENT_TYPE),
    );
    headers.insert(http::header::TE, http::HeaderValue::from_static("trailers"));
    headers.insert(http::header::AUTHORIZATION, authorization);
    request
}

/// The outcome of a `Send` call from its response: the gRPC status of a
/// trailers-only response, else the one in the trailers after the body.
pub(crate) async fn response_status(response: http::Response<Body>) -> Result<(), Status> {
    if response.status() != http::StatusCode::OK {
        return Err(Status::unknown(format!(
            "HTTP status {} instead of a gRPC response",
            response.status()
        )));
    }
    if let Some(status) = Status::from_header_map(response.headers()) {
        return ok_or(status);
    }
    let mut body = response.into_body();
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        if let Some(trailers) = frame.trailers_ref()
            && let Some(status) = Status::from_header_map(trailers)
        {
            return ok_or(status);
        }
    }
    Err(Status::unknown("the response ended without a gRPC status"))
}

fn ok_or(status: Status) -> Result<(), Status> {
    if status.code() == tonic::Code::Ok {
        Ok(())
    } else {
        Err(status)
    }
}

/// The successful response to `Send`: one empty `SendResponse`, status OK.
pub(crate) fn ok_response() -> http::Response<Body> {
    let mut trailers = http::HeaderMap::new();
    trailers.insert(Status::GRPC_STATUS, http::HeaderValue::from_static("0"));
    let empty_message = Bytes::from_static(&[0, 0, 0, 0, 0]);
    let frames = [
        Ok::<_, Infallible>(Frame::data(empty_message)),
        Ok(Frame::trailers(trailers)),
    ];
    let body = http_body_util::StreamBody::new(tokio_stream::iter(frames));
    let mut response = http::Response::new(Body::new(body));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(GRPC_CONTENT_TYPE),
    );
    response
}

/// Decodes the chunks of a `Send` request body as they arrive.
pub(crate) struct ChunkReader {
    body: Body,
    frames: Frames,
    max_message: usize,
}

impl ChunkReader {
    pub(crate) fn new(body: Body, max_message: usize) -> Self {
        Self {
            body,
            frames: Frames::default(),
            max_message,
        }
    }

    /// The next chunk; `None` at the clean end of the stream.
    pub(crate) async fn message(&mut self) -> Result<Option<v1::Chunk>, Status> {
        if !self.fill(5).await? {
            return if self.frames.remaining() == 0 {
                Ok(None)
            } else {
                Err(Status::internal("the stream ended inside a message prefix"))
            };
        }
        let compressed = self.frames.get_u8();
        let len = self.frames.get_u32() as usize;
        if compressed != 0 {
            return Err(Status::unimplemented(
                "compressed messages are not accepted by the collective service",
            ));
        }
        if len > self.max_message {
            return Err(Status::resource_exhausted(format!(
                "a message of {len} bytes (limit {})",
                self.max_message
            )));
        }
        if !self.fill(len).await? {
            return Err(Status::internal("the stream ended inside a message"));
        }
        v1::Chunk::decode((&mut self.frames).take(len))
            .map(Some)
            .map_err(|e| Status::invalid_argument(format!("malformed chunk: {e}")))
    }

    /// Reads DATA frames until `n` bytes are buffered; `false` at the end of
    /// the stream first.
    async fn fill(&mut self, n: usize) -> Result<bool, Status> {
        while self.frames.remaining() < n {
            let Some(frame) = self.body.frame().await else {
                return Ok(false);
            };
            if let Ok(data) = frame?.into_data() {
                self.frames.push(data);
            }
        }
        Ok(true)
    }
}

/// Received DATA frames, in order, read as one buffer.
#[derive(Default)]
struct Frames {
    queue: VecDeque<Bytes>,
    remaining: usize,
}

impl Frames {
    fn push(&mut self, data: Bytes) {
        if !data.is_empty() {
            self.remaining += data.len();
            self.queue.push_back(data);
        }
    }
}

impl Buf for Frames {
    fn remaining(&self) -> usize {
        self.remaining
    }

    fn chunk(&self) -> &[u8] {
        self.queue.front().map_or(&[], |b| b.as_ref())
    }

    fn advance(&mut self, mut cnt: usize) {
        assert!(cnt <= self.remaining, "advance past the end of the frames");
        self.remaining -= cnt;
        while cnt > 0 {
            let front = self.queue.front_mut().expect("remaining counts the queue");
            if cnt < front.len() {
                front.advance(cnt);
                return;
            }
            cnt -= front.len();
            self.queue.pop_front();
        }
    }

    /// A slice of the front frame when it holds all `len` bytes (no copy);
    /// otherwise the pieces joined.
    fn copy_to_bytes(&mut self, len: usize) -> Bytes {
        assert!(len <= self.remaining, "copy past the end of the frames");
        if let Some(front) = self.queue.front_mut()
            && front.len() >= len
        {
            let out = front.split_to(len);
            self.remaining -= len;
            if front.is_empty() {
                self.queue.pop_front();
            }
            return out;
        }
        let mut joined = BytesMut::with_capacity(len);
        joined.put((&mut *self).take(len));
        joined.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(data: &[u8], abort: &str) -> v1::Chunk {
        v1::Chunk {
            job_id: "job-7".into(),
            trial: 3,
            group_epoch: 2,
            collective: 812,
            kind: v1::CollectiveKind::AllReduceSum as i32,
            from_rank: 1,
            format: v1::WireFormat::F32 as i32,
            total: 11_200_000,
            bucket: 4,
            step: 1,
            segment: 0,
            segment_len: 1 << 20,
            offset: 4096,
            data: Bytes::copy_from_slice(data),
            abort: abort.into(),
        }
    }

    /// What tonic's codec would send: the prefix and prost's own encoding.
    fn reference_frame(c: &v1::Chunk) -> Vec<u8> {
        let body = c.encode_to_vec();
        let mut out = vec![0];
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    fn frames_of(pieces: &[&[u8]]) -> Frames {
        let mut f = Frames::default();
        for p in pieces {
            f.push(Bytes::copy_from_slice(p));
        }
        f
    }

    #[test]
    fn encoded_chunks_decode_as_prost_messages_and_carry_the_same_fields() {
        for c in [
            chunk(&[1, 2, 3, 4, 5, 6, 7, 8], ""),
            chunk(&[], "rank 2 left"),
            chunk(&[9; 300], "x"),
        ] {
            let (head, payload) = encode(c.clone());
            assert_eq!(payload, c.data, "the payload travels as its own frame");
            let mut wire = head.to_vec();
            wire.extend_from_slice(&payload);
            // Same length prefix as the reference, and the same message once decoded
            // (the field order differs: `data` goes last).
            let reference = reference_frame(&c);
            assert_eq!(wire.len(), reference.len());
            assert_eq!(wire[..5], reference[..5]);
            assert_eq!(v1::Chunk::decode(&wire[5..]).unwrap(), c);
        }
    }

    #[test]
    fn a_payload_within_one_frame_is_sliced_not_copied() {
        let c = chunk(&[7; 64], "");
        let (head, payload) = encode(c.clone());
        let mut frames = Frames::default();
        frames.push(head);
        frames.push(payload.clone());
        frames.get_u8();
        let len = frames.get_u32() as usize;
        let decoded = v1::Chunk::decode((&mut frames).take(len)).unwrap();
        assert_eq!(decoded, c);
        assert_eq!(decoded.data.as_ptr(), payload.as_ptr(), "no copy");
        assert_eq!(frames.remaining(), 0);
    }

    #[test]
    fn frames_split_anywhere_read_as_one_buffer() {
        let bytes: Vec<u8> = (0..=255).collect();
        for cut in [1, 5, 100, 255] {
            let mut f = frames_of(&[
                &bytes[..cut],
                &bytes[cut..200.max(cut)],
                &bytes[200.max(cut)..],
            ]);
            assert_eq!(f.remaining(), 256);
            assert_eq!(f.copy_to_bytes(3).as_ref(), &bytes[..3]);
            f.advance(2);
            assert_eq!(f.chunk()[0], 5);
            let middle = f.copy_to_bytes(150);
            assert_eq!(middle.as_ref(), &bytes[5..155]);
            let mut rest = vec![0; f.remaining()];
            f.copy_to_slice(&mut rest);
            assert_eq!(rest, &bytes[155..]);
            assert_eq!((f.remaining(), f.chunk().len()), (0, 0));
        }
    }

    #[tokio::test]
    async fn a_reader_decodes_chunks_from_arbitrarily_cut_frames() {
        let chunks = [chunk(&[1; 40], ""), chunk(&[], "stop"), chunk(&[2; 10], "")];
        let mut wire = Vec::new();
        for c in &chunks {
            wire.extend_from_slice(&reference_frame(c));
        }
        for piece in [1, 7, 64, wire.len()] {
            let frames: Vec<Result<Frame<Bytes>, Infallible>> = wire
                .chunks(piece)
                .map(|p| Ok(Frame::data(Bytes::copy_from_slice(p))))
                .collect();
            let body = Body::new(http_body_util::StreamBody::new(tokio_stream::iter(frames)));
            let mut reader = ChunkReader::new(body, 1 << 20);
            for c in &chunks {
                assert_eq!(reader.message().await.unwrap().as_ref(), Some(c));
            }
            assert_eq!(reader.message().await.unwrap(), None);
        }
    }

    #[tokio::test]
    async fn truncated_compressed_and_oversized_messages_are_errors() {
        let one = reference_frame(&chunk(&[1; 40], ""));
        let cases: [(Vec<u8>, tonic::Code); 3] = [
            (one[..one.len() - 1].to_vec(), tonic::Code::Internal),
            ([&[1u8][..], &one[1..]].concat(), tonic::Code::Unimplemented),
            (one.clone(), tonic::Code::ResourceExhausted),
        ];
        for (i, (wire, code)) in cases.into_iter().enumerate() {
            let frames = [Ok::<_, Infallible>(Frame::data(Bytes::from(wire)))];
            let body = Body::new(http_body_util::StreamBody::new(tokio_stream::iter(frames)));
            let limit = if i == 2 { 16 } else { 1 << 20 };
            let err = ChunkReader::new(body, limit).message().await.unwrap_err();
            assert_eq!(err.code(), code, "case {i}: {err:?}");
        }
    }
}
