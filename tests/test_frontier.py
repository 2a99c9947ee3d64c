"""The frontier: fragment-pattern layer quantization, every (pattern, squeeze) point, the bar."""

import numpy as np
import pytest

from golden.config import PATTERN_POINTS, ConfigError, pattern_point, preset
from golden.quantize import check_pattern, output_error, project_levels
from sme import frontier as F
from sme import report
from sme.cli import main
from sme.workloads.networks import Layer, Network, layer_blocks

# a dense conv, a depthwise conv, a grouped conv whose groups (3 outputs) straddle the output
# groups of ou_cols = 8, and an fc layer
NET = Network("small", (Layer("c1", 3, 16, 3, 3, 1, 1, 6, 6),
                        Layer("dw", 16, 16, 3, 3, 1, 16, 6, 6),
                        Layer("gc", 16, 12, 1, 1, 1, 4, 6, 6),
                        Layer("fc", 12, 10, kind="fc")))


def _weights(seed=0):
    rng = np.random.default_rng(seed)
    return {lay.name: rng.laplace(size=lay.weight_shape) for lay in NET.layers}


@pytest.mark.parametrize("label", ["fragment-3", "fragment-2-sign", "window-3"])
def test_quantize_layer_is_on_the_pattern_of_the_layer_matrix(label):
    """Every block of every layer obeys the pattern at its column offset; the scales
    reproduce the weights."""
    cfg = pattern_point(preset("default"), label)
    for i, (lay, w) in enumerate(zip(NET.layers, _weights().values())):
        q, alpha = report.quantize_layer(lay, w, cfg, np.random.default_rng(i),
                                         return_scale=True)
        assert q.shape == lay.weight_shape and alpha.shape == (lay.cout,)
        for _, c0, b in layer_blocks(lay, q):
            check_pattern(b, cfg, col0=c0)
        approx = q.reshape(lay.cout, -1) * alpha[:, None]
        flat = w.reshape(lay.cout, -1)
        assert np.linalg.norm(approx - flat) < 0.6 * np.linalg.norm(flat)


def test_fragment_projection_of_a_layer_is_nearest_per_block():
    """The batched projection equals the block-by-block one (alignment of grouped layers)."""
    cfg = pattern_point(preset("default"), "fragment-2")
    lay = NET.layers[2]
    w = np.random.default_rng(3).laplace(size=lay.weight_shape) * 30
    q = report._project_fragments(w.reshape(lay.cout, -1), lay.groups, cfg)
    for g, c0, b in layer_blocks(lay, w):
        ref = project_levels(b, cfg, col0=c0)
        assert np.array_equal(q[c0:c0 + lay.n_group].T, ref)


def test_frontier_points_and_bar():
    grams = {lay.name: np.stack([np.eye(lay.k_group) + 0.5] * lay.groups)
             for lay in NET.layers}
    labels = ("window-3", "fragment-3", "fragment-1-sign")
    rep = F.frontier(NET, _weights(), {"kind": "synthetic"}, preset("default"), labels=labels,
                     grams=grams)
    pts = rep["points"]
    assert [(p["pattern"], p["squeeze"]) for p in pts] == [
        (lab, m) for lab in labels for m in ("row", "segment", "span")]
    for p in pts:
        assert p["crossbars"] > 0 and p["vs_isaac"] <= p["floor_vs_isaac"] + 1e-9
        assert p["descriptor_bits"] > 0 and p["output_error"] is not None
    # one sign and one mantissa bit per fragment: at most one unit per fragment
    seg = {p["pattern"]: p for p in pts if p["squeeze"] == "segment"}
    assert seg["fragment-1-sign"]["crossbars"] <= seg["fragment-3"]["crossbars"] \
        <= seg["window-3"]["crossbars"]
    chosen = rep["chosen"]
    if chosen is not None:
        c = next(p for p in pts if (p["pattern"], p["squeeze"]) == (chosen["pattern"],
                                                                    chosen["squeeze"]))
        assert c["vs_isaac"] >= F.BAR["vs_isaac"]
    for a in rep["pareto"]:
        pa = next(p for p in pts if (p["pattern"], p["squeeze"]) == tuple(a))
        assert not any(o["vs_isaac"] > pa["vs_isaac"] and o["output_error"]
                       < pa["output_error"] for o in pts)


def test_choose_applies_every_condition():
    ref = {"pattern": "window-3", "squeeze": "segment", "vs_isaac": 3.0,
           "index_per_weight": 12.0, "weight_error": 0.05}
    good = {"pattern": "fragment-2", "squeeze": "segment", "vs_isaac": 6.0,
            "index_per_weight": 3.5, "weight_error": 0.05}
    assert F.choose([ref, good], 8) == {"pattern": "fragment-2", "squeeze": "segment"}
    for change in ({"vs_isaac": 3.9}, {"index_per_weight": 4.1}, {"weight_error": 0.051}):
        assert F.choose([ref, {**good, **change}], 8) is None, change


