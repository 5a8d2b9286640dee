"""nibabel reads what cohort's NIfTI writer writes.

    cargo run --release -p cohort-common --example nifti_bench -- sample DIR
    python3 bench/nifti/check_writer.py DIR

The sample is a 7x5x4 volume, v[n] = sin(0.37 n) * 100 + 20 (n the flat index,
i fastest), pixdim 0.8 x 0.9 x 2.5, rotated 30 degrees about z with the k axis
flipped (qfac -1), written as float32 .nii.gz and as scaled int16 .nii.
"""

import math
import os
import sys

import nibabel as nib
import numpy as np

directory = sys.argv[1]
n = np.arange(7 * 5 * 4, dtype=np.float32)
want = (np.sin(n * np.float32(0.37)) * np.float32(100) + np.float32(20)).reshape((7, 5, 4), order="F")
s, c = math.sin(math.radians(30)), math.cos(math.radians(30))
p = [0.8, 0.9, 2.5]
affine = np.array([
    [c * p[0], -s * p[1], 0, -12.5],
    [s * p[0], c * p[1], 0, 30.0],
    [0, 0, -p[2], -7.0],
    [0, 0, 0, 1],
])
failures = 0
for name, tol in [("rot_f32.nii.gz", 1e-4), ("rot_i16.nii", 200 / 65534 * 0.51 + 1e-4)]:
    img = nib.load(os.path.join(directory, name))
    hdr = img.header
    data = img.get_fdata()
    checks = {
        "shape": data.shape == (7, 5, 4),
        "values": float(np.abs(data - want).max()) <= tol,
        "sform affine": np.allclose(img.affine, affine, atol=1e-5),
        "qform affine": np.allclose(hdr.get_qform(), affine, atol=1e-5),
        "codes": int(hdr["qform_code"]) == 2 and int(hdr["sform_code"]) == 2,
        "zooms": np.allclose(hdr.get_zooms(), p, atol=1e-6),
    }
    print(name, hdr.get_data_dtype(), "max |diff|", float(np.abs(data - want).max()), checks)
    failures += sum(not ok for ok in checks.values())
sys.exit(1 if failures else 0)
