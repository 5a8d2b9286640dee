//! The optimal cut-off against R: `maxstat.test(..., smethod = "LogRank")`
//! (maxstat 0.7-25) and R's `survdiff` brute force, from the reference JSON in
//! ../shared/reference/survival (the `maxstat` section of each data set).

use cohort_common::survival::cutoff::{
    CutCandidates, CutoffError, CutoffMethod, logrank_scores, maxstat, optimal_cutoff, p_lausen92,
    p_lausen94, quantile_type7, survdiff_scan,
};
use serde_json::Value;
use std::path::PathBuf;

fn reference_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference/survival")
}

struct Data {
    time: Vec<f64>,
    event: Vec<bool>,
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
        time: vec![],
        event: vec![],
        columns,
        rows,
    };
    data.time = data.column("time");
    data.event = data.column("event").iter().map(|&e| e == 1.0).collect();
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
        let got = maxstat(&d.time, &d.event, &x, 0.1, 0.9).unwrap();
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
            let got = survdiff_scan(&d.time, &d.event, &x, cand, 0.1, 0.9).unwrap();
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
    let m = optimal_cutoff(&d.time, &d.event, &x, CutoffMethod::Maxstat, 0.1, 0.9).unwrap();
    assert_eq!(m.cutoff, 19.0);
    assert_rel(
        "M",
        m.statistic,
        f(&json["maxstat"]["age"]["statistic"]),
        1e-12,
    );
    assert_eq!((m.n_low, m.n_high), (66, 366));
    let s = optimal_cutoff(&d.time, &d.event, &x, CutoffMethod::Survdiff, 0.1, 0.9).unwrap();
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
    let t = [1.0, 2.0, 3.0];
    let e = [true, true, false];
    assert!(matches!(
        maxstat(&t, &e, &[1.0, 2.0], 0.1, 0.9),
        Err(CutoffError::LengthMismatch { .. })
    ));
    assert_eq!(
        maxstat(&t, &e, &[1.0, f64::NAN, 2.0], 0.1, 0.9),
        Err(CutoffError::NonFinite {
            what: "score",
            row: 1
        })
    );
    assert!(matches!(
        maxstat(&t, &e, &[1.0, 1.0, 1.0], 0.1, 0.9),
        Err(CutoffError::NoCandidates { .. })
    ));
    assert!(matches!(
        maxstat(&t, &[false; 3], &[1.0, 2.0, 3.0], 0.0, 1.0),
        Err(CutoffError::ZeroVariance)
    ));
    assert!(matches!(
        maxstat(&t, &e, &[1.0, 2.0, 3.0], 0.9, 0.1),
        Err(CutoffError::BadProportions { .. })
    ));
}
