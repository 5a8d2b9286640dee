//! `cohort stats km`: Kaplan-Meier tables, overall or `--group COL`, as
//! `summary(survfit(...), censored = TRUE)`, or the JSON
//! `{"groups": [{"group", "n", "events", "median", "median_lower",
//! "median_upper", "table": [{"time", "n_risk", "n_event", "n_censor",
//! "surv", "se", "lower", "upper"}]}]}` (`se` is the SE of S; NA is null).
//! `--plot FILE.svg|png` also draws the curves with CI bands, the
//! number-at-risk table and (with groups) the log-rank p.

use super::{Input, sig, table};
use anyhow::{Context, Result};
use cohort_common::plot::km::{KmCurveSeries, KmPlot};
use cohort_common::plot::{Format, render};
use cohort_common::survival::km::{KmCurve, kaplan_meier, kaplan_meier_by};
use cohort_common::survival::logrank::logrank;
use cohort_common::survival::table::Table;
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct KmArgs {
    #[command(flatten)]
    pub input: Input,
    /// One curve per level of this column.
    #[arg(long)]
    pub group: Option<String>,
    /// Confidence level of the intervals.
    #[arg(long, default_value_t = 0.95)]
    pub conf_level: f64,
    /// Also draw the curves to this file (.svg or .png).
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

#[derive(Serialize)]
struct Row {
    time: f64,
    n_risk: usize,
    n_event: usize,
    n_censor: usize,
    surv: f64,
    se: f64,
    lower: f64,
    upper: f64,
}

#[derive(Serialize)]
struct Group {
    group: String,
    n: usize,
    events: usize,
    median: Option<f64>,
    median_lower: Option<f64>,
    median_upper: Option<f64>,
    table: Vec<Row>,
}

#[derive(Serialize)]
struct Output {
    groups: Vec<Group>,
}

fn group_of(label: String, c: &KmCurve) -> Group {
    let m = c.median();
    let se = c.se_surv();
    Group {
        group: label,
        n: c.n,
        events: c.events,
        median: m.quantile,
        median_lower: m.lower,
        median_upper: m.upper,
        table: (0..c.time.len())
            .map(|k| Row {
                time: c.time[k],
                n_risk: c.n_risk[k],
                n_event: c.n_event[k],
                n_censor: c.n_censor[k],
                surv: c.surv[k],
                se: se[k],
                lower: c.lower[k],
                upper: c.upper[k],
            })
            .collect(),
    }
}

pub fn run(args: KmArgs) -> Result<ExitCode> {
    let inp = &args.input;
    let t = Table::read(&inp.data)?;
    let data = t.surv(&inp.time, &inp.event)?;
    let ctx = || format!("{}: Kaplan-Meier", inp.data.display());
    let (curves, groups) = match &args.group {
        None => (
            vec![(
                "all".to_string(),
                kaplan_meier(&data, args.conf_level).with_context(ctx)?,
            )],
            None,
        ),
        Some(col) => {
            let g = t.groups(col)?;
            let cs = kaplan_meier_by(&data, &g.codes, g.levels.len(), args.conf_level)
                .with_context(ctx)?;
            let named = g
                .levels
                .iter()
                .zip(cs)
                .filter_map(|(l, c)| c.map(|c| (l.clone(), c)))
                .collect();
            (named, Some(g))
        }
    };
    if let Some(path) = &args.plot {
        let p_value = match &groups {
            Some(g) if g.levels.len() > 1 => {
                Some(logrank(&data, &g.codes, g.levels.len(), None)?.p)
            }
            _ => None,
        };
        let label = |l: &str| match &args.group {
            Some(col) => format!("{col}={l}"),
            None => "All".to_string(),
        };
        let fig = KmPlot {
            curves: curves
                .iter()
                .map(|(l, c)| KmCurveSeries::from_curve(label(l), c))
                .collect(),
            x_label: format!("Time ({})", inp.time),
            p_value,
            ..KmPlot::default()
        };
        let bytes = render(&fig, Format::from_path(path)?)?;
        super::write_file(path, &bytes)?;
    }
    let out = Output {
        groups: curves.iter().map(|(l, c)| group_of(l.clone(), c)).collect(),
    };
    if inp.json {
        return super::print_json(&out);
    }
    let mut s = String::new();
    for g in &out.groups {
        if args.group.is_some() {
            s.push_str(&format!(
                "                {}={}\n",
                args.group.as_deref().unwrap_or(""),
                g.group
            ));
        }
        let pct = sig(args.conf_level * 100.0, 3);
        let rows: Vec<Vec<String>> = g
            .table
            .iter()
            .map(|r| {
                vec![
                    sig(r.time, 6),
                    r.n_risk.to_string(),
                    r.n_event.to_string(),
                    r.n_censor.to_string(),
                    sig(r.surv, 4),
                    sig(r.se, 4),
                    sig(r.lower, 4),
                    sig(r.upper, 4),
                ]
            })
            .collect();
        let lo = format!("lower {pct}% CI");
        let up = format!("upper {pct}% CI");
        s.push_str(&table(
            &[
                "time", "n.risk", "n.event", "n.censor", "survival", "std.err", &lo, &up,
            ],
            &rows,
        ));
        let na = |v: Option<f64>| v.map_or("NA".to_string(), |v| sig(v, 6));
        s.push_str(&format!(
            "n= {}, events= {}, median= {} ({}% CI {} to {})\n\n",
            g.n,
            g.events,
            na(g.median),
            pct,
            na(g.median_lower),
            na(g.median_upper)
        ));
    }
    super::print_text(&s)
}
