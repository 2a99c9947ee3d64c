"""Bit-pattern quantization (SPEC 3.1): allowed levels, exact projection, scales and ADMM.

A quantized weight is a signed integer q with |q| <= 2^B - 1 whose magnitude obeys a bit
pattern:

* ``window``: the non-zero bits of |q| lie within ``window`` consecutive bit positions, i.e.
  |q| = m * 2^e with m < 2^window;
* ``max_ones``: |q| has at most ``max_ones`` one-bits (APoT-like);
* ``uniform``: no pattern.

The projection onto the allowed levels is exact and vectorized.  **Tie rule**: a value exactly
half-way between two allowed levels goes to the level of larger magnitude (round half away
from zero), for every pattern, so ``uniform`` agrees with ordinary symmetric rounding.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .config import SMEConfig

__all__ = ["allowed_magnitudes", "allowed_levels", "project_levels", "check_pattern",
           "choose_scale", "quantize", "admm_project", "admm_step", "ADMMState",
           "PatternError"]


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
    # window: strip trailing zeros, what is left must be below 2^window
    m = mag.copy()
    nz = m > 0
    for _ in range(cfg.weight_bits):
        even = nz & ((m & 1) == 0)
        m[even] >>= 1
    return ok & (m < (1 << cfg.window))


def allowed_magnitudes(cfg: SMEConfig) -> np.ndarray:
    """Sorted allowed magnitudes (0 included) of the configured pattern."""
    cand = np.arange(cfg.max_magnitude + 1, dtype=np.int64)
    return cand[_obeys(cand, cfg)]


def allowed_levels(cfg: SMEConfig) -> np.ndarray:
    """Sorted allowed signed levels: -mags[::-1] ... 0 ... mags."""
    mags = allowed_magnitudes(cfg)
    return np.concatenate([-mags[:0:-1], mags])


def project_levels(v: np.ndarray, cfg: SMEConfig) -> np.ndarray:
    """Nearest allowed signed integer level of each element of ``v`` (float, any shape).

    Ties go to the larger magnitude.  Values beyond the largest level saturate.
    Returns int64.
    """
    v = np.asarray(v, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise ValueError("cannot quantize NaN or infinite values")
    mags = allowed_magnitudes(cfg).astype(np.float64)
    a = np.abs(v)
    hi = np.clip(np.searchsorted(mags, a, side="left"), 0, len(mags) - 1)
    lo = np.clip(hi - 1, 0, len(mags) - 1)
    d_hi = np.abs(mags[hi] - a)
    d_lo = np.abs(a - mags[lo])
    pick = np.where(d_hi <= d_lo, mags[hi], mags[lo])   # tie -> larger magnitude
    return (np.sign(v) * pick).astype(np.int64)


def check_pattern(q: np.ndarray, cfg: SMEConfig) -> None:
    """Raise :class:`PatternError` naming the first offending entry of an integer matrix."""
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


def choose_scale(w: np.ndarray, cfg: SMEConfig, axis: int | None = None,
                 method: str = "mse") -> np.ndarray:
    """Scale alpha so that q = project(w / alpha) spans the allowed levels.

    ``axis=None``: one scale for the tensor; ``axis=k``: one scale per index along axis k
    (per output channel).  ``method="max"`` maps max|w| to the largest level; ``"mse"`` searches
    30 fractions of that for the least squared error.  Returns an array broadcastable to w.
    """
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
        err = np.sum((project_levels(w / alpha, cfg) * alpha - w) ** 2, axis=red, keepdims=True)
        if best_err is None:
            best, best_err = alpha, err
        else:
            better = err < best_err
            best = np.where(better, alpha, best)
            best_err = np.where(better, err, best_err)
    return best


def quantize(w: np.ndarray, cfg: SMEConfig, axis: int | None = None,
             method: str = "mse") -> tuple[np.ndarray, np.ndarray]:
    """Quantize float weights: returns (q int64, alpha) with w ~= q * alpha."""
    alpha = choose_scale(w, cfg, axis=axis, method=method)
    return project_levels(np.asarray(w, dtype=np.float64) / alpha, cfg), alpha


def admm_project(v: np.ndarray, alpha: np.ndarray, cfg: SMEConfig) -> np.ndarray:
    """Z-update of ADMM: the Euclidean projection alpha * Pi_S(v / alpha)."""
    return project_levels(v / alpha, cfg) * alpha


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
                 axis: int | None = None):
        self.cfg, self.rho, self.axis = cfg, float(rho), axis
        w = np.asarray(w, dtype=np.float64)
        self.alpha = choose_scale(w, cfg, axis=axis)
        self.z = admm_project(w, self.alpha, cfg)
        self.u = np.zeros_like(w)

    def penalty_grad(self, w: np.ndarray) -> np.ndarray:
        return self.rho * (np.asarray(w, dtype=np.float64) - self.z + self.u)

    def update(self, w: np.ndarray) -> float:
        """Z <- Pi(W + U), U <- U + W - Z.  Returns the primal residual ||W - Z||."""
        w = np.asarray(w, dtype=np.float64)
        self.z = admm_project(w + self.u, self.alpha, self.cfg)
        self.u = self.u + w - self.z
        return float(np.linalg.norm(w - self.z))

    def finalize(self, w: np.ndarray | None = None) -> np.ndarray:
        """The final weights W = Pi(W): every weight on the pattern (float, = q * alpha)."""
        src = self.z if w is None else np.asarray(w, dtype=np.float64)
        return admm_project(src, self.alpha, self.cfg)

    def integers(self, w: np.ndarray | None = None) -> np.ndarray:
        src = self.z if w is None else np.asarray(w, dtype=np.float64)
        return project_levels(src / self.alpha, self.cfg)


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
