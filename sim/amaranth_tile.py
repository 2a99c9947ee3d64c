"""Drive the RTL tile (and any ``lib.stream`` port) in Amaranth's simulator; no HDL tools.

The project's one Amaranth-simulator tile driver.  Stream helpers (:func:`put`, :func:`get`)
follow ``amaranth.lib.stream``'s rules: the producer raises ``valid`` without waiting for
``ready``, and either side may idle a random number of cycles before each transfer (from a
caller's ``numpy.random.Generator``, so one seed replays a run).  :func:`tile_load` and
:func:`tile_vector` are the tile's two host operations; :func:`simulate` runs a whole program on
a fresh tile and measures cycles (``sme simulate``, ``sme demo``, the benchmarks, the tests).
The caller compares the results with the golden model.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
from amaranth.sim import Simulator

from golden import tile_image
from golden.program import Program

__all__ = ["TileRun", "simulate", "stall", "put", "get", "load_items", "vector_items",
           "wait_idle", "tile_load", "tile_vector", "MAX_TILE_WORDS"]

#: Largest tile (cell, row-list and descriptor memory words, ``tile_image.frame_words`` at full
#: depth) the simulator is asked to build: the ``default`` preset needs 71,304; a config that
#: declares thousands of 4096 x 4096 crossbars would need tens of GiB of simulator state.
MAX_TILE_WORDS = 1 << 20


# ---- stream helpers ----------------------------------------------------------------------------

async def stall(ctx, rng, p_idle: float) -> None:
    """Idle while ``rng.random() < p_idle`` (no stall without an ``rng``)."""
    while rng is not None and p_idle and rng.random() < p_idle:
        await ctx.tick()


async def put(ctx, stream, payloads, rng=None, p_idle: float = 0.3) -> None:
    """Drive ``payloads`` into ``stream`` (valid never waits for ready)."""
    for p in payloads:
        await stall(ctx, rng, p_idle)
        ctx.set(stream.valid, 1)
        ctx.set(stream.payload, p)
        await ctx.tick().until(stream.ready)
        ctx.set(stream.valid, 0)


async def get(ctx, stream, count: int, rng=None, p_idle: float = 0.3) -> list:
    """Take ``count`` payloads from ``stream`` with random ready stalls."""
    out = []
    for _ in range(count):
        await stall(ctx, rng, p_idle)
        ctx.set(stream.ready, 1)
        (payload,) = await ctx.tick().sample(stream.payload).until(stream.valid)
        ctx.set(stream.ready, 0)
        out.append(payload)
    return out


def load_items(words) -> list[dict]:
    """``i_load`` payloads of a tile image (``last`` on the final word)."""
    words = [int(w) for w in words]
    return [{"data": w, "last": int(i == len(words) - 1)} for i, w in enumerate(words)]


def vector_items(x) -> list[dict]:
    """``i_vec`` payloads of one input vector (``last`` on the final element)."""
    return [{"data": int(v), "last": int(i == len(x) - 1)} for i, v in enumerate(x)]


# ---- the port interface of the shared test bodies (sim/bodies.py) -----------------------------

class AmaranthIO:
    """``io`` of a :mod:`sim.bodies` body in Amaranth's simulator: ports by signature path,
    streams driven by :func:`put` and taken by :func:`get` with random idle cycles (probability
    ``p_idle``), ``totals`` kept by a background testbench."""

    def __init__(self, dut, ctx, rng, p_idle: float, totals: dict):
        self.dut, self.ctx, self.rng, self.p_idle, self._totals = dut, ctx, rng, p_idle, totals

    def _port(self, path: str):
        port = self.dut
        for name in path.split("."):
            port = getattr(port, name)
        return port

    def set(self, path: str, value) -> None:
        port = self._port(path)
        if isinstance(value, int) and hasattr(port, "as_value"):
            port = port.as_value()          # raw bits into a payload view
        self.ctx.set(port, value)

    def get(self, path: str):
        return self.ctx.get(self._port(path))

    async def tick(self, n: int = 1) -> None:
        await self.ctx.tick().repeat(n)

    async def send(self, path: str, payloads) -> None:
        await put(self.ctx, self._port(path), payloads, self.rng, self.p_idle)

    async def receive(self, path: str, count: int) -> list:
        return await get(self.ctx, self._port(path), count, self.rng, self.p_idle)

    def total(self, name: str) -> int:
        return self._totals[name]


def run_body(dut, body, counters: dict, *, rng=None, p_idle: float = 0.3,
             max_cycles: int = 100_000) -> None:
    """Run ``await body(io)`` on ``dut`` in Amaranth's simulator.  ``counters`` maps a total's
    name to ``(port path, f)``: every cycle the total grows by ``f(value)``."""
    totals = {name: 0 for name in counters}
    done = []

    async def count(ctx):
        ports = [AmaranthIO(dut, ctx, None, 0, totals)._port(p) for p, _ in counters.values()]
        cycles = 0
        async for _, _, *values in ctx.tick().sample(*ports):
            for (name, (_, f)), v in zip(counters.items(), values):
                totals[name] += int(f(v))
            cycles += 1
            if cycles > max_cycles and not done:
                raise RuntimeError(f"test body still running after {max_cycles} cycles")

    async def testbench(ctx):
        await body(AmaranthIO(dut, ctx, rng, p_idle, totals))
        done.append(True)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(count, background=True)
    sim.add_testbench(testbench)
    sim.run()
    assert done, "test body did not finish"


# ---- the tile's host operations ----------------------------------------------------------------

def _code(err) -> int:
    return int(getattr(err, "value", err))


async def wait_idle(ctx, tile, limit: int = 100_000) -> None:
    """Wait until the tile's status is not busy."""
    for _ in range(limit):
        if not ctx.get(tile.status.busy):
            return
        await ctx.tick()
    raise AssertionError("tile stayed busy")


