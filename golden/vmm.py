"""Reference sliced sparse VMM (SPEC 3.3): execute a compiled program exactly as the tile does.

For every input bit t (1-bit DAC) and every OU activation of the program, each of the
``ou_cols`` bitlines sums digit x input-bit over the activation's wordlines; the ADC clips that
sum at ``cfg.adc_max`` (a *clipped sample*, counted); the splice adds
``(-1)^sign * sample << (t + plane*cell_bits + shift)`` into output column
``outgroup*ou_cols + c``.  With a lossless ADC the result equals ``X @ Q`` exactly.

The loop over activations is vectorized; inputs are processed in chunks of vectors to bound
memory.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .fileio import check_size
from .program import Program

__all__ = ["run", "run_blocks", "predicted_cycles", "InputError", "check_inputs",
           "effective_weights", "exact_matmul", "run_plan", "RunPlan"]


class InputError(ValueError):
    """Input vectors of the wrong shape, type or range."""


def check_inputs(X: np.ndarray, p: Program) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim == 1:
        X = X[None, :]
    if X.ndim != 2 or X.shape[1] != p.shape[0]:
        raise InputError(f"inputs must be M x K with K = {p.shape[0]}, got shape {X.shape}")
    if X.dtype.kind not in "biuf":
        raise InputError(f"inputs must be numbers, not {X.dtype} values")
    if not np.issubdtype(X.dtype, np.integer):
        if X.size and (not np.all(np.isfinite(X)) or np.any(X != np.round(X))):
            raise InputError("inputs must be integers")
    check_size(X.size * 8, f"{X.shape[0]} input vectors of {X.shape[1]} (int64)")
    X = X.astype(np.int64)
    if X.size and (X.min() < 0 or X.max() > p.cfg.max_input):
        raise InputError(f"inputs must lie in [0, {p.cfg.max_input}] "
                         f"(input_bits = {p.cfg.input_bits}), found {X.min()}..{X.max()}")
    return X


def predicted_cycles(p: Program) -> int:
    """Issue cycles per input vector: ``input_bits * steps`` (one step per cycle)."""
    return p.cycles_per_vector()


def _act_cells(p: Program) -> np.ndarray:
    """Cells each activation reads, (n_act, ou_rows, ou_cols) uint8, zero on wordlines the
    activation leaves off (they contribute nothing)."""
    a = p.acts
    cells = p.cells[a["xbar"], a["window"], a["colgroup"]]
    return cells * (p.inputs >= 0)[:, :, None].astype(np.uint8)


def _act_weights(p: Program) -> np.ndarray:
    """Signed significance of each activation's samples: (-1)^sign * 2^(plane*cell_bits+shift)."""
    a = p.acts
    return (1 - 2 * a["sign"].astype(np.int64)) << (a["plane"].astype(np.int64)
                                                     * p.cfg.cell_bits + a["shift"])


