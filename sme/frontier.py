"""``sme report --frontier``: every (bit pattern, squeeze mode) point of a network, with its price.

For one network and one base config, each **pattern point** (labels of
:data:`golden.config.PATTERN_POINTS`: the per-weight window-3 default, no pattern, max-ones-2
and the fragment pattern, a shared exponent per packing unit with k-bit mantissas, with two
signs or one) quantizes every layer with :func:`sme.report.quantize_layer` (per-channel
scales; with calibration Gram matrices, layer-wise ADMM on the output error for every layer
with ``groups == 1``, projection for grouped and depthwise layers) and compiles it in every
squeeze mode of :data:`SQUEEZES` with :func:`sme.report.layer_row`.  A **frontier point** is a
(pattern, squeeze) pair with:

* ``crossbars`` and ``vs_isaac`` = ISAAC-style dense crossbars / the point's (both sign sets);
* ``index_bits`` / ``index_per_weight``: the compiler's index (row squeeze: shift, zero flag
  and input index per group row; segment squeeze: an input index of ceil(log2 K) bits per
  packed unit and a class tag per cell block; span squeeze: an input index per fragment row of
  a row list, shared by the blocks of its group, and a class tag per block), per weight of the
  network (a weight itself takes ``weight_bits``);
* ``descriptor_bits`` / ``descriptor_per_weight``: what the tile's **descriptor memory**
  holds, where the index lives in hardware (:func:`golden.tile_image.desc_memory_bits`, the
  tile's own field widths): one descriptor per OU activation (active, window, column group,
  output group, plane, sign, shift, row-list id) and one *row list* per distinct list of
  wordline inputs (``ou_rows`` x (enable bit + input index)), for a tile as wide as each layer
  (``tile_inputs = K``, ``tile_outputs = N``).  Row and segment squeeze have a row list per
  activation; span squeeze one per block group, shared by its blocks (:func:`descriptor_bits`);
* ``weight_error``: mean over layers of ||W_hat - W||_F / ||W||_F (W_hat = q * alpha);
  ``output_error`` (with Gram matrices): mean over the ``groups == 1`` layers of
  ||X W_hat - X W||_F / ||X W||_F on the calibration inputs;
* ``top1`` / ``top5`` / ``kl`` (with an evaluator, real weights): agreement of the golden
  backend (:class:`sme.infer.hardware.GoldenBackend`, fast path, lossless ADC, the point's
  integers in its compiled tile programs) with the float model on the bundled images, a
  fidelity proxy, not ImageNet accuracy.  The squeeze mode cannot change it under a lossless
  ADC, so it is measured once per pattern.

**Rate-distortion points** (``<label>-rd<lambda>``, e.g. ``fragment-4-rd2``, for a fragment
label): the same pattern, but each fragment row picks its exponent and planes to minimise
squared error (in units of its channel's scale) + lambda x planes under span packing
(:func:`golden.quantize.project_rd`; with calibration, the error is weighted by each input
row's energy, the Gram diagonal, and with ADMM it is ADMM's Z-step).  The quantizer used is in
``patterns[label]["quantizer"]``.

The **chosen point** has the most crossbar reduction among the points that meet the bar of
:data:`BAR`: ``vs_isaac >= 4``, ``index_per_weight <= weight_bits / 2`` and a quality no worse
than the window-3 point's (top-1 agreement where measured, else output error where
calibrated, else weight error).  If none meets it, none is marked.  The **Pareto** points
(``rep["pareto"]``, marked in the text) are those no other point beats on crossbar reduction,
quality and index bits per weight together; the plot draws the front of the first two.

Outputs (atomic): ``frontier.json``, ``frontier.csv``, ``frontier.txt`` and ``frontier.png``
(crossbar reduction vs quality, Pareto front drawn, chosen point starred).
"""

from __future__ import annotations

import csv
import io
import json
import time
from typing import Callable

import numpy as np

from golden.config import DEFAULT_POINT, PATTERN_POINTS, ConfigError, SMEConfig, pattern_point
from golden.fileio import OutputSet
from golden.quantize import output_error
from golden.tile_image import desc_memory_bits

from .report import layer_row, layer_weights, quantize_layer, rd_importance
from .workloads.networks import Network

__all__ = ["BAR", "DEFAULT_POINT", "DEFAULT_SQUEEZE", "DEFAULT_LABELS", "SQUEEZES",
           "split_label", "descriptor_bits", "layer_point",
           "frontier", "choose", "pareto",
           "format_frontier", "write_frontier", "golden_evaluator"]

