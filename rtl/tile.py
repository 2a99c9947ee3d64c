"""The SME tile top: controller, grouped row scheduler, crossbar emulator, bit-splice adders."""

from __future__ import annotations

from amaranth.hdl import Module, ResetInserter
from amaranth.lib import wiring

from golden.config import SMEConfig

from .controller import Controller
from .layouts import TileComponent, host_members
from .scheduler import Scheduler
from .splice import Splice
from .xbar_emulator import XbarEmulator

__all__ = ["Tile"]


class Tile(TileComponent):
    """One SME tile (SPEC section 6)::

        i_load -> Controller --ctrl--> Scheduler -> XbarEmulator -> Splice --acc--> Controller
        i_vec  ->                                                                   -> o_vec

    Members
    -------
    i_load : In(stream.Signature(Layouts.load))    tile image words (``golden/tile_image.py``)
    i_vec : In(stream.Signature(Layouts.vin))      input vector elements
    o_vec : Out(stream.Signature(Layouts.vout))    output vector elements
    status : Out(Layouts.status)                   busy, loaded, error, clip_count
    abort : In(1)                                  back to idle at once, program kept

    Latency / throughput
    --------------------
    Issue cycles per vector (first to last step issued, inclusive) are exactly
    ``input_bits * n_steps``: one step per cycle, every lane in parallel, no bubbles.
    :attr:`latency` = ``XbarEmulator.latency + Splice.latency + 1`` = 8 cycles from the cycle
    of the last issue to the first ``o_vec`` valid; with ``n_steps = 0`` the results follow
    the last input element by :attr:`empty_latency` cycles.
    """

    def __init__(self, cfg: SMEConfig):
        super().__init__(cfg, host_members)
        self.controller = Controller(cfg)
        self.scheduler = Scheduler(cfg)
        self.xbar = XbarEmulator(cfg)
        self.splice = Splice(cfg)

    @property
    def latency(self) -> int:
        return XbarEmulator.latency + Splice.latency + 1

    @property
    def empty_latency(self) -> int:
        """Cycles from the last input element's transfer to the first output valid when the
        program has no steps: the controller's own :attr:`Controller.latency`."""
        return Controller.latency

    def elaborate(self, platform):
        m = Module()
        ctl = self.controller
        m.submodules.controller = ctl
        # The datapath holds no program state: an abort simply resets it.
        for name, block in (("scheduler", self.scheduler), ("xbar", self.xbar),
                            ("splice", self.splice)):
            m.submodules[name] = ResetInserter(self.abort)(block)
        wiring.connect(m, ctl.sched, self.scheduler.ctrl)
        wiring.connect(m, ctl.xbar, self.xbar.ctrl)
        wiring.connect(m, ctl.splice, self.splice.ctrl)
        wiring.connect(m, self.scheduler.o_stream, self.xbar.i_stream)
        wiring.connect(m, self.xbar.o_stream, self.splice.i_stream)
        wiring.connect(m, wiring.flipped(self.i_load), ctl.i_load)
        wiring.connect(m, wiring.flipped(self.i_vec), ctl.i_vec)
        wiring.connect(m, wiring.flipped(self.o_vec), ctl.o_vec)
        m.d.comb += [self.status.eq(ctl.status), ctl.abort.eq(self.abort)]
        return m
