"""Hypothesis strategies shared by the tests: configs and layers (drawn with ``sim.stimulus``)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from golden.config import SMEConfig, preset
from sim.stimulus import random_q


@st.composite
def configs(draw, lossless: bool = True) -> SMEConfig:
    base = draw(st.sampled_from(["tiny", "tiny_mlc", "fpga_small"]))
    cfg = preset(base)
    cell_bits = draw(st.sampled_from([1, 2])) if cfg.weight_bits % 2 == 0 else 1
    cols = draw(st.sampled_from([4, 8, 16]))
    ou_cols = draw(st.sampled_from([c for c in (1, 2, 4, 8) if cols % c == 0]))
    rows = draw(st.integers(2, 20))
    return cfg.replace(
        name="hyp", pattern=draw(st.sampled_from(["window", "max_ones", "uniform", "fragment"])),
        fragment_bits=draw(st.integers(1, cfg.weight_bits)), fragment_sign=draw(st.booleans()),
        cell_bits=cell_bits, xbar_rows=rows, xbar_cols=cols,
        ou_rows=draw(st.integers(1, min(rows, 9))), ou_cols=ou_cols,
        input_bits=draw(st.integers(1, 8)),
        tile_outputs=((cfg.tile_outputs + ou_cols - 1) // ou_cols) * ou_cols,
        adc_bits=None if lossless else draw(st.integers(1, 3)))


@st.composite
def layers(draw, cfg: SMEConfig):
    """A layer as (blocks, shape): dense, all-zero, single-row, or grouped/depthwise."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["dense", "dense", "dense", "zero", "row", "grouped",
                                 "depthwise"]))
    density = draw(st.sampled_from([0.05, 0.3, 1.0]))
    if kind in ("dense", "zero", "row"):
        k = 1 if kind == "row" else draw(st.integers(1, 45))
        n = draw(st.integers(1, 21))
        q = random_q(rng, (k, n), cfg, 0.0 if kind == "zero" else density)
        return [(0, 0, q)], (k, n)
    groups = draw(st.integers(2, 6))
    kg = draw(st.integers(1, 9))
    ng = 1 if kind == "depthwise" else draw(st.integers(1, 5))
    blocks = [(g * kg, g * ng, random_q(rng, (kg, ng), cfg, density, col0=g * ng))
              for g in range(groups)]
    return blocks, (groups * kg, groups * ng)


def dense(blocks, shape) -> np.ndarray:
    """The K x N matrix of a block list (for checks on small layers)."""
    q = np.zeros(shape, dtype=np.int64)
    for r0, c0, b in blocks:
        q[r0:r0 + b.shape[0], c0:c0 + b.shape[1]] = b
    return q