def test_admm_in_the_frontier_beats_projection_on_correlated_inputs():
    lay = NET.layers[0]
    rng = np.random.default_rng(5)
    x = np.maximum(rng.normal(size=(500, lay.k_group)) @ rng.normal(size=(lay.k_group,) * 2), 0)
    gram = (x.T @ x / len(x))[None]
    w = _weights()["c1"]
    cfg = pattern_point(preset("default"), "fragment-2-sign")
    row, q, alpha = F.layer_point(lay, 0, w, cfg, gram=gram)
    flat = w.reshape(lay.cout, -1)
    q0 = report.quantize_layer(lay, w, cfg, np.random.default_rng([0, 0, 1]))
    plain = output_error(flat.T, (q0.reshape(lay.cout, -1) * alpha[:, None]).T, gram[0])
    assert row["output_error"] < plain


def test_cli_frontier_rejects_an_unknown_point(tmp_path, capsys):
    rc = main(["report", "--frontier", "--network", "resnet50", "--layers", "1",
               "--points", "fragment-9", "--out", str(tmp_path / "f")])
    assert rc == 2 and "unknown pattern point" in capsys.readouterr().err
    assert not (tmp_path / "f").exists()


def test_pattern_points_are_valid_configs():
    for label in PATTERN_POINTS:
        pattern_point(preset("default"), label)


def test_golden_backend_runs_given_integers_and_checks_their_pattern():
    """GoldenBackend(weights=...) puts exactly the given integers in its tile programs (the
    same outputs as quantizing itself when they are its own), and refuses off-pattern ones."""
    from dataclasses import dataclass

    from golden.quantize import PatternError, quantize
    from sme.infer.hardware import GoldenBackend

    @dataclass
    class Op:
        name: str
        weight: np.ndarray
        bias: None
        kind: str

    rng = np.random.default_rng(2)
    ops = [Op("dense", rng.normal(size=(1, 20, 12)), None, "conv"),
           Op("dw", rng.normal(size=(8, 9, 1)), None, "conv")]
    cfg = pattern_point(preset("fpga_small"), "fragment-3")
    given = {}
    for op in ops:
        g, k, n = op.weight.shape
        q, alpha = quantize(op.weight.transpose(0, 2, 1).reshape(g * n, k), cfg, axis=0)
        given[op.name] = (q, alpha)
    own, mine = GoldenBackend(cfg), GoldenBackend(cfg, weights=given)
    for be in (own, mine):
        be.prepare(ops)
    x = {op.name: np.abs(rng.normal(size=(6,) + op.weight.shape[:2])) for op in ops}
    for op in ops:
        for be in (own, mine):
            be.calibrate(op, x[op.name])
        np.testing.assert_array_equal(own.matmul(op, x[op.name]), mine.matmul(op, x[op.name]))
    bad = dict(given)
    q, alpha = bad["dense"]
    q = q.copy()
    q[0, 0], q[1, 0] = 1, 64               # one fragment spanning 7 bit positions
    bad["dense"] = (q, alpha)
    with pytest.raises(PatternError):
        GoldenBackend(cfg, weights=bad).prepare(ops)


def test_span_descriptor_stores_each_row_list_once():
    """Descriptor memory of a 300 x 40 layer on ``default`` (14 windows, 16 column groups,
    5 output groups, 8 planes, shift 0..7): scalar fields 1 + 4 + 4 + 3 + 3 + 1 + 3 = 19 bits
    and the tile's row-list id, ceil(log2 tile_rowlists = 2048) = 11 bits; a wordline entry =
    enable + ceil(log2 300) = 10 bits, 9 per row list (tile image version 2).  Segment
    squeeze: a row list per activation; span squeeze: one per row list of the program."""
    from golden.compiler import compile_matrix
    from sim.stimulus import random_q
    cfg = pattern_point(preset("default"), "fragment-3")
    assert F.descriptor_bits(cfg, 300, 40, "segment", 100, 100) == 100 * (30 + 90)
    assert F.descriptor_bits(cfg, 300, 40, "span", 100, 40) == 100 * 30 + 40 * 90
    q = random_q(np.random.default_rng(3), (300, 40), cfg, 0.6)
    span = compile_matrix(q, cfg, squeeze="span")
    seg = compile_matrix(q, cfg, squeeze="segment")
    assert F.descriptor_bits(cfg, 300, 40, "span", span.n_act, span.n_rowlists) < \
        F.descriptor_bits(cfg, 300, 40, "segment", seg.n_act, seg.n_rowlists)


