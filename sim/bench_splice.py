"""cocotb bench of the bit-splice peripheral adders (``rtl/splice.py``) in emitted Verilog.

Random ADC sample steps (``Layouts.samples``, packed with the layout) go in on ``i_stream`` with
the ``SME_IDLE`` pattern; the accumulators (``Layouts.accs``) and the summed ``clip_delta``
must equal :func:`golden.splice.splice_accumulate`.  Also: ``ready`` never drops, ``clear`` zeroes
the accumulators, and the largest legal terms (every sample at ``adc_max``, every shift at its
maximum) add up exactly.
"""

from __future__ import annotations

import cocotb
from cocotb.triggers import ClockCycles, RisingEdge

from golden.splice import splice_accumulate

from .stimulus import random_sample_steps
from .streams import StreamDriver, high, unpack
from .tb import Bench, env_int


async def _run(b, drv, payloads, model, label):
    dut, cfg, lay = b.dut, b.cfg, b.lay
    latency = b.sidecar["derived"]["latency"]
    dut.ctrl__clear.value = 1
    await RisingEdge(b.clk)
    dut.ctrl__clear.value = 0
    clips = 0
    not_ready = 0

    async def count():
        nonlocal clips, not_ready
        while True:
            await RisingEdge(b.clk)
            clips += int(dut.ctrl__clip_delta.value)
            not_ready += not high(dut.i_stream__ready)

    task = cocotb.start_soon(count())
    await drv.send(payloads)
    await ClockCycles(b.clk, latency + 2)
    task.cancel()
    assert not high(dut.ctrl__busy), b.msg(f"{label}: busy after the last sample")
    got = [int(v) for v in unpack(lay.accs, dut.ctrl__acc.value)]
    want, want_clips = splice_accumulate(cfg, model)
    assert got == want, b.msg(f"{label}: accumulators {got} != model {want}")
    assert clips == want_clips, b.msg(f"{label}: clip_delta summed to {clips}, model "
                                      f"{want_clips}")
    assert not_ready == 0, b.msg(f"{label}: i_stream.ready dropped {not_ready} times")


@cocotb.test()
async def splice_accumulates(dut):
    """Random sample steps with the configured input idle pattern, several vectors."""
    b = Bench(dut, salt=20)
    b.check_ports({"i_stream__payload": b.lay.samples, "ctrl__acc": b.lay.accs})
    drv = StreamDriver(dut, "i_stream", b.lay.samples, b.clk, b.pattern("SME_IDLE"))
    dut.ctrl__clear.value = 0
    await b.reset()
    for v in range(env_int("SME_VECTORS", 4)):
        payloads, model = random_sample_steps(b.cfg, b.rng, int(b.rng.integers(1, 40)))
        await _run(b, drv, payloads, model, f"vector {v}")


@cocotb.test()
async def splice_extremes(dut):
    """Largest terms: every lane active, samples at adc_max, shift at its maximum, and a
    ``clear`` between vectors leaves nothing behind."""
    b = Bench(dut, salt=21)
    drv = StreamDriver(dut, "i_stream", b.lay.samples, b.clk)
    dut.ctrl__clear.value = 0
    await b.reset()
    payloads, model = random_sample_steps(b.cfg, b.rng, 3, extreme=True)
    await _run(b, drv, payloads, model, "extremes")
    await _run(b, drv, [], [], "clear only")
