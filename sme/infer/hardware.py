"""Hardware backends of the inference engine: every convolution and linear layer through its
compiled tile programs.

A backend serves the graph (``sme/infer/graph.py``) through three calls:

``prepare(ops)``
    once, with every :class:`~sme.infer.graph.MatmulOp` (weight float ``(groups, K_g, N_g)``).
    Weights are quantized onto the configured bit pattern with one scale per output channel
    (:func:`golden.quantize.quantize`, MSE search) and the layer (block-diagonal when
    ``groups > 1``, never unrolled densely) is cut into tile programs by
    :func:`golden.partition.partition_layer`; with fault rates, stuck cells are then drawn into
    every tile program (:mod:`golden.faults`, seeded by layer and part).  Per-channel weight
    scales cost the hardware nothing: the crossbars hold integers only, and dequantization is
    one digital multiply per output channel by ``s * alpha[channel]`` after accumulation, the
    same multiply a per-layer scale needs.  One scale per layer would cost real accuracy:
    with batch norm folded in, MobileNet-v2's channels differ widely in range, and per-layer
    scales drop the median per-layer output SNR of weight-only 8-bit quantization from 32 to
    17 dB and top-1 agreement from 16/16 to 12/16 images (``benchmarks/bench_quant_error.py``).
``calibrate(op, cols)``
    for every op on a few calibration images, in network order, with float inputs.  The
    per-layer activation scale is ``s = max over calls of P(|x|) / (2^input_bits - 1)``, P the
    ``percentile`` of the call's inputs; larger inputs saturate.  The default, 100, is the
    maximum: MobileNet-v2's activations have rare large outliers that carry signal (the
    residual stream and the linear bottlenecks), and clipping them costs far more than the
    coarser step.  Measured on real MobileNet-v2 weights, uniform 8-bit, lossless ADC, 8
    calibration images: the 99.99th percentile clipped ~3e-4 of the inputs of every layer
    (e.g. features.10.conv.2: range 1.35 against a maximum of 4.9) and the accumulated
    per-layer output SNR fell to 1.1 dB in features.14-17; the maximum keeps every layer above
    13 dB (docs/RESULTS.md section 10).  A layer that saw a negative input during calibration
    is *signed*.
``matmul(op, cols)``
    ``cols`` float ``(M, groups, K_g)`` -> float32 ``(M, groups * N_g)`` without bias.  Inputs
    are quantized to ``x_q = rint(clip(x / s, lo, 2^A - 1))`` (A = input_bits; ``lo = 0``, or
    ``-(2^A - 1)`` for a signed layer, below).

**Signed inputs** (the network input of the first layer, and MobileNet-v2's linear
bottlenecks that feed the next expansion): the hardware takes unsigned inputs only, so a signed
layer runs two unsigned passes through the same programs, ``x = x+ - x-`` with
``x+ = max(x, 0)``, ``x- = max(-x, 0)``, each quantized with the same scale, and
``Y = run(Q(x+)) - run(Q(x-))``.  This is exact, with or without clipping, and equals a
sign-magnitude input quantizer with A magnitude bits; it costs two vectors per position.  An
unsigned layer clamps any negative input to 0 (its calibration saw none).

Integer accumulation is exact; dequantization is ``y = Y * s * alpha[channel]`` in float32.

Paths of :class:`GoldenBackend`:

``fast`` (lossless ADC only)
    the integer product with the matrices the tile programs compute, read from their cell
    images and descriptors (:func:`golden.vmm.effective_weights`, so faults are included), as
    one BLAS product per layer (dense), one einsum per layer (grouped) or one product per tile
    program (grouped, when a stuck cell couples two groups).  The two passes of a signed layer
    are one product with ``Q(x+) - Q(x-)`` (linearity).  The float type is float32 when every
    partial sum is below 2^24 in magnitude, else float64 (below 2^53, checked at prepare
    time), so every result is an exact integer.
``exact``
    each tile program OU by OU, input bit by input bit, through :func:`golden.vmm.run`, ADC
    clipping included; clipped samples are counted per layer (:meth:`GoldenBackend.report`).

With a lossless ADC the two paths agree exactly (tested).  :class:`RTLBackend` runs the same
tile programs on the emitted Verilog tile.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from golden import partition as gpart
from golden import vmm
from golden.config import SMEConfig
from golden.faults import FaultRates, inject_partition
from golden.quantize import quantize

__all__ = ["GoldenBackend", "RTLBackend", "LayerPlan", "BackendError", "PATHS"]

PATHS = ("fast", "exact")


class BackendError(ValueError):
    """A backend used out of order or with a configuration it cannot run."""


@dataclasses.dataclass
class LayerPlan:
    """One compiled layer: quantized weights, tile programs and the running statistics."""
    name: str
    kind: str
    groups: int
    k_g: int
    n_g: int
    alpha: np.ndarray                       # float64 (groups * n_g,): weight scale per channel
    partition: gpart.Partition
    scale: float | None = None              # activation scale s (None until calibrated)
    amax: float = 0.0
    signed: bool = False
    fast_dtype: type = np.float64           # fast path: exact for every partial sum
    dense: np.ndarray | None = None         # K x N, fast path of a dense layer
    grouped: np.ndarray | None = None       # (groups, K_g, N_g), fast path of a grouped layer
    part_w: list | None = None              # per tile program, grouped with coupling faults
    run_plans: dict | None = None           # exact path: vmm.run_plan per tile program
    clipped: int = 0                        # clipped ADC samples, all matmul calls
    samples: int = 0                        # ADC samples, all matmul calls
    vectors: int = 0                        # unsigned input vectors run through the layer

    @property
    def shape(self) -> tuple[int, int]:
        return self.partition.shape


def _index(ix: np.ndarray):
    """A slice for a run of consecutive indices (a view, no copy), else the index array."""
    if len(ix) and ix[-1] - ix[0] + 1 == len(ix):
        return slice(int(ix[0]), int(ix[-1]) + 1)
    return ix


class GoldenBackend:
    """Layers through their tile programs in the golden model (see the module docstring).

    ``cfg``: the design config (``pattern`` overrides its pattern, ``adc_bits`` its ADC);
    ``squeeze``: ``"row"`` or ``"segment"``; ``path``: ``"fast"`` or ``"exact"``; ``faults``:
    :class:`~golden.faults.FaultRates` or None; ``seed``: fault seed; ``weights``: optional
    pre-quantized integers ``{layer name: (q, alpha)}`` (q int in PyTorch layout ``(Cout,
    Cin/groups, kh, kw)`` or ``(Cout, K_g)`` on the config's pattern, alpha the ``Cout``
    per-channel scales of the op's float weight) used instead of quantizing in ``prepare``
    (layer-wise ADMM reconstruction, :mod:`sme.frontier`).
    """

    name = "golden"

    def __init__(self, cfg: SMEConfig, pattern: str | None = None, squeeze: str = "row",
                 path: str = "fast", faults: FaultRates | None = None, seed: int = 0,
                 percentile: float = 100.0, weights: dict | None = None):
        if pattern is not None:
            cfg = cfg.replace(pattern=pattern)
        if path not in PATHS:
            raise BackendError(f"path must be one of {', '.join(PATHS)}, not {path!r}")
        if path == "fast" and cfg.effective_adc_bits < cfg.lossless_adc_bits:
            raise BackendError(f"the fast path needs a lossless ADC ({cfg.lossless_adc_bits} "
                               f"bits or more), not {cfg.effective_adc_bits}; use the exact "
                               "path")
        if not 0 < percentile <= 100:
            raise BackendError(f"percentile must be in (0, 100], not {percentile!r}")
        self.cfg, self.squeeze, self.path = cfg, squeeze, path
        self.faults = faults if faults is not None and faults.any else None
        self.seed, self.percentile = int(seed), float(percentile)
        self.layers: dict[str, LayerPlan] = {}
        #: set to a dict to record every matmul's integer result, per layer name (checks)
        self.trace: dict[str, list[np.ndarray]] | None = None
        self.weights = weights or {}

    # ---- prepare ----------------------------------------------------------------------------
    def prepare(self, ops) -> None:
        for index, op in enumerate(ops):
            self.layers[op.name] = self._compile(op, index)

    def _compile(self, op, index: int) -> LayerPlan:
        w = np.asarray(op.weight, dtype=np.float64)
        if w.ndim != 3:
            raise BackendError(f"{op.name}: weight must be (groups, K_g, N_g), got {w.shape}")
        groups, k_g, n_g = w.shape
        per_channel = w.transpose(0, 2, 1).reshape(groups * n_g, k_g)        # channel rows
        given = op.name in self.weights
        if given:
            q, alpha = self.weights[op.name]
            q = np.asarray(q, dtype=np.int64).reshape(groups * n_g, k_g)
            alpha = np.asarray(alpha, dtype=np.float64).reshape(-1)
        else:
            q, alpha = quantize(per_channel, self.cfg, axis=0)
        q = q.reshape(groups, n_g, k_g).transpose(0, 2, 1)                    # groups, K_g, N_g
        blocks = [(g * k_g, g * n_g, q[g]) for g in range(groups)]
        part = gpart.partition_layer(blocks, (groups * k_g, groups * n_g), self.cfg,
                                     squeeze=self.squeeze, check=given,
                                     meta={"layer": op.name})
        if self.faults is not None:
            part = inject_partition(part, self.faults, self.seed, (index,))
        plan = LayerPlan(op.name, op.kind, groups, k_g, n_g, alpha.reshape(-1), part)
        if self.path == "fast":
            self._fast_weights(plan)
        return plan

    def _fast_weights(self, plan: LayerPlan) -> None:
        """The matrices of the fast path, read from the tile programs, and the narrowest float
        type in which every partial sum is an exact integer."""
        K, N = plan.shape
        cfg = self.cfg
        parts = plan.partition.parts
        mats = [vmm.effective_weights(tp.program) for tp in parts]
        # |partial sum| <= max_input * sum_k |W[k, j]| over the whole layer
        colsum = np.zeros(N, dtype=np.int64)
        for tp, m in zip(parts, mats):
            np.add.at(colsum, tp.cols, np.abs(m).sum(axis=0))
        bound = int(colsum.max(initial=0)) * cfg.max_input
        if bound >= 2 ** 53:
            raise BackendError(f"{plan.name}: integer sums up to {bound} are not exact in "
                               "float64")
        dt = np.float32 if bound < 2 ** 24 else np.float64
        plan.fast_dtype = dt
        if plan.groups == 1:
            dense = np.zeros((K, N), dtype=dt)
            for tp, m in zip(parts, mats):
                dense[np.ix_(tp.rows, tp.cols)] += m
            plan.dense = dense
            return
        # grouped: one (groups, K_g, N_g) tensor, unless a fault couples two groups
        grouped = np.zeros((plan.groups, plan.k_g, plan.n_g), dtype=dt)
        for tp, m in zip(parts, mats):
            r, c = np.nonzero(m)
            g = tp.rows[r] // plan.k_g
            if np.any(g != tp.cols[c] // plan.n_g):
                plan.part_w = [mm.astype(dt) for mm in mats]
                return
            grouped[g, tp.rows[r] % plan.k_g, tp.cols[c] % plan.n_g] += m[r, c]
        plan.grouped = grouped

    # ---- calibrate --------------------------------------------------------------------------
    def calibrate(self, op, cols) -> None:
        plan = self._plan(op)
        x = np.asarray(cols)
        if x.size:
            if self.percentile >= 100:              # the maximum, without np.percentile's sort
                top = max(float(x.max()), -float(x.min()))
            else:
                top = float(np.percentile(np.abs(x), self.percentile))
            plan.amax = max(plan.amax, top)
            plan.signed = plan.signed or bool(x.min() < 0)
        plan.scale = (plan.amax if plan.amax > 0 else 1.0) / self.cfg.max_input

    # ---- matmul -----------------------------------------------------------------------------
    def matmul(self, op, cols) -> np.ndarray:
        plan = self._plan(op)
        if plan.scale is None:
            raise BackendError(f"{op.name}: matmul before calibrate")
        x = np.asarray(cols)
        M = x.shape[0]
        if x.shape[1:] != (plan.groups, plan.k_g):
            raise BackendError(f"{op.name}: inputs of shape {x.shape}, expected (M, "
                               f"{plan.groups}, {plan.k_g})")
        # quantize before flattening: im2col hands over a strided view, the result is compact
        xq = self.quantize_inputs(plan, x).reshape(M, -1)
        if self.path == "fast":
            Y = self._fast(plan, xq)
            self._count(plan, M, 1 + plan.signed)
        else:
            Y = self.integer_matmul(plan, self.passes(plan, xq))
        if self.trace is not None:
            self.trace.setdefault(op.name, []).append(np.rint(Y).astype(np.int64))
        # float32 like the float backend; both paths convert the same integers the same way
        return Y.astype(np.float32, copy=False) * (plan.scale * plan.alpha).astype(np.float32)

    def quantize_inputs(self, plan: LayerPlan, x: np.ndarray) -> np.ndarray:
        """Integer-valued float inputs ``rint(clip(x * (1/s), lo, 2^A - 1))``: ``lo = 0`` for an
        unsigned layer (negatives clamp to 0), ``lo = -(2^A - 1)`` for a signed one.  The same
        for every path, so the paths see the same integers."""
        hi = self.cfg.max_input
        # clip before rint: the same integers (the bounds are integers), one pass less
        xq = np.multiply(x, 1.0 / plan.scale)
        np.clip(xq, -hi if plan.signed else 0, hi, out=xq)
        return np.rint(xq, out=xq)

    @staticmethod
    def passes(plan: LayerPlan, xq: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """The unsigned vectors the tile runs: ``[(+1, x+)]``, or ``[(+1, x+), (-1, x-)]`` for a
        signed layer (``x = x+ - x-``), as int64."""
        out = [(1, np.maximum(xq, 0).astype(np.int64))]
        if plan.signed:
            out.append((-1, np.maximum(-xq, 0).astype(np.int64)))
        return out

    def _count(self, plan: LayerPlan, M: int, n_passes: int) -> None:
        plan.vectors += M * n_passes
        plan.samples += M * n_passes * self.cfg.input_bits * self.cfg.ou_cols * sum(
            tp.program.n_act for tp in plan.partition.parts)

    def integer_matmul(self, plan: LayerPlan, passes) -> np.ndarray:
        """Exact integer result ``sum_sign sign * X_q @ Q`` through the tile programs, OU by
        OU (:func:`golden.partition.run`), clipped samples counted."""
        M = passes[0][1].shape[0]
        Y = np.zeros((M, plan.shape[1]), dtype=np.int64)
        if plan.run_plans is None:
            plan.run_plans = {id(tp.program): vmm.run_plan(tp.program)
                              for tp in plan.partition.parts}
        plans = plan.run_plans

        def runner(prog, x):
            return vmm.run(prog, x, plan=plans[id(prog)])

        for sign, xq in passes:
            y, clipped = gpart.run(plan.partition, xq, runner)
            plan.clipped += sum(clipped)
            Y += y if sign > 0 else -y
        self._count(plan, M, len(passes))
        return Y

    def _fast(self, plan: LayerPlan, xq: np.ndarray) -> np.ndarray:
        """``xq @ Q`` as exact integers in ``plan.fast_dtype`` (lossless ADC only)."""
        x = xq.astype(plan.fast_dtype, copy=False)
        M = x.shape[0]
        if plan.dense is not None:
            return x @ plan.dense
        if plan.grouped is not None:
            xg = x.reshape(M, plan.groups, plan.k_g)
            if plan.n_g == 1:
                return np.einsum("mgk,gk->mg", xg, plan.grouped[:, :, 0])
            return np.einsum("mgk,gkn->mgn", xg, plan.grouped).reshape(M, -1)
        out = np.zeros((M, plan.shape[1]), dtype=plan.fast_dtype)
        for tp, m in zip(plan.partition.parts, plan.part_w):
            out[:, _index(tp.cols)] += x[:, _index(tp.rows)] @ m
        return out

    def _plan(self, op) -> LayerPlan:
        try:
            return self.layers[op.name]
        except KeyError:
            raise BackendError(f"layer {op.name!r} was not prepared") from None

    # ---- report -----------------------------------------------------------------------------
    def report(self) -> list[dict]:
        """Per layer: shape, tile programs, crossbars, activation scale, signedness, ADC
        samples and clipped samples so far."""
        rows = []
        for p in self.layers.values():
            progs = [tp.program for tp in p.partition.parts]
            faults = [pr.meta.get("faults", {}) for pr in progs]
            rows.append({"layer": p.name, "kind": p.kind, "K": p.shape[0], "N": p.shape[1],
                         "groups": p.groups, "tile_programs": len(progs),
                         "crossbars": sum(pr.n_xbars for pr in progs),
                         "cycles_per_vector": p.partition.cycles_per_vector(),
                         "scale": p.scale, "signed": p.signed, "vectors": p.vectors,
                         "adc_samples": p.samples, "clipped": p.clipped,
                         "stuck_cells": sum(f.get("changed_cells", 0) for f in faults)})
        return rows


class RTLBackend(GoldenBackend):
    """The tile programs of :class:`GoldenBackend` run on the emitted Verilog tile
    (:mod:`sim.verilator_tile`), layer by layer: every part of a layer is loaded once and all
    the layer's input vectors stream through it.  Quantization, calibration and the programs are
    the golden backend's, so predictions and integer outputs must equal the golden ones; the
    tile's clip counter and its outputs are checked against the golden VMM of the same vectors
    when ``check=True``."""

    name = "rtl"

    def __init__(self, cfg: SMEConfig, pattern: str | None = None, squeeze: str = "row",
                 faults: FaultRates | None = None, seed: int = 0, percentile: float = 100.0,
                 check: bool = False):
        super().__init__(cfg, pattern, squeeze, "exact", faults, seed, percentile)
        self.check = check
        self.cycles = 0

    def integer_matmul(self, plan: LayerPlan, passes) -> np.ndarray:
        """The exact integer result from the Verilog tile, part by part (see the class)."""
        from sim.verilator_tile import run_partition

        M = passes[0][1].shape[0]
        Y = np.zeros((M, plan.shape[1]), dtype=np.int64)
        for sign, xq in passes:
            res = run_partition(plan.partition, xq)
            if self.check:
                want, clipped = gpart.run(plan.partition, xq)
                if not np.array_equal(res.outputs, want) or res.clipped != clipped:
                    raise AssertionError(f"{plan.name}: RTL outputs or clip counts differ from "
                                         "the golden model")
            plan.clipped += sum(res.clipped)
            self.cycles += res.cycles
            Y += res.outputs if sign > 0 else -res.outputs
        self._count(plan, M, len(passes))
        return Y
