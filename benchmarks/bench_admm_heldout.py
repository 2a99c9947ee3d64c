"""Does layer-wise ADMM overfit its calibration images?  Output error on the calibration images
and on held-out images, projection vs ADMM, for several Gram dampings.

    .venv/bin/python benchmarks/bench_admm_heldout.py [--point fragment-4] [--calib 8]
        [--heldout 64] [--damp 0.01,0.1,1.0]

Real torchvision MobileNet-v2 weights (batch norm folded, ``make weights``), per-channel MSE
scales, the pattern point ``--point`` (``<fragment point>-rd<mu>`` for rate-distortion
quantization, ADMM's Z-step then being the RD projection).  For every dense layer
(``groups == 1``, where the frontier runs ADMM) it fits layer-wise ADMM
(:func:`golden.quantize.admm_reconstruct`) on the Gram matrix of the last ``--calib`` bundled
images and measures the relative output error ||X W_hat - X W|| / ||X W|| on those images and
on the first ``--heldout`` bundled images (never used for fitting).  Prints the mean over the
layers and how many layers ADMM improves on held-out images.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from golden.config import pattern_point, preset
from golden.quantize import admm_reconstruct, layer_rd_lambda, output_error
from sme.frontier import graph_weights, split_label
from sme.infer.calibration import layer_grams
from sme.infer.models import load_images, load_network
from sme.report import quantize_layer
from sme.workloads.networks import network as builtin_network


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--point", default="fragment-4")
    ap.add_argument("--calib", type=int, default=8)
    ap.add_argument("--heldout", type=int, default=64)
    ap.add_argument("--damp", default="0.01,0.1,1.0")
    ap.add_argument("--weights", default="~/.cache/sme/mobilenet_v2-b0353104.pth")
    args = ap.parse_args()
    damps = [float(d) for d in args.damp.split(",") if d]
    base, mu = split_label(args.point)
    cfg = pattern_point(preset("default"), base)
    import os
    graph = load_network("mobilenet_v2", os.path.expanduser(args.weights))
    net = builtin_network("mobilenet_v2")
    weights = graph_weights(graph, net)
    x, _, _, calib_x, _ = load_images(graph, "bundled", limit=args.heldout, calib=args.calib)
    t0 = time.perf_counter()
    g_cal, g_held = layer_grams(graph, calib_x), layer_grams(graph, x)
    proj, fit = ([], []), {d: ([], []) for d in damps}
    for i, layer in enumerate(net.layers):
        if layer.groups != 1:
            continue
        flat = weights[layer.name].reshape(layer.cout, -1)
        q0, alpha = quantize_layer(layer, weights[layer.name], cfg,
                                   np.random.default_rng([0, i, 1]), "mse", rd_lambda=mu,
                                   return_scale=True)
        gc, gh = g_cal[layer.name][0], g_held[layer.name][0]
        w_hat = (q0.reshape(layer.cout, -1) * alpha[:, None]).T
        proj[0].append(output_error(flat.T, w_hat, gc))
        proj[1].append(output_error(flat.T, w_hat, gh))
        lam = layer_rd_lambda(flat / alpha[:, None], mu) if mu else 0.0
        for d in damps:
            qt, _ = admm_reconstruct(flat.T, gc, cfg, alpha=alpha[None, :], damp=d,
                                     rd_lambda=lam)
            fit[d][0].append(output_error(flat.T, qt * alpha[None, :], gc))
            fit[d][1].append(output_error(flat.T, qt * alpha[None, :], gh))
    n = len(proj[0])
    print(f"MobileNet-v2 (real weights), {args.point}, {n} dense layers; ADMM fitted on "
          f"{args.calib} calibration images, held out: {args.heldout} other images")
    print(f"{'quantizer':<22} {'out. err (calib.)':>18} {'out. err (held out)':>20} "
          f"{'layers better held out':>23}")
    print(f"{'projection':<22} {np.mean(proj[0]):>18.4f} {np.mean(proj[1]):>20.4f} {'-':>23}")
    for d in damps:
        better = sum(a < b for a, b in zip(fit[d][1], proj[1]))
        print(f"{f'ADMM, damp {d:g}':<22} {np.mean(fit[d][0]):>18.4f} "
              f"{np.mean(fit[d][1]):>20.4f} {f'{better}/{n}':>23}")
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
