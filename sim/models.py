"""Expected values of the tile bench, per input vector, from the golden model (no cocotb).

The block benches take theirs from the golden block models directly (``golden.scheduler``,
``golden.xbar``, ``golden.splice``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from golden.program import Program
from golden.vmm import predicted_cycles, run

__all__ = ["VectorExpectation", "tile_expected"]


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
