//! The writer's output reads back (through our reader; nibabel reads it too,
//! see bench/nifti/check_writer.py), is deterministic, and no truncated or
//! mutated file makes the reader panic or allocate without bound.

use std::path::PathBuf;

use cohort_common::nifti::{self, Encoding, Volume};

fn sample_volume() -> Volume {
    let dims = [7, 5, 4];
    let data = (0..dims[0] * dims[1] * dims[2])
        .map(|i| ((i as f32) * 0.37).sin() * 100.0 + 20.0)
        .collect();
    // A rotation about z by 30 degrees, scaled by the voxel sizes.
    let (s, c) = (30f64.to_radians().sin(), 30f64.to_radians().cos());
    let pixdim = [0.8f32, 0.9, 2.5];
    let p = pixdim.map(f64::from);
    let affine = [
        [c * p[0], -s * p[1], 0.0, -12.5],
        [s * p[0], c * p[1], 0.0, 30.0],
        [0.0, 0.0, p[2], -7.0],
        [0.0, 0.0, 0.0, 1.0],
    ];
    Volume {
        dims,
        pixdim,
        affine,
        data,
    }
}

#[test]
fn float32_round_trips_exactly() {
    let v = sample_volume();
    for gzip in [false, true] {
        let bytes = nifti::encode(&v, Encoding::Float32, gzip).unwrap();
        assert_eq!(bytes[..2] == [0x1f, 0x8b], gzip);
        let back = nifti::decode(&bytes).unwrap();
        assert_eq!(back.header.dims, vec![7, 5, 4]);
        assert_eq!(back.header.sform_code, 2);
        assert_eq!(back.header.qform_code, 2);
        let back = back.into_volume().unwrap();
        assert_eq!(back.data, v.data);
        assert_eq!(back.pixdim, v.pixdim);
        for r in 0..4 {
            for c in 0..4 {
                assert!((back.affine[r][c] - v.affine[r][c]).abs() < 1e-5);
            }
        }
    }
}

#[test]
fn qform_alone_gives_the_same_affine() {
    // Blank the sform code: the reader must rebuild the affine from the quaternion.
    let v = sample_volume();
    let mut bytes = nifti::encode(&v, Encoding::Float32, false).unwrap();
    bytes[254] = 0;
    let back = nifti::decode(&bytes).unwrap();
    assert_eq!(back.header.sform_code, 0);
    for r in 0..4 {
        for c in 0..4 {
            assert!(
                (back.header.affine[r][c] - v.affine[r][c]).abs() < 1e-5,
                "affine[{r}][{c}]: {} vs {}",
                back.header.affine[r][c],
                v.affine[r][c]
            );
        }
    }
}

#[test]
fn int16_scaled_is_within_half_a_step() {
    let v = sample_volume();
    let bytes = nifti::encode(&v, Encoding::Int16Scaled, true).unwrap();
    let back = nifti::decode(&bytes).unwrap();
    let slope = back.header.scl_slope;
    assert!(slope > 0.0 && slope < 1.0);
    for (a, b) in back.data.iter().zip(&v.data) {
        assert!(f64::from((a - b).abs()) <= slope * 0.5 + 1e-4, "{a} vs {b}");
    }
    let nan = Volume {
        data: vec![f32::NAN; 140],
        ..sample_volume()
    };
    assert!(nifti::encode(&nan, Encoding::Int16Scaled, false).is_err());
    assert!(nifti::encode(&nan, Encoding::Float32, false).is_ok());
}

#[test]
fn encoding_is_deterministic() {
    let v = sample_volume();
    let a = nifti::encode(&v, Encoding::Int16Scaled, true).unwrap();
    let b = nifti::encode(&v, Encoding::Int16Scaled, true).unwrap();
    assert_eq!(a, b);
    // gzip mtime (bytes 4..8) is zero.
    assert_eq!(&a[4..8], &[0, 0, 0, 0]);
}

#[test]
fn wrong_data_length_is_refused() {
    let mut v = sample_volume();
    v.data.pop();
    assert!(nifti::encode(&v, Encoding::Float32, false).is_err());
}

