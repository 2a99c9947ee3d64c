"""rtl/skid.py in Amaranth's simulator: random stalls on both sides lose, duplicate and reorder
nothing; every output is a register; a free-flowing stream moves one item per cycle."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from rtl.skid import SkidBuffer

from sim.amaranth_tile import get, put

from .rtl_support import run_sim


def run(items, p_stall_in, p_stall_out, seed):
    """Items through a skid buffer with random stalls on both sides (``sim.amaranth_tile``
    drivers); returns what came out and the cycle in which the last item was taken."""
    rng = np.random.default_rng(seed)
    dut = SkidBuffer(16)
    got, cycle, last = [], [0], [0]

    async def producer(ctx):
        await put(ctx, dut.i, items, rng, p_stall_in)

    async def consumer(ctx):
        got.extend(await get(ctx, dut.o, len(items), rng, p_stall_out))
        last[0] = cycle[0]

    async def clock(ctx):
        while True:
            await ctx.tick()
            cycle[0] += 1

    run_sim(dut, producer, consumer, processes=[clock])
    return got, last[0]


@pytest.mark.parametrize("p_in,p_out", [(0, 0), (0, 0.7), (0.7, 0), (0.4, 0.4)])
def test_order_and_count_under_stalls(p_in, p_out):
    items = random.Random(7).sample(range(1 << 16), 300)
    got, _ = run(items, p_in, p_out, seed=int(p_in * 10 + p_out * 100))
    assert got == items


def test_full_throughput():
    got, cycles = run(list(range(200)), 0, 0, seed=0)
    assert got == list(range(200))
    assert cycles <= 200 + 2            # one cycle of latency, then one item per cycle


def test_outputs_are_registered():
    """Driving the inputs changes no output until the next clock edge."""
    dut = SkidBuffer(8)

    async def bench(ctx):
        ctx.set(dut.o.ready, 0)
        ctx.set(dut.i.payload, 0x5A)
        ctx.set(dut.i.valid, 1)
        assert (ctx.get(dut.o.valid), ctx.get(dut.i.ready)) == (0, 1)
        await ctx.tick()                 # taken into the output register
        ctx.set(dut.i.payload, 0x33)
        assert (ctx.get(dut.o.valid), ctx.get(dut.o.payload)) == (1, 0x5A)
        await ctx.tick()                 # consumer stalls: 0x33 goes to the skid register
        assert ctx.get(dut.i.ready) == 0
        ctx.set(dut.i.valid, 0)
        ctx.set(dut.o.ready, 1)
        assert ctx.get(dut.i.ready) == 0 and ctx.get(dut.o.payload) == 0x5A
        await ctx.tick()
        assert (ctx.get(dut.o.valid), ctx.get(dut.o.payload), ctx.get(dut.i.ready)) == (1, 0x33, 1)
        await ctx.tick()
        assert ctx.get(dut.o.valid) == 0

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
