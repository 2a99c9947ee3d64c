"""Span squeeze against segment squeeze on a whole network: crossbars, index, descriptors, time.

    .venv/bin/python benchmarks/bench_span_squeeze.py [--network mobilenet_v2]
        [--weights CHECKPOINT] [--points window-3,fragment-4,fragment-3,fragment-2]

Every layer is quantized as ``sme report --frontier --scale mse`` quantizes it (projection, no
calibration) and compiled with :func:`sme.frontier.layer_point` in every squeeze mode of
:data:`sme.frontier.SQUEEZES`.  Per (pattern point, squeeze) it prints crossbars vs the
ISAAC-style dense mapping (both sign sets), index and descriptor-memory bits per weight
(:func:`sme.frontier.descriptor_bits`), row lists, OU activations and cycles per input vector
(summed over layers), and the compile time of the mode summed over layers (``seconds_<mode>``
of :func:`sme.report.layer_row`: the compiler only, not quantization or baselines).

Weights: ``--weights`` (a torchvision checkpoint of the network, batch norm folded as the
frontier folds it; default for mobilenet_v2: the cached, hash-checked download of
``make weights``), or the report's synthetic Laplace weights (seed 0) with ``--synthetic``.
"""

from __future__ import annotations

import argparse
import time

from golden.config import pattern_point, preset
from sme import frontier as F
from sme.report import layer_weights, resolve
from sme.workloads.networks import network


def _weights(name: str, path: str | None, synthetic: bool):
    """(network, float weights by layer or None, description)."""
    if synthetic:
        net, w, src = resolve(name, None, 0, {"distribution": "laplace", "prune": 0.0})
        return net, w, "synthetic Laplace (seed 0)"
    from sme.infer.models import load_network
    from sme.workloads.pretrained import fetch
    net = network(name)
    graph = load_network(name, path or str(fetch(name)))
    return net, F.graph_weights(graph, net), f"checkpoint {graph.source.get('file', path)}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--network", default="mobilenet_v2", choices=("mobilenet_v2", "resnet50"))
    ap.add_argument("--weights", default=None, help="checkpoint (default: the cached download)")
    ap.add_argument("--synthetic", action="store_true", help="the report's synthetic weights")
    ap.add_argument("--points", default="window-3,fragment-4,fragment-3,fragment-2")
    args = ap.parse_args(argv)
    cfg = preset("default")
    net, wdict, what = _weights(args.network, args.weights, args.synthetic)
    print(f"span vs segment squeeze: {net.name}, {net.weights:,} weights; weights: {what}")
    print(f"{'point':<12} {'squeeze':<8} {'crossbars':>9} {'vs ISAAC':>8} {'index b/w':>9} "
          f"{'descr. b/w':>10} {'row lists':>9} {'OU acts':>9} {'cycles':>8} {'compile s':>9}")
    for label in args.points.split(","):
        pcfg = pattern_point(cfg, label)
        t0 = time.perf_counter()
        rows = [F.layer_point(layer, i, layer_weights(layer, i, wdict, 0), pcfg, scale="mse")[0]
                for i, layer in enumerate(net.layers)]
        isaac = sum(r["xbars_isaac"] for r in rows)
        for m in F.SQUEEZES:
            tot = {k: sum(r[f"{k}_{m}"] for r in rows)
                   for k in ("xbars", "index_bits", "descriptor_bits", "rowlists", "cycles",
                             "seconds")}
            acts = sum(r[f"work_{m}"] // max(1, r["pixels"]) for r in rows)
            print(f"{label:<12} {m:<8} {tot['xbars']:>9,} {isaac / tot['xbars']:>7.2f}x "
                  f"{tot['index_bits'] / net.weights:>9.2f} "
                  f"{tot['descriptor_bits'] / net.weights:>10.2f} {tot['rowlists']:>9,} "
                  f"{acts:>9,} {tot['cycles']:>8,} {tot['seconds']:>9.1f}")
        print(f"{'':<12} (point total {time.perf_counter() - t0:.0f} s with quantization and "
              "baselines)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
