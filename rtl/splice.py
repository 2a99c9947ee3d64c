"""Bit-splice peripheral adders: shift-and-add of ADC samples into the output accumulators."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from golden.config import SMEConfig

from .layouts import Layouts, TileComponent

__all__ = ["Splice", "SpliceControlSignature"]


class SpliceControlSignature(wiring.Signature):
    """Controller <-> splice (directions seen from the controller): ``clear`` (pulse) zeroes the
    accumulators; ``acc`` are the accumulators; ``clip_delta`` is the number of clipped samples
    added in this cycle; ``busy`` is high while a sample is in flight."""

    def __init__(self, lay: Layouts):
        super().__init__({"clear": Out(1), "acc": In(lay.accs), "clip_delta": In(lay.delta),
                          "busy": In(1)})


class Splice(TileComponent):
    """Adds ``(-1)^sign * (sample << (t + plane*cell_bits + shift))`` of every active lane and
    column c into accumulator ``outgroup*ou_cols + c``.  Several lanes may feed one output group
    in the same cycle; their terms are summed before the add.

    Accumulators are signed, ``cfg.accumulator_bits`` wide:
    ``bits(tile_inputs * (2^weight_bits - 1) * (2^input_bits - 1)) + 1``.  Every term of a legal
    program is a part of ``sum_r x_r * |q_rj|`` and clipping only lowers samples, so no partial
    or final sum of a legal program exceeds that bound (illegal programs wrap).

    Members
    -------
    ctrl : In(SpliceControlSignature)
    i_stream : In(stream.Signature(Layouts.samples)); never stalls (``ready`` is always 1).

    Latency / throughput
    --------------------
    :attr:`latency` = 4: a sample accepted in cycle n is in ``acc`` (and counted in
    ``clip_delta``) in cycle n + 4.  One step of all lanes per cycle.  Four stages, so that no
    carry chain follows another in one cycle (the ECP5 prototype runs at 100 MHz): (A) the
    shift amount, the signed sample, the output group (one-hot) and the clip flags of every
    lane, (B) the shifted terms, one copy per output group, zero in the groups the lane does
    not feed, and each lane's clip count, (C) the lanes' terms summed per accumulator and the
    lanes' clip counts summed, (D) the accumulation.
    """

    latency = 4

    def __init__(self, cfg: SMEConfig):
        super().__init__(cfg, lambda lay: {"ctrl": In(SpliceControlSignature(lay)),
                                           "i_stream": In(stream.Signature(lay.samples))})

    def elaborate(self, platform):
        m = Module()
        cfg, lay = self._cfg, self._lay
        i, ctrl = self.i_stream, self.ctrl
        width = cfg.accumulator_bits
        groups = cfg.tile_outputs // cfg.ou_cols

        m.d.comb += i.ready.eq(1)

        # Stage A: per lane, the shift amount, the signed samples (negating the narrow sample is
        # cheaper than negating the shifted term) and the output group it feeds this cycle, if
        # active, decoded one-hot so that stages B and C need no compare.
        n_lanes = cfg.tile_xbars
        sel = [[Signal(name=f"sel{lane}_{g}") for g in range(groups)] for lane in range(n_lanes)]
        sh = [Signal(range(cfg.splice_shift_max + 1), name=f"sh{lane}")
              for lane in range(n_lanes)]
        vals = [[Signal(signed(cfg.effective_adc_bits + 1), name=f"val{lane}_{c}")
                 for c in range(cfg.ou_cols)] for lane in range(n_lanes)]
        # The clip flags of active lanes, counted over two stages (B per lane, C the lanes): one
        # 32-input count behind ``valid`` was a critical path on the ECP5 (docs/FPGA.md).
        clip_bits = [Signal(cfg.ou_cols, name=f"clip_bits{lane}") for lane in range(n_lanes)]
        busy_a = Signal()
        m.d.sync += busy_a.eq(i.valid)
        for lane in range(n_lanes):
            s = i.payload.lanes[lane]
            active = i.valid & s.active
            m.d.sync += [sel[lane][g].eq(active & (s.tag.outgroup == g)) for g in range(groups)]
            m.d.sync += sh[lane].eq(i.payload.t + s.tag.plane * cfg.cell_bits + s.tag.shift)
            for c in range(cfg.ou_cols):
                sample = s.samples[c]
                m.d.sync += vals[lane][c].eq(Mux(s.tag.sign, -sample, sample))
            m.d.sync += clip_bits[lane].eq(Mux(active, s.clips, 0))

        # Stage B: the shifted terms, one copy per output group, zero unless the lane feeds that
        # group.  Masking here (after the shifter, in the same LUTs) rather than in stage C keeps
        # the lane's group decode off stage C's adders: driving every bit of every accumulator's
        # sum from one register was the ECP5's critical path (routing), docs/FPGA.md.
        terms = [[[Signal(signed(width), name=f"term{lane}_{g}_{c}") for c in range(cfg.ou_cols)]
                  for g in range(groups)] for lane in range(n_lanes)]
        lane_clips = [Signal(range(cfg.ou_cols + 1), name=f"lane_clips{lane}")
                      for lane in range(n_lanes)]
        busy_a2 = Signal()
        m.d.sync += busy_a2.eq(busy_a)
        for lane in range(n_lanes):
            m.d.sync += lane_clips[lane].eq(sum(clip_bits[lane][c] for c in range(cfg.ou_cols)))
        for lane in range(n_lanes):
            for c in range(cfg.ou_cols):
                shifted = (vals[lane][c] << sh[lane])[:width]
                for g in range(groups):
                    m.d.sync += terms[lane][g][c].eq(Mux(sel[lane][g], shifted, 0))

        # Stage C: the lanes' terms of every accumulator, summed.
        adds = [Signal(signed(width), name=f"add{j}") for j in range(groups * cfg.ou_cols)]
        busy_b, clips = Signal(), Signal(lay.delta)
        m.d.sync += [busy_b.eq(busy_a2), clips.eq(sum(lane_clips))]
        for g in range(groups):
            for c in range(cfg.ou_cols):
                m.d.sync += adds[g * cfg.ou_cols + c].eq(
                    sum(terms[lane][g][c] for lane in range(n_lanes)))

        # Stage D: accumulate.
        for j, add in enumerate(adds):
            acc = ctrl.acc[j]
            with m.If(ctrl.clear):
                m.d.sync += acc.eq(0)
            with m.Else():
                m.d.sync += acc.eq(acc + add)
        delta = Signal(lay.delta)
        m.d.sync += delta.eq(clips)
        m.d.comb += [ctrl.clip_delta.eq(delta), ctrl.busy.eq(busy_a | busy_a2 | busy_b)]
        return m
