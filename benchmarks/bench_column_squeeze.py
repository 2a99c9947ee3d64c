"""What "column squeeze" (issue 12's column-fragment packing) would save, before anyone builds it.

    .venv/bin/python benchmarks/bench_column_squeeze.py [--network mobilenet_v2] [--bits 4,3,2]

Column squeeze keeps the rows of a crossbar on their natural inputs (``ou_rows`` consecutive
input rows per OU window, so no per-row input index) and lets any non-zero *bit column* (one
column fragment = ``ou_rows`` inputs of one output, one sign, one digit plane) sit on any
bitline, with a per-bitline tag (output group, plane, sign).  The weights get the matching
pattern: the ``ou_rows`` weights of one column fragment share one exponent and ``k``-bit
mantissas (the ``fragment`` pattern of :mod:`golden.quantize`, grouped along the input axis).

This script is an *estimate*, not a compiler mode and not RTL: per layer it counts the non-zero
bit columns after projection and packs them as the existing splice allows, bitline ``c`` of an
OU feeding only outputs ``o`` with ``o % ou_cols == c`` (so that the splice's per-column adders
are unchanged); an input window then needs as many OU activations as its busiest lane.  It
prints, per ``k``:

* crossbars vs the ISAAC-style dense mapping (both sign sets, :mod:`golden.baselines`);
* index bits per weight: per activation the input window index plus ``ou_cols`` tags of
  ``ceil_log2(output groups) + plane bits + 1`` bits (tags as wide as the layer), and the same
  with tags as wide as one default tile (``tile_outputs`` outputs, ``tile_inputs`` inputs);
* the relative weight error ``||q*alpha - w|| / ||w||`` (mean over layers), with one MSE-searched
  scale per output channel.

Weights: real torchvision MobileNet-v2 (``make weights``) for ``mobilenet_v2``; the report's
synthetic Laplace weights (seed 0) for ``resnet50``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from golden.baselines import baseline_stats
from golden.config import ceil_log2, preset
from golden.quantize import choose_scale, project_levels
from sme.frontier import graph_weights
from sme.infer.models import load_network
from sme.report import layer_weights, resolve
from sme.workloads.networks import layer_blocks, network
from sme.workloads.pretrained import fetch


def column_fragments(v: np.ndarray, cfg, k: int) -> np.ndarray:
    """Project scaled weights ``v`` (K x N) onto column fragments of ``cfg.ou_rows`` inputs with
    one exponent and ``k``-bit mantissas: the fragment pattern with the input axis as the
    grouped axis (its group size is ``ou_cols``, so a config with ``ou_cols = ou_rows``)."""
    g = cfg.ou_rows
    frag = cfg.replace(pattern="fragment", fragment_bits=k, fragment_sign=False, ou_cols=g,
                       xbar_cols=g, tile_outputs=g)
    return project_levels(v, frag, out_axis=0)


def bit_columns(q: np.ndarray, cfg) -> np.ndarray:
    """Non-zero bit columns of every column fragment of ``q`` (K x N ints): (windows, N)."""
    g = cfg.ou_rows
    qq = np.pad(q, ((0, (-q.shape[0]) % g), (0, 0))).reshape(-1, g, q.shape[1])
    out = np.zeros(qq[:, 0].shape, dtype=np.int64)
    for sign in (1, -1):
        mag = np.bitwise_or.reduce(np.where(np.sign(qq) == sign, np.abs(qq), 0), axis=1)
        out += sum((mag >> p) & 1 for p in range(cfg.weight_bits))
    return out


def layer_estimate(layer, w: np.ndarray, cfg, k: int) -> dict:
    cu, g = cfg.ou_cols, cfg.ou_rows
    flat = np.asarray(w, dtype=np.float64).reshape(layer.cout, -1)
    alpha = choose_scale(flat, cfg.replace(pattern="window", window=k), axis=0, out_axis=0)[:, 0]
    acts, err, norm = 0, 0.0, 0.0
    for r0, c0, b in layer_blocks(layer, flat.reshape(layer.weight_shape)):
        a = alpha[c0:c0 + b.shape[1]]
        q = column_fragments(b / a, cfg, k)
        err += float(np.sum((q * a - b) ** 2))
        norm += float(np.sum(b ** 2))
        cols = bit_columns(q, cfg)
        lanes = np.zeros((cols.shape[0], cu), dtype=np.int64)
        np.add.at(lanes.T, (c0 + np.arange(b.shape[1])) % cu, cols.T)
        acts += int(lanes.max(axis=1).sum())
    K, N = layer.shape
    per_xbar = cfg.windows * cfg.colgroups
    tag = ceil_log2(-(-N // cu)) + ceil_log2(cfg.planes) + 1
    tile_tag = ceil_log2(max(1, min(N, cfg.tile_outputs) // cu)) + ceil_log2(cfg.planes) + 1
    return {"xbars": -(-acts // per_xbar),
            "index": acts * (ceil_log2(-(-K // g)) + cu * tag),
            "index_tile": acts * (ceil_log2(-(-min(K, cfg.tile_inputs) // g)) + cu * tile_tag),
            "err": err, "norm": norm, "rel": (err / norm) ** 0.5 if norm else 0.0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--network", default="mobilenet_v2", choices=("mobilenet_v2", "resnet50"))
    ap.add_argument("--weights", default=None, help="checkpoint (default: the cached download "
                    "for mobilenet_v2, synthetic for resnet50)")
    ap.add_argument("--bits", default="4,3,2", help="mantissa bits k to try")
    args = ap.parse_args(argv)
    cfg = preset("default")
    weights = args.weights
    if weights is None and args.network == "mobilenet_v2":
        weights = str(fetch("mobilenet_v2"))        # the cached, hash-checked download
    if weights is not None:
        # batch norm folded, as in `sme report --frontier`: what the tiles hold
        net = network(args.network)
        graph = load_network(args.network, weights)
        wdict, source = graph_weights(graph, net), dict(graph.source)
    else:
        net, wdict, source = resolve(args.network, None, 0,
                                     {"distribution": "laplace", "prune": 0.0})
    ws = [layer_weights(layer, i, wdict, 0) for i, layer in enumerate(net.layers)]
    isaac = sum(baseline_stats(layer_blocks(layer, np.ones(layer.weight_shape, np.int64)),
                               layer.shape, cfg)["isaac"]["crossbars"] for layer in net.layers)
    print(f"column squeeze estimate: {net.name}, {net.weights:,} weights, weights from "
          f"{source.get('describe', source)}")
    print(f"ISAAC-style dense: {isaac:,} crossbars (both sign sets); preset default "
          f"(ou {cfg.ou_rows}x{cfg.ou_cols}, crossbar {cfg.xbar_rows}x{cfg.xbar_cols})")
    print(f"{'k':>2} {'crossbars':>9} {'vs ISAAC':>8} {'index b/w':>9} {'tile-tag b/w':>12} "
          f"{'w. error':>8}")
    for k in (int(x) for x in args.bits.split(",")):
        t0 = time.perf_counter()
        rows = [layer_estimate(layer, w, cfg, k) for layer, w in zip(net.layers, ws)]
        xb = sum(r["xbars"] for r in rows)
        print(f"{k:>2} {xb:>9,} {isaac / xb:>7.2f}x {sum(r['index'] for r in rows) / net.weights:>9.2f} "
              f"{sum(r['index_tile'] for r in rows) / net.weights:>12.2f} "
              f"{np.mean([r['rel'] for r in rows]):>8.4f}   ({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
