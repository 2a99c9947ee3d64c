"""The hostile-input corpus (issue 11): every class of bad input the CLI promises to refuse.

Every case is generated here by code (no checked-in blobs) into its own empty directory and run
as ``python -m sme.cli ...`` in a subprocess whose address space is limited to ``LIMIT_AS``
(``resource.RLIMIT_AS``).  Each case is checked on its own: exit code 2, exactly one line on
stderr of the form ``sme <command>: error: ...`` that names the file or option (``expect``),
no ``Traceback``, no out-of-memory message (the input was refused before allocating, not
rescued after), and no file left behind in the case directory (outputs are atomic, temporary
files removed).  Cases run two at a time.

Classes (the issue's numbering): 1 OS errors at the output boundary, 2 malformed containers and
tables, 3 declared sizes larger than the data or the caps, 4 crafted program files with a valid
checksum, 5 options out of range.  Class 6 (host link) is tested in ``test_hostclient.py``.

:func:`test_no_command_prints_a_traceback` then feeds every bad file of the corpus to every
command that reads that kind of file.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import struct
import subprocess
import sys
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from golden.compiler import compile_matrix
from golden.config import preset
from golden.program import dumps

from .strategies import craft, random_q

# The corpus takes 20-40 s in two subprocesses; it is part of `make test` (issue 11).

LIMIT_AS = 2 << 30
ROOT = Path(__file__).resolve().parents[1]

# Runs a group of commands in one interpreter (imports paid once) under the address-space limit;
# each command gets its own directory, environment, captured stderr and traced peak memory
# (numpy reports its buffers to tracemalloc).
GROUP = """
import contextlib, io, json, os, resource, sys, time, traceback, tracemalloc
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
from sme.cli import main
tracemalloc.start()
results = []
for cwd, argv, env in json.loads(sys.stdin.read()):
    os.chdir(cwd)
    saved = dict(os.environ)
    os.environ.update(env)
    err = io.StringIO()
    tracemalloc.reset_peak()
    t0 = time.time()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main(argv)
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 1
        except BaseException:
            traceback.print_exc()
            rc = -1
    os.environ.clear()
    os.environ.update(saved)
    results.append(dict(rc=rc, stderr=err.getvalue(), peak=tracemalloc.get_traced_memory()[1],
                        seconds=time.time() - t0))
print(json.dumps(results))
"""
#: A case may trace at most this much memory (what it legitimately needs is a few MiB).
PEAK_BYTES = 256 << 20


@dataclasses.dataclass
class Result:
    returncode: int
    stderr: str
    peak: int
    seconds: float


def run_group(jobs: list[tuple[Path, list[str], dict]], limit: int = LIMIT_AS) -> list[Result]:
    """Run ``(cwd, argv, env)`` jobs through ``sme.cli.main`` in one subprocess."""
    e = dict(os.environ, PYTHONPATH=str(ROOT))
    e.pop("SME_DEBUG", None)
    r = subprocess.run([sys.executable, "-c", GROUP.format(limit=limit)], env=e, text=True,
                       input=json.dumps([[str(c), a, v] for c, a, v in jobs]),
                       capture_output=True, timeout=600)
    assert r.returncode == 0, f"the group runner died:\n{r.stderr[-3000:]}"
    return [Result(x["rc"], x["stderr"], x["peak"], x["seconds"]) for x in json.loads(r.stdout)]


def run_split(jobs, parts: int = 2) -> list[Result]:
    """:func:`run_group` over ``parts`` subprocesses at once (the machine has two cores)."""
    chunks = [jobs[i::parts] for i in range(parts)]
    with ThreadPoolExecutor(parts) as pool:
        outs = list(pool.map(run_group, chunks))
    res = [None] * len(jobs)
    for i, out in enumerate(outs):
        res[i::parts] = out
    return res


@dataclasses.dataclass
class Case:
    name: str
    cls: int
    argv: list[str]
    make: Callable[[Path], None]
    expect: str                       # a substring of the error line (the file or option)
    env: dict = dataclasses.field(default_factory=dict)


# ---- generated bad files ------------------------------------------------------------------

def npy_bytes(descr: str, shape, data: bytes = b"", fortran: bool = False) -> bytes:
    """A .npy file whose header says ``descr``/``shape`` followed by ``data``, whatever its
    length."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": descr, "fortran_order": fortran, "shape": tuple(shape)})
    return buf.getvalue() + data


