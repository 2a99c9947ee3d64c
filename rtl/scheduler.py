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
    :attr:`latency` = 5: the first step is valid 5 cycles after ``start`` (stage 1 reads the
    descriptor memory; stage 2 registers the descriptor; stage 3 reads the row-list memory at
    its ``rowlist``; stage 4 registers the row list and bit plane t of ``x``; stage 5 picks each
    wordline's bit from the plane, so no block RAM's slow output drives another block RAM's
    address or shares a cycle with the plane selection or the wordline gather: ECP5 timing).
    Row lists cost two stages over version 1 of the tile image (latency 3); issue cycles per
    vector do not change.  With ``o_stream`` always ready, steps issue on consecutive cycles
    with no bubble between steps or input bits, so a vector takes exactly
    ``input_bits * n_steps`` issue cycles.  Stalls hold the payload.
    """

    latency = 5

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
        # Stage k = 1 .. 4 holds valid v[k], input bit ts[k] and last flag lasts[k]; stage 5 is
        # the output register (``o.valid``, ``o.payload``).
        v = [None] + [Signal(name=f"v{k}") for k in range(1, 5)]
        ts = [None] + [Signal(lay.t, name=f"t{k}") for k in range(1, 5)]
        lasts = [None] + [Signal(name=f"last{k}") for k in range(1, 5)]
        adv = [None] * 5 + [~o.valid | o.ready]        # adv[k]: stage k takes new contents
        for k in range(4, 0, -1):
            adv[k] = ~v[k] | adv[k + 1]
        fetch = running & adv[1]
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

        # Stage 1: the descriptor memories' read data.  Stage 2: the descriptors registered.
        # Stage 3: the row-list memories' read data, addressed by the registered descriptors
        # (a block RAM's output never drives another's address: ECP5 timing).
        descs = [lane_memory("desc_mem", lay.desc, cfg.tile_steps, ctrl.wr, lane, step, adv[1])
                 for lane in range(lanes)]
        descs2 = [Signal(lay.desc, name=f"desc2_{lane}") for lane in range(lanes)]
        descs3 = [Signal(lay.desc, name=f"desc3_{lane}") for lane in range(lanes)]
        rowlists = [lane_memory("rowlist_mem", lay.rowlist, cfg.effective_tile_rowlists,
                                ctrl.wr_rowlist, lane, d.rowlist, adv[3])
                    for lane, d in enumerate(descs2)]

        with m.If(adv[1]):
            m.d.sync += [v[1].eq(fetch), ts[1].eq(t), lasts[1].eq(last_step & last_bit)]
        with m.If(fetch):
            with m.If(last_step):
                m.d.sync += [step.eq(0), t.eq(t + 1)]
                with m.If(last_bit):
                    m.d.sync += running.eq(0)
            with m.Else():
                m.d.sync += step.eq(step + 1)
        with m.If(ctrl.start):
            m.d.sync += [running.eq(ctrl.n_steps != 0), step.eq(0), t.eq(0)]
        for k in range(2, 5):
            with m.If(adv[k]):
                m.d.sync += [v[k].eq(v[k - 1]), ts[k].eq(ts[k - 1]), lasts[k].eq(lasts[k - 1])]
        with m.If(adv[2]):
            m.d.sync += [d2.eq(d) for d2, d in zip(descs2, descs)]
        with m.If(adv[3]):
            m.d.sync += [d3.eq(d) for d3, d in zip(descs3, descs2)]

        # Stage 4 registers the row lists, the descriptors and input bit plane ts[3] of the
        # vector (``x`` is stable while running), so that stage 5 only picks one plane bit per
        # wordline.
        descs4 = [Signal(lay.desc, name=f"desc4_{lane}") for lane in range(lanes)]
        rows4 = [Signal(lay.rowlist, name=f"rows4_{lane}") for lane in range(lanes)]
        plane = Signal(cfg.tile_inputs)
        with m.If(adv[4]):
            m.d.sync += [d4.eq(d) for d4, d in zip(descs4, descs3)]
            m.d.sync += [r4.eq(r) for r4, r in zip(rows4, rowlists)]
            m.d.sync += plane.eq(Cat(ctrl.x[i].bit_select(ts[3], 1)
                                     for i in range(cfg.tile_inputs)))

        with m.If(adv[5]):
            m.d.sync += [o.valid.eq(v[4]), o.payload.t.eq(ts[4]), o.payload.last.eq(lasts[4])]
            for lane, (d, rows) in enumerate(zip(descs4, rows4)):
                out = o.payload.lanes[lane]
                m.d.sync += [
                    out.active.eq(d.active), out.window.eq(d.window),
                    out.colgroup.eq(d.colgroup),
                    out.tag.outgroup.eq(d.outgroup), out.tag.plane.eq(d.plane),
                    out.tag.sign.eq(d.sign), out.tag.shift.eq(d.shift),
                    out.bits.eq(Cat(row.en & plane.bit_select(row.index, 1)
                                    for row in (rows[r] for r in range(cfg.ou_rows)))),
                ]
        m.d.comb += ctrl.done.eq(~running & ~v[1] & ~v[2] & ~v[3] & ~v[4] & ~o.valid)
        return m
