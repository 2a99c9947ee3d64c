"""Expectations for the RTL tests and benches, from the golden model (no cocotb, no Amaranth).

:func:`tile_expected` gives the tile's outputs, clips and cycles per vector;
:func:`decode_step` reads a scheduler payload as an entry of the golden issue trace, so the
Amaranth-simulator test and the cocotb bench of the scheduler compare the same way.  The other
blocks compare with their golden models directly (``golden.xbar``, ``golden.splice``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from golden.program import Program
from golden.vmm import predicted_cycles, run

__all__ = ["VectorExpectation", "tile_expected", "decode_step"]


@dataclass
class VectorExpectation:
    y: list[int]
    clips: int
    cycles: int


def tile_expected(p: Program, X: np.ndarray) -> list[VectorExpectation]:
    """Per input vector: outputs, clipped ADC samples and issue cycles, from the golden model."""
    cycles = predicted_cycles(p)
    out = []
    for x in np.atleast_2d(X):
        y, clips = run(p, x[None, :])
        out.append(VectorExpectation([int(v) for v in y[0]], int(clips), cycles))
    return out


def decode_step(step, cfg) -> tuple[int, dict]:
    """A scheduler output payload (``Layouts.step``: an Amaranth view or a
    ``sim.streams.unpack`` result) as an entry of :func:`golden.scheduler.issue_trace`:
    ``(t, {lane: (window, colgroup, bits, outgroup, plane, sign, shift)})`` for active lanes."""
    lanes = {}
    for lane in range(cfg.tile_xbars):
        a = step.lanes[lane]
        if a.active:
            bits = tuple((int(a.bits) >> r) & 1 for r in range(cfg.ou_rows))
            lanes[lane] = (int(a.window), int(a.colgroup), bits, int(a.tag.outgroup),
                           int(a.tag.plane), int(a.tag.sign), int(a.tag.shift))
    return int(step.t), lanes
