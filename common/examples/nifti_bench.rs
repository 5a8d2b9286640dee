//! Decode + preprocess throughput of `.nii.gz` volumes, for bench/nifti/run.sh.
//!
//! `nifti_bench gen DIR COUNT NXxNYxNZ PXxPYxPZ` writes COUNT MRI-like int16
//! volumes with our writer; `nifti_bench run DIR THREADS [DUMP]` times reading,
//! decoding and preprocessing every `.nii.gz` of DIR (resample to 1 mm,
//! z-score over nonzero voxels, centre crop/pad to 96^3) on a rayon pool of
//! THREADS threads, prints one JSON line, and optionally writes the first
//! volume's result (sorted by name) as raw little-endian f32 to DUMP so the
//! Python side can check that both compute the same thing.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use cohort_common::nifti::{self, Encoding, Volume};
use cohort_common::preprocess::{self, Foreground, Pipeline};
use cohort_common::rng::Rng;
use rayon::prelude::*;

fn parse3<T: std::str::FromStr>(s: &str) -> [T; 3] {
    let v: Vec<T> = s
        .split('x')
        .map(|p| p.parse().ok().expect("NxNxN"))
        .collect();
    let mut it = v.into_iter();
    let mut next = || it.next().expect("three values");
    [next(), next(), next()]
}

