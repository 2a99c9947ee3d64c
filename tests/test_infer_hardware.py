"""sme/infer/hardware.py: the golden backend through compiled tile programs."""

import dataclasses

import numpy as np
import pytest

from golden import partition as gp
from golden.config import preset
from golden.faults import FaultRates
from sme.infer.hardware import BackendError, GoldenBackend


@dataclasses.dataclass
class MatmulOp:
    name: str
    weight: np.ndarray
    bias: np.ndarray | None
    kind: str


def _ops(rng):
    """A dense layer beyond one fpga_small tile, a depthwise and a grouped one."""
    return [MatmulOp("dense", rng.normal(size=(1, 70, 40)), None, "conv"),
            MatmulOp("dw", rng.normal(size=(24, 9, 1)), None, "conv"),
            MatmulOp("grouped", rng.normal(size=(3, 12, 5)), None, "linear")]


def _cols(rng, op, m, signed):
    x = rng.normal(size=(m,) + op.weight.shape[:2])
    return x if signed else np.abs(x)


def _prepared(path, rng_seed=0, **kw):
    rng = np.random.default_rng(rng_seed)
    ops = _ops(rng)
    be = GoldenBackend(preset("fpga_small"), path=path, **kw)
    be.prepare(ops)
    for op in ops:
        be.calibrate(op, _cols(rng, op, 30, signed=op.name != "dw"))
    return be, ops


@pytest.mark.parametrize("faults", [None, FaultRates(0.01, 0.01)])
def test_fast_path_equals_exact_path_with_lossless_adc(faults):
    fast, ops = _prepared("fast", faults=faults, seed=4)
    exact, _ = _prepared("exact", faults=faults, seed=4)
    rng = np.random.default_rng(1)
    for op in ops:
        cols = _cols(rng, op, 20, signed=True)
        assert np.array_equal(fast.matmul(op, cols), exact.matmul(op, cols))
    assert all(r["clipped"] == 0 for r in exact.report())
    assert all(r["adc_samples"] > 0 for r in exact.report())


def test_integers_are_x_at_q_and_dequantized():
    be, ops = _prepared("fast")
    rng = np.random.default_rng(2)
    for op in ops:
        plan = be.layers[op.name]
        cols = _cols(rng, op, 10, signed=op.name != "dw")
        xq = be.quantize_inputs(plan, cols.reshape(10, -1))
        passes = be.passes(plan, xq)
        signs = [s for s, _ in passes]
        assert signs == ([1] if op.name == "dw" else [1, -1])   # signed: x+ and x- passes
        assert np.array_equal(passes[0][1] - (passes[1][1] if len(passes) > 1 else 0), xq)
        Q = np.zeros(plan.shape, dtype=np.int64)
        g, kg, ng = op.weight.shape
        for tp in plan.partition.parts:
            Q[np.ix_(tp.rows, tp.cols)] += tp.program.dense_q()
        assert np.array_equal(be.integer_matmul(plan, passes), xq @ Q)
        y = be.matmul(op, cols)
        ref = np.einsum("mgk,gkn->mgn", cols, op.weight).reshape(10, -1)
        # 8-bit weights and inputs: the result follows the float product closely
        assert np.corrcoef(y.ravel(), ref.ravel())[0, 1] > 0.99


def test_unsigned_layer_has_one_pass_and_scale_from_calibration():
    be, ops = _prepared("fast")
    plan = be.layers["dw"]
    assert not plan.signed and be.layers["dense"].signed
    passes = be.passes(plan, be.quantize_inputs(plan, -np.ones((2, 24 * 9))))
    assert len(passes) == 1 and not passes[0][1].any()    # negatives clamp to 0


def test_clipping_is_counted_per_layer():
    rng = np.random.default_rng(3)
    ops = _ops(rng)
    be = GoldenBackend(preset("fpga_small").replace(adc_bits=2), path="exact")
    be.prepare(ops)
    for op in ops:
        be.calibrate(op, _cols(rng, op, 30, signed=False))
    ref = GoldenBackend(preset("fpga_small"), path="fast")
    ref.prepare(ops)
    for op in ops:
        ref.layers[op.name].scale = be.layers[op.name].scale
        cols = _cols(rng, op, 10, signed=False)
        y, want = be.matmul(op, cols), ref.matmul(op, cols)
        if op.name == "dense":
            assert not np.allclose(y, want)               # a 2-bit ADC loses information
    rep = {r["layer"]: r for r in be.report()}
    assert rep["dense"]["clipped"] > 0
    assert all(0 <= r["clipped"] <= r["adc_samples"] for r in rep.values())


def test_wide_sums_fall_back_to_float64_and_stay_exact():
    """A layer whose sums can exceed 2^24 runs the fast path in float64, still equal to the
    exact path; a small one runs in float32."""
    w = np.ones((1, 400, 3))                        # every weight at the largest level
    op = MatmulOp("wide", w, None, "linear")
    small = MatmulOp("small", np.ones((1, 4, 3)), None, "linear")
    res = {}
    for path in ("fast", "exact"):
        be = GoldenBackend(preset("fpga_small"), path=path)
        be.prepare([op, small])
        be.calibrate(op, np.full((1, 1, 400), 2.0))
        be.calibrate(small, np.full((1, 1, 4), 2.0))
        res[path] = be.matmul(op, np.full((3, 1, 400), 2.0))
        if path == "fast":
            assert be.layers["wide"].fast_dtype is np.float64
            assert be.layers["small"].fast_dtype is np.float32
    assert np.array_equal(res["fast"], res["exact"])


def test_misuse_is_a_clear_error():
    with pytest.raises(BackendError, match="lossless"):
        GoldenBackend(preset("fpga_small").replace(adc_bits=2), path="fast")
    with pytest.raises(BackendError, match="path"):
        GoldenBackend(preset("fpga_small"), path="slow")
    be = GoldenBackend(preset("fpga_small"))
    op = MatmulOp("x", np.ones((1, 3, 2)), None, "linear")
    with pytest.raises(BackendError, match="not prepared"):
        be.matmul(op, np.ones((1, 1, 3)))
    be.prepare([op])
    with pytest.raises(BackendError, match="before calibrate"):
        be.matmul(op, np.ones((1, 1, 3)))


@pytest.mark.slow                   # ~15 s CPU (prepare of 53 layers), ~60 s on a loaded machine
def test_real_mobilenet_v2_uniform_8bit_keeps_every_layer_snr(mobilenet_v2_state_dict):
    """Uniform 8-bit weights (one scale per output channel) and 8-bit activations on the real
    torchvision MobileNet-v2 weights, lossless ADC: every layer's output, with the errors of all
    earlier layers accumulated, stays well above the noise (worst layer 10.8 and 12.1 dB on
    bundled images 3 and 6 alone, medians 17-22 dB).  A calibration that clips the activations'
    rare large values (the former 99.99th-percentile scale) drove features.15.conv.2 to 0.3 dB
    on image 3 (features.14-17 to 1-4 dB over 8 images)."""
    from sme.infer import fidelity as F
    from sme.infer import graph as G
    from sme.infer.models import load_images

    g = G.build("mobilenet_v2", mobilenet_v2_state_dict)
    x, _, _, calib, _ = load_images(g, "bundled", 7, 8, 0)
    be = GoldenBackend(preset("default"), pattern="uniform")
    G.prepare(g, be, calib)
    _, _, snr = F.compare(g, x[[3, 6]], be)
    db = snr.db()
    worst = min(db, key=db.get)
    assert db[worst] >= 8, f"{worst}: output SNR {db[worst]:.1f} dB"
    assert np.median(list(db.values())) >= 15
