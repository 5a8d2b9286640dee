//! `cohort`: the command line of Cohort.
//!
//! Each subcommand lives in its own module under [`cmd`]; this file only wires
//! them into one `clap` parser and sets up logging. Human output goes to
//! stdout, logs to stderr, so `--json` output can be piped.

mod cmd;

use clap::{Parser, Subcommand};

/// Cohort: ensembles of 3D DenseNet survival models on MRI cohorts, and the
/// survival analysis of the study.
#[derive(Parser, Debug)]
#[command(name = "cohort", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write a synthetic NPC cohort with a known ground truth.
    Synth(cmd::synth::SynthArgs),
    /// Check a cohort's manifest and volumes and summarise its split.
    Validate(cmd::validate::ValidateArgs),
    /// Inspect NIfTI volumes.
    #[command(subcommand)]
    Volume(cmd::volume::VolumeCommand),
    /// Survival statistics on a CSV table (Cox, Kaplan-Meier, log-rank, ...).
    Stats(cmd::stats::StatsArgs),
    /// Run the coordinator (the control plane) until interrupted.
    Coordinator(cmd::coordinator::CoordinatorArgs),
    /// Submit a job to a coordinator; prints the job id.
    Submit(cmd::submit::SubmitArgs),
    /// Print a job's events until it ends; exits 0 only if it succeeded.
    Watch(cmd::watch::WatchArgs),
    /// Print a finished job's report.json.
    Report(cmd::report::ReportArgs),
    /// Run a job here: the coordinator in-process and N local workers.
    Run(cmd::run::RunArgs),
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Synth(args) => cmd::synth::run(args),
        Command::Validate(args) => cmd::validate::run(args),
        Command::Volume(command) => cmd::volume::run(command),
        Command::Stats(args) => cmd::stats::run(args),
        Command::Coordinator(args) => cmd::coordinator::run(args),
        Command::Submit(args) => cmd::submit::run(args),
        Command::Watch(args) => cmd::watch::run(args),
        Command::Report(args) => cmd::report::run(args),
        Command::Run(args) => cmd::run::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
