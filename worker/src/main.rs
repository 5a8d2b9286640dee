//! `cohort-worker`: the data plane of Cohort.
//!
//! A worker trains 3D DenseNet survival models on its shard of a cohort and syncs gradients
//! with its group. Without a subcommand (`--coordinator URL --listen ADDR`) this binary is
//! that distributed worker; subcommands are single-process tools. Every subcommand lives in
//! [`cli`] (one file each), so adding one is a file and an enum variant there.
//!
//! Output rules (shared with the `cohort` binary): results go to stdout (a table for
//! people, one JSON document with `--json`), logs go to stderr through `tracing`
//! (`RUST_LOG=warn` to quiet them), and errors are printed once, with their causes, and exit
//! with status 1.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    cohort_worker::alloc::keep_freed_memory();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", one_line(&err));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line ("reading X: No such file"), skipping a cause whose
/// text its parent already shows (library errors often print their source themselves).
fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}