#: The bar a default must meet (issue 12): crossbars vs ISAAC, index per weight / weight_bits.
BAR = {"vs_isaac": 4.0, "index_fraction": 0.5}
#: The squeeze of the default point :data:`golden.config.DEFAULT_POINT` (its index needs the
#: shared row lists of span packing).
DEFAULT_SQUEEZE = "span"
DEFAULT_LABELS = tuple(PATTERN_POINTS)
SQUEEZES = ("row", "segment", "span")


def split_label(label: str) -> tuple[str, float]:
    """``(pattern point, rd_lambda)`` of a frontier label: a :data:`PATTERN_POINTS` label
    (lambda 0) or ``<fragment label>-rd<lambda>`` (module docstring); ConfigError otherwise."""
    base, lam = label, 0.0
    if "-rd" in label:
        base, _, tail = label.rpartition("-rd")
        try:
            lam = float(tail)
        except ValueError:
            lam = -1.0
        if not (lam >= 0 and np.isfinite(lam)):
            raise ConfigError(f"bad rate-distortion lambda in {label!r}: want "
                              "<fragment label>-rd<number >= 0>, e.g. fragment-4-rd2")
        if PATTERN_POINTS.get(base, {}).get("pattern") != "fragment":
            raise ConfigError(f"rate-distortion points need a fragment pattern point, not "
                              f"{base!r} (in {label!r})")
    if base not in PATTERN_POINTS:
        raise ConfigError(f"unknown pattern point {label!r}; known: {', '.join(PATTERN_POINTS)}"
                          " (fragment points also as <label>-rd<lambda>)")
    return base, lam


