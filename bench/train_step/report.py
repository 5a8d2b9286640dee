#!/usr/bin/env python3
"""Table of bench/train_step results: median step time, ratio to PyTorch, peak RSS; and,
for --ops runs, seconds per kernel kind per step with the ratio to PyTorch's."""

import json
import sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
steps = [r for r in rows if r.get("mode") != "ops"]
ops = [r for r in rows if r.get("mode") == "ops"]


def key(r):
    return (r["preset"], "x".join(map(str, r["shape"])))


ref = {key(r): r for r in steps if not r["impl"].startswith("burn-")}


def ratio(r, field):
    base = ref.get(key(r))
    if not base or field not in r or field not in base:
        return "-"
    return f"{r[field] / base[field]:.2f}x"


print("wall: median (and min) seconds per step; cpu: median process CPU seconds per step;")
print("adam: median seconds of the optimizer step alone (part of the step);")
print("ratios against PyTorch eager on the same configuration.")
print(f"{'preset':<12} {'shape':<14} {'impl':<18} {'median s':>9} {'min s':>7} {'vs torch':>9} "
      f"{'min vs':>7} {'cpu s':>7} {'cpu vs':>7} {'adam s':>7} {'peak RSS MiB':>13}")
for r in steps:
    print(f"{r['preset']:<12} {key(r)[1]:<14} {r['impl']:<18} {r['median_s']:>9.3f} "
          f"{r.get('min_s', float('nan')):>7.3f} {ratio(r, 'median_s'):>9} {ratio(r, 'min_s'):>7} "
          f"{r.get('cpu_median_s', float('nan')):>7.3f} {ratio(r, 'cpu_median_s'):>7} "
          f"{r.get('optim_median_s', float('nan')):>7.3f} "
          f"{r['peak_rss_mib']:>13.0f}")

if ops:
    print()
    print("kernels, forward + backward, seconds per step (sum over the step's layers):")
    ref_ops = {key(r): r["totals_s"] for r in ops if r["impl"] == "pytorch"}
    for r in ops:
        base = ref_ops.get(key(r), {})
        parts = []
        for kind, t in sorted(r["totals_s"].items()):
            b = base.get(kind)
            parts.append(f"{kind} {t:.3f}" + (f" ({t / b:.1f}x)" if b else ""))
        total = sum(r["totals_s"].values())
        btot = sum(base.values()) if base else None
        tot = f"total {total:.3f}" + (f" ({total / btot:.2f}x)" if btot else "")
        print(f"  {key(r)[1]:<14} {r['impl']:<10} {tot}; " + "; ".join(parts))

    print()
    print("convolutions, milliseconds per call: forward + backward (forward alone)")
    by = {}
    for r in ops:
        for o in r["ops"]:
            if o["kind"] == "conv3d":
                by.setdefault((key(r)[1], o["what"]), {})[r["impl"]] = o
    impls = ["burn-flex", "burn-tch", "pytorch"]
    print(f"  {'shape':<14} {'layer':<36} " + " ".join(f"{i:>20}" for i in impls))
    for (shape, what), d in by.items():
        cells = []
        for i in impls:
            o = d.get(i)
            if o is None:
                cells.append(f"{'-':>20}")
            else:
                f = o.get("forward_s")
                fs = f" ({f * 1e3:.1f})" if f is not None else ""
                cells.append(f"{o['median_s'] * 1e3:>11.1f}{fs:>9}")
        print(f"  {shape:<14} {what:<36} " + " ".join(cells))
