//! Cohort's gRPC contract, package `cohort.v1`, generated from `proto/cohort/v1`
//! at build time (protox + tonic-prost-build, no system `protoc`), and the
//! security plumbing every channel shares ([`auth`]).
//!
//! - `JobService` (coordinator, for users): submit, inspect, watch, cancel
//!   jobs and fetch their reports.
//! - `WorkerService` (coordinator, for workers): register, the heartbeat
//!   stream that also carries assignments back, trial results.
//! - `CollectiveService` (every worker, for its ring neighbours): the chunks
//!   of all-reduce and all-gather.
//!
//! Generated code lives in [`v1`]; its clients are `v1::*_client::*Client`
//! and its server traits `v1::*_server::*`.

pub mod auth;

/// The generated messages, clients and servers of package `cohort.v1`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod v1 {
    tonic::include_proto!("cohort.v1");
}

/// The encoded `FileDescriptorSet` of every `cohort.v1` file, for gRPC
/// reflection and for tests that enumerate every method.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/cohort_descriptor.bin"));
