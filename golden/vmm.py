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

import numpy as np

from .program import Program

__all__ = ["run", "predicted_cycles", "InputError", "check_inputs", "effective_weights"]


class InputError(ValueError):
    """Input vectors of the wrong shape, type or range."""


def check_inputs(X: np.ndarray, p: Program) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim == 1:
        X = X[None, :]
    if X.ndim != 2 or X.shape[1] != p.shape[0]:
        raise InputError(f"inputs must be M x K with K = {p.shape[0]}, got shape {X.shape}")
    if not np.issubdtype(X.dtype, np.integer):
        if X.size and (not np.all(np.isfinite(X)) or np.any(X != np.round(X))):
            raise InputError("inputs must be integers")
    X = X.astype(np.int64)
    if X.size and (X.min() < 0 or X.max() > p.cfg.max_input):
        raise InputError(f"inputs must lie in [0, {p.cfg.max_input}] "
                         f"(input_bits = {p.cfg.input_bits}), found {X.min()}..{X.max()}")
    return X


def predicted_cycles(p: Program) -> int:
    """Issue cycles per input vector: ``input_bits * steps`` (one step per cycle)."""
    return p.cycles_per_vector()


def effective_weights(p: Program) -> np.ndarray:
    """The K x N integer matrix the program computes with a lossless ADC, read from its cell
    images and descriptors (not from ``p.blocks``): entry [k, j] sums
    ``(-1)^sign * digit << (plane*cell_bits + shift)`` over every enabled wordline driven by
    input k and every bitline feeding output j.  Equals ``p.dense_q()`` for a compiled
    program; differs from it once cells are changed (faults), so a fast path built on it runs
    the same program as :func:`run`."""
    cfg = p.cfg
    K, N = p.shape
    if p.n_act == 0:
        return np.zeros((K, N), dtype=np.int64)
    a = p.acts
    cu = cfg.ou_cols
    cells = p.cells[a["xbar"], a["window"], a["colgroup"]].astype(np.int64)     # n, ru, cu
    weight = (1 - 2 * a["sign"].astype(np.int64)) << (a["plane"].astype(np.int64)
                                                      * cfg.cell_bits + a["shift"])
    vals = cells * weight[:, None, None]
    rows = np.broadcast_to(p.inputs[:, :, None], vals.shape)
    cols = np.broadcast_to(a["outgroup"].astype(np.int64)[:, None, None] * cu
                           + np.arange(cu)[None, None, :], vals.shape)
    keep = (rows >= 0) & (cols < N) & (vals != 0)
    # bincount sums in float64: exact, every entry is below 2^53 in magnitude
    flat = np.bincount(rows[keep] * N + cols[keep], weights=vals[keep], minlength=K * N)
    return np.rint(flat).astype(np.int64).reshape(K, N)


def run(p: Program, X: np.ndarray, chunk_elems: int = 1 << 24) -> tuple[np.ndarray, int]:
    """Run input vectors ``X`` (M x K, or one vector of K) through program ``p``.

    Returns ``(Y, clipped)``: Y int64 (M x N) and the number of clipped ADC samples.
    """
    cfg = p.cfg
    X = check_inputs(X, p)
    M, (K, N) = X.shape[0], p.shape
    Y = np.zeros((M, N), dtype=np.int64)
    if p.n_act == 0 or M == 0:
        return Y, 0
    a = p.acts
    cu = cfg.ou_cols
    cells = p.cells[a["xbar"], a["window"], a["colgroup"]].astype(np.float32)   # n, ru, cu
    mask = p.inputs >= 0
    idx = np.where(mask, p.inputs, 0)
    base = a["plane"].astype(np.int64) * cfg.cell_bits + a["shift"]
    sgn = 1 - 2 * a["sign"].astype(np.int64)
    col = a["outgroup"].astype(np.int64)[:, None] * cu + np.arange(cu)[None, :]  # n, cu
    flat_col = col.ravel()
    keep = flat_col < N
    order = np.argsort(flat_col[keep], kind="stable")
    sorted_cols = flat_col[keep][order]
    bounds = np.flatnonzero(np.r_[True, sorted_cols[1:] != sorted_cols[:-1]])
    out_cols = sorted_cols[bounds]
    # An activation whose column sums cannot exceed the ADC range never clips, so its input
    # bits need not be applied one at a time: sum_t 2^t (bits_t . cells) = x . cells exactly.
    may_clip = (cells * mask[:, :, None]).sum(axis=1).max(axis=1) > cfg.adc_max
    risky = np.flatnonzero(may_clip)
    safe = np.flatnonzero(~may_clip)
    clipped = 0
    per_vec = max(1, p.n_act * cfg.ou_rows * cu)
    step = max(1, chunk_elems // per_vec)
    for m0 in range(0, M, step):
        Xc = X[m0:m0 + step]
        acc = np.zeros((p.n_act, len(Xc), cu), dtype=np.int64)
        if len(safe):
            xs = (Xc[:, idx[safe]] * mask[safe]).astype(np.float64)             # m, n, ru
            acc[safe] = np.rint(np.einsum("mnr,nrc->nmc", xs, cells[safe])).astype(np.int64)
        if len(risky):
            for t in range(cfg.input_bits):
                bits = (((Xc >> t) & 1)[:, idx[risky]] * mask[risky]).astype(np.float32)
                s = np.einsum("mnr,nrc->nmc", bits, cells[risky])
                over = s > cfg.adc_max
                if over.any():
                    clipped += int(np.count_nonzero(over))
                    s = np.minimum(s, cfg.adc_max)
                acc[risky] += np.rint(s).astype(np.int64) << t
        contrib = (acc << base[:, None, None]) * sgn[:, None, None]              # n, m, cu
        flat = contrib.transpose(1, 0, 2).reshape(len(Xc), -1)[:, keep][:, order]
        Y[m0:m0 + step, out_cols] += np.add.reduceat(flat, bounds, axis=1)
    return Y, clipped
