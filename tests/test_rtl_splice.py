"""Bit-splice adders vs the golden splice model, with random producer stalls (stimulus shared
with the cocotb bench ``sim/bench_splice.py``)."""

import numpy as np
import pytest

from golden.config import preset
from golden.splice import splice_accumulate
from rtl.splice import Splice
from sim.amaranth_tile import put
from sim.stimulus import random_sample_steps
from tests.rtl_support import run_sim, seeded


@pytest.mark.parametrize("name", ["tiny", "tiny_mlc", "fpga_small"])
@pytest.mark.parametrize("seed", range(3))
def test_splice_matches_golden_accumulation(name, seed):
    cfg = preset(name)
    rng = np.random.default_rng(seed)
    n_beats = 30
    beats, model = random_sample_steps(cfg, rng, n_beats)
    acc, clips_total = splice_accumulate(cfg, model)
    dut = Splice(cfg)
    got, clip_seen = [], [0]

    async def producer(ctx):
        ctx.set(dut.ctrl.clear, 1)
        await ctx.tick()
        ctx.set(dut.ctrl.clear, 0)
        await put(ctx, dut.i_stream, beats, rng)
        for _ in range(Splice.latency):
            await ctx.tick()
        got.extend(ctx.get(dut.ctrl.acc))

    async def clip_monitor(ctx):
        async for _, _, d in ctx.tick().sample(dut.ctrl.clip_delta):
            clip_seen[0] += d

    run_sim(dut, producer, processes=[clip_monitor], deadline=1e-8 * (n_beats * 8 + 50))
    assert got == acc, seeded(seed, f"accumulators {got}, expected {acc}")
    assert clip_seen[0] == clips_total, seeded(seed, f"clips {clip_seen[0]} vs {clips_total}")
