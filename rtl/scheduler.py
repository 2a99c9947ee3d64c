"""Grouped row scheduler: walks the step-major descriptor memory once per input bit."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.config import SMEConfig

from .layouts import Layouts, MemWriteSignature, TileComponent

__all__ = ["Scheduler", "ScheduleControlSignature"]


class ScheduleControlSignature(wiring.Signature):
    """Controller -> scheduler (directions seen from the controller).

    ``start`` (pulse) begins a vector: ``n_steps`` steps for each of the ``input_bits`` input
    bits; ``x`` is the input vector, held stable until ``done``; ``done`` is high while the
    scheduler has nothing left to issue; ``wr`` writes descriptor memory word ``addr`` (a step)
    of lane ``lane``.
    """

    def __init__(self, lay: Layouts):
        super().__init__({
            "start": Out(1), "n_steps": Out(lay.n_steps), "x": Out(lay.x), "done": In(1),
            "wr": Out(MemWriteSignature(lay.lane, lay.step_addr, lay.desc))})


class Scheduler(TileComponent):
    """Issues one step (one OU activation per crossbar lane) per cycle when nothing stalls.

    For t in 0 .. input_bits-1 (outer loop) and s in 0 .. n_steps-1 (inner loop) it reads step s
    of every lane's descriptor memory and emits a ``Layouts.step`` payload on ``o_stream``: the
    descriptor fields, and ``bits[r]`` = bit t of ``x[rows[r].index]`` where ``rows[r].en``.
    Payload ``last`` marks the final step of the vector.  ``n_steps = 0`` issues nothing.

    Members
    -------
    ctrl : In(ScheduleControlSignature)
    o_stream : Out(stream.Signature(Layouts.step))

    Latency / throughput
    --------------------
    :attr:`latency` = 3: the first step is valid 3 cycles after ``start`` (stage 1 reads the
    descriptor memory; stage 2 registers its data and bit plane t of ``x``; stage 3 picks each
    wordline's bit from the plane, so neither the block RAM's slow output nor the plane
    selection shares a cycle with the wordline gather: ECP5 timing).  With ``o_stream``
    always ready, steps issue on consecutive cycles with no bubble between steps or input bits,
    so a vector takes exactly ``input_bits * n_steps`` issue cycles.  Stalls hold the payload.
    """

    latency = 3

    def __init__(self, cfg: SMEConfig):
        super().__init__(cfg, lambda lay: {"ctrl": In(ScheduleControlSignature(lay)),
                                           "o_stream": Out(stream.Signature(lay.step))})

    def elaborate(self, platform):
        m = Module()
        cfg, lay, ctrl = self._cfg, self._lay, self.ctrl
        lanes = cfg.tile_xbars

        running = Signal()
        step = Signal(lay.step_addr)
        t = Signal(lay.t)
        v1 = Signal()                       # stage 1: descriptor memory read data
        t1 = Signal(lay.t)
        last1 = Signal()
        o = self.o_stream

        v2 = Signal()                       # stage 2: descriptors registered
        t2 = Signal(lay.t)
        last2 = Signal()
        adv3 = ~o.valid | o.ready
        adv2 = ~v2 | adv3
        adv1 = ~v1 | adv2
        fetch = running & adv1
        last_step = (step == ctrl.n_steps - 1)
        last_bit = (t == cfg.input_bits - 1)

        descs = []
        for lane in range(lanes):
            mem = memory.Memory(shape=lay.desc, depth=cfg.tile_steps, init=[])
            m.submodules[f"desc_mem{lane}"] = mem
            wp = mem.write_port()
            rp = mem.read_port(domain="sync", transparent_for=())
            m.d.comb += [wp.addr.eq(ctrl.wr.addr), wp.data.eq(ctrl.wr.data),
                         wp.en.eq(ctrl.wr.en & (ctrl.wr.lane == lane)),
                         rp.addr.eq(step), rp.en.eq(adv1)]
            descs.append(rp.data)

        with m.If(adv1):
            m.d.sync += [v1.eq(fetch), t1.eq(t), last1.eq(last_step & last_bit)]
        with m.If(fetch):
            with m.If(last_step):
                m.d.sync += [step.eq(0), t.eq(t + 1)]
                with m.If(last_bit):
                    m.d.sync += running.eq(0)
            with m.Else():
                m.d.sync += step.eq(step + 1)
        with m.If(ctrl.start):
            m.d.sync += [running.eq(ctrl.n_steps != 0), step.eq(0), t.eq(0)]

        # Stage 2 registers the descriptors and input bit plane t1 of the vector (``x`` is
        # stable while running), so that stage 3 only picks one plane bit per wordline.
        descs2 = [Signal(lay.desc, name=f"desc2_{lane}") for lane in range(lanes)]
        plane = Signal(cfg.tile_inputs)
        with m.If(adv2):
            m.d.sync += [v2.eq(v1), t2.eq(t1), last2.eq(last1)]
            m.d.sync += [d2.eq(d) for d2, d in zip(descs2, descs)]
            m.d.sync += plane.eq(Cat(ctrl.x[i].bit_select(t1, 1)
                                     for i in range(cfg.tile_inputs)))

        with m.If(adv3):
            m.d.sync += [o.valid.eq(v2), o.payload.t.eq(t2), o.payload.last.eq(last2)]
            for lane, d in enumerate(descs2):
                out = o.payload.lanes[lane]
                m.d.sync += [
                    out.active.eq(d.active), out.window.eq(d.window),
                    out.colgroup.eq(d.colgroup),
                    out.tag.outgroup.eq(d.outgroup), out.tag.plane.eq(d.plane),
                    out.tag.sign.eq(d.sign), out.tag.shift.eq(d.shift),
                    out.bits.eq(Cat(row.en & plane.bit_select(row.index, 1)
                                    for row in (d.rows[r] for r in range(cfg.ou_rows)))),
                ]
        m.d.comb += ctrl.done.eq(~running & ~v1 & ~v2 & ~o.valid)
        return m
