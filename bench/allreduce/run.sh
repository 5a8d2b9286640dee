#!/usr/bin/env bash
# Ring all-reduce benchmark: Cohort's gRPC ring against torch.distributed gloo,
# side by side, every rank a separate process on loopback (run by hand).
# All-reduce (sum) of 11.2 million float32 (DenseNet121-3D's gradient) and of
# 1 million, with 2 and 4 ranks; median of ITERS after a warm-up; bus
# bandwidth = 2(n-1)/n * bytes / time.
#
# Needs: python3 with torch. Usage: bench/allreduce/run.sh [extra args for the
# Rust ranks, e.g. --wire bf16 --chunk-bytes 524288]
# Env: PROFILE (dev|release; default dev: the kernels (cohort-wire) and every
# dependency are at opt-level 3 there too, and dev shares the warm build),
# WORLDS ("2 4"), SIZES, ITERS, THREADS (tokio threads per Rust rank; 0, the
# default, is one per core), FEATURES
# (cargo features of cohort-worker, e.g. "tch" to reuse a test build). Besides
# wall time it prints the CPU seconds rank 0 spent per all-reduce, steadier than
# wall time on a loaded machine.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/bench/allreduce"
profile=${PROFILE:-dev}
worlds=${WORLDS:-"2 4"}
sizes=${SIZES:-11200000,1000000}
iters=${ITERS:-20}
threads=${THREADS:-0}
target=${CARGO_TARGET_DIR:-$root/target}
export COHORT_TOKEN=${COHORT_TOKEN:-bench-$RANDOM$RANDOM}

echo "building the Rust benchmark ($profile) ..." >&2
(cd "$root" && cargo build -q --profile "$profile" -p cohort-worker ${FEATURES:+--features "$FEATURES"} --example allreduce_bench)
dir=$([ "$profile" = dev ] && echo debug || echo "$profile")
bin="$target/$dir/examples/allreduce_bench"

out=$(mktemp)
for n in $worlds; do
  peers=$(python3 -c "print(','.join(f'127.0.0.1:{47100 + r}' for r in range($n)))")
  echo "cohort ring, $n ranks ..." >&2
  pids=()
  for ((r = 0; r < n; r++)); do
    "$bin" --rank "$r" --peers "$peers" --sizes "$sizes" --iters "$iters" --threads "$threads" "$@" >>"$out" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  echo "gloo, $n ranks ..." >&2
  pids=()
  for ((r = 0; r < n; r++)); do
    python3 "$here/gloo.py" --rank "$r" --world "$n" --sizes "$sizes" --iters "$iters" >>"$out" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
done

python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print(f"{'impl':<20} {'ranks':>5} {'floats':>10} {'median s':>10} {'min s':>9} {'bus GB/s':>9} {'CPU s/op':>9}")
for r in sorted(rows, key=lambda r: (r["n"], -r["elems"], r["impl"])):
    print(f"{r['impl']:<20} {r['n']:>5} {r['elems']:>10} {r['median_s']:>10.4f} {r['min_s']:>9.4f} {r['busbw_gbs']:>9.3f} {r['cpu_s']:>9.4f}")
PY
rm -f "$out"