def npy_of(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def npz_of(members: dict[str, bytes], compress: bool = False) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            z.writestr(name + ".npy", data)
    return buf.getvalue()


def deflate_bomb(data_bytes: int = 2 << 30, members: int = 1, names=None) -> bytes:
    """A VALID .npz of ``members`` float64 matrices of ``data_bytes`` zeros each, each member
    deflated to about 1/1000 of its size: one fully flushed block of zeros repeated (zip64
    sizes; the zip directory declares the true sizes)."""
    header = npy_bytes("<f8", (data_bytes // 8 // 1024, 1024))
    size = len(header) + data_bytes
    chunk = 1 << 20
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = comp.compress(bytes(chunk)) + comp.flush(zlib.Z_FULL_FLUSH)
    n = data_bytes // chunk
    head_c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = head_c.compress(header) + head_c.flush(zlib.Z_FULL_FLUSH)
    tail = zlib.compressobj(9, zlib.DEFLATED, -15)
    rest = bytes(data_bytes - n * chunk)
    stream = first + block * n + tail.compress(rest) + tail.flush()
    crc, zero = zlib.crc32(header), bytes(chunk)
    for _ in range(n):
        crc = zlib.crc32(zero, crc)
    crc = zlib.crc32(rest, crc)
    body, central = b"", b""
    for i in range(members):
        name = (names[i] if names else f"conv{i}.npy").encode()
        off = len(body)
        body += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 8, 0, 0, crc, 0xFFFFFFFF,
                            0xFFFFFFFF, len(name), 20) + name + \
            struct.pack("<HHQQ", 1, 16, size, len(stream)) + stream
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 8, 0, 0, crc,
                               0xFFFFFFFF, 0xFFFFFFFF, len(name), 20, 0, 0, 0, 0, off) + \
            name + struct.pack("<HHQQ", 1, 16, size, len(stream))
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, members, members, len(central), len(body),
                      0)
    return body + central + end


def write(name: str, data: bytes | str):
    def make(d: Path):
        p = d / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)
    return make


def both(*makers):
    def make(d: Path):
        for m in makers:
            m(d)
    return make


def sparse(name: str, head: bytes, size: int):
    """``head`` followed by ``size`` zero bytes that are a hole (cheap to make)."""
    def make(d: Path):
        with open(d / name, "wb") as f:
            f.write(head)
            f.truncate(len(head) + size)
    return make


def mkdir(name: str):
    return lambda d: (d / name).mkdir(parents=True)


CFG = preset("tiny")
_Q = random_q(np.random.default_rng(0), (19, 11), CFG, 0.6)
PROG = dumps(compile_matrix(_Q, CFG, squeeze="segment"))
W = npy_of(np.random.default_rng(1).laplace(size=(12, 6)))
X = npy_of(np.random.default_rng(2).integers(0, 16, size=(3, 19)))
CSV_HEAD = "IFM H,IFM W,Cin,kH,kW,Cout,pool,stride\n"
CSV_OK = CSV_HEAD + "8,8,3,3,3,8,0,1\n"
good_prog = write("p.smeprog", PROG)
good_w = write("w.npy", W)
good_x = write("x.npy", X)
good_csv = write("net.csv", CSV_OK)


def _arr(h, name):
    return next(e for e in h["arrays"] if e["name"] == name)


def _retype(name, dtype, conv):
    def edit(header, raw):
        e = _arr(header, name)
        raw[name] = conv(np.frombuffer(raw[name], dtype=e["dtype"])).astype(dtype).tobytes()
        e["dtype"] = np.dtype(dtype).str
    return edit


def crafted(edit_header=None, edit_arrays=None):
    return write("p.smeprog", craft(PROG, edit_header, edit_arrays))


def _huge_cfg(h):
    h["config"].update(xbar_rows=4096, xbar_cols=4096, ou_cols=4096, ou_rows=1,
                       tile_xbars=256, tile_inputs=64, tile_outputs=4096 * 16, name="huge")
    _arr(h, "cells")["shape"] = [0, 4096, 1, 1, 4096]


def _empty_prog(h, raw):
    """A program with no crossbars and no descriptors (an all-zero layer)."""
    for e in h["arrays"]:
        if e["name"] in ("cells", "rowlists") or e["name"].startswith("act_"):
            e["shape"][0] = 0
            raw[e["name"]] = b""
    h["stats"].update(crossbars=0, activations=0, rowlists=0, steps=0, cycles=0,
                      nonzero_cells=0, floor_crossbars=0)
    h["n_steps"] = 0
    raw["block_data"] = bytes(len(raw["block_data"]))


