"""Run a compiled program on the RTL tile in Amaranth's simulator (no HDL tools needed).

Used by ``sme simulate`` and ``sme demo``: loads the program's tile image over ``i_load``,
streams the input vectors, collects ``o_vec`` and measures the issue cycles of every vector
(cycles in which the grouped row scheduler hands a step to the crossbar emulator).  The caller
compares the result with the golden model.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from amaranth.sim import Simulator

from golden import tile_image
from golden.program import Program

__all__ = ["TileRun", "simulate"]


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


def _code(err) -> int:
    return int(getattr(err, "value", err))


def simulate(prog: Program, X: np.ndarray, *, p_idle: float = 0.0, seed: int = 0,
             max_cycles: int = 5_000_000) -> TileRun:
    """Simulate the tile of ``prog.cfg`` on ``prog`` and input vectors ``X`` (M x K).

    ``p_idle`` is the probability of an idle cycle before every stream transfer on both sides
    (producer and consumer), drawn from ``numpy.random.default_rng(seed)``.
    """
    from rtl.tile import Tile

    cfg = prog.cfg
    tile_image.fits_tile(prog, cfg)
    words = [int(w) for w in tile_image.build_image(prog, cfg)]
    X = np.atleast_2d(np.asarray(X, dtype=np.int64))
    M, N = len(X), prog.shape[1]
    dut = Tile(cfg)
    rng = np.random.default_rng(seed)
    out = np.zeros((M, N), dtype=np.int64)
    issued: list[int] = [0]     # issue cycles of the vector in flight (split at step.last)
    state = {"cycle": 0, "clip": 0, "error": 0, "issuing": False}
    starts: list[int] = []
    ends: list[int] = []

    async def stall(ctx):
        while p_idle and rng.random() < p_idle:
            await ctx.tick()

    async def put(ctx, stream, items):
        for i, value in enumerate(items):
            await stall(ctx)
            ctx.set(stream.valid, 1)
            ctx.set(stream.payload, {"data": value, "last": int(i == len(items) - 1)})
            await ctx.tick().until(stream.ready)
            ctx.set(stream.valid, 0)

    async def driver(ctx):
        await put(ctx, dut.i_load, words)
        while ctx.get(dut.status.busy) or not (ctx.get(dut.status.loaded)
                                                or _code(ctx.get(dut.status.error))):
            await ctx.tick()
        if _code(ctx.get(dut.status.error)):
            return
        for x in X:
            starts.append(state["cycle"])
            await put(ctx, dut.i_vec, [int(v) for v in x])

    async def sink(ctx):
        for m in range(M):
            for j in range(N):
                await stall(ctx)
                ctx.set(dut.o_vec.ready, 1)
                (payload,) = await ctx.tick().sample(dut.o_vec.payload).until(dut.o_vec.valid)
                ctx.set(dut.o_vec.ready, 0)
                out[m, j] = payload.data
            ends.append(state["cycle"])
        state["clip"] = ctx.get(dut.status.clip_count)

    async def monitor(ctx):
        sched = dut.scheduler.o_stream
        async for _, _, valid, ready, payload, err in ctx.tick().sample(
                sched.valid, sched.ready, sched.payload, dut.status.error):
            state["cycle"] += 1
            if valid and ready:
                issued[-1] += 1
                if payload.last:
                    issued.append(0)
            if _code(err):
                state["error"] = _code(err)
            if state["cycle"] >= max_cycles:
                raise RuntimeError(f"tile simulation exceeded {max_cycles} cycles")

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(driver)
    sim.add_process(monitor)

    async def sink_or_error(ctx):
        # stop waiting for results once the load was refused
        while not (ctx.get(dut.status.loaded) or _code(ctx.get(dut.status.error))):
            await ctx.tick()
        if not _code(ctx.get(dut.status.error)):
            await sink(ctx)
        else:
            state["error"] = _code(ctx.get(dut.status.error))

    sim.add_testbench(sink_or_error)
    sim.run()
    return TileRun(outputs=out, clipped=int(state["clip"]), issue_cycles=issued[:M],
                   error=int(state["error"]), sim_cycles=state["cycle"],
                   vector_cycles=[e - max(s, prev) for s, e, prev
                                  in zip(starts, ends, [0] + ends[:-1])])
