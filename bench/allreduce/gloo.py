"""One rank of the torch.distributed gloo all-reduce benchmark (run.sh starts
one process per rank). Same protocol as the Rust side: `warmup` untimed then
`iters` timed sum all-reduces of each size; rank 0 prints one JSON line per
size with the median and the bus bandwidth 2(n-1)/n * bytes / time."""
import argparse
import json
import time

import torch
import torch.distributed as dist

p = argparse.ArgumentParser()
p.add_argument("--rank", type=int, required=True)
p.add_argument("--world", type=int, required=True)
p.add_argument("--port", type=int, default=29511)
p.add_argument("--sizes", default="11200000,1000000")
p.add_argument("--iters", type=int, default=20)
p.add_argument("--warmup", type=int, default=3)
a = p.parse_args()

dist.init_process_group(
    "gloo", init_method=f"tcp://127.0.0.1:{a.port}", rank=a.rank, world_size=a.world
)
for size in map(int, a.sizes.split(",")):
    base = torch.arange(size, dtype=torch.float32).remainder_(1000).mul_(1e-3)
    t = base.clone()
    times = []
    cpu = 0.0
    for i in range(a.warmup + a.iters):
        t.copy_(base)
        cpu_start = time.process_time()
        start = time.perf_counter()
        dist.all_reduce(t)
        if i >= a.warmup:
            times.append(time.perf_counter() - start)
            cpu += time.process_time() - cpu_start
    times.sort()
    median = times[len(times) // 2]
    n = a.world
    busbw = 2 * (n - 1) / n * size * 4 / median / 1e9
    if a.rank == 0:
        print(json.dumps({"impl": "gloo", "n": n, "elems": size, "median_s": round(median, 6),
                          "min_s": round(times[0], 6), "busbw_gbs": round(busbw, 3),
                          "cpu_s": round(cpu / a.iters, 4)}), flush=True)
dist.barrier()
dist.destroy_process_group()
