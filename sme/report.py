"""``sme report``: a whole network compiled layer by layer, against the baselines and the floors.

For every weight layer the float weights are quantized onto the config's bit pattern, split into
the blocks of the layer matrix (:func:`sme.workloads.networks.layer_blocks`, block-diagonal for
grouped/depthwise layers) and

* compiled three times with :func:`golden.compiler.compile_blocks` (``squeeze="row"``, the
  paper's row squeeze; ``squeeze="segment"`` and ``squeeze="span"``, ours), reorder and
  balance on;
* costed with :func:`golden.baselines.baseline_stats` (``isaac`` dense, ``sre``, ``planes`` = bit
  planes without squeeze), on the same integers.

**Quantization.**  ``scale="channel"`` (default): one scale per output channel.  Each channel's
weights are divided by their RMS, at most 16,384 of the pooled normalised weights are drawn
(seeded), :func:`golden.quantize.choose_scale` (MSE search) picks one scale a* for them, and
channel c gets a* x rms_c (the MSE-optimal scale when channels differ only in spread, and
bounded time on big layers).  ``scale="layer"``: one MSE scale for the layer, chosen on at most
65,536 weights.  Every weight is then projected exactly onto the allowed levels
(:func:`golden.quantize.project_levels`).

**Columns** (per layer, and summed for the network): crossbars for SME row squeeze, SME segment
squeeze, SME span squeeze, planes, ISAAC, SRE and the floor (ceil(non-zero cells / crossbar
cells), compiler stats); index bits (row, segment, span, SRE); row lists of each program
(``rowlists_<mode>``: one per activation except in span squeeze); cycles per input vector
(every design; the crossbars of a layer run in parallel, so it is the busiest crossbar's
count); **work** = OU activations per image
= activations per input vector x output pixels (H x W; 1 for fc), with the floor
``floor_activations`` (ceil(non-zero ou_cols-wide segments / ou_rows) per input bit); the
compiler's per-program placement floors ``floor_cycles``; and **clipped samples**: the ADC samples
per input vector that clip in the worst case (every input bit 1), counted from the programs'
cells and schedules.  With the lossless ADC (``adc_bits`` null) it is 0 by construction.

**Energy, area and latency in physical units** (``rep["ppa"]``, :func:`sme.ppa.network_ppa`
on the :mod:`golden.ppa` model, technology ``--tech``): per scheme, energy per image and area by
component, the index's share of both, and latency under four named definitions (sequential;
ISAAC-style pipeline with replicas at ISAAC's area or at its crossbar count; and the earlier
report rule, kept as ``legacy_replication``), each as a speedup against ISAAC-style dense next to
the paper's 3.1x.  Every conv layer needs its output size: bare weights without it are refused
(:class:`ReportError`; ``--input-size`` fills sizes in along the chain).

**The legacy replication rule** (:func:`replicate`, ``rep["latency"]``).  Every scheme gets the
crossbar budget of the ISAAC-style dense mapping of the whole network (both sign sets).  A layer
l with x_l crossbars, c_l cycles per input vector and P_l input vectors per image takes
t_l = c_l * ceil(P_l / r_l) cycles with r_l replicas (replicas split the image's vectors).
Start with r_l = 1 and spare = budget - sum x_l; repeatedly take the slowest layer (largest t_l,
ties to the earlier layer); if another replica fits in the spare crossbars (x_l <= spare) and
r_l < P_l, add it; if it does not fit, that layer is final and the next slowest is tried.  Stop
when no layer can take a replica.  ISAAC itself and SRE (same crossbars) get no replicas.  It
gives latency = sum_l t_l and period = max_l t_l.  A scheme over budget gets no replicas and is
flagged.  The **floor** has no cycles, latency or speedup: it counts cells and activations and
is not a design (packing every cell into the fewest crossbars is no lower bound on time).  The
lower bounds on cycles of each compiled program are the ``floor_cycles_row`` /
``floor_cycles_segment`` columns, plotted in ``cycles.png``.

Outputs (all written atomically): ``layers.csv``, ``ppa_layers.csv`` (energy, area, latency per
layer and scheme), ``report.json`` (header, per-layer rows, totals, ratios, replication, ppa),
``summary.txt`` (the terminal table), ``crossbars.png``, ``bit_density.png``, ``cycles.png``,
``ppa.png`` (energy and area stacked by component per scheme).
"""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

from golden.config import DEFAULT_POINT, ConfigError, SMEConfig, pattern_point, preset
from golden.fileio import OutputSet
from golden.ppa import layer_stats, load_periphery, load_tech, replicas
from golden.program import Program
from golden.quantize import (admm_reconstruct, allowed_magnitudes, choose_scale,
                             layer_rd_lambda, project_levels, project_rd)

from .ppa import PPA_SCHEMES, format_ppa, network_ppa, ppa_csv, ppa_plot
from .cli import fraction, nonnegative_int, positive_float, positive_int
from .workloads.importers import describe_source, load as load_model
from .workloads.networks import NETWORKS, Layer, Network, layer_blocks
from .workloads.networks import network as builtin_network
from .workloads.synthetic import DISTRIBUTIONS, synthetic_layer, synthetic_source

__all__ = ["SCHEMES", "PAPER", "quantize_layer", "rd_importance", "worst_case_clipped",
           "layer_row", "layer_weights", "layer_result", "replicate", "summarize", "build_report",
           "format_summary", "write_report", "register", "main"]

#: Schemes in column order; ``floor`` is the physical lower bound.
SCHEMES = ("row", "segment", "span", "planes", "isaac", "sre", "floor")
#: Schemes that are designs with cycles and latency (the floor is a count, not a design).
TIMED = SCHEMES[:-1]
LABELS = {"row": "SME row squeeze", "segment": "SME segment squeeze",
          "span": "SME span squeeze",
          "planes": "bit planes, no squeeze", "isaac": "ISAAC-style dense",
          "sre": "SRE-style", "floor": "floor"}
