"""A serial line into a simulated design, as a host-link transport.

:class:`LineTransport` is the simulator-independent part (byte queues, line time, ``read``);
:class:`SimTransport` runs it on Amaranth's simulator and ``sim/bench_board.CocotbLine`` on a
cocotb simulation of the emitted Verilog.  Either way the same :class:`sme.hostclient.Client`
that talks to a board over pyserial talks to the simulated board.
Two background coroutines model the host's UART (:meth:`LineTransport.transmit` and
:meth:`LineTransport.receive`, written once for both simulators, which supply only "set the
line", "read the line" and "wait n cycles"): one shifts queued bytes onto the design's ``rx``
line (8N1, :func:`frame_bits`, ``divisor`` cycles per bit), the other samples bytes off ``tx``
at mid-bit.  ``read`` advances the simulation until a byte arrives or a cycle budget runs out,
so the host code stays synchronous.
"""

from __future__ import annotations

import abc
import collections

from amaranth.sim import Simulator

from golden.frames import DEFAULT_BAUD, FrameDecoder, Transport

__all__ = ["frame_bits", "LineTransport", "SimTransport"]


def frame_bits(byte: int, stop: int = 1) -> list[int]:
    """Line levels of one 8N1 character, LSB first: start (0), 8 data bits, stop (``stop``)."""
    return [0] + [(byte >> i) & 1 for i in range(8)] + [stop]


class LineTransport(Transport):
    """The host's UART on a simulated line: ``to_board`` holds bytes for the design's ``rx``,
    ``from_board`` the bytes sampled off its ``tx``; a subclass moves them and implements
    :meth:`advance`.

    Time on this transport (:meth:`clock`, the ``timeout`` of :meth:`read`) is *line time*: the
    simulated line runs ``divisor`` cycles per bit, and a second is as many bit times as
    ``baud`` has, so the host's timeouts mean the same number of bytes as on a real line.
    """

    name = "simulated serial line"

    def __init__(self, divisor: int, baud: int = DEFAULT_BAUD):
        self.divisor = divisor
        self.baud = baud
        self.cycles = 0
        self.to_board: collections.deque[int] = collections.deque()
        self.from_board = bytearray()
        self.framing_errors = 0

    @abc.abstractmethod
    def advance(self, cycles: int) -> None:
        """Run the simulation ``cycles`` clock cycles on (and add them to :attr:`cycles`)."""

    def clock(self) -> float:
        return self.cycles / (self.divisor * self.baud)

    def write(self, data: bytes) -> None:
        self.to_board.extend(data)

    def read(self, n: int, timeout: float) -> bytes:
        budget = max(1, int(timeout * self.divisor * self.baud))
        step, spent = 10 * self.divisor, 0
        while not self.from_board and spent < budget:
            self.advance(step)
            spent += step
        out = bytes(self.from_board[:n])
        del self.from_board[:n]
        return out

    async def transmit(self, set_line, wait, between=None) -> None:
        """Forever: send the bytes queued in :attr:`to_board` on the line (``set_line(level)``,
        ``await wait(cycles)``); ``await between()`` (if given) runs before every byte."""
        set_line(1)
        while True:
            if between is not None:
                await between()
            if not self.to_board:
                await wait(1)
                continue
            for bit in frame_bits(self.to_board.popleft()):
                set_line(bit)
                await wait(self.divisor)

    async def receive(self, line, wait) -> None:
        """Forever: sample characters off the line (``line()`` its level) at mid-bit into
        :attr:`from_board`; a missing stop bit counts a framing error and drops the byte."""
        d = self.divisor
        while True:
            while line():
                await wait(1)
            await wait(d // 2)
            if line():
                continue                                # a glitch, not a start bit
            byte = 0
            for i in range(8):
                await wait(d)
                byte |= line() << i
            await wait(d)
            if not line():
                self.framing_errors += 1
                continue
            self.from_board.append(byte)

    def exchange(self, frame: bytes, timeout: float) -> list[tuple[int, bytes]]:
        """Send raw bytes (frames the client would never send: corrupt, unknown, cut short)
        and return the reply frames (code, payload) that follow; ``[]`` if the line stays
        quiet for ``timeout``."""
        self.write(frame)
        dec, out = FrameDecoder(), []
        while not out:
            chunk = self.read(4096, timeout)
            if not chunk:
                break
            out += dec.feed(chunk)
        return out


def _waiter(ctx):
    """``wait(n)`` for Amaranth's simulator: a plain tick for one cycle (``repeat`` builds an
    async generator, costly once per idle cycle)."""
    return lambda n: ctx.tick() if n == 1 else ctx.tick().repeat(n)


class SimTransport(LineTransport):
    """Drive ``dut.rx`` / watch ``dut.tx`` of ``dut`` (e.g. :class:`rtl.boards.BoardCore`) in
    Amaranth's simulator."""

    def __init__(self, dut, divisor: int, *, baud: int = DEFAULT_BAUD, period: float = 1e-8,
                 vcd: str | None = None, testbenches=()):
        super().__init__(divisor, baud)
        self.dut = dut
        self.period = period
        self._reset_cycles = 0
        self.sim = Simulator(dut)
        self.sim.add_clock(period)
        self.sim.add_testbench(self._drive, background=True)
        self.sim.add_testbench(self._watch, background=True)
        for tb in testbenches:                  # e.g. probes of internal signals
            self.sim.add_testbench(tb, background=True)
        self.now = 0.0
        self._vcd = self.sim.write_vcd(vcd) if vcd else None
        if self._vcd:
            self._vcd.__enter__()

    # ---- the host's UART -------------------------------------------------------------------
    async def _drive(self, ctx):
        async def reset_button():
            if self._reset_cycles:
                ctx.set(self.dut.reset_req, 1)
                await ctx.tick().repeat(self._reset_cycles)
                ctx.set(self.dut.reset_req, 0)
                self._reset_cycles = 0
        await self.transmit(lambda v: ctx.set(self.dut.rx, v), _waiter(ctx), reset_button)

    async def _watch(self, ctx):
        await self.receive(lambda: ctx.get(self.dut.tx), _waiter(ctx))

    # ---- LineTransport -----------------------------------------------------------------------
    def advance(self, cycles: int) -> None:
        self.cycles += cycles
        self.now += cycles * self.period
        self.sim.run_until(self.now)

    def pulse_reset(self, cycles: int = 4) -> None:
        """Hold ``reset_req`` for ``cycles`` (the board's reset button) before the next byte."""
        self._reset_cycles = cycles
        self.advance(cycles + 2)

    def close(self) -> None:
        if self._vcd:
            self._vcd.__exit__(None, None, None)
            self._vcd = None
