//! Preprocessing: resampling against scipy.ndimage.zoom (values computed by
//! scipy, quoted below), analytic checks of crop / pad and z-score, channel
//! stacking and the NaN error.

use cohort_common::nifti::Volume;
use cohort_common::preprocess::{
    self, Foreground, Geometry, Pipeline, PreprocessError, crop_or_pad, resample_to_shape,
    resample_to_spacing, zscore,
};

fn volume(dims: [usize; 3], pixdim: [f32; 3], f: impl Fn(usize, usize, usize) -> f64) -> Volume {
    let mut data = Vec::new();
    for k in 0..dims[2] {
        for j in 0..dims[1] {
            for i in 0..dims[0] {
                data.push(f(i, j, k) as f32);
            }
        }
    }
    Volume {
        dims,
        pixdim,
        affine: Volume::axis_aligned_affine(pixdim),
        data,
    }
}

fn at(v: &Volume, i: usize, j: usize, k: usize) -> f32 {
    v.data[(k * v.dims[1] + j) * v.dims[0] + i]
}

/// scipy.ndimage.zoom(a, (7/5, 3/4, 5/3), order=1, grid_mode=True,
/// mode='nearest', prefilter=False) on
/// a[i,j,k] = sin(1.3 i + 0.7 j) * 10 + cos(2.1 k) * 5 + i j.
#[test]
fn resample_to_shape_matches_scipy_zoom() {
    let v = volume([5, 4, 3], [1.0, 1.0, 1.0], |i, j, k| {
        let (i, j, k) = (i as f64, j as f64, k as f64);
        (i * 1.3 + j * 0.7).sin() * 10.0 + (k * 2.1).cos() * 5.0 + i * j
    });
    let out = resample_to_shape(&v, [7, 3, 5]);
    assert_eq!(out.dims, [7, 3, 5]);
    let sum: f64 = out.data.iter().map(|&x| f64::from(x)).sum();
    assert!((sum - 314.7952686455707).abs() < 1e-3, "sum {sum}");
    for (idx, want) in [
        ([0, 0, 0], 6.073696145396152),
        ([6, 2, 4], 16.488236671056836),
        ([3, 1, 2], -4.09697147025517),
        ([1, 2, 0], 9.595996945261238),
        ([5, 0, 3], -9.552745394294755),
        ([2, 2, 1], 1.879720715619695),
    ] {
        let got = f64::from(at(&out, idx[0], idx[1], idx[2]));
        assert!((got - want).abs() < 1e-4, "{idx:?}: {got} vs scipy {want}");
    }
    assert!((f64::from(out.pixdim[0]) - 5.0 / 7.0).abs() < 1e-6);
}

/// Linear interpolation reproduces a linear function exactly away from the
/// edges, and the new affine maps each voxel to the world point it sampled.
#[test]
fn resample_to_spacing_keeps_world_coordinates() {
    let pixdim = [2.0, 0.5, 3.0];
    let mut v = volume([10, 40, 8], pixdim, |i, j, k| {
        // value = world x + 2 world y - world z
        2.0 * i as f64 + 2.0 * 0.5 * j as f64 - 3.0 * k as f64
    });
    v.affine[0][3] = 5.0;
    v.affine[1][3] = -3.0;
    let world = |a: &[[f64; 4]; 4], i: f64, j: f64, k: f64| {
        let p: [f64; 3] =
            std::array::from_fn(|r| a[r][0] * i + a[r][1] * j + a[r][2] * k + a[r][3]);
        (p[0] - 5.0) + 2.0 * (p[1] + 3.0) - p[2]
    };
    let out = resample_to_spacing(&v, [1.0, 1.0, 1.0]);
    assert_eq!(out.dims, [20, 20, 24]);
    assert_eq!(out.pixdim, [1.0, 1.0, 1.0]);
    for (i, j, k) in [(3, 4, 5), (10, 10, 10), (17, 15, 20), (1, 1, 2)] {
        let got = f64::from(at(&out, i, j, k));
        let want = world(&out.affine, i as f64, j as f64, k as f64);
        assert!((got - want).abs() < 1e-4, "[{i},{j},{k}]: {got} vs {want}");
    }
    assert!((out.affine[0][0] - 1.0).abs() < 1e-12);
}

#[test]
fn crop_and_pad_are_centred() {
    let v = volume([6, 5, 4], [1.0; 3], |i, j, k| (i + 10 * j + 100 * k) as f64);
    let out = crop_or_pad(&v, [4, 7, 4], -1.0);
    assert_eq!(out.dims, [4, 7, 4]);
    // x: crop 1 from the start; y: pad 1 before.
    assert_eq!(at(&out, 0, 1, 0), 1.0);
    assert_eq!(at(&out, 3, 5, 3), 4.0 + 40.0 + 300.0);
    assert_eq!(at(&out, 0, 0, 0), -1.0);
    assert_eq!(at(&out, 2, 6, 2), -1.0);
    // The affine keeps voxels at their world position: out[0,1,0] is in[1,0,0].
    assert_eq!(out.affine[0][3], 1.0);
    assert_eq!(out.affine[1][3], -1.0);
}

