"""nibabel + scipy side of bench/nifti/run.sh.

The same work as `nifti_bench run` (common/examples/nifti_bench.rs): read each
.nii.gz, decode to float32 (nibabel get_fdata), resample to 1 mm with
scipy.ndimage.zoom(order=1) (grid_mode=True, mode='nearest': the cell-centred
sampling with edge repeat that cohort uses, so both compute the same values),
z-score over nonzero voxels, centre crop/pad to 96^3.

usage: nib_bench.py DIR PROCESSES [RUST_DUMP]
With RUST_DUMP, also compares the first volume's result with cohort's.
"""

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import glob  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from multiprocessing import Pool  # noqa: E402

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

TARGET = (96, 96, 96)
SPACING = 1.0


def crop_pad(a, shape):
    out = np.zeros(shape, dtype=a.dtype)
    src, dst = [], []
    for n, m in zip(a.shape, shape):
        off = int((n - m) / 2)  # truncation toward zero, as in Rust
        lo = max(0, -off)
        hi = min(m, n - off)
        dst.append(slice(lo, hi))
        src.append(slice(lo + off, hi + off))
    out[tuple(dst)] = a[tuple(src)]
    return out


def one(path):
    img = nib.load(path)
    data = img.get_fdata(dtype=np.float32)
    if np.isnan(data).any():
        raise ValueError(f"{path}: NaN voxels")
    zooms = img.header.get_zooms()[:3]
    out_shape = [max(1, round(n * z / SPACING)) for n, z in zip(data.shape, zooms)]
    factors = [o / n for o, n in zip(out_shape, data.shape)]
    data = ndimage.zoom(data, factors, order=1, grid_mode=True, mode="nearest", prefilter=False)
    mask = data != 0
    fg = data[mask] if mask.any() else data.ravel()
    m = fg.mean(dtype=np.float64)
    s = fg.std(dtype=np.float64)
    if s <= 1e-12:
        s = 1.0
    data = (data - np.float32(m)) * np.float32(1.0 / s)
    return crop_pad(data, TARGET)


def one_sum(path):
    # Checksum: the sum of the middle k plane (as the Rust side).
    out = one(path)
    return float(out[:, :, out.shape[2] // 2].sum(dtype=np.float64))


def main():
    directory, procs = sys.argv[1], int(sys.argv[2])
    files = sorted(glob.glob(os.path.join(directory, "*.nii.gz")))
    first = one(files[0])  # warm-up, untimed
    if len(sys.argv) > 3:
        rust = np.fromfile(sys.argv[3], dtype="<f4").reshape(TARGET, order="F")
        diff = float(np.abs(rust - first).max())
        print(json.dumps({"check": "first volume, cohort vs nibabel+scipy", "max_abs_diff": diff}))
    cpu = None
    if procs == 1:
        c0 = time.process_time()
        t0 = time.perf_counter()
        checksum = sum(one_sum(f) for f in files)
        secs = time.perf_counter() - t0
        cpu = round(time.process_time() - c0, 2)
    else:
        with Pool(procs) as pool:
            pool.map(one_sum, files[:procs])  # start the workers, untimed
            t0 = time.perf_counter()
            checksum = sum(pool.map(one_sum, files, chunksize=1))
            secs = time.perf_counter() - t0
    print(json.dumps({
        "impl": "nibabel+scipy",
        "threads": procs,
        "volumes": len(files),
        "seconds": round(secs, 4),
        "volumes_per_s": round(len(files) / secs, 2),
        "cpu_seconds": cpu,
        "checksum": round(checksum, 3),
    }))


if __name__ == "__main__":
    main()