def _empty_huge(h, raw):
    """An all-zero layer for a config whose tile is far too large to simulate."""
    _empty_prog(h, raw)
    _huge_cfg(h)
    _arr(h, "rowlists")["shape"] = [0, 1]


def raw_header(text: bytes):
    """An ``edit_header`` for :func:`craft` that replaces the header's JSON text."""
    def edit(h):
        pass
    edit.raw = lambda _: text
    return edit


# Programs with a valid checksum and a crafted body (class 4); given to run, stats, simulate.
BAD_PROGRAMS = {
    "float row lists table": crafted(None, _retype("rowlists", np.float32, lambda a: a)),
    "signed cells": crafted(None, _retype("cells", np.int8, lambda a: -a.astype(np.int8))),
    "no options.squeeze": crafted(lambda h: h["options"].pop("squeeze")),
    "no stats.cycles": crafted(lambda h: h["stats"].pop("cycles")),
    "stats lie": crafted(lambda h: h["stats"].update(crossbars=1)),
    "shape wider than blocks": crafted(lambda h: h.update(shape=[19, 1 << 24])),
    "shape wider than blocks, stats agree": crafted(
        lambda h: h.update(shape=[19, 1 << 20]) or h["stats"].update(N=1 << 20)),
    "cells as int16 (values in range)": crafted(None, _retype("cells", np.int16, lambda a: a)),
    "cells as int8 (same bytes)": crafted(None, _retype("cells", np.int8, lambda a: a)),
    "row lists as int64 (values in range)": crafted(None, _retype("rowlists", np.int64,
                                                                  lambda a: a)),
    "shape as floats": crafted(lambda h: h.update(shape=[19.5, 11])),
    "array past payload": crafted(lambda h: _arr(h, "cells")["shape"].__setitem__(0, 1 << 40)),
    "deep header": crafted(raw_header(b"[" * 100_000 + b"]" * 100_000)),
    "header not an object": crafted(raw_header(b"[1, 2]")),
    "header not JSON": crafted(raw_header(b"{'config': }")),
    "cell value 2": crafted(None, lambda h, r: r.update(cells=b"\x02" + r["cells"][1:])),
}
BAD_PROGRAMS["truncated"] = write("p.smeprog", PROG[:-9])
BAD_PROGRAMS["empty"] = write("p.smeprog", b"")
BAD_PROGRAMS["a directory"] = mkdir("p.smeprog")

# Bad .npy files (classes 2 and 3), given as weights and as inputs.
BAD_NPY = {
    "declares 8 TiB": write("a.npy", npy_bytes("<f8", (1 << 20, 1 << 20), bytes(64))),
    "declares more than present": write("a.npy", npy_bytes("<i8", (3, 19), bytes(64))),
    "trailing bytes": write("a.npy", npy_of(np.ones((3, 19), np.int64)) + bytes(8)),
    "above the cap (sparse)": sparse("a.npy", npy_bytes("<f8", (1 << 15, 1 << 13)), 1 << 31),
    "strings": write("a.npy", npy_of(np.array([["1", "2"]] * 3))),
    "complex": write("a.npy", npy_of(np.ones((12, 6)) * (1 + 2j))),
    "object (pickle)": write("a.npy", npy_bytes("|O", (2, 2), b"\x80\x04N.")),
    "garbage header": write("a.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': ]]]\n" + bytes(8)),
    "negative shape": write("a.npy", npy_bytes("<f8", (-1, 4), bytes(32))),
    "unknown dtype": write("a.npy", npy_bytes("<f8", (2, 2), bytes(32)).replace(b"<f8", b"<x9")),
    "zip, not npy": write("a.npy", b"PK\x03\x04" + bytes(60)),
    "empty file": write("a.npy", b""),
    "a directory": mkdir("a.npy"),
    "nan weights": write("a.npy", npy_of(np.full((12, 6), np.nan))),
}