def descriptor_bits(cfg: SMEConfig, k: int, n: int, squeeze: str, n_act: int,
                    n_rowlists: int) -> int:
    """Descriptor-memory bits of a K x N layer's program on a tile as wide as the layer
    (:func:`golden.tile_image.desc_memory_bits`): ``n_act`` descriptors and the row lists,
    one per activation in row and segment squeeze, ``n_rowlists`` (one per block group) in
    span squeeze."""
    cu = cfg.ou_cols
    wide = cfg.replace(tile_inputs=max(1, k), tile_outputs=max(cu, -(-n // cu) * cu))
    return desc_memory_bits(wide, n_act, n_rowlists if squeeze == "span" else n_act)


def layer_point(layer, index: int, w: np.ndarray, cfg: SMEConfig, *, seed: int = 0,
                gram: np.ndarray | None = None, scale: str = "channel",
                rd_lambda: float = 0.0,
                admm: bool = True) -> tuple[dict, np.ndarray, np.ndarray]:
    """One layer at one pattern point: ``(row, q, alpha)``; the row holds the report row of
    :func:`sme.report.layer_row` plus ``weight_error``, ``output_error`` (or None) and
    ``descriptor_bits_<mode>``.  ``gram`` (groups, K_g, K_g): layer-wise ADMM where
    ``groups == 1`` (unless ``admm`` is False), and the importance of rate-distortion
    quantization (``rd_lambda`` > 0)."""
    g1 = gram is not None and layer.groups == 1
    q, alpha = quantize_layer(layer, w, cfg, np.random.default_rng([seed, index, 1]), scale,
                              gram=(np.asarray(gram)[0] if g1 and admm else None),
                              return_scale=True, rd_lambda=rd_lambda,
                              rd_weight=rd_importance(gram) if rd_lambda else None)
    row = layer_row(layer, q, cfg, SQUEEZES)
    flat = np.asarray(w, dtype=np.float64).reshape(layer.cout, -1)
    approx = q.reshape(layer.cout, -1) * alpha[:, None]
    norm = float(np.linalg.norm(flat))
    row["weight_error"] = float(np.linalg.norm(approx - flat) / norm) if norm else 0.0
    row["output_error"] = (output_error(flat.T, approx.T, np.asarray(gram)[0]) if g1 else None)
    A, P = cfg.input_bits, max(1, layer.pixels)
    for m in SQUEEZES:
        n_act = row[f"work_{m}"] // P // A
        row[f"descriptor_bits_{m}"] = descriptor_bits(cfg, *layer.shape, m, n_act,
                                                      row[f"rowlists_{m}"])
    return row, q, alpha


def frontier(net: Network, weights: dict | None, source: dict, cfg: SMEConfig, *,
             labels=DEFAULT_LABELS, seed: int = 0, scale: str = "channel",
             grams: dict | None = None, admm: bool = True,
             evaluate: Callable[[SMEConfig, dict], dict] | None = None,
             progress=None, command: str = "") -> dict:
    """Every (pattern, squeeze) point of ``net`` (module docstring).  ``weights``: float
    weights by layer name in PyTorch layout, or None for the report's synthetic weights;
    ``grams``: ``{layer: (groups, K_g, K_g)}`` calibration Gram matrices or None (``admm``
    False: used only as rate-distortion importance, no ADMM);
    ``evaluate(cfg, {layer: (q, alpha)})`` returns ``{"top1", "top5", "kl", ...}`` or None."""
    t0 = time.perf_counter()
    points, per_pattern = [], {}
    total = len(labels) * len(net.layers)
    done = 0
    for label in labels:
        base, lam = split_label(label)
        pcfg = pattern_point(cfg, base)
        tot = {f"{k}_{m}": 0 for m in SQUEEZES for k in ("xbars", "index_bits",
                                                          "descriptor_bits")}
        tot.update(xbars_isaac=0, xbars_floor=0, weights=0, nonzero_weights=0)
        werr, oerr, qa = [], [], {}
        for i, layer in enumerate(net.layers):
            if progress is not None:
                progress(done, total, f"{label} {layer.name}")
            w = layer_weights(layer, i, weights, seed)
            gram = None if grams is None else grams.get(layer.name)
            row, q, alpha = layer_point(layer, i, w, pcfg, seed=seed, gram=gram, scale=scale,
                                        rd_lambda=lam, admm=admm)
            for k in tot:
                tot[k] += row[k]
            werr.append(row["weight_error"])
            if row["output_error"] is not None:
                oerr.append(row["output_error"])
            if evaluate is not None:
                qa[layer.name] = (q, alpha)
            done += 1
        quality = evaluate(pcfg, qa) if evaluate is not None else None
        del qa
        quantizer = {"method": ("layer-wise ADMM" if grams is not None and admm
                                else "projection"),
                     "rd_lambda": lam,
                     "rd_weight": ("calibration Gram diagonal" if lam and grams is not None
                                   else None)}
        per_pattern[label] = {"config": {k: getattr(pcfg, k) for k in PATTERN_POINTS[base]},
                              "quantizer": quantizer,
                              "weight_error": float(np.mean(werr)),
                              "output_error": float(np.mean(oerr)) if oerr else None,
                              "fidelity": quality, "totals": tot}
        for m in SQUEEZES:
            xb = tot[f"xbars_{m}"]
            points.append({
                "pattern": label, "squeeze": m, "crossbars": xb,
                "vs_isaac": round(tot["xbars_isaac"] / xb, 3) if xb else None,
                "floor_vs_isaac": round(tot["xbars_isaac"] / max(1, tot["xbars_floor"]), 3),
                "index_bits": tot[f"index_bits_{m}"],
                "index_per_weight": round(tot[f"index_bits_{m}"] / tot["weights"], 3),
                "descriptor_bits": tot[f"descriptor_bits_{m}"],
                "descriptor_per_weight": round(tot[f"descriptor_bits_{m}"] / tot["weights"], 3),
                "weight_error": round(float(np.mean(werr)), 5),
                "output_error": round(float(np.mean(oerr)), 5) if oerr else None,
                **({k: quality.get(k) for k in ("top1", "top5", "kl")} if quality else {})})
    if progress is not None:
        progress(total, total, "done")
    chosen = choose(points, cfg.weight_bits)
    header = {"network": net.name, "layers": len(net.layers), "weights": net.weights,
              "weight_source": source, "config": cfg.to_dict(), "seed": seed, "scale": scale,
              "calibrated": grams is not None, "admm": grams is not None and admm,
              "fidelity": evaluate is not None,
              "command": command, "bar": BAR,
              "isaac_crossbars": next(iter(per_pattern.values()))["totals"]["xbars_isaac"]
              if per_pattern else 0}
    return {"header": header, "points": points, "patterns": per_pattern, "chosen": chosen,
            "pareto": pareto(points), "seconds": round(time.perf_counter() - t0, 1)}


def _quality(p: dict) -> tuple[str, float]:
    """(metric, value, larger is better as a positive number) of a point."""
    if p.get("top1") is not None:
        return "top1", p["top1"]
    if p.get("output_error") is not None:
        return "output_error", -p["output_error"]
    return "weight_error", -p["weight_error"]


def choose(points: list[dict], weight_bits: int) -> dict | None:
    """The point with the largest ``vs_isaac`` that meets :data:`BAR` against the window-3
    point of the same squeeze mode (module docstring), or None."""
    ref = {p["squeeze"]: p for p in points if p["pattern"] == "window-3"}
    best = None
    for p in points:
        r = ref.get(p["squeeze"])
        if r is None or p["vs_isaac"] is None:
            continue
        metric, val = _quality(p)
        ok = (p["vs_isaac"] >= BAR["vs_isaac"]
              and p["index_per_weight"] <= BAR["index_fraction"] * weight_bits
              and val >= _quality(r)[1] - 1e-12)
        if ok and (best is None or p["vs_isaac"] > best["vs_isaac"]):
            best = p
    return None if best is None else {"pattern": best["pattern"], "squeeze": best["squeeze"]}


def pareto(points: list[dict], index: bool = True) -> list[tuple[str, str]]:
    """(pattern, squeeze) of the points that no other point beats: at least as good in crossbar
    reduction, quality (the metric of :func:`choose`) and, with ``index``, index bits per weight
    (fewer is better), and better in one of them.  ``index=False``: the two-objective front
    drawn in the plot."""
    def objectives(p):
        return (p["vs_isaac"], _quality(p)[1]) + ((-p["index_per_weight"],) if index else ())

    pts = [p for p in points if p["vs_isaac"] is not None]
    out = []
    for p in pts:
        a = objectives(p)
        if not any(o is not p and all(x >= y for x, y in zip(objectives(o), a))
                   and objectives(o) != a for o in pts):
            out.append((p["pattern"], p["squeeze"]))
    return out


def _f(v, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def format_frontier(rep: dict) -> str:
    h = rep["header"]
    from .workloads.importers import describe_source
    chosen = rep["chosen"]
    front = {tuple(x) for x in rep["pareto"]}
    lines = [f"SME frontier: {h['network']} - {h['layers']} layers, {h['weights']:,} weights; "
             f"ISAAC-style dense {h['isaac_crossbars']:,} crossbars (both sign sets)",
             f"Weights: {describe_source(h['weight_source'])}",
             f"Quality: weight error always; output error on calibration inputs "
             f"{'yes' if h['calibrated'] else 'no'} ("
             + ("layer-wise ADMM" if h.get("admm", h["calibrated"]) else "no ADMM")
             + " where calibrated); "
             "fidelity " + ("golden backend vs float (proxy, not ImageNet accuracy)"
                            if h["fidelity"] else "not measured"),
             "",
             f"{'pattern':<17} {'squeeze':<8} {'crossbars':>9} {'vs ISAAC':>8} "
             f"{'index b/w':>9} {'descr. b/w':>10} {'w. error':>8} {'out. err':>8} "
             f"{'top-1':>6} {'top-5':>6}  "]
    for p in rep["points"]:
        mark = ""
        if chosen and (p["pattern"], p["squeeze"]) == (chosen["pattern"], chosen["squeeze"]):
            mark = " <- chosen"
        elif (p["pattern"], p["squeeze"]) in front:
            mark = " (Pareto)"
        lines.append(
            f"{p['pattern']:<17} {p['squeeze']:<8} {p['crossbars']:>9,} "
            f"{_f(p['vs_isaac'], '.2f'):>7}x {p['index_per_weight']:>9.2f} "
            f"{p['descriptor_per_weight']:>10.2f} {p['weight_error']:>8.4f} "
            f"{_f(p['output_error'], '.4f'):>8} {_f(p.get('top1'), '.3f'):>6} "
            f"{_f(p.get('top5'), '.3f'):>6}{mark}")
    lines += ["", f"Bar for a default: >= {BAR['vs_isaac']:g}x fewer crossbars than ISAAC, "
              f"index <= {BAR['index_fraction']:g} x {h['config']['weight_bits']} bits per "
              "weight, quality no worse than window-3 with the same squeeze: "
              + (f"chosen {chosen['pattern']} with {chosen['squeeze']} squeeze" if chosen
                 else "no point meets it"),
              "Floor (every one-bit its own cell) of each pattern vs ISAAC: " + ", ".join(
                  f"{lab} {v['totals']['xbars_isaac'] / max(1, v['totals']['xbars_floor']):.2f}x"
                  for lab, v in rep["patterns"].items()),
              f"Time: {rep['seconds']} s"]
    if h["weight_source"].get("kind") == "synthetic":
        lines.append("NOTE: synthetic weights - these figures are not measurements on trained "
                     "weights.")
    return "\n".join(lines)


def _csv(rep: dict) -> bytes:
    buf = io.StringIO()
    keys = sorted({k for p in rep["points"] for k in p}, key=list(rep["points"][0]).index
                  if rep["points"] else None)
    wr = csv.writer(buf, lineterminator="\n")
    wr.writerow(keys)
    for p in rep["points"]:
        wr.writerow([p.get(k) for k in keys])
    return buf.getvalue().encode()


def _plot(rep: dict) -> bytes:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = [p for p in rep["points"] if p["vs_isaac"] is not None]
    metric = _quality(pts[0])[0] if pts else "weight_error"
    val = {"top1": lambda p: p["top1"], "output_error": lambda p: p["output_error"],
           "weight_error": lambda p: p["weight_error"]}[metric]
    fig, ax = plt.subplots(figsize=(8, 5))
    for m, mk in (("row", "o"), ("segment", "s"), ("span", "D")):
        sel = [p for p in pts if p["squeeze"] == m]
        ax.scatter([val(p) for p in sel], [p["vs_isaac"] for p in sel], marker=mk,
                   label=f"{m} squeeze", zorder=3)
        for p in sel:
            ax.annotate(p["pattern"], (val(p), p["vs_isaac"]), fontsize=6,
                        xytext=(3, 3), textcoords="offset points")
    front = sorted((p for p in pts if (p["pattern"], p["squeeze"]) in
                    set(pareto(pts, index=False))), key=val)
    ax.plot([val(p) for p in front], [p["vs_isaac"] for p in front], "k--", lw=0.8,
            label="Pareto front (crossbars, quality)")
    if rep["chosen"]:
        c = next(p for p in pts if (p["pattern"], p["squeeze"]) ==
                 (rep["chosen"]["pattern"], rep["chosen"]["squeeze"]))
        ax.scatter([val(c)], [c["vs_isaac"]], marker="*", s=250, c="red", zorder=4,
                   label="chosen")
    ax.axhline(BAR["vs_isaac"], color="grey", lw=0.6, ls=":")
    ax.set_yscale("log")
    ax.set_xlabel({"top1": "top-1 agreement with float (fidelity proxy)",
                   "output_error": "mean relative output error (calibration inputs)",
                   "weight_error": "mean relative weight error"}[metric])
    ax.set_ylabel("crossbars: ISAAC-style dense / point")
    h = rep["header"]
    ax.set_title(f"Frontier - {h['network']} ({h['weight_source'].get('kind', '?')} weights)")
    ax.legend(fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def write_frontier(rep: dict, out_dir, plots: bool = True) -> list:
    from pathlib import Path
    out = Path(out_dir)
    files = {"frontier.json": json.dumps(rep, indent=1).encode(),
             "frontier.csv": _csv(rep),
             "frontier.txt": (format_frontier(rep) + "\n").encode()}
    if plots:
        files["frontier.png"] = _plot(rep)
    with OutputSet() as staged:            # all of the files or none
        for name, data in files.items():
            staged.add(out / name, data)
    return [out / name for name in files]


def golden_evaluator(graph, images: np.ndarray, calib: np.ndarray, squeeze: str = "segment",
                     batch: int = 8):
    """``evaluate(cfg, {layer: (q, alpha)})`` for :func:`frontier`: the golden backend (fast
    path) with the given integers against the float model on ``images``; calibrated on
    ``calib``.  Returns the fidelity summary of :func:`sme.infer.fidelity.summarize`."""
    from .infer.fidelity import compare, summarize
    from .infer.graph import prepare
    from .infer.hardware import GoldenBackend

    def evaluate(cfg: SMEConfig, qa: dict) -> dict:
        be = GoldenBackend(cfg, squeeze=squeeze, path="fast", weights=qa)
        prepare(graph, be, calib)
        ref, test, _ = compare(graph, images, be, batch=batch)
        s = summarize(ref, test)
        return {"top1": round(float(s["top1_agreement"]), 4),
                "top5": round(float(s["top5_overlap"]), 4),
                "kl": round(float(s["mean_kl"]), 5), "images": int(len(images))}
    return evaluate


def graph_weights(graph, net: Network) -> dict[str, np.ndarray]:
    """The graph's float weights (batch norm folded: what the hardware holds) in the PyTorch
    layout of ``net``'s layers, by name."""
    out = {}
    for op, layer in zip(graph.ops, net.layers):
        if op.name != layer.name:
            raise ValueError(f"graph op {op.name!r} does not match layer {layer.name!r}")
        g, k, n = op.weight.shape
        out[op.name] = np.asarray(op.weight, dtype=np.float64).transpose(0, 2, 1) \
            .reshape(g * n, k).reshape(layer.weight_shape)
    return out
