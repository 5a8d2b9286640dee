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

/// Strata and case weights, against `bench/survival/cox_extra_reference.R`.
#[test]
fn strata_and_weights_match_r() {
    use cohort_common::survival::concordance::concordance;
    use cohort_common::survival::logrank::logrank;
    use cohort_common::survival::table::Table;
    let r: Value = serde_json::from_str(
        &std::fs::read_to_string(local_dir().join("cox_strata_weights.json")).unwrap(),
    )
    .unwrap();
    let vet = Table::read(&shared_dir().join("veteran.csv")).unwrap();
    let ros = Table::read(&shared_dir().join("rossi.csv")).unwrap();
    let w: Vec<f64> = {
        let prio = ros.numeric("prio").unwrap();
        let fin = ros.numeric("fin").unwrap();
        prio.iter()
            .zip(&fin)
            .map(|(p, f)| 1.0 + (p % 3.0) + 0.5 * f)
            .collect()
    };
    for (key, ties) in [
        ("veteran_strata_prior_efron", Ties::Efron),
        ("veteran_strata_prior_breslow", Ties::Breslow),
        ("rossi_weighted_efron", Ties::Efron),
        ("rossi_weighted_breslow", Ties::Breslow),
    ] {
        let want = &r[key];
        let table = if key.starts_with("veteran") {
            &vet
        } else {
            &ros
        };
        let covs = strings(&want["covariates"]);
        let data = table.surv("time", "event").unwrap();
        let x = table.design(&covs, &[]).unwrap();
        let strata = want["strata"]
            .as_str()
            .map(|s| table.groups(s).unwrap().codes);
        let weights = want["weights"].as_str().map(|_| w.as_slice());
        let opts = CoxOptions {
            ties,
            ..Default::default()
        };
        let fit = cox_fit(&data, &x, weights, strata.as_deref(), &opts).unwrap();
        let se = fit.se();
        for (j, name) in covs.iter().enumerate() {
            let rse = f(&want["se"][j]);
            close(
                &format!("{key} {name} coef"),
                fit.coef[j],
                f(&want["coef"][j]),
                1e-6,
                1e-6 * rse,
            );
            close(&format!("{key} {name} se"), se[j], rse, 1e-5, 0.0);
        }
        close(
            &format!("{key} loglik0"),
            fit.loglik_null,
            f(&want["loglik"][0]),
            1e-6,
            0.0,
        );
        close(
            &format!("{key} loglik"),
            fit.loglik,
            f(&want["loglik"][1]),
            1e-6,
            0.0,
        );
        close(
            &format!("{key} score"),
            fit.score_stat,
            f(&want["score"]),
            1e-5,
            0.0,
        );
        close(
            &format!("{key} wald"),
            fit.wald_stat,
            f(&want["wald"]),
            1e-5,
            0.0,
        );
        assert_eq!(fit.iterations as f64, f(&want["iter"]), "{key} iterations");
        let lp = fit.linear_predictors(&x);
        let c = concordance(&data, &lp, weights, strata.as_deref()).unwrap();
        close(&format!("{key} C"), c.c, f(&want["concordance"]), 1e-9, 0.0);
        close(
            &format!("{key} C se"),
            c.se,
            f(&want["concordance_se"]),
            1e-6,
            0.0,
        );
    }
    let want = &r["veteran_logrank_celltype_strata_prior"];
    let data = vet.surv("time", "event").unwrap();
    let g = vet.groups("celltype").unwrap();
    let s = vet.groups("prior").unwrap();
    let lr = logrank(&data, &g.codes, g.levels.len(), Some(&s.codes)).unwrap();
    close("stratified log-rank", lr.stat, f(&want["chisq"]), 1e-5, 0.0);
    close("stratified log-rank p", lr.p, f(&want["p"]), 1e-4, 1e-12);
    for (a, grp) in lr.groups.iter().enumerate() {
        close(
            "stratified obs",
            grp.observed,
            f(&want["obs"][a]),
            1e-12,
            0.0,
        );
        close(
            "stratified exp",
            grp.expected,
            f(&want["exp"][a]),
            1e-9,
            0.0,
        );
    }
}
