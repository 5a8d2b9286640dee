//! Shared helpers of the `survival_*` integration tests: where the R
//! reference files are, loading them, and the tolerance checks of the issue.
#![allow(dead_code)]

use cohort_common::survival::table::Table;
use serde_json::Value;
use std::path::PathBuf;

/// `/work/shared/reference/survival` computed from the workspace root
/// (`common/` is CARGO_MANIFEST_DIR; the shared folder sits next to the
/// workspace).
pub fn shared_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference/survival")
}

/// Extra data sets (lung, lung_complete, colon, pbc) computed with R by
/// `bench/survival/reference_extra.sh`.
pub fn local_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/survival/r")
}

/// Every available (name, csv table, reference json), shared ones first.
pub fn datasets() -> Vec<(String, Table, Value)> {
    let mut out = Vec::new();
    for dir in [shared_dir(), local_dir()] {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut names: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().to_string();
                n.strip_suffix(".json").map(str::to_string)
            })
            .filter(|n| dir.join(format!("{n}.csv")).exists())
            .collect();
        names.sort();
        for name in names {
            let table = Table::read(&dir.join(format!("{name}.csv"))).expect("reference csv");
            let json: Value = serde_json::from_str(
                &std::fs::read_to_string(dir.join(format!("{name}.json"))).expect("json"),
            )
            .expect("reference json parses");
            out.push((name, table, json));
        }
    }
    assert!(
        out.len() >= 3,
        "reference data sets not found under {}",
        shared_dir().display()
    );
    out
}

pub fn f(v: &Value) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("expected a number, got {v}"))
}

/// `null` means NA / +Inf in the reference files.
pub fn opt(v: &Value) -> Option<f64> {
    v.as_f64()
}

pub fn arr(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array, got {v}"))
        .iter()
        .map(f)
        .collect()
}

pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array of strings")
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect()
}

/// Relative check with an absolute floor for values near zero.
#[track_caller]
pub fn close(what: &str, got: f64, want: f64, rel: f64, abs: f64) {
    let ok = (got - want).abs() <= rel * want.abs() + abs || (got.is_nan() && want.is_nan());
    assert!(
        ok,
        "{what}: got {got:.15e}, R {want:.15e} (rel {:.2e})",
        ((got - want) / want).abs()
    );
}

/// The p-value rule: 1e-4 relative or 1e-12 absolute; where the reference
/// p underflows, compare log p instead.
#[track_caller]
pub fn close_p(what: &str, p: f64, log_p: f64, want_p: f64, want_log_p: Option<f64>) {
    if want_p > 0.0 {
        close(what, p, want_p, 1e-4, 1e-12);
    }
    if let Some(lp) = want_log_p {
        close(&format!("{what} (log p)"), log_p, lp, 1e-4, 1e-10);
    }
}
