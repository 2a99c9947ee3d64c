"""Shared helpers of the RTL tests in Amaranth's simulator: a run loop with a watchdog, a tile
with a hard reset and issue counters, memory writes, seeded failure messages.  The stream and
tile drivers themselves are ``sim/amaranth_tile.py`` (the one Amaranth tile driver).

Not a test module (no ``test_`` prefix); imported by ``tests/test_rtl_*.py``.
"""

from __future__ import annotations

import os

from amaranth.hdl import ResetInserter, Signal
from amaranth.sim import Simulator

from golden import tile_image as ti
from golden.config import SMEConfig

def run_sim(dut, *testbenches, processes=(), vcd: str | None = None, deadline=None,
            max_cycles=20_000):
    """Run ``dut`` with the given async testbenches until they all return; fail (instead of
    hanging) if they have not after ``max_cycles``.  Waves only if ``SME_WAVES`` names a file.
    ``deadline`` (seconds of simulated time) instead runs for exactly that long."""
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    finished = []

    def wrap(tb):
        async def run(ctx):
            await tb(ctx)
            finished.append(tb)
        return run

    for tb in testbenches:
        sim.add_testbench(wrap(tb))
    for p in processes:
        sim.add_process(p)

    async def watchdog(ctx):
        cycles = 0
        while len(finished) < len(testbenches):
            await ctx.tick()
            cycles += 1
            assert cycles < max_cycles, \
                f"testbenches still waiting after {max_cycles} cycles (a hang or a lost transfer)"

    if not deadline:
        sim.add_testbench(watchdog)
    vcd = vcd or os.environ.get("SME_WAVES")

    def go():
        sim.run_until(deadline) if deadline else sim.run()

    if vcd:
        with sim.write_vcd(vcd):
            go()
    else:
        go()


class TileHarness:
    """A tile with a hard reset input, plus counters of issue cycles per vector."""

    def __init__(self, cfg: SMEConfig):
        from rtl.tile import Tile
        self.tile = Tile(cfg)
        self.rst = Signal()
        self.top = ResetInserter(self.rst)(self.tile)
        self.issues = []          # cycle numbers of scheduler issues
        self.out_starts = []      # cycle numbers where o_vec.valid rises
        self.cycle = 0

    async def monitor(self, ctx):
        """Records the cycle of every scheduler handshake (the issue of one step)."""
        o = self.tile.scheduler.o_stream
        prev = 0
        async for _, _, v, r, ov in ctx.tick().sample(o.valid, o.ready, self.tile.o_vec.valid):
            self.cycle += 1
            if v and r:
                self.issues.append(self.cycle)
            if ov and not prev:
                self.out_starts.append(self.cycle)
            prev = ov

    def split(self):
        """Issue cycles split per vector: [first, last, count] (a gap > 1 between vectors)."""
        runs = []
        for c in self.issues:
            if runs and c == runs[-1][1] + 1:
                runs[-1][1] = c
                runs[-1][2] += 1
            else:
                runs.append([c, c, 1])
        return runs


def item_value(words) -> int:
    """An image item (LS word first) as one integer."""
    return sum(int(w) << (32 * i) for i, w in enumerate(words))


async def write_mem(ctx, wr, items):
    """Write ``{(lane, addr): value}`` through a ``MemWriteSignature`` port, one per cycle."""
    for (lane, addr), value in items.items():
        ctx.set(wr.lane, lane)
        ctx.set(wr.addr, addr)
        ctx.set(wr.data.as_value(), value)
        ctx.set(wr.en, 1)
        await ctx.tick()
    ctx.set(wr.en, 0)


def seeded(seed, what):
    """Failure message prefix naming the seed, so that a failing case can be replayed."""
    return f"[seed {seed}] {what}"


def tile_error(status) -> ti.TileError:
    """The golden error code of a sampled ``status``."""
    return ti.TileError(status.error.value)
