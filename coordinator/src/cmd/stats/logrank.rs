//! `cohort stats logrank`: the k-group log-rank test (`--group COL`),
//! optionally stratified (`--strata COL`), as `survdiff`, or the JSON
//! `{"stat", "df", "p", "groups": [{"group", "n", "observed", "expected"}]}`.

use super::{Input, pval, sig, table};
use anyhow::{Context, Result};
use cohort_common::survival::logrank::logrank;
use cohort_common::survival::table::Table;
use serde::Serialize;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct LogrankArgs {
    #[command(flatten)]
    pub input: Input,
    /// Grouping column (two or more levels).
    #[arg(long)]
    pub group: String,
    /// Stratify by this column.
    #[arg(long)]
    pub strata: Option<String>,
}

#[derive(Serialize)]
struct Group {
    group: String,
    n: usize,
    observed: f64,
    expected: f64,
}

#[derive(Serialize)]
struct Output {
    stat: f64,
    df: usize,
    p: f64,
    log_p: f64,
    groups: Vec<Group>,
}

pub fn run(args: LogrankArgs) -> Result<ExitCode> {
    let inp = &args.input;
    let t = Table::read(&inp.data)?;
    let data = t.surv(&inp.time, &inp.event)?;
    let g = t.groups(&args.group)?;
    let strata = args.strata.as_deref().map(|s| t.groups(s)).transpose()?;
    let lr = logrank(
        &data,
        &g.codes,
        g.levels.len(),
        strata.as_ref().map(|s| s.codes.as_slice()),
    )
    .with_context(|| format!("{}: log-rank test of {:?}", inp.data.display(), args.group))?;
    let out = Output {
        stat: lr.stat,
        df: lr.df,
        p: lr.p,
        log_p: lr.log_p,
        groups: lr
            .groups
            .iter()
            .map(|r| Group {
                group: g.levels[r.group].clone(),
                n: r.n,
                observed: r.observed,
                expected: r.expected,
            })
            .collect(),
    };
    if inp.json {
        return super::print_json(&out);
    }
    let k = g.levels.len();
    let rows: Vec<Vec<String>> = out
        .groups
        .iter()
        .enumerate()
        .map(|(a, r)| {
            let oe = r.observed - r.expected;
            vec![
                format!("{}={}", args.group, r.group),
                r.n.to_string(),
                sig(r.observed, 6),
                sig(r.expected, 4),
                sig(oe * oe / r.expected, 3),
                sig(oe * oe / lr.var[a * k + a], 3),
            ]
        })
        .collect();
    let mut s = table(
        &["", "N", "Observed", "Expected", "(O-E)^2/E", "(O-E)^2/V"],
        &rows,
    );
    if let Some(st) = &args.strata {
        s.push_str(&format!("(stratified by {st})\n"));
    }
    s.push_str(&format!(
        "\n Chisq= {}  on {} degrees of freedom, p= {}\n",
        sig(out.stat, 4),
        out.df,
        pval(out.p)
    ));
    super::print_text(&s)
}
