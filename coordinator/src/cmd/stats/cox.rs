//! `cohort stats cox`: a Cox model fit with the R-like summary or the JSON
//! `{"n", "events", "iterations", "ties", "loglik_null", "loglik",
//! "coefficients": [...], "lr_test", "wald_test", "score_test",
//! "concordance": {"c", "se"}, "warnings"}`.

use super::{Input, pval, sig, table};
use anyhow::{Context, Result};
use cohort_common::survival::concordance::concordance;
use cohort_common::survival::cox::{ChisqTest, CoxOptions, Ties, cox_fit};
use cohort_common::survival::table::Table;
use serde::Serialize;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct CoxArgs {
    #[command(flatten)]
    pub input: Input,
    /// Covariate columns, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub covariates: Vec<String>,
    /// Covariates to dummy-code (first sorted level = reference).
    #[arg(long, value_delimiter = ',')]
    pub categorical: Vec<String>,
    /// Tie handling.
    #[arg(long, default_value = "efron", value_parser = ["efron", "breslow"])]
    pub ties: String,
    /// Stratify the baseline hazard by this column.
    #[arg(long)]
    pub strata: Option<String>,
    /// Case-weight column.
    #[arg(long)]
    pub weights: Option<String>,
}

#[derive(Serialize)]
struct Coefficient {
    name: String,
    coef: f64,
    se: f64,
    hr: f64,
    hr_lower: f64,
    hr_upper: f64,
    z: f64,
    p: f64,
}

#[derive(Serialize)]
struct Test {
    stat: f64,
    df: usize,
    p: f64,
}

impl From<ChisqTest> for Test {
    fn from(t: ChisqTest) -> Self {
        Test {
            stat: t.stat,
            df: t.df,
            p: t.p,
        }
    }
}

#[derive(Serialize)]
struct C {
    c: f64,
    se: f64,
}

#[derive(Serialize)]
struct Output {
    n: usize,
    events: usize,
    iterations: usize,
    ties: Ties,
    loglik_null: f64,
    loglik: f64,
    coefficients: Vec<Coefficient>,
    lr_test: Test,
    wald_test: Test,
    score_test: Test,
    concordance: C,
    warnings: Vec<String>,
}

pub fn run(args: CoxArgs) -> Result<ExitCode> {
    let inp = &args.input;
    let t = Table::read(&inp.data)?;
    let data = t.surv(&inp.time, &inp.event)?;
    let x = t.design(&args.covariates, &args.categorical)?;
    let strata = args.strata.as_deref().map(|s| t.groups(s)).transpose()?;
    let weights = args.weights.as_deref().map(|w| t.numeric(w)).transpose()?;
    let opts = CoxOptions {
        ties: args.ties.parse()?,
        ..Default::default()
    };
    let codes = strata.as_ref().map(|g| g.codes.as_slice());
    let fit = cox_fit(&data, &x, weights.as_deref(), codes, &opts)
        .with_context(|| format!("{}: Cox model", inp.data.display()))?;
    let lp = fit.linear_predictors(&x);
    let c = concordance(&data, &lp, weights.as_deref(), codes)
        .with_context(|| format!("{}: concordance of the Cox model", inp.data.display()))?;
    let out = Output {
        n: fit.n,
        events: fit.n_events,
        iterations: fit.iterations,
        ties: fit.ties,
        loglik_null: fit.loglik_null,
        loglik: fit.loglik,
        coefficients: fit
            .terms(0.95)
            .into_iter()
            .map(|t| Coefficient {
                name: t.name,
                coef: t.coef,
                se: t.se,
                hr: t.hr,
                hr_lower: t.hr_lower,
                hr_upper: t.hr_upper,
                z: t.z,
                p: t.p,
            })
            .collect(),
        lr_test: fit.lr_test().into(),
        wald_test: fit.wald_test().into(),
        score_test: fit.score_test().into(),
        concordance: C { c: c.c, se: c.se },
        warnings: fit.warnings.clone(),
    };
    if inp.json {
        return super::print_json(&out);
    }
    super::print_text(&human(&out, args.strata.as_deref()))
}

fn human(o: &Output, strata: Option<&str>) -> String {
    let mut s = format!("  n= {}, number of events= {}", o.n, o.events);
    if let Some(st) = strata {
        s.push_str(&format!(", stratified by {st}"));
    }
    s.push_str(&format!(
        ", ties= {}\n\n",
        serde_json::to_string(&o.ties)
            .unwrap_or_default()
            .trim_matches('"')
    ));
    let rows: Vec<Vec<String>> = o
        .coefficients
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                sig(c.coef, 5),
                sig(c.hr, 5),
                sig(c.se, 5),
                sig(c.z, 4),
                pval(c.p),
            ]
        })
        .collect();
    s.push_str(&table(
        &["", "coef", "exp(coef)", "se(coef)", "z", "Pr(>|z|)"],
        &rows,
    ));
    s.push('\n');
    let rows: Vec<Vec<String>> = o
        .coefficients
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                sig(c.hr, 4),
                sig(1.0 / c.hr, 4),
                sig(c.hr_lower, 4),
                sig(c.hr_upper, 4),
            ]
        })
        .collect();
    s.push_str(&table(
        &["", "exp(coef)", "exp(-coef)", "lower .95", "upper .95"],
        &rows,
    ));
    s.push_str(&format!(
        "\nConcordance= {}  (se = {} )\n",
        sig(o.concordance.c, 3),
        sig(o.concordance.se, 3)
    ));
    for (label, t) in [
        ("Likelihood ratio test", &o.lr_test),
        ("Wald test            ", &o.wald_test),
        ("Score (logrank) test ", &o.score_test),
    ] {
        s.push_str(&format!(
            "{label}= {}  on {} df,   p={}\n",
            sig(t.stat, 4),
            t.df,
            pval(t.p)
        ));
    }
    s.push_str(&format!(
        "Log-likelihood: {} (null), {} (fit); {} iterations\n",
        sig(o.loglik_null, 10),
        sig(o.loglik, 10),
        o.iterations
    ));
    for w in &o.warnings {
        s.push_str(&format!("Warning: {w}\n"));
    }
    s
}
