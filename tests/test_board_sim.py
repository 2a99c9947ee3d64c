"""Whole-board simulation: UART + host link + tile (rtl/boards.py BoardCore) in Amaranth's
simulator, driven over a simulated serial line by the same host code as ``sme board run``
(sme/hostclient.py Client).  Loads a compiled program, runs vectors, checks them against the
golden model; bad frames are answered with errors and change nothing; a reset between vectors."""

import struct

import numpy as np
import pytest

from golden import compiler, partition, vmm
from golden.frames import SYNC_REQ, Cmd, LinkError, encode_request
from golden import tile_image as ti
from golden.config import preset
from rtl.boards import BoardCore
from sim.stimulus import fitting_layer, random_q
from sim.uart_line import SimTransport
from sme import hostclient

DIVISOR = 4          # clocks per bit: keeps the simulation short
QUIET = 0.05         # seconds of line time without a byte that end a raw exchange


def fitting_program(cfg, rng, k, n, squeeze):
    """A compiled random layer of at most k x n that fits one tile."""
    q = fitting_layer(cfg, rng, squeezes=(squeeze,), k_max=k, n_max=n, largest=True)
    return compiler.compile_matrix(q, cfg, squeeze=squeeze)


@pytest.fixture(scope="module")
def board():
    cfg = preset("tiny")
    core = BoardCore(cfg, divisor=DIVISOR, led_stretch=4, timeout_cycles=40 * 10 * DIVISOR)
    line = SimTransport(core, DIVISOR)
    # 0.05 s of line time at 115200 baud = 576 byte times, longer than the board's timeout
    return cfg, line, hostclient.Client(line, timeout=0.05)


@pytest.mark.slow        # bit-level UART; the cocotb board bench covers load/run/corrupt/reset
def test_load_run_corrupt_reset(board):
    cfg, line, client = board
    rng = np.random.default_rng(7)
    seed_msg = "[seed 7]"
    prog = fitting_program(cfg, rng, 10, 8, "segment")
    X = rng.integers(0, cfg.max_input + 1, size=(5, prog.shape[0]))
    Y_ref, clipped = vmm.run(prog, X)

    st = client.load(prog)
    assert st.loaded and st.tile_error == ti.TileError.NONE, seed_msg
    assert (st.k, st.n) == prog.shape and st.config_id == ti.config_id(cfg)
    assert np.array_equal(client.run(X[:2], cfg), Y_ref[:2]), seed_msg

    # A corrupted RUN frame (one payload bit flipped): CRC error, nothing queued or run.
    frame = bytearray(encode_request(Cmd.RUN, X[2].astype("u1").tobytes()))
    frame[6] ^= 0x10
    replies = line.exchange(bytes(frame), QUIET)
    assert replies == [(Cmd.ERROR, bytes([LinkError.CRC, Cmd.RUN]))]
    st = client.status()
    assert st.loaded and st.results == 0 and st.bad_frames == 1

    # Unknown command, bad length, an over-long length (drained), a LOAD at the wrong offset.
    assert line.exchange(encode_request(0x42), QUIET) == \
        [(Cmd.ERROR, bytes([LinkError.UNKNOWN_CMD, 0x42]))]
    assert line.exchange(encode_request(Cmd.STATUS, b"x"), QUIET) == \
        [(Cmd.ERROR, bytes([LinkError.BAD_LENGTH, Cmd.STATUS]))]
    assert line.exchange(bytes([SYNC_REQ, Cmd.RUN, 0xFF, 0xFF, 1, 2, 3]), QUIET) == \
        [(Cmd.ERROR, bytes([LinkError.BAD_LENGTH, Cmd.RUN]))]
    assert line.exchange(encode_request(Cmd.LOAD, struct.pack("<II", 5, 0)), QUIET) == \
        [(Cmd.ERROR, bytes([LinkError.BAD_OFFSET, Cmd.LOAD]))]
    assert line.exchange(encode_request(Cmd.RUN, b"\x01" * 3), QUIET) == \
        [(Cmd.ERROR, bytes([LinkError.BAD_LENGTH, Cmd.RUN]))]
    # A frame cut off mid-way: the board times out and answers TIMEOUT.
    cut = encode_request(Cmd.RUN, X[2].astype("u1").tobytes())[:7]
    assert line.exchange(cut, QUIET) == [(Cmd.ERROR, bytes([LinkError.TIMEOUT, Cmd.RUN]))]

    st = client.status()
    assert st.loaded and st.tile_error == ti.TileError.NONE and st.bad_frames == 7
    assert np.array_equal(client.run(X[2:3], cfg), Y_ref[2:3]), seed_msg

    # The reset button between vectors: the program is gone until it is loaded again.
    line.pulse_reset()
    st = client.status()
    assert not st.loaded and st.bad_frames == 0 and st.results == 0
    assert line.exchange(encode_request(Cmd.RUN, X[3].astype("u1").tobytes()), QUIET) == \
        [(Cmd.ERROR, bytes([LinkError.NO_PROGRAM, Cmd.RUN]))]
    with pytest.raises(hostclient.HostLinkError, match="NO_PROGRAM"):
        client.run(X[3:4], cfg)
    client.load(prog)
    assert np.array_equal(client.run(X[3:], cfg), Y_ref[3:]), seed_msg

    # The RESET command does the same.
    client.reset()
    assert not client.status().loaded
    assert line.framing_errors == 0


