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
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from amaranth.hdl import Cat  # noqa: E402
from amaranth.sim import Simulator  # noqa: E402

from golden import compiler, tile_image as ti, vmm  # noqa: E402
from golden.config import preset  # noqa: E402
from rtl.tile import Tile  # noqa: E402
from sim.stimulus import fitting_layer  # noqa: E402


def bench(name, vectors, seed):
    cfg = preset(name)
    rng = np.random.default_rng(seed)
    p = compiler.compile_matrix(fitting_layer(cfg, rng, squeezes=("segment",), largest=True),
                                cfg, squeeze="segment")
    X = rng.integers(0, cfg.max_input + 1, size=(vectors, p.shape[0]))
    Y, _ = vmm.run(p, X)
    dut = Tile(cfg)
    words = ti.build_image(p, cfg)
    got, issues, counts = [], [], {"cycles": 0}

    async def tb(ctx):
        ctx.set(dut.i_load.valid, 1)
        for i, w in enumerate(words):
            ctx.set(dut.i_load.payload, {"data": int(w), "last": int(i == len(words) - 1)})
            await ctx.tick().until(dut.i_load.ready)
        ctx.set(dut.i_load.valid, 0)
        await ctx.tick()
        st = ctx.get(dut.status)
        assert st.loaded, f"{name}: load failed: {st}"
        ctx.set(dut.o_vec.ready, 1)
        for x in X:
            ctx.set(dut.i_vec.valid, 1)
            for i, v in enumerate(x):
                ctx.set(dut.i_vec.payload, {"data": int(v), "last": int(i == len(x) - 1)})
                await ctx.tick().until(dut.i_vec.ready)
            ctx.set(dut.i_vec.valid, 0)
            row = []
            while len(row) < p.shape[1]:
                _, _, v, d = await ctx.tick().sample(dut.o_vec.valid, dut.o_vec.payload)
                if v:
                    row.append(d.data)
            got.append(row)

    async def monitor(ctx):
        o = dut.scheduler.o_stream
        active = Cat(o.payload.lanes[i].active for i in range(cfg.tile_xbars))
        async for _, _, v, r, a in ctx.tick().sample(o.valid, o.ready, active):
            counts["cycles"] += 1
            if v and r:
                issues.append((counts["cycles"], a.bit_count()))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.add_process(monitor)
    t0 = time.perf_counter()
    sim.run()
    wall = time.perf_counter() - t0
    assert np.array_equal(np.array(got), Y), f"{name}: RTL output differs from golden run"
    per_vec = len(issues) // vectors if vectors else 0
    span = [issues[(i + 1) * per_vec - 1][0] - issues[i * per_vec][0] + 1
            for i in range(vectors)] if per_vec else [0] * vectors
    acts = sum(a for _, a in issues)
    return {
        "preset": name, "shape": p.shape, "xbars": p.n_xbars, "steps": p.n_steps,
        "rtl_cycles": span[0] if span else 0, "model_cycles": vmm.predicted_cycles(p),
        "all_equal": len(set(span)) <= 1,
        "steps_per_cycle": (len(issues) / sum(span)) if sum(span) else float("nan"),
        "acts_per_cycle_per_xbar": (acts / (sum(span) * p.n_xbars)) if sum(span) else float("nan"),
        "sim_cycles_per_s": counts["cycles"] / wall, "sim_cycles": counts["cycles"],
        "load_words": len(words),
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
