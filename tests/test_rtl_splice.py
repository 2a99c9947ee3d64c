"""Bit-splice adders vs the golden splice model in Amaranth's simulator, with random producer
stalls.  The test body is ``sim.bodies.splice_body``, the same one the cocotb bench
``sim/bench_splice.py`` runs on the emitted Verilog."""

import numpy as np
import pytest

from golden.config import preset
from rtl.splice import Splice
from sim.amaranth_tile import run_body
from sim.bodies import splice_body
from sim.stimulus import random_sample_steps
from tests.rtl_support import seeded


SPLICE_COUNTERS = {"clips": ("ctrl.clip_delta", int),
                   "not_ready": ("i_stream.ready", lambda ready: not ready)}


@pytest.mark.parametrize("name", ["tiny", "tiny_mlc", "fpga_small"])
@pytest.mark.parametrize("seed", range(3))
def test_splice_matches_golden_accumulation(name, seed):
    """The shared body (``sim.bodies.splice_body``), random stalls before every sample step."""
    cfg = preset(name)
    rng = np.random.default_rng(seed)
    beats, model = random_sample_steps(cfg, rng, 30)
    dut = Splice(cfg)

    async def body(io):
        await splice_body(io, cfg, beats, model, Splice.latency, seeded(seed, name))
    run_body(dut, body, SPLICE_COUNTERS, rng=rng)


@pytest.mark.parametrize("name", ["tiny", "fpga_small"])
def test_splice_extremes(name):
    """The largest terms, then a clear with nothing after it (as the cocotb bench)."""
    cfg = preset(name)
    rng = np.random.default_rng(21)
    beats, model = random_sample_steps(cfg, rng, 3, extreme=True)
    dut = Splice(cfg)

    async def body(io):
        await splice_body(io, cfg, beats, model, Splice.latency, "extremes")
        await splice_body(io, cfg, [], [], Splice.latency, "clear only")
    run_body(dut, body, SPLICE_COUNTERS, p_idle=0.0)
