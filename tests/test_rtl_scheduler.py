"""Grouped row scheduler vs the golden issue trace, with random consumer stalls (stimulus and
decoding shared with the cocotb bench ``sim/bench_scheduler.py``)."""

import numpy as np
import pytest

from golden.config import preset
from rtl.scheduler import Scheduler
from sim.amaranth_tile import run_body
from sim.bodies import scheduler_body
from sim.stimulus import descriptor_memory, random_program, rowlist_memory
from tests.rtl_support import run_sim, seeded, write_mem


def _setup(cfg, seed, **kw):
    rng = np.random.default_rng(seed)
    p = random_program(cfg, rng, **kw)
    x = rng.integers(0, cfg.max_input + 1, p.shape[0])
    dut = Scheduler(cfg)
    items = (rowlist_memory(p), descriptor_memory(p))
    xs = list(x) + [0] * (cfg.tile_inputs - len(x))
    return rng, p, x, dut, items, xs


async def _start(ctx, dut, p, items, xs):
    await write_mem(ctx, dut.ctrl.wr_rowlist, items[0])
    await write_mem(ctx, dut.ctrl.wr, items[1])
    ctx.set(dut.ctrl.x, xs)
    ctx.set(dut.ctrl.n_steps, p.n_steps)
    ctx.set(dut.ctrl.start, 1)
    await ctx.tick()
    ctx.set(dut.ctrl.start, 0)


@pytest.mark.parametrize("name", ["tiny", "tiny_mlc", "fpga_small"])
@pytest.mark.parametrize("seed", range(3))
def test_scheduler_matches_golden_trace_under_stalls(name, seed):
    """The shared body (``sim.bodies.scheduler_body``), random consumer stalls (p = 0.4)."""
    cfg = preset(name)
    rng = np.random.default_rng(seed)
    p = random_program(cfg, rng)
    x = rng.integers(0, cfg.max_input + 1, p.shape[0])

    async def body(io):
        await scheduler_body(io, cfg, p, x, seeded(seed, name))
    run_body(Scheduler(cfg), body, {}, rng=rng, p_idle=0.4)


@pytest.mark.parametrize("n_steps", [0, 1, 5])
def test_scheduler_issues_one_step_per_cycle(n_steps):
    cfg = preset("tiny")
    rng, p, x, dut, items, xs = _setup(cfg, 11, n_steps=n_steps)
    valid = []

    async def tb(ctx):
        await _start(ctx, dut, p, items, xs)
        ctx.set(dut.o_stream.ready, 1)
        for _ in range(cfg.input_bits * n_steps + 6):
            _, _, v = await ctx.tick().sample(dut.o_stream.valid)
            valid.append(v)

    run_sim(dut, tb)
    want = [0] * Scheduler.latency + [1] * (cfg.input_bits * n_steps)
    want += [0] * (len(valid) - len(want))
    assert valid == want, (f"issue pattern {valid}, expected {want} "
                           f"(predicted {cfg.input_bits * n_steps} issue cycles)")