def test_split_label_reads_rate_distortion_points():
    assert F.split_label("fragment-4") == ("fragment-4", 0.0)
    assert F.split_label("fragment-4-rd0.25") == ("fragment-4", 0.25)
    assert F.split_label("fragment-2-sign-rd3") == ("fragment-2-sign", 3.0)
    for bad in ("window-3-rd1", "fragment-4-rd-1", "fragment-4-rdx", "fragment-4-rdnan",
                "fragment-9-rd1", "fragment-9"):
        with pytest.raises(ConfigError):
            F.split_label(bad)


def test_rd_quantize_layer_is_on_pattern_and_trades_planes():
    """Rate-distortion layers stay on the pattern of every block; mu = 0 is the projection;
    planes fall and error rises as mu grows; the Gram diagonal weights the error."""
    from golden.quantize import fragment_planes
    cfg = pattern_point(preset("default"), "fragment-4")
    w = _weights(1)
    for i, lay in enumerate(NET.layers):
        rng = np.random.default_rng(i)
        q0 = report.quantize_layer(lay, w[lay.name] * 40, cfg, rng, "mse")
        planes, errs = [], []
        for mu in (0.0, 1e3, 1e4, 1e5):
            q, a = report.quantize_layer(lay, w[lay.name] * 40, cfg, np.random.default_rng(i),
                                         "mse", rd_lambda=mu, return_scale=True)
            if mu == 0:
                assert np.array_equal(q, q0)
            for _, c0, b in layer_blocks(lay, q):
                check_pattern(b, cfg, col0=c0)
            planes.append(sum(fragment_planes(b, cfg, col0=c0)
                              for _, c0, b in layer_blocks(lay, q)))
            errs.append(float(np.sum((q.reshape(lay.cout, -1) * a[:, None]
                                      - w[lay.name].reshape(lay.cout, -1) * 40) ** 2)))
        assert planes == sorted(planes, reverse=True) and planes[-1] < planes[0], lay.name
        assert errs == sorted(errs), lay.name
    # importance: an input row that carries all the energy keeps its planes
    lay = NET.layers[3]
    imp = np.full((1, lay.k_group), 1e-3)
    imp[0, 0] = 1.0
    q = report.quantize_layer(lay, w["fc"], cfg, np.random.default_rng(0), "mse",
                              rd_lambda=10.0, rd_weight=imp)
    q0 = report.quantize_layer(lay, w["fc"], cfg, np.random.default_rng(0), "mse")
    assert np.array_equal(q[:, 0], q0[:, 0]) and not np.array_equal(q[:, 1:], q0[:, 1:])


def test_frontier_rd_point_records_its_quantizer(tmp_path):
    grams = {lay.name: np.stack([np.eye(lay.k_group) + 0.5] * lay.groups)
             for lay in NET.layers}
    labels = ("fragment-4", "fragment-4-rd3000")
    for admm in (True, False):
        rep = F.frontier(NET, _weights(), {"kind": "synthetic"}, preset("default"),
                         labels=labels, grams=grams, admm=admm)
        pat = rep["patterns"]
        assert pat["fragment-4-rd3000"]["quantizer"] == {
            "method": "layer-wise ADMM" if admm else "projection", "rd_lambda": 3000.0,
            "rd_weight": "calibration Gram diagonal"}
        assert pat["fragment-4"]["quantizer"]["rd_lambda"] == 0.0
        seg = {p["pattern"]: p for p in rep["points"] if p["squeeze"] == "segment"}
        assert seg["fragment-4-rd3000"]["crossbars"] <= seg["fragment-4"]["crossbars"]
        assert rep["header"]["admm"] is admm
    rc = main(["report", "--frontier", "--network", "resnet50", "--layers", "1",
               "--points", "fragment-4-rd-2", "--out", str(tmp_path / "f")])
    assert rc == 2 and not (tmp_path / "f").exists()


def test_pareto_counts_the_index():
    """A point that only saves index bits is on the front (three objectives); the plot's
    two-objective front leaves it out; a point beaten on every objective is never on it."""
    def pt(pattern, squeeze, ratio, top1, index):
        return {"pattern": pattern, "squeeze": squeeze, "vs_isaac": ratio, "top1": top1,
                "index_per_weight": index}
    seg, span = pt("f4", "segment", 4.8, 0.6, 7.0), pt("f4", "span", 4.5, 0.6, 3.4)
    worse = pt("f3", "span", 4.4, 0.5, 3.5)
    assert F.pareto([seg, span, worse]) == [("f4", "segment"), ("f4", "span")]
    assert F.pareto([seg, span, worse], index=False) == [("f4", "segment")]
    twin = dict(span)                     # equal on every objective: neither beats the other
    assert F.pareto([span, twin]) == [("f4", "span"), ("f4", "span")]
