"""Where MobileNet-v2's quantization error comes from: weights only, activations only, both,
per-channel vs per-layer weight scales, activation calibration percentile, input bits.

    .venv/bin/python benchmarks/bench_quant_error.py [--images 16] [--calib 8]

Real torchvision MobileNet-v2 weights, uniform pattern, 8-bit weight magnitudes, lossless ADC,
the first ``--images`` bundled images, calibration on the last ``--calib``.  Per configuration
it prints top-1 agreement and top-5 overlap with the float model (a fidelity proxy on natural
images, not ImageNet accuracy), mean KL, and the worst and median per-layer output SNR
(:mod:`sme.infer.fidelity`: errors of earlier layers accumulated).  "Weights only" runs float
activations through the dequantized weights ``q * alpha``; "activations only" runs the
backend's quantized activations ``x_q * s`` through the float weights; "both" is the golden
backend itself (fast path, exact integers).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from golden.config import preset
from golden.quantize import quantize
from sme.infer import fidelity as F
from sme.infer import graph as G
from sme.infer.hardware import GoldenBackend
from sme.infer.models import load_images, load_network


class WeightsOnly(G.FloatBackend):
    """Float activations, weights ``q * alpha`` with one scale per output channel
    (``per_channel``) or one per layer."""

    def __init__(self, cfg, per_channel: bool):
        super().__init__(np.float32)
        self.cfg, self.axis = cfg, 0 if per_channel else None

    def prepare(self, ops) -> None:
        self._w = {}
        for op in ops:
            w = np.asarray(op.weight, dtype=np.float64)
            groups, k_g, n_g = w.shape
            rows = w.transpose(0, 2, 1).reshape(groups * n_g, k_g)         # channel rows
            q, alpha = quantize(rows, self.cfg, axis=self.axis)
            wq = (q * alpha).reshape(groups, n_g, k_g).transpose(0, 2, 1)
            self._w[op.name] = np.ascontiguousarray(wq, dtype=np.float32)


class ActivationsOnly(GoldenBackend):
    """The golden backend's quantized activations ``x_q * s`` through the float weights."""

    def prepare(self, ops) -> None:
        super().prepare(ops)
        self.float = G.FloatBackend()
        self.float.prepare(ops)

    def matmul(self, op, cols):
        plan = self._plan(op)
        xq = self.quantize_inputs(plan, np.asarray(cols)) * plan.scale
        return self.float.matmul(op, xq.astype(np.float32))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--calib", type=int, default=8)
    args = ap.parse_args()
    g = load_network("mobilenet_v2")
    x, _, _, calib, desc = load_images(g, "bundled", args.images, args.calib, 0)
    cfg = preset("default").replace(pattern="uniform")
    print(f"MobileNet-v2 (real torchvision weights), uniform {cfg.weight_bits}-bit weights; {desc}")
    configs = [
        ("weights only, per-channel scales", WeightsOnly(cfg, True), False),
        ("weights only, one scale per layer", WeightsOnly(cfg, False), False),
        ("activations only, 8 bit, max", ActivationsOnly(cfg), True),
        ("activations only, 8 bit, P99.99", ActivationsOnly(cfg, percentile=99.99), True),
        ("both, 8 bit, max (default)", GoldenBackend(cfg), True),
        ("both, 8 bit, P99.99 (former)", GoldenBackend(cfg, percentile=99.99), True),
        ("both, 12-bit activations, max", GoldenBackend(cfg.replace(input_bits=12)), True),
    ]
    print(f"{'configuration':36} {'top-1':>7} {'top-5':>7} {'KL':>7} {'min SNR':>8} "
          f"{'median':>7}  worst layer")
    for label, be, calibrate in configs:
        t = time.perf_counter()
        G.prepare(g, be, calib if calibrate else None)
        ref, test, snr = F.compare(g, x, be)
        s, db = F.summarize(ref, test), snr.db()
        worst = min(db, key=db.get)
        print(f"{label:36} {s['top1_agreement']:7.2%} {s['top5_overlap']:7.2%} "
              f"{s['mean_kl']:7.4f} {db[worst]:8.1f} {np.median(list(db.values())):7.1f}  "
              f"{worst} ({time.perf_counter() - t:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
