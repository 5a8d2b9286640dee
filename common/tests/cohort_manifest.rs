//! A suite of broken manifests: each must be answered by the right problem,
//! naming its row and column, and no problem may hide another.

use bytes::Bytes;
use cohort_common::cohort::{Problem, Severity, manifest, validate};
use cohort_common::store::Store;

const HEADER: &str = "patient_id,diagnosis_date,mri_t1,mri_t2,dfs_months,dfs_event,dmfs_months,dmfs_event,age,sex,t_stage,n_stage,ebv_dna,concurrent_chemo";

fn row(id: &str) -> String {
    format!("{id},2012-05-01,v/{id}_t1.nii.gz,v/{id}_t2.nii.gz,40.5,1,50.25,0,51,M,T3,N1,1200,1")
}

/// A manifest of three good rows with row 2 replaced by `bad`.
fn with_bad_row(bad: &str) -> String {
    format!("{HEADER}\n{}\n{bad}\n{}\n", row("P1"), row("P3"))
}

fn errors(csv: &str) -> Vec<Problem> {
    manifest::parse(csv.as_bytes(), "clinical.csv")
        .problems
        .problems
        .into_iter()
        .filter(|p| p.severity == Severity::Error)
        .collect()
}

/// Asserts exactly one error, at `row` / `column`, whose message contains `needle`.
fn assert_one_error(csv: &str, row: Option<usize>, column: Option<&str>, needle: &str) {
    let errs = errors(csv);
    assert_eq!(errs.len(), 1, "expected one error, got {errs:#?}");
    let e = &errs[0];
    assert_eq!(e.row, row, "{e}");
    assert_eq!(e.column.as_deref(), column, "{e}");
    assert!(e.message.contains(needle), "{e} should mention {needle:?}");
    assert!(e.to_string().contains("clinical.csv"), "{e}");
}

#[test]
fn a_good_manifest_parses_completely() {
    let csv = format!("{HEADER}\n{}\n{}\n", row("P1"), row("P2"));
    let parsed = manifest::parse(csv.as_bytes(), "clinical.csv");
    assert!(parsed.problems.problems.is_empty(), "{}", parsed.problems);
    let m = parsed.manifest;
    assert_eq!(m.sequences, vec!["t1", "t2"]);
    assert_eq!(m.patients.len(), 2);
    let p = &m.patients[1];
    assert_eq!((p.id.as_str(), p.row), ("P2", 2));
    assert_eq!(p.volumes, vec!["v/P2_t1.nii.gz", "v/P2_t2.nii.gz"]);
    assert_eq!(
        (p.dfs.months, p.dfs.event, p.dmfs.months, p.dmfs.event),
        (40.5, true, 50.25, false)
    );
    assert_eq!(
        m.covariate_names,
        vec![
            "age",
            "sex",
            "t_stage",
            "n_stage",
            "ebv_dna",
            "concurrent_chemo"
        ]
    );
    assert_eq!(m.covariate("age").unwrap()[0].as_f64(), Some(51.0));
}

#[test]
fn missing_required_column() {
    let csv = "patient_id,diagnosis_date,mri_t1,dfs_months,dfs_event,dmfs_months\nP1,2012-01-01,a.nii,1,1,1\n";
    let errs = errors(csv);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].column.as_deref(), Some("dmfs_event"));
    assert_eq!(errs[0].row, None);
    assert!(errs[0].message.contains("missing required column"));
}

#[test]
fn no_sequence_column() {
    let csv = "patient_id,diagnosis_date,dfs_months,dfs_event,dmfs_months,dmfs_event\nP1,2012-01-01,1,1,1,0\n";
    assert_one_error(csv, None, None, "no MRI sequence column");
}

#[test]
fn duplicate_id() {
    let csv = with_bad_row(&row("P1"));
    assert_one_error(
        &csv,
        Some(2),
        Some("patient_id"),
        "duplicate patient id \"P1\" (first in row 1)",
    );
}

#[test]
fn missing_id() {
    assert_one_error(
        &with_bad_row(&row("")),
        Some(2),
        Some("patient_id"),
        "missing patient id",
    );
}

#[test]
fn bad_dates() {
    for bad in ["2012-13-01", "01/05/2012", "", "2012-02-30"] {
        let csv = with_bad_row(&row("P2").replace("2012-05-01", bad));
        assert_one_error(&csv, Some(2), Some("diagnosis_date"), "bad date");
    }
}

#[test]
fn bad_times() {
    let cases = [
        ("-3", "negative time"),
        ("NaN", "missing time"),
        ("", "missing time"),
        ("inf", "not finite"),
        ("abc", "not a number"),
    ];
    for (value, needle) in cases {
        let csv = with_bad_row(&row("P2").replacen("40.5", value, 1));
        assert_one_error(&csv, Some(2), Some("dfs_months"), needle);
        let csv = with_bad_row(&row("P2").replacen("50.25", value, 1));
        assert_one_error(&csv, Some(2), Some("dmfs_months"), needle);
    }
}

