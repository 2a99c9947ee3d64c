"""Bit-pattern quantization (SPEC 3.1): allowed levels, exact projection, scales and ADMM.

A quantized weight is a signed integer q with |q| <= 2^B - 1 whose magnitude obeys a bit
pattern:

* ``window``: the non-zero bits of |q| lie within ``window`` consecutive bit positions, i.e.
  |q| = m * 2^e with m < 2^window;
* ``max_ones``: |q| has at most ``max_ones`` one-bits (APoT-like);
* ``uniform``: no pattern;
* ``fragment``: a constraint on groups, not on single weights.  A *fragment* is the ``ou_cols``
  weights of one input row inside one output group (global output columns
  ``[g*ou_cols, (g+1)*ou_cols)``), the unit that segment squeeze packs.  Its magnitudes share one
  exponent: |q_j| = m_j * 2^e with m_j < 2^fragment_bits (and |q_j| <= 2^B - 1), so the
  fragment occupies at most ``fragment_bits`` bit planes per sign set.  With
  ``fragment_sign`` its non-zero weights also share one sign.  Every single weight then obeys
  the window pattern with ``window = fragment_bits``; :func:`allowed_magnitudes` returns those.

Layout: the fragment pattern needs to know which axis holds the outputs (``out_axis``, default
the last, as in the K x N layer matrix; PyTorch layout ``(Cout, ...)`` has it at 0: every other
axis is flattened into the rows) and where the array's first output column sits in the layer
(``col0``, so that a block of a block-diagonal layer is grouped like the whole matrix).  The
element-wise patterns ignore both.

The projection onto the allowed set is exact and vectorized.  **Tie rule**: a value exactly
half-way between two allowed levels goes to the level of larger magnitude (round half away
from zero), for every pattern, so ``uniform`` agrees with ordinary symmetric rounding.  For
``fragment`` the nearest point of the union over exponents e (and signs) is the best of the
per-e nearest points (each one element-wise rounding, half away from zero, clipped to the
mantissa range); ties between exponents go to the smaller e, between signs to positive.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .config import SMEConfig

__all__ = ["allowed_magnitudes", "allowed_levels", "project_levels", "check_pattern",
           "choose_scale", "quantize", "admm_project", "admm_step", "ADMMState",
           "PatternError", "fragment_view"]


class PatternError(ValueError):
    """An integer weight that is out of range or violates the configured bit pattern."""


def _obeys(mag: np.ndarray, cfg: SMEConfig) -> np.ndarray:
    mag = np.asarray(mag, dtype=np.int64)
    if mag.size > 4 * (cfg.max_magnitude + 1):          # large arrays: one table look-up
        table = _obeys_rule(np.arange(cfg.max_magnitude + 1), cfg)
        inside = (mag >= 0) & (mag <= cfg.max_magnitude)
        return inside & table[np.where(inside, mag, 0)]
    return _obeys_rule(mag, cfg)


def _obeys_rule(mag: np.ndarray, cfg: SMEConfig) -> np.ndarray:
    ok = (mag >= 0) & (mag <= cfg.max_magnitude)
    if cfg.pattern == "uniform":
        return ok
    if cfg.pattern == "max_ones":
        ones = np.zeros(mag.shape, dtype=np.int64)
        for b in range(cfg.weight_bits):
            ones += (mag >> b) & 1
        return ok & (ones <= cfg.max_ones)
    # window (fragment: each weight alone): strip trailing zeros, the rest must be < 2^window
    width = cfg.fragment_bits if cfg.pattern == "fragment" else cfg.window
    m = mag.copy()
    nz = m > 0
    for _ in range(cfg.weight_bits):
        even = nz & ((m & 1) == 0)
        m[even] >>= 1
    return ok & (m < (1 << width))


def allowed_magnitudes(cfg: SMEConfig) -> np.ndarray:
    """Sorted allowed magnitudes (0 included) of the configured pattern."""
    cand = np.arange(cfg.max_magnitude + 1, dtype=np.int64)
    return cand[_obeys(cand, cfg)]


def allowed_levels(cfg: SMEConfig) -> np.ndarray:
    """Sorted allowed signed levels: -mags[::-1] ... 0 ... mags."""
    mags = allowed_magnitudes(cfg)
    return np.concatenate([-mags[:0:-1], mags])


def fragment_view(v: np.ndarray, cfg: SMEConfig, out_axis: int = -1, col0: int = 0):
    """``v`` as fragments: returns ``(f, undo)`` with ``f`` of shape (rows, groups, ou_cols)
    (outputs moved last, other axes flattened into rows, zero-padded so that global column
    ``col0`` of the layer lands at its place in its output group) and ``undo(f)`` giving back an
    array of ``v``'s shape."""
    v = np.asarray(v)
    moved = np.moveaxis(v, out_axis, -1) if v.ndim else v.reshape(1)
    n, cu = moved.shape[-1], cfg.ou_cols
    lead = int(col0) % cu
    tail = (-(lead + n)) % cu
    flat = moved.reshape(-1, n)
    f = np.pad(flat, ((0, 0), (lead, tail))).reshape(flat.shape[0], -1, cu)

    def undo(g: np.ndarray) -> np.ndarray:
        g = np.asarray(g).reshape(flat.shape[0], -1)[:, lead:lead + n].reshape(moved.shape)
        return np.moveaxis(g, -1, out_axis) if v.ndim else g.reshape(())
    return f, undo