# Bad model files for `report --network FILE` (class 2 and 3).
BAD_MODELS = {
    "npz: not a zip": write("m.npz", b"PK\x03\x04" + b"\xff" * 200),
    "npz: truncated zip": write("m.npz", npz_of({"conv": npy_of(np.ones((4, 3, 3, 3)))})[:-30]),
    "npz: member declares 8 TiB": write("m.npz", npz_of({"conv": npy_bytes(
        "<f8", (1 << 20, 1 << 20), bytes(64))})),
    "npz: deflate bomb 2 GiB": write("m.npz", deflate_bomb()),
    "npz: three 100 MiB members": write("m.npz", deflate_bomb(100 << 20, 3)),
    "pt: torch zip with a 2 GiB storage": write("m.pt", deflate_bomb(
        2 << 30, 2, ["archive/data/0", "archive/data.pkl"])),
    "npz: string array": write("m.npz", npz_of({"fc": npy_of(np.array([["a", "b"]] * 2))})),
    "npz: complex array": write("m.npz", npz_of({"fc": npy_of(np.ones((4, 3)) * 1j)})),
    "npz: absurd out_hw": write("m.npz", npz_of({
        "conv": npy_of(np.ones((4, 3, 3, 3))), "conv@out_hw": npy_of(np.array([1 << 40, 7]))})),
    "npz: negative out_hw": write("m.npz", npz_of({
        "conv": npy_of(np.ones((4, 3, 3, 3))), "conv@out_hw": npy_of(np.array([-5, 7]))})),
    "npz: zero stride": write("m.npz", npz_of({
        "conv": npy_of(np.ones((4, 3, 3, 3))), "conv@stride": npy_of(np.array(0))})),
    "npz: object member": write("m.npz", npz_of({"fc": npy_bytes("|O", (2,), b"\x80\x04N.")})),
    "csv: inf": write("m.csv", CSV_HEAD + "inf,8,3,3,3,8,0,1\n"),
    "csv: nan": write("m.csv", CSV_HEAD + "8,nan,3,3,3,8,0,1\n"),
    "csv: zero stride": write("m.csv", CSV_HEAD + "8,8,3,3,3,8,0,0\n"),
    "csv: negative size": write("m.csv", CSV_HEAD + "8,8,-3,3,3,8,0,1\n"),
    "csv: negative cout": write("m.csv", CSV_HEAD + "8,8,3,3,3,-8,0,1\n"),
    "csv: 1e30 channels": write("m.csv", CSV_HEAD + "8,8,1e30,3,3,8,0,1\n"),
    "csv: huge layer": write("m.csv", CSV_HEAD + "8,8,100000,3,3,100000,0,1\n"),
    "csv: not text": write("m.csv", bytes(range(256)) * 4),
}


