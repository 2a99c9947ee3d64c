"""Simulation speed of the SME tile under cocotb: Icarus vs Verilator (cycles per second).

    .venv/bin/python benchmarks/bench_cocotb.py [--targets tiny fpga_small] [--cycles 20000]
                                                [--sims icarus verilator] [--json OUT]

Each measurement is the tile bench's ``tile_soak`` test (programs from ``sme compile``, random
vectors, random idle p=0.3 on the inputs and backpressure p=0.4 on the output, every output
checked against the golden model) running for ``--cycles`` clock cycles; cycles/s is counted
inside the simulation loop, so Verilog emission, the simulator build and start-up are not
included (they are printed separately as ``build+start s``).  Runs are sequential: the
figures are meant for one core.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sim.harness import build, run_tile  # noqa: E402


def measure(target: str, sim: str, cycles: int) -> dict:
    t0 = time.monotonic()
    build(sim, target, "sme_tile")
    t_build = time.monotonic() - t0
    r = run_tile(target, ["tile_soak"], sim=sim, seed=7, vectors=16, programs=2,
                 env={"SME_SOAK_CYCLES": cycles}, run=f"speed-{cycles}")
    r.check()
    s = json.loads((r.run_dir / "soak.json").read_text())
    return {"target": target, "sim": sim, "cycles": s["cycles"], "seconds": s["wall_seconds"],
            "cycles_per_second": s["cycles_per_second"], "mismatches": s["mismatches"],
            "build_seconds": round(t_build, 1),
            "run_overhead_seconds": round(r.seconds - s["wall_seconds"], 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", nargs="+", default=["tiny", "fpga_small"])
    ap.add_argument("--sims", nargs="+", default=["icarus", "verilator"])
    ap.add_argument("--cycles", type=int, default=20000)
    ap.add_argument("--json", default=None, help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    rows = []
    print(f"{'target':<12}{'simulator':<11}{'cycles':>9}{'sim s':>8}{'cycles/s':>10}"
          f"{'build s':>9}{'start s':>9}")
    for target in args.targets:
        for sim in args.sims:
            row = measure(target, sim, args.cycles)
            rows.append(row)
            print(f"{target:<12}{sim:<11}{row['cycles']:>9}{row['seconds']:>8.1f}"
                  f"{row['cycles_per_second']:>10.0f}{row['build_seconds']:>9.1f}"
                  f"{row['run_overhead_seconds']:>9.1f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "host": platform.node(),
                                               "cpus": os.cpu_count()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
