"""Crossbar emulator: a synthesizable stand-in for the tile's ReRAM arrays (SPEC section 6)."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.config import SMEConfig

from .layouts import Layouts, MemWriteSignature, TileComponent

__all__ = ["XbarEmulator", "XbarControlSignature"]


class XbarControlSignature(wiring.Signature):
    """Controller -> emulator (directions seen from the controller): ``wr`` writes cell memory
    word ``addr = window*colgroups + colgroup`` of lane ``lane`` (a ``Layouts.cell_word``);
    ``busy`` is high while an activation is in flight."""

    def __init__(self, lay: Layouts):
        super().__init__({
            "wr": Out(MemWriteSignature(lay.lane, lay.cell_addr, lay.cell_word)),
            "busy": In(1)})


class XbarEmulator(TileComponent):
    """One cell memory per crossbar lane (``windows*colgroups`` words of
    ``ou_rows*ou_cols*cell_bits`` bits: one word per OU), read once per activation.

    For each active lane of an ``i_stream`` step it reads the OU word (window, colgroup) and
    returns, for every column c, ``sample[c] = min(sum_r bits[r] * cell[r][c], adc_max)`` and
    ``clips[c] = (sum > adc_max)``, with the descriptor's tag passed through.  Inactive lanes
    return ``active = 0``.

    Members
    -------
    ctrl : In(XbarControlSignature)
    i_stream : In(stream.Signature(Layouts.step))
    o_stream : Out(stream.Signature(Layouts.samples))

    Latency / throughput
    --------------------
    :attr:`latency` = 3 cycles from an ``i_stream`` transfer to the ``o_stream`` valid (read,
    registered word, column sums); one step per cycle; ``i_stream.ready`` follows ``o_stream``
    backpressure.  The registered word costs one cycle over the first design (latency 2).
    """

    latency = 3

    def __init__(self, cfg: SMEConfig):
        super().__init__(cfg, lambda lay: {"ctrl": In(XbarControlSignature(lay)),
                                           "i_stream": In(stream.Signature(lay.step)),
                                           "o_stream": Out(stream.Signature(lay.samples))})

    def elaborate(self, platform):
        m = Module()
        cfg, lay = self._cfg, self._lay
        i, o, ctrl = self.i_stream, self.o_stream, self.ctrl

        v1, v2 = Signal(), Signal()
        s1 = Signal(lay.step)                  # stage 1: the step, beside the cell read
        s2 = Signal(lay.step)                  # stage 2: the step, beside the registered words
        adv3 = ~o.valid | o.ready
        adv2 = ~v2 | adv3
        adv1 = ~v1 | adv2
        m.d.comb += i.ready.eq(adv1)
        with m.If(adv1):
            m.d.sync += [v1.eq(i.valid), s1.eq(i.payload)]
        with m.If(adv2):
            m.d.sync += [v2.eq(v1), s2.eq(s1)]

        with m.If(adv3):
            m.d.sync += [o.valid.eq(v2), o.payload.t.eq(s2.t), o.payload.last.eq(s2.last)]

        for lane in range(cfg.tile_xbars):
            mem = memory.Memory(shape=lay.cell_word, depth=cfg.windows * cfg.colgroups, init=[])
            m.submodules[f"cell_mem{lane}"] = mem
            wp = mem.write_port()
            rp = mem.read_port(domain="sync", transparent_for=())
            act = i.payload.lanes[lane]
            m.d.comb += [wp.addr.eq(ctrl.wr.addr), wp.data.eq(ctrl.wr.data),
                         wp.en.eq(ctrl.wr.en & (ctrl.wr.lane == lane)),
                         rp.addr.eq(act.window * cfg.colgroups + act.colgroup),
                         rp.en.eq(adv1)]
            # Stage 2 registers the cell word: a block RAM's output never feeds the column
            # sums in its own cycle (the ECP5 build maps these memories to block RAM).
            word = Signal(lay.cell_word, name=f"cells2_{lane}")
            with m.If(adv2):
                m.d.sync += word.eq(rp.data)
            a2 = s2.lanes[lane]
            out = o.payload.lanes[lane]
            with m.If(adv3):
                m.d.sync += [out.active.eq(a2.active), out.tag.eq(a2.tag)]
                for c in range(cfg.ou_cols):
                    total = sum((word[r][c] * a2.bits[r] for r in range(cfg.ou_rows)))
                    over = total > cfg.adc_max
                    m.d.sync += [out.clips[c].eq(a2.active & over),
                                 out.samples[c].eq(Mux(over, cfg.adc_max, total))]
        m.d.comb += ctrl.busy.eq(v1 | v2 | o.valid)
        return m
