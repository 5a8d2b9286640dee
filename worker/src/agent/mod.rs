//! The long-running worker: `cohort-worker --coordinator URL --listen ADDR`.
//!
//! A worker is a pair of servers and a client:
//!
//! - it **serves** `CollectiveService` on `--listen` for its ring neighbours
//!   ([`crate::collective::CollectiveHub`]), behind the bearer token;
//! - it is a **client** of the coordinator's `WorkerService`: it registers,
//!   keeps one heartbeat stream open (its progress goes up, assignments and
//!   cancellations come down), and reports every assignment's end;
//! - each assignment runs on its own thread ([`runner`]), because training is
//!   synchronous burn code; the async side only relays.
//!
//! # Invariants
//!
//! - **One assignment at a time.** A new assignment first stops the old one.
//! - **Every assignment ends with exactly one `ReportResult`**, tagged with
//!   its `group_epoch`, so the coordinator can tell a stale report from a
//!   current one. Reports are retried until the coordinator takes them.
//! - **Losing the coordinator stops the trial.** Without heartbeats the
//!   coordinator will re-form the group anyway; the trial stops at its next
//!   step (rank 0 checkpoints first), and the worker reconnects with backoff
//!   and re-registers under the same id.
//! - **SIGTERM / Ctrl-C is graceful**: stop the step, checkpoint, report the
//!   assignment as interrupted, deregister, exit 0.

mod runner;
mod session;

pub use runner::{AssignmentEnd, RunningAssignment, Status};
pub use session::{AgentConfig, AgentError, run_agent};
