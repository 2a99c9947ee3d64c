"""The board side of the framed host link (protocol: ``golden/frames.py``).

:class:`HostLink` sits between a byte-stream UART and the tile's streams.  A request is received
whole into a payload buffer and its CRC checked before anything acts on it, so a bad request
changes nothing; only then is it executed (LOAD words and RUN elements are streamed from the
buffer into the tile) and answered.  Results from the tile go into a result queue that READ
drains; RUN admits only as many vectors as the queue can take beside the results already owed
(``pending``), so the tile's output never blocks and the link cannot deadlock.

Contract
--------
* One request at a time: bytes arriving while a request executes or a reply is sent are
  dropped (the host waits for each reply).
* Inside a frame, ``timeout_cycles`` without a byte aborts it with a TIMEOUT error.
* Execution streams one buffered byte every 2 cycles (the buffer is block RAM with a registered
  read), i.e. a LOAD word every 8 cycles, far faster than the UART delivers them.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, ResetInserter, Signal, unsigned
from amaranth.lib import enum, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from golden import frames
from golden import tile_image as ti
from golden.config import SMEConfig

from .layouts import Layouts

__all__ = ["HostLink", "LinkError", "crc16_next"]


class LinkError(enum.Enum, shape=8):
    """ERROR reply codes; the values are :class:`golden.frames.LinkError`'s."""
    NONE = frames.LinkError.NONE
    CRC = frames.LinkError.CRC
    UNKNOWN_CMD = frames.LinkError.UNKNOWN_CMD
    BAD_LENGTH = frames.LinkError.BAD_LENGTH
    TIMEOUT = frames.LinkError.TIMEOUT
    BAD_OFFSET = frames.LinkError.BAD_OFFSET
    NO_PROGRAM = frames.LinkError.NO_PROGRAM
    FULL = frames.LinkError.FULL


class _Reply(enum.Enum, shape=2):
    FIXED = 0       # up to 4 bytes from a register
    STATUS = 1
    RESULTS = 2


def _crc16_matrix() -> list[list[int]]:
    """For each bit of the next CRC, the indices (0-15 CRC, 16-23 data) XORed into it: the
    byte-wise update is linear, so it is worked out once here on bit masks."""
    c = [1 << i for i in range(16)]                 # bit i of the CRC as a symbol mask
    for i in range(8):
        c[8 + i] ^= 1 << (16 + i)                   # crc ^= byte << 8
    for _ in range(8):
        top = c[15]
        c = [0] + c[:15]                            # crc << 1
        for bit in range(16):
            if (0x1021 >> bit) & 1:
                c[bit] ^= top
    return [[j for j in range(24) if (mask >> j) & 1] for mask in c]


_CRC16_MATRIX = _crc16_matrix()


def crc16_next(crc, byte):
    """CRC-16/CCITT-FALSE after one more byte (MSB first, polynomial 0x1021), as flat XORs."""
    src = Cat(crc, byte)
    bits = []
    for taps in _CRC16_MATRIX:
        v = src[taps[0]]
        for j in taps[1:]:
            v = v ^ src[j]
        bits.append(v)
    return Cat(*bits)


