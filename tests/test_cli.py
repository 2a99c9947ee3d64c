import json
import subprocess
import sys

import numpy as np
import pytest

from golden.quantize import project_levels
from golden.config import preset
from sme.cli import main


def sme(*args):
    return main([str(a) for a in args])


@pytest.fixture
def layer(tmp_path):
    rng = np.random.default_rng(0)
    w = rng.laplace(size=(40, 12))
    np.save(tmp_path / "w.npy", w)
    x = rng.integers(0, 256, size=(5, 40))
    np.save(tmp_path / "x.npy", x)
    return tmp_path, w, x


@pytest.mark.parametrize("squeeze", ["row", "segment"])
def test_compile_run_stats(layer, squeeze, capsys):
    d, w, x = layer
    assert sme("compile", d / "w.npy", "-o", d / "p.smeprog", "--squeeze", squeeze) == 0
    assert sme("run", d / "p.smeprog", "--inputs", d / "x.npy", "-o", d / "y.npy") == 0
    from golden.program import load
    q = load(d / "p.smeprog").dense_q()
    assert np.array_equal(np.load(d / "y.npy"), x @ q)
    capsys.readouterr()
    assert sme("stats", d / "p.smeprog", "--json") == 0
    rep = json.loads(capsys.readouterr().out)
    assert set(rep["baselines"]) == {"isaac", "sre", "planes"}
    assert rep["last_run"]["clipped"] == 0 and rep["last_run"]["vectors"] == 5
    assert sme("stats", d / "p.smeprog") == 0
    assert "baseline isaac" in capsys.readouterr().out


def test_integer_mode_rejects_off_pattern(layer, capsys):
    d, _, _ = layer
    np.save(d / "q.npy", np.array([[9, 8]]))
    assert sme("compile", d / "q.npy", "-o", d / "p.smeprog", "--integer") == 2
    assert "violates the 'window' pattern" in capsys.readouterr().err
    assert not (d / "p.smeprog").exists()
    np.save(d / "q.npy", project_levels(np.array([[9.0, -100.0]]), preset("default")))
    assert sme("compile", d / "q.npy", "-o", d / "p.smeprog", "--integer") == 0


@pytest.mark.parametrize("content, msg", [
    (b"garbage", "not a .npy file (no NumPy header"),
    (b"\x93NUMPY\x01\x00garbage", "not a valid .npy"),
    (object(), "Is a directory"),
    (None, "does not exist"),
])
def test_bad_weight_files(tmp_path, content, msg, capsys):
    if isinstance(content, bytes):
        (tmp_path / "w.npy").write_bytes(content)
    elif content is not None:       # a directory where the file should be
        (tmp_path / "w.npy").mkdir()
    assert sme("compile", tmp_path / "w.npy", "-o", tmp_path / "p") == 2
    assert msg in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


def test_bad_shapes_and_values(tmp_path, capsys):
    np.save(tmp_path / "w.npy", np.ones(5))
    assert sme("compile", tmp_path / "w.npy", "-o", tmp_path / "p") == 2
    np.save(tmp_path / "w.npy", np.array([[np.nan, 1.0]]))
    assert sme("compile", tmp_path / "w.npy", "-o", tmp_path / "p") == 2
    err = capsys.readouterr().err
    assert "2-D" in err and "NaN" in err


def test_run_rejects_bad_inputs_and_keeps_old_output(layer, capsys):
    d, _, x = layer
    sme("compile", d / "w.npy", "-o", d / "p.smeprog")
    np.save(d / "y.npy", np.arange(3))
    np.save(d / "bad.npy", x + 300)
    assert sme("run", d / "p.smeprog", "--inputs", d / "bad.npy", "-o", d / "y.npy") == 2
    assert "[0, 255]" in capsys.readouterr().err
    assert np.array_equal(np.load(d / "y.npy"), np.arange(3))
    np.save(d / "bad.npy", x[:, :30])
    assert sme("run", d / "p.smeprog", "--inputs", d / "bad.npy", "-o", d / "y.npy") == 2


def test_corrupt_program_clear_error(layer, capsys):
    d, _, _ = layer
    sme("compile", d / "w.npy", "-o", d / "p.smeprog")
    data = bytearray((d / "p.smeprog").read_bytes())
    data[100] ^= 0xFF
    (d / "p.smeprog").write_bytes(bytes(data))
    assert sme("stats", d / "p.smeprog") == 2
    assert "checksum mismatch" in capsys.readouterr().err


