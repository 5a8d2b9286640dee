//! The optimal cut-off against R: `maxstat.test(..., smethod = "LogRank")`
//! (maxstat 0.7-25) and R's `survdiff` brute force, from the reference JSON in
//! ../shared/reference/survival (the `maxstat` section of each data set).

use cohort_common::survival::cutoff::{
    CutCandidates, CutoffMethod, logrank_scores, maxstat, optimal_cutoff, p_lausen92, p_lausen94,
    quantile_type7, survdiff_scan,
};
use cohort_common::survival::{SurvData, SurvivalError};
use serde_json::Value;
use std::path::PathBuf;

fn reference_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference/survival")
}

struct Data {
    surv: SurvData,
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Data {
    fn column(&self, name: &str) -> Vec<f64> {
        let j = self.columns.iter().position(|c| c == name).expect(name);
        self.rows.iter().map(|r| r[j].parse().unwrap()).collect()
    }
}

fn load(name: &str) -> (Data, Value) {
    let dir = reference_dir();
    let mut rdr = csv::Reader::from_path(dir.join(format!("{name}.csv"))).unwrap();
    let columns: Vec<String> = rdr.headers().unwrap().iter().map(String::from).collect();
    let rows: Vec<Vec<String>> = rdr
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    let mut data = Data {
        surv: SurvData::new(vec![0.0], vec![false]).unwrap(),
        columns,
        rows,
    };
    let event = data.column("event").iter().map(|&e| e == 1.0).collect();
    data.surv = SurvData::new(data.column("time"), event).unwrap();
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap())
            .unwrap();
    (data, json)
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn fs(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(f).collect()
}

fn assert_rel(what: &str, got: f64, want: f64, tol: f64) {
    let err = ((got - want) / want).abs();
    assert!(
        err <= tol || (got - want).abs() <= 1e-300,
        "{what}: got {got:e}, R {want:e}, rel err {err:e}"
    );
}

const CASES: &[(&str, &str)] = &[
    ("rossi", "age"),
    ("rossi", "prio"),
    ("ovarian", "age"),
    ("veteran", "karno"),
];

#[test]
fn maxstat_matches_r() {
    for &(name, var) in CASES {
        let (d, json) = load(name);
        let r = &json["maxstat"][var];
        let x = d.column(var);
        let got = maxstat(&d.surv, &x, 0.1, 0.9).unwrap();
        let ctx = format!("{name}/{var}");
        assert_eq!(got.cutoff, f(&r["cutpoint"]), "{ctx} cutpoint");
        assert_eq!(got.n_low as f64, f(&r["n_low"]), "{ctx} n_low");
        assert_eq!(got.n_high as f64, f(&r["n_high"]), "{ctx} n_high");
        assert_eq!(got.cuts, fs(&r["cuts"]), "{ctx} cuts");
        assert_rel(
            &format!("{ctx} M"),
            got.statistic,
            f(&r["statistic"]),
            1e-12,
        );
        for (i, (g, w)) in got.stats.iter().zip(fs(&r["stats"])).enumerate() {
            assert_rel(&format!("{ctx} stats[{i}]"), *g, w, 1e-12);
        }
        // R evaluates 1 - (pnorm(b) - pnorm(-b)), which cancels to ~1e-16
        // absolute; we use 2 (1 - Φ(b)) directly, hence not 1e-12 here.
        assert_rel(&format!("{ctx} Lau94"), got.p_lau94, f(&r["p_Lau94"]), 1e-9);
        assert_rel(
            &format!("{ctx} Lau92"),
            got.p_lau92,
            f(&r["p_Lau92"]),
            1e-12,
        );
    }
}

#[test]
fn survdiff_scan_matches_r() {
    for &(name, var) in CASES {
        let (d, json) = load(name);
        let x = d.column(var);
        for (key, cand) in [
            ("bruteforce_survdiff_maxstat_cuts", CutCandidates::Maxstat),
            ("bruteforce_survdiff_quantile_cuts", CutCandidates::Quantile),
        ] {
            let r = &json["maxstat"][var][key];
            let ctx = format!("{name}/{var}/{key}");
            let got = survdiff_scan(&d.surv, &x, cand, 0.1, 0.9).unwrap();
            assert_eq!(got.cuts, fs(&r["cuts"]), "{ctx} cuts");
            for (i, (g, w)) in got.chisq.iter().zip(fs(&r["chisq"])).enumerate() {
                assert_rel(&format!("{ctx} chisq[{i}]"), *g, w, 1e-11);
            }
            assert_eq!(got.best_cut, f(&r["best_cut"]), "{ctx} best_cut");
            assert_rel(&ctx, got.max_chisq, f(&r["max_chisq"]), 1e-11);
            assert_rel(&ctx, got.max_z, f(&r["max_z"]), 1e-11);
            assert_rel(&ctx, got.p_unadjusted, f(&r["p_unadjusted"]), 1e-9);
            assert_eq!(got.n_low as f64, f(&r["n_low"]), "{ctx} n_low");
            assert_eq!(got.n_high as f64, f(&r["n_high"]), "{ctx} n_high");
            if cand == CutCandidates::Quantile {
                assert_rel(&ctx, got.q_low.unwrap(), f(&r["q10"]), 1e-15);
                assert_rel(&ctx, got.q_high.unwrap(), f(&r["q90"]), 1e-15);
            }
        }
    }
}

#[test]
fn optimal_cutoff_reports_both_methods() {
    let (d, json) = load("rossi");
    let x = d.column("age");
    let m = optimal_cutoff(&d.surv, &x, CutoffMethod::Maxstat, 0.1, 0.9).unwrap();
    assert_eq!(m.cutoff, 19.0);
    assert_rel(
        "M",
        m.statistic,
        f(&json["maxstat"]["age"]["statistic"]),
        1e-12,
    );
    assert_eq!((m.n_low, m.n_high), (66, 366));
    let s = optimal_cutoff(&d.surv, &x, CutoffMethod::Survdiff, 0.1, 0.9).unwrap();
    let r = &json["maxstat"]["age"]["bruteforce_survdiff_quantile_cuts"];
    assert_eq!(s.cutoff, f(&r["best_cut"]));
    assert_rel("chisq", s.statistic, f(&r["max_chisq"]), 1e-11);
    let js = serde_json::to_value(&s).unwrap();
    for key in [
        "method",
        "cutoff",
        "statistic",
        "p_lau92",
        "p_lau94",
        "n_low",
        "n_high",
        "min_prop",
        "max_prop",
    ] {
        assert!(js.get(key).is_some(), "missing {key}");
    }
    assert_eq!(js["method"], "survdiff");
}

#[test]
fn scores_and_helpers_match_hand_values() {
    // Untied: Savage scores δ_i - Σ_{t_j <= t_i} δ_j / n_j.
    let t = [1.0, 2.0, 3.0, 4.0];
    let e = [true, false, true, true];
    let s = logrank_scores(&t, &e);
    let want = [1.0 - 0.25, -0.25, 1.0 - 0.25 - 0.5, 1.0 - 0.25 - 0.5 - 1.0];
    for (g, w) in s.iter().zip(want) {
        assert!((g - w).abs() < 1e-15);
    }
    // Ties: both subjects at t = 1 get the "max" rank 2, so f = 1/(4 - 2 + 1).
    let s = logrank_scores(&[1.0, 1.0, 2.0, 3.0], &[true, true, true, false]);
    assert!((s[0] - (1.0 - 2.0 / 3.0)).abs() < 1e-15);
    assert!((s[2] - (1.0 - 2.0 / 3.0 - 0.5)).abs() < 1e-15);
    // Lau92 is 1 below b = 1; Lau94 with one candidate is the two-sided normal p.
    assert_eq!(p_lausen92(0.5, 0.1, 0.9), 1.0);
    assert!((p_lausen94(1.959963984540054, 100, &[50]) - 0.05).abs() < 1e-15);
    // R: quantile(c(1, 2, 3, 4, 10), c(.1, .9)) = 1.4, 7.6
    let q = [1.0, 2.0, 3.0, 4.0, 10.0];
    assert!((quantile_type7(&q, 0.1) - 1.4).abs() < 1e-15);
    assert!((quantile_type7(&q, 0.9) - 7.6).abs() < 1e-14);
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let d = SurvData::new(vec![1.0, 2.0, 3.0], vec![true, true, false]).unwrap();
    assert!(matches!(
        maxstat(&d, &[1.0, 2.0], 0.1, 0.9),
        Err(SurvivalError::Length { .. })
    ));
    match maxstat(&d, &[1.0, f64::NAN, 2.0], 0.1, 0.9) {
        Err(SurvivalError::BadValue { row, field, .. }) => {
            assert_eq!((row, field.as_str()), (2, "score"))
        }
        other => panic!("{other:?}"),
    }
    let e = maxstat(&d, &[1.0, 1.0, 1.0], 0.1, 0.9).unwrap_err();
    assert!(e.to_string().contains("no candidate cut-point"), "{e}");
    let none = SurvData::new(vec![1.0, 2.0, 3.0], vec![false; 3]).unwrap();
    assert!(matches!(
        maxstat(&none, &[1.0, 2.0, 3.0], 0.0, 1.0),
        Err(SurvivalError::NoEvents(_))
    ));
    assert!(matches!(
        maxstat(&d, &[1.0, 2.0, 3.0], 0.9, 0.1),
        Err(SurvivalError::Invalid(_))
    ));
    assert!(matches!(
        survdiff_scan(&d, &[1.0, 1.0, 1.0], CutCandidates::Quantile, 0.1, 0.9),
        Err(SurvivalError::Invalid(_))
    ));
}

/// Further data sets computed with R by bench/survival/cutoff_reference.R:
/// heavy ties in the score and in time, and non-default proportions.
#[test]
fn extra_data_sets_match_r() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/survival");
    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("cutoff/cutoff_reference.json")).unwrap(),
    )
    .unwrap();
    for case in json["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let mut rdr =
            csv::Reader::from_path(dir.join("auc").join(case["csv"].as_str().unwrap())).unwrap();
        let headers: Vec<String> = rdr.headers().unwrap().iter().map(String::from).collect();
        let rows: Vec<Vec<f64>> = rdr
            .records()
            .map(|r| r.unwrap().iter().map(|v| v.parse().unwrap()).collect())
            .collect();
        let col = |c: &str| -> Vec<f64> {
            let j = headers.iter().position(|h| h == c).unwrap();
            rows.iter().map(|r| r[j]).collect()
        };
        let surv = SurvData::new(
            col("time"),
            col("event").iter().map(|&e| e == 1.0).collect(),
        )
        .unwrap();
        let x = col(case["variable"].as_str().unwrap());
        let (lo, hi) = (f(&case["minprop"]), f(&case["maxprop"]));
        let m = maxstat(&surv, &x, lo, hi).unwrap();
        assert_eq!(m.cutoff, f(&case["cutpoint"]), "{name} cutpoint");
        assert_eq!(m.cuts, fs(&case["cuts"]), "{name} cuts");
        for (i, (g, w)) in m.stats.iter().zip(fs(&case["stats"])).enumerate() {
            assert_rel(&format!("{name} stats[{i}]"), *g, w, 1e-12);
        }
        assert_eq!(m.n_low as f64, f(&case["n_low"]));
        assert_eq!(m.n_high as f64, f(&case["n_high"]));
        // R's 1 - (pnorm(b) - pnorm(-b)) is only good to ~1e-16 absolute,
        // which matters where p itself is ~1e-15.
        for (got, want) in [
            (m.p_lau94, f(&case["p_Lau94"])),
            (m.p_lau92, f(&case["p_Lau92"])),
        ] {
            assert!(
                (got - want).abs() <= 1e-9 * want.abs() + 1e-15,
                "{name}: p {got:e} vs R {want:e}"
            );
        }
        for (key, cand) in [
            ("survdiff_maxstat_cuts", CutCandidates::Maxstat),
            ("survdiff_quantile_cuts", CutCandidates::Quantile),
        ] {
            let r = &case[key];
            let s = survdiff_scan(&surv, &x, cand, lo, hi).unwrap();
            assert_eq!(s.cuts, fs(&r["cuts"]), "{name} {key} cuts");
            for (i, (g, w)) in s.chisq.iter().zip(fs(&r["chisq"])).enumerate() {
                assert_rel(&format!("{name} {key} chisq[{i}]"), *g, w, 1e-10);
            }
            assert_eq!(s.best_cut, f(&r["best_cut"]), "{name} {key} best cut");
        }
    }
}

/// O(n log n): 100,000 subjects with 100,000 distinct scores.
#[test]
fn large_cohort_is_fast() {
    let n = 100_000;
    let mut state = 88172645463325252u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let x: Vec<f64> = (0..n).map(|_| next()).collect();
    let time: Vec<f64> = x
        .iter()
        .map(|&v| (200.0 * next() * (1.5 - v)).ceil())
        .collect();
    let event: Vec<bool> = (0..n).map(|_| next() < 0.7).collect();
    let surv = SurvData::new(time, event).unwrap();
    let t0 = std::time::Instant::now();
    let m = maxstat(&surv, &x, 0.1, 0.9).unwrap();
    let s = survdiff_scan(&surv, &x, CutCandidates::Quantile, 0.1, 0.9).unwrap();
    let secs = t0.elapsed().as_secs_f64();
    assert!(m.cuts.len() > 70_000 && s.cuts.len() > 70_000);
    assert!(m.statistic > 10.0 && s.max_chisq > 100.0);
    assert!(secs < 5.0, "took {secs} s");
}
