"""RTL tile benchmark: per preset, cycles per vector (RTL vs model), OU activations per cycle
per crossbar in steady state, and Amaranth-simulator speed.

    .venv/bin/python benchmarks/bench_rtl.py [--presets tiny,tiny_mlc,fpga_small,default]
                                             [--vectors 4] [--seed 0]

The layer of each preset is random (window pattern, segment squeeze), the largest that fits one
tile; no stalls on any stream.  "steps/cycle" is the scheduler's issue rate (hardware: 1.0);
"acts/cycle/xbar" also counts lanes the compiler left idle in a step.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from golden import compiler, tile_image as ti, vmm  # noqa: E402
from golden.config import preset  # noqa: E402
from sim.amaranth_tile import simulate  # noqa: E402
from sim.stimulus import fitting_layer  # noqa: E402


def bench(name, vectors, seed):
    """One random layer that fills a tile of preset ``name`` as far as random layers do, run on
    the Amaranth tile (``sim.amaranth_tile.simulate``, no stalls) for ``vectors`` vectors."""
    cfg = preset(name)
    rng = np.random.default_rng(seed)
    p = compiler.compile_matrix(fitting_layer(cfg, rng, squeezes=("segment",), largest=True),
                                cfg, squeeze="segment")
    X = rng.integers(0, cfg.max_input + 1, size=(vectors, p.shape[0]))
    Y, _ = vmm.run(p, X)
    run = simulate(p, X)
    assert np.array_equal(run.outputs, Y), f"{name}: RTL output differs from golden run"
    span = run.issue_spans
    return {
        "preset": name, "shape": p.shape, "xbars": p.n_xbars, "steps": p.n_steps,
        "rtl_cycles": span[0] if span else 0, "model_cycles": vmm.predicted_cycles(p),
        "all_equal": len(set(span)) <= 1,
        "steps_per_cycle": sum(run.issue_cycles) / sum(span) if sum(span) else float("nan"),
        "acts_per_cycle_per_xbar": (run.active_lanes / (sum(span) * p.n_xbars)
                                    if sum(span) else float("nan")),
        "sim_cycles_per_s": run.sim_cycles / run.sim_seconds, "sim_cycles": run.sim_cycles,
        "load_words": len(ti.build_image(p, cfg)),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="tiny,tiny_mlc,fpga_small,default")
    ap.add_argument("--vectors", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    print(f"{'preset':<11}{'K x N':>9}{'xbars':>6}{'steps':>6}{'RTL cyc/vec':>12}"
          f"{'model':>7}{'steps/cyc':>10}{'acts/cyc/xbar':>14}{'sim cyc/s':>11}")
    for name in args.presets.split(","):
        r = bench(name, args.vectors, args.seed)
        print(f"{r['preset']:<11}{'%dx%d' % r['shape']:>9}{r['xbars']:>6}{r['steps']:>6}"
              f"{r['rtl_cycles']:>12}{r['model_cycles']:>7}{r['steps_per_cycle']:>10.3f}"
              f"{r['acts_per_cycle_per_xbar']:>14.3f}{r['sim_cycles_per_s']:>11.0f}"
              + ("" if r["all_equal"] and r["rtl_cycles"] == r["model_cycles"]
                 else "   MISMATCH"))


if __name__ == "__main__":
    main()
