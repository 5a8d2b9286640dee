//! `cohort synth` and `cohort validate` as a user runs them: the real binary,
//! real files.

use std::path::Path;
use std::process::Command;

fn cohort() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cohort"))
}

fn synth(out: &Path, extra: &[&str]) {
    let status = cohort()
        .args(["synth", "--quiet", "--out", out.to_str().unwrap()])
        .args(extra)
        .status()
        .unwrap();
    assert!(status.success());
}

fn validate_json(cohort_dir: &Path, extra: &[&str]) -> (i32, serde_json::Value) {
    let out = cohort()
        .args(["validate", "--json", cohort_dir.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap();
    let value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), value)
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn default_patient_count_splits_as_in_the_study() {
    // The study's 1636 patients with tiny volumes, to keep the test fast; the
    // split depends only on the manifest.
    let dir = tempfile::tempdir().unwrap();
    synth(dir.path(), &["--shape", "6x6x6", "--sequences", "t1"]);
    let (code, v) = validate_json(dir.path(), &[]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["valid"], true);
    assert_eq!(v["patients"], 1636);
    let splits = &v["summary"]["splits"];
    assert_eq!(splits["train"]["patients"], 878);
    assert_eq!(splits["validation"]["patients"], 376);
    assert_eq!(splits["test"]["patients"], 382);
    assert!(splits.get("excluded").is_none());
    let rate = v["summary"]["all"]["dfs"]["event_rate"].as_f64().unwrap();
    assert!((0.15..0.40).contains(&rate), "DFS event rate {rate}");
    let fu = splits["test"]["dfs"]["median_follow_up_months"]
        .as_f64()
        .unwrap();
    assert!((55.0..65.0).contains(&fu), "test-cohort follow-up {fu}");
    assert_eq!(v["errors"], 0);
}

#[test]
fn same_seed_gives_byte_identical_files_and_another_seed_does_not() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let args = ["--patients", "24", "--shape", "16x16x12"];
    synth(a.path(), &args);
    synth(b.path(), &args);
    synth(c.path(), &[&args[..], &["--seed", "8"]].concat());
    let (fa, fb, fc) = (files(a.path()), files(b.path()), files(c.path()));
    assert_eq!(fa.len(), 2 + 24 * 3);
    assert!(fa == fb, "same seed must give identical files");
    let names = |f: &[(String, Vec<u8>)]| f.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&fa), names(&fc));
    assert!(
        fa.iter().zip(&fc).all(|(x, y)| x.1 != y.1),
        "another seed changes every file"
    );
}

#[test]
fn validate_reports_a_broken_cohort_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    synth(
        dir.path(),
        &[
            "--patients",
            "12",
            "--shape",
            "8x8x8",
            "--sequences",
            "t1,t2",
        ],
    );
    let manifest = dir.path().join("clinical.csv");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[3] = lines[3].replacen("NPC0003,", "NPC0002,", 1);
    std::fs::write(&manifest, lines.join("\n") + "\n").unwrap();
    std::fs::remove_file(dir.path().join("volumes/NPC0005/t2.nii.gz")).unwrap();

    let (code, v) = validate_json(dir.path(), &[]);
    assert_eq!(code, 2, "{v:#}");
    assert_eq!(v["valid"], false);
    let problems = v["problems"].as_array().unwrap();
    let find = |column: &str| {
        problems
            .iter()
            .find(|p| p["column"] == column)
            .unwrap_or_else(|| panic!("no problem in {column}: {problems:#?}"))
    };
    assert_eq!(find("patient_id")["row"], 3);
    assert_eq!(find("mri_t2")["row"], 5);
    assert!(
        find("mri_t2")["message"]
            .as_str()
            .unwrap()
            .contains("NPC0005/t2.nii.gz")
    );

    // The human form names the same problems.
    let out = cohort()
        .args(["validate", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("clinical.csv row 3, column patient_id"),
        "{text}"
    );
    assert!(text.contains("errors"), "{text}");
}

#[test]
fn a_missing_manifest_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = cohort()
        .args(["validate", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("clinical.csv does not exist"), "{err}");
}
