//! Every file of `shared/fixtures/nifti/` decodes to what nibabel found
//! (`expected.json`, written by nibabel), or is refused when `valid: false`.

use std::path::PathBuf;

use cohort_common::nifti::{self, Nifti};
use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/nifti")
}

fn expected() -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).expect("expected.json");
    serde_json::from_str::<Value>(&text)
        .expect("json")
        .as_object()
        .expect("object")
        .clone()
}

fn close(got: f64, want: f64, rel: f64, what: &str, file: &str) {
    let tol = rel * want.abs().max(1e-12);
    assert!(
        (got - want).abs() <= tol,
        "{file}: {what} is {got}, nibabel says {want} (tolerance {tol})"
    );
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn check_valid(name: &str, want: &Value, img: &Nifti<f64>, img32: &Nifti<f32>) {
    let h = &img.header;
    let shape: Vec<usize> = f64s(&want["shape"]).iter().map(|&x| x as usize).collect();
    assert_eq!(h.dims, shape, "{name}: shape");
    assert_eq!(
        h.datatype.numpy_str(h.big_endian),
        want["datatype"].as_str().unwrap(),
        "{name}: datatype"
    );
    assert_eq!(
        h.big_endian,
        want["big_endian"].as_bool().unwrap(),
        "{name}: endianness"
    );
    assert_eq!(
        u64::from(h.version.number()),
        want["nifti_version"].as_u64().unwrap(),
        "{name}: version"
    );
    let pixdim = f64s(&want["pixdim"]);
    assert_eq!(h.pixdim.len(), pixdim.len(), "{name}: pixdim rank");
    for (a, (&g, &w)) in h.pixdim.iter().zip(&pixdim).enumerate() {
        close(g, w, 1e-7, &format!("pixdim[{a}]"), name);
    }
    close(
        h.scl_slope,
        want["scl_slope"].as_f64().unwrap(),
        1e-12,
        "scl_slope",
        name,
    );
    let inter = want["scl_inter"].as_f64().unwrap();
    assert!(
        (h.scl_inter - inter).abs() <= 1e-9 * inter.abs().max(1.0),
        "{name}: scl_inter"
    );
    for (r, row) in want["affine"].as_array().unwrap().iter().enumerate() {
        for (c, &w) in f64s(row).iter().enumerate() {
            let g = h.affine[r][c];
            assert!(
                (g - w).abs() <= 1e-6 * w.abs().max(1.0),
                "{name}: affine[{r}][{c}] is {g}, nibabel says {w}"
            );
        }
    }

    let integer = !h.datatype.name().starts_with("float");
    let sum_tol = if integer { 1e-9 } else { 1e-6 };
    for (img_stats, label) in [(img.stats(), "f64"), (img32.stats(), "f32")] {
        let tol = if label == "f32" { 1e-6 } else { sum_tol };
        close(
            img_stats.sum,
            want["sum"].as_f64().unwrap(),
            tol,
            &format!("sum ({label})"),
            name,
        );
        close(
            img_stats.mean,
            want["mean"].as_f64().unwrap(),
            tol,
            &format!("mean ({label})"),
            name,
        );
        close(
            img_stats.min,
            want["min"].as_f64().unwrap(),
            1e-6,
            &format!("min ({label})"),
            name,
        );
        close(
            img_stats.max,
            want["max"].as_f64().unwrap(),
            1e-6,
            &format!("max ({label})"),
            name,
        );
        assert_eq!(
            img_stats.nan_count as u64,
            want["nan_count"].as_u64().unwrap(),
            "{name}: nan_count ({label})"
        );
    }
    let probes = want["probes"].as_array().unwrap();
    assert!(!probes.is_empty(), "{name}: no probes");
    for probe in probes {
        let index: Vec<usize> = f64s(&probe["index"]).iter().map(|&x| x as usize).collect();
        let w = probe["value"].as_f64().unwrap();
        let g = img
            .get(&index)
            .unwrap_or_else(|| panic!("{name}: probe {index:?} out of range"));
        let g32 = img32.get(&index).unwrap();
        close(g, w, 1e-6, &format!("probe {index:?}"), name);
        close(
            f64::from(g32),
            w,
            1e-6,
            &format!("probe {index:?} (f32)"),
            name,
        );
    }
}

#[test]
fn every_fixture_matches_nibabel() {
    let expected = expected();
    let mut seen = 0;
    for (name, want) in &expected {
        let bytes = std::fs::read(fixtures().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let valid = want["valid"].as_bool().unwrap();
        let got64 = nifti::decode_as::<f64>(&bytes);
        let got32 = nifti::decode(&bytes);
        if valid {
            let img = got64.unwrap_or_else(|e| panic!("{name}: refused a valid file: {e}"));
            let img32 = got32.unwrap_or_else(|e| panic!("{name}: refused a valid file: {e}"));
            check_valid(name, want, &img, &img32);
        } else {
            let err = got64
                .err()
                .unwrap_or_else(|| panic!("{name}: accepted an invalid file"));
            assert!(
                got32.is_err(),
                "{name}: f32 decode accepted an invalid file"
            );
            eprintln!("{name}: refused: {err}");
        }
        seen += 1;
    }
    // The directory holds every fixture listed, and expected.json lists them all.
    let on_disk = std::fs::read_dir(fixtures())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".nii") || n.ends_with(".nii.gz"))
        .count();
    assert_eq!(seen, on_disk);
    assert!(seen >= 17);
}

/// The refusal reasons are the specific ones, not a generic failure.
#[test]
fn refusals_name_the_problem() {
    use nifti::NiftiError as E;
    let read = |n: &str| nifti::decode(&std::fs::read(fixtures().join(n)).unwrap()).unwrap_err();
    assert!(matches!(read("bad_magic.nii"), E::BadMagic(_)));
    assert!(matches!(read("empty.nii.gz"), E::Empty));
    assert!(matches!(
        read("huge_dims.nii"),
        E::ShortData { .. } | E::TooLarge { .. }
    ));
    assert!(matches!(read("short_data.nii"), E::ShortData { .. }));
    assert!(matches!(
        read("truncated.nii.gz"),
        E::TruncatedGzip { .. } | E::Gzip(_)
    ));
    assert!(matches!(
        read("unknown_datatype.nii"),
        E::UnknownDatatype(1234)
    ));
    assert!(matches!(
        read("zero_dim.nii"),
        E::BadDim { axis: 1, value: 0 }
    ));
    assert!(matches!(
        read("not_nifti.nii.gz"),
        E::NotNifti(_) | E::TruncatedHeader { .. }
    ));
}
