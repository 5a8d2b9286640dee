#!/usr/bin/env bash
# Training-step time of a 3D DenseNet: burn-flex, burn-tch (libtorch CPU) and PyTorch eager
# (MONAI's DenseNet), side by side in one run, with THREADS threads each.
#
# One step = forward + exact Cox loss + backward + Adam. Configurations (issue 4):
#   small preset (init 16, growth 12, blocks 3,3,3) at 4x1x32^3 and 2x1x64^3, and
#   densenet121 at 2x1x64^3 (MONAI DenseNet121 on the PyTorch side).
# Each configuration runs in its own process (so peak RSS is per configuration); median of
# STEPS steps after 2 warm-up steps. Prints one JSON line per run to stderr, keeps them in
# $OUT/results.jsonl, and prints a table with ratios against PyTorch. With --ops, also
# times the step's kernels one by one on every implementation (where does the step go?).
#
#   bench/train_step/run.sh [--ops] [STEPS=10] [THREADS=2]
#
# Needs: python3 with torch==2.9.0 and monai (pip install torch==2.9.0 monai); the Rust side
# is built once, with the tch feature, in the dev profile: every dependency (burn, its
# kernels, libtorch's wrapper) is compiled at opt-level 3 there (Cargo.toml), and the
# example's own code only builds the graph, so a release build of burn would add ~20
# minutes and change nothing measurable.
set -euo pipefail
cd "$(dirname "$0")/../.."
OPS=0
if [[ "${1:-}" == "--ops" ]]; then OPS=1; shift; fi
STEPS=${1:-10}
THREADS=${2:-2}
OUT=${BENCH_OUT:-$(mktemp -d /tmp/cohort-train-step.XXXXXX)}
export RAYON_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS
export LIBTORCH_USE_PYTORCH=1

cargo build -q -p cohort-worker --features tch --example train_step
BIN=${CARGO_TARGET_DIR:-target}/debug/examples/train_step
RESULTS=$OUT/results.jsonl
: > "$RESULTS"

run() { "$@" | tee -a "$RESULTS" >&2; }

for cfg in "small 4x1x32x32x32" "small 2x1x64x64x64" "densenet121 2x1x64x64x64"; do
  set -- $cfg
  for backend in flex tch; do
    run "$BIN" --backend "$backend" --preset "$1" --shape "$2" --steps "$STEPS"
  done
  run python3 bench/train_step/torch_step.py --preset "$1" --shape "$2" --steps "$STEPS" \
    --threads "$THREADS"
done
if [[ $OPS == 1 ]]; then
  for shape in 4x1x32x32x32 2x1x64x64x64; do
    for backend in flex tch; do
      run "$BIN" --ops --backend "$backend" --preset small --shape "$shape" --steps 5
    done
    run python3 bench/train_step/torch_step.py --ops --preset small --shape "$shape" \
      --threads "$THREADS"
  done
fi
python3 bench/train_step/report.py "$RESULTS"
echo "results: $RESULTS" >&2
