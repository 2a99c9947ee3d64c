"""Shared helpers of the RTL tests: seeded stream drivers and a tile harness (Amaranth simulator).

Not a test module (no ``test_`` prefix); imported by ``tests/test_rtl_*.py``.
"""

from __future__ import annotations

import os

from amaranth.hdl import ResetInserter, Signal
from amaranth.sim import Simulator

from golden import tile_image as ti
from golden.config import SMEConfig

P_IDLE = 0.3          # probability of a stall cycle before each transfer on every stream


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


async def stall(ctx, rng, p_idle):
    while rng is not None and rng.random() < p_idle:
        await ctx.tick()


async def put(ctx, stream, payloads, rng=None, p_idle=P_IDLE):
    """Drive ``payloads`` into ``stream`` (valid never waits for ready)."""
    for p in payloads:
        await stall(ctx, rng, p_idle)
        ctx.set(stream.valid, 1)
        ctx.set(stream.payload, p)
        await ctx.tick().until(stream.ready)
        ctx.set(stream.valid, 0)


async def get(ctx, stream, count, rng=None, p_idle=P_IDLE):
    """Take ``count`` payloads from ``stream`` with random ready stalls."""
    out = []
    for _ in range(count):
        await stall(ctx, rng, p_idle)
        ctx.set(stream.ready, 1)
        (payload,) = await ctx.tick().sample(stream.payload).until(stream.valid)
        ctx.set(stream.ready, 0)
        out.append(payload)
    return out


def load_words(words) -> list[dict]:
    words = [int(w) for w in words]
    return [{"data": w, "last": int(i == len(words) - 1)} for i, w in enumerate(words)]


def vec_elems(x) -> list[dict]:
    return [{"data": int(v), "last": int(i == len(x) - 1)} for i, v in enumerate(x)]


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


async def wait_idle(ctx, tile, limit=100000):
    for _ in range(limit):
        if not ctx.get(tile.status.busy):
            return
        await ctx.tick()
    raise AssertionError("tile stayed busy")


async def tile_load(ctx, tile, words, rng=None):
    await put(ctx, tile.i_load, load_words(words), rng)
    await ctx.tick()
    await wait_idle(ctx, tile)


async def tile_vector(ctx, tile, x, n, rng=None):
    """Send one vector, return its n results (ints)."""
    await put(ctx, tile.i_vec, vec_elems(x), rng)
    out = await get(ctx, tile.o_vec, n, rng)
    assert [o.last for o in out] == [0] * (n - 1) + [1], "o_vec last flag misplaced"
    return [o.data for o in out]


def tile_error(status) -> ti.TileError:
    """The golden error code of a sampled ``status``."""
    return ti.TileError(status.error.value)
