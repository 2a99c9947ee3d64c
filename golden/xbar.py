"""Reference model of the crossbar emulator (``rtl/xbar_emulator.py``): one OU activation.

An activation applies wordline bits (one per OU row) to one OU of a crossbar (``window``,
``colgroup``); each of the ``ou_cols`` bitlines sums cell digit x bit over the rows, and the ADC
clips that sum at ``cfg.adc_max`` (a *clipped sample*).  :func:`ou_samples` is that arithmetic;
:func:`trace_samples` applies it to a whole issue trace (``golden.scheduler.issue_trace``),
giving what the emulator hands the splice adders (the input of ``golden.splice``).
"""

from __future__ import annotations

import numpy as np

from .program import Program
from .scheduler import Lane

__all__ = ["ou_samples", "trace_samples"]


def ou_samples(cells: np.ndarray, bits, adc_max: int) -> tuple[list[int], list[int]]:
    """``(samples, clips)`` of one activation: ``cells`` is the OU (ou_rows x ou_cols digits),
    ``bits`` the wordline bits; per column the ADC sample ``min(sum, adc_max)`` and 1 if the
    sum exceeded ``adc_max`` (clipped), else 0."""
    s = np.asarray(bits, dtype=np.int64) @ np.asarray(cells, dtype=np.int64)
    return np.minimum(s, adc_max).tolist(), (s > adc_max).astype(int).tolist()


def trace_samples(p: Program, trace: list[tuple[int, dict[int, Lane]]]):
    """The splice's input for ``trace``: per issue, ``(t, [(active, outgroup, plane, sign, shift,
    samples, clips) per firing lane])``, with the samples read from ``p``'s cells."""
    out = []
    for t, lanes in trace:
        row = []
        for xbar, (w, g, bits, og, plane, sign, shift) in sorted(lanes.items()):
            vals, clips = ou_samples(p.cells[xbar, w, g], bits, p.cfg.adc_max)
            row.append((1, og, plane, sign, shift, vals, clips))
        out.append((t, row))
    return out
