"""Speedup of ``sme sweep`` with 2 Dask workers over 1, and the scheduler's overhead per task.

Runs the same sweep (default: ResNet-50, synthetic weights, 8 points = crossbars 64/128/256/512
x OU 9x8/16x16, segment squeeze and the ISAAC baseline, no cache) on an embedded LocalCluster
with 1 worker process and then with 2, and prints for each: the wall time of the sweep (cluster
start excluded; weight generation, scatter and every compile included), the summed compile
time of its tasks, and the overhead per task = (wall x workers - task seconds) / tasks (idle
workers at the end count as overhead).  Then it times 1,000 empty tasks through the 2-worker
cluster: the scheduler's round trip per task with nothing to compute.  Both runs must give the
same table.  On a shared machine the load average is printed before and after: other
processes on the cores lower the speedup.

    .venv/bin/python benchmarks/bench_sweep.py [--network resnet50] [--layers N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sme import sweep  # noqa: E402

TARGET = 1.7


def _noop(x):
    return x


def run(pl, workers: int) -> tuple[float, sweep.SweepResult]:
    from dask.distributed import Client

    with sweep.local_cluster(workers) as cl, Client(cl) as c:
        c.wait_for_workers(workers)
        c.run(sweep.code_version)           # import the code on every worker before timing
        t0 = time.perf_counter()
        res = sweep.run_sweep(pl, c, cache=None)
        wall = time.perf_counter() - t0
        overhead = None
        if workers == 2:
            n = 1000
            t1 = time.perf_counter()
            futs = c.map(_noop, range(n), pure=False)
            c.gather(futs)
            overhead = (time.perf_counter() - t1) / n
    return wall, res, overhead


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--network", default="resnet50")
    ap.add_argument("--layers", type=int, default=0, help="only the first N layers")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    spec = {"name": "bench", "networks": [args.network], "layers": args.layers,
            "schemes": ["segment", "isaac"],
            "grid": {"xbar": [64, 128, 256, 512], "ou": ["9x8", "16x16"]}}
    pl = sweep.plan(spec)
    load0 = os.getloadavg()
    figures = {"network": args.network, "points": len(pl.valid), "cpus": os.cpu_count(),
               "load_average_before": [round(x, 2) for x in load0]}
    tables = {}
    for workers in (1, 2):
        wall, res, noop = run(pl, workers)
        tasks = res.stats["computed"]
        busy = res.stats["task_seconds"]
        figures[f"workers_{workers}"] = {
            "wall_seconds": round(wall, 2), "tasks": tasks, "task_seconds": round(busy, 2),
            "overhead_ms_per_task": round(1e3 * (wall * workers - busy) / max(1, tasks), 2)}
        if noop is not None:
            figures["empty_task_round_trip_ms"] = round(noop * 1e3, 3)
        tables[workers] = [{k: v for k, v in r.items() if k != "compile_seconds"}
                           for r in res.rows]
    figures["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    figures["speedup"] = round(figures["workers_1"]["wall_seconds"]
                               / figures["workers_2"]["wall_seconds"], 3)
    figures["same_results"] = tables[1] == tables[2]
    if args.json:
        print(json.dumps(figures, indent=1))
    else:
        print(f"sweep: {args.network}{f'[:{args.layers}]' if args.layers else ''}, "
              f"{figures['points']} points, {figures['workers_1']['tasks']} layer compiles, "
              f"{figures['cpus']} CPUs, load average before {figures['load_average_before']}")
        for w in (1, 2):
            f = figures[f"workers_{w}"]
            print(f"  {w} worker{'s' if w > 1 else ' '}: {f['wall_seconds']:8.2f} s wall, "
                  f"{f['task_seconds']:8.2f} s in tasks, overhead {f['overhead_ms_per_task']} "
                  "ms/task")
        print(f"  speedup 2 workers / 1: {figures['speedup']}x (target >= {TARGET}x); "
              f"same results: {figures['same_results']}")
        print(f"  empty task round trip (2 workers, 1000 tasks): "
              f"{figures['empty_task_round_trip_ms']} ms/task")
        print(f"  load average after {figures['load_average_after']}")
    return 0 if figures["same_results"] else 1


if __name__ == "__main__":
    sys.exit(main())
