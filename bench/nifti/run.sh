#!/usr/bin/env bash
# Decode + preprocess throughput of .nii.gz volumes: cohort vs nibabel + scipy.
#
# Writes COUNT int16 volumes (NX x NY x NZ at 0.5 x 0.5 x 2 mm, gzip) with
# cohort's writer, then times, on the same files: read, decode, resample to
# 1 mm (trilinear), z-score over nonzero voxels, crop/pad to 96^3. Each side
# runs with 1 thread, then with THREADS (rayon for cohort, a process pool for
# Python). Prints one JSON line per run and a summary.
#
#   bench/nifti/run.sh [COUNT=200] [DIMS=128x128x64] [THREADS=$(nproc)]
#
# Needs: cargo, python3 with nibabel and scipy (pip install nibabel scipy).
set -euo pipefail
cd "$(dirname "$0")/../.."
COUNT=${1:-200}
DIMS=${2:-128x128x64}
THREADS=${3:-$(nproc)}
DATA=${BENCH_DATA:-$(mktemp -d /tmp/cohort-nifti-bench.XXXXXX)}
trap '[[ -z "${BENCH_DATA:-}" ]] && rm -rf "$DATA"' EXIT

cargo build --release -q -p cohort-common --example nifti_bench
BIN=target/release/examples/nifti_bench

# nibabel reads what our writer writes (rotated, qfac -1, both encodings).
"$BIN" sample "$DATA/writer-check"
python3 bench/nifti/check_writer.py "$DATA/writer-check" >&2

if ! ls "$DATA"/*.nii.gz >/dev/null 2>&1; then
  "$BIN" gen "$DATA" "$COUNT" "$DIMS" 0.5x0.5x2
fi
echo "# $(ls "$DATA"/*.nii.gz | wc -l) volumes of $DIMS int16 in $DATA ($(du -sh "$DATA" | cut -f1)), $(nproc) cores" >&2

results=$(mktemp)
"$BIN" run "$DATA" 1 "$DATA/first.f32" | tee -a "$results"
python3 bench/nifti/nib_bench.py "$DATA" 1 "$DATA/first.f32" | tee -a "$results"
if [[ "$THREADS" -gt 1 ]]; then
  "$BIN" run "$DATA" "$THREADS" | tee -a "$results"
  python3 bench/nifti/nib_bench.py "$DATA" "$THREADS" | tee -a "$results"
fi

python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"impl"' in l]
by = {(r["impl"], r["threads"]): r["volumes_per_s"] for r in rows}
for t in sorted({r["threads"] for r in rows}):
    ours, theirs = by.get(("cohort", t)), by.get(("nibabel+scipy", t))
    if ours and theirs:
        print(f"threads={t}: cohort {ours:.1f} vol/s, nibabel+scipy {theirs:.1f} vol/s (wall), speed-up {ours / theirs:.2f}x")
cpu = {r["impl"]: r for r in rows if r["threads"] == 1 and r.get("cpu_seconds")}
if len(cpu) == 2:
    o, p = cpu["cohort"], cpu["nibabel+scipy"]
    ro, rp = o["volumes"] / o["cpu_seconds"], p["volumes"] / p["cpu_seconds"]
    print(f"threads=1 by CPU time: cohort {ro:.1f} vol/CPU-s, nibabel+scipy {rp:.1f} vol/CPU-s, speed-up {ro / rp:.2f}x")
PY
rm -f "$results"