def _matrix(p: Program, sel: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """K x N integer matrix computed (lossless) by the activations ``sel`` (indices)."""
    K, N = p.shape
    cu = p.cfg.ou_cols
    vals = cells[sel].astype(np.int64) * _act_weights(p)[sel][:, None, None]
    rows = np.broadcast_to(p.inputs[sel][:, :, None], vals.shape)
    cols = np.broadcast_to(p.acts["outgroup"][sel].astype(np.int64)[:, None, None] * cu
                           + np.arange(cu)[None, None, :], vals.shape)
    keep = (rows >= 0) & (cols < N) & (vals != 0)
    # bincount sums in float64: exact, every entry is below 2^53 in magnitude
    flat = np.bincount(rows[keep] * N + cols[keep], weights=vals[keep], minlength=K * N)
    return np.rint(flat).astype(np.int64).reshape(K, N)


def effective_weights(p: Program) -> np.ndarray:
    """The K x N integer matrix the program computes with a lossless ADC, read from its cell
    images and descriptors (not from ``p.blocks``): entry [k, j] sums
    ``(-1)^sign * digit << (plane*cell_bits + shift)`` over every enabled wordline driven by
    input k and every bitline feeding output j.  Equals ``p.dense_q()`` for a compiled
    program; differs from it once cells are changed (faults), so a fast path built on it runs
    the same program as :func:`run`."""
    return _matrix(p, np.arange(p.n_act), _act_cells(p))


def exact_matmul(X: np.ndarray, W: np.ndarray, max_input: int) -> np.ndarray:
    """``X @ W`` for integer arrays, exact: a float64 BLAS product when every partial sum is
    below 2^53 (``max_input * max column sum of |W|``), else an int64 product."""
    bound = int(np.abs(W).sum(axis=0).max(initial=0)) * int(max_input)
    if bound < 2 ** 53:
        return np.rint(X.astype(np.float64) @ W.astype(np.float64)).astype(np.int64)
    return X.astype(np.int64) @ W.astype(np.int64)


@dataclasses.dataclass
class RunPlan:
    """What :func:`run` derives from a program before it sees inputs (:func:`run_plan`); build
    it once to run many batches through the same program.  Only valid while the program's
    arrays are unchanged."""
    program: Program
    safe_w: np.ndarray | None          # K x N: the activations that cannot clip, lossless
    risky: np.ndarray                  # indices of the others, sorted by output group
    starts: np.ndarray                 # first risky activation of each output group
    groups: np.ndarray                 # the output group of each run
    weights: np.ndarray                # signed significance of each risky activation
    idx: np.ndarray                    # (n, ou_rows) input index per wordline (off: 0)
    spans: list                        # wordline groups (r0, r1) of the tables
    tables: list                       # per group: column sums per bit pattern
    packed: bool                       # tables hold ou_cols uint8 lanes in one word


def run_plan(p: Program) -> RunPlan:
    cfg = p.cfg
    ru, cu = cfg.ou_rows, cfg.ou_cols
    # Sizes a program declares are bounded before they are allocated.
    check_size(p.shape[0] * p.shape[1] * 8,
               f"the layer's {p.shape[0]} x {p.shape[1]} weight matrix (int64)")
    check_size(p.n_act * ru * cu * 8, f"the {p.n_act} OU activations' cells")
    cells = _act_cells(p)
    may_clip = cells.sum(axis=1, dtype=np.int64).max(axis=1) > cfg.adc_max
    safe = np.flatnonzero(~may_clip)
    safe_w = _matrix(p, safe, cells) if len(safe) else None
    risky = np.flatnonzero(may_clip)
    og = p.acts["outgroup"][risky].astype(np.int64)
    order = np.argsort(og, kind="stable")
    risky, og = risky[order], og[order]
    starts = np.flatnonzero(np.r_[True, og[1:] != og[:-1]]) if len(og) else \
        np.zeros(0, dtype=np.int64)
    c = cells[risky]                                                  # n, ru, cu
    idx = np.where(p.inputs[risky] >= 0, p.inputs[risky], 0)          # off rows: zero cells
    # Column-sum tables of wordline groups of up to 5 rows: T[i, pattern, c].
    width = min(ru, 5)
    spans = [(r0, min(r0 + width, ru)) for r0 in range(0, ru, width)]
    packed = cu in (1, 2, 4, 8) and ru * cfg.cell_max < 256   # lanes of one word never carry
    tables = []
    for r0, r1 in spans:
        pats = (np.arange(1 << (r1 - r0))[:, None] >> np.arange(r1 - r0)) & 1   # P, w
        t = np.einsum("pr,nrc->npc", pats.astype(np.int64), c[:, r0:r1].astype(np.int64))
        t = t.astype(np.uint8 if packed else np.int64)
        tables.append(np.ascontiguousarray(t).view(f"u{cu}")[..., 0] if packed else t)
    return RunPlan(p, safe_w, risky, starts, og[starts], _act_weights(p)[risky], idx, spans,
                   tables, packed)


def run(p: Program, X: np.ndarray, chunk_elems: int = 1 << 24,
        plan: RunPlan | None = None) -> tuple[np.ndarray, int]:
    """Run input vectors ``X`` (M x K, or one vector of K) through program ``p``.

    Returns ``(Y, clipped)``: Y int64 (M x N) and the number of clipped ADC samples.

    How (the result is the definition's, bit for bit): an activation whose column sums cannot
    exceed the ADC range even with every enabled wordline high never clips, so its input bits
    need not be applied one at a time (sum_t 2^t (bits_t . cells) = x . cells); all such
    activations together are one exact integer product ``X @ W_safe``.  The others run input
    bit by input bit: the bit pattern of each group of up to five wordlines indexes a
    precomputed table of that group's column sums, the groups' sums are added, clipped at
    ``adc_max`` and counted, shifted by t and accumulated; samples are spliced per output
    group.  ``chunk_elems`` bounds the temporary arrays.  ``plan``: :func:`run_plan` of ``p``,
    when the caller runs many batches.
    """
    cfg = p.cfg
    X = check_inputs(X, p)
    M, N = X.shape[0], p.shape[1]
    check_size(M * N * 8, f"the output ({M} x {N} int64)")
    Y = np.zeros((M, N), dtype=np.int64)
    if p.n_act == 0 or M == 0:
        return Y, 0
    if plan is None:
        plan = run_plan(p)
    elif plan.program is not p:
        raise ValueError("the run plan belongs to another program")
    if plan.safe_w is not None:
        Y += exact_matmul(X, plan.safe_w, cfg.max_input)
    if len(plan.risky) == 0:
        return Y, 0
    return _bit_serial(plan, X, Y, chunk_elems)


def _bit_serial(plan: RunPlan, X, Y, chunk_elems: int):
    cfg = plan.program.cfg
    M, N = Y.shape
    ru, cu = cfg.ou_rows, cfg.ou_cols
    n = len(plan.risky)
    acc_t = np.int32 if cfg.effective_adc_bits + cfg.input_bits < 31 else np.int64
    in_t = np.uint16 if cfg.input_bits <= 16 else np.int64
    ar = np.arange(n)[None, :]
    clipped = 0
    step = max(1, chunk_elems // max(1, n * max(ru, cu) * 8))
    width_out = -(-N // cu) * cu
    for m0 in range(0, M, step):
        Xg = X[m0:m0 + step][:, plan.idx].astype(in_t)                # m, n, ru
        mc = len(Xg)
        acc = np.zeros((mc, n, cu), dtype=acc_t)
        for t in range(cfg.input_bits):
            s = None
            for (r0, r1), tab in zip(plan.spans, plan.tables):
                pat = np.zeros((mc, n), dtype=np.intp)
                for r in range(r0, r1):
                    pat |= ((Xg[:, :, r] >> t) & 1).astype(np.intp) << (r - r0)
                g = tab[ar, pat]
                s = g if s is None else s + g
            if plan.packed:
                s = s.view(np.uint8).reshape(mc, n, cu)
            over = s > cfg.adc_max
            clipped += int(np.count_nonzero(over))
            acc += np.minimum(s, cfg.adc_max).astype(acc_t) << t
        contrib = acc.astype(np.int64) * plan.weights[None, :, None]
        sums = np.add.reduceat(contrib, plan.starts, axis=1)          # m, groups, cu
        out = np.zeros((mc, width_out // cu, cu), dtype=np.int64)
        out[:, plan.groups] = sums
        Y[m0:m0 + step] += out.reshape(mc, width_out)[:, :N]
    return Y, clipped


def run_blocks(p: Program, X: np.ndarray) -> tuple[np.ndarray, int]:
    """:func:`run` evaluated the slow way, one issue at a time through the reference models of
    the tile's blocks: the scheduler's issue trace (``golden.scheduler``), the crossbar's ADC
    samples with clipping (``golden.xbar``) and the splice's shift-and-add
    (``golden.splice``, accumulators not wrapped).  Independent of :func:`run`'s vectorized
    shortcuts, so it checks results that clip, where ``x @ W`` says nothing.  Returns
    ``(Y, clipped)`` like :func:`run`."""
    from .scheduler import issue_trace
    from .splice import splice_accumulate
    from .xbar import trace_samples

    X = check_inputs(X, p)
    n_out = max(1, p.n_outgroups) * p.cfg.ou_cols
    Y = np.zeros((len(X), p.shape[1]), dtype=np.int64)
    clipped = 0
    for m, x in enumerate(X):
        acc, clips = splice_accumulate(p.cfg, trace_samples(p, issue_trace(p, x)),
                                       outputs=n_out, wrap=False)
        Y[m] = acc[:p.shape[1]]
        clipped += clips
    return Y, clipped