async def tile_load(ctx, tile, words, rng=None, p_idle: float = 0.3) -> None:
    """Stream a tile image into ``i_load`` and wait until the controller has taken it."""
    await put(ctx, tile.i_load, load_items(words), rng, p_idle)
    await ctx.tick()
    await wait_idle(ctx, tile)


async def tile_vector(ctx, tile, x, n: int, rng=None, p_idle: float = 0.3) -> list[int]:
    """Send one vector, return its ``n`` results (ints); checks the ``last`` flags."""
    await put(ctx, tile.i_vec, vector_items(x), rng, p_idle)
    out = await get(ctx, tile.o_vec, n, rng, p_idle)
    assert [o.last for o in out] == [0] * (n - 1) + [1], "o_vec last flag misplaced"
    return [o.data for o in out]


# ---- a whole program ---------------------------------------------------------------------------

@dataclasses.dataclass
class TileRun:
    outputs: np.ndarray                 # int64 (M, N)
    clipped: int                        # the tile's clip counter after the run
    issue_cycles: list[int]             # per vector: cycles with a step issued
    error: int                          # the tile's error code (0 = none)
    sim_cycles: int                     # simulated clock cycles in all
    vector_cycles: list[int] = dataclasses.field(default_factory=list)
    """per vector: cycles from its first element offered (or from the previous vector's last
    result, if later: the tile takes one vector at a time) to its last result taken: inputs
    in, all steps, pipeline latency, results out; stalls included when ``p_idle`` > 0"""
    issue_spans: list[int] = dataclasses.field(default_factory=list)
    """per vector: cycles from its first issued step to its last, both included (equals
    ``issue_cycles`` when the scheduler never stalls)"""
    active_lanes: int = 0               # lane activations issued in all (every vector)
    sim_seconds: float = 0.0            # wall time of the simulation run (not elaboration)