fn fixture_bytes() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/nifti");
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains(".nii"))
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    // The decompressed content of each gzip fixture, so that mutations hit
    // header fields and not only the deflate stream.
    let mut plain = Vec::new();
    for (name, bytes) in &out {
        if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut raw = Vec::new();
            let mut dec = flate2::read::MultiGzDecoder::new(&bytes[..]);
            if std::io::Read::read_to_end(&mut dec, &mut raw).is_ok() {
                plain.push((format!("{name} (decompressed)"), raw));
            }
        }
    }
    out.extend(plain);
    let v = sample_volume();
    out.push((
        "ours.nii".into(),
        nifti::encode(&v, Encoding::Int16Scaled, false).unwrap(),
    ));
    out.push((
        "ours.nii.gz".into(),
        nifti::encode(&v, Encoding::Float32, true).unwrap(),
    ));
    out
}

/// Truncations at every length and single-byte mutations (seeded, many per
/// file) never panic; decode returns Ok or Err. Each decode is bounded by
/// the limits, so this also exercises the no-huge-allocation paths.
#[test]
fn truncated_and_mutated_files_never_panic() {
    let mut rng = cohort_common::rng::Rng::seed_from_u64(7);
    for (name, bytes) in fixture_bytes() {
        for len in 0..bytes.len().min(1200) {
            let _ = nifti::decode(&bytes[..len]);
            let _ = nifti::decode_header(&bytes[..len]);
        }
        for _ in 0..400 {
            let mut m = bytes.clone();
            let hits = 1 + (rng.next_u64() % 4) as usize;
            for _ in 0..hits {
                if m.is_empty() {
                    break;
                }
                let at = if rng.next_u64().is_multiple_of(2) {
                    (rng.next_u64() % 352.min(m.len() as u64)) as usize
                } else {
                    (rng.next_u64() % m.len() as u64) as usize
                };
                m[at] = (rng.next_u64() & 0xff) as u8;
            }
            let _ = nifti::decode(&m);
            let _ = nifti::decode_as::<f64>(&m);
        }
        // And the same header mutations, gzip-compressed again.
        if !bytes.starts_with(&[0x1f, 0x8b]) && bytes.len() > 352 {
            for _ in 0..50 {
                let mut m = bytes.clone();
                let at = (rng.next_u64() % 352) as usize;
                m[at] = (rng.next_u64() & 0xff) as u8;
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                std::io::Write::write_all(&mut enc, &m).unwrap();
                let gz = enc.finish().unwrap();
                let _ = nifti::decode(&gz);
            }
        }
        let _ = name;
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, bytes).unwrap();
    enc.finish().unwrap()
}

/// A second gzip member (or trailing garbage) after the volume is refused:
/// the fast one-shot inflate would stop after the first member, so this
/// checks that the fallback takes over.
#[test]
fn data_after_the_volume_is_refused() {
    let plain = nifti::encode(&sample_volume(), Encoding::Float32, false).unwrap();
    let mut two = gzip(&plain);
    two.extend_from_slice(&gzip(b"0123456789"));
    assert!(matches!(
        nifti::decode(&two),
        Err(nifti::NiftiError::TrailingData { .. })
    ));
    let mut garbage = gzip(&plain);
    garbage.extend_from_slice(b"garbage!");
    assert!(nifti::decode(&garbage).is_err());
    let mut longer = plain.clone();
    longer.extend_from_slice(&[0; 16]);
    assert!(matches!(
        nifti::decode(&gzip(&longer)),
        Err(nifti::NiftiError::TrailingData { .. })
    ));
    assert!(matches!(
        nifti::decode(&longer),
        Err(nifti::NiftiError::TrailingData { .. })
    ));
}

/// A volume that compresses far beyond the one-shot ratio (all zeros) is
/// decoded by the streaming path, to the same values.
#[test]
fn highly_compressible_volumes_stream() {
    let v = Volume {
        dims: [64, 64, 64],
        pixdim: [1.0; 3],
        affine: Volume::axis_aligned_affine([1.0; 3]),
        data: vec![0.0; 64 * 64 * 64],
    };
    let bytes = nifti::encode(&v, Encoding::Float32, true).unwrap();
    assert!(bytes.len() * 64 < 64 * 64 * 64 * 4, "{} bytes", bytes.len());
    let back = nifti::decode(&bytes).unwrap();
    assert_eq!(back.data, v.data);
    // And the same values through decode_into with a dirty, reused buffer.
    let mut buf = vec![7.0f32; 10];
    let header = nifti::decode_into(&bytes, &mut buf).unwrap();
    assert_eq!(header.dims, vec![64, 64, 64]);
    assert_eq!(buf, v.data);
}

