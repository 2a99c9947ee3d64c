"""The host client of the FPGA host link, and ``sme board run`` (also ``--port sim``: the board
core in Amaranth's simulator).

:class:`Client` loads programs, streams vectors and reads results over any
:class:`golden.frames.Transport`: :class:`SerialTransport` (pyserial, a real board) or the
simulated serial lines of ``sim/uart_line.py`` (the whole-board simulation and the cocotb board
bench), so the code that talks to a board is the code the simulations check.  The frame format
it speaks is specified in ``golden/frames.py``.
"""

from __future__ import annotations

import struct
import sys

import numpy as np

from golden import tile_image as ti
from golden.config import SMEConfig, check_range
from golden.frames import (DEFAULT_BAUD, FINAL, Cmd, FrameDecoder, FrameError, LinkError, Status,
                           Transport, element_bytes, encode_request)
from golden.program import Program

__all__ = ["HostLinkError", "NoBoardError", "SerialTransport", "Client", "open_transport",
           "SIM_PORT", "register"]


class HostLinkError(RuntimeError):
    """The board answered with an error, garbage, or not at all."""

    def __init__(self, msg: str, code: LinkError | None = None):
        super().__init__(msg)
        self.code = code


class NoBoardError(HostLinkError):
    """Nothing answered within the timeout."""



class SerialTransport(Transport):
    """A serial port through pyserial (imported only here)."""

    def __init__(self, port: str, baud: int = DEFAULT_BAUD):
        try:
            import serial
        except ImportError:
            raise HostLinkError("pyserial is not installed (pip install pyserial)") from None
        try:
            self.ser = serial.Serial(port, baud, timeout=0.05)
        except (serial.SerialException, OSError) as e:
            raise NoBoardError(f"cannot open serial port {port}: {e}") from None
        self.name = f"{port} at {baud} baud"

    def write(self, data: bytes) -> None:
        self.ser.write(data)
        self.ser.flush()

    def read(self, n: int, timeout: float) -> bytes:
        self.ser.timeout = max(timeout, 0.0)
        out = self.ser.read(1)
        if out and n > 1:
            self.ser.timeout = 0
            out += self.ser.read(min(n - 1, self.ser.in_waiting))
        return bytes(out)

    def close(self) -> None:
        self.ser.close()