#[test]
fn bad_events() {
    for value in ["2", "yes", "-1", "0.5"] {
        let csv = with_bad_row(&row("P2").replacen(",1,50.25", &format!(",{value},50.25"), 1));
        assert_one_error(&csv, Some(2), Some("dfs_event"), "event must be 0 or 1");
    }
    let csv = with_bad_row(&row("P2").replacen("50.25,0", "50.25,", 1));
    assert_one_error(&csv, Some(2), Some("dmfs_event"), "missing event indicator");
}

#[test]
fn unsafe_volume_paths() {
    for (path, needle) in [
        ("/etc/passwd", "absolute"),
        ("../../secret.nii", "'..'"),
        ("v/../../x.nii", "'..'"),
        ("", "missing volume path"),
    ] {
        let csv = with_bad_row(&row("P2").replace("v/P2_t2.nii.gz", path));
        assert_one_error(&csv, Some(2), Some("mri_t2"), needle);
    }
}

#[test]
fn bad_covariates() {
    let csv = with_bad_row(&row("P2").replace(",1200,1", ",1200,2"));
    assert_one_error(&csv, Some(2), Some("concurrent_chemo"), "must be 0 or 1");
    let csv = with_bad_row(&row("P2").replace(",51,M", ",old,M"));
    assert_one_error(&csv, Some(2), Some("age"), "not a number");
    let csv = with_bad_row(&row("P2").replace(",1200,1", ",-5,1"));
    assert_one_error(&csv, Some(2), Some("ebv_dna"), "non-negative");
}

#[test]
fn ragged_row() {
    let csv = with_bad_row("P2,2012-05-01,a.nii");
    assert_one_error(&csv, Some(2), None, "row has 3 fields, the header has 14");
}

#[test]
fn every_problem_is_reported_not_only_the_first() {
    let bad = row("P2")
        .replace("2012-05-01", "yesterday")
        .replacen("40.5", "-1", 1)
        .replace("/v/P2_t1", "");
    let csv = format!("{HEADER}\n{}\n{bad}\n{}\n", row("P1"), row("P1"));
    let errs = errors(&csv);
    let columns: Vec<(Option<usize>, Option<&str>)> =
        errs.iter().map(|e| (e.row, e.column.as_deref())).collect();
    assert_eq!(
        columns,
        vec![
            (Some(2), Some("diagnosis_date")),
            (Some(2), Some("dfs_months")),
            (Some(3), Some("patient_id")),
        ]
    );
}

#[test]
fn problems_past_the_limit_are_counted() {
    let mut csv = format!("{HEADER}\n");
    for i in 0..50 {
        csv.push_str(&row(&format!("P{i}")).replace("2012-05-01", "bad"));
        csv.push('\n');
    }
    let parsed = manifest::parse_with_limit(csv.as_bytes(), "clinical.csv", 10);
    assert_eq!(parsed.problems.problems.len(), 10);
    assert_eq!(parsed.problems.error_count(), 50);
    assert!(parsed.problems.to_string().contains("and 40 more errors"));
}

#[test]
fn missing_standard_covariates_are_warnings_and_extra_columns_are_kept() {
    let csv = "patient_id,diagnosis_date,mri_t1,dfs_months,dfs_event,dmfs_months,dmfs_event,kps,site\n\
               P1,2012-01-01,a.nii,10,1,12,0,90,north\nP2,2012-02-01,b.nii,20,0,20,0,NA,south\n";
    let parsed = manifest::parse(csv.as_bytes(), "clinical.csv");
    assert!(!parsed.problems.has_errors(), "{}", parsed.problems);
    assert_eq!(parsed.problems.warning_count(), 6);
    let m = parsed.manifest;
    assert_eq!(m.covariate_names, vec!["kps", "site"]);
    assert_eq!(m.covariate("kps").unwrap()[0].as_f64(), Some(90.0));
    assert!(matches!(
        m.covariate("kps").unwrap()[1],
        cohort_common::cohort::Covariate::Missing
    ));
}

#[test]
fn empty_and_header_only_files() {
    assert_one_error("", None, None, "empty");
    assert_one_error(&format!("{HEADER}\n"), None, None, "no patients");
}

#[tokio::test]
async fn volumes_missing_on_the_store_are_named() {
    let store = Store::open("memory://manifest-suite/cohort").unwrap();
    for name in ["v/P1_t1.nii.gz", "v/P1_t2.nii.gz", "v/P2_t1.nii.gz"] {
        store.put(name, Bytes::from_static(b"x")).await.unwrap();
    }
    let csv = format!("{HEADER}\n{}\n{}\n", row("P1"), row("P2"));
    let parsed = manifest::parse(csv.as_bytes(), "clinical.csv");
    let problems = validate::check_volumes(&store, &parsed.manifest)
        .await
        .unwrap();
    let errs: Vec<_> = problems.iter().collect();
    assert_eq!(errs.len(), 1, "{problems}");
    assert_eq!(
        (errs[0].row, errs[0].column.as_deref()),
        (Some(2), Some("mri_t2"))
    );
    assert_eq!(errs[0].patient_id.as_deref(), Some("P2"));
    assert!(
        errs[0]
            .message
            .contains("memory://manifest-suite/cohort/v/P2_t2.nii.gz"),
        "{}",
        errs[0]
    );
}
