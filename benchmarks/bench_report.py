"""Wall time and peak memory of ``sme report`` for a whole network (default ResNet-50).

Target (issue 5): the whole of ResNet-50 in under 60 s and under 4 GiB on the project's 2-core
machine.  Runs the report in this process (synthetic weights unless ``--weights``), writes its
outputs to ``--out`` and prints the wall time, the peak resident set size and the slowest
layers with their time split (weight generation + quantization, row-squeeze compile,
segment-squeeze compile, baselines).  It also prints the process's CPU time, since on a
shared machine the wall time includes waiting for a core.

    .venv/bin/python benchmarks/bench_report.py [--network resnet50] [--layers N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from golden.config import preset  # noqa: E402
from sme.report import build_report, resolve, write_report  # noqa: E402

TARGET_SECONDS, TARGET_BYTES = 60.0, 4 << 30


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--network", default="resnet50")
    ap.add_argument("--weights", default=None)
    ap.add_argument("--preset", default="default")
    ap.add_argument("--layers", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="build/bench_report")
    ap.add_argument("--top", type=int, default=10, help="slowest layers to list")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = ru0.ru_utime + ru0.ru_stime
    net, weights, source = resolve(args.network, args.weights, args.seed,
                                   {"distribution": "laplace", "prune": 0.0})
    if args.layers:
        net = net.subset(args.layers)
    rep = build_report(net, weights, source, preset(args.preset), seed=args.seed)
    write_report(rep, args.out)
    wall = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    cpu = ru.ru_utime + ru.ru_stime - cpu0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024     # Linux: KiB
    rows = rep["layers"]
    split = {k: round(sum(r[k] for r in rows), 2) for k in
             ("seconds_quantize", "seconds_row", "seconds_segment", "seconds_baselines")}
    res = {"network": net.name, "layers": len(rows), "wall_seconds": round(wall, 2),
           "cpu_seconds": round(cpu, 2), "load_average": list(os.getloadavg()),
           "peak_rss_bytes": peak, "split_seconds": split,
           "within_target": wall < TARGET_SECONDS and peak < TARGET_BYTES,
           "slowest": [{k: r[k] for k in ("layer", "K", "N", "seconds_quantize", "seconds_row",
                                          "seconds_segment", "seconds_baselines")}
                       for r in sorted(rows, key=lambda r: -(r["seconds"] +
                                                             r["seconds_quantize"]))[:args.top]]}
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    print(f"sme report {net.name}: {len(rows)} layers, wall {wall:.1f} s "
          f"(target < {TARGET_SECONDS:.0f} s), peak RSS {peak / 2**30:.2f} GiB "
          f"(target < {TARGET_BYTES / 2**30:.0f} GiB)")
    print(f"CPU time {cpu:.1f} s (wall - CPU = waiting for a core: the machine is shared; "
          f"load average at the end {os.getloadavg()[0]:.2f})")
    print("time split (s): " + ", ".join(f"{k[8:]} {v}" for k, v in split.items()))
    print(f"{'slowest layers':<26} {'K':>6} {'N':>6} {'quant':>7} {'row':>7} {'segment':>8} "
          f"{'baselines':>9}")
    for r in res["slowest"]:
        print(f"{r['layer']:<26} {r['K']:>6} {r['N']:>6} {r['seconds_quantize']:>7.2f} "
              f"{r['seconds_row']:>7.2f} {r['seconds_segment']:>8.2f} "
              f"{r['seconds_baselines']:>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
