"""The block models and the benches' support code, without a simulator: scheduler, crossbar and
splice models chained together against the golden VMM, payload packing through the RTL layouts,
and the stall patterns."""

import numpy as np
import pytest

from golden.compiler import compile_matrix
from golden.config import preset
from golden.scheduler import issue_trace
from golden.splice import splice_accumulate
from golden.vmm import run
from golden.xbar import trace_samples
from rtl.layouts import Layouts
from sim.models import tile_expected
from sim.stimulus import input_vectors, random_program, random_q
from sim.streams import Pattern, pack, unpack


def _emulated_steps(p, x):
    """What the crossbar emulator hands the splice for program ``p`` and input ``x``: the golden
    scheduler's issue trace through the golden crossbar model."""
    return trace_samples(p, issue_trace(p, x))


@pytest.mark.parametrize("name,adc_bits", [("tiny", None), ("tiny", 1), ("tiny_mlc", None),
                                           ("fpga_small", 2)])
@pytest.mark.parametrize("squeeze", ["row", "segment"])
def test_splice_model_reproduces_golden_vmm(name, adc_bits, squeeze):
    cfg = preset(name).replace(adc_bits=adc_bits)
    rng = np.random.default_rng(3)
    q = random_q(rng, (min(cfg.tile_inputs, 12), min(cfg.tile_outputs, 8)), cfg, 0.5)
    p = compile_matrix(q, cfg, squeeze=squeeze)
    for x in input_vectors(rng, cfg, 3, q.shape[0]):
        acc, clips = splice_accumulate(cfg, _emulated_steps(p, x))
        y, want_clips = run(p, x[None, :])
        assert acc[:q.shape[1]] == y[0].tolist() and clips == want_clips
        exp = tile_expected(p, x)[0]
        assert (exp.y, exp.clips, exp.cycles) == (y[0].tolist(), want_clips,
                                                  cfg.input_bits * p.n_steps)


def test_splice_model_on_hand_made_programs():
    cfg = preset("tiny")
    rng = np.random.default_rng(5)
    for _ in range(5):
        p = random_program(cfg, rng)
        x = rng.integers(0, cfg.max_input + 1, p.shape[0])
        acc, _ = splice_accumulate(cfg, _emulated_steps(p, x))
        assert acc[:p.shape[1]] == run(p, x[None, :])[0][0].tolist()


@pytest.mark.parametrize("name", ["tiny", "default"])
def test_pack_unpack_round_trip(name):
    lay = Layouts(preset(name))
    cfg = lay.cfg
    for data, last in [(-1, 1), (0, 0), (2 ** (cfg.accumulator_bits - 1) - 1, 1)]:
        v = unpack(lay.vout, pack(lay.vout, {"data": data, "last": last}))
        assert (v.data, v.last) == (data, last)
    step = {"t": 1, "last": 1, "lanes": [{"active": 1, "window": 1, "colgroup": 0,
                                          "bits": 5, "tag": {"outgroup": 0, "plane": 2,
                                                             "sign": 1, "shift": 1}}]
            + [{}] * (cfg.tile_xbars - 1)}
    s = unpack(lay.step, pack(lay.step, step))
    assert (s.t, s.last, s.lanes[0].bits, s.lanes[0].tag.plane, s.lanes[1].active) == \
        (1, 1, 5, 2, 0)
    assert pack(lay.load, 0x1_0000_0001) == 0x1_0000_0001      # raw ints pass through


def test_patterns():
    assert [Pattern("none").stall() for _ in range(5)] == [False] * 5
    assert [Pattern("periodic", period=4, busy=1).stall() for _ in range(1)] == [True]
    p = Pattern("periodic", period=4, busy=1)
    assert [p.stall() for _ in range(8)] == [True, False, False, False] * 2
    a, b = Pattern("random", seed=3), Pattern("random", seed=3)
    seq = [a.stall() for _ in range(1000)]
    assert seq == [b.stall() for _ in range(1000)] and 200 < sum(seq) < 400
    with pytest.raises(ValueError):
        Pattern("sometimes")
