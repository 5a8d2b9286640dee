//! `cohort stats nomogram`: the nomogram of a multivariable Cox model (points
//! per factor value, total points, predicted survival at `--horizons`) and
//! its calibration at each horizon (`--groups` groups of predicted
//! survival); JSON `{"nomogram": {...}, "calibration": [...]}`. `--plot`
//! draws the nomogram, `--calibration-plot` the calibration at the first
//! horizon.

use super::{Input, sig, table};
use anyhow::{Context, Result, bail};
use cohort_common::plot::calibration::{CalibrationPlot, CalibrationPoint, CalibrationSeries};
use cohort_common::plot::nomogram::{NomogramAxis, NomogramPlot, NomogramTick};
use cohort_common::plot::{Format, render};
use cohort_common::survival::calibration::{Calibration, calibration};
use cohort_common::survival::cox::{CoxOptions, cox_fit};
use cohort_common::survival::nomogram::{FactorSpec, Nomogram};
use cohort_common::survival::table::Table;
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct NomogramArgs {
    #[command(flatten)]
    pub input: Input,
    /// Model covariates, comma-separated (one nomogram axis each).
    #[arg(long, value_delimiter = ',', required = true)]
    pub covariates: Vec<String>,
    /// Covariates to dummy-code (first sorted level = reference).
    #[arg(long, value_delimiter = ',')]
    pub categorical: Vec<String>,
    /// Survival horizons, comma-separated, in the time column's unit.
    #[arg(long, value_delimiter = ',', required = true)]
    pub horizons: Vec<f64>,
    /// Tie handling.
    #[arg(long, default_value = "efron", value_parser = ["efron", "breslow"])]
    pub ties: String,
    /// Number of predicted-survival groups of the calibration.
    #[arg(long, default_value_t = 5)]
    pub groups: usize,
    /// Draw the nomogram (.svg or .png).
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Draw the calibration at the first horizon (.svg or .png).
    #[arg(long)]
    pub calibration_plot: Option<PathBuf>,
}

#[derive(Serialize)]
struct Output<'a> {
    nomogram: &'a Nomogram,
    calibration: Vec<Calibration>,
}

pub fn run(args: NomogramArgs) -> Result<ExitCode> {
    let inp = &args.input;
    if args.horizons.iter().any(|h| !(h.is_finite() && *h > 0.0)) {
        bail!("--horizons must be positive times, got {:?}", args.horizons);
    }
    let t = Table::read(&inp.data)?;
    let data = t.surv(&inp.time, &inp.event)?;
    let x = t.design(&args.covariates, &args.categorical)?;
    // One nomogram factor per covariate, over its design columns.
    let mut specs = Vec::new();
    let mut col = 0;
    for c in &args.covariates {
        if args.categorical.contains(c) {
            let g = t.groups(c)?;
            let levels = g
                .levels
                .iter()
                .enumerate()
                .map(|(k, l)| {
                    let set = if k == 0 {
                        vec![]
                    } else {
                        vec![(col + k - 1, 1.0)]
                    };
                    (l.clone(), set)
                })
                .collect();
            col += g.levels.len() - 1;
            specs.push(FactorSpec::Categorical {
                name: c.clone(),
                levels,
            });
        } else {
            specs.push(FactorSpec::Continuous {
                name: c.clone(),
                column: col,
            });
            col += 1;
        }
    }
    let opts = CoxOptions {
        ties: args.ties.parse()?,
        ..Default::default()
    };
    let ctx = || format!("{}: nomogram", inp.data.display());
    let fit = cox_fit(&data, &x, None, None, &opts).with_context(ctx)?;
    for w in &fit.warnings {
        tracing::warn!("{w}");
    }
    let nomo = Nomogram::build(&fit, &x, &specs, &args.horizons, 0).with_context(ctx)?;
    let mut cals = Vec::new();
    for &h in &args.horizons {
        let pred: Vec<f64> = (0..x.n_rows())
            .map(|i| nomo.survival(nomo.points(x.row(i)).1, h))
            .collect();
        cals.push(calibration(&data, &pred, h, args.groups).with_context(ctx)?);
    }
    if let Some(path) = &args.plot {
        let fig = NomogramPlot {
            factors: nomo
                .factors
                .iter()
                .map(|f| NomogramAxis {
                    label: f.name.clone(),
                    ticks: f
                        .points
                        .iter()
                        .map(|p| NomogramTick {
                            position: p.points,
                            label: p.label.clone(),
                        })
                        .collect(),
                })
                .collect(),
            total_points: (0.0, nomo.total_points_max),
            outcomes: nomo
                .horizons
                .iter()
                .map(|h| NomogramAxis {
                    label: format!("{} survival", sig(h.time, 6)),
                    ticks: h
                        .ticks
                        .iter()
                        .map(|t| NomogramTick {
                            position: t.total_points,
                            label: sig(t.survival, 2),
                        })
                        .collect(),
                })
                .collect(),
            ..NomogramPlot::default()
        };
        super::write_file(path, &render(&fig, Format::from_path(path)?)?)?;
    }
    if let (Some(path), Some(cal)) = (&args.calibration_plot, cals.first()) {
        let fig = CalibrationPlot {
            title: Some(format!("Calibration at t = {}", sig(cal.horizon, 6))),
            series: vec![CalibrationSeries {
                label: "Apparent".into(),
                points: cal
                    .groups
                    .iter()
                    .map(|g| CalibrationPoint {
                        predicted: g.predicted,
                        observed: g.observed,
                        lower: g.lower,
                        upper: g.upper,
                    })
                    .collect(),
            }],
            ..CalibrationPlot::default()
        };
        super::write_file(path, &render(&fig, Format::from_path(path)?)?)?;
    }
    let out = Output {
        nomogram: &nomo,
        calibration: cals,
    };
    if inp.json {
        return super::print_json(&out);
    }
    let mut s = format!(
        "Nomogram: {} points per unit of the linear predictor; total points 0 to {}\n\n",
        sig(nomo.points_per_lp, 5),
        sig(nomo.total_points_max, 5)
    );
    for f in &nomo.factors {
        let rows: Vec<Vec<String>> = f
            .points
            .iter()
            .map(|p| vec![p.label.clone(), sig(p.points, 4)])
            .collect();
        s.push_str(&table(&[&f.name, "Points"], &rows));
        s.push('\n');
    }
    for h in &nomo.horizons {
        let rows: Vec<Vec<String>> = h
            .ticks
            .iter()
            .map(|t| vec![sig(t.total_points, 4), sig(t.survival, 3)])
            .collect();
        let title = format!("{}-survival", sig(h.time, 6));
        s.push_str(&table(&["Total points", &title], &rows));
        s.push('\n');
    }
    for cal in &out.calibration {
        s.push_str(&format!("Calibration at t = {}\n", sig(cal.horizon, 6)));
        let rows: Vec<Vec<String>> = cal
            .groups
            .iter()
            .map(|g| {
                vec![
                    (g.group + 1).to_string(),
                    g.n.to_string(),
                    g.events.to_string(),
                    sig(g.predicted, 4),
                    sig(g.observed, 4),
                    sig(g.lower, 4),
                    sig(g.upper, 4),
                ]
            })
            .collect();
        s.push_str(&table(
            &[
                "group",
                "n",
                "events",
                "predicted",
                "observed",
                "lower .95",
                "upper .95",
            ],
            &rows,
        ));
        s.push('\n');
    }
    super::print_text(&s)
}
