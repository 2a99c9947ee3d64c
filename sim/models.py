"""Expected values for the benches, from the golden model (numpy only, no cocotb).

The tile and scheduler benches take their expectations straight from the golden model
(``golden.vmm.run``, ``golden.vmm.predicted_cycles``, ``golden.tile_image.check_image``) and from
the golden issue trace the Amaranth-simulator tests use (``tests.rtl_support.issue_trace``).
The splice adders have no golden function of their own, so :func:`splice_accumulate` states
their arithmetic (SPEC 3.3) over explicit samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from golden.config import SMEConfig
from golden.program import Program
from golden.vmm import predicted_cycles, run

__all__ = ["VectorExpectation", "tile_expected", "splice_accumulate", "wrap_signed",
           "random_valid_program"]


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


def wrap_signed(v: int, width: int) -> int:
    v &= (1 << width) - 1
    return v - (1 << width) if v >> (width - 1) else v


def splice_accumulate(cfg: SMEConfig, samples) -> tuple[list[int], int]:
    """Accumulators and clip count after ``samples``: an iterable of
    ``(t, [(active, outgroup, plane, sign, shift, [sample per column], [clip per column])
    per lane])``.  Every active sample adds ``(-1)^sign * sample << (t + plane*cell_bits +
    shift)`` into accumulator ``outgroup*ou_cols + c`` (signed, ``accumulator_bits`` wide)."""
    acc = [0] * cfg.tile_outputs
    clips = 0
    for t, lanes in samples:
        for active, og, plane, sign, shift, vals, clip in lanes:
            if not active:
                continue
            sh = t + plane * cfg.cell_bits + shift
            for c, v in enumerate(vals):
                acc[og * cfg.ou_cols + c] += (-1) ** sign * (v << sh)
                clips += int(clip[c])
    return [wrap_signed(a, cfg.accumulator_bits) for a in acc], clips


def random_valid_program(cfg: SMEConfig, rng, **kw) -> Program:
    """``tests.rtl_support.random_program`` (the Amaranth tests' generator), drawn again while
    it produces a program ``golden.program.validate`` rejects: it can leave a step empty,
    which validate forbids (a step index must be below the activation count)."""
    from golden.program import ProgramError
    from tests.rtl_support import random_program
    for _ in range(100):
        try:
            return random_program(cfg, rng, **kw)
        except ProgramError:
            continue
    raise RuntimeError("random_program produced no valid program in 100 draws")