def _project_fragments(v: np.ndarray, cfg: SMEConfig, out_axis: int, col0: int) -> np.ndarray:
    f, undo = fragment_view(v, cfg, out_axis, col0)
    a, neg = np.abs(f), f < 0
    signs = (False, True) if cfg.fragment_sign else (None,)
    best = np.zeros(f.shape, dtype=np.int64)            # signed levels
    best_err = np.full(f.shape[:2], np.inf)
    for e in range(cfg.weight_bits):
        cap = min((1 << cfg.fragment_bits) - 1, cfg.max_magnitude >> e)
        if cap == 0:
            break
        mag = np.minimum(np.floor(a / (1 << e) + 0.5), cap) * (1 << e)
        for s in signs:
            if s is None:                               # each weight keeps its own sign
                cand = np.where(neg, -mag, mag)
                err = np.sum((mag - a) ** 2, axis=-1)
            else:                                       # weights of the other sign go to 0
                keep = neg == s
                cand = np.where(keep, -mag if s else mag, 0.0)
                err = np.sum(np.where(keep, (mag - a) ** 2, a ** 2), axis=-1)
            better = err < best_err
            best = np.where(better[..., None], cand.astype(np.int64), best)
            best_err = np.where(better, err, best_err)
    return undo(best).astype(np.int64)