class Client:
    """Load programs, stream vectors and read results over a :class:`Transport`."""

    def __init__(self, transport: Transport, timeout: float = 2.0, retries: int = 2):
        self.t = transport
        self.timeout = timeout
        self.retries = retries
        self._status: Status | None = None

    # ---- one request ---------------------------------------------------------------------
    def request(self, cmd: Cmd, payload: bytes = b"") -> bytes:
        """Send one request and return the reply payload; raise on an ERROR reply."""
        self.t.write(encode_request(cmd, payload))
        dec = FrameDecoder()
        got_any = False
        deadline = self.t.clock() + self.timeout
        while True:
            left = deadline - self.t.clock()
            chunk = self.t.read(4096, max(left, 0.0)) if left > 0 else b""
            if not chunk and left <= 0:
                if not got_any:
                    raise NoBoardError(
                        f"no answer from the board on {self.t.name} within {self.timeout:g} s "
                        f"(is it programmed with the SME bitstream, and at this baud rate?)")
                raise HostLinkError(f"incomplete reply to {cmd.name} on {self.t.name}")
            got_any |= bool(chunk)
            try:
                frames = dec.feed(chunk)
            except FrameError as e:
                raise HostLinkError(f"garbled reply to {cmd.name}: {e}") from None
            if frames:
                code, body = frames[0]
                if code == Cmd.ERROR:
                    err, bad = (body[0], body[1]) if len(body) >= 2 else (0, 0)
                    try:
                        err = LinkError(err)
                    except ValueError:
                        pass
                    name = getattr(err, "name", str(err))
                    raise HostLinkError(f"board rejected {cmd.name}: {name} (cmd 0x{bad:02x})",
                                        err if isinstance(err, LinkError) else None)
                if code != cmd:
                    raise HostLinkError(f"reply code 0x{code:02x} to {cmd.name}")
                return body

    def _retrying(self, cmd: Cmd, payload: bytes = b"", idempotent: bool = False) -> bytes:
        """Retry a request the board rejected as corrupted (it changed nothing): CRC, timeout,
        and BAD_LENGTH - this client builds every frame with the length its payload needs, so
        a length the board refuses was damaged on the line.  After a garbled reply only an
        idempotent request is repeated."""
        retry_on = {LinkError.CRC, LinkError.TIMEOUT, LinkError.BAD_LENGTH} | \
            ({None} if idempotent else set())
        for attempt in range(self.retries + 1):
            try:
                return self.request(cmd, payload)
            except NoBoardError:
                raise
            except HostLinkError as e:
                if attempt == self.retries or e.code not in retry_on:
                    raise
                self.t.drain(0.05)
        raise AssertionError("unreachable")

    # ---- commands ------------------------------------------------------------------------
    def status(self) -> Status:
        try:
            self._status = Status.unpack(self._retrying(Cmd.STATUS, idempotent=True))
        except FrameError as e:
            raise HostLinkError(str(e)) from None
        return self._status

    def reset(self) -> None:
        self._retrying(Cmd.RESET, idempotent=True)

    def load(self, program: Program) -> Status:
        st = self.status()
        want = ti.config_id(program.cfg)
        if st.config_id != want:
            raise HostLinkError(
                f"the board was built for another config (config id 0x{st.config_id:08x}, the "
                f"program needs 0x{want:08x} = {program.cfg.name!r}); rebuild the bitstream "
                f"with that preset or compile for the board's preset")
        words = ti.build_image(program)
        self.reset()
        per = (st.max_payload - 4) // 4
        pos = 0
        while pos < len(words):
            chunk = words[pos:pos + per]
            final = pos + len(chunk) == len(words)
            head = struct.pack("<I", pos | (FINAL if final else 0))
            reply = self._retrying(Cmd.LOAD, head + chunk.astype("<u4").tobytes())
            (nxt,) = struct.unpack("<I", reply)
            pos += len(chunk)
            if nxt != (0 if final else pos):
                raise HostLinkError(f"board load position {nxt}, expected {pos}")
        st = self.status()
        deadline = self.t.clock() + self.timeout
        while st.busy and self.t.clock() < deadline:
            st = self.status()
        if not st.loaded or st.tile_error != ti.TileError.NONE:
            raise HostLinkError(f"the tile rejected the program: {st.tile_error.name}")
        return st

    def read_results(self, count: int) -> list[int]:
        out: list[int] = []
        deadline = self.t.clock() + self.timeout
        while len(out) < count:
            body = self._retrying(Cmd.READ)
            vals = np.frombuffer(body, dtype="<i4")
            out.extend(int(v) for v in vals)
            if len(vals):
                deadline = self.t.clock() + self.timeout
            elif self.t.clock() > deadline:
                raise HostLinkError(f"the board produced {len(out)} of {count} results")
        if len(out) != count:
            raise HostLinkError(f"the board returned {len(out)} results, expected {count}")
        return out

    def run(self, X: np.ndarray, cfg: SMEConfig) -> np.ndarray:
        """Run the vectors ``X`` (M x K) through the loaded program; returns M x N int64."""
        st = self.status()
        if not st.loaded:
            raise HostLinkError("the board has no program loaded (NO_PROGRAM); load one first",
                                LinkError.NO_PROGRAM)
        X = np.asarray(X, dtype=np.int64)
        if X.ndim == 1:
            X = X[None, :]
        k, n = st.k, st.n
        if X.shape[1] != k:
            raise HostLinkError(f"vectors have {X.shape[1]} elements, the program takes {k}")
        eb = element_bytes(cfg)
        per = max(1, min(st.max_payload // (k * eb), st.result_depth // max(1, n)))
        Y = np.zeros((len(X), n), dtype=np.int64)
        for m0 in range(0, len(X), per):
            xs = X[m0:m0 + per]
            payload = xs.astype(f"<u{eb}" if eb in (1, 2, 4) else "<u8").tobytes()
            (m,) = struct.unpack("<H", self._retrying(Cmd.RUN, payload))
            if m != len(xs):
                raise HostLinkError(f"board queued {m} vectors, sent {len(xs)}")
            Y[m0:m0 + len(xs)] = np.array(self.read_results(len(xs) * n)).reshape(len(xs), n)
        return Y


    def run_partition(self, part, X: np.ndarray) -> tuple[np.ndarray, list[int]]:
        """A whole layer (:class:`golden.partition.Partition`) on the board, by the partition's
        contract: each tile program loaded in turn, its rows of ``X`` run, its outputs added
        into its columns.  Returns ``(Y, clipped samples per part)`` like
        :func:`golden.partition.run`."""
        from golden.partition import run as run_parts

        def tile(program: Program, x: np.ndarray):
            self.load(program)
            return self.run(x, program.cfg), self.status().clip_count

        return run_parts(part, X, tile)


#: ``--port`` value that runs against the board core in Amaranth's simulator instead of hardware.
SIM_PORT = "sim"


def open_transport(port: str, baud: int, cfg: SMEConfig) -> Transport:
    """The byte pipe ``sme board run`` talks through: the serial port ``port``, or for
    :data:`SIM_PORT` the board core (UART, host link, tile) of ``cfg`` in Amaranth's simulator,
    4 clocks per bit (line time runs at ``baud``, see ``sim/uart_line.py``)."""
    if port == SIM_PORT:
        from rtl.boards import BoardCore
        from sim.uart_line import SimTransport
        divisor = 4
        return SimTransport(BoardCore(cfg, divisor=divisor, led_stretch=4), divisor, baud=baud)
    return SerialTransport(port, baud)


def _cmd_board_run(args) -> int:
    from golden import program as prog_mod
    from golden import vmm
    from golden.fileio import load_npy

    # Bad input raises (ProgramError, ArrayFileError, InputError: ValueErrors); the CLI's error
    # boundary prints it on one line with exit code 2.  Board trouble exits with 3 or 4.
    check_range("--baud", args.baud, 1)
    check_range("--timeout", args.timeout, 0.0, 3600.0, lo_open=True)
    prog = prog_mod.load(args.program)
    X = load_npy(args.inputs, "inputs")
    try:
        Y_ref, clipped = vmm.run(prog, X)
    except vmm.InputError as e:
        raise vmm.InputError(f"inputs file {args.inputs!r}: {e}") from None
    try:
        transport = open_transport(args.port, args.baud, prog.cfg)
        client = Client(transport, timeout=args.timeout)
        client.load(prog)
        t0 = transport.clock()
        Y = client.run(X, prog.cfg)
        dt = transport.clock() - t0
        st = client.status()
    except NoBoardError as e:
        print(f"sme board run: error: {e}", file=sys.stderr)
        return 3
    except HostLinkError as e:
        print(f"sme board run: error: {e}", file=sys.stderr)
        return 4
    X2 = np.atleast_2d(X)
    bad = np.argwhere(Y != Y_ref)
    print(f"{len(X2)} vectors of {prog.shape[0]} -> {prog.shape[1]} in {dt:.2f} s "
          f"({transport.name}); board clipped {st.clip_count} samples (golden {clipped})")
    if len(bad) or st.clip_count != clipped:
        for i, j in bad[:10]:
            print(f"  mismatch at vector {i}, output {j}: board {Y[i, j]}, golden {Y_ref[i, j]}")
        print(f"FAIL: {len(bad)} of {Y.size} results differ from the golden model")
        return 1
    print("OK: the board matches the golden model exactly")
    return 0


def register(subparsers) -> None:
    """Add ``board run`` to an ``argparse`` subparsers object (``sme board run``)."""
    p = subparsers.add_parser("board", help="talk to a programmed board over its serial port")
    sub = p.add_subparsers(dest="board_cmd", required=True)
    r = sub.add_parser("run", help="load a program, run vectors, compare with the golden model")
    r.add_argument("--port", required=True,
                   help=f"serial port, e.g. /dev/ttyUSB1; {SIM_PORT!r}: the board core in "
                        f"Amaranth's simulator (no hardware)")
    r.add_argument("--program", required=True, help="compiled program file")
    r.add_argument("--inputs", required=True, help=".npy with M x K input vectors")
    r.add_argument("--baud", type=int, default=DEFAULT_BAUD)
    r.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for a reply")
    r.set_defaults(func=_cmd_board_run)
