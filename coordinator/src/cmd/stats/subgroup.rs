//! `cohort stats subgroup`: the hazard ratio of a binary `--factor` within
//! each level of `--by`, optionally adjusted (`--covariates`), and the
//! interaction tests; JSON `{"factor", "by", "subgroups": [{"level", "n",
//! "events", "coef", "se", "hr", "hr_lower", "hr_upper", "p", "note"}],
//! "interaction_lr": {...}, "interaction_wald": {...}}`. `--plot` draws the
//! forest plot.

use super::{Input, pval, sig, table};
use anyhow::{Context, Result};
use cohort_common::plot::forest::{ForestPlot, ForestRow, HrCi};
use cohort_common::plot::{Format, render};
use cohort_common::survival::cox::CoxOptions;
use cohort_common::survival::subgroup::subgroup_analysis;
use cohort_common::survival::table::Table;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct SubgroupArgs {
    #[command(flatten)]
    pub input: Input,
    /// Binary (0/1) factor whose hazard ratio is estimated.
    #[arg(long)]
    pub factor: String,
    /// Column whose levels define the subgroups.
    #[arg(long)]
    pub by: String,
    /// Adjustment covariates, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub covariates: Vec<String>,
    /// Adjustment covariates to dummy-code.
    #[arg(long, value_delimiter = ',')]
    pub categorical: Vec<String>,
    /// Tie handling.
    #[arg(long, default_value = "efron", value_parser = ["efron", "breslow"])]
    pub ties: String,
    /// Also draw a forest plot (.svg or .png).
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

pub fn run(args: SubgroupArgs) -> Result<ExitCode> {
    let inp = &args.input;
    let t = Table::read(&inp.data)?;
    let data = t.surv(&inp.time, &inp.event)?;
    let factor = t.numeric(&args.factor)?;
    let by = t.groups(&args.by)?;
    let adjust = t.design(&args.covariates, &args.categorical)?;
    let opts = CoxOptions {
        ties: args.ties.parse()?,
        ..Default::default()
    };
    let res = subgroup_analysis(
        &data,
        &args.factor,
        &factor,
        &args.by,
        &by.codes,
        &by.levels,
        &adjust,
        &opts,
    )
    .with_context(|| format!("{}: {} within {}", inp.data.display(), args.factor, args.by))?;
    if let Some(path) = &args.plot {
        let mut rows = vec![ForestRow {
            label: args.by.clone(),
            indent: 0,
            n: None,
            hr: None,
            p: None,
        }];
        rows.extend(res.subgroups.iter().map(|s| ForestRow {
            label: s.level.clone(),
            indent: 1,
            n: Some(format!("{}/{}", s.events, s.n)),
            hr: s.hr.is_finite().then_some(HrCi {
                hr: s.hr,
                lower: s.hr_lower,
                upper: s.hr_upper,
            }),
            p: s.p.is_finite().then_some(s.p),
        }));
        let fig = ForestPlot {
            title: Some(format!("{} by {}", args.factor, args.by)),
            rows,
            n_header: "Events/N".into(),
            footnote: Some(format!(
                "P for interaction = {}",
                pval(res.interaction_lr.p)
            )),
            ..ForestPlot::default()
        };
        let bytes = render(&fig, Format::from_path(path)?)?;
        super::write_file(path, &bytes)?;
    }
    if inp.json {
        return super::print_json(&res);
    }
    let rows: Vec<Vec<String>> = res
        .subgroups
        .iter()
        .map(|s| {
            vec![
                format!("{}={}", args.by, s.level),
                s.n.to_string(),
                s.events.to_string(),
                sig(s.hr, 4),
                sig(s.hr_lower, 4),
                sig(s.hr_upper, 4),
                pval(s.p),
                s.note.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let mut s = format!("Hazard ratio of {} within {}", args.factor, args.by);
    if !args.covariates.is_empty() {
        s.push_str(&format!(", adjusted for {}", args.covariates.join(", ")));
    }
    s.push_str("\n\n");
    s.push_str(&table(
        &["", "n", "events", "HR", "lower .95", "upper .95", "p", ""],
        &rows,
    ));
    for (name, t) in [
        ("likelihood ratio", &res.interaction_lr),
        ("Wald", &res.interaction_wald),
    ] {
        s.push_str(&format!(
            "\nInteraction {name} test= {}  on {} df,   p={}",
            sig(t.stat, 4),
            t.df,
            pval(t.p)
        ));
    }
    s.push('\n');
    super::print_text(&s)
}