#: The paper's headline figures (SPEC section 5).
PAPER = {"resnet50": 8.7, "mobilenet_v2": 2.1, "speedup": 3.1}


# ---- per layer ------------------------------------------------------------------------------

def quantize_layer(layer: Layer, w: np.ndarray, cfg: SMEConfig, rng: np.random.Generator,
                   scale: str = "channel", *, gram: np.ndarray | None = None,
                   return_scale: bool = False, rd_lambda: float = 0.0,
                   rd_weight: np.ndarray | None = None):
    """Integer weights (PyTorch layout, int64) on ``cfg``'s pattern (see the module docstring).

    The ``fragment`` pattern groups weights across output channels, so it is projected on the
    blocks of the layer matrix (:func:`sme.workloads.networks.layer_blocks`, each with its column
    offset; a depthwise layer's fragments hold one weight), and its channel-RMS scale factor a*
    is searched over :func:`golden.quantize.choose_scale`'s fractions on at most 16,384 weights
    in whole sampled rows.  ``gram`` (the K x K Gram matrix X^T X / M of calibration inputs of
    a layer with ``groups == 1``): the integers come from layer-wise ADMM on the output error
    (:func:`golden.quantize.admm_reconstruct`) at the same scales.  ``return_scale``: return
    ``(q, alpha)`` with alpha the per-channel scales, shape (Cout,).

    ``rd_lambda`` = mu > 0 (fragment pattern): rate-distortion quantization for span packing
    (:func:`golden.quantize.project_rd`), at the same scales: each fragment row picks its
    exponent and planes to minimise its weighted squared error (in units of its channel's
    scale) + lambda_l x planes, with the layer's lambda_l = mu x E_l / 10^6, E_l the layer's
    weighted energy sum(importance x (w / alpha)^2).  That is the network-wide Lagrangian
    allocation: the sum over layers of relative squared weight errors ||dW||^2 / ||W||^2
    (importance-weighted) plus mu per million fragment-row planes is minimised, i.e. every layer
    trades error for planes at the same marginal rate.  With ``gram`` it is ADMM's Z-step.
    ``rd_weight`` (groups, K_g): the importance of each input row (the Gram diagonal,
    :func:`rd_importance`), None = 1.  ``rd_lambda`` = 0 is the plain projection.
    """
    flat = np.asarray(w, dtype=np.float64).reshape(layer.cout, -1)
    if scale == "channel":
        rms = np.sqrt(np.mean(flat ** 2, axis=1, keepdims=True))
        rms = np.where(rms > 0, rms, 1.0)
        if cfg.pattern == "fragment":
            alpha = _fragment_scale(layer, flat / rms, cfg, rng) * rms
        else:
            pooled = (flat / rms).ravel()
            if pooled.size > 16384:
                pooled = pooled[rng.choice(pooled.size, 16384, replace=False)]
            alpha = choose_scale(pooled, cfg) * rms
    elif scale == "mse":
        # every channel its own MSE search (as the inference engine quantizes); fragments of a
        # grouped layer with one output per group hold one weight: searched element-wise
        search = cfg
        if cfg.pattern == "fragment" and layer.groups > 1 and layer.n_group == 1:
            search = cfg.replace(pattern="window", window=cfg.fragment_bits)
        alpha = choose_scale(flat, search, axis=0, out_axis=0)
    elif scale == "layer":
        sub = flat.ravel()
        if sub.size > 65536:
            sub = sub[rng.choice(sub.size, 65536, replace=False)]
        alpha = choose_scale(sub, cfg) if cfg.pattern != "fragment" else \
            _fragment_scale(layer, flat, cfg, rng)
        alpha = np.broadcast_to(alpha, (layer.cout, 1))
    else:
        raise ValueError(f"scale must be 'channel', 'mse' or 'layer', not {scale!r}")
    if rd_lambda and cfg.pattern != "fragment":
        raise ConfigError(f"rate-distortion quantization needs the fragment pattern, "
                          f"not {cfg.pattern!r}")
    lam = 0.0
    if rd_lambda:
        v = (flat / alpha).reshape(layer.groups, layer.n_group, -1)
        lam = layer_rd_lambda(v, rd_lambda, None if rd_weight is None else np.asarray(
            rd_weight, dtype=np.float64).reshape(layer.groups, 1, -1))
    if gram is not None and layer.groups == 1:
        qt, _ = admm_reconstruct(flat.T, gram, cfg, alpha=alpha.T, rd_lambda=lam)
        q = qt.T
    elif cfg.pattern == "fragment":
        q = _project_fragments(flat / alpha, layer.groups, cfg, rd_lambda=lam,
                               weight=rd_weight)
    else:
        q = project_levels(flat / alpha, cfg)
    q = q.reshape(layer.weight_shape)
    return (q, np.ravel(alpha).copy()) if return_scale else q


