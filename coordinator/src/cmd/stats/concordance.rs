//! `cohort stats concordance`: Harrell's C of a risk score (higher = shorter
//! survival; `--reverse` when higher means longer), with R's SE and a seeded
//! percentile bootstrap CI: `{"c", "se", "lower", "upper", ...}`.

use super::{Input, sig};
use anyhow::{Context, Result};
use cohort_common::survival::concordance::{bootstrap_ci, concordance};
use cohort_common::survival::table::Table;
use serde::Serialize;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct ConcordanceArgs {
    #[command(flatten)]
    pub input: Input,
    /// Risk-score column.
    #[arg(long)]
    pub score: String,
    /// A higher score means longer survival (R's default direction).
    #[arg(long)]
    pub reverse: bool,
    /// Compare pairs only within the levels of this column.
    #[arg(long)]
    pub strata: Option<String>,
    /// Bootstrap replicates of the percentile CI.
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 20240601)]
    pub seed: u64,
    /// Confidence level.
    #[arg(long, default_value_t = 0.95)]
    pub conf_level: f64,
}

#[derive(Serialize)]
struct Output {
    c: f64,
    se: f64,
    lower: f64,
    upper: f64,
    n: usize,
    concordant: f64,
    discordant: f64,
    tied_x: f64,
    tied_y: f64,
    bootstrap: usize,
    seed: u64,
}

pub fn run(args: ConcordanceArgs) -> Result<ExitCode> {
    let inp = &args.input;
    let t = Table::read(&inp.data)?;
    let data = t.surv(&inp.time, &inp.event)?;
    let mut score = t.numeric(&args.score)?;
    if args.reverse {
        score.iter_mut().for_each(|v| *v = -*v);
    }
    let strata = args.strata.as_deref().map(|s| t.groups(s)).transpose()?;
    let codes = strata.as_ref().map(|s| s.codes.as_slice());
    let ctx = || format!("{}: concordance of {:?}", inp.data.display(), args.score);
    let c = concordance(&data, &score, None, codes).with_context(ctx)?;
    let ci = bootstrap_ci(
        &data,
        &score,
        codes,
        args.bootstrap,
        args.conf_level,
        args.seed,
    )
    .with_context(ctx)?;
    let out = Output {
        c: c.c,
        se: c.se,
        lower: ci.lower,
        upper: ci.upper,
        n: c.n,
        concordant: c.concordant,
        discordant: c.discordant,
        tied_x: c.tied_x,
        tied_y: c.tied_y,
        bootstrap: args.bootstrap,
        seed: args.seed,
    };
    if inp.json {
        return super::print_json(&out);
    }
    super::print_text(&format!(
        "n= {}\nConcordance= {} se= {}\n{}% bootstrap CI ({} replicates, seed {}): {} to {}\n\
         concordant  discordant  tied.x  tied.y\n{:>10}  {:>10}  {:>6}  {:>6}\n",
        out.n,
        sig(out.c, 6),
        sig(out.se, 4),
        sig(args.conf_level * 100.0, 3),
        out.bootstrap,
        out.seed,
        sig(out.lower, 4),
        sig(out.upper, 4),
        out.concordant,
        out.discordant,
        out.tied_x,
        out.tied_y
    ))
}
