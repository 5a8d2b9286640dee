#!/usr/bin/env bash
# Regenerates the extra R reference data sets used by common/tests/survival_*.rs
# (lung, lung_complete, colon, pbc) with the shared reference scripts, and
# stores them, trimmed to the parts the tests read, in
# common/tests/data/survival/r/.
#
# Needs: r-base-core r-cran-survival r-cran-jsonlite r-cran-maxstat (Debian).
# Usage: bench/survival/reference_extra.sh   (from the workspace root)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
scripts="$root/../shared/reference/survival/scripts"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
Rscript "$scripts/build_data.R" "$out" >/dev/null
Rscript "$scripts/reference.R" "$out" lung lung_complete colon pbc >/dev/null 2>&1
dest="$root/common/tests/data/survival/r"
mkdir -p "$dest"
for name in lung lung_complete colon pbc; do
  cp "$out/$name.csv" "$dest/$name.csv"
  python3 - "$out/$name.json" "$dest/$name.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
# The cut-off sections are another module's; the tests here do not read them.
for k in ("maxstat", "crosscheck", "cox_zph"):
    d.pop(k, None)
json.dump(d, open(sys.argv[2], "w"), separators=(",", ":"))
PY
done
echo "wrote $(ls "$dest" | wc -l) files to $dest"