def simulate(prog: Program, X: np.ndarray, *, p_idle: float = 0.0, seed: int = 0,
             max_cycles: int = 5_000_000) -> TileRun:
    """Simulate the tile of ``prog.cfg`` on ``prog`` and input vectors ``X`` (M x K).

    ``p_idle`` is the probability of an idle cycle before every stream transfer on both sides
    (producer and consumer), drawn from ``numpy.random.default_rng(seed)``.  A program the tile
    refuses (error code) returns at once with that code and no outputs.
    """
    from rtl.tile import Tile

    cfg = prog.cfg
    tile_image.fits_tile(prog, cfg)
    size = tile_image.frame_words(cfg, cfg.tile_steps, cfg.effective_tile_rowlists)
    if size > MAX_TILE_WORDS:
        raise tile_image.TileImageError(
            f"the tile of this config holds {size} memory words (cells and descriptors); the "
            f"simulator takes at most {MAX_TILE_WORDS} (a tile_xbars, xbar_rows or xbar_cols "
            f"this large is for the golden model only)")
    words = tile_image.build_image(prog, cfg)
    X = np.atleast_2d(np.asarray(X, dtype=np.int64))
    M, N = len(X), prog.shape[1]
    dut = Tile(cfg)
    rng = np.random.default_rng(seed)
    out = np.zeros((M, N), dtype=np.int64)
    issued: list[int] = [0]     # issue cycles of the vector in flight (split at step.last)
    spans: list[list[int]] = [[]]
    state = {"cycle": 0, "clip": 0, "error": 0, "lanes": 0}
    starts: list[int] = []
    ends: list[int] = []

    async def driver(ctx):
        await put(ctx, dut.i_load, load_items(words), rng, p_idle)
        while ctx.get(dut.status.busy) or not (ctx.get(dut.status.loaded)
                                                or _code(ctx.get(dut.status.error))):
            await ctx.tick()
        if _code(ctx.get(dut.status.error)):
            return
        for x in X:
            starts.append(state["cycle"])
            await put(ctx, dut.i_vec, vector_items(x), rng, p_idle)

    async def sink(ctx):
        # stop waiting for results once the load was refused
        while not (ctx.get(dut.status.loaded) or _code(ctx.get(dut.status.error))):
            await ctx.tick()
        if _code(ctx.get(dut.status.error)):
            state["error"] = _code(ctx.get(dut.status.error))
            return
        for m in range(M):
            out[m] = [p.data for p in await get(ctx, dut.o_vec, N, rng, p_idle)]
            ends.append(state["cycle"])
        state["clip"] = ctx.get(dut.status.clip_count)

    async def monitor(ctx):
        sched = dut.scheduler.o_stream
        async for _, _, valid, ready, payload, err in ctx.tick().sample(
                sched.valid, sched.ready, sched.payload, dut.status.error):
            state["cycle"] += 1
            if valid and ready:
                issued[-1] += 1
                spans[-1].append(state["cycle"])
                state["lanes"] += sum(int(payload.lanes[i].active)
                                      for i in range(cfg.tile_xbars))
                if payload.last:
                    issued.append(0)
                    spans.append([])
            if _code(err):
                state["error"] = _code(err)
            if state["cycle"] >= max_cycles:
                raise RuntimeError(f"tile simulation exceeded {max_cycles} cycles")

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(driver)
    sim.add_testbench(sink)
    sim.add_process(monitor)
    t0 = time.perf_counter()
    sim.run()
    seconds = time.perf_counter() - t0
    return TileRun(outputs=out, clipped=int(state["clip"]), issue_cycles=issued[:M],
                   error=int(state["error"]), sim_cycles=state["cycle"],
                   vector_cycles=[e - max(s, prev) for s, e, prev
                                  in zip(starts, ends, [0] + ends[:-1])],
                   issue_spans=[s[-1] - s[0] + 1 if s else 0 for s in spans[:M]],
                   active_lanes=state["lanes"], sim_seconds=seconds)
