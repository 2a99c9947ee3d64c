"""Crossbar tile controller: program loading, vector sequencing, status (SPEC section 6)."""

from __future__ import annotations

from functools import reduce
from operator import xor

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import enum
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


class State(enum.Enum, shape=4):
    IDLE = 0
    LOAD_HEADER = 1
    LOAD_CELLS = 2
    LOAD_DESCRIPTORS = 3
    LOAD_CHECKSUM = 4
    DRAIN_FRAME = 5
    RECEIVE_VECTOR = 6
    START = 7
    RUN = 8
    EMIT = 9
    DRAIN_VECTOR = 10
    LOAD_VERIFY = 11


class Controller(TileComponent):
    """Loads a tile image (``golden/tile_image.py``), runs vectors through the scheduler,
    emulator and splice, and emits the results.

    * ``i_load``: frame words, ``last`` on the final one.  A load first clears ``loaded``,
      ``error`` and ``clip_count``, checks the header words as they arrive, writes the cell and
      descriptor memories, then compares the CRC; ``loaded`` rises only if all checks pass.
      On an error the rest of the frame (up to ``last``) is discarded.
    * ``i_vec``: one element per transfer.  With a program loaded exactly K elements make a
      vector (``last`` is ignored); without one the vector (up to ``last``) is discarded and
      ``error`` becomes ``NO_PROGRAM``.  A load frame takes priority over a vector when both wait.
    * ``o_vec``: N signed results per vector, ``last`` on the final one.
    * ``status``: busy (not idle), loaded, error (:class:`TileError`, sticky until the next
      load), clip_count (clipped ADC samples since the last load, wraps at 2^32).
    * ``abort``: returns to idle at once, keeping the program; the tile also resets the
      datapath with it.  A new vector after an abort computes from scratch.

    Latency: results follow the last issued step by :attr:`Tile.latency` cycles.
    """

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
        cw, dw = ti.cell_words(cfg), ti.desc_words(cfg)

        state = Signal(State)
        crc = Signal(32)
        checksum_ok = Signal()
        pos = Signal(range(ti.HEADER_WORDS))
        lane = Signal(lay.lane)
        addr = Signal(max(lay.cell_addr.width, lay.step_addr.width))
        sub = Signal(range(max(cw, dw)))
        buf = Signal(32 * max(cw, dw))
        n_steps = Signal(lay.n_steps)
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
        top = 32 * max(cw, dw)

        m.d.comb += [
            self.status.busy.eq(state != State.IDLE), self.status.loaded.eq(loaded),
            self.status.error.eq(error), self.status.clip_count.eq(clip_count),
            self.sched.n_steps.eq(n_steps),
            self.xbar.wr.lane.eq(lane), self.xbar.wr.addr.eq(addr),
            self.xbar.wr.data.eq(item[top - 32 * cw:]),
            self.sched.wr.lane.eq(lane), self.sched.wr.addr.eq(addr),
            self.sched.wr.data.eq(item[top - 32 * dw:]),
        ]
        m.d.sync += clip_count.eq(clip_count + self.splice.clip_delta)

        def fail(code):
            m.d.sync += error.eq(code)
            with m.If(ld.payload.last):
                m.d.sync += state.eq(State.IDLE)
            with m.Else():
                m.d.sync += state.eq(State.DRAIN_FRAME)

        def take_word():
            """A body word: checksum it; a premature ``last`` is a truncated frame."""
            m.d.sync += [crc.eq(crc32_next(crc, word)), buf.eq(item)]
            with m.If(ld.payload.last):
                m.d.sync += [error.eq(TileError.BAD_FRAME), state.eq(State.IDLE)]

        with m.Switch(state):
            with m.Case(State.IDLE):
                with m.If(ld.valid):
                    m.d.sync += [state.eq(State.LOAD_HEADER), pos.eq(0), crc.eq(0xFFFFFFFF),
                                 loaded.eq(0), error.eq(TileError.NONE), clip_count.eq(0)]
                with m.Elif(vi.valid):
                    with m.If(loaded):
                        m.d.sync += [state.eq(State.RECEIVE_VECTOR), elem.eq(0)]
                    with m.Else():
                        m.d.sync += [error.eq(TileError.NO_PROGRAM),
                                     state.eq(State.DRAIN_VECTOR)]

            with m.Case(State.LOAD_HEADER):
                m.d.comb += ld.ready.eq(1)
                with m.If(ld.valid):
                    m.d.sync += [crc.eq(crc32_next(crc, word)), pos.eq(pos + 1)]
                    with m.If(pos == ti.HEADER_WORDS - 1):
                        m.d.sync += [state.eq(State.LOAD_CELLS), lane.eq(0), addr.eq(0),
                                     sub.eq(0)]
                    with m.If(ld.payload.last):
                        m.d.sync += [error.eq(TileError.BAD_FRAME), state.eq(State.IDLE)]
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

            with m.Case(State.LOAD_CELLS):
                m.d.comb += ld.ready.eq(1)
                with m.If(ld.valid):
                    m.d.sync += sub.eq(sub + 1)
                    with m.If(sub == cw - 1):
                        m.d.comb += self.xbar.wr.en.eq(1)
                        m.d.sync += [sub.eq(0), addr.eq(addr + 1)]
                        with m.If(addr == ous - 1):
                            m.d.sync += [addr.eq(0), lane.eq(lane + 1)]
                            with m.If(lane == lanes - 1):
                                m.d.sync += lane.eq(0)
                                with m.If(n_steps == 0):
                                    m.d.sync += state.eq(State.LOAD_CHECKSUM)
                                with m.Else():
                                    m.d.sync += state.eq(State.LOAD_DESCRIPTORS)
                    take_word()

            with m.Case(State.LOAD_DESCRIPTORS):
                m.d.comb += ld.ready.eq(1)
                with m.If(ld.valid):
                    m.d.sync += sub.eq(sub + 1)
                    with m.If(sub == dw - 1):
                        m.d.comb += self.sched.wr.en.eq(1)
                        m.d.sync += [sub.eq(0), lane.eq(lane + 1)]
                        with m.If(lane == lanes - 1):
                            m.d.sync += [lane.eq(0), addr.eq(addr + 1)]
                            with m.If(addr == n_steps - 1):
                                m.d.sync += state.eq(State.LOAD_CHECKSUM)
                    take_word()

            with m.Case(State.LOAD_CHECKSUM):
                m.d.comb += ld.ready.eq(1)
                with m.If(ld.valid):
                    with m.If(~ld.payload.last):
                        m.d.sync += [error.eq(TileError.BAD_FRAME), state.eq(State.DRAIN_FRAME)]
                    with m.Else():
                        m.d.sync += [checksum_ok.eq(word == ~crc), state.eq(State.LOAD_VERIFY)]

            with m.Case(State.LOAD_VERIFY):
                # the 32-bit comparison was registered in LOAD_CHECKSUM: it stays out of the
                # next-state logic (a timing path on the ECP5 at 100 MHz)
                with m.If(checksum_ok):
                    m.d.sync += [loaded.eq(1), state.eq(State.IDLE)]
                with m.Else():
                    m.d.sync += [error.eq(TileError.CHECKSUM), state.eq(State.IDLE)]

            with m.Case(State.DRAIN_FRAME):
                m.d.comb += ld.ready.eq(1)
                with m.If(ld.valid & ld.payload.last):
                    m.d.sync += state.eq(State.IDLE)

            with m.Case(State.RECEIVE_VECTOR):
                m.d.comb += vi.ready.eq(1)
                with m.If(vi.valid):
                    m.d.sync += [self.sched.x[elem].eq(vi.payload.data), elem.eq(elem + 1)]
                    with m.If(elem == k - 1):
                        m.d.sync += state.eq(State.START)

            with m.Case(State.START):
                m.d.comb += [self.sched.start.eq(1), self.splice.clear.eq(1)]
                m.d.sync += state.eq(State.RUN)

            with m.Case(State.RUN):
                with m.If(self.sched.done & ~self.xbar.busy & ~self.splice.busy):
                    m.d.sync += [state.eq(State.EMIT), elem.eq(0)]

            with m.Case(State.EMIT):
                m.d.comb += [vo.valid.eq(1), vo.payload.data.eq(self.splice.acc[elem]),
                             vo.payload.last.eq(elem == n - 1)]
                with m.If(vo.ready):
                    m.d.sync += elem.eq(elem + 1)
                    with m.If(elem == n - 1):
                        m.d.sync += state.eq(State.IDLE)

            with m.Case(State.DRAIN_VECTOR):
                m.d.comb += vi.ready.eq(1)
                with m.If(vi.valid & vi.payload.last):
                    m.d.sync += state.eq(State.IDLE)

        with m.If(self.abort):
            m.d.sync += state.eq(State.IDLE)
        return m
