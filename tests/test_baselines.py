import numpy as np

from golden.baselines import baseline_stats
from golden.config import preset

from sim.stimulus import random_q


def test_isaac_dense_formula():
    """2 * ceil(K/R) * ceil(N*B/cell_bits / C) crossbars; every mapped OU per input bit."""
    cfg = preset("default")
    q = random_q(np.random.default_rng(0), (300, 40), cfg, 1.0)
    b = baseline_stats(q, None, cfg)
    assert b["isaac"]["crossbars"] == 2 * 3 * 3             # ceil(300/128), ceil(320/128)
    assert b["planes"]["crossbars"] == 2 * 8 * 3 * 1
    # busiest crossbar: a full 128 x 128 tile = 15 windows x 16 column groups
    assert b["isaac"]["cycles"] == cfg.input_bits * 15 * 16
    assert b["sre"]["crossbars"] == b["isaac"]["crossbars"]


def test_sre_skips_zero_ou_rows():
    cfg = preset("default")
    q = np.zeros((128, 16), dtype=np.int64)
    q[:9, 0] = 1                                   # 9 rows non-zero in one column group
    b = baseline_stats(q, None, cfg)
    assert b["sre"]["activations"] == cfg.input_bits * 1
    assert b["sre"]["index_bits"] == 9 * 7
    assert b["isaac"]["activations"] == cfg.input_bits * 2 * 15 * 16


def test_mlc_halves_isaac_columns():
    cfg = preset("default").replace(cell_bits=2)
    q = random_q(np.random.default_rng(1), (128, 32), cfg, 1.0)
    assert baseline_stats(q, None, cfg)["isaac"]["crossbars"] == 2 * 1 * 1   # 32*4 columns


def test_depthwise_counts_only_intersecting_tiles():
    cfg = preset("default")
    rng = np.random.default_rng(2)
    g = 300
    blocks = [(i * 9, i, random_q(rng, (9, 1), cfg, 1.0)) for i in range(g)]
    b = baseline_stats(blocks, (9 * g, g), cfg)
    dense = 2 * -(-9 * g // 128) * -(-g * 8 // 128)
    assert b["isaac"]["crossbars"] < dense / 4
