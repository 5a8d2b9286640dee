//! `cohort stats cutoff` and `cohort stats auc` as a user runs them: the real
//! binary on the reference CSVs, JSON checked against R maxstat / survdiff and
//! scikit-survival numbers, figures written, errors named.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn reference(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/reference/survival")
        .join(name)
}

fn stats(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cohort"))
        .arg("stats")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn json(args: &[&str]) -> Value {
    let (code, out, err) = stats(args);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn rel(a: f64, b: f64) -> f64 {
    ((a - b) / b).abs()
}

#[test]
fn cutoff_json_matches_r() {
    let csv = reference("veteran.csv");
    let csv = csv.to_str().unwrap();
    let base = [
        "cutoff", "--data", csv, "--time", "time", "--event", "event",
    ];
    let m = json(&[&base[..], &["--score", "karno", "--json"]].concat());
    // R: maxstat.test(Surv(time, event) ~ karno, smethod = "LogRank").
    assert_eq!(m["method"], "maxstat");
    assert_eq!(m["cutoff"], 40.0);
    assert!(rel(m["statistic"].as_f64().unwrap(), 4.61806159115936) < 1e-12);
    assert!(rel(m["p_lau94"].as_f64().unwrap(), 1.9162706028506e-05) < 1e-9);
    assert!(rel(m["p_lau92"].as_f64().unwrap(), 0.00018856166026367) < 1e-9);
    assert_eq!(
        (m["n_low"].as_u64(), m["n_high"].as_u64()),
        (Some(38), Some(99))
    );
    assert_eq!(
        (m["min_prop"].as_f64(), m["max_prop"].as_f64()),
        (Some(0.1), Some(0.9))
    );
    let keys: Vec<&String> = m.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 9, "{keys:?}");

    // R: survdiff brute force over the quantile candidates.
    let s = json(
        &[
            &base[..],
            &["--score", "karno", "--method", "survdiff", "--json"],
        ]
        .concat(),
    );
    assert_eq!(s["method"], "survdiff");
    assert_eq!(s["cutoff"], 40.0);
    assert!(rel(s["statistic"].as_f64().unwrap(), 44.4950194317334) < 1e-11);

    // Other proportions change the candidates (the best cut stays here).
    let p = json(
        &[
            &base[..],
            &[
                "--score",
                "karno",
                "--min-prop",
                "0.3",
                "--max-prop",
                "0.7",
                "--json",
            ],
        ]
        .concat(),
    );
    assert_eq!(p["min_prop"], 0.3);
    assert!(p["n_low"].as_u64().unwrap() >= 41);
}

#[test]
fn cutoff_human_output_and_plot() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("groups.png");
    let svg = dir.path().join("groups.svg");
    let csv = reference("rossi.csv");
    for fig in [&png, &svg] {
        let (code, out, err) = stats(&[
            "cutoff",
            "--data",
            csv.to_str().unwrap(),
            "--time",
            "time",
            "--event",
            "event",
            "--score",
            "age",
            "--plot",
            fig.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains("Maximally selected LogRank statistics"),
            "{out}"
        );
        assert!(out.contains("estimated cut-point: 19"), "{out}");
        assert!(out.contains("n = 66") && out.contains("n = 366"), "{out}");
    }
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.contains("age \u{2264} 19") && text.contains("Number at risk"));
    // No temporary files are left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

#[test]
fn auc_json_matches_scikit_survival() {
    let csv = reference("veteran.csv");
    let v = json(&[
        "auc",
        "--data",
        csv.to_str().unwrap(),
        "--time",
        "time",
        "--event",
        "event",
        "--score",
        "karno",
        "--reverse",
        "--times",
        "30,90,180,365",
        "--json",
    ]);
    // sksurv 0.28 cumulative_dynamic_auc(y, y, -karno, [30, 90, 180, 365]).
    let want = [
        0.8430657312242731,
        0.8270574145797865,
        0.7123386095772744,
        0.7116415565509673,
    ];
    let got: Vec<f64> = v["auc"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_f64().unwrap())
        .collect();
    assert_eq!(got.len(), 4);
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-12, "{g} vs {w}");
    }
    assert!((v["mean_auc"].as_f64().unwrap() - 0.7850764889823065).abs() < 1e-12);
    assert_eq!(v["times"][3], 365.0);
}

#[test]
fn errors_name_the_problem() {
    let rossi = reference("rossi.csv");
    let rossi = rossi.to_str().unwrap();
    let (code, _, err) = stats(&[
        "auc", "--data", rossi, "--time", "time", "--event", "event", "--score", "prio", "--times",
        "10,20",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("censoring survival function is zero"), "{err}");
    let (code, _, err) = stats(&[
        "auc", "--data", rossi, "--time", "time", "--event", "event", "--score", "prio", "--times",
        "60",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("within the follow-up"), "{err}");
    let (code, _, err) = stats(&[
        "cutoff", "--data", rossi, "--time", "time", "--event", "event", "--score", "nope",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("no column \"nope\""), "{err}");
    let (code, _, err) = stats(&[
        "cutoff",
        "--data",
        rossi,
        "--time",
        "time",
        "--event",
        "event",
        "--score",
        "age",
        "--plot",
        "/tmp/x.pdf",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains(".svg or .png"), "{err}");
}
