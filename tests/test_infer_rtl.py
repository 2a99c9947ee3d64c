"""The digits CNN on the emitted Verilog tile (sim/verilator_tile.py) against the golden
backend: same predictions, same integer outputs of every layer, same clipped samples."""

import numpy as np
import pytest

from golden import partition as gp
from golden.config import preset
from golden.faults import FaultRates
from sim.stimulus import input_vectors as inputs, random_q
from sme.infer import graph as G
from sme.infer.hardware import GoldenBackend, RTLBackend
from sme.workloads.digits import init_params, load_data, train

pytestmark = pytest.mark.skipif(__import__("shutil").which("g++") is None,
                                reason="needs a C++ compiler for Verilator")


@pytest.fixture(scope="module")
def digits():
    """A small digits CNN trained here for a few epochs, test images and calibration images."""
    xtr, xte, ytr, _ = load_data(0)
    rng = np.random.default_rng(0)
    p = train(init_params(rng, 8, 16), xtr, ytr, 3, rng)
    return G.digits(p), xte[:6], xtr[:8]


#: One tile config for every test here (one Verilator build, ~20 s): a 2-bit ADC that clips.
CFG = preset("fpga_small").replace(adc_bits=2)


@pytest.mark.parametrize("faults", [None, FaultRates(0.01, 0.01)])
def test_digits_rtl_equals_golden(digits, faults):
    graph, x, calib = digits
    cfg = CFG
    gold = GoldenBackend(cfg, path="exact", faults=faults, seed=1)
    rtl = RTLBackend(cfg, faults=faults, seed=1, check=True)
    out = {}
    for be in (gold, rtl):
        G.prepare(graph, be, calib)
        be.trace = {}
        out[be.name] = G.run(graph, x, be, batch=len(x))
    assert np.array_equal(out["rtl"], out["golden"])
    assert np.array_equal(out["rtl"].argmax(1), out["golden"].argmax(1))
    assert gold.trace.keys() == rtl.trace.keys() == {"conv1", "conv2", "fc"}
    for name in gold.trace:
        for a, b in zip(gold.trace[name], rtl.trace[name]):
            assert np.array_equal(a, b), name
    assert [r["clipped"] for r in gold.report()] == [r["clipped"] for r in rtl.report()]
    assert sum(r["clipped"] for r in rtl.report()) > 0
    assert rtl.cycles > 0


def test_partition_on_verilog_equals_golden_and_catches_a_wrong_tile():
    """A layer of several parts; the driver's outputs differ once a cell image is altered
    behind the golden model's back (the comparison can fail)."""
    from sim.verilator_tile import run_partition

    cfg = CFG
    rng = np.random.default_rng(2)
    q = random_q(rng, (50, 20), cfg, 0.7)
    part = gp.partition_layer(q, None, cfg)
    X = inputs(rng, cfg, 7, 50)
    res = run_partition(part, X)
    want, clipped = gp.run(part, X)
    assert np.array_equal(res.outputs, want)
    assert res.clipped == clipped and sum(clipped) > 0
    tp = part.parts[0]
    cells = tp.program.cells.copy()
    cells[cells == 0] = 1                               # every cell of part 0 now reads 1
    tp.program.cells = cells
    assert not np.array_equal(run_partition(part, X).outputs, want)
