"""Whole-network inference benchmark: MobileNet-v2 images/s of the float executor.

Weights: torchvision's real ImageNet MobileNet-v2 checkpoint (fetched through pip, sha256
checked).  Inputs: the first bundled natural images (224 x 224).  Prints, per backend:

- ``float``: images/s of the reference executor (one BLAS matmul per dense conv);
- ``onnxruntime``: the independent executor on the same weights, and the largest logit
  difference against ``float``.

The hardware backends (golden fast / exact, rtl) are timed by ``bench_infer_hw.py``.

    .venv/bin/python benchmarks/bench_infer.py [--images 16] [--batch 8]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from sme.infer import graph as G
from sme.workloads import images
from sme.workloads.checkpoints import load_state_dict
from sme.workloads.pretrained import fetch


def _rate(label: str, n: int, seconds: float) -> None:
    print(f"{label:<28} {n:>4} images in {seconds:8.2f} s = {n / seconds:8.3f} images/s "
          f"({seconds / n:.2f} s/image)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--batch", type=int, default=8)
    args = ap.parse_args()

    g = G.mobilenet_v2(load_state_dict(fetch("mobilenet_v2")))
    x = images.bundled(args.images)
    print(f"MobileNet-v2, real torchvision weights; {args.images} bundled 224x224 images, "
          f"batch {args.batch}")

    be = G.FloatBackend()
    be.prepare(g.ops)
    G.run(g, x[:2], be)                                     # warm-up (BLAS threads, caches)
    t = time.perf_counter()
    ref = G.run(g, x, be, batch=args.batch)
    _rate("float (float32)", len(x), time.perf_counter() - t)

    from sme.infer.onnx_export import run_onnxruntime, to_onnx
    model = to_onnx(g)
    run_onnxruntime(model, x[:1])
    t = time.perf_counter()
    ort = run_onnxruntime(model, x)
    _rate("onnxruntime (float32)", len(x), time.perf_counter() - t)
    print(f"{'':<28} max |float - onnxruntime| = {np.abs(ref - ort).max():.2e} "
          f"(logits up to {np.abs(ort).max():.1f}); top-1 equal on "
          f"{int(np.sum(ref.argmax(1) == ort.argmax(1)))}/{len(x)}")


if __name__ == "__main__":
    main()
