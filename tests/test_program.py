import json
import struct
import zlib

import numpy as np
import pytest

from golden.compiler import compile_blocks, compile_matrix
from golden.config import preset
from golden.program import (FORMAT_VERSION, MAGIC, ProgramError, dumps, load, loads, save)
from golden.vmm import run

from sim.stimulus import random_q

from .strategies import craft


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
    with pytest.raises(ProgramError, match="version 3 is not supported"):
        loads(_rewrap(d))


def test_version_1_is_refused_with_a_reason(prog):
    """A version-1 file (per-activation inputs, no row lists) is refused, saying why."""
    d = dumps(prog)[:-4]
    d = d[:8] + struct.pack("<I", 1) + d[12:]
    with pytest.raises(ProgramError, match=r"version 1 predates row lists \(version 2\); "
                                           "recompile the layer"):
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


# ---- a valid checksum is not validity: crafted headers and arrays --------------------------

def _arr(header, name):
    return next(e for e in header["arrays"] if e["name"] == name)


def _retype(name, dtype, conv):
    def edit(header, raw):
        e = _arr(header, name)
        a = np.frombuffer(raw[name], dtype=e["dtype"])
        raw[name] = conv(a).astype(dtype).tobytes()
        e["dtype"] = np.dtype(dtype).str
    return edit


@pytest.mark.parametrize("edit_header, edit_arrays, match", [
    (None, _retype("rowlists", np.float32, lambda a: a), "'rowlists' has dtype '<f4'"),
    (None, _retype("cells", np.int8, lambda a: -a.astype(np.int8)), "'cells' has dtype '|i1'"),
    (lambda h: h["options"].pop("squeeze"), None, "option 'squeeze' missing"),
    (lambda h: h["stats"].pop("crossbars"), None, "statistic 'crossbars' missing"),
    (lambda h: h.pop("stats"), None, "no 'stats'"),
    (lambda h: h["stats"].update(crossbars=999), None, "statistic 'crossbars' is 999"),
    (lambda h: h.update(shape=[19, 1 << 24]), None, "cover 11 of the layer's 16777216 columns"),
    (lambda h: h.update(shape=[19.0, 11]), None, "shape"),
    (lambda h: h.update(n_steps=h["n_steps"] + 1), None, "steps"),
    (lambda h: h["config"].update(xbar_rows=4096, xbar_cols=4096), None, "cells have shape"),
    (lambda h: _arr(h, "cells")["shape"].__setitem__(0, 1 << 40), None, "declares shape"),
    (lambda h: _arr(h, "block_data").update(offset=3), None, "does not follow"),
    (lambda h: h["arrays"].append(dict(_arr(h, "cells"))), None, "repeated array"),
    (lambda h: h.update(meta={"a": json.loads("[" * 20 + "]" * 20)}), None, "nested deeper"),
])
def test_crafted_header_with_valid_crc_rejected(prog, edit_header, edit_arrays, match):
    with pytest.raises(ProgramError, match=match.replace("(", r"\(").replace("|", r"\|")):
        loads(craft(dumps(prog), edit_header, edit_arrays))


def test_crafted_values_with_valid_crc_rejected(prog):
    def cell_two(header, raw):
        raw["cells"] = bytes([2]) + raw["cells"][1:]         # tiny preset: 1-bit cells
    with pytest.raises(ProgramError, match="outside the digits 0..1"):
        loads(craft(dumps(prog), None, cell_two))

    def geometry(header, raw):                               # a block past the data
        g = np.frombuffer(raw["block_geometry"], dtype="<i8").copy()
        g[2] = 1 << 40                                       # rows of block 0
        raw["block_geometry"] = g.tobytes()
    with pytest.raises(ProgramError, match="block table"):
        loads(craft(dumps(prog), None, geometry))

    def off_pattern(header, raw):                            # 5 = 0b101: not in a window of 2
        d = np.frombuffer(raw["block_data"], dtype="<i4").copy()
        d[0] = 5
        raw["block_data"] = d.tobytes()
    with pytest.raises(ProgramError, match="pattern|statistic"):
        loads(craft(dumps(prog), None, off_pattern))


