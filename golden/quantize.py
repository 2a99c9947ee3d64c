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
           "PatternError", "fragment_view", "project_rd", "fragment_planes",
           "layer_rd_lambda"]


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


def _window_mags(a: np.ndarray, lo, width) -> np.ndarray:
    """Nearest magnitudes m * 2^lo with 0 <= m < 2^width of ``a`` (round half up, clipped):
    the levels of one bit window [lo, lo + width - 1] (``width`` 0: all zero)."""
    step = np.left_shift(1, lo).astype(np.float64) if np.ndim(lo) else float(1 << int(lo))
    top = (np.left_shift(1, width) - 1) if np.ndim(width) else (1 << int(width)) - 1
    return np.minimum(np.floor(a / step + 0.5), top) * step


def _fragment_search(f: np.ndarray, cfg: SMEConfig, lam: float = 0.0,
                     weight: np.ndarray | None = None, windows: bool = False) -> np.ndarray:
    """The fragment point of least ``error + lam * planes`` for fragments ``f`` (rows, groups,
    ou_cols; signed, scaled), signed int64 of ``f``'s shape.

    error = sum over the fragment of ``weight`` * (q - f)^2 (``weight`` None: 1); planes = the
    span hi - lo + 1 of the bits of each sign set of the fragment (a *fragment row*: its
    positive magnitudes, and separately its negative ones; an empty set costs 0).  A fragment
    with exponent e may use bit positions e .. min(e + k - 1, B - 1); each sign set picks a
    window [lo, hi] inside them (or nothing), every weight of the set is then independently
    rounded to m * 2^lo, m < 2^(hi - lo + 1).  The minimum over windows of
    (rounding error + lam * window width) equals the minimum over the fragment's points of
    (error + lam * actual span), because a point's actual span is its own tightest window: so
    the search is exact.  ``windows`` False searches only the full window of each e (the plain
    projection, where lam does not matter).

    Ties (equal objective): the full window of e first, then narrower windows (by lo, then
    hi), then the empty set; the smaller e; the positive sign (``fragment_sign``).  Errors are
    summed per sign set in one order for every candidate, and a narrower window's rounding
    error is never below the full window's (its levels are a subset, and floating-point
    rounding is monotone), so lam = 0 with ``windows`` gives exactly the projection.
    """
    B, k = cfg.weight_bits, cfg.fragment_bits
    a = np.abs(f).astype(np.float64)
    wt = np.ones_like(a) if weight is None else np.broadcast_to(weight, a.shape)
    sets = (f > 0, f < 0)                                  # the two fragment rows
    zero = [np.sum(np.where(m, wt * a * a, 0.0), axis=-1) for m in sets]  # empty-set error

    def errors(lo: int, hi: int) -> list[np.ndarray]:
        e2 = wt * (_window_mags(a, lo, hi - lo + 1) - a) ** 2
        return [np.sum(np.where(m, e2, 0.0), axis=-1) for m in sets]

    top = [min(e + k - 1, B - 1) for e in range(B)]
    # best[s][e]: objective of the best choice of sign set s under exponent e; win: its window
    best, lo_of, w_of = [], [], []
    for s in range(2):
        best.append([None] * B)
        lo_of.append([None] * B)
        w_of.append([None] * B)
    for e in range(B):                                     # full windows first (tie rule)
        for s, err in enumerate(errors(e, top[e])):
            best[s][e] = err + lam * (top[e] - e + 1)
            lo_of[s][e] = np.full(err.shape, e)
            w_of[s][e] = np.full(err.shape, top[e] - e + 1)
    if windows:
        for lo in range(B):
            for hi in range(lo, min(lo + k, B)):
                owners = [e for e in range(max(0, hi - k + 1), lo + 1)
                          if (lo, hi) != (e, top[e])]
                if not owners:
                    continue
                for s, err in enumerate(errors(lo, hi)):
                    obj = err + lam * (hi - lo + 1)
                    for e in owners:
                        better = obj < best[s][e]
                        best[s][e] = np.where(better, obj, best[s][e])
                        lo_of[s][e] = np.where(better, lo, lo_of[s][e])
                        w_of[s][e] = np.where(better, hi - lo + 1, w_of[s][e])
        for s in range(2):                                 # the empty set last
            for e in range(B):
                better = zero[s] < best[s][e]
                best[s][e] = np.where(better, zero[s], best[s][e])
                w_of[s][e] = np.where(better, 0, w_of[s][e])
    # combine the two sign sets per e (one sign per fragment: one set, the other emptied)
    cands = [(e, None) for e in range(B)] if not cfg.fragment_sign else \
        [(e, s) for e in range(B) for s in (0, 1)]
    pick_obj = None
    for e, s in cands:
        if s is None:
            obj = best[0][e] + best[1][e]
        else:
            obj = best[s][e] + zero[1 - s]
        lo_w = [(lo_of[t][e], w_of[t][e] if s in (None, t) else np.zeros_like(w_of[t][e]))
                for t in range(2)]
        if pick_obj is None:
            pick_obj, pick = obj, lo_w
            continue
        better = obj < pick_obj
        pick_obj = np.where(better, obj, pick_obj)
        pick = [(np.where(better, lo, plo), np.where(better, w, pw))
                for (lo, w), (plo, pw) in zip(lo_w, pick)]
    q = np.zeros(f.shape, dtype=np.int64)
    for t, (lo, w) in enumerate(pick):
        mag = _window_mags(a, lo[..., None], w[..., None]).astype(np.int64)
        q = np.where(sets[t], -mag if t else mag, q)
    return q