def test_console_script_entry_point(tmp_path):
    r = subprocess.run([sys.executable, "-m", "sme.cli", "demo", "--preset", "tiny",
                        "--out", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "matches x @ W: True" in r.stdout
    from golden.config import DEFAULT_POINT      # the default point, in every squeeze mode
    assert f"point {DEFAULT_POINT}, pattern fragment" in r.stdout
    assert "span squeeze:" in r.stdout and "span squeeze, random stalls" in r.stdout


def test_demo_with_a_clipping_adc_is_checked(tmp_path, capsys, monkeypatch):
    """``sme demo --adc-bits``: results that clip are checked against the block models'
    issue-by-issue evaluation; a VMM whose clipped results are wrong fails the demo."""
    args = ("demo", "--preset", "tiny", "--adc-bits", "1", "--out", tmp_path)
    assert sme(*args) == 0
    out = capsys.readouterr().out
    from golden.compiler import SQUEEZE_MODES
    assert out.count("vectors 0-1 match the block models with clipping: True") == len(SQUEEZE_MODES)
    from golden import vmm
    good = vmm.run

    def off_by_one(p, X, **kw):                 # a mutant VMM: clipped results one too high
        Y, clipped = good(p, X, **kw)
        return Y + (clipped > 0), clipped
    monkeypatch.setattr(vmm, "run", off_by_one)
    assert sme(*args) == 1
    assert "with clipping: False" in capsys.readouterr().out


def test_run_sidecar_failure_only_warns(layer, capsys):
    """Y.npy is the result: a .lastrun.json that cannot be written (here a directory is in its
    place; a read-only folder behaves the same) gives a warning and exit 0."""
    d, w, x = layer
    assert sme("compile", d / "w.npy", "-o", d / "p.smeprog") == 0
    (d / "p.smeprog.lastrun.json").mkdir()
    capsys.readouterr()
    assert sme("run", d / "p.smeprog", "--inputs", d / "x.npy", "-o", d / "y.npy") == 0
    err = capsys.readouterr().err
    assert err.startswith("sme run: warning: ") and "lastrun.json" in err
    assert np.load(d / "y.npy").shape == (5, 12)


def test_unexpected_errors_are_bugs_with_a_traceback_on_debug(layer, capsys, monkeypatch):
    import sme.cli as cli
    d, _, _ = layer

    def boom(args):
        raise KeyError("something internal")
    monkeypatch.setattr(cli, "cmd_stats", boom)
    real = cli.build_parser

    def build(*a, **k):
        ap = real(*a, **k)
        ap._subparsers._group_actions[0].choices["stats"].set_defaults(func=boom)
        return ap
    monkeypatch.setattr(cli, "build_parser", build)
    assert cli.main(["stats", "x"]) == cli.EXIT_BUG
    err = capsys.readouterr().err
    assert "internal error: KeyError" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert cli.main(["stats", "x", "--debug"]) == cli.EXIT_BUG
    assert "Traceback" in capsys.readouterr().err


def test_explain_covers_every_expected_class():
    import zipfile

    from sme.cli import explain
    assert explain(OSError(13, "Permission denied", "out/y.npy")) == \
        "'out/y.npy': Permission denied"
    assert "out of memory" in explain(MemoryError())
    assert "nested too deeply" in explain(RecursionError())
    assert "BadZipFile" in explain(zipfile.BadZipFile("bad"))
    assert explain(KeyError("x")) is None and explain(TypeError("x")) is None


def test_compile_point_quantizes_and_records_it(tmp_path, capsys):
    """``sme compile --point``: the pattern point's config, rate-distortion quantized (fewer
    fragment-row planes than the plain point), recorded in the program's meta; with --pattern
    too, exit 2."""
    from golden.config import pattern_point
    from golden.program import load
    from golden.quantize import check_pattern, fragment_planes
    w = np.random.default_rng(3).laplace(0, 1, (64, 32))
    np.save(tmp_path / "w.npy", w)
    progs = {}
    for point in ("fragment-4", "fragment-4-rd1"):
        out = tmp_path / f"{point}.smeprog"
        assert sme("compile", tmp_path / "w.npy", "-o", out, "--point", point,
                   "--squeeze", "span") == 0
        progs[point] = load(out)
    p, rd = progs["fragment-4"], progs["fragment-4-rd1"]
    assert rd.meta["point"] == "fragment-4-rd1" and rd.meta["rd_lambda"] > 0
    assert "rd_lambda" not in p.meta
    cfg = pattern_point(preset("default"), "fragment-4")
    assert rd.cfg == p.cfg == cfg
    check_pattern(rd.dense_q(), cfg)
    assert fragment_planes(rd.dense_q(), cfg) < fragment_planes(p.dense_q(), cfg)
    capsys.readouterr()
    assert sme("compile", tmp_path / "w.npy", "-o", tmp_path / "x.smeprog", "--point",
               "fragment-4", "--pattern", "window") == 2
    assert "not both" in capsys.readouterr().err
