"""A register slice for ``lib.stream`` interfaces: every output comes from a flip-flop.

:class:`SkidBuffer` cuts the combinational paths between two stream endpoints in both directions
(``valid``/``payload`` downstream, ``ready`` upstream) at full throughput: one transfer per cycle
in steady state, with a second ("skid") register that catches the transfer accepted in the
cycle the consumer stalls.  Latency is one cycle; order, count and payloads are unchanged.

The board core (``rtl/boards.py``) puts one between the host link and each tile input stream: the
tile's controller decodes ``valid`` and the payload deep into its next-state logic, and without
the slice the link's FSM and that logic formed one path (the ECP5 critical path at 100 MHz).
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SkidBuffer"]


class SkidBuffer(wiring.Component):
    """Two-entry stream register slice.

    Members
    -------
    i : In(stream.Signature(shape))    upstream; ``i.ready`` is a register (``~skid_valid``)
    o : Out(stream.Signature(shape))   downstream; ``o.valid`` and ``o.payload`` are registers
    """

    def __init__(self, shape):
        self._shape = shape
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform):
        m = Module()
        i, o = self.i, self.o
        skid = Signal(self._shape)
        skid_valid = Signal()
        m.d.comb += i.ready.eq(~skid_valid)

        with m.If(o.ready | ~o.valid):
            # the output register is free (or being emptied) this cycle: refill it, first from
            # the skid register, else straight from upstream
            with m.If(skid_valid):
                m.d.sync += [o.payload.eq(skid), o.valid.eq(1), skid_valid.eq(0)]
            with m.Else():
                m.d.sync += [o.payload.eq(i.payload), o.valid.eq(i.valid)]
        with m.Elif(i.valid & ~skid_valid):
            # the consumer stalls while a transfer is accepted: park it
            m.d.sync += [skid.eq(i.payload), skid_valid.eq(1)]
        return m
