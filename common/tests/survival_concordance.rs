//! Harrell's C against R's `concordance()` on every reference data set: of
//! the Cox linear predictor (main and univariable models, both tie methods)
//! and of a raw covariate, value to 1e-9, the pair counts exactly, the
//! jackknife SE and R's `se_cox` to 1e-6; and the properties
//! C(score) + C(-score) = 1 and invariance of the Cox HR to shifting a
//! covariate.

mod survival_support;

use cohort_common::survival::Design;
use cohort_common::survival::concordance::{bootstrap_ci, concordance};
use cohort_common::survival::cox::{CoxOptions, Ties, cox_fit};
use serde_json::Value;
use survival_support::*;

fn check(label: &str, got: &cohort_common::survival::concordance::Concordance, r: &Value) {
    close(&format!("{label} C"), got.c, f(&r["value"]), 1e-9, 0.0);
    close(&format!("{label} se"), got.se, f(&r["se"]), 1e-6, 0.0);
    if let Some(se_cox) = opt(&r["se_cox"]) {
        close(&format!("{label} se_cox"), got.se_cox, se_cox, 1e-6, 0.0);
    }
    for (k, v) in [
        ("concordant", got.concordant),
        ("discordant", got.discordant),
        ("tied_x", got.tied_x),
        ("tied_y", got.tied_y),
        ("tied_xy", got.tied_xy),
    ] {
        assert_eq!(v, f(&r[k]), "{label} {k}");
    }
}

#[test]
fn concordance_of_cox_fits_matches_r() {
    for (name, table, json) in datasets() {
        let data = table.surv("time", "event").unwrap();
        for (model, covs) in [
            ("main", strings(&json["cox"]["covariates"])),
            (
                "univariable",
                vec![
                    json["cox_univariable"]["covariate"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                ],
            ),
        ] {
            let x = table.design(&covs, &[]).unwrap();
            for (ties, key) in [(Ties::Efron, "efron"), (Ties::Breslow, "breslow")] {
                let opts = CoxOptions {
                    ties,
                    ..Default::default()
                };
                let fit = cox_fit(&data, &x, None, None, &opts).unwrap();
                let lp = fit.linear_predictors(&x);
                let got = concordance(&data, &lp, None, None).unwrap();
                let r = if model == "main" {
                    &json["cox"][key]["concordance"]
                } else {
                    &json["cox_univariable"][key]["concordance"]
                };
                check(&format!("{name} {model} {key}"), &got, r);
            }
        }
    }
}

#[test]
fn concordance_of_raw_covariate_matches_r() {
    for (name, table, json) in datasets() {
        let r = &json["concordance_raw_covariate"];
        let data = table.surv("time", "event").unwrap();
        let x = table.numeric(r["covariate"].as_str().unwrap()).unwrap();
        let got = concordance(&data, &x, None, None).unwrap();
        check(&format!("{name} raw"), &got, r);
    }
}

#[test]
fn reversed_score_gives_one_minus_c() {
    for (name, table, json) in datasets() {
        let data = table.surv("time", "event").unwrap();
        let col = json["concordance_raw_covariate"]["covariate"]
            .as_str()
            .unwrap();
        let x = table.numeric(col).unwrap();
        let neg: Vec<f64> = x.iter().map(|v| -v).collect();
        let a = concordance(&data, &x, None, None).unwrap();
        let b = concordance(&data, &neg, None, None).unwrap();
        assert!((a.c + b.c - 1.0).abs() < 1e-14, "{name}: {} + {}", a.c, b.c);
        assert_eq!(a.concordant, b.discordant);
        assert!((a.se - b.se).abs() < 1e-14);
        let ci = bootstrap_ci(&data, &x, None, 50, 0.95, 3).unwrap();
        assert!(ci.lower <= ci.upper);
    }
}

#[test]
fn hazard_ratio_is_invariant_to_shifting_a_covariate() {
    for (name, table, json) in datasets() {
        let covs = strings(&json["cox"]["covariates"]);
        let data = table.surv("time", "event").unwrap();
        let x = table.design(&covs, &[]).unwrap();
        let shifted = Design::from_columns(
            (0..covs.len())
                .map(|j| {
                    let shift = if j == 0 { 1234.5 } else { -7.25 * j as f64 };
                    (
                        covs[j].clone(),
                        x.column(j).iter().map(|v| v + shift).collect(),
                    )
                })
                .collect(),
        )
        .unwrap();
        let a = cox_fit(&data, &x, None, None, &CoxOptions::default()).unwrap();
        let b = cox_fit(&data, &shifted, None, None, &CoxOptions::default()).unwrap();
        for (j, (ta, tb)) in a.terms(0.95).iter().zip(b.terms(0.95)).enumerate() {
            close(&format!("{name} hr {j}"), tb.hr, ta.hr, 1e-9, 0.0);
            close(&format!("{name} se {j}"), tb.se, ta.se, 1e-9, 0.0);
        }
        close(&format!("{name} loglik"), b.loglik, a.loglik, 1e-12, 0.0);
    }
}
