"""``sme infer``: end to end on small inputs, outputs written as a set, bad input = exit 2 and
no output."""

import csv
import json

import numpy as np
import onnx
import pytest

from sme.workloads.digits import forward, init_params, load_data
from sme.cli import main
from sme.infer import graph as G
from sme.infer.onnx_export import to_onnx


@pytest.fixture(scope="module")
def digits_npz(tmp_path_factory):
    p = init_params(np.random.default_rng(5), c1=4, c2=8)
    path = tmp_path_factory.mktemp("w") / "digits.npz"
    np.savez(path, **p)
    return path, p


def test_digits_float_reports_true_accuracy(tmp_path, digits_npz, capsys):
    path, p = digits_npz
    out = tmp_path / "o"
    assert main(["infer", "--network", "digits", "--weights", str(path), "--backend", "float",
                 "--limit", "40", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "accuracy on labelled test images" in text
    doc = json.loads((out / "infer.json").read_text())
    _, xte, _, yte = load_data(0)
    want = float(np.mean(forward(p, xte[:40]).argmax(1) == yte[:40]))
    assert doc["rows"][0]["accuracy"] == pytest.approx(want)
    assert doc["weights"]["file"] == "digits.npz"
    assert sorted(f.name for f in out.iterdir()) == [
        "fidelity.png", "infer.csv", "infer.json", "layers.csv", "predictions.csv"]
    rows = list(csv.reader((out / "predictions.csv").open()))
    assert rows[0] == ["image", "label", "float"] and len(rows) == 41


def test_digits_golden_sweep(tmp_path, digits_npz, capsys):
    path, _ = digits_npz
    out = tmp_path / "o"
    assert main(["infer", "--network", "digits", "--weights", str(path), "--limit", "20",
                 "--adc-bits", "2,lossless", "--faults", "0,1e-2", "--preset", "fpga_small",
                 "--out", str(out)]) == 0
    doc = json.loads((out / "infer.json").read_text())
    assert [(r["adc_bits"], r["faults"]) for r in doc["rows"]] == [
        (2, 0.0), (2, 0.01), (4, 0.0), (4, 0.01)]
    assert all(0 <= r["top1_agreement"] <= 1 for r in doc["rows"])
    assert doc["backend_reports"] and doc["rows"][2]["adc_lossless"]
    assert "golden window adc2 faults=0.01" in capsys.readouterr().out


def test_mobilenet_v2_real_weights_float(tmp_path, mobilenet_v2_checkpoint, capsys):
    assert main(["infer", "--backend", "float", "--limit", "2", "--calib", "1",
                 "--check-onnx"]) == 0
    text = capsys.readouterr().out
    assert "top-1 equal on 2/2 images" in text
    assert "real torchvision ImageNet weights mobilenet_v2-b0353104.pth" in text
    assert "not ImageNet accuracy" in text


def test_onnx_file_network(tmp_path, digits_npz, capsys):
    _, p = digits_npz
    f = tmp_path / "net.onnx"
    onnx.save(to_onnx(G.digits(p)), str(f))
    out = tmp_path / "o"
    assert main(["infer", "--network", str(f), "--backend", "float", "--limit", "10",
                 "--out", str(out)]) == 0
    doc = json.loads((out / "infer.json").read_text())
    _, xte, _, yte = load_data(0)
    assert doc["rows"][0]["accuracy"] == pytest.approx(
        float(np.mean(forward(p, xte[:10]).argmax(1) == yte[:10])))


def _fails(argv, capsys, match, out):
    assert main(argv + ["--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists() or list(out.iterdir()) == []


def test_bad_input_exits_2_without_output(tmp_path, digits_npz, capsys):
    path, p = digits_npz
    out = tmp_path / "o"
    # a checkpoint that does not match the network: names the keys
    bad = dict(p)
    bad.pop("b2")
    bad["extra"] = np.zeros(3)
    np.savez(tmp_path / "bad.npz", **bad)
    _fails(["infer", "--network", "digits", "--weights", str(tmp_path / "bad.npz")], capsys,
           "missing keys: b2; unexpected keys: extra", out)
    # an unknown layer type in an ONNX network
    m = to_onnx(G.digits(p))
    m.graph.node[1].op_type = "Sigmoid"
    onnx.save(m, str(tmp_path / "odd.onnx"))
    _fails(["infer", "--network", str(tmp_path / "odd.onnx"), "--backend", "float"], capsys,
           "unknown layer type 'Sigmoid'", out)
    # a directory with a non-image file
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "readme.txt").write_text("hello")
    sd = G.random_state_dict("mobilenet_v2")
    np.savez(tmp_path / "mb.npz", **sd)
    _fails(["infer", "--weights", str(tmp_path / "mb.npz"), "--images", str(tmp_path / "imgs"),
            "--backend", "float"], capsys, "readme.txt: not a readable image", out)
    _fails(["infer", "--network", "resnet50"], capsys, "no pretrained ResNet-50", out)
    _fails(["infer", "--network", "digits", "--faults", "2"], capsys,
           "--faults must be a fraction", out)
    _fails(["infer", "--network", "vgg"], capsys, "not one of mobilenet_v2", out)
    _fails(["infer", "--network", "digits", "--weights", str(path), "--backend", "float",
            "--adc-bits", "3"], capsys, "apply to the golden and rtl backends", out)


def test_write_set_is_all_or_nothing(tmp_path, monkeypatch):
    from sme.infer import cli
    cli.write_set(tmp_path, {"a": b"1", "b": b"2"})
    real = open

    def failing_open(f, *a, **k):
        if str(f).endswith("/b"):
            raise OSError(28, "No space left on device")
        return real(f, *a, **k)

    monkeypatch.setattr("builtins.open", failing_open)
    with pytest.raises(OSError):
        cli.write_set(tmp_path, {"a": b"new", "b": b"new"})
    monkeypatch.undo()
    assert (tmp_path / "a").read_bytes() == b"1"          # old set intact, no staging left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def test_errors_exit_2_under_python_m(tmp_path, digits_npz):
    # `python -m sme.cli` imports the CLI twice (__main__ and sme.cli): errors must still map
    import subprocess
    import sys
    path, _ = digits_npz
    r = subprocess.run([sys.executable, "-m", "sme.cli", "infer", "--network", "digits",
                        "--weights", str(path), "--backend", "float", "--limit", "0"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "no images to evaluate" in r.stderr