def _rowlist_edit(fn):
    def edit(header, raw):
        ids = np.frombuffer(raw["act_rowlist"], dtype="<i4").copy()
        fn(ids)
        raw["act_rowlist"] = ids.tobytes()
    return edit


def test_file_stores_each_row_list_once():
    """Two activations sharing a row list: the file holds it once, the loader rebuilds the
    per-activation inputs from it."""
    from golden.program import validate
    cfg = preset("tiny")
    q = random_q(np.random.default_rng(0), (19, 11), cfg, 0.6)
    p = compile_matrix(q, cfg, squeeze="segment")
    a = p.acts
    # give activation 1 the row list of activation 0 (same crossbar and window, same rows)
    j = next(j for j in range(1, p.n_act) if a["xbar"][j] == a["xbar"][0]
             and a["window"][j] == a["window"][0])
    p.inputs[j] = p.inputs[0]
    ids = np.arange(p.n_act)
    ids[j] = 0
    ids[ids > j] -= 1
    a["rowlist"] = ids.astype(np.int32)
    validate(p)
    p.stats["rowlists"] = p.n_rowlists
    d = dumps(p)
    hlen = struct.unpack_from("<I", d, 12)[0]
    table = {e["name"]: e for e in json.loads(d[16:16 + hlen])["arrays"]}
    assert table["rowlists"]["shape"] == [p.n_act - 1, cfg.ou_rows]
    back = loads(d)
    assert back.n_rowlists == p.n_act - 1
    assert np.array_equal(back.inputs, p.inputs)
    assert np.array_equal(back.acts["rowlist"], ids)


@pytest.mark.parametrize("edit, match", [
    (_rowlist_edit(lambda ids: ids.__setitem__(0, -1)), "'rowlist' out of range"),
    (_rowlist_edit(lambda ids: ids.__setitem__(0, len(ids))), "'rowlist' out of range"),
    (_rowlist_edit(lambda ids: ids.__setitem__(-1, 0)), "row lists stored|different"),
])
def test_crafted_row_lists_rejected(prog, edit, match):
    with pytest.raises(ProgramError, match=match):
        loads(craft(dumps(prog), None, edit))


def test_row_list_sharing_rules_enforced(prog):
    """validate(): a list's activations must share inputs, crossbar and window; ids must run
    0..n-1 with every id used."""
    from golden.program import validate
    a = prog.acts
    n = prog.n_act

    def check(ids, match, inputs=None):
        bad = dict(prog.__dict__)
        bad["acts"] = dict(a, rowlist=np.asarray(ids, dtype=np.int32))
        if inputs is not None:
            bad["inputs"] = inputs
        with pytest.raises(ProgramError, match=match):
            validate(type(prog)(**bad))

    # two activations on different windows of one crossbar, or on different crossbars, cannot
    # share a list, even with the same inputs
    for what, other in (("windows", lambda j: a["xbar"][j] == a["xbar"][0]
                         and a["window"][j] != a["window"][0]),
                        ("xbars", lambda j: a["xbar"][j] != a["xbar"][0])):
        j = next(j for j in range(1, n) if other(j))
        inp = prog.inputs.copy()
        inp[j] = inp[0]
        ids = np.arange(n)
        ids[j] = 0
        ids[ids > j] -= 1
        check(ids, f"different {what}", inp)
    # same crossbar and window but different inputs
    j = next((j for j in range(1, n) if (a["xbar"][j], a["window"][j])
              == (a["xbar"][0], a["window"][0])
              and not np.array_equal(prog.inputs[j], prog.inputs[0])), None)
    if j is not None:
        ids = np.arange(n)
        ids[j] = 0
        ids[ids > j] -= 1
        check(ids, "different input rows")
    check(np.r_[np.arange(n - 1), n], "every id used")         # id n - 1 unused


def test_deep_header_is_refused_without_recursion(prog):
    deep = b"[" * 100_000 + b"]" * 100_000

    def edit(h):
        pass
    edit.raw = lambda text: text[:-1] + b', "x": ' + deep + b"}"
    with pytest.raises(ProgramError, match="nested deeper"):
        loads(craft(dumps(prog), edit))