/// A header that claims far more than its gzip stream can inflate to is
/// refused before any voxel buffer is allocated.
#[test]
fn impossible_compression_ratio_is_refused() {
    let mut plain = nifti::encode(&sample_volume(), Encoding::Float32, false).unwrap();
    // dims 30000 x 30000 x 30000 float32 (little-endian i16 at 42, 44, 46).
    for at in [42, 44, 46] {
        plain[at..at + 2].copy_from_slice(&30000i16.to_le_bytes());
    }
    let start = std::time::Instant::now();
    let err = nifti::decode(&gzip(&plain)).unwrap_err();
    assert!(
        matches!(
            err,
            nifti::NiftiError::ImpossibleRatio { .. } | nifti::NiftiError::TooLarge { .. }
        ),
        "{err}"
    );
    assert!(start.elapsed().as_secs_f64() < 1.0);
    // Plausible ratio but a lying header: refused when the stream ends early.
    let mut lying = nifti::encode(&sample_volume(), Encoding::Float32, false).unwrap();
    lying[46..48].copy_from_slice(&40i16.to_le_bytes());
    assert!(matches!(
        nifti::decode(&gzip(&lying)),
        Err(nifti::NiftiError::TruncatedGzip { .. })
    ));
}

/// Extensions between the header and vox_offset are parsed (as nibabel lays
/// them out: extender, then esize / ecode / data) and skipped for the data.
#[test]
fn extensions_are_read_and_skipped() {
    let v = sample_volume();
    let plain = nifti::encode(&v, Encoding::Float32, false).unwrap();
    let mut with_ext = plain[..348].to_vec();
    with_ext[108..112].copy_from_slice(&384f32.to_le_bytes()); // vox_offset
    with_ext.extend_from_slice(&[1, 0, 0, 0]); // extender: extensions follow
    with_ext.extend_from_slice(&32i32.to_le_bytes()); // esize
    with_ext.extend_from_slice(&6i32.to_le_bytes()); // ecode 6: comment
    let mut text = b"made by cohort".to_vec();
    text.resize(24, 0);
    with_ext.extend_from_slice(&text);
    assert_eq!(with_ext.len(), 384);
    with_ext.extend_from_slice(&plain[352..]);
    for bytes in [with_ext.clone(), gzip(&with_ext)] {
        let back = nifti::decode(&bytes).unwrap();
        assert_eq!(back.header.vox_offset, 384);
        assert_eq!(back.header.extensions.len(), 1);
        assert_eq!(back.header.extensions[0].code, 6);
        assert!(
            back.header.extensions[0]
                .data
                .starts_with(b"made by cohort")
        );
        assert_eq!(back.data, v.data);
    }
}

/// A zip bomb behind a small header: inflation stops right after the
/// declared size, so the 64 MiB of zeros are never produced in full.
#[test]
fn a_stream_longer_than_declared_stops_early() {
    let mut plain = nifti::encode(&sample_volume(), Encoding::Float32, false).unwrap();
    plain.resize(plain.len() + (64 << 20), 0);
    let bomb = gzip(&plain);
    assert!(bomb.len() < 1 << 20);
    let start = std::time::Instant::now();
    let err = nifti::decode(&bomb).unwrap_err();
    assert!(
        matches!(err, nifti::NiftiError::TrailingData { .. }),
        "{err}"
    );
    assert!(start.elapsed().as_secs_f64() < 0.5, "{:?}", start.elapsed());
}

/// With qform_code = sform_code = 0 the affine comes from pixdim, centred,
/// x flipped. Expected values from nibabel 5.4.2 (`img.affine`) for a
/// 5 x 4 x 3 header with pixdim 0.8, 0.9, 2.5.
#[test]
fn no_codes_give_nibabels_base_affine() {
    let v = Volume {
        dims: [5, 4, 3],
        pixdim: [0.8, 0.9, 2.5],
        affine: Volume::axis_aligned_affine([0.8, 0.9, 2.5]),
        data: vec![1.0; 60],
    };
    let mut bytes = nifti::encode(&v, Encoding::Float32, false).unwrap();
    bytes[252..256].fill(0);
    let got = nifti::decode(&bytes).unwrap().header.affine;
    let want = [
        [-0.80000001, 0.0, 0.0, 1.60000002],
        [0.0, 0.89999998, 0.0, -1.34999996],
        [0.0, 0.0, 2.5, -2.5],
        [0.0, 0.0, 0.0, 1.0],
    ];
    for r in 0..4 {
        for c in 0..4 {
            assert!((got[r][c] - want[r][c]).abs() < 1e-6, "[{r}][{c}] {got:?}");
        }
    }
}
