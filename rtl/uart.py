"""8N1 UART receiver and transmitter with byte streams (Amaranth 0.5 has none in its stdlib).

The bit period is ``divisor`` clock cycles (:func:`baud_divisor` computes it from the clock and
the baud rate and refuses rates that the clock cannot hit within 2 %).  Both directions are
plain :mod:`amaranth.lib.stream` byte streams, so the host link on top never sees line timing.

Contracts (``d`` = divisor):

* :class:`UARTRx`: a byte appears on ``o_stream`` 9.5 bit periods + 2 cycles (synchroniser)
  after the falling edge of its start bit and stays valid until taken.  The receiver cannot stall
  the line: a byte that completes while the previous one is still untaken is dropped and pulses
  ``overrun``; a low stop bit drops the byte and pulses ``frame_error``.  A start bit that is high
  again at its middle is a glitch and ignored.
* :class:`UARTTx`: takes one byte every 10 bit periods (``ready`` is high only while idle, one
  cycle after the previous stop bit ends); the line idles high.
"""


from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["baud_divisor", "UARTRx", "UARTTx", "UART", "MIN_DIVISOR"]

#: Fewest clock cycles per bit that the receiver samples reliably (middle of a bit, 2-FF sync).
MIN_DIVISOR = 4


def baud_divisor(clk_freq: float, baud: float, tolerance: float = 0.02) -> int:
    """Clock cycles per bit for ``baud`` at ``clk_freq``; raises ``ValueError`` when the nearest
    divisor misses the rate by more than ``tolerance`` or is below :data:`MIN_DIVISOR`."""
    if clk_freq <= 0 or baud <= 0:
        raise ValueError(f"clock and baud rate must be positive, not {clk_freq} and {baud}")
    div = round(clk_freq / baud)
    if div < MIN_DIVISOR:
        raise ValueError(f"baud rate {baud:g} needs {clk_freq / baud:.2f} clocks per bit at "
                         f"{clk_freq / 1e6:g} MHz; the UART needs at least {MIN_DIVISOR}")
    err = abs(clk_freq / div - baud) / baud
    if err > tolerance:
        raise ValueError(f"baud rate {baud:g} is off by {err:.1%} at {clk_freq / 1e6:g} MHz "
                         f"(divisor {div}); pick a rate within {tolerance:.0%}")
    return div


def _check_divisor(divisor: int) -> int:
    if not isinstance(divisor, int) or divisor < MIN_DIVISOR:
        raise ValueError(f"divisor must be an integer of at least {MIN_DIVISOR}, not {divisor!r}")
    return divisor


class UARTRx(wiring.Component):
    """UART receiver, 8 data bits, no parity, 1 stop bit, LSB first.

    Members
    -------
    rx : In(1)
        The serial line (asynchronous; synchronised inside).
    o_stream : Out(stream.Signature(8))
        Received bytes.
    frame_error, overrun : Out(1)
        One-cycle pulses when a byte is dropped (see the module docstring).
    """

    rx: In(1, init=1)
    o_stream: Out(stream.Signature(8))
    frame_error: Out(1)
    overrun: Out(1)

    def __init__(self, divisor: int):
        self.divisor = _check_divisor(divisor)
        super().__init__()

    @property
    def latency(self) -> int:
        """Cycles from the start bit's falling edge to ``o_stream.valid``."""
        return (self.divisor // 2) + 9 * self.divisor + 2

    def elaborate(self, platform):
        m = Module()
        d = self.divisor
        rx = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, rx, init=1)

        timer = Signal(range(d))
        nbit = Signal(range(8))
        shreg = Signal(8)

        with m.If(self.o_stream.ready):
            m.d.sync += self.o_stream.valid.eq(0)

        with m.FSM():
            with m.State("Idle"):
                with m.If(~rx):
                    m.d.sync += timer.eq(d // 2 - 1)
                    m.next = "Start-Bit"
            with m.State("Start-Bit"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    m.d.sync += [timer.eq(d - 1), nbit.eq(0)]
                    m.next = "Data-Bits"
                    with m.If(rx):      # high again at mid-bit: a glitch, not a start bit
                        m.next = "Idle"
            with m.State("Data-Bits"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    m.d.sync += [timer.eq(d - 1), shreg.eq(Cat(shreg[1:], rx)),
                                 nbit.eq(nbit + 1)]
                    with m.If(nbit == 7):
                        m.next = "Stop-Bit"
            with m.State("Stop-Bit"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    with m.If(~rx):
                        m.d.comb += self.frame_error.eq(1)
                    with m.Elif(self.o_stream.valid & ~self.o_stream.ready):
                        m.d.comb += self.overrun.eq(1)
                    with m.Else():
                        m.d.sync += [self.o_stream.payload.eq(shreg), self.o_stream.valid.eq(1)]
                    m.next = "Idle"
        return m


class UARTTx(wiring.Component):
    """UART transmitter, 8N1, LSB first.

    Members
    -------
    i_stream : In(stream.Signature(8))
        Bytes to send; one is taken every 10 bit periods.
    tx : Out(1)
        The serial line (registered, idles high).
    """

    i_stream: In(stream.Signature(8))
    tx: Out(1, init=1)

    def __init__(self, divisor: int):
        self.divisor = _check_divisor(divisor)
        super().__init__()

    @property
    def cycles_per_byte(self) -> int:
        return 10 * self.divisor + 1

    def elaborate(self, platform):
        m = Module()
        d = self.divisor
        timer = Signal(range(d))
        nbit = Signal(range(10))
        shreg = Signal(10, init=0x3FF)

        m.d.comb += self.tx.eq(shreg[0])
        with m.FSM():
            with m.State("Idle"):
                m.d.comb += self.i_stream.ready.eq(1)
                with m.If(self.i_stream.valid):
                    # stop bit, data, start bit: shifted out LSB first
                    m.d.sync += [shreg.eq(Cat(Const(0, 1), self.i_stream.payload, Const(1, 1))),
                                 timer.eq(d - 1), nbit.eq(0)]
                    m.next = "Send"
            with m.State("Send"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    m.d.sync += [timer.eq(d - 1), nbit.eq(nbit + 1),
                                 shreg.eq(Cat(shreg[1:], Const(1, 1)))]
                    with m.If(nbit == 9):
                        m.next = "Idle"
        return m


class UART(wiring.Component):
    """A receiver and a transmitter sharing one ``divisor``.

    Members
    -------
    rx : In(1), tx : Out(1)
        The serial lines.
    o_stream : Out(stream.Signature(8)), i_stream : In(stream.Signature(8))
        Received and to-be-sent bytes.
    frame_error, overrun : Out(1)
        The receiver's drop pulses.
    """

    rx: In(1, init=1)
    tx: Out(1, init=1)
    o_stream: Out(stream.Signature(8))
    i_stream: In(stream.Signature(8))
    frame_error: Out(1)
    overrun: Out(1)

    def __init__(self, divisor: int):
        self.divisor = _check_divisor(divisor)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.rx = rx = UARTRx(self.divisor)
        m.submodules.tx = tx = UARTTx(self.divisor)
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx),
                     self.frame_error.eq(rx.frame_error), self.overrun.eq(rx.overrun)]
        wiring.connect(m, rx.o_stream, wiring.flipped(self.o_stream))
        wiring.connect(m, wiring.flipped(self.i_stream), tx.i_stream)
        return m
