"""Shared helpers of the RTL tests: seeded stream drivers, random programs, a tile harness.

Not a test module (no ``test_`` prefix); imported by ``tests/test_rtl_*.py``.
"""

from __future__ import annotations

import os

import numpy as np
from amaranth.hdl import ResetInserter, Signal
from amaranth.sim import Simulator

from golden import tile_image as ti
from golden.config import SMEConfig
from golden.program import ACT_FIELDS, Program, validate

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


def random_program(cfg: SMEConfig, rng, *, n_xbars=None, n_steps=None, k=None, n=None,
                   density=0.7) -> Program:
    """A hand-made valid program (random cells and descriptors) for block tests."""
    n_xbars = n_xbars or int(rng.integers(1, cfg.tile_xbars + 1))
    n_steps = n_steps if n_steps is not None else int(rng.integers(1, 6))
    k = k or int(rng.integers(1, cfg.tile_inputs + 1))
    n = n or int(rng.integers(1, cfg.tile_outputs + 1))
    cells = rng.integers(0, cfg.cell_max + 1, size=(n_xbars, cfg.windows, cfg.colgroups,
                                                    cfg.ou_rows, cfg.ou_cols), dtype=np.uint8)
    slots = [(s, x) for s in range(n_steps) for x in range(n_xbars) if rng.random() < density]
    if n_steps and not any(s == n_steps - 1 for s, _ in slots):
        slots.append((n_steps - 1, int(rng.integers(0, n_xbars))))     # exactly n_steps steps
    m = len(slots)
    acts = {f: np.zeros(m, dtype=dt) for f, dt in ACT_FIELDS.items()}
    acts["step"][:] = [s for s, _ in slots]
    acts["xbar"][:] = [x for _, x in slots]
    acts["window"][:] = rng.integers(0, cfg.windows, m)
    acts["colgroup"][:] = rng.integers(0, cfg.colgroups, m)
    acts["outgroup"][:] = rng.integers(0, -(-n // cfg.ou_cols), m)
    acts["plane"][:] = rng.integers(0, cfg.planes, m)
    acts["sign"][:] = rng.integers(0, 2, m)
    acts["shift"][:] = rng.integers(0, cfg.max_shift + 1, m)
    inputs = rng.integers(-1, k, size=(m, cfg.ou_rows)).astype(np.int32)
    p = Program(cfg=cfg, shape=(k, n), cells=cells, acts=acts, inputs=inputs, blocks=[])
    validate(p)
    return p


def issue_trace(p: Program, x) -> list[tuple[int, dict[int, tuple]]]:
    """The golden scheduler: per issue cycle (t outer, step inner), per active lane
    (window, colgroup, bits, outgroup, plane, sign, shift)."""
    cfg = p.cfg
    a = p.acts
    out = []
    for t in range(cfg.input_bits):
        for s in range(p.n_steps):
            lanes = {}
            for i in np.flatnonzero(a["step"] == s):
                bits = tuple(int(r >= 0 and (int(x[r]) >> t) & 1) for r in p.inputs[i])
                lanes[int(a["xbar"][i])] = (int(a["window"][i]), int(a["colgroup"][i]), bits,
                                            int(a["outgroup"][i]), int(a["plane"][i]),
                                            int(a["sign"][i]), int(a["shift"][i]))
            out.append((t, lanes))
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


def fitting_layer(cfg, rng, pattern_cfg, *, k_max=None, n_max=None, tries=60):
    """A random K x N layer on ``pattern_cfg``'s pattern whose program fits a tile of ``cfg``,
    compiled either way.  Returns ``q``."""
    from golden import compiler, quantize
    levels = quantize.allowed_levels(pattern_cfg)
    k_max = k_max or cfg.tile_inputs
    n_max = n_max or cfg.tile_outputs
    for i in range(tries):
        shrink = 1 + i // 10
        k = int(rng.integers(1, max(2, k_max // shrink) + 1))
        n = int(rng.integers(1, max(2, n_max // shrink) + 1))
        q = quantize.project_levels(rng.choice(levels, size=(k, n)), pattern_cfg)  # fragments
        q[rng.random((k, n)) < rng.uniform(0.3, 0.9)] = 0
        try:
            for sq in ("row", "segment"):
                ti.fits_tile(compiler.compile_matrix(q, pattern_cfg, squeeze=sq), cfg)
        except ti.TileImageError:
            continue
        return q
    raise AssertionError("no random layer fits the tile")


def tile_error(status) -> ti.TileError:
    """The golden error code of a sampled ``status``."""
    return ti.TileError(status.error.value)
