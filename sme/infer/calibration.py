"""Calibration statistics of a network's layer inputs, for weight fitting without autodiff.

Contract: :func:`layer_grams` runs images through the float network and returns, for every
conv/linear layer, the Gram matrix of its inputs ``G = X^T X / M`` per group, float64
``(groups, K_g, K_g)``, where ``X`` ``(M, K_g)`` are the im2col rows the layer's matmul sees
(exactly the ``cols`` of the backend interface in :mod:`sme.infer.graph`, padding zeros
included).  ``||X W - X W'||_F^2 / M = tr((W - W')^T G (W - W'))``, so layer-wise output
reconstruction (:func:`golden.quantize.admm_reconstruct`) needs only ``G``.  Memory:
``8 * groups * K_g^2`` bytes per layer (MobileNet-v2: about 25 MB in all; ResNet-50's largest
layer, K = 4608, alone takes 170 MB).

:class:`GramRecorder` is the backend that accumulates them (it computes in float, so it can
also serve as a normal backend).
"""

from __future__ import annotations

import numpy as np

from .graph import FloatBackend, Graph, MatmulOp, calibrate

__all__ = ["GramRecorder", "layer_grams"]


class GramRecorder(FloatBackend):
    """A float backend whose ``calibrate`` accumulates ``X^T X`` per layer and group."""

    name = "gram"

    def __init__(self):
        super().__init__(np.float64)
        self.sums: dict[str, np.ndarray] = {}
        self.rows: dict[str, int] = {}

    def calibrate(self, op: MatmulOp, cols: np.ndarray) -> None:
        c = np.asarray(cols, dtype=np.float64).transpose(1, 0, 2)          # (groups, M, K_g)
        s = np.matmul(c.transpose(0, 2, 1), c)
        if op.name in self.sums:
            self.sums[op.name] += s
        else:
            self.sums[op.name] = s
        self.rows[op.name] = self.rows.get(op.name, 0) + cols.shape[0]

    def grams(self) -> dict[str, np.ndarray]:
        return {k: s / self.rows[k] for k, s in self.sums.items()}


def layer_grams(graph: Graph, x: np.ndarray, batch: int = 8) -> dict[str, np.ndarray]:
    """``{layer name: (groups, K_g, K_g) float64}`` over the images ``x`` (N, C, H, W)."""
    rec = GramRecorder()
    rec.prepare(graph.ops)
    for i in range(0, len(x), batch):
        calibrate(graph, rec, x[i:i + batch])
    return rec.grams()
