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

from types import SimpleNamespace

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
        r = self._datapath(m)
        with m.FSM(name="link") as fsm:
            self._receive_request(m, r)
            self._execute(m, r)
            self._stream_items(m, r)
            self._send_reply(m, r)
            m.d.comb += self.active.eq(~fsm.ongoing("Hunt-Sync"))
        return m

    def _datapath(self, m):
        """The result queue, the payload buffer, every register of the link and the helpers
        the FSM states share; returned as one namespace ``r``."""
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
        payload_len = Signal(16)
        ptr = Signal(range(maxp + 1))
        head = Signal(32)                   # first 4 payload bytes
        request_crc = Signal(16)                   # running CRC of the request
        crc_lo = Signal(8)
        idle = Signal(range(self.timeout_cycles + 1))
        timed_out = Signal()
        m.d.comb += timed_out.eq(idle == self.timeout_cycles)

        # ---- link state --------------------------------------------------------------------
        frame_max = ti.frame_words(cfg, cfg.tile_steps, cfg.effective_tile_rowlists)
        load_pos = Signal(range(frame_max + 2))
        k = Signal(self._lay.k.width)
        n = Signal(self._lay.n.width)
        pending = Signal(range(self.result_depth + 1))
        bad_frames = Signal(16)

        # ---- execution state ---------------------------------------------------------------
        mode_load = Signal()                # streaming LOAD words (else RUN elements)
        final = Signal()
        word_acc = Signal(32)               # buffer bytes of the word or element being built
        byte_count = Signal(2)              # bytes of it taken so far
        fetch_pending = Signal()            # a buffer read was issued (registered read port)
        word_ready = Signal()               # word_acc holds a whole word or element
        elem = Signal(range(cfg.tile_inputs))
        run_bytes_w = (maxp + 2 * eb * cfg.tile_inputs).bit_length()
        run_bytes = Signal(run_bytes_w)
        run_vectors = Signal(16)
        run_results_w = (self.result_depth + (maxp + 1) * cfg.tile_outputs).bit_length()
        run_results = Signal(run_results_w)

        # ---- reply state -------------------------------------------------------------------
        reply_code = Signal(8)
        reply_len = Signal(16)
        reply_kind = Signal(_Reply)
        reply_value = Signal(32)
        reply_crc = Signal(16)
        sent = Signal()                     # a reply byte went out last cycle: fold it in
        sent_byte = Signal(8)
        send_index = Signal(16)             # reply byte being sent (header, payload or CRC)
        result_word = Signal(32)            # the result a READ reply is sending
        result_held = Signal()              # result_word holds a result not yet fully sent

        tile_st = self.tile_status
        def u16(v):
            v = v.as_unsigned()
            assert len(v) <= 16
            return Cat(v, Const(0, 16 - len(v)))

        status_bytes = Cat(         # golden.frames.STATUS_FORMAT
            Const(frames.VERSION, 8),
            tile_st.loaded, tile_st.busy, load_pos != 0, Const(0, 5),
            tile_st.error.as_value(), Const(0, 8 - len(tile_st.error.as_value())),
            Const(0, 8),
            tile_st.clip_count, Const(ti.config_id(cfg), 32),
            u16(fifo.level), Const(self.result_depth, 16), u16(k), u16(n), Const(maxp, 16),
            bad_frames)
        n_status = len(status_bytes) // 8
        assert n_status * 8 == len(status_bytes) == 8 * 24, len(status_bytes)

        def fail(code):
            m.d.sync += [reply_code.eq(frames.Cmd.ERROR), reply_len.eq(2),
                         reply_kind.eq(_Reply.FIXED),
                         reply_value.eq(Cat(Const(code.value, 8), cmd)),
                         bad_frames.eq(bad_frames + 1)]
            m.d.comb += self.bad_frame.eq(1)
            m.next = "Send-Header"

        def reply(kind, length, value=0):
            m.d.sync += [reply_code.eq(cmd), reply_len.eq(length), reply_kind.eq(kind),
                         reply_value.eq(value)]
            m.next = "Send-Header"

        def receiving(next_state, action, crc=True):
            """Take one byte, restart the inter-byte timer, or give up on a silent line."""
            m.d.comb += rx.ready.eq(1)
            m.d.sync += idle.eq(idle + 1)
            with m.If(rx.valid):
                m.d.sync += idle.eq(0)
                if crc:
                    m.d.sync += request_crc.eq(crc16_next(request_crc, rx.payload))
                action(rx.payload)
                if next_state is not None:
                    m.next = next_state
            with m.Elif(timed_out):
                fail(LinkError.TIMEOUT)

        byte = rx.payload
        m.d.comb += [wp.addr.eq(ptr), wp.data.eq(byte), rp.addr.eq(ptr)]

        # The reply CRC folds each sent byte in one cycle later (``sent``/``sent_byte``), so the
        # reply byte multiplexers do not feed the CRC's XOR network in the same cycle.  The CRC
        # is complete in time: Send-Payload spends a cycle on ``send_index == reply_len`` before
        # Send-CRC.
        m.d.sync += sent.eq(0)
        with m.If(sent):
            m.d.sync += reply_crc.eq(crc16_next(reply_crc, sent_byte))
        return SimpleNamespace(**{name: value for name, value in locals().items()
                                   if name not in ("self", "m")})

    def _receive_request(self, m, r):
        """Hunt-Sync to Receive-CRC-High: a request into the payload buffer, its CRC checked;
        Drain-Line after a length above ``max_payload``."""
        with m.State("Hunt-Sync"):
            m.d.comb += r.rx.ready.eq(1)
            with m.If(r.rx.valid & (r.byte == frames.SYNC_REQ)):
                m.d.sync += [r.request_crc.eq(0xFFFF), r.idle.eq(0), r.head.eq(0)]
                m.next = "Receive-Command"

        with m.State("Receive-Command"):
            r.receiving("Receive-Length-Low", lambda b: m.d.sync.__iadd__(r.cmd.eq(b)))

        with m.State("Receive-Length-Low"):
            r.receiving("Receive-Length-High",
                        lambda b: m.d.sync.__iadd__(r.payload_len[:8].eq(b)))

        with m.State("Receive-Length-High"):
            def length_high(b):
                full = Cat(r.payload_len[:8], b)
                m.d.sync += [r.payload_len[8:].eq(b), r.ptr.eq(0)]
                with m.If(full > r.maxp):
                    m.next = "Drain-Line"
                with m.Elif(full == 0):
                    m.next = "Receive-CRC-Low"
                with m.Else():
                    m.next = "Receive-Payload"
            r.receiving(None, length_high)

        with m.State("Receive-Payload"):
            def payload(b):
                m.d.comb += r.wp.en.eq(1)
                m.d.sync += r.ptr.eq(r.ptr + 1)
                with m.Switch(r.ptr):
                    for i in range(4):
                        with m.Case(i):
                            m.d.sync += r.head[8 * i:8 * i + 8].eq(b)
                with m.If(r.ptr == r.payload_len - 1):
                    m.next = "Receive-CRC-Low"
            r.receiving(None, payload)

        with m.State("Receive-CRC-Low"):
            r.receiving("Receive-CRC-High", lambda b: m.d.sync.__iadd__(r.crc_lo.eq(b)),
                      crc=False)

        with m.State("Receive-CRC-High"):
            def crc_high(b):
                with m.If(Cat(r.crc_lo, b) == r.request_crc):
                    m.next = "Dispatch"
                with m.Else():
                    r.fail(LinkError.CRC)
            r.receiving(None, crc_high, crc=False)

        with m.State("Drain-Line"):
            # The length cannot be trusted, so neither can the frame's end: swallow bytes
            # until the line has been quiet for the timeout, then answer.
            m.d.comb += r.rx.ready.eq(1)
            m.d.sync += r.idle.eq(r.idle + 1)
            with m.If(r.rx.valid):
                m.d.sync += r.idle.eq(0)
            with m.Elif(r.timed_out):
                r.fail(LinkError.BAD_LENGTH)

    def _execute(self, m, r):
        """Dispatch a checked request; Check-Run counts a RUN's vectors and checks they fit."""
        with m.State("Dispatch"):
            with m.Switch(r.cmd):
                with m.Case(frames.Cmd.STATUS):
                    with m.If(r.payload_len != 0):
                        r.fail(LinkError.BAD_LENGTH)
                    with m.Else():
                        r.reply(_Reply.STATUS, r.n_status)
                with m.Case(frames.Cmd.RESET):
                    with m.If(r.payload_len != 0):
                        r.fail(LinkError.BAD_LENGTH)
                    with m.Else():
                        m.d.sync += r.reset_pulse.eq(1)
                        m.d.sync += [r.pending.eq(0), r.load_pos.eq(0), r.k.eq(0), r.n.eq(0)]
                        r.reply(_Reply.FIXED, 0)
                with m.Case(frames.Cmd.LOAD):
                    with m.If((r.payload_len < 8) | (r.payload_len[:2] != 0)):
                        r.fail(LinkError.BAD_LENGTH)
                    with m.Elif(r.head[:31] != r.load_pos):
                        r.fail(LinkError.BAD_OFFSET)
                    with m.Else():
                        m.d.sync += [r.mode_load.eq(1), r.final.eq(r.head[31]), r.ptr.eq(4),
                                     r.byte_count.eq(0), r.fetch_pending.eq(0), r.word_ready.eq(0)]
                        m.next = "Stream-Items"
                with m.Case(frames.Cmd.RUN):
                    with m.If(r.payload_len == 0):
                        r.fail(LinkError.BAD_LENGTH)
                    with m.Elif(~r.tile_st.loaded | (r.k == 0)):
                        r.fail(LinkError.NO_PROGRAM)
                    with m.Else():
                        m.d.sync += [r.run_bytes.eq(0), r.run_vectors.eq(0),
                                     r.run_results.eq(r.pending)]
                        m.next = "Check-Run"
                with m.Case(frames.Cmd.READ):
                    with m.If(r.payload_len != 0):
                        r.fail(LinkError.BAD_LENGTH)
                    with m.Else():
                        take = Signal(range(r.maxp // 4 + 1))
                        with m.If(r.fifo.level > r.maxp // 4):
                            m.d.comb += take.eq(r.maxp // 4)
                        with m.Else():
                            m.d.comb += take.eq(r.fifo.level)
                        m.d.sync += r.pending.eq(r.pending - take)
                        r.reply(_Reply.RESULTS, take << 2)
                with m.Default():
                    r.fail(LinkError.UNKNOWN_CMD)

        with m.State("Check-Run"):
            # M = len / (K * element bytes) by repeated addition: no divider, no multiplier.
            with m.If(r.run_bytes >= r.payload_len):
                with m.If(r.run_bytes != r.payload_len):
                    r.fail(LinkError.BAD_LENGTH)
                with m.Elif(r.run_results > self.result_depth):
                    r.fail(LinkError.FULL)
                with m.Else():
                    m.d.sync += [r.pending.eq(r.run_results), r.mode_load.eq(0), r.ptr.eq(0),
                                 r.elem.eq(0),
                                 r.byte_count.eq(0), r.fetch_pending.eq(0), r.word_ready.eq(0)]
                    m.next = "Stream-Items"
            with m.Else():
                m.d.sync += [r.run_bytes.eq(r.run_bytes + r.k * r.eb),
                             r.run_vectors.eq(r.run_vectors + 1),
                             r.run_results.eq(r.run_results + r.n)]

    def _stream_items(self, m, r):
        """Stream-Items: LOAD words or RUN elements from the payload buffer into the tile."""
        with m.State("Stream-Items"):
            last_byte = Signal()
            m.d.comb += last_byte.eq(Mux(r.mode_load, r.byte_count == 3, r.byte_count == r.eb - 1))
            with m.If(~r.word_ready):
                with m.If(~r.fetch_pending):
                    m.d.sync += r.fetch_pending.eq(1)
                with m.Else():
                    m.d.sync += [r.word_acc.eq(Cat(r.word_acc[8:], r.rp.data)), r.ptr.eq(r.ptr + 1),
                                 r.byte_count.eq(r.byte_count + 1), r.fetch_pending.eq(0)]
                    with m.If(last_byte):
                        m.d.sync += [r.byte_count.eq(0), r.word_ready.eq(1)]
            with m.Else():
                done = r.ptr == r.payload_len
                item = r.word_acc[32 - 8 * r.eb:]
                m.d.comb += [
                    self.o_load.payload.data.eq(r.word_acc),
                    self.o_load.payload.last.eq(r.final & done),
                    self.o_load.valid.eq(r.mode_load),
                    self.o_vec.payload.data.eq(item),
                    self.o_vec.payload.last.eq(r.elem == r.k - 1),
                    self.o_vec.valid.eq(~r.mode_load),
                ]
                with m.If(r.mode_load & self.o_load.ready):
                    m.d.sync += [r.word_ready.eq(0), r.load_pos.eq(r.load_pos + 1)]
                    with m.If(r.load_pos == 4):
                        m.d.sync += r.k.eq(r.word_acc)
                    with m.If(r.load_pos == 5):
                        m.d.sync += r.n.eq(r.word_acc)
                    with m.If(done):
                        with m.If(r.final):
                            m.d.sync += r.load_pos.eq(0)
                        r.reply(_Reply.FIXED, 4, Mux(r.final, 0, r.load_pos + 1))
                with m.If(~r.mode_load & self.o_vec.ready):
                    m.d.sync += [r.word_ready.eq(0), r.elem.eq(r.elem + 1)]
                    with m.If(r.elem == r.k - 1):
                        m.d.sync += r.elem.eq(0)
                    with m.If(done):
                        r.reply(_Reply.FIXED, 2, r.run_vectors)

    def _send_reply(self, m, r):
        """Send-Header, Send-Payload, Send-CRC: the reply frame."""
        with m.State("Send-Header"):
            hdr = Cat(Const(frames.SYNC_REP, 8), r.reply_code, r.reply_len)
            m.d.comb += [r.tx.valid.eq(1), r.tx.payload.eq(hdr.word_select(r.send_index[:2], 8))]
            with m.If(r.tx.ready):
                m.d.sync += r.send_index.eq(r.send_index + 1)
                with m.If(r.send_index == 0):
                    m.d.sync += r.reply_crc.eq(0xFFFF)
                with m.Else():
                    m.d.sync += [r.sent.eq(1), r.sent_byte.eq(r.tx.payload)]
                with m.If(r.send_index == 3):
                    m.d.sync += [r.send_index.eq(0), r.result_held.eq(0)]
                    m.next = "Send-Payload"

        with m.State("Send-Payload"):
            with m.If(r.send_index == r.reply_len):
                m.d.sync += r.send_index.eq(0)
                m.next = "Send-CRC"
            with m.Else():
                with m.Switch(r.reply_kind):
                    with m.Case(_Reply.FIXED):
                        m.d.comb += [r.tx.valid.eq(1),
                                     r.tx.payload.eq(r.reply_value.word_select(
                                         r.send_index[:2], 8))]
                    with m.Case(_Reply.STATUS):
                        m.d.comb += [r.tx.valid.eq(1),
                                     r.tx.payload.eq(r.status_bytes.word_select(
                                         r.send_index[:5], 8))]
                    with m.Case(_Reply.RESULTS):
                        m.d.comb += [r.tx.valid.eq(r.result_held),
                                     r.tx.payload.eq(r.result_word.word_select(
                                         r.send_index[:2], 8))]
                        with m.If(~r.result_held & r.fifo.r_rdy):
                            m.d.comb += r.fifo.r_en.eq(1)
                            m.d.sync += [r.result_word.eq(r.fifo.r_data), r.result_held.eq(1)]
                with m.If(r.tx.valid & r.tx.ready):
                    m.d.sync += [r.send_index.eq(r.send_index + 1), r.sent.eq(1),
                                 r.sent_byte.eq(r.tx.payload)]
                    with m.If(r.send_index[:2] == 3):
                        m.d.sync += r.result_held.eq(0)

        with m.State("Send-CRC"):
            m.d.comb += [r.tx.valid.eq(1),
                         r.tx.payload.eq(r.reply_crc.word_select(r.send_index[:1], 8))]
            with m.If(r.tx.ready):
                m.d.sync += r.send_index.eq(r.send_index + 1)
                with m.If(r.send_index == 1):
                    m.d.sync += r.send_index.eq(0)
                    m.next = "Hunt-Sync"