#[test]
fn zscore_uses_the_foreground() {
    // Foreground 2, 4, 6 (mean 4, population std sqrt(8/3)); background 0.
    let mut data = vec![0.0, 2.0, 0.0, 4.0, 6.0, 0.0];
    let z = zscore(&mut data, Foreground::NonZero);
    assert!((z.mean - 4.0).abs() < 1e-12);
    assert!((z.std - (8.0f64 / 3.0).sqrt()).abs() < 1e-9);
    assert!((f64::from(data[3])).abs() < 1e-6);
    assert!((f64::from(data[0]) + 4.0 / z.std).abs() < 1e-6);

    let mut all: Vec<f32> = (0..1000).map(|i| (i % 17) as f32).collect();
    zscore(&mut all, Foreground::All);
    let n = all.len() as f64;
    let mean: f64 = all.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let var: f64 = all
        .iter()
        .map(|&x| (f64::from(x) - mean).powi(2))
        .sum::<f64>()
        / n;
    assert!(mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-4);

    // Two clear modes: Otsu separates them.
    let bimodal: Vec<f32> = (0..1000)
        .map(|i| if i < 600 { 1.0 } else { 100.0 })
        .collect();
    let t = preprocess::otsu_threshold(&bimodal);
    assert!(t > 1.0 && t < 100.0, "{t}");
}

#[test]
fn nan_is_refused_naming_the_file() {
    let mut v = volume([4, 4, 4], [1.0; 3], |i, _, _| i as f64);
    v.data[4 * 4 * 2 + 4 + 3] = f32::NAN;
    let err = preprocess::preprocess(&v, "s3://bucket/p0042_t2.nii.gz", &Pipeline::default())
        .unwrap_err();
    assert!(matches!(
        err,
        PreprocessError::NonFinite {
            count: 1,
            first: [3, 1, 2],
            ..
        }
    ));
    let msg = err.to_string();
    assert!(msg.contains("s3://bucket/p0042_t2.nii.gz"), "{msg}");
}

#[test]
fn channels_stack_as_cdhw() {
    let t1 = volume([8, 6, 4], [2.0, 2.0, 2.0], |i, j, k| {
        (i + j + k) as f64 + 1.0
    });
    let t2 = volume([8, 6, 4], [2.0, 2.0, 2.0], |i, j, k| {
        (i * j * k) as f64 + 1.0
    });
    let pipeline = Pipeline {
        spacing: Some([1.0; 3]),
        shape: Some([12, 12, 10]),
        ..Pipeline::default()
    };
    let s = preprocess::stack(
        &[("t1", &t1), ("t2", &t2)],
        &pipeline,
        Geometry::RequireSame { tolerance_mm: 0.01 },
    )
    .unwrap();
    assert_eq!(s.shape, [2, 10, 12, 12]);
    assert_eq!(s.data.len(), 2 * 10 * 12 * 12);
    assert_eq!(s.pixdim, [1.0; 3]);

    let mut shifted = t2.clone();
    shifted.affine[2][3] += 5.0;
    let err = preprocess::stack(
        &[("t1", &t1), ("t2_shifted", &shifted)],
        &pipeline,
        Geometry::RequireSame { tolerance_mm: 0.01 },
    )
    .unwrap_err();
    assert!(err.to_string().contains("t2_shifted"), "{err}");
    assert!(
        preprocess::stack(
            &[("t1", &t1), ("t2", &shifted)],
            &pipeline,
            Geometry::ResampleEach
        )
        .is_ok()
    );
}

fn fixture(name: &str) -> Volume {
    let path = format!(
        "{}/../../shared/fixtures/nifti/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(&path).unwrap();
    cohort_common::nifti::decode(&bytes)
        .unwrap()
        .into_volume()
        .unwrap()
}

/// The fixtures' three sequences differ in shape and spacing: stacking them
/// strictly is refused, resampling each to 1 mm and 16^3 works.
#[test]
fn fixture_sequences_stack_after_resampling() {
    let t1 = fixture("t1_uint8.nii");
    let t2 = fixture("t2_int16_scaled.nii.gz");
    let t1c = fixture("t1c_float32.nii.gz");
    let channels = [
        ("t1_uint8.nii", &t1),
        ("t2_int16_scaled.nii.gz", &t2),
        ("t1c_float32.nii.gz", &t1c),
    ];
    let pipeline = Pipeline {
        spacing: Some([1.0; 3]),
        shape: Some([16, 16, 16]),
        ..Pipeline::default()
    };
    let err = preprocess::stack(
        &channels,
        &pipeline,
        Geometry::RequireSame { tolerance_mm: 0.5 },
    )
    .unwrap_err();
    assert!(err.to_string().contains("t2_int16_scaled.nii.gz"), "{err}");
    let s = preprocess::stack(&channels, &pipeline, Geometry::ResampleEach).unwrap();
    assert_eq!(s.shape, [3, 16, 16, 16]);
    assert!(s.data.iter().all(|v| v.is_finite()));
    // t1_uint8 is 10 x 12 x 7 at 0.5 x 0.5 x 3 mm: 5 x 6 x 21 voxels at 1 mm.
    assert_eq!(resample_to_spacing(&t1, [1.0; 3]).dims, [5, 6, 21]);
}

#[test]
fn the_nan_fixture_is_refused_by_name() {
    let v = fixture("float32_with_nan.nii.gz");
    let err =
        preprocess::preprocess(&v, "float32_with_nan.nii.gz", &Pipeline::default()).unwrap_err();
    assert!(
        matches!(err, PreprocessError::NonFinite { count: 2, .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("float32_with_nan.nii.gz: 2 voxel(s)"),
        "{err}"
    );
}
