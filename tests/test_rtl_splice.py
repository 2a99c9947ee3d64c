"""Bit-splice adders vs numpy shift-and-add, with random producer stalls."""

import numpy as np
import pytest

from golden.config import preset
from rtl.splice import Splice
from sim.amaranth_tile import put
from tests.rtl_support import run_sim, seeded


@pytest.mark.parametrize("name", ["tiny", "tiny_mlc", "fpga_small"])
@pytest.mark.parametrize("seed", range(3))
def test_splice_matches_golden_accumulation(name, seed):
    cfg = preset(name)
    rng = np.random.default_rng(seed)
    groups = cfg.tile_outputs // cfg.ou_cols
    acc = np.zeros(cfg.tile_outputs, dtype=np.int64)
    n_beats, clips_total, beats = 30, 0, []
    for i in range(n_beats):
        t = int(rng.integers(cfg.input_bits))
        lanes = []
        for lane in range(cfg.tile_xbars):
            active = int(rng.random() < 0.8)
            og = int(rng.integers(groups))
            pl, sg = int(rng.integers(cfg.planes)), int(rng.integers(2))
            # keep plane*cell_bits + shift inside the weight (a legal program's significance)
            sh = int(rng.integers(cfg.weight_bits - pl * cfg.cell_bits))
            samples = rng.integers(0, cfg.adc_max + 1, cfg.ou_cols)
            clips = rng.integers(0, 2, cfg.ou_cols)
            lanes.append({"active": active,
                          "tag": {"outgroup": og, "plane": pl, "sign": sg, "shift": sh},
                          "samples": samples.tolist(),
                          "clips": int(sum(int(b) << c for c, b in enumerate(clips)))})
            if active:
                shift = t + pl * cfg.cell_bits + sh
                acc[og * cfg.ou_cols:(og + 1) * cfg.ou_cols] += (-1) ** sg * (samples << shift)
                clips_total += int(clips.sum())
        beats.append({"t": t, "last": int(i == n_beats - 1), "lanes": lanes})
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
    assert got == acc.tolist(), seeded(seed, f"accumulators {got}, expected {acc.tolist()}")
    assert clip_seen[0] == clips_total, seeded(seed, f"clips {clip_seen[0]} vs {clips_total}")
