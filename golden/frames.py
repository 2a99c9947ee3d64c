"""The FPGA host link's frames: format, CRC, decoder, STATUS payload (pure Python + numpy).

This is the protocol's specification; the gateware side is ``rtl/hostlink.py``, the host client
that speaks it is ``sme/hostclient.py``.  :class:`Transport` (the byte pipe the client talks
through) is declared here, not beside the client, because the simulated serial lines in ``sim/``
implement it too, and ``sim/`` does not import the applications in ``sme/``.

Frames, version 1 (all multi-byte integers little-endian)::

    request  (host -> board)   0xA5  cmd  len_lo len_hi  payload[len]  crc_lo crc_hi
    reply    (board -> host)   0x5A  code len_lo len_hi  payload[len]  crc_lo crc_hi

The CRC is CRC-16/CCITT-FALSE: polynomial 0x1021 (x^16 + x^12 + x^5 + 1), initial value 0xFFFF,
bits MSB first, no reflection, no final XOR (check value 0x29B1 for b"123456789").  It covers
``cmd``/``code``, the length and the payload, not the sync byte.  ``len`` is at most the board's
``max_payload`` (reported by STATUS; :data:`MAX_PAYLOAD` by default).

Commands and their replies (a reply's ``code`` repeats the command):

``STATUS`` (0x01, no payload)
    Reply: :data:`STATUS_FORMAT` (see :class:`Status`).
``RESET`` (0x02, no payload)
    Resets the tile (the program is gone) and the link (result queue, load position).  Reply: empty.
``LOAD`` (0x03)
    Payload: u32 ``offset | FINAL << 31``, then whole 32-bit words of the tile load image
    (``golden/tile_image.py``) starting at word ``offset``.  ``offset`` must equal the board's
    load position (words taken since the last final chunk or reset); FINAL marks the image's last
    word.  Reply: u32 the new load position (0 after a final chunk).
``RUN`` (0x04)
    Payload: M >= 1 whole input vectors of K elements, each ``ceil(input_bits / 8)`` bytes.
    Needs a loaded program; the M x N results must fit in the result queue beside the results
    not read yet.  Reply: u16 M.  Results follow in the queue as the tile produces them.
``READ`` (0x05, no payload)
    Takes up to ``max_payload // 4`` results from the queue (as many as are there now).  Reply:
    i32 per result, in output order, vector after vector.

A bad request changes nothing on the board and is answered with an ``ERROR`` (0xFF) reply,
payload ``(error, cmd)`` (:class:`LinkError`): a CRC mismatch, an unknown command, a bad length
(also a ``len`` above ``max_payload``: the board then waits for the line to go quiet first), a
timeout inside a frame (no byte for ``timeout`` cycles), a load offset that is not the board's
load position, RUN without a program, RUN whose results do not fit.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import struct
import time

from . import tile_image as ti
from .config import SMEConfig

__all__ = ["SYNC_REQ", "SYNC_REP", "MAX_PAYLOAD", "VERSION", "DEFAULT_BAUD", "Cmd", "LinkError",
           "crc16", "encode_request", "encode_reply", "FrameDecoder", "FrameError", "Status",
           "STATUS_FORMAT", "Transport", "element_bytes", "FINAL"]

SYNC_REQ = 0xA5
SYNC_REP = 0x5A
VERSION = 1
MAX_PAYLOAD = 256
DEFAULT_BAUD = 115200
FINAL = 1 << 31


class Cmd(enum.IntEnum):
    STATUS = 0x01
    RESET = 0x02
    LOAD = 0x03
    RUN = 0x04
    READ = 0x05
    ERROR = 0xFF      #: reply code only


class LinkError(enum.IntEnum):
    """Error codes of an ERROR reply (the RTL enum has the same values)."""
    NONE = 0
    CRC = 1
    UNKNOWN_CMD = 2
    BAD_LENGTH = 3
    TIMEOUT = 4
    BAD_OFFSET = 5
    NO_PROGRAM = 6
    FULL = 7


#: STATUS reply payload: version, flags (bit 0 loaded, 1 busy, 2 load in progress), tile error
#: code, reserved, clip count, config id, results queued, result queue depth, K, N, max payload,
#: bad frames seen (wraps).
STATUS_FORMAT = "<BBBBIIHHHHHH"


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE of ``data`` (continuing from ``crc``)."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def _frame(sync: int, code: int, payload: bytes) -> bytes:
    body = struct.pack("<BH", code, len(payload)) + bytes(payload)
    return bytes([sync]) + body + struct.pack("<H", crc16(body))


def encode_request(cmd: int, payload: bytes = b"") -> bytes:
    if len(payload) > 0xFFFF:
        raise ValueError(f"payload of {len(payload)} bytes does not fit a frame")
    return _frame(SYNC_REQ, int(cmd), payload)


def encode_reply(code: int, payload: bytes = b"") -> bytes:
    return _frame(SYNC_REP, int(code), payload)


class FrameError(ValueError):
    """Bytes that are not a well-formed frame or payload (bad CRC, wrong length, unknown code)."""


class FrameDecoder:
    """Incremental reply decoder: :meth:`feed` bytes, get back complete ``(code, payload)``
    frames.  Bytes before a sync byte are skipped; a frame with a bad CRC raises."""

    def __init__(self, sync: int = SYNC_REP):
        self.sync = sync
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self.buf += data
        out = []
        while True:
            start = self.buf.find(bytes([self.sync]))
            if start < 0:
                self.buf.clear()
                return out
            del self.buf[:start]
            if len(self.buf) < 4:
                return out
            code, n = struct.unpack_from("<BH", self.buf, 1)
            if len(self.buf) < 6 + n:
                return out
            body = bytes(self.buf[1:4 + n])
            (crc,) = struct.unpack_from("<H", self.buf, 4 + n)
            del self.buf[:6 + n]
            if crc16(body) != crc:
                raise FrameError(f"reply with a bad CRC (code 0x{code:02x}, {n} bytes)")
            out.append((code, body[3:]))


@dataclasses.dataclass(frozen=True)
class Status:
    version: int
    loaded: bool
    busy: bool
    loading: bool
    tile_error: ti.TileError
    clip_count: int
    config_id: int
    results: int
    result_depth: int
    k: int
    n: int
    max_payload: int
    bad_frames: int

    @classmethod
    def unpack(cls, payload: bytes) -> "Status":
        if len(payload) != struct.calcsize(STATUS_FORMAT):
            raise FrameError(f"STATUS reply of {len(payload)} bytes, expected "
                                f"{struct.calcsize(STATUS_FORMAT)}")
        (ver, flags, err, _, clips, cid, res, depth, k, n, maxp,
         bad) = struct.unpack(STATUS_FORMAT, payload)
        try:
            terr = ti.TileError(err)
        except ValueError:
            raise FrameError(f"STATUS reports an unknown tile error code {err}") from None
        return cls(ver, bool(flags & 1), bool(flags & 2), bool(flags & 4), terr, clips, cid,
                   res, depth, k, n, maxp, bad)

    def pack(self) -> bytes:
        flags = int(self.loaded) | int(self.busy) << 1 | int(self.loading) << 2
        return struct.pack(STATUS_FORMAT, self.version, flags, int(self.tile_error), 0,
                           self.clip_count, self.config_id, self.results, self.result_depth,
                           self.k, self.n, self.max_payload, self.bad_frames)


def element_bytes(cfg: SMEConfig) -> int:
    """Bytes per input element in a RUN payload."""
    return -(-cfg.input_bits // 8)


class Transport(abc.ABC):
    """A byte pipe to the board.  ``read`` returns up to ``n`` bytes as soon as at least one has
    arrived, or ``b""`` after ``timeout`` seconds; ``drain`` discards input until the line is
    quiet."""

    name = "transport"

    def clock(self) -> float:
        """Seconds on the transport's own clock (a simulation has its own)."""
        return time.monotonic()

    @abc.abstractmethod
    def write(self, data: bytes) -> None:
        """Send ``data`` to the board."""

    @abc.abstractmethod
    def read(self, n: int, timeout: float) -> bytes:
        """Up to ``n`` received bytes (see the class docstring)."""

    def drain(self, quiet: float) -> None:
        while self.read(4096, quiet):
            pass
