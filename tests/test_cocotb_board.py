"""cocotb bench of the board core's emitted Verilog (``sme verilog --top sme_board_core``): the
host client of ``sme board run`` over a simulated serial line, against the golden model."""

import pytest

from sim.harness import env_seed, run_board


@pytest.mark.parametrize("target", ["tiny_adc1", "fpga_ice40"])
def test_board_core_verilog(target):
    """tiny_adc1 clips (clip counts over the link); fpga_ice40 is the iCEBreaker's preset."""
    run_board(target, seed=env_seed()).check()