def project_levels(v: np.ndarray, cfg: SMEConfig, out_axis: int = -1,
                   col0: int = 0) -> np.ndarray:
    """Nearest allowed signed integer level of each element of ``v`` (float, any shape); for the
    ``fragment`` pattern the nearest point of the allowed set of each fragment (module
    docstring: ``out_axis``, ``col0``, tie rules).

    Ties go to the larger magnitude.  Values beyond the largest level saturate.
    Returns int64.
    """
    v = np.asarray(v, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise ValueError("cannot quantize NaN or infinite values")
    if cfg.pattern == "fragment":
        return _project_fragments(v, cfg, out_axis, col0)
    # Allowed magnitudes are integers, so every mid-point between neighbours is a multiple of
    # 1/2 and the nearest level is constant on each [b/2, (b+1)/2): one table look-up per
    # element (a at a mid-point goes up: ties to the larger magnitude).
    mags = allowed_magnitudes(cfg).astype(np.float64)
    mids = (mags[:-1] + mags[1:]) / 2
    table = mags[np.searchsorted(mids, np.arange(2 * cfg.max_magnitude + 2) / 2, side="right")]
    bucket = np.minimum(np.floor(2 * np.abs(v)), 2 * cfg.max_magnitude + 1)
    pick = table[bucket.astype(np.int64)]
    return (np.sign(v) * pick).astype(np.int64)


def check_pattern(q: np.ndarray, cfg: SMEConfig, out_axis: int = -1, col0: int = 0) -> None:
    """Raise :class:`PatternError` naming the first offending entry of an integer matrix (for
    ``fragment``: the first offending fragment; ``out_axis`` and ``col0`` as in
    :func:`project_levels`)."""
    q = np.asarray(q)
    if not np.issubdtype(q.dtype, np.integer):
        if not np.all(np.isfinite(q)) or np.any(q != np.round(q)):
            raise PatternError("integer weights expected, found non-integer values")
        q = q.astype(np.int64)
    bad = ~_obeys(np.abs(q.astype(np.int64)), cfg)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        value = int(q[idx])
        why = (f"magnitude above {cfg.max_magnitude}" if abs(value) > cfg.max_magnitude
               else f"violates the {cfg.pattern!r} pattern")
        raise PatternError(f"weight {value} at index {idx} {why} "
                           f"({int(bad.sum())} offending entries in all)")
    if cfg.pattern == "fragment" and q.size:
        _check_fragments(q.astype(np.int64), cfg, out_axis, col0)


def _check_fragments(q: np.ndarray, cfg: SMEConfig, out_axis: int, col0: int) -> None:
    f, _ = fragment_view(q, cfg, out_axis, col0)
    orv = np.bitwise_or.reduce(np.abs(f), axis=-1)
    low = orv & -orv                                     # lowest set bit of the fragment
    span = np.where(orv > 0, orv // np.where(low > 0, low, 1), 0)
    bad = span >= (1 << cfg.fragment_bits)
    why = f"spans more than fragment_bits = {cfg.fragment_bits} bit positions"
    if cfg.fragment_sign and not bad.any():
        bad = np.any(f > 0, axis=-1) & np.any(f < 0, axis=-1)
        why = "mixes signs (fragment_sign is on)"
    if bad.any():
        row, grp = (int(i) for i in np.argwhere(bad)[0])
        lo = max(0, grp * cfg.ou_cols - int(col0) % cfg.ou_cols)
        hi = (grp + 1) * cfg.ou_cols - int(col0) % cfg.ou_cols
        vals = [int(x) for x in f[row, grp]]
        raise PatternError(f"fragment at row {row}, output columns {lo}..{hi - 1} of the array "
                           f"{vals} {why} ({int(bad.sum())} offending fragments in all)")


def _out_axis(axis: int | None, out_axis: int | None) -> int:
    """Output axis for the fragment pattern: explicit, else the per-channel scale axis, else
    the last axis."""
    return out_axis if out_axis is not None else (axis if axis is not None else -1)


def choose_scale(w: np.ndarray, cfg: SMEConfig, axis: int | None = None,
                 method: str = "mse", out_axis: int | None = None) -> np.ndarray:
    """Scale alpha so that q = project(w / alpha) spans the allowed levels.

    ``axis=None``: one scale for the tensor; ``axis=k``: one scale per index along axis k
    (per output channel).  ``method="max"`` maps max|w| to the largest level; ``"mse"`` searches
    30 fractions of that for the least squared error.  Returns an array broadcastable to w.
    ``out_axis`` (fragment pattern; default ``axis``, else the last) as in
    :func:`project_levels`.
    """
    oax = _out_axis(axis, out_axis)
    w = np.asarray(w, dtype=np.float64)
    top = float(allowed_magnitudes(cfg)[-1])
    red = None if axis is None else tuple(i for i in range(w.ndim) if i != axis)
    amax = np.max(np.abs(w), axis=red, keepdims=True) if w.size else np.zeros(())
    base = np.where(amax > 0, amax / top, 1.0)
    if method == "max":
        return base
    if method != "mse":
        raise ValueError(f"scale method must be 'max' or 'mse', not {method!r}")
    best, best_err = base, None
    for f in np.linspace(0.25, 1.0, 30):
        alpha = base * f
        err = np.sum((project_levels(w / alpha, cfg, oax) * alpha - w) ** 2, axis=red,
                     keepdims=True)
        if best_err is None:
            best, best_err = alpha, err
        else:
            better = err < best_err
            best = np.where(better, alpha, best)
            best_err = np.where(better, err, best_err)
    return best


def quantize(w: np.ndarray, cfg: SMEConfig, axis: int | None = None,
             method: str = "mse", out_axis: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Quantize float weights: returns (q int64, alpha) with w ~= q * alpha."""
    alpha = choose_scale(w, cfg, axis=axis, method=method, out_axis=out_axis)
    return project_levels(np.asarray(w, dtype=np.float64) / alpha, cfg,
                          _out_axis(axis, out_axis)), alpha


def admm_project(v: np.ndarray, alpha: np.ndarray, cfg: SMEConfig,
                 out_axis: int = -1) -> np.ndarray:
    """Z-update of ADMM: alpha * Pi_S(v / alpha), the Euclidean projection when alpha is one
    scale per output (or per tensor)."""
    return project_levels(v / alpha, cfg, out_axis) * alpha


class ADMMState:
    """ADMM state for one weight tensor (SPEC 3.1), framework-neutral: numpy in, numpy out.

    Use from any training loop::

        st = ADMMState(w, cfg, rho=1e-2)
        for epoch in ...:
            for batch in ...:
                g = grad_of_loss(w) + st.penalty_grad(w)   # add rho * (W - Z + U)
                w -= lr * g
            st.update(w)                                   # Z and U updates
        w = st.finalize(w)                                 # W = Z: on the pattern exactly
    """

    def __init__(self, w: np.ndarray, cfg: SMEConfig, rho: float = 1e-2,
                 axis: int | None = None, out_axis: int | None = None,
                 alpha: np.ndarray | None = None):
        self.cfg, self.rho, self.axis = cfg, float(rho), axis
        self.out_axis = _out_axis(axis, out_axis)
        w = np.asarray(w, dtype=np.float64)
        self.alpha = (choose_scale(w, cfg, axis=axis, out_axis=out_axis) if alpha is None
                      else np.asarray(alpha, dtype=np.float64))
        self.z = admm_project(w, self.alpha, cfg, self.out_axis)
        self.u = np.zeros_like(w)

    def penalty_grad(self, w: np.ndarray) -> np.ndarray:
        return self.rho * (np.asarray(w, dtype=np.float64) - self.z + self.u)

    def update(self, w: np.ndarray) -> float:
        """Z <- Pi(W + U), U <- U + W - Z.  Returns the primal residual ||W - Z||."""
        w = np.asarray(w, dtype=np.float64)
        self.z = admm_project(w + self.u, self.alpha, self.cfg, self.out_axis)
        self.u = self.u + w - self.z
        return float(np.linalg.norm(w - self.z))

    def finalize(self, w: np.ndarray | None = None) -> np.ndarray:
        """The final weights W = Pi(W): every weight on the pattern (float, = q * alpha)."""
        src = self.z if w is None else np.asarray(w, dtype=np.float64)
        return admm_project(src, self.alpha, self.cfg, self.out_axis)

    def integers(self, w: np.ndarray | None = None) -> np.ndarray:
        src = self.z if w is None else np.asarray(w, dtype=np.float64)
        return project_levels(src / self.alpha, self.cfg, self.out_axis)


def admm_step(w: np.ndarray, grad: Callable[[np.ndarray], np.ndarray], state: ADMMState,
              lr: float, sgd_steps: int = 10) -> np.ndarray:
    """One ADMM iteration: ``sgd_steps`` gradient steps on loss + rho/2 ||W - Z + U||^2, then
    the Z and U updates.  ``grad(w)`` returns the gradient of the task loss.  Returns new W."""
    w = np.array(w, dtype=np.float64)
    for _ in range(sgd_steps):
        w -= lr * (grad(w) + state.penalty_grad(w))
    state.update(w)
    return w


def admm(w0: np.ndarray, grad: Callable[[np.ndarray], np.ndarray], cfg: SMEConfig, *,
         lr: float, rho: float = 1e-2, iters: int = 50, sgd_steps: int = 10,
         rho_growth: float = 1.1, axis: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Run the whole ADMM loop and return (q, alpha): integer weights exactly on the pattern.

    ``rho`` grows by ``rho_growth`` per iteration so that W is pulled onto Z at the end.
    """
    state = ADMMState(w0, cfg, rho=rho, axis=axis)
    w = np.array(w0, dtype=np.float64)
    for _ in range(iters):
        w = admm_step(w, grad, state, lr, sgd_steps)
        state.rho *= rho_growth
    return state.integers(w), state.alpha


__all__.append("admm")


def output_error(w: np.ndarray, w_hat: np.ndarray, gram: np.ndarray) -> float:
    """Relative output error ||X W - X W_hat||_F / ||X W||_F of a K x N layer, from the Gram
    matrix ``gram`` = X^T X / M of its calibration inputs (K x K)."""
    d = np.asarray(w_hat, dtype=np.float64) - w
    num = float(np.sum(d * (gram @ d)))
    den = float(np.sum(w * (gram @ w)))
    return float(np.sqrt(max(num, 0.0) / den)) if den > 0 else float(np.sqrt(max(num, 0.0)))


def admm_reconstruct(w: np.ndarray, gram: np.ndarray, cfg: SMEConfig, *,
                     alpha: np.ndarray | None = None, col0: int = 0, rho: float = 0.05,
                     rho_growth: float = 1.25, iters: int = 20,
                     damp: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """Layer-wise ADMM: integer weights on ``cfg``'s pattern that reproduce the layer's outputs.

    Minimises ||X W - X W_hat||_F^2 = M tr((W - W_hat)^T G (W - W_hat)) over W_hat = q * alpha
    with q on the pattern, for a K x N float layer ``w`` (outputs on the last axis, one scale per
    output column, ``choose_scale`` unless ``alpha`` is given) and the Gram matrix ``gram`` =
    X^T X / M of calibration inputs X (M x K).  No autodiff: the W-update of ADMM,
    argmin tr((W - w)^T G (W - w)) + rho/2 ||W - Z + U||^2, is solved exactly through one
    eigendecomposition of G; Z <- Pi(W + U); U <- U + W - Z; rho starts at ``rho`` times the
    mean eigenvalue of G and grows by ``rho_growth`` per iteration.  ADMM on a non-convex set
    is not monotone, so the iterate Z with the least output error is returned, the plain
    projection (iteration 0) included: the result is never worse than rounding.  ``damp``
    adds ``damp`` times the mean diagonal of G to its diagonal (as GPTQ does): with fewer
    calibration rows than K the Gram matrix is singular, and directions the calibration never
    saw must still keep their weights.

    Returns ``(q, alpha)``: int64 K x N on the pattern (``check_pattern(q, cfg, col0=col0)``
    holds) and the scales (1 x N).
    """
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 2:
        raise ValueError(f"admm_reconstruct needs a K x N matrix, got shape {w.shape}")
    g = np.asarray(gram, dtype=np.float64)
    if g.shape != (w.shape[0], w.shape[0]):
        raise ValueError(f"gram must be {w.shape[0]} x {w.shape[0]}, got {g.shape}")
    g = (g + g.T) / 2
    g = g + damp * max(float(np.mean(np.diag(g))), 1e-12) * np.eye(len(g))
    a = (choose_scale(w, cfg, axis=1) if alpha is None
         else np.broadcast_to(np.asarray(alpha, dtype=np.float64), (1, w.shape[1])))
    lam, vec = np.linalg.eigh(g)
    lam = np.maximum(lam, 0.0)
    r = rho * max(float(lam.mean()), 1e-12)
    target = 2 * (g @ w)
    z = project_levels(w / a, cfg, -1, col0) * a
    u = np.zeros_like(w)
    best_q, best_err = project_levels(w / a, cfg, -1, col0), output_error(w, z, g)
    for _ in range(iters):
        rhs = vec.T @ (target + r * (z - u))
        wk = vec @ (rhs / (2 * lam + r)[:, None])
        q = project_levels((wk + u) / a, cfg, -1, col0)
        z = q * a
        u = u + wk - z
        err = output_error(w, z, g)
        if err < best_err:
            best_q, best_err = q, err
        r *= rho_growth
    return best_q, a


__all__ += ["output_error", "admm_reconstruct"]
