#!/usr/bin/env python3
"""PyTorch eager side of bench/train_step: the same step as worker/examples/train_step.rs.

One step = forward of MONAI's DenseNet (spatial_dims=3, the preset's arguments), the Cox
negative log partial likelihood of the batch (Breslow, normalised by the number of events;
its cost is negligible next to the network), backward, Adam. Prints one JSON line with the
median step time and the peak RSS, like the Rust example. `--ops` times the step's kernels
one by one at the same shapes as the example's `--ops`.
"""

import argparse
import json
import resource
import statistics
import time

import torch
from monai.networks.nets import DenseNet

PRESETS = {
    "densenet121": dict(init_features=64, growth_rate=32, block_config=(6, 12, 24, 16), bn_size=4),
    "small": dict(init_features=16, growth_rate=12, block_config=(3, 3, 3), bn_size=4),
    "tiny": dict(init_features=8, growth_rate=4, block_config=(2, 2), bn_size=2),
}


def cox_loss(eta, time_, event):
    order = torch.argsort(time_, descending=True)
    eta, event = eta[order], event[order]
    log_risk = torch.logcumsumexp(eta, dim=0)
    events = event.sum().clamp(min=1)
    return -((eta - log_risk) * event).sum() / events


def timed(fn, warmup, steps):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def step_bench(args, shape):
    n, c = shape[0], shape[1]
    model = DenseNet(spatial_dims=3, in_channels=c, out_channels=1, **PRESETS[args.preset])
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.randn(*shape)
    t = torch.arange(1, n + 1, dtype=torch.float32)
    e = torch.tensor([float(i % 4 != 3) for i in range(n)])
    out = {"cpu": [], "optim": []}

    def one():
        c0 = time.process_time()
        opt.zero_grad(set_to_none=True)
        eta = model(x)[:, 0]
        loss = cox_loss(eta, t, e)
        loss.backward()
        t_opt = time.perf_counter()
        opt.step()
        out["optim"].append(time.perf_counter() - t_opt)
        out["loss"] = loss.item()
        out["cpu"].append(time.process_time() - c0)

    med, times = timed(one, args.warmup, args.steps)
    return {
        "impl": "pytorch" if args.preset != "densenet121" else "monai-densenet121",
        "preset": args.preset,
        "shape": shape,
        "params": sum(p.numel() for p in model.parameters()),
        "median_s": med,
        "min_s": min(times),
        "cpu_median_s": statistics.median(out["cpu"][args.warmup:]),
        "optim_median_s": statistics.median(out["optim"][args.warmup:]),
        "times_s": times,
        "loss": out["loss"],
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


def ops_bench(args, shape):
    """Kernel by kernel, forward + backward, weighted by occurrences (see the Rust --ops)."""
    p = PRESETS[args.preset]
    n, c_in, d0 = shape[0], shape[1], shape[2]
    reps = max(3, min(args.steps, 7))
    rows = []

    def normal(*s):
        return torch.randn(*s, requires_grad=True)

    def t_fn(fn):
        return timed(fn, 1, reps)[0]

    def conv(ci, co, k, stride, s):
        x, w = normal(n, ci, s, s, s), normal(co, ci, k, k, k)
        if stride == 2:  # the stem's input is data: no gradient
            x = x.detach()

        def f():
            torch.nn.functional.conv3d(x, w, stride=stride, padding=k // 2).sum().backward()

        def fwd():
            with torch.no_grad():
                torch.nn.functional.conv3d(x, w, stride=stride, padding=k // 2).sum().item()

        return t_fn(f), t_fn(fwd)

    def norm(ch, s):
        x = normal(n, ch, s, s, s)
        bn = torch.nn.BatchNorm3d(ch)

        def f():
            torch.relu(bn(x)).sum().backward()

        return t_fn(f)

    def push(kind, what, count, med):
        fwd = None
        if isinstance(med, tuple):
            med, fwd = med
        rows.append(dict(kind=kind, what=what, count=count, median_s=med, forward_s=fwd,
                         total_s=med * count))

    def avg(a, b):
        return ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)

    f0 = p["init_features"]
    push("conv3d", f"stem 7^3/2 {c_in}->{f0} {d0}^3", 1, conv(c_in, f0, 7, 2, d0))
    s = (d0 + 1) // 2
    push("batch_norm+relu", f"{f0}ch {s}^3", 1, norm(f0, s))
    x = normal(n, f0, s, s, s)
    push("pool", f"max 3^3/2 {f0}ch {s}^3", 1,
         t_fn(lambda: torch.nn.functional.max_pool3d(x, 3, 2, 1).sum().backward()))
    s = (s + 1) // 2
    k, b = p["growth_rate"], p["bn_size"] * p["growth_rate"]
    c = f0
    blocks = p["block_config"]
    for i, layers in enumerate(blocks):
        blk = i + 1
        c_last = c + (layers - 1) * k
        push("conv3d", f"block{blk} 1^3 {c}..{c_last}->{b} {s}^3", layers,
             avg(conv(c, b, 1, 1, s), conv(c_last, b, 1, 1, s)))
        push("conv3d", f"block{blk} 3^3 {b}->{k} {s}^3", layers, conv(b, k, 3, 1, s))
        push("batch_norm+relu", f"block{blk} norm1 {c}..{c_last}ch {s}^3", layers,
             (norm(c, s) + norm(c_last, s)) / 2)
        push("batch_norm+relu", f"block{blk} norm2 {b}ch {s}^3", layers, norm(b, s))
        xa, xb = normal(n, c_last, s, s, s), normal(n, k, s, s, s)
        push("cat", f"block{blk} cat {c_last}+{k} {s}^3", layers,
             t_fn(lambda: torch.cat([xa, xb], 1).sum().backward()))
        c += layers * k
        push("batch_norm+relu", f"after block{blk} {c}ch {s}^3", 1, norm(c, s))
        if i + 1 < len(blocks):
            push("conv3d", f"transition{blk} 1^3 {c}->{c // 2} {s}^3", 1, conv(c, c // 2, 1, 1, s))
            c //= 2
            x2 = normal(n, c, s, s, s)
            push("pool", f"avg 2^3 {c}ch {s}^3", 1,
                 t_fn(lambda: torch.nn.functional.avg_pool3d(x2, 2).sum().backward()))
            s //= 2
    totals = {}
    for r in rows:
        totals[r["kind"]] = totals.get(r["kind"], 0.0) + r["total_s"]
    return {"impl": "pytorch", "mode": "ops", "preset": args.preset, "shape": shape,
            "totals_s": totals, "ops": rows}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="small")
    ap.add_argument("--shape", default="4x1x32x32x32")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ops", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    shape = [int(v) for v in args.shape.split("x")]
    result = ops_bench(args, shape) if args.ops else step_bench(args, shape)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
