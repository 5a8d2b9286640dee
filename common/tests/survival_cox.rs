//! Cox model against R's `coxph` on every reference data set: both tie
//! methods, the main multivariable and the univariable model; coefficients,
//! SE, HR and CI, Wald z and p, variance matrix, log-likelihoods, the three
//! global tests, the iteration count and the baseline cumulative hazard.
//! Tolerances are the (coefficients by the README's
//! |Δβ| ≤ 1e-6|β| + 1e-6·se rule).

mod survival_support;

use cohort_common::survival::cox::{CoxFit, CoxOptions, Ties, cox_fit};
use serde_json::Value;
use survival_support::*;

fn check_fit(label: &str, fit: &CoxFit, r: &Value, covs: &[String]) {
    let terms = fit.terms(0.95);
    for (j, name) in covs.iter().enumerate() {
        let rt = &r["terms"][name];
        let t = &terms[j];
        let se = f(&rt["se"]);
        let what = |w: &str| format!("{label} {name} {w}");
        close(&what("coef"), t.coef, f(&rt["coef"]), 1e-6, 1e-6 * se);
        close(&what("se"), t.se, se, 1e-5, 0.0);
        close(&what("hr"), t.hr, f(&rt["hr"]), 1e-6, 1e-6 * se);
        close(&what("ci_lower"), t.hr_lower, f(&rt["ci_lower"]), 1e-5, 0.0);
        close(&what("ci_upper"), t.hr_upper, f(&rt["ci_upper"]), 1e-5, 0.0);
        close(&what("z"), t.z, f(&rt["z"]), 1e-5, 1e-6);
        close_p(&what("p"), t.p, t.log_p, f(&rt["p"]), opt(&rt["log_p"]));
    }
    close(
        &format!("{label} loglik_null"),
        fit.loglik_null,
        f(&r["loglik_null"]),
        1e-6,
        0.0,
    );
    close(
        &format!("{label} loglik"),
        fit.loglik,
        f(&r["loglik"]),
        1e-6,
        0.0,
    );
    for (name, test) in [
        ("lr_test", fit.lr_test()),
        ("score_test", fit.score_test()),
        ("wald_test", fit.wald_test()),
    ] {
        let rt = &r[name];
        close(
            &format!("{label} {name}"),
            test.stat,
            f(&rt["stat"]),
            1e-5,
            1e-8,
        );
        assert_eq!(test.df as f64, f(&rt["df"]), "{label} {name} df");
        close_p(
            &format!("{label} {name} p"),
            test.p,
            test.log_p,
            f(&rt["p"]),
            opt(&rt["log_p"]),
        );
    }
    assert_eq!(
        fit.iterations as f64,
        f(&r["iterations"]),
        "{label} iterations"
    );
    assert!(
        fit.converged && fit.warnings.is_empty(),
        "{label}: {:?}",
        fit.warnings
    );
}

#[test]
fn main_model_matches_coxph() {
    for (name, table, json) in datasets() {
        let covs = strings(&json["cox"]["covariates"]);
        let data = table.surv("time", "event").unwrap();
        let x = table.design(&covs, &[]).unwrap();
        for (ties, key) in [(Ties::Efron, "efron"), (Ties::Breslow, "breslow")] {
            let r = &json["cox"][key];
            let opts = CoxOptions {
                ties,
                ..Default::default()
            };
            let fit = cox_fit(&data, &x, None, None, &opts).unwrap();
            let label = format!("{name} {key}");
            check_fit(&label, &fit, r, &covs);
            assert_eq!(fit.n as f64, f(&r["n"]));
            assert_eq!(fit.n_events as f64, f(&r["nevent"]));
            // Variance matrix, element by element (1e-5 of the diagonal scale).
            let p = covs.len();
            let rv = r["var"].as_array().unwrap();
            for (i, rrow) in rv.iter().enumerate().take(p) {
                for (k, want) in arr(rrow).into_iter().enumerate() {
                    let scale = (fit.var[i * p + i] * fit.var[k * p + k]).sqrt();
                    close(
                        &format!("{label} var[{i},{k}]"),
                        fit.var[i * p + k],
                        want,
                        1e-5,
                        1e-6 * scale,
                    );
                }
            }
            // Baseline cumulative hazard at x = 0 (basehaz(centered = FALSE)).
            let bh = &r["baseline_cumhaz_at_zero"];
            let times = arr(&bh["time"]);
            let cumhaz = arr(&bh["cumhaz"]);
            assert_eq!(fit.baseline.len(), 1);
            assert_eq!(fit.baseline[0].time, times, "{label} baseline times");
            for (k, (&got, &want)) in fit.baseline[0].cumhaz.iter().zip(&cumhaz).enumerate() {
                close(&format!("{label} cumhaz[{k}]"), got, want, 1e-5, 1e-12);
            }
        }
    }
}

#[test]
fn univariable_model_matches_coxph() {
    for (name, table, json) in datasets() {
        let u = &json["cox_univariable"];
        let cov = u["covariate"].as_str().unwrap().to_string();
        let data = table.surv("time", "event").unwrap();
        let x = table.design(std::slice::from_ref(&cov), &[]).unwrap();
        for (ties, key) in [(Ties::Efron, "efron"), (Ties::Breslow, "breslow")] {
            let r = &u[key];
            let opts = CoxOptions {
                ties,
                ..Default::default()
            };
            let fit = cox_fit(&data, &x, None, None, &opts).unwrap();
            // The univariable JSON holds the term fields at the top level.
            let mut wrapped = r.clone();
            wrapped["terms"] = serde_json::json!({ cov.clone(): r.clone() });
            check_fit(
                &format!("{name} univariable {key}"),
                &fit,
                &wrapped,
                std::slice::from_ref(&cov),
            );
        }
    }
}
