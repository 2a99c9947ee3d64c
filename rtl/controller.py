"""Crossbar tile controller: program loading, vector sequencing, status (SPEC section 6)."""

from __future__ import annotations

import contextlib
from functools import reduce
from operator import xor

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import data
from amaranth.lib.wiring import Out

from golden import tile_image as ti
from golden.config import SMEConfig

from .layouts import TileComponent, TileError, host_members
from .scheduler import ScheduleControlSignature
from .splice import SpliceControlSignature
from .xbar_emulator import XbarControlSignature

__all__ = ["Controller", "crc32_next"]


def crc32_next(crc, word):
    """One 32-bit little-endian word through zlib's reflected CRC-32 (register not inverted):
    a linear map of ``crc ^ word``, unrolled at elaboration into XOR trees."""
    cols = []
    for i in range(32):
        v = 1 << i
        for _ in range(32):
            v = (v >> 1) ^ (0xEDB88320 if v & 1 else 0)
        cols.append(v)
    v = crc ^ word
    return Cat(reduce(xor, [v[i] for i in range(32) if cols[i] >> j & 1], Const(0, 1))
               for j in range(32))


class Controller(TileComponent):
    """Loads a tile image (``golden/tile_image.py``), runs vectors through the scheduler,
    emulator and splice, and emits the results.

    Members
    -------
    i_load : In(stream.Signature(Layouts.load))    tile image words, ``last`` on the final one
    i_vec : In(stream.Signature(Layouts.vin))      input vector elements
    o_vec : Out(stream.Signature(Layouts.vout))    results, ``last`` on the final one
    status : Out(Layouts.status)                   busy, loaded, error, clip_count
    abort : In(1)                                  back to idle at once, program kept
    sched : Out(ScheduleControlSignature)          start, n_steps, x, done; descriptor writes
    xbar : Out(XbarControlSignature)               cell memory writes; busy
    splice : Out(SpliceControlSignature)           clear; accumulators, clip_delta, busy

    * ``i_load``: a load first clears ``loaded``, ``error`` and ``clip_count``, checks the
      header words as they arrive, writes the cell, row-list and descriptor memories, then
      compares the CRC; ``loaded`` rises only if all checks pass.  On an error the rest of the
      frame (up to ``last``) is discarded.  A version-1 frame (no row lists) is refused with
      ``BAD_FRAME``, and so is a frame with an active descriptor whose ``rowlist`` id is
      >= N_ROWLISTS (it names a row list the frame does not carry, which would run on stale
      row-list memory): the frame is inconsistent in itself, unlike ``TOO_BIG`` (a consistent
      frame for a bigger tile).  That compare is registered per descriptor and reported in
      Load-Verify after the checksum, so a corrupted frame still reads ``CHECKSUM`` (the order
      of ``golden.tile_image.check_image``).
    * ``i_vec``: with a program loaded exactly K elements make a vector (``last`` is ignored);
      without one the vector (up to ``last``) is discarded and ``error`` becomes
      ``NO_PROGRAM``.  A load frame takes priority over a vector when both wait.
    * ``o_vec``: N signed results per vector.
    * ``status``: busy (not idle), loaded, error (:class:`TileError`, sticky until the next
      load), clip_count (clipped ADC samples since the last load, wraps at 2^32).
    * ``abort``: returns to idle at once, keeping the program; the tile also resets the
      datapath with it.  A new vector after an abort computes from scratch.

    States: Idle; Load-Header, Load-Cells, Load-Rowlists, Load-Descriptors, Load-Checksum,
    Load-Verify (a frame), Drain-Frame (the rest of a bad frame); Receive-Vector, Start, Run,
    Emit (a vector), Drain-Vector (a vector without a program).

    Latency
    -------
    :attr:`latency` = 3 cycles of the controller's own per vector: from the transfer of the
    last input element to ``sched.start`` (Receive-Vector -> Start), Start -> Run, and from the
    cycle in Run that finds the datapath done to the first ``o_vec`` valid (Run -> Emit).  With
    no steps to run that is the whole time from the last element to the first result
    (:attr:`Tile.empty_latency`); otherwise results follow the last issued step by
    :attr:`Tile.latency` cycles.
    """

    latency = 3

    def __init__(self, cfg: SMEConfig):
        super().__init__(cfg, lambda lay: {
            **host_members(lay),
            "sched": Out(ScheduleControlSignature(lay)),
            "xbar": Out(XbarControlSignature(lay)),
            "splice": Out(SpliceControlSignature(lay)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, lay = self._cfg, self._lay
        lanes, ous = cfg.tile_xbars, cfg.windows * cfg.colgroups
        cw, dw, rw = ti.cell_words(cfg), ti.desc_words(cfg), ti.rowlist_words(cfg)
        iw = max(cw, dw, rw)                # words of the widest item

        crc = Signal(32)
        checksum_ok = Signal()
        stale_rowlist = Signal()            # an active descriptor named a row list >= N_ROWLISTS
        pos = Signal(range(ti.HEADER_WORDS))
        lane = Signal(lay.lane)
        addr = Signal(max(lay.cell_addr.width, lay.step_addr.width, lay.rowlist_addr.width))
        sub = Signal(range(iw))
        buf = Signal(32 * iw)
        n_steps = Signal(lay.n_steps)
        n_rowlists = Signal(lay.n_rowlists)
        k = Signal(lay.k)
        n = Signal(lay.n)
        elem = Signal(max(lay.k.width, lay.n.width))
        loaded = Signal()
        error = Signal(TileError)
        clip_count = Signal(32)

        ld, vi, vo = self.i_load, self.i_vec, self.o_vec
        word = ld.payload.data
        # ``buf`` shifts in one word per body word, newest at the top: an item of w words
        # (least significant word first) is the top w words once its last word arrives.
        item = Cat(buf[32:], word)
        top = 32 * iw
        desc = data.View(lay.desc, item[top - 32 * dw:][:lay.desc.size])   # the item written

        m.d.comb += [
            self.status.loaded.eq(loaded),
            self.status.error.eq(error), self.status.clip_count.eq(clip_count),
            self.sched.n_steps.eq(n_steps),
            self.xbar.wr.lane.eq(lane), self.xbar.wr.addr.eq(addr),
            self.xbar.wr.data.eq(item[top - 32 * cw:]),
            self.sched.wr.lane.eq(lane), self.sched.wr.addr.eq(addr),
            self.sched.wr.data.eq(item[top - 32 * dw:]),
            self.sched.wr_rowlist.lane.eq(lane), self.sched.wr_rowlist.addr.eq(addr),
            self.sched.wr_rowlist.data.eq(item[top - 32 * rw:]),
        ]
        m.d.sync += clip_count.eq(clip_count + self.splice.clip_delta)

        def fail(code):
            m.d.sync += error.eq(code)
            with m.If(ld.payload.last):
                m.next = "Idle"
            with m.Else():
                m.next = "Drain-Frame"

        def take_word():
            """A body word: checksum it; a premature ``last`` is a truncated frame."""
            m.d.sync += [crc.eq(crc32_next(crc, word)), buf.eq(item)]
            with m.If(ld.payload.last):
                m.next = "Idle"
                m.d.sync += error.eq(TileError.BAD_FRAME)

        @contextlib.contextmanager
        def lane_major(words, wr_en, depth):
            """Take the body words of lane-major items (lane, then address 0 .. depth-1) of
            ``words`` words each, pulsing ``wr_en`` on each item's last word; the ``with``
            body is the logic of the last item of the last lane (the next state)."""
            m.d.comb += ld.ready.eq(1)
            with m.If(ld.valid):
                m.d.sync += sub.eq(sub + 1)
                with m.If(sub == words - 1):
                    m.d.comb += wr_en.eq(1)
                    m.d.sync += [sub.eq(0), addr.eq(addr + 1)]
                    with m.If(addr == depth - 1):
                        m.d.sync += [addr.eq(0), lane.eq(lane + 1)]
                        with m.If(lane == lanes - 1):
                            m.d.sync += lane.eq(0)
                            yield
                take_word()

        @contextlib.contextmanager
        def state(name):
            """An FSM state whose transitions ``abort`` overrides: back to idle at once."""
            with m.State(name):
                yield
                with m.If(self.abort):
                    m.next = "Idle"

        with m.FSM(name="controller", init="Idle") as fsm:
            with state("Idle"):
                with m.If(ld.valid):
                    m.next = "Load-Header"
                    m.d.sync += [pos.eq(0), crc.eq(0xFFFFFFFF), loaded.eq(0),
                                 error.eq(TileError.NONE), clip_count.eq(0),
                                 stale_rowlist.eq(0)]
                with m.Elif(vi.valid):
                    with m.If(loaded):
                        m.next = "Receive-Vector"
                        m.d.sync += elem.eq(0)
                    with m.Else():
                        m.next = "Drain-Vector"
                        m.d.sync += error.eq(TileError.NO_PROGRAM)

            with state("Load-Header"):
                m.d.comb += ld.ready.eq(1)
                with m.If(ld.valid):
                    m.d.sync += [crc.eq(crc32_next(crc, word)), pos.eq(pos + 1)]
                    with m.If(pos == ti.HEADER_WORDS - 1):
                        m.next = "Load-Cells"
                        m.d.sync += [lane.eq(0), addr.eq(0), sub.eq(0)]
                    with m.If(ld.payload.last):
                        m.next = "Idle"
                        m.d.sync += error.eq(TileError.BAD_FRAME)
                    with m.Switch(pos):
                        with m.Case(0):
                            with m.If(word != ti.MAGIC):
                                fail(TileError.BAD_FRAME)
                        with m.Case(1):
                            with m.If(word != ti.VERSION):
                                fail(TileError.BAD_FRAME)
                        with m.Case(2):
                            with m.If(word != ti.config_id(cfg)):
                                fail(TileError.BAD_CONFIG)
                        with m.Case(3):
                            m.d.sync += n_steps.eq(word)
                            with m.If(word > cfg.tile_steps):
                                fail(TileError.TOO_BIG)
                        with m.Case(4):
                            m.d.sync += k.eq(word)
                            with m.If((word == 0) | (word > cfg.tile_inputs)):
                                fail(TileError.TOO_BIG)
                        with m.Case(5):
                            m.d.sync += n.eq(word)
                            with m.If((word == 0) | (word > cfg.tile_outputs)):
                                fail(TileError.TOO_BIG)
                        with m.Case(6):
                            m.d.sync += n_rowlists.eq(word)
                            with m.If(word > cfg.effective_tile_rowlists):
                                fail(TileError.TOO_BIG)

            with state("Load-Cells"):
                with lane_major(cw, self.xbar.wr.en, ous):
                    with m.If(n_rowlists != 0):
                        m.next = "Load-Rowlists"
                    with m.Elif(n_steps != 0):
                        m.next = "Load-Descriptors"
                    with m.Else():
                        m.next = "Load-Checksum"

            with state("Load-Rowlists"):
                with lane_major(rw, self.sched.wr_rowlist.en, n_rowlists):
                    with m.If(n_steps == 0):
                        m.next = "Load-Checksum"
                    with m.Else():
                        m.next = "Load-Descriptors"

            with state("Load-Descriptors"):
                m.d.comb += ld.ready.eq(1)
                with m.If(ld.valid):
                    m.d.sync += sub.eq(sub + 1)
                    with m.If(sub == dw - 1):
                        m.d.comb += self.sched.wr.en.eq(1)
                        with m.If(desc.active & (desc.rowlist >= n_rowlists)):
                            m.d.sync += stale_rowlist.eq(1)
                        m.d.sync += [sub.eq(0), lane.eq(lane + 1)]
                        with m.If(lane == lanes - 1):
                            m.d.sync += [lane.eq(0), addr.eq(addr + 1)]
                            with m.If(addr == n_steps - 1):
                                m.next = "Load-Checksum"
                    take_word()

            with state("Load-Checksum"):
                m.d.comb += ld.ready.eq(1)
                with m.If(ld.valid):
                    with m.If(~ld.payload.last):
                        m.next = "Drain-Frame"
                        m.d.sync += error.eq(TileError.BAD_FRAME)
                    with m.Else():
                        m.next = "Load-Verify"
                        m.d.sync += checksum_ok.eq(word == ~crc)

            with state("Load-Verify"):
                # the 32-bit comparison was registered in Load-Checksum: it stays out of the
                # next-state logic (a timing path on the ECP5 at 100 MHz); so was the row-list
                # id check, one descriptor at a time
                m.next = "Idle"
                with m.If(~checksum_ok):
                    m.d.sync += error.eq(TileError.CHECKSUM)
                with m.Elif(stale_rowlist):
                    m.d.sync += error.eq(TileError.BAD_FRAME)
                with m.Else():
                    m.d.sync += loaded.eq(1)

            with state("Drain-Frame"):
                m.d.comb += ld.ready.eq(1)
                with m.If(ld.valid & ld.payload.last):
                    m.next = "Idle"

            with state("Receive-Vector"):
                m.d.comb += vi.ready.eq(1)
                with m.If(vi.valid):
                    m.d.sync += [self.sched.x[elem].eq(vi.payload.data), elem.eq(elem + 1)]
                    with m.If(elem == k - 1):
                        m.next = "Start"

            with state("Start"):
                m.d.comb += [self.sched.start.eq(1), self.splice.clear.eq(1)]
                m.next = "Run"

            with state("Run"):
                with m.If(self.sched.done & ~self.xbar.busy & ~self.splice.busy):
                    m.next = "Emit"
                    m.d.sync += elem.eq(0)

            with state("Emit"):
                m.d.comb += [vo.valid.eq(1), vo.payload.data.eq(self.splice.acc[elem]),
                             vo.payload.last.eq(elem == n - 1)]
                with m.If(vo.ready):
                    m.d.sync += elem.eq(elem + 1)
                    with m.If(elem == n - 1):
                        m.next = "Idle"

            with state("Drain-Vector"):
                m.d.comb += vi.ready.eq(1)
                with m.If(vi.valid & vi.payload.last):
                    m.next = "Idle"

        m.d.comb += self.status.busy.eq(~fsm.ongoing("Idle"))
        return m
