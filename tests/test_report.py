import csv
import json

import numpy as np
import pytest

from golden.compiler import compile_matrix
from golden.config import preset
from golden.quantize import check_pattern
from sme import report
from sme.workloads.networks import Layer, Network, isaac_dense_crossbars, resnet50
from sme.workloads.synthetic import synthetic_source, synthetic_weights

SMALL = Network("small", (Layer("c1", 3, 16, 3, 3, 1, 1, 8, 8), Layer("dw", 16, 16, 3, 3, 1, 16,
                                                                      8, 8),
                          Layer("pw", 16, 40, 1, 1, 1, 1, 8, 8), Layer("fc", 40, 10, kind="fc")))


def test_replicate_hand_example():
    # layer 0: 4 xbars, 10 cycles x 8 pixels = 80; layer 1: 1 xbar, 30 x 2 = 60
    r = report.replicate([4, 1], [10, 30], [8, 2], budget=10)
    # spare 5: layer 0 (80) -> 2 replicas (40, spare 1); slowest is now layer 1 (60) -> 2
    # replicas (30, spare 0); layer 0 is slowest again (40) but does not fit.
    assert r["replicas"] == [2, 2]
    assert r["times"] == [40, 30] and r["latency"] == 70 and r["period"] == 40
    assert not r["over_budget"] and r["crossbars_used"] == 10
    # no more replicas than pixels, however big the budget
    assert report.replicate([1], [5], [3], budget=100)["replicas"] == [3]
    over = report.replicate([6, 6], [1, 1], [4, 4], budget=10)
    assert over["over_budget"] and over["replicas"] == [1, 1] and over["latency"] == 8


def test_replicate_skips_a_layer_that_does_not_fit():
    # the slowest layer needs 8 crossbars per copy, only 3 are spare: the next one gets them
    r = report.replicate([8, 1], [100, 10], [4, 4], budget=12)
    assert r["replicas"] == [1, 4] and r["times"] == [400, 10]


def _worst_brute(p):
    n = 0
    for i in range(p.n_act):
        x, w, g = (int(p.acts[k][i]) for k in ("xbar", "window", "colgroup"))
        col = np.zeros(p.cfg.ou_cols, dtype=int)
        for r in range(p.cfg.ou_rows):
            if p.inputs[i, r] >= 0:
                col += p.cells[x, w, g, r]
        n += int(np.sum(col > p.cfg.adc_max))
    return n * p.cfg.input_bits


@pytest.mark.parametrize("mode", ["row", "segment"])
def test_worst_case_clipped(mode):
    cfg = preset("tiny")                       # ou_rows 3: lossless ADC is 2 bits
    q = np.zeros((16, 8), dtype=np.int64)
    q[:, 0] = 1                                # 16 ones in one column: sums of 3 per window
    q[::2, 5] = -3
    p = compile_matrix(q, cfg, squeeze=mode)
    assert report.worst_case_clipped(p) == 0
    low = cfg.replace(adc_bits=1)
    p1 = compile_matrix(q, low, squeeze=mode)
    got = report.worst_case_clipped(p1, chunk=2)   # several chunks
    assert got == _worst_brute(p1) > 0


def test_layer_row_counts():
    cfg = preset("default")
    layer = Layer("l", 64, 96, 3, 3, 1, 1, 5, 5)
    w = synthetic_weights(Network("n", (layer,)), seed=0)["l"]
    q = report.quantize_layer(layer, w, cfg, np.random.default_rng(0))
    check_pattern(q, cfg)
    row = report.layer_row(layer, q, cfg)
    assert row["xbars_isaac"] == isaac_dense_crossbars(layer, cfg, sign_sets=2) == 2 * 5 * 6
    assert row["xbars_sre"] == row["xbars_isaac"]
    assert row["xbars_planes"] == 2 * 8 * 5 * 1
    for s in ("row", "segment", "planes", "isaac"):
        assert row["xbars_floor"] <= row[f"xbars_{s}"]
        assert row["work_floor"] <= row[f"work_{s}"]
        assert row[f"work_{s}"] % 25 == 0             # activations per vector x 25 pixels
    assert row["work_sre"] <= row["work_isaac"]
    assert row["nonzero_weights"] == np.count_nonzero(q)
    assert sum(row["plane_ones"]) == int(sum(bin(abs(v)).count("1") for v in q.ravel()))