def corpus() -> list[Case]:
    cases = []
    # 1: OS errors at the output boundary, for every command that writes.
    targets = {
        "existing directory": (mkdir("out"), "out", "out"),
        "path under a regular file": (write("f", "x"), "f/out", "f/out"),
        "read-only location": (lambda d: None, "/sys/sme-hostile/out", "/sys/sme-hostile"),
        "empty name": (lambda d: None, "", "''"),
    }
    for what, (make, out, expect) in targets.items():
        # a directory is a fine output *directory* for demo/report/verilog
        cases.append(Case(f"compile -o {what}", 1, ["compile", "w.npy", "-o", out],
                          both(good_w, make), expect))
        cases.append(Case(f"run -o {what}", 1, ["run", "p.smeprog", "--inputs", "x.npy", "-o",
                                                out], both(good_prog, good_x, make), expect))
        if what == "existing directory":
            continue
        cases.append(Case(f"demo --out {what}", 1, ["demo", "--preset", "tiny", "--out", out],
                          make, expect))
        cases.append(Case(f"report --out {what}", 1, [
            "report", "--network", "net.csv", "--quiet", "--no-plots", "--preset", "tiny",
            "--out", out], both(good_csv, make), expect))
        cases.append(Case(f"verilog -o {what}", 1, ["verilog", "--preset", "tiny", "-o", out],
                          make, expect))
    cases.append(Case("report --out where report.json is a directory", 1, [
        "report", "--network", "net.csv", "--quiet", "--no-plots", "--preset", "tiny",
        "--out", "rep"], both(good_csv, mkdir("rep/report.json")), "report.json"))
    cases.append(Case("compile -o name too long", 1, ["compile", "w.npy", "-o", "x" * 300],
                      good_w, "xxxx"))
    # 2 and 3: bad arrays as weights and as inputs; bad models.
    for what, make in BAD_NPY.items():
        cases.append(Case(f"compile weights: {what}", 2 if "declares" not in what else 3,
                          ["compile", "a.npy", "-o", "p.smeprog"], make, "a.npy"))
        cases.append(Case(f"run inputs: {what}", 3, ["run", "p.smeprog", "--inputs", "a.npy",
                                                     "-o", "y.npy"], both(good_prog, make),
                          "a.npy"))
    for what in ("declares 8 TiB", "strings", "complex"):
        cases.append(Case(f"simulate inputs: {what}", 3, [
            "simulate", "p.smeprog", "--inputs", "a.npy"], both(good_prog, BAD_NPY[what]),
            "a.npy"))
        cases.append(Case(f"board run inputs: {what}", 3, [
            "board", "run", "--port", "/dev/null", "--program", "p.smeprog", "--inputs",
            "a.npy"], both(good_prog, BAD_NPY[what]), "a.npy"))
    for what, make in BAD_MODELS.items():
        name = {"npz": "m.npz", "csv": "m.csv", "pt:": "m.pt"}[what[:3]]
        cases.append(Case(f"report model {what}", 2, [
            "report", "--network", name, "--quiet", "--no-plots", "--preset", "tiny",
            "--out", "rep"], make, name))
    cases.append(Case("report weights: deflate bomb", 3, [
        "report", "--network", "net.csv", "--weights", "m.npz", "--quiet", "--no-plots",
        "--out", "rep"], both(good_csv, BAD_MODELS["npz: deflate bomb 2 GiB"]), "m.npz"))
    cases.append(Case("run: output above the cap", 3, [
        "run", "p.smeprog", "--inputs", "x.npy", "-o", "y.npy"], both(good_prog, good_x),
        "SME_MAX_BYTES", env={"SME_MAX_BYTES": "100"}))
    cases.append(Case("simulate: config too large for the simulator", 3, [
        "simulate", "p.smeprog", "--inputs", "x.npy"], both(crafted(None, _empty_huge), good_x),
        "simulator"))
    cases.append(Case("cap itself malformed", 3, ["stats", "p.smeprog"], good_prog,
                      "SME_MAX_BYTES", env={"SME_MAX_BYTES": "lots"}))
    # 4: crafted programs.
    for what, make in BAD_PROGRAMS.items():
        for cmd in (["run", "p.smeprog", "--inputs", "x.npy", "-o", "y.npy"],
                    ["stats", "p.smeprog"],
                    ["simulate", "p.smeprog", "--inputs", "x.npy"]):
            cases.append(Case(f"{cmd[0]} program: {what}", 4, cmd, both(make, good_x),
                              "p.smeprog"))
    # 5: options out of range (refused while parsing, before any work).
    for argv, expect in [
        (["simulate", "p.smeprog", "--inputs", "x.npy", "--idle", "1.0"], "--idle"),
        (["simulate", "p.smeprog", "--inputs", "x.npy", "--idle", "nan"], "--idle"),
        (["simulate", "p.smeprog", "--inputs", "x.npy", "--idle", "-0.5"], "--idle"),
        (["simulate", "p.smeprog", "--inputs", "x.npy", "--seed", "-1"], "--seed"),
        (["compile", "w.npy", "-o", "p2", "--adc-bits", "0"], "--adc-bits"),
        (["compile", "w.npy", "-o", "p2", "--adc-bits", "99"], "adc_bits"),
        (["demo", "--seed", "-3"], "--seed"),
        (["verilog", "--top", "sme_board_core", "--clock", "0", "-o", "v"], "--clock"),
        (["verilog", "--top", "sme_board_core", "--baud", "-9600", "-o", "v"], "--baud"),
        (["board", "run", "--port", "/dev/null", "--program", "p.smeprog", "--inputs", "x.npy",
          "--timeout", "-1"], "--timeout"),
        (["board", "run", "--port", "/dev/null", "--program", "p.smeprog", "--inputs", "x.npy",
          "--baud", "0"], "--baud"),
        (["report", "--network", "net.csv", "--prune", "1.5"], "--prune"),
        (["report", "--network", "net.csv", "--prune", "nan"], "--prune"),
        (["report", "--network", "net.csv", "--layers", "-2"], "--layers"),
        (["report", "--network", "net.csv", "--seed", "-2"], "--seed"),
        (["sim", "--soak", "--cycles", "0"], "--cycles"),
        (["fpga", "build", "--board", "icebreaker", "--seed", "-1"], "--seed"),
        (["--max-bytes", "0", "stats", "p.smeprog"], "--max-bytes"),
    ]:
        cases.append(Case(" ".join(argv), 5, argv,
                          both(good_prog, good_x, good_w, good_csv), expect))
    names = [c.name for c in cases]
    assert len(set(names)) == len(names), "case names must be unique"
    return cases


