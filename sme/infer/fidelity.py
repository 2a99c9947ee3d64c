"""Fidelity of a backend against the float model: a PROXY, not ImageNet accuracy.

The bundled images carry no labels, so these figures say how closely a backend reproduces the
float network's outputs on the same inputs, never how accurate either is:

- **top-1 agreement**: fraction of images whose arg-max class equals the float model's;
- **top-5 overlap**: mean of |top-5(float) & top-5(backend)| / 5;
- **mean KL divergence**: mean over images of KL(softmax(float) || softmax(backend)), in nats;
- **per-layer output SNR**: for each conv/linear layer, 10 log10(sum y_float^2 /
  sum (y_float - y_backend)^2) in dB over all images, where y is the layer output (bias added,
  before the activation) when the whole network runs on the backend (errors accumulate through
  the layers, as they would on the hardware).  ``inf`` = identical.

A labelled set (the digits CNN's held-out test images) also gets true accuracy via
:func:`accuracy`.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .graph import FloatBackend, Graph, MatmulOp, forward

__all__ = ["PROXY_LABEL", "softmax", "top1_agreement", "top5_overlap", "mean_kl", "accuracy",
           "summarize", "LayerSNR", "compare"]

PROXY_LABEL = ("fidelity proxy vs the float model on bundled natural images "
               "(not ImageNet accuracy)")


def softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def top1_agreement(ref: np.ndarray, test: np.ndarray) -> float:
    return float(np.mean(np.argmax(ref, axis=1) == np.argmax(test, axis=1)))


def _topk(z: np.ndarray, k: int) -> np.ndarray:
    k = min(k, z.shape[1])
    return np.argpartition(-np.asarray(z), k - 1, axis=1)[:, :k]


def top5_overlap(ref: np.ndarray, test: np.ndarray) -> float:
    a, b = _topk(ref, 5), _topk(test, 5)
    return float(np.mean([len(set(x) & set(y)) / a.shape[1] for x, y in zip(a, b)]))


def mean_kl(ref: np.ndarray, test: np.ndarray) -> float:
    p, q = softmax(ref), softmax(test)
    kl = np.sum(p * (np.log(np.maximum(p, 1e-300)) - np.log(np.maximum(q, 1e-300))), axis=1)
    return float(np.mean(kl))


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(logits, axis=1) == np.asarray(labels)))


def summarize(ref: np.ndarray, test: np.ndarray) -> dict:
    return {"top1_agreement": top1_agreement(ref, test), "top5_overlap": top5_overlap(ref, test),
            "mean_kl": mean_kl(ref, test), "images": int(len(ref))}


class LayerSNR:
    """Accumulates per-layer signal and error energy over batches."""

    def __init__(self):
        self.signal: dict[str, float] = {}
        self.noise: dict[str, float] = {}

    def add(self, name: str, ref: np.ndarray, test: np.ndarray) -> None:
        r = np.asarray(ref, dtype=np.float64)
        d = r - np.asarray(test, dtype=np.float64)
        self.signal[name] = self.signal.get(name, 0.0) + float(np.sum(r * r))
        self.noise[name] = self.noise.get(name, 0.0) + float(np.sum(d * d))

    def db(self) -> dict[str, float]:
        out = {}
        for k, s in self.signal.items():
            n = self.noise[k]
            out[k] = math.inf if n == 0 else (10 * math.log10(s / n) if s > 0 else -math.inf)
        return out


def compare(graph: Graph, x: np.ndarray, backend, batch: int = 4,
            progress: Callable[[int], None] | None = None
            ) -> tuple[np.ndarray, np.ndarray, LayerSNR]:
    """Float and backend outputs of ``x`` plus per-layer SNR.  ``backend`` must be prepared
    (and calibrated); each batch runs in float first, keeping its layer outputs, then on the
    backend."""
    ref_be = FloatBackend()
    ref_be.prepare(graph.ops)
    snr = LayerSNR()
    refs, tests = [], []
    for i in range(0, len(x), batch):
        xb = x[i:i + batch]
        kept: dict[str, np.ndarray] = {}

        def keep(op: MatmulOp, y):
            kept[op.name] = y.copy()

        def check(op: MatmulOp, y):
            snr.add(op.name, kept.pop(op.name), y)

        refs.append(forward(graph, xb, ref_be.matmul, keep))
        tests.append(forward(graph, xb, backend.matmul, check))
        if progress is not None:
            progress(min(i + batch, len(x)))
    if not refs:
        empty = np.zeros((0, graph.num_classes), dtype=np.float32)
        return empty, empty, snr
    return np.concatenate(refs), np.concatenate(tests), snr
