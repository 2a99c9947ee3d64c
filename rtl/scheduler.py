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
    of lane ``lane``; ``wr_rowlist`` writes row-list memory word ``addr`` (a row-list id) of
    lane ``lane``.
    """

    def __init__(self, lay: Layouts):
        super().__init__({
            "start": Out(1), "n_steps": Out(lay.n_steps), "x": Out(lay.x), "done": In(1),
            "wr": Out(MemWriteSignature(lay.lane, lay.step_addr, lay.desc)),
            "wr_rowlist": Out(MemWriteSignature(lay.lane, lay.rowlist_addr, lay.rowlist))})


class Scheduler(TileComponent):
    """Issues one step (one OU activation per crossbar lane) per cycle when nothing stalls.

    For t in 0 .. input_bits-1 (outer loop) and s in 0 .. n_steps-1 (inner loop) it reads step s
    of every lane's descriptor memory, then the row list the descriptor points to (``rowlist``)
    in the lane's row-list memory, and emits a ``Layouts.step`` payload on ``o_stream``: the
    descriptor fields, and ``bits[r]`` = bit t of ``x[rows[r].index]`` where ``rows[r].en``, for
    the rows of that row list.  Payload ``last`` marks the final step of the vector.
    ``n_steps = 0`` issues nothing.

    Members
    -------
    ctrl : In(ScheduleControlSignature)
    o_stream : Out(stream.Signature(Layouts.step))

    Latency / throughput
    --------------------
    :attr:`latency` = 4: the first step is valid 4 cycles after ``start`` (stage 1 reads the
    descriptor memory; stage 2 reads the row-list memory at the descriptor's ``rowlist``, straight
    from the descriptor memory's output, and registers the descriptor; stage 3 registers the
    row list and bit plane t of ``x``; stage 4 picks each wordline's bit from the plane, so
    neither a block RAM's slow output nor the plane selection shares a cycle with the wordline
    gather: ECP5 timing).  Row lists cost one stage over version 1 of the tile image (latency
    3); issue cycles per vector do not change.  With ``o_stream`` always ready, steps issue on
    consecutive cycles with no bubble between steps or input bits, so a vector takes exactly
    ``input_bits * n_steps`` issue cycles.  Stalls hold the payload.
    """

    latency = 4

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
        o = self.o_stream
        # valid, input bit and last flag of stages 1 (descriptor read), 2 (row list read) and
        # 3 (registered row list and bit plane)
        v1, v2, v3 = Signal(), Signal(), Signal()
        t1, t2, t3 = Signal(lay.t), Signal(lay.t), Signal(lay.t)
        last1, last2, last3 = Signal(), Signal(), Signal()
        adv4 = ~o.valid | o.ready
        adv3 = ~v3 | adv4
        adv2 = ~v2 | adv3
        adv1 = ~v1 | adv2
        fetch = running & adv1
        last_step = (step == ctrl.n_steps - 1)
        last_bit = (t == cfg.input_bits - 1)

        def lane_memory(name, shape, depth, wr, lane, addr, en):
            """Lane ``lane``'s memory, written through ``wr``, read (registered) at ``addr``
            when ``en``; returns its read data."""
            mem = memory.Memory(shape=shape, depth=depth, init=[])
            m.submodules[f"{name}{lane}"] = mem
            wp = mem.write_port()
            rp = mem.read_port(domain="sync", transparent_for=())
            m.d.comb += [wp.addr.eq(wr.addr), wp.data.eq(wr.data),
                         wp.en.eq(wr.en & (wr.lane == lane)), rp.addr.eq(addr), rp.en.eq(en)]
            return rp.data

        descs = [lane_memory("desc_mem", lay.desc, cfg.tile_steps, ctrl.wr, lane, step, adv1)
                 for lane in range(lanes)]
        # Stage 2 reads each lane's row list at the descriptor's ``rowlist``, straight from the
        # descriptor memory's output (a block RAM to block RAM address path, no logic between).
        rowlists = [lane_memory("rowlist_mem", lay.rowlist, cfg.effective_tile_rowlists,
                                ctrl.wr_rowlist, lane, d.rowlist, adv2)
                    for lane, d in enumerate(descs)]

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

        # Stage 2: the descriptors registered beside the row lists read (above).
        descs2 = [Signal(lay.desc, name=f"desc2_{lane}") for lane in range(lanes)]
        with m.If(adv2):
            m.d.sync += [v2.eq(v1), t2.eq(t1), last2.eq(last1)]
            m.d.sync += [d2.eq(d) for d2, d in zip(descs2, descs)]

        # Stage 3 registers the row lists, the descriptors and input bit plane t2 of the vector
        # (``x`` is stable while running), so that stage 4 only picks one plane bit per wordline.
        descs3 = [Signal(lay.desc, name=f"desc3_{lane}") for lane in range(lanes)]
        rows3 = [Signal(lay.rowlist, name=f"rows3_{lane}") for lane in range(lanes)]
        plane = Signal(cfg.tile_inputs)
        with m.If(adv3):
            m.d.sync += [v3.eq(v2), t3.eq(t2), last3.eq(last2)]
            m.d.sync += [d3.eq(d) for d3, d in zip(descs3, descs2)]
            m.d.sync += [r3.eq(r) for r3, r in zip(rows3, rowlists)]
            m.d.sync += plane.eq(Cat(ctrl.x[i].bit_select(t2, 1)
                                     for i in range(cfg.tile_inputs)))

        with m.If(adv4):
            m.d.sync += [o.valid.eq(v3), o.payload.t.eq(t3), o.payload.last.eq(last3)]
            for lane, (d, rows) in enumerate(zip(descs3, rows3)):
                out = o.payload.lanes[lane]
                m.d.sync += [
                    out.active.eq(d.active), out.window.eq(d.window),
                    out.colgroup.eq(d.colgroup),
                    out.tag.outgroup.eq(d.outgroup), out.tag.plane.eq(d.plane),
                    out.tag.sign.eq(d.sign), out.tag.shift.eq(d.shift),
                    out.bits.eq(Cat(row.en & plane.bit_select(row.index, 1)
                                    for row in (rows[r] for r in range(cfg.ou_rows)))),
                ]
        m.d.comb += ctrl.done.eq(~running & ~v1 & ~v2 & ~v3 & ~o.valid)
        return m
