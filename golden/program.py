"""The compiled program: what the golden VMM, the RTL tile, the benches and the FPGA host run.

A program holds one layer compiled for the SME design:

* ``cells``: the crossbar cell images, uint8 array ``(xbars, windows, colgroups, ou_rows,
  ou_cols)``; entry ``[x, w, g, r, c]`` is the digit stored at physical row ``w*ou_rows + r``,
  column ``g*ou_cols + c`` of crossbar ``x`` (0 .. 2^cell_bits - 1).
* the **schedule**: one *activation descriptor* per OU activation, sorted by (step, xbar).
  Fields (arrays of length ``n_act``): ``step`` (issue slot: every crossbar issues at most one
  activation per step), ``xbar``, ``window``, ``colgroup``, ``outgroup`` (the output columns
  ``outgroup*ou_cols + c`` it feeds), ``plane`` (digit index of the magnitude), ``sign``
  (0 = positive set, 1 = negative set), ``shift`` (squeeze shift s) and ``inputs``
  ``(n_act, ou_rows)``: the input index that drives each wordline of the window, -1 where the
  wordline stays off.  The splice shift of a sample for input bit t is
  ``t + plane*cell_bits + shift``.
* the quantized weights themselves, as blocks ``(row0, col0, q)`` of the K x N layer matrix (a
  grouped or depthwise layer is block-diagonal and is never stored densely), used by the
  baselines and by checks.

File format, version 1 (all integers little-endian)::

    magic    8 bytes   b"SMEPROG\\0"
    version  u32       1
    hlen     u32       length of the header
    header   hlen      UTF-8 JSON: {"config", "options", "shape", "n_steps", "stats", "meta",
                       "arrays": [{"name", "dtype", "shape", "offset", "nbytes"}, ...]}
    payload            the arrays' raw bytes, C order, at the offsets the header gives
    crc32    u32       zlib.crc32 of every byte before it

:func:`save` writes atomically (temporary file + rename).  :func:`load` rejects a wrong
magic, an unknown version, a truncated file, a checksum mismatch, a malformed header and (if
asked) a config different from the expected one, each with a :class:`ProgramError`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np

from .config import ConfigError, SMEConfig

__all__ = ["Program", "ProgramError", "save", "load", "dumps", "loads", "atomic_write_bytes",
           "FORMAT_VERSION", "MAGIC", "ACT_FIELDS"]

MAGIC = b"SMEPROG\0"
FORMAT_VERSION = 1

#: Descriptor fields stored as one array each, with their dtypes.
ACT_FIELDS = {"step": np.int32, "xbar": np.int32, "window": np.int32, "colgroup": np.int32,
              "outgroup": np.int32, "plane": np.int32, "sign": np.int32, "shift": np.int32}


class ProgramError(ValueError):
    """A program file that cannot be used: truncated, corrupt, wrong version or config."""


@dataclasses.dataclass
class Program:
    cfg: SMEConfig
    shape: tuple[int, int]                # (K inputs, N outputs)
    cells: np.ndarray                     # uint8 (X, W, G, ou_rows, ou_cols)
    acts: dict[str, np.ndarray]           # ACT_FIELDS, each (n_act,)
    inputs: np.ndarray                    # int32 (n_act, ou_rows), -1 = wordline off
    blocks: list[tuple[int, int, np.ndarray]]   # (row0, col0, int q block)
    options: dict = dataclasses.field(default_factory=dict)
    stats: dict = dataclasses.field(default_factory=dict)
    meta: dict = dataclasses.field(default_factory=dict)

    @property
    def n_act(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def n_xbars(self) -> int:
        return int(self.cells.shape[0])

    @property
    def n_steps(self) -> int:
        return int(self.acts["step"].max()) + 1 if self.n_act else 0

    @property
    def n_outgroups(self) -> int:
        return -(-self.shape[1] // self.cfg.ou_cols)

    def dense_q(self) -> np.ndarray:
        """The K x N integer matrix (dense: for small layers and checks only)."""
        k, n = self.shape
        q = np.zeros((k, n), dtype=np.int64)
        for r0, c0, b in self.blocks:
            q[r0:r0 + b.shape[0], c0:c0 + b.shape[1]] = b
        return q

    def cycles_per_vector(self) -> int:
        """Issue cycles per input vector: every input bit runs every step once."""
        return self.cfg.input_bits * self.n_steps


# ---- serialisation ----------------------------------------------------------------------

def _arrays(p: Program) -> dict[str, np.ndarray]:
    arrs = {"cells": np.ascontiguousarray(p.cells, dtype=np.uint8),
            "inputs": np.ascontiguousarray(p.inputs, dtype=np.int32)}
    for name, dt in ACT_FIELDS.items():
        arrs["act_" + name] = np.ascontiguousarray(p.acts[name], dtype=dt)
    offs = np.array([[r0, c0, b.shape[0], b.shape[1]] for r0, c0, b in p.blocks],
                    dtype=np.int64).reshape(-1, 4)
    arrs["block_geometry"] = offs
    arrs["block_data"] = (np.concatenate([b.astype(np.int32).ravel() for _, _, b in p.blocks])
                          if p.blocks else np.zeros(0, dtype=np.int32))
    return arrs


def dumps(p: Program) -> bytes:
    arrs = _arrays(p)
    table, off = [], 0
    for name, a in arrs.items():
        table.append({"name": name, "dtype": a.dtype.str, "shape": list(a.shape),
                      "offset": off, "nbytes": int(a.nbytes)})
        off += a.nbytes
    header = json.dumps({"config": p.cfg.to_dict(), "options": p.options,
                         "shape": list(p.shape), "n_steps": p.n_steps, "stats": p.stats,
                         "meta": p.meta, "arrays": table}, sort_keys=True).encode()
    body = b"".join([MAGIC, struct.pack("<II", FORMAT_VERSION, len(header)), header]
                    + [a.tobytes() for a in arrs.values()])
    return body + struct.pack("<I", zlib.crc32(body))


def loads(data: bytes, expect_cfg: SMEConfig | None = None, source: str = "program") -> Program:
    def fail(msg: str):
        raise ProgramError(f"{source}: {msg}")

    if len(data) < len(MAGIC) + 12:
        fail(f"truncated: {len(data)} bytes is shorter than any program file")
    if data[:len(MAGIC)] != MAGIC:
        fail("not an SME program file (bad magic)")
    version, hlen = struct.unpack_from("<II", data, len(MAGIC))
    if version != FORMAT_VERSION:
        fail(f"format version {version} is not supported (this tool reads {FORMAT_VERSION})")
    (crc,) = struct.unpack_from("<I", data, len(data) - 4)
    if zlib.crc32(data[:-4]) != crc:
        fail("checksum mismatch: the file is truncated or corrupt")
    start = len(MAGIC) + 8
    try:
        header = json.loads(data[start:start + hlen].decode())
        cfg = SMEConfig.from_dict(header["config"])
        payload = memoryview(data)[start + hlen:len(data) - 4]
        arrs = {}
        for ent in header["arrays"]:
            o, n = int(ent["offset"]), int(ent["nbytes"])
            if o < 0 or o + n > len(payload):
                fail(f"array {ent['name']!r} runs past the end of the payload")
            a = np.frombuffer(payload[o:o + n], dtype=np.dtype(ent["dtype"]))
            arrs[ent["name"]] = a.reshape(ent["shape"]).copy()
        shape = tuple(int(v) for v in header["shape"])
        geo, flat, blocks, pos = arrs["block_geometry"], arrs["block_data"], [], 0
        for r0, c0, kb, nb in geo:
            blocks.append((int(r0), int(c0), flat[pos:pos + kb * nb].reshape(kb, nb)
                           .astype(np.int64)))
            pos += kb * nb
        acts = {name: arrs["act_" + name] for name in ACT_FIELDS}
        prog = Program(cfg=cfg, shape=shape, cells=arrs["cells"], acts=acts,
                       inputs=arrs["inputs"], blocks=blocks, options=header["options"],
                       stats=header["stats"], meta=header.get("meta", {}))
    except ProgramError:
        raise
    except ConfigError as e:
        fail(f"bad config in header: {e}")
    except (KeyError, TypeError, ValueError, UnicodeDecodeError) as e:
        fail(f"malformed header or arrays ({type(e).__name__}: {e})")
    validate(prog, source)
    if expect_cfg is not None and prog.cfg != expect_cfg:
        diff = {k: (v, getattr(prog.cfg, k)) for k, v in expect_cfg.to_dict().items()
                if getattr(prog.cfg, k) != v and k != "name"}
        if diff:
            fail("compiled for a different config: " + ", ".join(
                f"{k} is {got!r}, expected {want!r}" for k, (want, got) in diff.items()))
    return prog


def validate(p: Program, source: str = "program") -> None:
    """Structural checks, so that a program that loads can always be executed."""
    cfg = p.cfg

    def fail(msg: str):
        raise ProgramError(f"{source}: {msg}")

    k, n = p.shape
    if k < 0 or n < 0:
        fail(f"negative shape {p.shape}")
    if p.cells.ndim != 5 or p.cells.shape[1:] != (cfg.windows, cfg.colgroups, cfg.ou_rows,
                                                  cfg.ou_cols):
        fail(f"cells have shape {p.cells.shape}, expected (X, {cfg.windows}, {cfg.colgroups}, "
             f"{cfg.ou_rows}, {cfg.ou_cols})")
    if p.cells.size and p.cells.max() > cfg.cell_max:
        fail(f"a cell holds {int(p.cells.max())}, above the cell maximum {cfg.cell_max}")
    n_act = p.inputs.shape[0]
    if p.inputs.ndim != 2 or p.inputs.shape[1] != cfg.ou_rows:
        fail(f"inputs table has shape {p.inputs.shape}, expected (n_act, {cfg.ou_rows})")
    for name in ACT_FIELDS:
        if p.acts[name].shape != (n_act,):
            fail(f"descriptor field {name!r} has shape {p.acts[name].shape}, expected ({n_act},)")
    a = p.acts
    checks = [("xbar", 0, p.n_xbars), ("window", 0, cfg.windows),
              ("colgroup", 0, cfg.colgroups), ("outgroup", 0, max(1, p.n_outgroups)),
              ("plane", 0, cfg.planes), ("sign", 0, 2), ("shift", 0, cfg.max_shift + 1),
              ("step", 0, max(1, n_act))]
    for name, lo, hi in checks:
        v = a[name]
        if n_act and (v.min() < lo or v.max() >= hi):
            fail(f"descriptor field {name!r} out of range [{lo}, {hi})")
    if n_act and (p.inputs.min() < -1 or p.inputs.max() >= max(1, k)):
        fail(f"an input index is outside [0, {k})")
    if n_act:
        order = a["step"].astype(np.int64) * (p.n_xbars + 1) + a["xbar"]
        if np.any(np.diff(order) <= 0):
            fail("descriptors are not sorted by (step, xbar), or a crossbar issues twice "
                 "in one step")
    for r0, c0, b in p.blocks:
        if r0 < 0 or c0 < 0 or r0 + b.shape[0] > k or c0 + b.shape[1] > n:
            fail(f"weight block at ({r0}, {c0}) of shape {b.shape} lies outside {p.shape}")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def save(p: Program, path: str | os.PathLike) -> None:
    atomic_write_bytes(path, dumps(p))


def load(path: str | os.PathLike, expect_cfg: SMEConfig | None = None) -> Program:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ProgramError(f"{path}: cannot read ({e.strerror})") from None
    return loads(data, expect_cfg, source=str(path))