def _project_fragments(v: np.ndarray, cfg: SMEConfig, out_axis: int, col0: int) -> np.ndarray:
    f, undo = fragment_view(v, cfg, out_axis, col0)
    return undo(_fragment_search(f, cfg)).astype(np.int64)


def project_rd(v: np.ndarray, cfg: SMEConfig, rd_lambda: float, out_axis: int = -1,
               col0: int = 0, weight: np.ndarray | None = None) -> np.ndarray:
    """Rate-distortion projection onto the ``fragment`` pattern: integers on the pattern
    (``check_pattern`` holds) that minimise, per fragment, ``sum weight * (q - v)^2 +
    rd_lambda * planes``, where *planes* is what the fragment costs under span packing: for
    each of its two fragment rows (its positive and its negative magnitudes) the span
    hi - lo + 1 of the bit positions it uses (0 for an empty row; the row takes ``ou_cols``
    cells per plane, a constant factor).  ``v``: float, scaled to integer units, any shape
    (``out_axis``, ``col0`` as in :func:`project_levels`); ``weight``: non-negative importance
    broadcastable to ``v`` (e.g. the input energy of each row, the Gram diagonal), None = 1.

    Exact (every window of every exponent and sign set searched: :func:`_fragment_search`),
    vectorized, deterministic.  ``rd_lambda`` = 0 with ``weight`` None is exactly
    :func:`project_levels`; the planes used never increase with ``rd_lambda`` (each result is
    an exact minimiser).  Returns int64.
    """
    if cfg.pattern != "fragment":
        raise ValueError(f"project_rd needs the 'fragment' pattern, not {cfg.pattern!r}")
    if not (rd_lambda >= 0 and np.isfinite(rd_lambda)):
        raise ValueError(f"rd_lambda must be a finite number >= 0, not {rd_lambda!r}")
    v = np.asarray(v, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise ValueError("cannot quantize NaN or infinite values")
    f, undo = fragment_view(v, cfg, out_axis, col0)
    wf = None
    if weight is not None:
        wt = np.broadcast_to(np.asarray(weight, dtype=np.float64), v.shape)
        if not np.all(np.isfinite(wt)) or np.any(wt < 0):
            raise ValueError("rd weights must be finite and non-negative")
        wf, _ = fragment_view(wt, cfg, out_axis, col0)
    return undo(_fragment_search(f, cfg, float(rd_lambda), wf, windows=True)).astype(np.int64)


def fragment_planes(q: np.ndarray, cfg: SMEConfig, out_axis: int = -1, col0: int = 0) -> int:
    """Planes of integer weights under span packing: over every fragment row (the positive,
    and separately the negative magnitudes of one fragment), the span hi - lo + 1 of the bit
    positions used (0 when empty).  Cells = ``ou_cols`` x planes; :func:`project_rd`'s rate."""
    f, _ = fragment_view(np.asarray(q, dtype=np.int64), cfg, out_axis, col0)
    total = 0
    for m in (f > 0, f < 0):
        orv = np.bitwise_or.reduce(np.where(m, np.abs(f), 0), axis=-1)
        nz = orv > 0
        low = orv & -orv
        hi = np.zeros(orv.shape, dtype=np.int64)
        for b in range(1, cfg.weight_bits + 1):
            hi = np.where(orv >= (1 << b), b, hi)
        lo = np.zeros(orv.shape, dtype=np.int64)
        for b in range(cfg.weight_bits):
            lo = np.where(low == (1 << b), b, lo)
        total += int(np.sum(np.where(nz, hi - lo + 1, 0)))
    return total


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


def layer_rd_lambda(v: np.ndarray, mu: float, weight: np.ndarray | None = None) -> float:
    """The lambda of :func:`project_rd` for one layer under the network-wide Lagrangian
    allocation: ``mu`` x sum(weight x v^2) / 10^6 for the layer's scaled weights ``v`` (weight
    broadcastable to v, None = 1).  Minimising every layer's weighted squared error + this
    lambda x planes minimises the sum over layers of relative squared errors
    ||dV||^2 / ||V||^2 plus ``mu`` per million fragment-row planes: every layer trades error
    for planes at the same marginal rate."""
    if not (mu >= 0 and np.isfinite(mu)):
        raise ValueError(f"rd_lambda must be a finite number >= 0, not {mu!r}")
    e = np.asarray(v, dtype=np.float64) ** 2
    if weight is not None:
        e = e * weight
    return float(mu) * float(np.sum(e)) * 1e-6


def admm_project(v: np.ndarray, alpha: np.ndarray, cfg: SMEConfig,
                 out_axis: int = -1, rd_lambda: float = 0.0) -> np.ndarray:
    """Z-update of ADMM: alpha * Pi_S(v / alpha), the Euclidean projection when alpha is one
    scale per output (or per tensor); ``rd_lambda`` > 0: the rate-distortion projection
    :func:`project_rd` with that lambda instead."""
    if rd_lambda:
        return project_rd(v / alpha, cfg, rd_lambda, out_axis) * alpha
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
                 alpha: np.ndarray | None = None, rd_lambda: float = 0.0):
        self.cfg, self.rho, self.axis = cfg, float(rho), axis
        self.rd_lambda = float(rd_lambda)      # > 0: Z-steps are project_rd (fragment pattern)
        self.out_axis = _out_axis(axis, out_axis)
        w = np.asarray(w, dtype=np.float64)
        self.alpha = (choose_scale(w, cfg, axis=axis, out_axis=out_axis) if alpha is None
                      else np.asarray(alpha, dtype=np.float64))
        self.z = admm_project(w, self.alpha, cfg, self.out_axis, self.rd_lambda)
        self.u = np.zeros_like(w)

    def penalty_grad(self, w: np.ndarray) -> np.ndarray:
        return self.rho * (np.asarray(w, dtype=np.float64) - self.z + self.u)

    def update(self, w: np.ndarray) -> float:
        """Z <- Pi(W + U), U <- U + W - Z.  Returns the primal residual ||W - Z||."""
        w = np.asarray(w, dtype=np.float64)
        self.z = admm_project(w + self.u, self.alpha, self.cfg, self.out_axis, self.rd_lambda)
        self.u = self.u + w - self.z
        return float(np.linalg.norm(w - self.z))

    def finalize(self, w: np.ndarray | None = None) -> np.ndarray:
        """The final weights W = Pi(W): every weight on the pattern (float, = q * alpha)."""
        src = self.z if w is None else np.asarray(w, dtype=np.float64)
        return admm_project(src, self.alpha, self.cfg, self.out_axis, self.rd_lambda)

    def integers(self, w: np.ndarray | None = None) -> np.ndarray:
        src = self.z if w is None else np.asarray(w, dtype=np.float64)
        if self.rd_lambda:
            return project_rd(src / self.alpha, self.cfg, self.rd_lambda, self.out_axis)
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
                     damp: float = 0.01, rd_lambda: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
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

    ``rd_lambda`` > 0 (fragment pattern): every Z-step (and the starting point) is the
    rate-distortion projection :func:`project_rd` with that lambda instead of the plain
    projection, so the iterates trade planes under span packing for error; the iterate kept is
    still the one with the least output error (all share the lambda).

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

    def proj(v):
        if rd_lambda:
            return project_rd(v, cfg, rd_lambda, -1, col0)
        return project_levels(v, cfg, -1, col0)
    best_q = proj(w / a)
    z = best_q * a
    u = np.zeros_like(w)
    best_err = output_error(w, z, g)
    for _ in range(iters):
        rhs = vec.T @ (target + r * (z - u))
        wk = vec @ (rhs / (2 * lam + r)[:, None])
        q = proj((wk + u) / a)
        z = q * a
        u = u + wk - z
        err = output_error(w, z, g)
        if err < best_err:
            best_q, best_err = q, err
        r *= rho_growth
    return best_q, a


__all__ += ["output_error", "admm_reconstruct"]
