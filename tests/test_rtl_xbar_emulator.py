"""Crossbar emulator vs its golden model (``golden.xbar``), with stalls on both streams."""

import numpy as np
import pytest

from golden import tile_image as ti
from golden.config import preset
from golden.xbar import ou_samples
from rtl.xbar_emulator import XbarEmulator
from sim.amaranth_tile import get, put
from sim.stimulus import random_program
from tests.rtl_support import item_value, run_sim, seeded, write_mem

CASES = [("tiny", None), ("tiny", 1), ("tiny_mlc", None), ("tiny_mlc", 2), ("fpga_small", 2)]


@pytest.mark.parametrize("name,adc_bits", CASES)
@pytest.mark.parametrize("seed", range(2))
def test_emulator_matches_golden_samples(name, adc_bits, seed):
    cfg = preset(name).replace(adc_bits=adc_bits)
    rng = np.random.default_rng(seed)
    p = random_program(cfg, rng, n_xbars=cfg.tile_xbars, n_steps=1)
    cells = ti.cell_items(p, cfg)
    items = {(lane, a): item_value(cells[lane, a])
             for lane in range(cfg.tile_xbars) for a in range(cfg.windows * cfg.colgroups)}
    n_beats = 40
    beats, expected = [], []
    for i in range(n_beats):
        lanes, exp = [], []
        for lane in range(cfg.tile_xbars):
            active = int(rng.random() < 0.8)
            w, g = int(rng.integers(cfg.windows)), int(rng.integers(cfg.colgroups))
            bits = rng.integers(0, 2, cfg.ou_rows) * active
            tag = {"outgroup": int(rng.integers(cfg.tile_outputs // cfg.ou_cols)),
                   "plane": int(rng.integers(cfg.planes)), "sign": int(rng.integers(2)),
                   "shift": int(rng.integers(cfg.max_shift + 1))}
            lanes.append({"active": active, "window": w, "colgroup": g,
                          "bits": int(sum(int(b) << r for r, b in enumerate(bits))), "tag": tag})
            samples, clips = ou_samples(p.cells[lane, w, g], bits, cfg.adc_max)
            exp.append((active, tag if active else None, samples if active else None,
                        clips if active else [0] * cfg.ou_cols))
        beats.append({"t": i % cfg.input_bits, "last": int(i == n_beats - 1), "lanes": lanes})
        expected.append((i % cfg.input_bits, int(i == n_beats - 1), exp))
    dut = XbarEmulator(cfg)
    got = []

    async def producer(ctx):
        await write_mem(ctx, dut.ctrl.wr, items)
        await put(ctx, dut.i_stream, beats, rng)

    async def consumer(ctx):
        for pl in await get(ctx, dut.o_stream, n_beats, rng):
            lanes = []
            for lane in range(cfg.tile_xbars):
                s = pl.lanes[lane]
                tag = {f: getattr(s.tag, f) for f in ("outgroup", "plane", "sign", "shift")}
                lanes.append((s.active, tag if s.active else None,
                              [s.samples[c] for c in range(cfg.ou_cols)] if s.active else None,
                              [(int(s.clips) >> c) & 1 for c in range(cfg.ou_cols)]))
            got.append((pl.t, pl.last, lanes))

    run_sim(dut, producer, consumer)
    assert any(c for _, _, lanes in expected for l in lanes for c in l[3]) == (adc_bits is not None)
    for i, (g, e) in enumerate(zip(got, expected)):
        assert g == e, seeded(seed, f"beat {i}: got {g}, expected {e}")
    assert len(got) == n_beats


def test_emulator_latency_and_throughput():
    """Back-to-back steps come out back to back, XbarEmulator.latency cycles later."""
    cfg = preset("tiny")
    dut = XbarEmulator(cfg)
    n = 5
    beat = {"t": 0, "last": 0, "lanes": [{"active": 1}] * cfg.tile_xbars}
    pattern = []

    async def tb(ctx):
        ctx.set(dut.o_stream.ready, 1)
        ctx.set(dut.i_stream.payload, beat)
        ctx.set(dut.i_stream.valid, 1)
        for i in range(n + XbarEmulator.latency + 2):
            if i == n:
                ctx.set(dut.i_stream.valid, 0)
            _, _, iv, ir, ov = await ctx.tick().sample(dut.i_stream.valid, dut.i_stream.ready,
                                                       dut.o_stream.valid)
            pattern.append((iv and ir, ov))

    run_sim(dut, tb)
    ins = [i for i, (t, _) in enumerate(pattern) if t]
    outs = [i for i, (_, v) in enumerate(pattern) if v]
    assert ins == list(range(n))
    assert outs == [i + XbarEmulator.latency for i in ins], pattern
