"""Hardware backends of the inference engine: images/s of the golden fast path and of the exact
OU-by-OU path with a clipping ADC on MobileNet-v2 (real torchvision weights, bundled 224 x 224
images), and of the RTL backend on the digits CNN (the emitted Verilog tile under Verilator).

    .venv/bin/python benchmarks/bench_infer_hw.py [--images 8] [--exact-images 1]
        [--adc-bits 3] [--digits 450] [--digits-preset fpga_small] [--skip-mobilenet]

Targets on the project's 2-core machine: golden fast >= 2 images/s, exact >= 1 image per
30 s, the whole digits test set (450 images) on the RTL in <= 10 minutes.  Each figure is the
inference alone; one-off work (quantize + partition, calibration, the Verilator build) is
printed separately.  The RTL run also checks that its predictions and every layer's integer
outputs equal the golden backend's on the same images.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench_infer import _rate
from golden.config import preset
from sme.infer import graph as G
from sme.infer.hardware import GoldenBackend, RTLBackend


def _prepared(be, g, calib):
    t = time.perf_counter()
    G.prepare(g, be, calib)
    return time.perf_counter() - t


def mobilenet(args) -> None:
    from sme.workloads import images
    from sme.workloads.checkpoints import load_state_dict
    from sme.workloads.pretrained import fetch

    g = G.mobilenet_v2(load_state_dict(fetch("mobilenet_v2")))
    x = images.bundled(max(args.images, args.exact_images))
    calib = np.stack([images.bundled_image(images.bundled_count() - 1 - i)
                      for i in range(args.calib)])
    print(f"MobileNet-v2, real torchvision weights, bundled 224x224 images, batch {args.batch}")
    be = G.FloatBackend()                  # the same machine's float rate, for scale
    be.prepare(g.ops)
    t = time.perf_counter()
    G.run(g, x[:args.images], be, batch=args.batch)
    _rate("float (float32)", args.images, time.perf_counter() - t)
    cfg = preset("default")
    runs = (("fast", cfg, args.images),
            ("exact", cfg.replace(adc_bits=args.adc_bits), args.exact_images))
    for path, c, n in runs:
        be = GoldenBackend(c, path=path)
        prep = _prepared(be, g, calib)
        t = time.perf_counter()
        G.run(g, x[:n], be, batch=args.batch)
        label = f"golden {path} (ADC {c.effective_adc_bits} bits)"
        print(f"{label}: prepare + calibration {prep:.1f} s")
        _rate(label, n, time.perf_counter() - t)
        if path == "exact":
            clipped = sum(r["clipped"] for r in be.report())
            samples = sum(r["adc_samples"] for r in be.report())
            print(f"{'':<28} clipped ADC samples {clipped} of {samples} "
                  f"({100 * clipped / max(samples, 1):.3f} %)")


def digits(args) -> None:
    from sim.verilator_tile import build
    from sme.infer.models import load_images, load_network

    g = load_network("digits")
    x, _, labels, calib, _ = load_images(g, "bundled", args.digits, args.calib, 0)
    cfg = preset(args.digits_preset)
    t = time.perf_counter()
    build(cfg)
    print(f"digits CNN (trained here), {len(x)} held-out test images, preset "
          f"{args.digits_preset}: Verilator build or cache check {time.perf_counter() - t:.1f} s")
    gold, rtl = GoldenBackend(cfg, path="exact"), RTLBackend(cfg)
    out = {}
    for be in (gold, rtl):
        _prepared(be, g, calib)
        be.trace = {}
        t = time.perf_counter()
        out[be.name] = G.run(g, x, be, batch=len(x))
        _rate(f"digits {be.name}", len(x), time.perf_counter() - t)
    same = all(np.array_equal(a, b) for name in gold.trace
               for a, b in zip(gold.trace[name], rtl.trace[name]))
    print(f"{'':<28} RTL tile cycles {rtl.cycles}; predictions equal "
          f"{int(np.sum(out['rtl'].argmax(1) == out['golden'].argmax(1)))}/{len(x)}; "
          f"integer outputs of every layer equal: {same}; accuracy "
          f"{100 * np.mean(out['rtl'].argmax(1) == labels):.2f} %")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--exact-images", type=int, default=1)
    ap.add_argument("--adc-bits", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--calib", type=int, default=8)
    ap.add_argument("--digits", type=int, default=450)
    ap.add_argument("--digits-preset", default="fpga_small")
    ap.add_argument("--skip-mobilenet", action="store_true")
    ap.add_argument("--skip-digits", action="store_true")
    args = ap.parse_args()
    if not args.skip_mobilenet:
        mobilenet(args)
    if not args.skip_digits:
        digits(args)


if __name__ == "__main__":
    main()
