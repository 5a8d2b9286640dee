//! `cohort stats`: the survival statistics of `cohort_common::survival` on a
//! CSV table, for people (R-like tables) and for tools (`--json`).
//!
//! Every subcommand reads `--data FILE.csv` with `--time COL --event COL`
//! through [`cohort_common::survival::table::Table`], so a bad file, line or
//! column is named the same way everywhere. Categorical covariates are
//! listed explicitly (`--categorical a,b`) and dummy-coded against their
//! first level in sorted order. The JSON shapes are fixed by the issue and
//! read by other tools; keys are only ever added.

pub mod auc;
mod concordance;
mod cox;
pub mod cutoff;
mod km;
mod logrank;
mod nomogram;
mod subgroup;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct StatsArgs {
    #[command(subcommand)]
    pub command: StatsCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum StatsCommand {
    /// Cox proportional hazards regression (R coxph): coefficients, HR with
    /// 95% CI, Wald / likelihood-ratio / score tests, concordance.
    Cox(cox::CoxArgs),
    /// Kaplan-Meier survival table with Greenwood SE, 95% CI and the median
    /// (R survfit), overall or by group.
    Km(km::KmArgs),
    /// Log-rank test of k groups, optionally stratified (R survdiff).
    Logrank(logrank::LogrankArgs),
    /// Harrell's C of a risk score with its SE and a bootstrap CI (R concordance).
    Concordance(concordance::ConcordanceArgs),
    /// Optimal cut-off of a risk score (maximally selected log-rank statistic).
    Cutoff(cutoff::CutoffArgs), // [cutoff]
    /// Hazard ratio of a binary factor within each level of another, and the
    /// interaction test.
    Subgroup(subgroup::SubgroupArgs),
    /// Time-dependent AUC (cumulative/dynamic, IPCW) at given horizons.
    Auc(auc::AucArgs), // [auc]
    /// Nomogram of a multivariable Cox model: points per factor, total points,
    /// predicted t-year survival; with calibration by risk group.
    Nomogram(nomogram::NomogramArgs),
}

pub fn run(args: StatsArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        StatsCommand::Cox(a) => cox::run(a),
        StatsCommand::Km(a) => km::run(a),
        StatsCommand::Logrank(a) => logrank::run(a),
        StatsCommand::Concordance(a) => concordance::run(a),
        StatsCommand::Cutoff(a) => cutoff::run(a), // [cutoff]
        StatsCommand::Subgroup(a) => subgroup::run(a),
        StatsCommand::Auc(a) => auc::run(a), // [auc]
        StatsCommand::Nomogram(a) => nomogram::run(a),
    }
}

/// The input every subcommand shares.
#[derive(clap::Args, Debug, Clone)]
pub struct Input {
    /// CSV table with a header row.
    #[arg(long)]
    pub data: PathBuf,
    /// Follow-up time column.
    #[arg(long)]
    pub time: String,
    /// Event column (1 = event, 0 = censored).
    #[arg(long)]
    pub event: String,
    /// Machine-readable JSON on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Prints `value` as pretty JSON (NaN and infinities become null).
pub(crate) fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<ExitCode> {
    let mut out = serde_json::to_string_pretty(value)?;
    out.push('\n');
    print_text(&out)
}

pub(crate) fn print_text(text: &str) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Writes a figure through a temporary file and a rename.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context;
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("out")
    ));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// R-like number formatting: `digits` significant digits, no trailing zeros.
pub(crate) fn sig(v: f64, digits: usize) -> String {
    if v.is_nan() {
        return "NA".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Inf".into() } else { "-Inf".into() };
    }
    if v == 0.0 {
        return "0".into();
    }
    let mag = v.abs().log10().floor() as i32;
    if !(-4..15).contains(&mag) {
        return format!("{:.*e}", digits.saturating_sub(1), v);
    }
    let decimals = (digits as i32 - 1 - mag).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A p-value as R's `format.pval`: `<2e-16` below the double epsilon.
pub(crate) fn pval(p: f64) -> String {
    if p.is_nan() {
        "NA".into()
    } else if p < 2e-16 {
        "<2e-16".into()
    } else {
        sig(p, 3)
    }
}

/// Right-aligned text table with a header row.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let ncol = header.len();
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (j, c) in r.iter().enumerate().take(ncol) {
            width[j] = width[j].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut s = String::new();
        for (j, c) in cells.iter().enumerate() {
            let pad = width[j] - c.chars().count();
            if j == 0 {
                s.push_str(c);
                s.push_str(&" ".repeat(pad));
            } else {
                s.push_str("  ");
                s.push_str(&" ".repeat(pad));
                s.push_str(c);
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: StatsCommand,
    }

    fn rossi() -> String {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/reference/survival/rossi.csv"
        )
        .into()
    }

    fn run_args(args: &[&str]) -> anyhow::Result<ExitCode> {
        let mut argv = vec!["stats"];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv)?;
        run(StatsArgs {
            command: cli.command,
        })
    }

    #[test]
    fn every_subcommand_runs_on_a_reference_table() {
        let data = rossi();
        let base = [
            "--data",
            data.as_str(),
            "--time",
            "time",
            "--event",
            "event",
        ];
        let cases: Vec<Vec<&str>> = vec![
            vec![
                "cox",
                "--covariates",
                "fin,age,prio_group",
                "--categorical",
                "prio_group",
            ],
            vec![
                "cox",
                "--covariates",
                "fin,age",
                "--ties",
                "breslow",
                "--strata",
                "wexp",
                "--json",
            ],
            vec!["km", "--group", "fin", "--json"],
            vec!["km"],
            vec!["logrank", "--group", "prio_group", "--strata", "wexp"],
            vec![
                "concordance",
                "--score",
                "prio",
                "--bootstrap",
                "20",
                "--json",
            ],
            vec![
                "subgroup",
                "--factor",
                "fin",
                "--by",
                "wexp",
                "--covariates",
                "age",
            ],
            vec![
                "nomogram",
                "--covariates",
                "fin,age,prio_group",
                "--categorical",
                "prio_group",
                "--horizons",
                "26,52",
                "--groups",
                "4",
                "--json",
            ],
        ];
        for case in cases {
            let mut args = vec![case[0]];
            args.extend_from_slice(&base);
            args.extend_from_slice(&case[1..]);
            let code = run_args(&args).unwrap_or_else(|e| panic!("{args:?}: {e:#}"));
            assert_eq!(code, ExitCode::SUCCESS, "{args:?}");
        }
    }

    #[test]
    fn bad_input_names_file_and_column() {
        let data = rossi();
        let err = run_args(&[
            "cox",
            "--data",
            &data,
            "--time",
            "time",
            "--event",
            "event",
            "--covariates",
            "nope",
        ])
        .unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("rossi.csv") && msg.contains("\"nope\""),
            "{msg}"
        );
        let err = run_args(&[
            "km",
            "--data",
            "/no/such.csv",
            "--time",
            "t",
            "--event",
            "e",
        ])
        .unwrap_err();
        assert!(format!("{err:#}").contains("/no/such.csv"));
    }
}
