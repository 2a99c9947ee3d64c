import struct
import zlib

import numpy as np
import pytest

from golden.compiler import compile_blocks, compile_matrix
from golden.config import preset
from golden.program import (FORMAT_VERSION, MAGIC, ProgramError, dumps, load, loads, save)
from golden.vmm import run

from .strategies import random_q


@pytest.fixture
def prog():
    cfg = preset("tiny")
    q = random_q(np.random.default_rng(0), (19, 11), cfg, 0.6)
    return compile_matrix(q, cfg, squeeze="segment", meta={"source": "test"})


def test_roundtrip_is_identical(prog, tmp_path):
    save(prog, tmp_path / "p.smeprog")
    back = load(tmp_path / "p.smeprog", expect_cfg=prog.cfg)
    assert dumps(back) == dumps(prog)
    X = np.random.default_rng(1).integers(0, 16, size=(3, 19))
    assert np.array_equal(run(back, X)[0], run(prog, X)[0])


def test_grouped_blocks_roundtrip(tmp_path):
    cfg = preset("tiny")
    rng = np.random.default_rng(4)
    blocks = [(g * 9, g, random_q(rng, (9, 1), cfg, 1.0)) for g in range(5)]
    p = compile_blocks(blocks, (45, 5), cfg)
    back = loads(dumps(p))
    assert [b[2].tolist() for b in back.blocks] == [b[2].tolist() for b in blocks]


@pytest.mark.parametrize("mutate, match", [
    (lambda d: d[:-7], "checksum|truncated"),
    (lambda d: d[:10], "truncated"),
    (lambda d: b"NOTPROG\0" + d[8:], "bad magic"),
    (lambda d: d[:40] + bytes([d[40] ^ 1]) + d[41:], "checksum"),
    (lambda d: d[:-20] + bytes([d[-20] ^ 0x80]) + d[-19:], "checksum"),
])
def test_corrupt_files_rejected(prog, mutate, match):
    with pytest.raises(ProgramError, match=match):
        loads(mutate(dumps(prog)))


def _rewrap(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def test_wrong_version_rejected(prog):
    d = dumps(prog)[:-4]
    d = d[:8] + struct.pack("<I", FORMAT_VERSION + 1) + d[12:]
    with pytest.raises(ProgramError, match="version 2 is not supported"):
        loads(_rewrap(d))


def test_malformed_header_with_valid_crc_rejected(prog):
    d = dumps(prog)[:-4]
    hlen = struct.unpack_from("<I", d, 12)[0]
    header = d[16:16 + hlen].replace(b'"tiny"', b'"tiny" ,"x":', 1)
    with pytest.raises(ProgramError, match="malformed header"):
        loads(_rewrap(d[:12] + struct.pack("<I", len(header)) + header + d[16 + hlen:]))


def test_out_of_range_descriptor_rejected(prog):
    prog.acts["plane"][0] = prog.cfg.planes      # past the last plane
    with pytest.raises(ProgramError, match="plane"):
        loads(dumps(prog))


def test_config_mismatch_rejected(prog):
    with pytest.raises(ProgramError, match="different config: ou_rows is 3, expected 2"):
        loads(dumps(prog), expect_cfg=prog.cfg.replace(ou_rows=2))


def test_save_is_atomic(prog, tmp_path, monkeypatch):
    path = tmp_path / "p.smeprog"
    save(prog, path)
    before = path.read_bytes()
    import golden.program as gp

    def boom(*a, **k):       # fail after the bytes were written, before the rename
        raise RuntimeError("disk full")
    monkeypatch.setattr(gp.os, "fsync", boom)
    with pytest.raises(RuntimeError):
        gp.save(prog, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["p.smeprog"]


def test_magic_and_layout(prog):
    d = dumps(prog)
    assert d.startswith(MAGIC)
    assert struct.unpack_from("<I", d, 8)[0] == FORMAT_VERSION