/// A head-like ellipsoid with smooth tissue contrast, a bright blob and noise;
/// zero outside the head.
fn mri_like(dims: [usize; 3], pixdim: [f32; 3], seed: u64) -> Volume {
    let mut rng = Rng::derive_indexed(seed, "bench-volume", seed);
    let [nx, ny, nz] = dims;
    let c = [nx as f64 / 2.0, ny as f64 / 2.0, nz as f64 / 2.0];
    let r = [nx as f64 * 0.42, ny as f64 * 0.45, nz as f64 * 0.4];
    let blob = [
        c[0] + rng.uniform_range(-0.2, 0.2) * nx as f64,
        c[1] + rng.uniform_range(-0.2, 0.2) * ny as f64,
        c[2] + rng.uniform_range(-0.2, 0.2) * nz as f64,
    ];
    let blob_r = rng.uniform_range(0.05, 0.12) * nx as f64;
    let mut data = Vec::with_capacity(nx * ny * nz);
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                let d = [
                    (i as f64 - c[0]) / r[0],
                    (j as f64 - c[1]) / r[1],
                    (k as f64 - c[2]) / r[2],
                ];
                let rho = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
                if rho > 1.0 {
                    data.push(0.0);
                    continue;
                }
                let bd = ((i as f64 - blob[0]).powi(2)
                    + (j as f64 - blob[1]).powi(2)
                    + (k as f64 - blob[2]).powi(2))
                .sqrt();
                let tissue = 300.0 + 120.0 * (i as f64 * 0.11).sin() * (j as f64 * 0.07).cos();
                let tumour = if bd < blob_r { 400.0 } else { 0.0 };
                let noise = (rng.uniform() - 0.5) * 40.0;
                data.push((tissue + tumour + noise - 150.0 * rho) as f32);
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

thread_local! {
    static DECODED: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// User + system CPU seconds of this process so far (Linux /proc), so runs
/// on a busy machine can be compared by CPU time as well as wall time.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses).
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 (1-based); here 12 and 13.
    (ticks(11) + ticks(12)) / 100.0
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".nii.gz"))
        .collect();
    v.sort();
    v
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("gen") => {
            let dir = PathBuf::from(&args[1]);
            let count: usize = args[2].parse().expect("count");
            let dims: [usize; 3] = parse3(&args[3]);
            let pixdim: [f32; 3] = parse3(&args[4]);
            std::fs::create_dir_all(&dir).expect("mkdir");
            (0..count).into_par_iter().for_each(|n| {
                let v = mri_like(dims, pixdim, n as u64);
                let bytes = nifti::encode(&v, Encoding::Int16Scaled, true).expect("encode");
                std::fs::write(dir.join(format!("vol{n:04}.nii.gz")), bytes).expect("write");
            });
        }
        Some("sample") => {
            // Files for bench/nifti/check_writer.py: a rotated, anisotropic
            // volume with a known formula, in both encodings.
            let dir = PathBuf::from(&args[1]);
            std::fs::create_dir_all(&dir).expect("mkdir");
            let dims = [7usize, 5, 4];
            let data = (0..dims[0] * dims[1] * dims[2])
                .map(|i| ((i as f32) * 0.37).sin() * 100.0 + 20.0)
                .collect();
            let (s, c) = (30f64.to_radians().sin(), 30f64.to_radians().cos());
            let pixdim = [0.8f32, 0.9, 2.5];
            let p = pixdim.map(f64::from);
            let affine = [
                [c * p[0], -s * p[1], 0.0, -12.5],
                [s * p[0], c * p[1], 0.0, 30.0],
                [0.0, 0.0, -p[2], -7.0],
                [0.0, 0.0, 0.0, 1.0],
            ];
            let v = Volume {
                dims,
                pixdim,
                affine,
                data,
            };
            for (name, enc, gz) in [
                ("rot_f32.nii.gz", Encoding::Float32, true),
                ("rot_i16.nii", Encoding::Int16Scaled, false),
            ] {
                let bytes = nifti::encode(&v, enc, gz).expect("encode");
                std::fs::write(dir.join(name), bytes).expect("write");
            }
        }
        Some("run") => {
            let dir = PathBuf::from(&args[1]);
            let threads: usize = args[2].parse().expect("threads");
            let dump = args.get(3).map(PathBuf::from);
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("pool");
            let files = files(&dir);
            let pipeline = Pipeline {
                spacing: Some([1.0; 3]),
                resize: None,
                normalize: Some(Foreground::NonZero),
                shape: Some([96, 96, 96]),
                pad_value: 0.0,
            };
            // Nanoseconds spent reading + decoding, and preprocessing.
            let decode_ns = AtomicU64::new(0);
            let prep_ns = AtomicU64::new(0);
            let one = |p: &PathBuf| {
                let t0 = Instant::now();
                let bytes = std::fs::read(p).expect("read");
                // A loader reuses its decode buffer from volume to volume.
                let mut buf = DECODED.with(|b| std::mem::take(&mut *b.borrow_mut()));
                let header = nifti::decode_into(&bytes, &mut buf).expect("decode");
                let v = nifti::Nifti { header, data: buf }
                    .into_volume()
                    .expect("3d");
                let t1 = Instant::now();
                let out = preprocess::preprocess(&v, &p.display().to_string(), &pipeline)
                    .expect("preprocess");
                DECODED.with(|b| *b.borrow_mut() = v.data);
                decode_ns.fetch_add((t1 - t0).as_nanos() as u64, Ordering::Relaxed);
                prep_ns.fetch_add(t1.elapsed().as_nanos() as u64, Ordering::Relaxed);
                out
            };
            // Warm the page cache and the allocator once, untimed.
            if let Some(first) = files.first() {
                let out = one(first);
                if let Some(dump) = dump {
                    let raw: Vec<u8> = out.data.iter().flat_map(|x| x.to_le_bytes()).collect();
                    std::fs::write(dump, raw).expect("dump");
                }
            }
            decode_ns.store(0, Ordering::Relaxed);
            prep_ns.store(0, Ordering::Relaxed);
            let cpu0 = cpu_seconds();
            let start = Instant::now();
            let checksum: f64 = pool.install(|| {
                files
                    .par_iter()
                    .map(|p| {
                        // Checksum: the sum of the middle k plane (as the Python side).
                        let out = one(p);
                        let plane = out.dims[0] * out.dims[1];
                        let k = out.dims[2] / 2;
                        out.data[k * plane..(k + 1) * plane]
                            .iter()
                            .map(|&x| f64::from(x))
                            .sum::<f64>()
                    })
                    .sum()
            });
            let secs = start.elapsed().as_secs_f64();
            let cpu = cpu_seconds() - cpu0;
            println!(
                "{{\"impl\": \"cohort\", \"threads\": {threads}, \"volumes\": {}, \"seconds\": {secs:.4}, \"volumes_per_s\": {:.2}, \"cpu_seconds\": {cpu:.2}, \"checksum\": {checksum:.3}, \"decode_ms_per_volume\": {:.2}, \"preprocess_ms_per_volume\": {:.2}}}",
                files.len(),
                files.len() as f64 / secs,
                decode_ns.load(Ordering::Relaxed) as f64 / 1e6 / files.len() as f64,
                prep_ns.load(Ordering::Relaxed) as f64 / 1e6 / files.len() as f64,
            );
        }
        _ => {
            eprintln!(
                "usage: nifti_bench gen DIR COUNT NXxNYxNZ PXxPYxPZ | run DIR THREADS [DUMP] | sample DIR"
            );
            std::process::exit(2);
        }
    }
}
