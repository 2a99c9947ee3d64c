"""cocotb bench of the bit-splice peripheral adders (``rtl/splice.py``) in emitted Verilog.

The test body is :func:`sim.bodies.splice_body`, the same one ``tests/test_rtl_splice.py`` runs
in Amaranth's simulator.  Random ADC sample steps (``Layouts.samples``, packed with the layout)
go in on ``i_stream`` with the ``SME_IDLE`` pattern; the accumulators (``Layouts.accs``) and the
summed ``clip_delta`` must equal :func:`golden.splice.splice_accumulate`.  Also: ``ready`` never
drops, ``clear`` zeroes the accumulators, and the largest legal terms (every sample at
``adc_max``, every shift at its maximum) add up exactly.
"""

from __future__ import annotations

import cocotb

from .bodies import splice_body
from .stimulus import random_sample_steps
from .streams import high
from .tb import Bench, CocotbIO, env_int


def _io(b, idle=None) -> CocotbIO:
    """The shared splice body's ports on the Verilog (counters as ``tests/test_rtl_splice.py``;
    started after the reset with ``io.start()``)."""
    io = CocotbIO(b, {"i_stream": b.lay.samples, "ctrl.acc": b.lay.accs},
                  {"clips": ("ctrl.clip_delta", lambda p: int(p.value)),
                   "not_ready": ("i_stream.ready", lambda p: not high(p))}, idle)
    return io


@cocotb.test()
async def splice_accumulates(dut):
    """Random sample steps with the configured input idle pattern, several vectors."""
    b = Bench(dut, salt=20)
    b.check_ports({"i_stream__payload": b.lay.samples, "ctrl__acc": b.lay.accs})
    io = _io(b, b.pattern("SME_IDLE"))          # drives valid low before the reset
    dut.ctrl__clear.value = 0
    await b.reset()
    io.start()
    latency = b.sidecar["derived"]["latency"]
    for v in range(env_int("SME_VECTORS", 4)):
        payloads, model = random_sample_steps(b.cfg, b.rng, int(b.rng.integers(1, 40)))
        await splice_body(io, b.cfg, payloads, model, latency, b.msg(f"vector {v}"))


@cocotb.test()
async def splice_extremes(dut):
    """Largest terms: every lane active, samples at adc_max, shift at its maximum, and a
    ``clear`` between vectors leaves nothing behind."""
    b = Bench(dut, salt=21)
    io = _io(b)
    dut.ctrl__clear.value = 0
    await b.reset()
    io.start()
    latency = b.sidecar["derived"]["latency"]
    payloads, model = random_sample_steps(b.cfg, b.rng, 3, extreme=True)
    await splice_body(io, b.cfg, payloads, model, latency, b.msg("extremes"))
    await splice_body(io, b.cfg, [], [], latency, b.msg("clear only"))