def _project_fragments(flat: np.ndarray, groups: int, cfg: SMEConfig,
                       first: int = 0, *, rd_lambda: float = 0.0,
                       weight: np.ndarray | None = None) -> np.ndarray:
    """Fragment projection of scaled weights ``flat`` (Cout x K_g) on the blocks of the layer
    matrix, each with its column offset.  Blocks whose offsets keep the output-group alignment
    (a dense layer, groups of a multiple of ``ou_cols`` outputs, or one output per group as in a
    depthwise layer, whose fragments then hold a single weight) go in one call.  ``first``:
    the group index of the first block (its column offset is ``first * ng``); ``groups`` may be
    an array of group indices.  ``rd_lambda`` > 0: :func:`golden.quantize.project_rd` instead,
    with ``weight`` (len(groups), K_g) the importance of each input row of each block."""
    idx = np.arange(groups) + first if np.ndim(groups) == 0 else np.asarray(groups)
    g = len(idx)
    ng = flat.shape[0] // g
    blk = flat.reshape(g, ng, -1)
    wt = None if weight is None else np.asarray(weight, dtype=np.float64).reshape(g, -1)

    def proj(v, col0, wrows):
        if not rd_lambda:
            return project_levels(v, cfg, col0=col0)
        return project_rd(v, cfg, rd_lambda, col0=col0,
                          weight=None if wrows is None else wrows[:, None])
    if g == 1 and idx[0] == 0 or ng == 1 or ng % cfg.ou_cols == 0:
        q = proj(blk.transpose(0, 2, 1).reshape(-1, ng), 0,
                 None if wt is None else wt.reshape(-1))
        return q.reshape(g, -1, ng).transpose(0, 2, 1).reshape(flat.shape)
    return np.concatenate([proj(blk[j].T, int(i) * ng, None if wt is None else wt[j]).T
                           for j, i in enumerate(idx)])


def rd_importance(gram: np.ndarray | None) -> np.ndarray | None:
    """Importance of each input row for rate-distortion quantization: the diagonal of the
    calibration Gram matrices ``(groups, K_g, K_g)`` (the mean energy each input carries),
    normalised to mean 1 over the layer so that ``rd_lambda`` keeps its units (squared
    scaled-weight units per plane); None stays None."""
    if gram is None:
        return None
    d = np.diagonal(np.asarray(gram, dtype=np.float64), axis1=-2, axis2=-1)
    m = float(np.mean(d)) if d.size else 0.0
    return d / m if m > 0 else np.ones_like(d)


