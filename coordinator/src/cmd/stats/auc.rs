//! `cohort stats auc`: the cumulative/dynamic time-dependent AUC of a risk
//! score at given horizons, with inverse probability of censoring weights and
//! the integrated mean AUC, as scikit-survival's `cumulative_dynamic_auc`.
//! The censoring distribution is estimated from the same table. `--json`
//! prints `{"times", "auc", "mean_auc"}`.

use super::{Input, print_json, print_text, sig};
use anyhow::{Context, Result, bail};
use cohort_common::survival::auc::{AucResult, cumulative_dynamic_auc};
use cohort_common::survival::table::Table;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct AucArgs {
    #[command(flatten)]
    pub input: Input,
    /// Risk-score column (higher = earlier events, unless --reverse).
    #[arg(long)]
    pub score: String,
    /// Horizons, comma-separated (e.g. 12,36,60), in the time column's unit.
    #[arg(long, value_delimiter = ',', required = true)]
    pub times: Vec<f64>,
    /// A higher score means longer survival (the score is negated).
    #[arg(long)]
    pub reverse: bool,
}

pub fn run(args: AucArgs) -> Result<ExitCode> {
    let input = &args.input;
    let table = Table::read(&input.data)?;
    let surv = table.surv(&input.time, &input.event)?;
    let mut score = table.numeric(&args.score)?;
    if args.reverse {
        score.iter_mut().for_each(|v| *v = -*v);
    }
    if args.times.is_empty() {
        bail!("--times needs at least one horizon");
    }
    let result = cumulative_dynamic_auc(&surv, &surv, &score, &args.times)
        .with_context(|| format!("{}: AUC of {:?}", input.data.display(), args.score))?;
    if input.json {
        print_json(&result)
    } else {
        print_text(&human(&args, &result))
    }
}

fn human(args: &AucArgs, r: &AucResult) -> String {
    let mut s = format!(
        "Cumulative/dynamic AUC (IPCW) of {}{} for Surv({}, {})\n\n{:>12}  {:>8}\n",
        if args.reverse { "-" } else { "" },
        args.score,
        args.input.time,
        args.input.event,
        "time",
        "AUC"
    );
    for (t, a) in r.times.iter().zip(&r.auc) {
        s.push_str(&format!("{:>12}  {:>8}\n", sig(*t, 6), sig(*a, 4)));
    }
    s.push_str(&format!("\nmean AUC: {}\n", sig(r.mean_auc, 4)));
    s
}
