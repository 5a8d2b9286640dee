//! `cohort stats cutoff`: the optimal cut-off of a risk score, by the
//! maximally selected log-rank statistic (R `maxstat.test(..., smethod =
//! "LogRank")`, the default) or by the largest `survdiff` χ² over the quantile
//! candidates, with the low group `score <= cutoff`. `--plot` also draws the
//! Kaplan-Meier curves of the two groups with their log-rank p.

use super::{Input, print_json, print_text, pval, sig, write_file};
use anyhow::{Context, Result};
use cohort_common::plot::km::{KmCurveSeries, KmPlot};
use cohort_common::plot::{Format, render};
use cohort_common::survival::SurvData;
use cohort_common::survival::cutoff::{CutoffMethod, CutoffResult, low_group, optimal_cutoff};
use cohort_common::survival::km::kaplan_meier_by;
use cohort_common::survival::logrank::logrank;
use cohort_common::survival::table::Table;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The cut-off method on the command line.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MethodArg {
    /// Maximally selected log-rank statistic (R maxstat), Lau92/Lau94 p-values.
    Maxstat,
    /// Largest survdiff chi-square over the distinct scores between the quantiles.
    Survdiff,
}

#[derive(clap::Args, Debug)]
pub struct CutoffArgs {
    #[command(flatten)]
    pub input: Input,
    /// Risk-score column to cut.
    #[arg(long)]
    pub score: String,
    #[arg(long, value_enum, default_value = "maxstat")]
    pub method: MethodArg,
    /// Smallest fraction of subjects in the low group.
    #[arg(long, default_value_t = 0.1)]
    pub min_prop: f64,
    /// Largest fraction of subjects in the low group.
    #[arg(long, default_value_t = 0.9)]
    pub max_prop: f64,
    /// Also write the Kaplan-Meier curves of the two groups (.svg or .png).
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

pub fn run(args: CutoffArgs) -> Result<ExitCode> {
    let input = &args.input;
    let table = Table::read(&input.data)?;
    let surv = table.surv(&input.time, &input.event)?;
    let score = table.numeric(&args.score)?;
    let method = match args.method {
        MethodArg::Maxstat => CutoffMethod::Maxstat,
        MethodArg::Survdiff => CutoffMethod::Survdiff,
    };
    let result = optimal_cutoff(&surv, &score, method, args.min_prop, args.max_prop)
        .with_context(|| format!("{}: cut-off of {:?}", input.data.display(), args.score))?;
    if let Some(path) = &args.plot {
        write_group_plot(path, &args, &surv, &result, &score)?;
    }
    if input.json {
        print_json(&result)
    } else {
        print_text(&human(&args, &result))
    }
}

/// An R-like printout of the result.
fn human(args: &CutoffArgs, r: &CutoffResult) -> String {
    let mut s = String::new();
    match r.method {
        CutoffMethod::Maxstat => {
            s.push_str("\n\tMaximally selected LogRank statistics\n\n");
            s.push_str(&format!(
                "data:  Surv({}, {}) by {}\n",
                args.input.time, args.input.event, args.score
            ));
            s.push_str(&format!(
                "M = {}, p-value (Lau94) = {}, p-value (Lau92) = {}\n",
                sig(r.statistic, 5),
                pval(r.p_lau94),
                pval(r.p_lau92)
            ));
        }
        CutoffMethod::Survdiff => {
            s.push_str("\n\tLargest log-rank (survdiff) chi-square over quantile cut-points\n\n");
            s.push_str(&format!(
                "data:  Surv({}, {}) by {} <= c\n",
                args.input.time, args.input.event, args.score
            ));
            s.push_str(&format!(
                "Chisq = {} on 1 df, p-value corrected for the selection (Lau94) = {}, \
                 (Lau92) = {}\n",
                sig(r.statistic, 5),
                pval(r.p_lau94),
                pval(r.p_lau92)
            ));
        }
    }
    s.push_str(&format!(
        "candidates: {:.0}% to {:.0}% of subjects in the low group\n",
        100.0 * r.min_prop,
        100.0 * r.max_prop
    ));
    s.push_str(&format!("estimated cut-point: {}\n", sig(r.cutoff, 6)));
    s.push_str(&format!(
        "low ({} <= {}): n = {}    high: n = {}\n",
        args.score,
        sig(r.cutoff, 6),
        r.n_low,
        r.n_high
    ));
    s
}

fn write_group_plot(
    path: &Path,
    args: &CutoffArgs,
    surv: &SurvData,
    r: &CutoffResult,
    score: &[f64],
) -> Result<()> {
    let format = Format::from_path(path)?;
    // Group 0 = low, 1 = high.
    let groups: Vec<usize> = low_group(score, r.cutoff)
        .iter()
        .map(|&low| usize::from(!low))
        .collect();
    let curves = kaplan_meier_by(surv, &groups, 2, 0.95)?;
    let test = logrank(surv, &groups, 2, None)?;
    let labels = [
        format!("{} \u{2264} {}", args.score, sig(r.cutoff, 6)),
        format!("{} > {}", args.score, sig(r.cutoff, 6)),
    ];
    let series: Vec<KmCurveSeries> = curves
        .iter()
        .zip(&labels)
        .filter_map(|(c, l)| c.as_ref().map(|c| KmCurveSeries::from_curve(l.clone(), c)))
        .collect();
    let fig = KmPlot {
        curves: series,
        x_label: if args.input.time.eq_ignore_ascii_case("time") {
            "Time".into()
        } else {
            format!("Time ({})", args.input.time)
        },
        p_value: Some(test.p),
        ..KmPlot::default()
    };
    write_file(path, &render(&fig, format)?)
}
