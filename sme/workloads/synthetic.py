"""Synthetic, trained-like weights for networks whose real weights are not available here.

**These are not trained weights** and every report that uses them says so (with the
parameters below) in its header.  They stand in for trained weights in the properties that
matter for bit-level mapping: a heavy-tailed, zero-centred distribution whose spread follows
the fan-in, with optional unstructured pruning.

Distribution, per layer, independently per weight:

* ``laplace`` (default): w ~ Laplace(0, b) with b = gain / sqrt(2 * fan_in), so that the
  standard deviation is gain / sqrt(fan_in) (He-style with ``gain`` = sqrt(2)).  Trained
  convolution weights are known to be closer to Laplace than to Gaussian (sharp peak at zero,
  heavy tails).
* ``normal``: w ~ N(0, gain^2 / fan_in).
* ``student_t``: w = s * T_nu with ``nu`` degrees of freedom (default 3, heavier tails),
  scaled to the same standard deviation.

fan_in = Cin/groups * kh * kw (K of one group).  ``prune`` = p in [0, 1): after drawing, the
fraction p of the layer's weights with the smallest magnitude is set to exactly 0 (magnitude
pruning).  ``seed`` seeds a ``numpy.random.default_rng``; each layer draws from a generator
derived from (seed, layer index), so a layer's weights do not depend on which other layers are
generated.
"""

from __future__ import annotations

import math

import numpy as np

from .networks import Layer, Network

__all__ = ["DISTRIBUTIONS", "synthetic_layer", "synthetic_weights", "synthetic_source"]

DISTRIBUTIONS = ("laplace", "normal", "student_t")


def _check(distribution: str, prune: float, gain: float, nu: float) -> None:
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {', '.join(DISTRIBUTIONS)}, "
                         f"not {distribution!r}")
    if not 0.0 <= prune < 1.0:
        raise ValueError(f"prune must be in [0, 1), not {prune!r}")
    if not gain > 0:
        raise ValueError(f"gain must be positive, not {gain!r}")
    if distribution == "student_t" and not nu > 2:
        raise ValueError(f"nu must be above 2 (finite variance), not {nu!r}")


def synthetic_layer(layer: Layer, rng: np.random.Generator, distribution: str = "laplace",
                    prune: float = 0.0, gain: float = math.sqrt(2.0),
                    nu: float = 3.0) -> np.ndarray:
    """Weights of one layer in PyTorch layout (float64)."""
    _check(distribution, prune, gain, nu)
    std = gain / math.sqrt(layer.k_group)
    shape = layer.weight_shape
    if distribution == "laplace":
        w = rng.laplace(0.0, std / math.sqrt(2.0), size=shape)
    elif distribution == "normal":
        w = rng.normal(0.0, std, size=shape)
    else:
        w = rng.standard_t(nu, size=shape) * (std / math.sqrt(nu / (nu - 2.0)))
    if prune > 0:
        flat = np.abs(w).ravel()
        n_zero = int(round(prune * flat.size))
        if n_zero:
            cut = np.argpartition(flat, n_zero - 1)[:n_zero]
            w.reshape(-1)[cut] = 0.0
    return w


def synthetic_weights(net: Network, seed: int = 0, distribution: str = "laplace",
                      prune: float = 0.0, gain: float = math.sqrt(2.0),
                      nu: float = 3.0) -> dict[str, np.ndarray]:
    """All layers' weights by name (see the module docstring)."""
    _check(distribution, prune, gain, nu)
    return {layer.name: synthetic_layer(layer, np.random.default_rng([seed, i]), distribution,
                                        prune, gain, nu)
            for i, layer in enumerate(net.layers)}


def synthetic_source(seed: int = 0, distribution: str = "laplace", prune: float = 0.0,
                     gain: float = math.sqrt(2.0), nu: float = 3.0) -> dict:
    """The ``source`` dict a report prints for synthetic weights."""
    params = {"scale": "std = gain/sqrt(fan_in)", "gain": round(gain, 6), "prune": prune,
              "seed": seed}
    if distribution == "student_t":
        params["nu"] = nu
    return {"kind": "synthetic", "distribution": distribution, "params": params}
