"""cocotb bench of the board core (UART + host link + tile, ``rtl/boards.py``) in emitted Verilog.

The host side is the project's own: :class:`sme.hostclient.Client`, the code ``sme board run``
uses on a real serial port, runs in a cocotb bridge thread and talks to the Verilog's ``rx`` /
``tx`` pins through :class:`CocotbLine`, a simulated serial line (8N1, ``divisor`` clocks per
bit from the sidecar).  So this checks the Verilog a vendor flow would take
(``sme verilog --top sme_board_core``) with the same protocol code as the hardware.

``board_programs``: load every program in ``SME_PROGRAMS``, run vectors, compare outputs and
the clip count with :func:`golden.vmm.run`; on the way a corrupted frame (CRC error, nothing
changes), an unknown command, and the RESET command (the program is gone).
"""

from __future__ import annotations

import os

import cocotb
import numpy as np
from cocotb.task import bridge, resume
from cocotb.triggers import ClockCycles

from golden.frames import Cmd, LinkError, encode_request
from golden import program as prog_mod
from golden import vmm

from .tb import Bench, env_int, env_str
from .uart_line import LineTransport

# The one import of sim/ from the applications: this bench exists to run the host client of
# ``sme board run`` against the Verilog, so it takes that client and not a copy of it.
from sme import hostclient  # noqa: E402


class CocotbLine(LineTransport):
    """The host's UART on the design's ``rx``/``tx`` pins (line time as in
    :class:`sim.uart_line.LineTransport`); called from a cocotb bridge thread."""

    name = "simulated serial line (cocotb)"

    def __init__(self, dut, clk, divisor: int, baud: int):
        super().__init__(divisor, baud)
        self.dut, self.clk = dut, clk
        cocotb.start_soon(self._drive())
        cocotb.start_soon(self._watch())

    def _set_rx(self, level: int) -> None:
        self.dut.rx.value = level

    async def _drive(self):
        await self.transmit(self._set_rx, lambda n: ClockCycles(self.clk, n))

    async def _watch(self):
        await self.receive(lambda: int(self.dut.tx.value), lambda n: ClockCycles(self.clk, n))

    @resume
    async def _wait(self, cycles: int) -> None:
        await ClockCycles(self.clk, cycles)

    def advance(self, cycles: int) -> None:
        self._wait(cycles)
        self.cycles += cycles


@cocotb.test()
async def board_programs(dut):
    b = Bench(dut, salt=7)
    bc = b.sidecar["board_core"]
    dut.reset_req.value = 0
    dut.rx.value = 1
    await b.reset()
    line = CocotbLine(dut, b.clk, bc["divisor"], bc["baud"])
    paths = [p for p in env_str("SME_PROGRAMS", "").split(os.pathsep) if p]
    assert paths, "SME_PROGRAMS names no program file"
    n_vec = env_int("SME_VECTORS", 3)

    @bridge
    def host():
        client = hostclient.Client(line, timeout=1.0)
        st = client.status()
        assert (st.loaded, st.config_id) == (False, b.sidecar["derived"]["config_id"]), \
            b.msg(f"status after reset: {st}")
        for path in paths:
            prog = prog_mod.load(path)
            X = b.rng.integers(0, b.cfg.max_input + 1, size=(n_vec, prog.shape[0]))
            Y_ref, clipped = vmm.run(prog, X)
            client.load(prog)
            # A corrupted RUN frame: CRC error, nothing queued or run.
            frame = bytearray(encode_request(Cmd.RUN, X[0].astype("u1").tobytes()))
            frame[5] ^= 0x10
            assert line.exchange(bytes(frame), 0.5) == \
                [(Cmd.ERROR, bytes([LinkError.CRC, Cmd.RUN]))], b.msg("corrupt RUN")
            assert line.exchange(encode_request(0x42), 0.5) == \
                [(Cmd.ERROR, bytes([LinkError.UNKNOWN_CMD, 0x42]))], b.msg("unknown")
            Y = client.run(X, prog.cfg)
            st = client.status()
            bad = np.argwhere(Y != Y_ref)
            assert not len(bad), b.msg(f"{path}: {len(bad)} results differ, first at "
                                       f"{bad[0].tolist()}: {Y[tuple(bad[0])]} vs "
                                       f"{Y_ref[tuple(bad[0])]}")
            assert st.clip_count == clipped, b.msg(f"clip count {st.clip_count} vs {clipped}")
            assert st.bad_frames >= 2 and st.results == 0, b.msg(f"status {st}")
        client.reset()
        assert not client.status().loaded, b.msg("RESET kept the program")
        assert line.framing_errors == 0, b.msg("framing errors on the board's tx")

    await host()