def test_quantize_layer_scale_modes():
    cfg = preset("default")
    layer = Layer("l", 8, 4, 1, 1)
    w = np.outer([1.0, 10.0, 100.0, 1000.0], np.linspace(-1, 1, 8)).reshape(layer.weight_shape)
    qc = report.quantize_layer(layer, w, cfg, np.random.default_rng(0), "channel")
    ql = report.quantize_layer(layer, w, cfg, np.random.default_rng(0), "layer")
    assert np.count_nonzero(qc[0]) > 0                 # per channel: small channel survives
    for c in range(1, 4):                              # channels differing only in scale
        assert np.array_equal(qc[c], qc[0])            # get the same integers
    assert np.count_nonzero(ql[0]) == 0                # per layer: it rounds to zero
    with pytest.raises(ValueError, match="scale"):
        report.quantize_layer(layer, w, cfg, np.random.default_rng(0), "tensor")


def test_build_and_write_report(tmp_path, capsys):
    cfg = preset("default")
    rep = report.build_report(SMALL, None, synthetic_source(seed=3), cfg, seed=3)
    assert [r["layer"] for r in rep["layers"]] == ["c1", "dw", "pw", "fc"]
    t = rep["totals"]
    assert t["xbars_isaac"] == sum(r["xbars_isaac"] for r in rep["layers"])
    assert rep["header"]["budget_crossbars"] == t["xbars_isaac"]
    assert rep["latency"]["isaac"]["replicas"] == [1, 1, 1, 1]
    assert rep["ratios"]["speedup_vs_isaac"]["isaac"] == 1.0
    assert rep["ratios"]["crossbars_vs_isaac"]["row"] == round(
        t["xbars_isaac"] / t["xbars_row"], 3)
    for s in report.TIMED:
        lat = rep["latency"][s]
        assert lat["over_budget"] or lat["crossbars_used"] <= t["xbars_isaac"]
        assert lat["latency"] == sum(lat["times"])
    # same seed, same figures
    again = report.build_report(SMALL, None, synthetic_source(seed=3), cfg, seed=3)
    assert again["totals"] == t

    paths = report.write_report(rep, tmp_path / "out", plots=False)
    names = sorted(p.name for p in paths)
    assert names == ["layers.csv", "ppa_layers.csv", "report.json", "summary.txt"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == names   # no temp files
    rows = list(csv.DictReader((tmp_path / "out" / "layers.csv").open()))
    assert [r["layer"] for r in rows] == ["c1", "dw", "pw", "fc"]
    assert int(rows[1]["xbars_row"]) == rep["layers"][1]["xbars_row"]
    assert json.loads((tmp_path / "out" / "report.json").read_text())["totals"] == t
    text = (tmp_path / "out" / "summary.txt").read_text()
    assert "SYNTHETIC" in text and "not measurements on trained weights" in text
    assert "ISAAC-style dense" in text and "8.7x" in text and "3.1x" in text
    # The paper's figures are quoted as the paper's, never beside our floor as if we met them.
    assert "not a reproduction" in text
    assert not [line for line in text.splitlines() if "8.7x" in line and "floor" in line]


def test_report_plots(tmp_path):
    """The plots (matplotlib is the optional ``report`` extra: skipped without it)."""
    pytest.importorskip("matplotlib")
    rep = report.build_report(SMALL, None, synthetic_source(seed=3), preset("default"), seed=3)
    paths = report.write_report(rep, tmp_path / "out")
    pngs = sorted(p.name for p in paths if p.suffix == ".png")
    assert pngs == ["bit_density.png", "crossbars.png", "cycles.png", "ppa.png"]
    assert len(paths) == 8 and len(list((tmp_path / "out").iterdir())) == 8   # no temp files
    for p in paths:
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_command_with_onnx_file(tmp_path, capsys):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(size=(8, 2, 3, 3)).astype(np.float32), "w")
    f = numpy_helper.from_array(rng.normal(size=(8 * 6 * 6, 5)).astype(np.float32), "f")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["a"], name="gconv", group=2),
         helper.make_node("Flatten", ["a"], ["b"], name="flat"),
         helper.make_node("MatMul", ["b", "f"], ["y"], name="head")], "m",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])], [w, f])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    out = tmp_path / "rep"
    assert report.main(["--network", str(path), "--out", str(out), "--no-plots",
                        "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "ONNX file m.onnx (sha256 " in text and "SYNTHETIC" not in text
    rep = json.loads((out / "report.json").read_text())
    assert [r["layer"] for r in rep["layers"]] == ["gconv", "head"]
    assert rep["layers"][0]["groups"] == 2 and rep["layers"][0]["pixels"] == 36
    assert rep["header"]["weight_source"]["format"] == "ONNX"


def test_command_errors(tmp_path, capsys):
    assert report.main(["--network", str(tmp_path / "none.onnx"), "--out", str(tmp_path)]) == 2
    assert "no such file" in capsys.readouterr().err
    assert report.main(["--network", "resnet50", "--preset", "huge", "--out",
                        str(tmp_path)]) == 2
    assert "unknown preset" in capsys.readouterr().err


def test_resnet50_first_layers_isaac_budget():
    cfg = preset("default")
    net = resnet50().subset(3)
    rep = report.build_report(net, None, synthetic_source(), cfg)
    expect = sum(isaac_dense_crossbars(layer, cfg, sign_sets=2) for layer in net.layers)
    assert rep["totals"]["xbars_isaac"] == expect


def test_command_adc_override_counts_clipping(tmp_path, capsys):
    out = tmp_path / "r"
    assert report.main(["--network", "mobilenet_v2", "--layers", "2", "--adc-bits", "2",
                        "--no-plots", "--quiet", "--out", str(out)]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["header"]["config"]["adc_bits"] == 2
    assert "--adc-bits 2" in rep["header"]["command"]
    assert rep["totals"]["clipped_row"] > 0 and rep["totals"]["clipped_segment"] > 0
    assert report.main(["--network", "mobilenet_v2", "--adc-bits", "0", "--out",
                        str(out)]) == 2
    assert "--adc-bits" in capsys.readouterr().err


def test_register_adds_report_and_digits_once():
    import argparse

    from sme.workloads import digits
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="command")
    digits.register(sub)
    report.register(sub)                       # must not register digits a second time
    assert sorted(sub.choices) == ["digits", "report"]
    args = ap.parse_args(["report", "--network", "mobilenet_v2", "--layers", "1"])
    assert args.layers == 1 and args.func is not None


def test_layer_row_one_mode_equals_both():
    """A sweep compiles only the squeeze modes it asks for: the columns it gets are the ones the
    full report row has, and the other mode's columns are absent."""
    cfg = preset("default")
    layer = Layer("l", 32, 24, 3, 3, 1, 1, 4, 4)
    w = synthetic_weights(Network("n", (layer,)), seed=1)["l"]
    both = report.layer_result(layer, 0, w, cfg, seed=1)
    seg = report.layer_result(layer, 0, w, cfg, seed=1, modes=("segment",))
    assert not any(k.endswith("_row") for k in seg) and "row" not in seg["priced"]
    for k, v in seg.items():
        if not k.startswith("seconds") and k != "priced":
            assert both[k] == v, k
    for s, v in seg["priced"].items():           # the priced stats of the modes it has
        assert both["priced"][s] == v, s
    with pytest.raises(ValueError, match="squeeze modes"):
        report.layer_row(layer, np.zeros(layer.weight_shape, np.int64), cfg, ("col",))


def test_bare_weights_need_spatial_sizes(tmp_path, capsys):
    """A table-free .npz has no output sizes: the report refuses it (it used to report 0 MACs
    and per-vector latencies) until --input-size fills them in."""
    rng = np.random.default_rng(0)
    path = tmp_path / "bare.npz"
    np.savez(path, c1=rng.normal(size=(8, 3, 3, 3)), c2=rng.normal(size=(16, 8, 3, 3)),
             fc=rng.normal(size=(10, 16)))
    out = tmp_path / "r"
    assert report.main(["--network", str(path), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "no spatial size" in err and "--input-size" in err and "c1, c2" in err
    assert not out.exists()
    assert report.main(["--network", str(path), "--input-size", "16", "--out", str(out),
                        "--quiet", "--no-plots"]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert [r["pixels"] for r in rep["layers"]] == [256, 256, 1]
    assert rep["header"]["macs"] == 256 * (8 * 27 + 16 * 72) + 160
    assert "--input-size 16" in rep["header"]["command"]


def test_report_prices_every_design_and_not_the_floor(tmp_path, capsys):
    cfg = preset("default")
    rep = report.build_report(SMALL, None, synthetic_source(seed=3), cfg, seed=3)
    assert "floor" not in rep["latency"] and rep["ratios"]["speedup_vs_isaac"].get("floor") is None
    assert all(r["cycles_row"] >= 0 and "cycles_floor" not in r for r in rep["layers"])
    ppa = rep["ppa"]
    assert sorted(ppa["schemes"]) == ["isaac", "planes", "row", "segment", "span", "sre"]
    assert ppa["speedup"]["sequential"]["isaac"] == 1.0
    for v in ppa["schemes"].values():
        assert v["energy_uj"] > 0 and v["area_mm2"] > 0 and v["latency_sequential_ms"] > 0
    text = report.format_summary(rep)
    assert "energy/img" in text and "legacy_replication" in text
    from sme.cli import main
    from sme.ppa import markdown_tables
    md = markdown_tables(rep, report.LABELS)
    assert "| legacy_replication |" in md and "| SME segment squeeze |" in md
    f = tmp_path / "report.json"
    f.write_text(json.dumps(rep))
    assert main(["ppa", "--report-json", str(f)]) == 0
    assert "| index |" in capsys.readouterr().out
    f.write_text("{}")
    assert main(["ppa", "--report-json", str(f)]) == 2
    assert "not a report.json with a ppa section" in capsys.readouterr().err
    assert report.main(["--network", "mobilenet_v2", "--tech", str(tmp_path / "no.json"),
                        "--out", str(tmp_path / "x")]) == 2
    assert "cannot read technology file" in capsys.readouterr().err
    assert report.main(["--network", "mobilenet_v2", "--budget-area", "-5",
                        "--out", str(tmp_path / "x")]) == 2
    assert "--budget-area: the value must be above 0" in capsys.readouterr().err


def test_command_point_sets_pattern_and_quantizer(tmp_path, capsys):
    """``--point``: the default is golden.config.DEFAULT_POINT (fragment pattern, rate-distortion
    quantized); ``window-3`` gives the preset's own per-weight pattern, as before the option
    existed; an unknown or malformed point exits 2."""
    import json

    from golden.config import DEFAULT_POINT
    from golden.quantize import check_pattern
    from sme.frontier import split_label

    def run(*extra):
        out = tmp_path / "_".join(extra or ("default",))
        assert report.main(["--network", "resnet50", "--layers", "2", "--out", str(out),
                            "--no-plots", "--quiet", *extra]) == 0
        return json.loads((out / "report.json").read_text())

    default, w3, f4 = run(), run("--point", "window-3"), run("--point", "fragment-4")
    base, mu = split_label(DEFAULT_POINT)
    assert default["header"]["point"] == DEFAULT_POINT and default["header"]["rd_lambda"] == mu
    assert default["header"]["config"]["pattern"] == "fragment"
    assert w3["header"]["config"] == report.preset("default").to_dict()
    assert w3["header"]["rd_lambda"] == 0.0
    # rate-distortion quantization is applied: fewer fragment-row planes than plain fragment-4
    assert sum(default["totals"]["plane_ones"]) < sum(f4["totals"]["plane_ones"])
    assert default["totals"]["work_span"] < f4["totals"]["work_span"]
    layer = report.builtin_network("resnet50").layers[0]
    cfg = report.pattern_point(report.preset("default"), base)
    w = report.layer_weights(layer, 0, None, 0, {"distribution": "laplace", "prune": 0.0})
    q = report.quantize_layer(layer, w, cfg, np.random.default_rng([0, 0, 1]), rd_lambda=mu)
    check_pattern(q.reshape(layer.cout, -1).T, cfg)
    capsys.readouterr()
    for bad in ("window-9", "fragment-4-rdx", "window-3-rd1"):
        assert report.main(["--network", "resnet50", "--layers", "1", "--point", bad,
                            "--out", str(tmp_path / "bad")]) == 2
        assert bad in capsys.readouterr().err