def _fragment_scale(layer: Layer, flat: np.ndarray, cfg: SMEConfig,
                    rng: np.random.Generator, sample: int = 16384) -> float:
    """One scale for normalised weights ``flat`` (Cout x K_g) on the fragment pattern: the
    :func:`golden.quantize.choose_scale` search, on at most ``sample`` weights in whole input
    rows of the layer matrix (rows of a dense layer, whole groups of a grouped one)."""
    top = float(allowed_magnitudes(cfg)[-1])
    amax = float(np.max(np.abs(flat))) if flat.size else 0.0
    base = amax / top if amax > 0 else 1.0
    g, ng = layer.groups, layer.n_group
    sub = flat.reshape(g, ng, -1)
    if g > 1:
        groups = np.sort(rng.choice(g, min(g, max(1, sample // max(1, sub[0].size))),
                                    replace=False))
        sub = sub[groups]
    else:
        groups = 1
        take = min(sub.shape[2], max(1, sample // max(1, ng)))
        sub = sub[:, :, np.sort(rng.choice(sub.shape[2], take, replace=False))]
    s = sub.reshape(-1, sub.shape[2])
    best, best_err = base, None
    for f in np.linspace(0.25, 1.0, 30):
        a = base * f
        q = _project_fragments(s / a, groups, cfg)
        err = float(np.sum((q * a - s) ** 2))
        if best_err is None or err < best_err:
            best, best_err = a, err
    return best


def worst_case_clipped(p: Program, chunk: int = 1 << 18) -> int:
    """ADC samples per input vector that clip when every input bit is 1 (an upper bound for
    any input); 0 without computing when the ADC is lossless."""
    cfg = p.cfg
    if cfg.effective_adc_bits >= cfg.lossless_adc_bits or p.n_act == 0:
        return 0
    a, n = p.acts, 0
    for i in range(0, p.n_act, chunk):
        s = slice(i, i + chunk)
        cells = p.cells[a["xbar"][s], a["window"][s], a["colgroup"][s]].astype(np.int32)
        sums = (cells * (p.inputs[s] >= 0)[:, :, None]).sum(axis=1)
        n += int(np.count_nonzero(sums > cfg.adc_max))
    return n * cfg.input_bits


def _plane_ones(q: np.ndarray, cfg: SMEConfig) -> list[int]:
    """Weights with bit b of the magnitude set, for each b (one pass: a histogram of values)."""
    hist = np.bincount(np.abs(q).ravel(), minlength=cfg.max_magnitude + 1)
    vals = np.arange(hist.size)
    return [int(hist[(vals >> b) & 1 == 1].sum()) for b in range(cfg.weight_bits)]


def layer_row(layer: Layer, q: np.ndarray, cfg: SMEConfig,
              modes=("row", "segment", "span"), *, reorder: bool = True,
              balance: bool = True) -> dict:
    """Compile one quantized layer in each squeeze mode of ``modes`` (all by default), cost the
    baselines; one report row.  A mode left out has no ``*_<mode>`` columns; the floor comes
    from the first mode's program (it depends only on the weights and the config)."""
    from golden.baselines import baseline_stats
    from golden.compiler import SQUEEZE_MODES, compile_blocks

    modes = tuple(modes)
    if not modes or any(m not in SQUEEZE_MODES for m in modes) or len(set(modes)) != len(modes):
        raise ValueError(f"modes must be distinct squeeze modes out of {', '.join(SQUEEZE_MODES)},"
                         f" not {modes!r}")

    t0 = time.perf_counter()
    blocks = layer_blocks(layer, q)
    shape = layer.shape
    P = max(1, layer.pixels)
    row = {"layer": layer.name, "kind": layer.kind, "K": shape[0], "N": shape[1],
           "groups": layer.groups, "pixels": layer.pixels, "weights": layer.weights,
           "macs": layer.macs, "nonzero_weights": int(np.count_nonzero(q))}
    st, clip, priced = {}, {}, {}
    for mode in modes:
        t1 = time.perf_counter()
        prog = compile_blocks(blocks, shape, cfg, squeeze=mode, reorder=reorder, balance=balance)
        st[mode] = prog.stats
        priced[mode] = layer_stats(prog)
        clip[mode] = worst_case_clipped(prog)
        del prog
        row[f"seconds_{mode}"] = round(time.perf_counter() - t1, 3)
    t1 = time.perf_counter()
    base = baseline_stats(blocks, shape, cfg)
    row["seconds_baselines"] = round(time.perf_counter() - t1, 3)
    st.update(base)
    priced.update({s: base[s] for s in ("isaac", "sre", "planes")})
    # The floor is a count (fewest crossbars, fewest OU activations), not a design: it has no
    # cycles or latency (packing all cells into the fewest crossbars is not a lower bound on
    # time).  The compiler's per-program placement floors are the time bounds.
    st["floor"] = {"crossbars": st[modes[0]]["floor_crossbars"],
                   "activations": st[modes[0]]["floor_activations"], "cycles": None,
                   "index_bits": 0}
    schemes = [s for s in SCHEMES if s in st]
    for s in schemes:
        row[f"xbars_{s}"] = int(st[s]["crossbars"])
    for s in (*modes, "sre"):
        row[f"index_bits_{s}"] = int(st[s]["index_bits"])
    for s in schemes:
        if s in TIMED:
            row[f"cycles_{s}"] = int(st[s]["cycles"])
    for s in schemes:
        row[f"work_{s}"] = int(st[s]["activations"]) * P
    for m in modes:
        row[f"floor_cycles_{m}"] = int(st[m]["floor_cycles"])
    for m in modes:
        row[f"rowlists_{m}"] = int(st[m]["rowlists"])
    for m in modes:
        row[f"clipped_{m}"] = clip[m]
    row["plane_ones"] = _plane_ones(q, cfg)
    row["seconds"] = round(time.perf_counter() - t0, 3)
    row["priced"] = priced            # event counts etc. per scheme, for golden.ppa
    return row


def layer_weights(layer: Layer, index: int, weights: dict[str, np.ndarray] | None, seed: int = 0,
                  synthetic: dict | None = None) -> np.ndarray:
    """Float weights of layer number ``index`` of a network: ``weights[layer.name]``, or with
    ``weights=None`` synthetic ones drawn from (seed, index) with ``synthetic`` parameters
    (distribution, prune), so a layer's weights do not depend on the other layers."""
    if weights is not None:
        return weights[layer.name]
    syn = {"distribution": "laplace", "prune": 0.0, **(synthetic or {})}
    return synthetic_layer(layer, np.random.default_rng([seed, index]), syn["distribution"],
                           syn["prune"])


def layer_result(layer: Layer, index: int, w: np.ndarray, cfg: SMEConfig, *, seed: int = 0,
                 scale: str = "channel", modes=("row", "segment", "span"),
                 reorder: bool = True, balance: bool = True, rd_lambda: float = 0.0) -> dict:
    """The report's unit of work: quantize layer number ``index`` (weights ``w``, quantization
    sampling seeded by (seed, index); ``rd_lambda`` > 0: rate-distortion quantization, see
    :func:`quantize_layer`) and compile it (:func:`layer_row`).  A pure function of its
    arguments, so a sweep can run it anywhere and cache it."""
    t0 = time.perf_counter()
    q = quantize_layer(layer, w, cfg, np.random.default_rng([seed, index, 1]), scale,
                       rd_lambda=rd_lambda)
    prep = round(time.perf_counter() - t0, 3)
    row = layer_row(layer, q, cfg, modes, reorder=reorder, balance=balance)
    row["seconds_quantize"] = prep
    return row


# ---- whole network --------------------------------------------------------------------------

def replicate(xbars, cycles, pixels, budget: int) -> dict:
    """The legacy rule: spend ``budget - sum(xbars)`` spare crossbars on replicas of the slowest
    layers (:func:`golden.ppa.replicas`, module docstring).  Returns replicas, per-layer times,
    latency, period and whether over budget."""
    xbars = [int(x) for x in xbars]
    pixels = [max(1, int(p)) for p in pixels]
    spare = budget - sum(xbars)
    reps = replicas(xbars, cycles, pixels, spare) if spare > 0 else [1] * len(xbars)
    spare -= sum(x * (r - 1) for x, r in zip(xbars, reps))
    times = [int(c) * -(-p // r) for c, p, r in zip(cycles, pixels, reps)]
    return {"replicas": reps, "times": times, "latency": int(sum(times)),
            "period": int(max(times, default=0)), "over_budget": spare < 0,
            "crossbars_used": budget - spare if spare >= 0 else sum(xbars)}


class Progress:
    """A one-line progress bar on ``stream`` (None: silent): ``done``/``total`` items, elapsed
    time and, once something is done, the ETA = elapsed x (1 - f) / f, where f is ``fraction``
    (the share of the work done, when items differ in size) or done / total.  On a terminal the
    line is redrawn in place; elsewhere one line per call, or at most one per ``interval``
    seconds (and the last)."""

    def __init__(self, total: int, stream=None, width: int = 30, interval: float = 0.0):
        self.total, self.stream, self.width, self.interval = total, stream, width, interval
        self.t0 = self.last = time.perf_counter()
        self.tty = bool(stream is not None and getattr(stream, "isatty", lambda: False)())

    def __call__(self, done: int, label: str, fraction: float | None = None):
        if self.stream is None:
            return
        now = time.perf_counter()
        if not self.tty and done < self.total and done and now - self.last < self.interval:
            return
        self.last = now
        f = done / max(1, self.total) if fraction is None else fraction
        fill = int(self.width * f)
        elapsed = time.perf_counter() - self.t0
        eta = f" ETA {elapsed * (1 - f) / f:6.1f}s" if 0 < f < 1 else ""
        line = (f"[{'#' * fill}{'.' * (self.width - fill)}] {done}/{self.total} "
                f"{elapsed:6.1f}s{eta} {label}")
        if self.tty:
            self.stream.write("\r" + line[:110].ljust(110) + ("\n" if done == self.total else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


class ReportError(ValueError):
    """A network the report cannot cost (e.g. layers without spatial sizes)."""


def unsized_error(net: Network) -> str:
    """Why a network whose conv layers lack output sizes cannot be reported."""
    names = net.unsized
    return (f"{len(names)} layer(s) of {net.name} have no spatial size, so their input vectors "
            f"per image are unknown ({', '.join(names[:3])}{' ...' if len(names) > 3 else ''}):"
            " pass --input-size N, give @out_hw in the .npz, or use an ONNX model with shapes")


def build_report(net: Network, weights: dict[str, np.ndarray] | None, source: dict,
                 cfg: SMEConfig, *, seed: int = 0, scale: str = "channel",
                 synthetic: dict | None = None, progress=None, command: str = "",
                 tech: str = "isaac32", budgets: dict | None = None,
                 point: str | None = None, rd_lambda: float = 0.0) -> dict:
    """Compile every layer and assemble the report dict.  ``weights=None``: synthetic weights
    drawn layer by layer with ``synthetic`` parameters (kept out of memory between layers).
    ``point``: the name of the pattern point ``cfg`` carries (for the header); ``rd_lambda``:
    rate-distortion quantization (:func:`quantize_layer`).
    ``tech``: the technology (name or file) for energy, area and latency (``rep["ppa"]``,
    :func:`sme.ppa.network_ppa`; ``budgets``: its ``area_budget_mm2`` / ``crossbar_budget``).
    Every conv layer needs its output size (input vectors per image): a network without them
    (bare weights) raises :class:`ReportError`."""
    if net.unsized:
        raise ReportError(unsized_error(net))
    technology = load_tech(tech)
    bar = Progress(len(net.layers), progress)
    rows = []
    for i, layer in enumerate(net.layers):
        bar(i, layer.name)
        t0 = time.perf_counter()
        w = layer_weights(layer, i, weights, seed, synthetic)
        gen = time.perf_counter() - t0
        rows.append(layer_result(layer, i, w, cfg, seed=seed, scale=scale, rd_lambda=rd_lambda))
        rows[-1]["seconds_quantize"] = round(rows[-1]["seconds_quantize"] + gen, 3)
    bar(len(net.layers), "done")
    totals, lat, ratios = summarize(rows, cfg)
    layers = [{"name": r["layer"], "pixels": r["pixels"], "stats": r.pop("priced")} for r in rows]
    priced = network_ppa(layers, cfg, technology, load_periphery(cfg),
                         [s for s in PPA_SCHEMES if s in layers[0]["stats"]],
                         **(budgets or {})) if rows else None
    budget = totals.get("xbars_isaac", 0)
    header = {"network": net.name, "layers": len(net.layers), "weights": net.weights,
              "macs": net.macs, "weight_source": source,
              "weight_source_text": describe_source(source), "config": cfg.to_dict(),
              "quantization": (f"{point + ': ' if point else ''}{cfg.pattern} pattern"
                               + (f", rate-distortion lambda {rd_lambda:g} (span packing)"
                                  if rd_lambda else "")
                               + f", scale per {'layer' if scale == 'layer' else 'output channel'}"
                               + " (MSE)"),
              "point": point, "rd_lambda": rd_lambda,
              "seed": seed, "command": command, "budget_crossbars": budget,
              "paper": PAPER}
    return {"header": header, "layers": rows, "totals": totals, "latency": lat,
            "ratios": ratios, "ppa": priced,
            "seconds": round(sum(r["seconds"] + r["seconds_quantize"] for r in rows), 2)}


def summarize(rows: list[dict], cfg: SMEConfig) -> tuple[dict, dict, dict]:
    """Network totals, latency at the ISAAC budget (:func:`replicate`) and ratios of the per-layer
    rows of one network, for the schemes the rows hold.  Returns (totals, latency, ratios)."""
    schemes = [s for s in SCHEMES if rows and f"xbars_{s}" in rows[0]]
    totals = {k: int(sum(r[k] for r in rows)) for k in rows[0] if k.startswith(
        ("xbars_", "index_bits_", "work_", "weights", "macs", "nonzero_weights",
         "clipped_"))} if rows else {}
    totals["plane_ones"] = [int(sum(r["plane_ones"][b] for r in rows))
                            for b in range(cfg.weight_bits)]
    budget = totals.get("xbars_isaac", 0)
    lat = {}
    timed = [s for s in schemes if s in TIMED]
    for s in timed:         # ISAAC and SRE use the whole budget: no spare, no replicas
        lat[s] = replicate([r[f"xbars_{s}"] for r in rows], [r[f"cycles_{s}"] for r in rows],
                           [r["pixels"] for r in rows], budget)
    if not rows:
        return totals, lat, {}
    base = lat["isaac"]["latency"]
    ratios = {
        "crossbars_vs_isaac": {s: _ratio(budget, totals[f"xbars_{s}"]) for s in schemes},
        "crossbars_vs_planes": {s: _ratio(totals["xbars_planes"], totals[f"xbars_{s}"])
                                for s in schemes},
        "work_vs_isaac": {s: _ratio(totals["work_isaac"], totals[f"work_{s}"]) for s in schemes},
        "speedup_vs_isaac": {s: _ratio(base, lat[s]["latency"]) for s in timed},
        "throughput_vs_isaac": {s: _ratio(lat["isaac"]["period"], lat[s]["period"])
                                for s in timed},
    }
    return totals, lat, ratios


def _ratio(a, b):
    return round(a / b, 3) if b else None


# ---- output ---------------------------------------------------------------------------------

CSV_SKIP = ("plane_ones", "priced")


def _csv(rep: dict) -> bytes:
    rows = rep["layers"]
    buf = io.StringIO()
    keys = [k for k in rows[0] if k not in CSV_SKIP] + [f"ones_plane{b}" for b in range(
        len(rows[0]["plane_ones"]))] + [f"replicas_{s}" for s in TIMED]
    wr = csv.writer(buf, lineterminator="\n")
    wr.writerow(keys)
    for i, r in enumerate(rows):
        wr.writerow([r[k] for k in keys if k in r] + r["plane_ones"]
                    + [rep["latency"][s]["replicas"][i] for s in TIMED])
    return buf.getvalue().encode()


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.2f}x"


def format_summary(rep: dict) -> str:
    h, t, rat = rep["header"], rep["totals"], rep["ratios"]
    cfg = h["config"]
    lines = [
        f"SME report: {h['network']} - {h['layers']} layers, {h['weights']:,} weights, "
        f"{h['macs'] / 1e6:,.1f} M MACs",
        f"Weights: {h['weight_source_text']}",
        f"Config: {cfg['name']}: {cfg['weight_bits']}-bit magnitudes in {cfg['cell_bits']}-bit "
        f"cells, {cfg['xbar_rows']}x{cfg['xbar_cols']} crossbars, OU {cfg['ou_rows']}x"
        f"{cfg['ou_cols']}, {cfg['input_bits']}-bit inputs; {h['quantization']}", "",
        f"{'scheme':<24} {'crossbars':>10} {'vs ISAAC':>9} {'index bits':>12} "
        f"{'OU act./image':>15} {'clipped':>8}",
    ]
    for s in SCHEMES:
        idx = t.get(f"index_bits_{s}")
        clip = t.get(f"clipped_{s}")
        lines.append(
            f"{LABELS[s]:<24} {t[f'xbars_{s}']:>10,} {_fmt(rat['crossbars_vs_isaac'][s]):>9} "
            f"{'-' if idx is None else f'{idx:,}':>12} {t[f'work_{s}']:>15,} "
            f"{'-' if clip is None else f'{clip:,}':>8}")
    key = h["network"] if h["network"] in PAPER else None
    paper = (f"{PAPER[key]}x on {key}" if key else "8.7x on ResNet-50, 2.1x on MobileNet-v2")
    lines += ["",
              f"Crossbar reduction vs ISAAC-style dense: row squeeze "
              f"{_fmt(rat['crossbars_vs_isaac']['row'])}, segment squeeze "
              f"{_fmt(rat['crossbars_vs_isaac']['segment'])}, span squeeze "
              f"{_fmt(rat['crossbars_vs_isaac']['span'])} (compiled programs); floor "
              f"{_fmt(rat['crossbars_vs_isaac']['floor'])} (a lower bound: non-zero cells / "
              f"crossbar cells, not a mapping the compiler produces)",
              f"The paper reports {paper} and {PAPER['speedup']}x average speedup, on trained "
              f"weights against its own baselines; the figures above are not a reproduction "
              f"of those numbers.",
              f"Crossbar reduction vs bit planes without squeeze: row squeeze "
              f"{_fmt(rat['crossbars_vs_planes']['row'])}, segment squeeze "
              f"{_fmt(rat['crossbars_vs_planes']['segment'])}, span squeeze "
              f"{_fmt(rat['crossbars_vs_planes']['span'])}",
              f"Clipped samples: worst case per input vector (every input bit 1), summed over "
              f"layers; ADC {cfg['adc_bits'] or 'lossless'}",
              f"Quantize + compile + baselines time: {rep['seconds']} s", "",
              format_ppa(rep["ppa"], LABELS)]
    if h["weight_source"].get("kind") == "synthetic":
        lines.append("NOTE: synthetic weights - these figures are not measurements on trained "
                     "weights.")
    return "\n".join(lines)


#: Distinct markers and dashes, so that schemes with equal counts stay visible when they overlap.
STYLE = {"row": dict(marker="o", ms=5, ls="-"), "segment": dict(marker="s", ms=4, ls="-"),
         "span": dict(marker="D", ms=4, ls="-"),
         "planes": dict(marker="^", ms=5, ls=":"), "isaac": dict(marker="x", ms=6, ls="--"),
         "sre": dict(marker="+", ms=7, ls="-."), "floor": dict(marker=".", ms=4, ls="-")}


def _plots(rep: dict) -> dict[str, bytes]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, h = rep["layers"], rep["header"]
    x = np.arange(len(rows))
    title = f"{h['network']} ({h['weight_source'].get('kind', '?')} weights)"
    out = {}

    def save(fig, name):
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        out[name] = buf.getvalue()

    fig, ax = plt.subplots(figsize=(max(8, len(rows) * 0.22), 4.5))
    for s in SCHEMES:
        ax.plot(x, [max(r[f"xbars_{s}"], 0.8) for r in rows], label=LABELS[s], **STYLE[s])
    ax.set_yscale("log")
    ax.set_xlabel("layer")
    ax.set_ylabel("crossbars (both sign sets)")
    ax.set_title(f"Crossbars per layer - {title}")
    ax.legend(fontsize=8)
    save(fig, "crossbars.png")

    ones = np.array(rep["totals"]["plane_ones"], dtype=float)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar(np.arange(len(ones)), ones / max(1, h["weights"]))
    ax.set_xlabel("bit plane (0 = LSB)")
    ax.set_ylabel("fraction of weights with this bit set")
    ax.set_title(f"Bit density per plane - {title}")
    save(fig, "bit_density.png")

    fig, ax = plt.subplots(figsize=(max(8, len(rows) * 0.22), 4.5))
    for s in TIMED:
        ax.plot(x, [max(r[f"cycles_{s}"], 0.8) for r in rows], label=LABELS[s], **STYLE[s])
    for s, ls in (("row", ":"), ("segment", "--"), ("span", "-.")):
        ax.plot(x, [max(r[f"floor_cycles_{s}"], 0.8) for r in rows], color="grey", ls=ls,
                label=f"placement floor of the {s}-squeeze program")
    ax.set_yscale("log")
    ax.set_xlabel("layer")
    ax.set_ylabel("cycles per input vector")
    ax.set_title(f"Cycles per layer - {title}")
    ax.legend(fontsize=8)
    save(fig, "cycles.png")
    return out


#: The files every report writes (plots come on top unless --no-plots).
REPORT_FILES = ("layers.csv", "report.json", "summary.txt", "ppa_layers.csv")


def write_report(rep: dict, out_dir, plots: bool = True,
                 files: OutputSet | None = None) -> list[Path]:
    """Write the report's files into ``out_dir``: all of them or none (staged in ``files`` if
    given and committed by its owner, else in a set of their own)."""
    if files is None:
        with OutputSet() as files:
            return write_report(rep, out_dir, plots, files)
    out = Path(out_dir)
    outputs = {"layers.csv": _csv(rep),
               "report.json": json.dumps(rep, indent=1).encode(),
               "summary.txt": (format_summary(rep) + "\n").encode()}
    outputs["ppa_layers.csv"] = ppa_csv(rep["ppa"])
    if plots:
        outputs.update(_plots(rep))
        outputs["ppa.png"] = ppa_plot(rep["ppa"], f"{rep['header']['network']} "
                                    f"({rep['header']['weight_source'].get('kind', '?')} weights)",
                                    LABELS)
    for name, data in outputs.items():
        files.add(out / name, data)
    return [out / name for name in outputs]


# ---- command --------------------------------------------------------------------------------

def resolve(network: str, weights: str | None, seed: int, synthetic: dict):
    """(Network, weights or None, source) for the command line's --network / --weights."""
    if network in NETWORKS:
        net = builtin_network(network)
        if weights is None:
            return net, None, synthetic_source(seed=seed, **synthetic)
        imp = load_model(weights, network=net)
        return net, imp.weights, imp.source
    imp = load_model(network)
    if weights is not None:
        imp = load_model(weights, network=imp.network)
    if imp.weights is None:
        src = synthetic_source(seed=seed, **synthetic)
        src["shapes"] = f"{imp.source['format']} file {imp.source['file']}"
        return imp.network, None, src
    return imp.network, imp.weights, imp.source


def _frontier_cmd(args) -> int:
    """``sme report --frontier`` (see :mod:`sme.frontier`)."""
    from golden.config import PATTERN_POINTS
    from . import frontier as F

    labels = tuple(x for x in args.points.split(",") if x) if args.points else F.DEFAULT_LABELS
    # Bad input raises; the CLI's error boundary reports it (exit 2).
    cfg = preset(args.preset)
    if not labels:
        raise ConfigError(f"unknown pattern point(s) (none); known: {', '.join(PATTERN_POINTS)}")
    for x in labels:
        F.split_label(x)
    if "window-3" not in labels:
        labels = ("window-3",) + labels             # the reference of the bar
    grams = evaluate = None
    # real weights go through the inference graph: batch norm folded, what the tiles hold
    if args.calib or args.fidelity_images or (args.weights and args.network in NETWORKS):
        from .infer.calibration import layer_grams
        from .infer.models import load_images, load_network
        net = builtin_network(args.network) if args.network in NETWORKS else None
        if net is None:
            raise ConfigError("--calib / --fidelity-images need a built-in network")
        graph = load_network(args.network, args.weights)
        weights, source = F.graph_weights(graph, net), dict(graph.source)
        source.setdefault("kind", "file")
        if args.calib or args.fidelity_images:
            x, _, _, calib_x, _ = load_images(graph, "bundled",
                                              limit=args.fidelity_images or 1,
                                              calib=args.calib or 8, seed=args.seed)
        if args.calib:
            grams = layer_grams(graph, calib_x)
        if args.fidelity_images:
            evaluate = F.golden_evaluator(graph, x, calib_x)
    else:
        syn = {"distribution": args.distribution, "prune": args.prune}
        net, weights, source = resolve(args.network, args.weights, args.seed, syn)
    if args.layers:
        net = net.subset(args.layers)
    command = (f"sme report --frontier --network {args.network} --preset {args.preset} "
               f"--seed {args.seed} --scale {args.scale}"
               + (f" --weights {args.weights}" if args.weights else "")
               + (f" --points {args.points}" if args.points else "")
               + (f" --calib {args.calib}" if args.calib else "")
               + (" --no-admm" if args.no_admm else "")
               + (f" --fidelity-images {args.fidelity_images}" if args.fidelity_images else "")
               + (f" --layers {args.layers}" if args.layers else ""))
    bar = None if args.quiet else Progress(1, sys.stderr, interval=10)

    def progress(done, total, label):
        if bar is not None:
            bar.total = total
            bar(done, label)
    rep = F.frontier(net, weights, source, cfg, labels=labels, seed=args.seed,
                     scale=args.scale, grams=grams, admm=not args.no_admm,
                     evaluate=evaluate, progress=progress, command=command)
    print(F.format_frontier(rep))
    paths = F.write_frontier(rep, args.out, plots=not args.no_plots)
    print(f"wrote {len(paths)} files to {args.out}/")
    return 0


def _cmd(args) -> int:
    """``sme report``: bad input raises (ConfigError, ImportError_, ArrayFileError, OSError) and
    the CLI's error boundary reports it; the report's files appear together or not at all."""
    if args.frontier:
        return _frontier_cmd(args)
    with OutputSet() as files:
        return _report(args, files)


def _report(args, files: OutputSet) -> int:
    if not args.out:
        raise ValueError("--out '': an empty output directory name")
    for name in REPORT_FILES:                 # an output that cannot be written fails first
        files.reserve(Path(args.out) / name)
    from .frontier import split_label
    cfg = preset(args.preset)
    if args.adc_bits is not None:
        cfg = cfg.replace(adc_bits=args.adc_bits)
    base, rd_lambda = split_label(args.point)
    cfg = pattern_point(cfg, base)
    syn = {"distribution": args.distribution, "prune": args.prune}
    net, weights, source = resolve(args.network, args.weights, args.seed, syn)
    if args.input_size is not None:
        net = net.with_input_size(args.input_size)
    load_tech(args.tech)                   # a bad technology file fails before compiling
    if args.layers:
        net = net.subset(args.layers)
    if net.unsized:
        raise ValueError(unsized_error(net))
    command = (f"sme report --network {args.network} --preset {args.preset} --seed {args.seed}"
               + f" --point {args.point}"
               + (f" --adc-bits {args.adc_bits}" if args.adc_bits is not None else "")
               + f" --scale {args.scale}" + (f" --weights {args.weights}" if args.weights else
                                           f" --distribution {args.distribution}"
                                           f" --prune {args.prune}")
               + (f" --layers {args.layers}" if args.layers else "")
               + (f" --input-size {args.input_size}" if args.input_size is not None else "")
               + f" --tech {args.tech}"
               + (f" --budget-area {args.budget_area}" if args.budget_area is not None else "")
               + (f" --budget-crossbars {args.budget_crossbars}"
                  if args.budget_crossbars is not None else ""))
    rep = build_report(net, weights, source, cfg, seed=args.seed, scale=args.scale,
                       synthetic=syn, progress=None if args.quiet else sys.stderr,
                       command=command, tech=args.tech, point=args.point,
                       rd_lambda=rd_lambda,
                       budgets={"area_budget_mm2": args.budget_area,
                                "crossbar_budget": args.budget_crossbars})
    text = format_summary(rep)
    print(text)
    paths = write_report(rep, args.out, plots=not args.no_plots, files=files)
    files.commit()
    print(f"wrote {len(paths)} files to {args.out}/")
    return 0


def register(subparsers) -> None:
    """Add ``report`` (and ``digits``, see :mod:`sme.workloads.digits`) to an argparse subparsers
    object: ``sme report`` and ``sme digits``."""
    from .workloads import digits
    if "digits" not in subparsers.choices:      # the CLI may have registered it already
        digits.register(subparsers)
    p = subparsers.add_parser(
        "report", help="compile a whole network; crossbars, work and latency vs the baselines")
    p.add_argument("--network", default="resnet50",
                   help=f"{' | '.join(NETWORKS)} | a model file (.onnx, .npz, .pt, NeuroSim .csv)")
    p.add_argument("--weights", default=None,
                   help="weight file (.onnx, .npz, .pt) for the network; default: synthetic")
    p.add_argument("--preset", default="default")
    p.add_argument("--point", default=DEFAULT_POINT,
                   help=f"bit pattern and quantizer, a pattern point of "
                        f"golden.config.PATTERN_POINTS or <fragment point>-rd<lambda> "
                        f"(default {DEFAULT_POINT}, the point that meets issue 12's bar; "
                        f"window-3: the per-weight pattern of the earlier reports)")
    p.add_argument("--out", default="build/report", help="output directory")
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--adc-bits", type=positive_int, default=None,
                   help="override the preset's ADC resolution (below lossless: samples clip)")
    p.add_argument("--scale", choices=("channel", "mse", "layer"), default="channel",
                   help="channel: pooled RMS-normalised MSE scale times each channel's RMS; "
                        "mse: an MSE search per channel; layer: one scale")
    p.add_argument("--distribution", choices=DISTRIBUTIONS, default="laplace",
                   help="synthetic weight distribution (when no weights are given)")
    p.add_argument("--prune", type=fraction, default=0.0,
                   help="synthetic weights: fraction pruned to zero by magnitude")
    p.add_argument("--layers", type=nonnegative_int, default=0,
                   help="only the first N layers (quick runs)")
    p.add_argument("--input-size", type=positive_int, default=None,
                   help="input height = width for networks given as bare weights (conv output "
                        "sizes inferred along the chain, no pooling assumed)")
    p.add_argument("--tech", default="isaac32",
                   help="technology for energy/area/latency: isaac32 | neurram130 | a JSON file")
    p.add_argument("--budget-area", type=positive_float, default=None, metavar="MM2",
                   help="area budget of the pipelined latency (default: ISAAC-style dense's)")
    p.add_argument("--budget-crossbars", type=positive_int, default=None, metavar="N",
                   help="crossbar budget of the pipelined latency (default: ISAAC-style dense's)")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--frontier", action="store_true",
                   help="every (bit pattern, squeeze) point: crossbars, index, error, fidelity "
                        "(frontier.txt/.json/.csv/.png)")
    p.add_argument("--points", default=None,
                   help="--frontier: comma-separated pattern points (default: all of "
                        "golden.config.PATTERN_POINTS); a fragment point with -rd<lambda> "
                        "(e.g. fragment-4-rd2) is rate-distortion quantized for span packing")
    p.add_argument("--calib", type=int, default=0,
                   help="--frontier: calibration images for layer-wise ADMM (real weights) "
                        "and the input-row importance of -rd<lambda> points")
    p.add_argument("--no-admm", action="store_true",
                   help="--frontier with --calib: no ADMM, calibration only as rate-distortion "
                        "importance")
    p.add_argument("--fidelity-images", type=int, default=0,
                   help="--frontier: bundled images for the golden-backend fidelity proxy")
    p.set_defaults(func=_cmd)


def main(argv=None) -> int:
    """``python -m sme.report ARGS`` = ``sme report ARGS`` (the CLI's error boundary)."""
    from .cli import main as cli_main
    return cli_main(["report"] + list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
