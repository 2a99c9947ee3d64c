"""golden/frames.py: CRC, frame encoding and decoding, status packing (no Amaranth)."""

import pytest

from golden import frames
from golden import tile_image as ti


def test_crc16_ccitt_false_check_value():
    assert frames.crc16(b"123456789") == 0x29B1
    assert frames.crc16(b"") == 0xFFFF


def test_frame_roundtrip_and_resync():
    frame = frames.encode_reply(frames.Cmd.READ, bytes(range(10)))
    assert frame[0] == frames.SYNC_REP and frame[2:4] == b"\x0a\x00"
    dec = frames.FrameDecoder()
    # garbage first, then the frame split across feeds
    assert dec.feed(b"\x00\x13" + frame[:5]) == []
    assert dec.feed(frame[5:] + frames.encode_reply(frames.Cmd.RESET)) == [
        (frames.Cmd.READ, bytes(range(10))), (frames.Cmd.RESET, b"")]


def test_bad_crc_rejected():
    frame = bytearray(frames.encode_reply(frames.Cmd.STATUS, b"abc"))
    frame[5] ^= 1
    with pytest.raises(frames.FrameError, match="bad CRC"):
        frames.FrameDecoder().feed(bytes(frame))


def test_status_pack_unpack():
    st = frames.Status(1, True, False, True, ti.TileError.CHECKSUM, 7, 0xDEADBEEF, 3, 256, 10, 8,
                   256, 2)
    assert frames.Status.unpack(st.pack()) == st
    with pytest.raises(frames.FrameError):
        frames.Status.unpack(b"\x00" * 5)


def test_request_too_long():
    with pytest.raises(ValueError):
        frames.encode_request(frames.Cmd.RUN, bytes(70000))
