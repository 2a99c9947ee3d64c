"""Reference model of the grouped row scheduler (``rtl/scheduler.py``): the issue trace.

The tile issues one *step* per cycle: for every input bit t (outer loop) and every step s of the
program (inner loop), each crossbar lane that has an activation in step s fires it, with the
wordline bits ``bit t of x[row index]`` (0 for an unused row, index -1).  :func:`issue_trace`
lists exactly those issues in order, so ``len(issue_trace(p, x)) == golden.vmm.predicted_cycles(p)``
and an empty step still takes its cycle (it issues no lane).

The wordline inputs come from the program's expanded ``inputs`` (one row per activation); the
RTL reads them from each lane's row-list memory at the descriptor's row-list id
(``golden/tile_image.py``), so activations that share a row list must issue the same
wordline bits with their own tags.  The trace does not depend on the scheduler's pipeline
depth: row lists added two stages to ``rtl.scheduler.Scheduler.latency`` (3 -> 5 cycles from
``start`` to the first issue) and changed no issue cycle.
"""

from __future__ import annotations

import numpy as np

from .program import Program

__all__ = ["Lane", "issue_trace"]

#: One lane's issue: (window, colgroup, wordline bits per OU row, outgroup, plane, sign, shift).
Lane = tuple[int, int, tuple[int, ...], int, int, int, int]


def issue_trace(p: Program, x) -> list[tuple[int, dict[int, Lane]]]:
    """Per issue cycle (t outer, step inner): ``(t, {xbar: Lane})`` for the lanes that fire.
    ``x`` is one input vector of K unsigned integers."""
    cfg = p.cfg
    a = p.acts
    out = []
    for t in range(cfg.input_bits):
        for s in range(p.n_steps):
            lanes = {}
            for i in np.flatnonzero(a["step"] == s):
                bits = tuple(int(r >= 0 and (int(x[r]) >> t) & 1) for r in p.inputs[i])
                lanes[int(a["xbar"][i])] = (int(a["window"][i]), int(a["colgroup"][i]), bits,
                                            int(a["outgroup"][i]), int(a["plane"][i]),
                                            int(a["sign"][i]), int(a["shift"][i]))
            out.append((t, lanes))
    return out
