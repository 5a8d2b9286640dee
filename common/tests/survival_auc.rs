//! Time-dependent AUC against scikit-survival 0.28 `cumulative_dynamic_auc`:
//! reference values from bench/survival/auc_reference.py, stored in
//! common/tests/data/survival/auc/ (data sets there or in
//! ../shared/reference/survival).

use cohort_common::survival::auc::cumulative_dynamic_auc;
use cohort_common::survival::{SurvData, SurvivalError};
use serde_json::Value;
use std::path::PathBuf;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/survival/auc")
}

/// (surv of rows [a, b), score column) of a reference CSV.
fn load(csv: &str, score: &str, rows: Option<(usize, usize)>) -> (SurvData, Vec<f64>) {
    let path = match csv.strip_prefix("shared:") {
        Some(name) => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/reference/survival")
            .join(name),
        None => data_dir().join(csv),
    };
    let mut rdr = csv::Reader::from_path(&path).unwrap();
    let headers: Vec<String> = rdr.headers().unwrap().iter().map(String::from).collect();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (ti, ei, si) = (col("time"), col("event"), col(score));
    let recs: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    let (a, b) = rows.unwrap_or((0, recs.len()));
    let recs = &recs[a..b];
    let parse = |r: &csv::StringRecord, j: usize| -> f64 { r[j].parse().unwrap() };
    let surv = SurvData::new(
        recs.iter().map(|r| parse(r, ti)).collect(),
        recs.iter().map(|r| parse(r, ei) == 1.0).collect(),
    )
    .unwrap();
    (surv, recs.iter().map(|r| parse(r, si)).collect())
}

fn rows(v: &Value) -> Option<(usize, usize)> {
    v.as_array().map(|a| {
        (
            a[0].as_u64().unwrap() as usize,
            a[1].as_u64().unwrap() as usize,
        )
    })
}

#[test]
fn matches_scikit_survival() {
    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(data_dir().join("auc_reference.json")).unwrap(),
    )
    .unwrap();
    let mut checked = 0;
    for case in json["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let csv = case["csv"].as_str().unwrap();
        let score = case["score"].as_str().unwrap();
        let (train, _) = load(csv, score, rows(&case["train_rows"]));
        let (test, x) = load(csv, score, rows(&case["test_rows"]));
        let sign = case["sign"].as_f64().unwrap();
        let est: Vec<f64> = x.iter().map(|v| sign * v).collect();
        let times: Vec<f64> = case["times"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_f64().unwrap())
            .collect();
        let got = cumulative_dynamic_auc(&train, &test, &est, &times);
        if let Some(err) = case.get("error") {
            // sksurv: "censoring survival function is zero at one or more time points"
            let e = got.expect_err(name);
            assert!(
                err.as_str()
                    .unwrap()
                    .contains("censoring survival function is zero")
            );
            assert!(
                e.to_string()
                    .contains("censoring survival function is zero"),
                "{name}: {e}"
            );
            checked += 1;
            continue;
        }
        let got = got.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got.times, times, "{name}");
        let want: Vec<f64> = case["auc"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_f64().unwrap())
            .collect();
        assert_eq!(got.auc.len(), want.len());
        for (k, (g, w)) in got.auc.iter().zip(&want).enumerate() {
            assert!((g - w).abs() <= 1e-12, "{name} auc[{k}]: {g} vs sksurv {w}");
        }
        let wm = case["mean_auc"].as_f64().unwrap();
        assert!(
            (got.mean_auc - wm).abs() <= 1e-12,
            "{name} mean: {} vs sksurv {wm}",
            got.mean_auc
        );
        checked += 1;
    }
    assert_eq!(checked, 9);
}

#[test]
fn perfect_and_reversed_scores() {
    // Untied, uncensored: a score that orders all events perfectly has AUC 1,
    // its negation 0, at every horizon.
    let time: Vec<f64> = (1..=20).map(f64::from).collect();
    let surv = SurvData::new(time.clone(), vec![true; 20]).unwrap();
    let risk: Vec<f64> = time.iter().map(|t| -t).collect();
    let r = cumulative_dynamic_auc(&surv, &surv, &risk, &[5.0, 10.0, 15.0]).unwrap();
    assert!(r.auc.iter().all(|&a| (a - 1.0).abs() < 1e-15));
    assert!((r.mean_auc - 1.0).abs() < 1e-15);
    let neg: Vec<f64> = time.clone();
    let r = cumulative_dynamic_auc(&surv, &surv, &neg, &[5.0, 10.0]).unwrap();
    assert!(r.auc.iter().all(|&a| a.abs() < 1e-15));
    // A constant score: one tied run, the diagonal, AUC 1/2.
    let r = cumulative_dynamic_auc(&surv, &surv, &[3.0; 20], &[7.0]).unwrap();
    assert!((r.auc[0] - 0.5).abs() < 1e-15);
    // Unsorted, duplicated horizons come back sorted and unique.
    let r = cumulative_dynamic_auc(&surv, &surv, &risk, &[10.0, 5.0, 10.0]).unwrap();
    assert_eq!(r.times, vec![5.0, 10.0]);
}

#[test]
fn bad_input_is_an_error() {
    let surv = SurvData::new(vec![1.0, 2.0, 3.0, 4.0], vec![true, false, true, false]).unwrap();
    let x = [0.1, 0.2, 0.3, 0.4];
    assert!(matches!(
        cumulative_dynamic_auc(&surv, &surv, &x[..3], &[2.0]),
        Err(SurvivalError::Length { .. })
    ));
    match cumulative_dynamic_auc(&surv, &surv, &[0.1, f64::NAN, 0.3, 0.4], &[2.0]) {
        Err(SurvivalError::BadValue { row, .. }) => assert_eq!(row, 2),
        other => panic!("{other:?}"),
    }
    // Horizons must lie in [min time, max time).
    for t in [4.0, 0.5, f64::NAN] {
        assert!(
            cumulative_dynamic_auc(&surv, &surv, &x, &[t]).is_err(),
            "{t}"
        );
    }
    assert!(cumulative_dynamic_auc(&surv, &surv, &x, &[]).is_err());
    // No event by the horizon.
    let late = SurvData::new(vec![1.0, 2.0, 3.0, 4.0], vec![false, false, true, true]).unwrap();
    let e = cumulative_dynamic_auc(&late, &late, &x, &[1.5]).unwrap_err();
    assert!(e.to_string().contains("at least one event"), "{e}");
}
