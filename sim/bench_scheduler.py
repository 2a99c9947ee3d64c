"""cocotb bench of the grouped row scheduler (``rtl/scheduler.py``) in emitted Verilog.

``scheduler_trace`` runs the test body of the Amaranth-simulator test,
:func:`sim.bodies.scheduler_body`: random valid programs (``sim.stimulus.random_program``, with
shared row lists) are written into the row-list and descriptor memories, a vector is started,
and every issued step must equal the golden issue trace (``golden.scheduler.issue_trace``), in
order, under the ``SME_BACKPRESSURE`` pattern on ``o_stream``.  ``scheduler_throughput``: without backpressure
the steps must issue on consecutive cycles, ``latency`` cycles after ``start``.
"""

from __future__ import annotations

import cocotb
from cocotb.triggers import ClockCycles, RisingEdge

from .bodies import scheduler_body, write_memory
from .stimulus import descriptor_memory, random_program, rowlist_memory
from .streams import Pattern, StreamSink, pack
from .tb import Bench, CocotbIO, env_int


async def _load_and_start(b, p, x):
    dut, cfg, lay = b.dut, b.cfg, b.lay
    dut.ctrl__start.value = 0
    io = CocotbIO(b, {})
    await write_memory(io, "ctrl.wr_rowlist", rowlist_memory(p))
    await write_memory(io, "ctrl.wr", descriptor_memory(p))      # zero words for idle lanes
    xs = [int(v) for v in x] + [0] * (cfg.tile_inputs - len(x))
    dut.ctrl__x.value = pack(lay.x, xs)
    dut.ctrl__n_steps.value = p.n_steps
    dut.ctrl__start.value = 1
    await RisingEdge(b.clk)
    dut.ctrl__start.value = 0
    return b.cycle()


@cocotb.test()
async def scheduler_trace(dut):
    """Random programs: issued steps equal the golden issue trace under backpressure (the
    shared body ``sim.bodies.scheduler_body``, as ``tests/test_rtl_scheduler.py``)."""
    b = Bench(dut, salt=10)
    cfg = b.cfg
    b.check_ports({"o_stream__payload": b.lay.step, "ctrl__wr__data": b.lay.desc,
                   "ctrl__wr_rowlist__data": b.lay.rowlist, "ctrl__x": b.lay.x})
    io = CocotbIO(b, {"o_stream": b.lay.step, "ctrl.x": b.lay.x}, outputs=("o_stream",),
                  backpressure=b.pattern("SME_BACKPRESSURE"))
    dut.ctrl__start.value = 0
    dut.ctrl__wr__en.value = 0
    dut.ctrl__wr_rowlist__en.value = 0
    await b.reset()
    io.start()
    for case in range(env_int("SME_PROGRAMS_PER_RUN", 4)):
        p = random_program(cfg, b.rng)
        x = b.rng.integers(0, cfg.max_input + 1, p.shape[0])
        await scheduler_body(io, cfg, p, x, b.msg(f"case {case}"))


@cocotb.test()
async def scheduler_throughput(dut):
    """No backpressure: one step per cycle with no bubbles, the first ``latency`` cycles after
    ``start``; ``n_steps = 0`` issues nothing."""
    b = Bench(dut, salt=11)
    cfg = b.cfg
    latency = b.sidecar["derived"]["latency"]
    sink = StreamSink(dut, "o_stream", b.lay.step, b.clk, Pattern("none"), b.cycle)
    await b.reset()
    sink.start()
    for n_steps in (0, 1, min(5, cfg.tile_steps)):
        p = random_program(cfg, b.rng, n_steps=n_steps)
        x = b.rng.integers(0, cfg.max_input + 1, p.shape[0])
        start = await _load_and_start(b, p, x)       # cycle of the edge that samples start
        want = cfg.input_bits * n_steps
        await ClockCycles(b.clk, want + latency + 4)
        # start is high in the cycle ending at edge `start`; valid is high `latency` cycles
        # later, and that cycle's transfer is recorded at its closing edge.
        first = start + latency + 1
        assert sink.cycles == list(range(first, first + want)), \
            b.msg(f"n_steps {n_steps}: transfers at cycles {sink.cycles[:6]}... "
                  f"({len(sink.cycles)}), expected {want} consecutive from {first} "
                  f"(start sampled at {start}, latency {latency})")
        sink.items.clear()
        sink.cycles.clear()
