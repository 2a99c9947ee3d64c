"""golden/faults.py: stuck-at cells in compiled programs, seeded, seen by every executor."""

import numpy as np
import pytest

from golden import partition as gp
from golden.compiler import compile_matrix
from golden.config import preset
from golden.faults import FaultError, FaultRates, inject, inject_partition
from golden.vmm import effective_weights, run
from sim.stimulus import input_vectors as inputs, random_q


@pytest.fixture
def prog():
    cfg = preset("fpga_small")
    return compile_matrix(random_q(np.random.default_rng(1), (30, 16), cfg, 0.7), cfg)


def test_rates_and_seed(prog):
    none = inject(prog, FaultRates(), seed=1)
    assert np.array_equal(none.cells, prog.cells)
    a = inject(prog, FaultRates(0.01, 0.01), seed=1)
    b = inject(prog, FaultRates(0.01, 0.01), seed=1)
    c = inject(prog, FaultRates(0.01, 0.01), seed=2)
    assert np.array_equal(a.cells, b.cells) and not np.array_equal(a.cells, c.cells)
    f = a.meta["faults"]
    physical = prog.cells.size * prog.cfg.xbar_rows // (prog.cfg.windows * prog.cfg.ou_rows)
    for key in ("stuck0_cells", "stuck1_cells"):       # about 1 % of the physical cells each
        assert 0.5 * 0.01 * physical < f[key] < 1.5 * 0.01 * physical
    all0 = inject(prog, FaultRates(1.0, 0.0))
    assert not all0.cells.any()
    all1 = inject(prog, FaultRates(0.0, 1.0))
    cfg = prog.cfg
    row = np.arange(cfg.windows)[:, None] * cfg.ou_rows + np.arange(cfg.ou_rows)
    by_row = all1.cells.transpose(0, 2, 1, 3, 4)                 # X, G, W, ru, cu
    assert (by_row[:, :, row < cfg.xbar_rows] == cfg.cell_max).all()
    assert not by_row[:, :, row >= cfg.xbar_rows].any()          # padding rows do not exist
    assert np.array_equal(prog.cells, compile_matrix(prog.dense_q(), cfg).cells)  # unchanged


def test_faulty_program_runs_the_same_everywhere(prog):
    """The lossless VMM of a faulty program equals x @ (its effective weights), which differ
    from the intended weights."""
    bad = inject(prog, FaultRates(0.05, 0.05), seed=3)
    W = effective_weights(bad)
    assert not np.array_equal(W, prog.dense_q())
    X = inputs(np.random.default_rng(2), prog.cfg, 6, prog.shape[0])
    assert np.array_equal(run(bad, X)[0], X @ W)


def test_partition_faults_are_per_part():
    cfg = preset("tiny")
    q = random_q(np.random.default_rng(4), (40, 20), cfg, 0.8)
    part = gp.partition_layer(q, None, cfg)
    f1 = inject_partition(part, FaultRates(0.02, 0.02), seed=5, salt=(3,))
    f2 = inject_partition(part, FaultRates(0.02, 0.02), seed=5, salt=(3,))
    assert [tp.program.meta["faults"]["salt"] for tp in f1.parts] == \
        [[3, i] for i in range(part.n_parts)]
    for a, b in zip(f1.parts, f2.parts):
        assert np.array_equal(a.program.cells, b.program.cells)
    X = inputs(np.random.default_rng(6), cfg, 4, 40)
    assert not np.array_equal(gp.run(f1, X)[0], X @ q)


@pytest.mark.parametrize("s0, s1", [(-0.1, 0), (0, 1.5), (0.6, 0.6), ("x", 0)])
def test_bad_rates(s0, s1):
    with pytest.raises(FaultError):
        FaultRates(s0, s1)
