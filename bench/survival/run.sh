#!/usr/bin/env bash
# Side-by-side benchmark of the survival engine against R survival and
# lifelines on the 100,000-row synthetic set (run by hand, not in CI):
# Cox Efron fit (5 covariates, 200 distinct times, heavy ties), Harrell's C,
# log-rank with 2 and 5 groups. Each tool times the computation only (data
# in memory), median of 5 after a warm-up; the script checks that the
# results agree and prints the speed ratios.
#
# Needs: Rscript with survival and jsonlite; python3 with lifelines (a venv
# is made in $VENV, default /tmp/cohort-bench-venv, if lifelines is missing).
# Usage: bench/survival/run.sh [WORKDIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/bench/survival"
work=${1:-$(mktemp -d)}
mkdir -p "$work"
scripts="$root/../shared/reference/survival/scripts"
venv=${VENV:-/tmp/cohort-bench-venv}

if [ ! -f "$work/synthetic.csv" ]; then
  echo "generating the synthetic data set (scripts/build_data.R) ..." >&2
  Rscript "$scripts/build_data.R" "$work" >/dev/null
fi
py=python3
if ! $py -c "import lifelines" 2>/dev/null; then
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/python" -c "import lifelines" 2>/dev/null || "$venv/bin/pip" install -q lifelines
  py="$venv/bin/python"
fi

echo "building the Rust benchmark (release) ..." >&2
(cd "$root" && cargo build -q --release -p cohort-common --example survival_bench)
echo "timing Rust ..." >&2
"$root/target/release/examples/survival_bench" "$work/synthetic.csv" > "$work/rust.json"
# The Cox pass computes e^η on rayon's threads; the CPU-time column uses a
# single-threaded run, where the thread's CPU time is the process's.
RAYON_NUM_THREADS=1 "$root/target/release/examples/survival_bench" "$work/synthetic.csv" > "$work/rust1.json"
echo "timing R ..." >&2
Rscript "$here/bench.R" "$work/synthetic.csv" > "$work/r.json"
echo "timing lifelines ..." >&2
$py "$here/bench_lifelines.py" "$work/synthetic.csv" > "$work/lifelines.json"

python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
rs, r, ll = (json.load(open(f"{w}/{n}.json")) for n in ("rust", "r", "lifelines"))
rs["cpu_seconds"] = json.load(open(f"{w}/rust1.json"))["cpu_seconds"]
def rel(a, b):
    return max(abs(x - y) / abs(y) for x, y in zip(a, b))
print(f"n = {rs['n']}, events = {rs['events']}\n")
for clock, label in [("seconds", "wall clock"),
                     ("cpu_seconds", "CPU time (cohort on 1 thread; R and lifelines: process)")]:
    print(f"median {label} (s):")
    print(f"{'':22}{'cohort':>10}{'R':>10}{'lifelines':>11}{'R/cohort':>10}{'lifelines/cohort':>18}")
    for key, name in [("cox_efron", "Cox Efron fit"), ("concordance", "Harrell's C"),
                      ("logrank_2", "log-rank, 2 groups"), ("logrank_5", "log-rank, 5 groups")]:
        a, b, c = rs[clock][key], r[clock][key], ll[clock][key]
        print(f"{name:22}{a:10.4f}{b:10.4f}{c:11.4f}{b / a:10.1f}{c / a:18.1f}")
    print()
print("agreement (max relative difference):")
checks = [
    ("Cox coef vs R", rel(rs["cox"]["coef"], r["cox"]["coef"]), 1e-6),
    ("Cox se vs R", rel(rs["cox"]["se"], r["cox"]["se"]), 1e-5),
    ("Cox loglik vs R", rel([rs["cox"]["loglik"]], [r["cox"]["loglik"]]), 1e-9),
    ("Cox coef vs lifelines", rel(rs["cox"]["coef"], ll["cox"]["coef"]), 1e-4),
    ("C vs R", rel([rs["concordance"]["c"]], [r["concordance"]["c"]]), 1e-9),
    ("C se vs R", rel([rs["concordance"]["se"]], [r["concordance"]["se"]]), 1e-6),
    ("C vs lifelines", rel([rs["concordance"]["c"]], [ll["concordance"]["c"]]), 1e-6),
    ("log-rank 2 vs R", rel([rs["logrank_2"]["chisq"]], [r["logrank_2"]["chisq"]]), 1e-9),
    ("log-rank 5 vs R", rel([rs["logrank_5"]["chisq"]], [r["logrank_5"]["chisq"]]), 1e-9),
    ("log-rank 2 vs lifelines", rel([rs["logrank_2"]["chisq"]], [ll["logrank_2"]["chisq"]]), 1e-9),
    ("log-rank 5 vs lifelines", rel([rs["logrank_5"]["chisq"]], [ll["logrank_5"]["chisq"]]), 1e-9),
]
ok = True
for name, d, tol in checks:
    flag = "ok" if d <= tol else "DIFFERS"
    ok &= d <= tol
    print(f"  {name:26}{d:10.2e}  (tolerance {tol:g})  {flag}")
sys.exit(0 if ok else 1)
PY