def _run_with_first_frame_damaged(board, seed, damage):
    """Load a random program, then run two vectors while the first frame that ``damage(frame)``
    returns a replacement for goes out damaged; the client must still return golden results."""
    cfg, line, client = board
    rng = np.random.default_rng(seed)
    prog = fitting_program(cfg, rng, 6, 4, "row")
    X = rng.integers(0, cfg.max_input + 1, size=(2, prog.shape[0]))
    client.load(prog)
    real_write = line.write
    damaged = []

    def flaky(data):
        bad = None if damaged else damage(bytes(data))
        if bad is not None:
            damaged.append(bytes(data))
            data = bad
        real_write(bytes(data))

    line.write = flaky
    try:
        Y = client.run(X, cfg)
    finally:
        line.write = real_write
    assert damaged, "no frame was damaged"
    assert np.array_equal(Y, vmm.run(prog, X)[0])


def _flip(frame: bytes, index: int, mask: int) -> bytes:
    out = bytearray(frame)
    out[index] ^= mask
    return bytes(out)


@pytest.mark.slow        # bit-level UART, one more load and run
def test_host_client_retries_corrupted_request(board):
    """The client resends a request the board rejected with a CRC error."""
    _run_with_first_frame_damaged(board, 3, lambda frame: _flip(frame, -3, 0x01))


@pytest.mark.slow        # bit-level UART, one more load and run (about 30 s)
def test_host_client_retries_damaged_length(board):
    """A flipped bit in the length field of a frame the client built itself makes the board
    answer BAD_LENGTH: the client treats that as line corruption and resends (issue 11)."""
    # high length byte of the RUN request: far past the payload limit
    _run_with_first_frame_damaged(
        board, 5, lambda frame: _flip(frame, 3, 0x40) if frame[1] == Cmd.RUN else None)


def test_no_board_answers():
    """A line with nothing on it gives a clear NoBoardError, not a hang."""
    cfg = preset("tiny")
    core = BoardCore(cfg, divisor=DIVISOR)
    line = SimTransport(core, DIVISOR)
    line.write = lambda data: None          # the board never hears anything
    with pytest.raises(hostclient.NoBoardError, match="no answer from the board"):
        hostclient.Client(line, timeout=0.01).status()


@pytest.mark.parametrize("board_name", ["icebreaker"])
def test_board_preset_end_to_end(board_name):
    """The preset a board is built with, over the link, against the golden model."""
    from rtl.boards import BOARDS
    cfg = preset(BOARDS[board_name].preset)
    rng = np.random.default_rng(11)
    prog = fitting_program(cfg, rng, cfg.tile_inputs, cfg.tile_outputs, "segment")
    X = rng.integers(0, cfg.max_input + 1, size=(2, prog.shape[0]))
    core = BoardCore(cfg, divisor=DIVISOR, led_stretch=4)
    client = hostclient.Client(SimTransport(core, DIVISOR), timeout=0.05)
    client.load(prog)
    assert np.array_equal(client.run(X, cfg), vmm.run(prog, X)[0]), "[seed 11]"


