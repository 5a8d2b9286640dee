//! The control plane of Cohort as a library: the coordinator's state machine,
//! scheduler and gRPC services ([`server`]). The `cohort` binary's
//! `coordinator` and `run` commands start it; the integration tests under
//! `tests/` drive it over real gRPC with fake workers.

pub mod server;
