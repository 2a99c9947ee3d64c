"""golden/hostlink.py: CRC, frame encoding and decoding, status packing (no Amaranth)."""

import pytest

from golden import hostlink as hl
from golden import tile_image as ti


def test_crc16_ccitt_false_check_value():
    assert hl.crc16(b"123456789") == 0x29B1
    assert hl.crc16(b"") == 0xFFFF


def test_frame_roundtrip_and_resync():
    frame = hl.encode_reply(hl.Cmd.READ, bytes(range(10)))
    assert frame[0] == hl.SYNC_REP and frame[2:4] == b"\x0a\x00"
    dec = hl.FrameDecoder()
    # garbage first, then the frame split across feeds
    assert dec.feed(b"\x00\x13" + frame[:5]) == []
    assert dec.feed(frame[5:] + hl.encode_reply(hl.Cmd.RESET)) == [
        (hl.Cmd.READ, bytes(range(10))), (hl.Cmd.RESET, b"")]


def test_bad_crc_rejected():
    frame = bytearray(hl.encode_reply(hl.Cmd.STATUS, b"abc"))
    frame[5] ^= 1
    with pytest.raises(hl.HostLinkError, match="bad CRC"):
        hl.FrameDecoder().feed(bytes(frame))


def test_status_pack_unpack():
    st = hl.Status(1, True, False, True, ti.TileError.CHECKSUM, 7, 0xDEADBEEF, 3, 256, 10, 8,
                   256, 2)
    assert hl.Status.unpack(st.pack()) == st
    with pytest.raises(hl.HostLinkError):
        hl.Status.unpack(b"\x00" * 5)


def test_request_too_long():
    with pytest.raises(ValueError):
        hl.encode_request(hl.Cmd.RUN, bytes(70000))
