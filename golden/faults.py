"""Device faults at the program level: stuck-at-0 / stuck-at-1 ReRAM cells.

A fault changes a cell of a compiled program's cell images (``Program.cells``), so the golden
VMM, the fast lossless path (:func:`golden.vmm.effective_weights`), the Amaranth simulation and
the emitted Verilog all run the *same* faulty program.

Model: every physical cell of every allocated crossbar (rows ``0 .. xbar_rows - 1``; the
padding rows of a last partial OU window do not exist) fails independently: with probability
``stuck0`` it reads 0 (stuck at the high-resistance state), with probability ``stuck1`` it
reads ``cell_max`` (stuck at the low-resistance state), otherwise it keeps its digit.  A stuck
cell matters only where the schedule drives its wordline: a stuck-at-1 cell on a row the
schedule never enables adds nothing, as in the array.  Crossbars the compiler never allocated
(squeezed-out planes) have no cells and no faults.  ``Program.blocks`` keep the intended
weights; ``meta["faults"]`` records the rates, the seed and the cells changed.

Seeding: one :class:`numpy.random.Generator` per program from ``(seed, *salt)``, so a fault map
depends only on the seed and on where the program sits (e.g. layer and part index), never on
the order in which programs are processed.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .program import Program, validate

__all__ = ["FaultRates", "inject", "inject_partition", "FaultError"]


class FaultError(ValueError):
    """Fault rates outside [0, 1] or summing above 1."""


@dataclasses.dataclass(frozen=True)
class FaultRates:
    """Per-cell probabilities of stuck-at-0 and stuck-at-1."""
    stuck0: float = 0.0
    stuck1: float = 0.0

    def __post_init__(self):
        for name in ("stuck0", "stuck1"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0.0 <= v <= 1.0):
                raise FaultError(f"{name} must be a probability in [0, 1], not {v!r}")
        if self.stuck0 + self.stuck1 > 1.0:
            raise FaultError(f"stuck0 + stuck1 must not exceed 1, got "
                             f"{self.stuck0 + self.stuck1}")

    @property
    def any(self) -> bool:
        return self.stuck0 > 0 or self.stuck1 > 0


def inject(prog: Program, rates: FaultRates, seed: int = 0, salt=()) -> Program:
    """A copy of ``prog`` with stuck cells drawn from ``(seed, *salt)``; ``prog`` is unchanged.
    ``meta["faults"]`` counts the cells whose stored digit actually changed."""
    cfg = prog.cfg
    rng = np.random.default_rng([int(seed), *[int(s) for s in salt]])
    cells = prog.cells.copy()
    u = rng.random(cells.shape)
    X, W, G, ru, cu = cells.shape
    row = (np.arange(W)[:, None] * ru + np.arange(ru)[None, :])             # W, ru
    physical = (row < cfg.xbar_rows)[None, :, None, :, None]
    s0 = physical & (u < rates.stuck0)
    s1 = physical & (u >= rates.stuck0) & (u < rates.stuck0 + rates.stuck1)
    before = cells.copy()
    cells[s0] = 0
    cells[s1] = cfg.cell_max
    changed = int(np.count_nonzero(cells != before))
    out = dataclasses.replace(prog, cells=cells, meta={
        **prog.meta, "faults": {"stuck0": rates.stuck0, "stuck1": rates.stuck1,
                                "seed": int(seed), "salt": [int(s) for s in salt],
                                "stuck0_cells": int(s0.sum()), "stuck1_cells": int(s1.sum()),
                                "changed_cells": changed}},
        stats=dict(prog.stats))
    validate(out, "faulty program")
    return out


def inject_partition(part, rates: FaultRates, seed: int = 0, salt=()):
    """Faults in every program of a :class:`golden.partition.Partition`; part ``i`` draws from
    ``(seed, *salt, i)``."""
    progs = iter(range(part.n_parts))
    return part.map(lambda p: inject(p, rates, seed, (*salt, next(progs))))