@pytest.mark.slow        # bit-level UART, several program loads
def test_partition_on_the_board(board):
    """A layer of several tile programs through the host client (golden.partition contract),
    clipped samples included."""
    from golden import partition

    cfg, line, client = board
    rng = np.random.default_rng(12)
    q = random_q(rng, (12, 6), cfg, 0.8)
    part = partition.partition_layer(q, None, cfg)
    assert part.n_parts > 1
    X = rng.integers(0, cfg.max_input + 1, size=(2, 12))
    Y, clipped = client.run_partition(part, X)
    want, want_clipped = partition.run(part, X)
    assert np.array_equal(Y, want) and clipped == want_clipped, "[seed 12]"


def test_board_core_converts_to_verilog():
    from amaranth.back import verilog
    core = BoardCore(preset("tiny"), divisor=DIVISOR)
    text = verilog.convert(core, name="sme_board", emit_src=False)
    assert "module sme_board" in text and " rx" in text and " tx" in text


def test_result_queue_full_is_refused():
    """RUN whose results do not fit the result queue beside the unread ones: ERROR FULL,
    nothing queued or run; after a READ the same RUN is accepted."""
    cfg = preset("tiny")
    core = BoardCore(cfg, divisor=DIVISOR, led_stretch=4, timeout_cycles=40 * 10 * DIVISOR,
                     result_depth=cfg.tile_outputs)
    line = SimTransport(core, DIVISOR)
    client = hostclient.Client(line, timeout=0.05)
    rng = np.random.default_rng(13)
    prog = fitting_program(cfg, rng, 6, cfg.tile_outputs, "segment")
    k, n = prog.shape
    X = rng.integers(0, cfg.max_input + 1, size=(2, k))
    client.load(prog)
    full = [(Cmd.ERROR, bytes([LinkError.FULL, Cmd.RUN]))]
    assert 2 * n > core.result_depth >= n
    two = encode_request(Cmd.RUN, X.astype("u1").tobytes())
    assert line.exchange(two, QUIET) == full                 # 2 x N results never fit
    one = encode_request(Cmd.RUN, X[0].astype("u1").tobytes())
    assert line.exchange(one, QUIET) == [(Cmd.RUN, struct.pack("<H", 1))]
    if 2 * n > core.result_depth:
        assert line.exchange(one, QUIET) == full             # N unread results still queued
    st = client.status()
    assert st.results == n and st.bad_frames == (2 if 2 * n > core.result_depth else 1)
    assert client.read_results(n) == vmm.run(prog, X[:1])[0][0].tolist()
    assert line.exchange(one, QUIET) == [(Cmd.RUN, struct.pack("<H", 1))]


def test_sme_board_run_on_the_simulated_board(tmp_path, capsys, monkeypatch):
    """``sme board run --port sim``: the command's whole path (load, run, compare) on the board
    core in Amaranth's simulator; a board that returns wrong results fails the command."""
    from golden.program import save
    from sme.cli import main
    cfg = preset("tiny")
    rng = np.random.default_rng(17)
    prog = fitting_program(cfg, rng, 8, 6, "segment")
    save(prog, tmp_path / "p.smeprog")
    np.save(tmp_path / "x.npy", rng.integers(0, cfg.max_input + 1, size=(3, prog.shape[0])))
    args = ["board", "run", "--port", "sim", "--program", str(tmp_path / "p.smeprog"),
            "--inputs", str(tmp_path / "x.npy"), "--timeout", "0.05"]
    assert main(args) == 0
    assert "OK: the board matches the golden model exactly" in capsys.readouterr().out
    good = hostclient.Client.read_results

    def off_by_one(self, count):                 # a board (or link) that corrupts one result
        out = good(self, count)
        return [out[0] + 1] + out[1:]
    monkeypatch.setattr(hostclient.Client, "read_results", off_by_one)
    assert main(args) == 1
    assert "FAIL: 1 of 18 results differ" in capsys.readouterr().out
    assert main(["board", "run", "--port", "sim", "--program", str(tmp_path / "x.npy"),
                 "--inputs", str(tmp_path / "x.npy")]) == 2
