"""cocotb bench of the grouped row scheduler (``rtl/scheduler.py``) in emitted Verilog.

Stimulus and expectation are the ones the Amaranth-simulator test uses
(``sim.stimulus.random_program``, ``golden.scheduler.issue_trace``): random valid programs are
written into the descriptor memories (``sim.stimulus.descriptor_memory``), a vector is
started, and every issued step (``sim.models.decode_step`` of the ``Layouts.step`` payload) must
equal the golden issue trace, in order, under the ``SME_BACKPRESSURE`` pattern on ``o_stream``.  Without backpressure
the steps must issue on consecutive cycles, ``latency`` cycles after ``start``.
"""

from __future__ import annotations

import cocotb
from cocotb.triggers import ClockCycles, RisingEdge

from golden.scheduler import issue_trace

from .models import decode_step
from .stimulus import descriptor_memory, random_program
from .streams import Pattern, StreamSink, high, pack
from .tb import Bench, env_int


async def _load_and_start(b, p, x):
    dut, cfg, lay = b.dut, b.cfg, b.lay
    dut.ctrl__start.value = 0
    for (lane, step), word in descriptor_memory(p).items():  # zero words for idle lanes
        dut.ctrl__wr__lane.value = lane
        dut.ctrl__wr__addr.value = step
        dut.ctrl__wr__data.value = word
        dut.ctrl__wr__en.value = 1
        await RisingEdge(b.clk)
    dut.ctrl__wr__en.value = 0
    xs = [int(v) for v in x] + [0] * (cfg.tile_inputs - len(x))
    dut.ctrl__x.value = pack(lay.x, xs)
    dut.ctrl__n_steps.value = p.n_steps
    dut.ctrl__start.value = 1
    await RisingEdge(b.clk)
    dut.ctrl__start.value = 0
    return b.cycle()


@cocotb.test()
async def scheduler_trace(dut):
    """Random programs: issued steps equal the golden issue trace under backpressure."""
    b = Bench(dut, salt=10)
    cfg = b.cfg
    b.check_ports({"o_stream__payload": b.lay.step, "ctrl__wr__data": b.lay.desc,
                   "ctrl__x": b.lay.x})
    sink = StreamSink(dut, "o_stream", b.lay.step, b.clk, b.pattern("SME_BACKPRESSURE"),
                      b.cycle)
    await b.reset()
    sink.start()
    for case in range(env_int("SME_PROGRAMS_PER_RUN", 4)):
        p = random_program(cfg, b.rng)
        x = b.rng.integers(0, cfg.max_input + 1, p.shape[0])
        expected = issue_trace(p, x)
        await _load_and_start(b, p, x)
        got = await sink.take(len(expected))
        steps = [decode_step(s, cfg) for s in got]
        diff = next((i for i, (g, e) in enumerate(zip(steps, expected)) if g != e), None)
        where = (f"step {diff}: {steps[diff]} vs {expected[diff]}" if diff is not None
                 else f"{len(steps)} steps vs {len(expected)}")
        assert steps == expected, b.msg(f"case {case}: issued steps differ from the golden "
                                        f"trace at {where}")
        lasts = [s.last for s in got]
        assert lasts == [0] * (len(got) - 1) + [1], b.msg(f"case {case}: last flags {lasts}")
        await ClockCycles(b.clk, 4)
        assert not sink.items and high(dut.ctrl__done), \
            b.msg(f"case {case}: scheduler kept issuing or is not done")


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