class HostLink(wiring.Component):
    """Framed host protocol in gateware, bridging a UART's byte streams to a tile.

    Members
    -------
    i_rx : In(stream.Signature(8))        bytes from the UART receiver (always taken when idle)
    o_tx : Out(stream.Signature(8))       reply bytes to the UART transmitter
    o_load : Out(stream.Signature(Layouts.load))   tile image words (tile ``i_load``)
    o_vec : Out(stream.Signature(Layouts.vin))     input elements (tile ``i_vec``)
    i_res : In(stream.Signature(Layouts.vout))     results (tile ``o_vec``)
    tile_status : In(Layouts.status)
    tile_reset : Out(1)      one-cycle pulse from a register: reset the tile (RESET command)
    bad_frame : Out(1)       one-cycle pulse per ERROR reply
    active : Out(1)          a request is being received, executed or answered
    """

    def __init__(self, cfg: SMEConfig, *, max_payload: int = frames.MAX_PAYLOAD,
                 result_depth: int = 256, timeout_cycles: int = 1 << 20):
        if cfg.accumulator_bits > 32:
            raise ValueError(f"results are sent as 32-bit words; accumulator_bits "
                             f"{cfg.accumulator_bits} of config {cfg.name!r} is wider")
        if not (8 <= max_payload <= 0xFFFF and max_payload % 4 == 0):
            raise ValueError(f"max_payload must be a multiple of 4 in 8 .. 65535, "
                             f"not {max_payload}")
        if frames.element_bytes(cfg) * cfg.tile_inputs > max_payload:
            raise ValueError(f"one input vector ({cfg.tile_inputs} x {frames.element_bytes(cfg)} "
                             f"bytes) does not fit max_payload {max_payload}")
        if result_depth < cfg.tile_outputs:
            raise ValueError(f"result_depth must hold one output vector ({cfg.tile_outputs}), "
                             f"not {result_depth}")
        self._cfg = cfg
        self._lay = lay = Layouts(cfg)
        self.max_payload = max_payload
        self.result_depth = result_depth
        self.timeout_cycles = timeout_cycles
        super().__init__({
            "i_rx": In(stream.Signature(8)),
            "o_tx": Out(stream.Signature(8)),
            "o_load": Out(stream.Signature(lay.load)),
            "o_vec": Out(stream.Signature(lay.vin)),
            "i_res": In(stream.Signature(lay.vout)),
            "tile_status": In(lay.status),
            "tile_reset": Out(1),
            "bad_frame": Out(1),
            "active": Out(1),
        })

    @property
    def cfg(self) -> SMEConfig:
        return self._cfg

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        eb = frames.element_bytes(cfg)
        maxp = self.max_payload
        rx, tx = self.i_rx, self.o_tx

        # ---- result queue ------------------------------------------------------------------
        # RESET clears the queue in the same cycle as the tile, from one register: the pulse
        # fans out to every flip-flop of the tile, so no logic may sit in front of it, and a
        # result the tile offers in that cycle is dropped with the rest.
        reset_pulse = Signal()
        m.d.sync += reset_pulse.eq(0)
        m.d.comb += self.tile_reset.eq(reset_pulse)
        m.submodules.results = fifo = ResetInserter(reset_pulse)(
            SyncFIFOBuffered(width=32, depth=self.result_depth))
        m.d.comb += [fifo.w_data.eq(self.i_res.payload.data), fifo.w_en.eq(self.i_res.valid),
                     self.i_res.ready.eq(fifo.w_rdy)]

        # ---- payload buffer ----------------------------------------------------------------
        m.submodules.buf = mem = Memory(shape=unsigned(8), depth=maxp, init=[])
        wp = mem.write_port()
        rp = mem.read_port()

        # ---- request state -----------------------------------------------------------------
        cmd = Signal(8)
        plen = Signal(16)
        ptr = Signal(range(maxp + 1))
        head = Signal(32)                   # first 4 payload bytes
        rcrc = Signal(16)                   # running CRC of the request
        crc_lo = Signal(8)
        idle = Signal(range(self.timeout_cycles + 1))
        timed_out = Signal()
        m.d.comb += timed_out.eq(idle == self.timeout_cycles)

        # ---- link state --------------------------------------------------------------------
        frame_max = ti.frame_words(cfg, cfg.tile_steps)
        load_pos = Signal(range(frame_max + 2))
        k = Signal(self._lay.k.width)
        n = Signal(self._lay.n.width)
        pending = Signal(range(self.result_depth + 1))
        bad_frames = Signal(16)

        # ---- execution state ---------------------------------------------------------------
        mode_load = Signal()                # streaming LOAD words (else RUN elements)
        final = Signal()
        wacc = Signal(32)
        bcnt = Signal(2)
        fpend = Signal()
        wready = Signal()
        elem = Signal(range(cfg.tile_inputs))
        acc_w = (maxp + 2 * eb * cfg.tile_inputs).bit_length()
        acc = Signal(acc_w)
        nvec = Signal(16)
        res_w = (self.result_depth + (maxp + 1) * cfg.tile_outputs).bit_length()
        res = Signal(res_w)

        # ---- reply state -------------------------------------------------------------------
        rcode = Signal(8)
        rlen = Signal(16)
        rkind = Signal(_Reply)
        rval = Signal(32)
        tcrc = Signal(16)
        sent = Signal()                     # a reply byte went out last cycle: fold it into tcrc
        sent_byte = Signal(8)
        sidx = Signal(16)
        wreg = Signal(32)
        wfull = Signal()

        st = self.tile_status
        def u16(v):
            v = v.as_unsigned()
            assert len(v) <= 16
            return Cat(v, Const(0, 16 - len(v)))

        status_bytes = Cat(         # golden.frames.STATUS_FORMAT
            Const(frames.VERSION, 8),
            st.loaded, st.busy, load_pos != 0, Const(0, 5),
            st.error.as_value(), Const(0, 8 - len(st.error.as_value())),
            Const(0, 8),
            st.clip_count, Const(ti.config_id(cfg), 32),
            u16(fifo.level), Const(self.result_depth, 16), u16(k), u16(n), Const(maxp, 16),
            bad_frames)
        n_status = len(status_bytes) // 8
        assert n_status * 8 == len(status_bytes) == 8 * 24, len(status_bytes)

        def fail(code):
            m.d.sync += [rcode.eq(frames.Cmd.ERROR), rlen.eq(2), rkind.eq(_Reply.FIXED),
                         rval.eq(Cat(Const(code.value, 8), cmd)),
                         bad_frames.eq(bad_frames + 1)]
            m.d.comb += self.bad_frame.eq(1)
            m.next = "Send-Header"

        def reply(kind, length, value=0):
            m.d.sync += [rcode.eq(cmd), rlen.eq(length), rkind.eq(kind), rval.eq(value)]
            m.next = "Send-Header"

        def receiving(next_state, action, crc=True):
            """Take one byte, restart the inter-byte timer, or give up on a silent line."""
            m.d.comb += rx.ready.eq(1)
            m.d.sync += idle.eq(idle + 1)
            with m.If(rx.valid):
                m.d.sync += idle.eq(0)
                if crc:
                    m.d.sync += rcrc.eq(crc16_next(rcrc, rx.payload))
                action(rx.payload)
                if next_state is not None:
                    m.next = next_state
            with m.Elif(timed_out):
                fail(LinkError.TIMEOUT)

        byte = rx.payload
        m.d.comb += [wp.addr.eq(ptr), wp.data.eq(byte), rp.addr.eq(ptr)]

        # The reply CRC folds each sent byte in one cycle later (``sent``/``sent_byte``), so the
        # reply byte multiplexers do not feed the CRC's XOR network in the same cycle.  The CRC
        # is complete in time: Send-Payload spends a cycle on ``sidx == rlen`` before Send-CRC.
        m.d.sync += sent.eq(0)
        with m.If(sent):
            m.d.sync += tcrc.eq(crc16_next(tcrc, sent_byte))

        with m.FSM(name="link") as fsm:
            with m.State("Hunt-Sync"):
                m.d.comb += rx.ready.eq(1)
                with m.If(rx.valid & (byte == frames.SYNC_REQ)):
                    m.d.sync += [rcrc.eq(0xFFFF), idle.eq(0), head.eq(0)]
                    m.next = "Receive-Command"

            with m.State("Receive-Command"):
                receiving("Receive-Length-Low", lambda b: m.d.sync.__iadd__(cmd.eq(b)))

            with m.State("Receive-Length-Low"):
                receiving("Receive-Length-High", lambda b: m.d.sync.__iadd__(plen[:8].eq(b)))

            with m.State("Receive-Length-High"):
                def length_high(b):
                    full = Cat(plen[:8], b)
                    m.d.sync += [plen[8:].eq(b), ptr.eq(0)]
                    with m.If(full > maxp):
                        m.next = "Drain-Line"
                    with m.Elif(full == 0):
                        m.next = "Receive-CRC-Low"
                    with m.Else():
                        m.next = "Receive-Payload"
                receiving(None, length_high)

            with m.State("Receive-Payload"):
                def payload(b):
                    m.d.comb += wp.en.eq(1)
                    m.d.sync += ptr.eq(ptr + 1)
                    with m.Switch(ptr):
                        for i in range(4):
                            with m.Case(i):
                                m.d.sync += head[8 * i:8 * i + 8].eq(b)
                    with m.If(ptr == plen - 1):
                        m.next = "Receive-CRC-Low"
                receiving(None, payload)

            with m.State("Receive-CRC-Low"):
                receiving("Receive-CRC-High", lambda b: m.d.sync.__iadd__(crc_lo.eq(b)),
                          crc=False)

            with m.State("Receive-CRC-High"):
                def crc_high(b):
                    with m.If(Cat(crc_lo, b) == rcrc):
                        m.next = "Dispatch"
                    with m.Else():
                        fail(LinkError.CRC)
                receiving(None, crc_high, crc=False)

            with m.State("Drain-Line"):
                # The length cannot be trusted, so neither can the frame's end: swallow bytes
                # until the line has been quiet for the timeout, then answer.
                m.d.comb += rx.ready.eq(1)
                m.d.sync += idle.eq(idle + 1)
                with m.If(rx.valid):
                    m.d.sync += idle.eq(0)
                with m.Elif(timed_out):
                    fail(LinkError.BAD_LENGTH)

            with m.State("Dispatch"):
                with m.Switch(cmd):
                    with m.Case(frames.Cmd.STATUS):
                        with m.If(plen != 0):
                            fail(LinkError.BAD_LENGTH)
                        with m.Else():
                            reply(_Reply.STATUS, n_status)
                    with m.Case(frames.Cmd.RESET):
                        with m.If(plen != 0):
                            fail(LinkError.BAD_LENGTH)
                        with m.Else():
                            m.d.sync += reset_pulse.eq(1)
                            m.d.sync += [pending.eq(0), load_pos.eq(0), k.eq(0), n.eq(0)]
                            reply(_Reply.FIXED, 0)
                    with m.Case(frames.Cmd.LOAD):
                        with m.If((plen < 8) | (plen[:2] != 0)):
                            fail(LinkError.BAD_LENGTH)
                        with m.Elif(head[:31] != load_pos):
                            fail(LinkError.BAD_OFFSET)
                        with m.Else():
                            m.d.sync += [mode_load.eq(1), final.eq(head[31]), ptr.eq(4),
                                         bcnt.eq(0), fpend.eq(0), wready.eq(0)]
                            m.next = "Stream-Items"
                    with m.Case(frames.Cmd.RUN):
                        with m.If(plen == 0):
                            fail(LinkError.BAD_LENGTH)
                        with m.Elif(~st.loaded | (k == 0)):
                            fail(LinkError.NO_PROGRAM)
                        with m.Else():
                            m.d.sync += [acc.eq(0), nvec.eq(0), res.eq(pending)]
                            m.next = "Check-Run"
                    with m.Case(frames.Cmd.READ):
                        with m.If(plen != 0):
                            fail(LinkError.BAD_LENGTH)
                        with m.Else():
                            take = Signal(range(maxp // 4 + 1))
                            with m.If(fifo.level > maxp // 4):
                                m.d.comb += take.eq(maxp // 4)
                            with m.Else():
                                m.d.comb += take.eq(fifo.level)
                            m.d.sync += pending.eq(pending - take)
                            reply(_Reply.RESULTS, take << 2)
                    with m.Default():
                        fail(LinkError.UNKNOWN_CMD)

            with m.State("Check-Run"):
                # M = len / (K * element bytes) by repeated addition: no divider, no multiplier.
                with m.If(acc >= plen):
                    with m.If(acc != plen):
                        fail(LinkError.BAD_LENGTH)
                    with m.Elif(res > self.result_depth):
                        fail(LinkError.FULL)
                    with m.Else():
                        m.d.sync += [pending.eq(res), mode_load.eq(0), ptr.eq(0), elem.eq(0),
                                     bcnt.eq(0), fpend.eq(0), wready.eq(0)]
                        m.next = "Stream-Items"
                with m.Else():
                    m.d.sync += [acc.eq(acc + k * eb), nvec.eq(nvec + 1), res.eq(res + n)]

            with m.State("Stream-Items"):
                last_byte = Signal()
                m.d.comb += last_byte.eq(Mux(mode_load, bcnt == 3, bcnt == eb - 1))
                with m.If(~wready):
                    with m.If(~fpend):
                        m.d.sync += fpend.eq(1)
                    with m.Else():
                        m.d.sync += [wacc.eq(Cat(wacc[8:], rp.data)), ptr.eq(ptr + 1),
                                     bcnt.eq(bcnt + 1), fpend.eq(0)]
                        with m.If(last_byte):
                            m.d.sync += [bcnt.eq(0), wready.eq(1)]
                with m.Else():
                    done = ptr == plen
                    item = wacc[32 - 8 * eb:]
                    m.d.comb += [
                        self.o_load.payload.data.eq(wacc),
                        self.o_load.payload.last.eq(final & done),
                        self.o_load.valid.eq(mode_load),
                        self.o_vec.payload.data.eq(item),
                        self.o_vec.payload.last.eq(elem == k - 1),
                        self.o_vec.valid.eq(~mode_load),
                    ]
                    with m.If(mode_load & self.o_load.ready):
                        m.d.sync += [wready.eq(0), load_pos.eq(load_pos + 1)]
                        with m.If(load_pos == 4):
                            m.d.sync += k.eq(wacc)
                        with m.If(load_pos == 5):
                            m.d.sync += n.eq(wacc)
                        with m.If(done):
                            with m.If(final):
                                m.d.sync += load_pos.eq(0)
                            reply(_Reply.FIXED, 4, Mux(final, 0, load_pos + 1))
                    with m.If(~mode_load & self.o_vec.ready):
                        m.d.sync += [wready.eq(0), elem.eq(elem + 1)]
                        with m.If(elem == k - 1):
                            m.d.sync += elem.eq(0)
                        with m.If(done):
                            reply(_Reply.FIXED, 2, nvec)

            # ---- the reply: header, payload, CRC ------------------------------------------
            with m.State("Send-Header"):
                hdr = Cat(Const(frames.SYNC_REP, 8), rcode, rlen)
                m.d.comb += [tx.valid.eq(1), tx.payload.eq(hdr.word_select(sidx[:2], 8))]
                with m.If(tx.ready):
                    m.d.sync += sidx.eq(sidx + 1)
                    with m.If(sidx == 0):
                        m.d.sync += tcrc.eq(0xFFFF)
                    with m.Else():
                        m.d.sync += [sent.eq(1), sent_byte.eq(tx.payload)]
                    with m.If(sidx == 3):
                        m.d.sync += [sidx.eq(0), wfull.eq(0)]
                        m.next = "Send-Payload"

            with m.State("Send-Payload"):
                with m.If(sidx == rlen):
                    m.d.sync += sidx.eq(0)
                    m.next = "Send-CRC"
                with m.Else():
                    with m.Switch(rkind):
                        with m.Case(_Reply.FIXED):
                            m.d.comb += [tx.valid.eq(1),
                                         tx.payload.eq(rval.word_select(sidx[:2], 8))]
                        with m.Case(_Reply.STATUS):
                            m.d.comb += [tx.valid.eq(1),
                                         tx.payload.eq(status_bytes.word_select(
                                             sidx[:5], 8))]
                        with m.Case(_Reply.RESULTS):
                            m.d.comb += [tx.valid.eq(wfull),
                                         tx.payload.eq(wreg.word_select(sidx[:2], 8))]
                            with m.If(~wfull & fifo.r_rdy):
                                m.d.comb += fifo.r_en.eq(1)
                                m.d.sync += [wreg.eq(fifo.r_data), wfull.eq(1)]
                    with m.If(tx.valid & tx.ready):
                        m.d.sync += [sidx.eq(sidx + 1), sent.eq(1), sent_byte.eq(tx.payload)]
                        with m.If(sidx[:2] == 3):
                            m.d.sync += wfull.eq(0)

            with m.State("Send-CRC"):
                m.d.comb += [tx.valid.eq(1), tx.payload.eq(tcrc.word_select(sidx[:1], 8))]
                with m.If(tx.ready):
                    m.d.sync += sidx.eq(sidx + 1)
                    with m.If(sidx == 1):
                        m.d.sync += sidx.eq(0)
                        m.next = "Hunt-Sync"

            m.d.comb += self.active.eq(~fsm.ongoing("Hunt-Sync"))

        return m
