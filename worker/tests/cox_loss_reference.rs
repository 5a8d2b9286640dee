//! The Cox loss against R's `coxph` (reference values in ../shared) and
//! against `common::survival`'s Cox fit, for a fixed linear predictor.

use std::path::PathBuf;

use cohort_common::survival::cox::{CoxOptions, Ties, cox_fit};
use cohort_common::survival::data::Design;
use cohort_common::survival::table::Table;
use cohort_worker::cox_loss::cox_loss_and_grad;

fn reference_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference/survival")
}

fn load(name: &str) -> (Table, serde_json::Value) {
    let dir = reference_dir();
    let table = Table::read(&dir.join(format!("{name}.csv"))).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap())
            .unwrap();
    (table, json)
}

fn linear_predictor(table: &Table, names: &[String], beta: &[f64]) -> Vec<f64> {
    let columns: Vec<Vec<f64>> = names.iter().map(|n| table.numeric(n).unwrap()).collect();
    (0..table.n_rows())
        .map(|i| columns.iter().zip(beta).map(|(c, b)| c[i] * b).sum())
        .collect()
}

#[test]
fn loss_times_events_is_minus_r_loglik_and_score_vanishes_at_the_mle() {
    for name in ["rossi", "veteran", "ovarian"] {
        let (table, json) = load(name);
        let surv = table.surv("time", "event").unwrap();
        let names: Vec<String> = serde_json::from_value(json["cox"]["covariates"].clone()).unwrap();
        for (ties, key) in [(Ties::Efron, "efron"), (Ties::Breslow, "breslow")] {
            let fit = &json["cox"][key];
            // The tight fit is the MLE to ~1e-10; the loglik is flat there.
            let tight = &fit["convergence_check"]["coef_tight"];
            let beta: Vec<f64> = names.iter().map(|n| tight[n].as_f64().unwrap()).collect();
            let eta = linear_predictor(&table, &names, &beta);
            let got = cox_loss_and_grad(&eta, surv.time(), surv.event(), ties).unwrap();
            let r_loglik = fit["loglik"].as_f64().unwrap();
            let ours = -got.loss * got.events as f64;
            assert!(
                ((ours - r_loglik) / r_loglik).abs() < 1e-9,
                "{name} {key}: {ours} vs R {r_loglik}"
            );

            // At eta = 0 the loss is R's null log-likelihood.
            let zero =
                cox_loss_and_grad(&vec![0.0; eta.len()], surv.time(), surv.event(), ties).unwrap();
            let null = fit["loglik_null"].as_f64().unwrap();
            assert!(
                ((-zero.loss * zero.events as f64 - null) / null).abs() < 1e-12,
                "{name} {key} null"
            );

            // The score X^T grad is zero at the MLE (relative to its size at 0).
            for n in &names {
                let x = table.numeric(n).unwrap();
                let at_mle: f64 = x.iter().zip(&got.grad).map(|(a, g)| a * g).sum();
                let at_zero: f64 = x.iter().zip(&zero.grad).map(|(a, g)| a * g).sum();
                assert!(
                    at_mle.abs() <= 1e-8 * at_zero.abs().max(1e-3),
                    "{name} {key} {n}: {at_mle} vs {at_zero}"
                );
            }
        }
    }
}

#[test]
fn loss_agrees_with_common_survival_cox_fit() {
    let (table, json) = load("rossi");
    let surv = table.surv("time", "event").unwrap();
    let names: Vec<String> = serde_json::from_value(json["cox"]["covariates"].clone()).unwrap();
    let design = Design::from_columns(
        names
            .iter()
            .map(|n| (n.clone(), table.numeric(n).unwrap()))
            .collect(),
    )
    .unwrap();
    for ties in [Ties::Efron, Ties::Breslow] {
        let opts = CoxOptions {
            ties,
            eps: 1e-13,
            iter_max: 100,
            ..CoxOptions::default()
        };
        let fit = cox_fit(&surv, &design, None, None, &opts).unwrap();
        let eta = linear_predictor(&table, &names, &fit.coef);
        let got = cox_loss_and_grad(&eta, surv.time(), surv.event(), ties).unwrap();
        let ours = -got.loss * got.events as f64;
        assert!(
            ((ours - fit.loglik) / fit.loglik).abs() < 1e-12,
            "{ties:?}: {ours} vs {}",
            fit.loglik
        );
    }
}