CASES = corpus()


def _listing(d: Path) -> list[Path]:
    return sorted(p.relative_to(d) for p in d.rglob("*"))


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Every case made in its own directory, run, and the directory listed before and after."""
    tmp = tmp_path_factory.mktemp("hostile")
    dirs, before = [], []
    for i, case in enumerate(CASES):
        d = tmp / f"case{i}"
        d.mkdir()
        case.make(d)
        dirs.append(d)
        before.append(_listing(d))
    res = run_split([(d, c.argv, c.env) for d, c in zip(dirs, CASES)])
    return {c.name: (r, b, _listing(d)) for c, r, b, d in zip(CASES, res, before, dirs)}


def check_refusal(r: Result, case_name: str, expect: str):
    """Exit 2, one line naming what is wrong, no traceback, memory bounded."""
    err = r.stderr.rstrip("\n")
    assert "Traceback" not in r.stderr, f"{case_name}: traceback:\n{r.stderr}"
    assert r.returncode == 2, f"{case_name}: exit {r.returncode}, stderr:\n{r.stderr}"
    assert len(err.splitlines()) == 1, f"{case_name}: not one line:\n{r.stderr}"
    assert err.startswith("sme") and ": error: " in err, err
    assert expect in err, f"{case_name}: {expect!r} not named in: {err}"
    assert "out of memory" not in err, f"{case_name}: allocated before checking: {err}"
    assert r.peak < PEAK_BYTES, f"{case_name}: traced peak {r.peak} bytes"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_case(case, results):
    r, before, after = results[case.name]
    check_refusal(r, case.name, case.expect)
    assert after == before, f"{case.name}: left behind {sorted(set(after) - set(before))}"


def test_corpus_covers_every_class():
    assert {c.cls for c in CASES} == {1, 2, 3, 4, 5}


# ---- every bad file against every command that reads that kind of file ---------------------

READERS = {
    "npy": [["compile", "a.npy", "-o", "o.smeprog"],
            ["compile", "a.npy", "-o", "o.smeprog", "--integer"],
            ["run", "p.smeprog", "--inputs", "a.npy", "-o", "y.npy"],
            ["simulate", "p.smeprog", "--inputs", "a.npy"],
            ["board", "run", "--port", "/dev/null", "--program", "p.smeprog", "--inputs",
             "a.npy"]],
    "prog": [["run", "p.smeprog", "--inputs", "x.npy", "-o", "y.npy"], ["stats", "p.smeprog"],
             ["stats", "p.smeprog", "--json"], ["simulate", "p.smeprog", "--inputs", "x.npy"],
             ["ppa", "--program", "p.smeprog"],
             ["board", "run", "--port", "/dev/null", "--program", "p.smeprog", "--inputs",
              "x.npy"]],
    "model": [["report", "--network", "{m}", "--quiet", "--no-plots", "--preset", "tiny",
               "--out", "rep"],
              ["report", "--network", "resnet50", "--weights", "{m}", "--quiet", "--no-plots",
               "--out", "rep"]],
}

def test_no_command_prints_a_traceback(tmp_path):
    files = [("npy", f"npy {k}", m) for k, m in BAD_NPY.items()] + \
        [("prog", f"prog {k}", m) for k, m in BAD_PROGRAMS.items()] + \
        [("model", f"model {k}", m) for k, m in BAD_MODELS.items()]
    jobs, names = [], []
    for i, (kind, name, make) in enumerate(files):
        d = tmp_path / f"f{i}"
        d.mkdir()
        both(good_x, make)(d) if kind == "prog" else both(good_prog, good_x, make)(d)
        m = next((p.name for p in d.iterdir() if p.name.startswith("m.")), "")
        for argv in READERS[kind]:
            jobs.append((d, [a.replace("{m}", m) for a in argv], {}))
            names.append(name)
    bad = [f"{name}: sme {' '.join(argv)} -> exit {r.returncode}: {r.stderr.strip()[-300:]}"
           for name, (_, argv, _), r in zip(names, jobs, run_split(jobs))
           if "Traceback" in r.stderr or r.returncode != 2
           or len(r.stderr.strip().splitlines()) != 1]
    assert not bad, "\n".join(bad)
