"""The compiled program: what the golden VMM, the RTL tile, the benches and the FPGA host run.

A program holds one layer compiled for the SME design:

* ``cells``: the crossbar cell images, uint8 array ``(xbars, windows, colgroups, ou_rows,
  ou_cols)``; entry ``[x, w, g, r, c]`` is the digit stored at physical row ``w*ou_rows + r``,
  column ``g*ou_cols + c`` of crossbar ``x`` (0 .. 2^cell_bits - 1).
* the **schedule**: one *activation descriptor* per OU activation, sorted by (step, xbar).
  Fields (arrays of length ``n_act``): ``step`` (issue slot: every crossbar issues at most one
  activation per step), ``xbar``, ``window``, ``colgroup``, ``outgroup`` (the output columns
  ``outgroup*ou_cols + c`` it feeds), ``plane`` (digit index of the magnitude), ``sign``
  (0 = positive set, 1 = negative set), ``shift`` (squeeze shift s), ``rowlist`` (the id of
  the activation's *row list*) and ``inputs`` ``(n_act, ou_rows)``: the input index that drives
  each wordline of the window, -1 where the wordline stays off.  The splice shift of a sample
  for input bit t is ``t + plane*cell_bits + shift``.
* **row lists**: activations with the same ``rowlist`` id read the same physical rows with
  the same inputs (span squeeze: the blocks of one block group share one input index per row),
  so they have identical ``inputs`` rows, the same ``xbar`` and the same ``window``; ids are
  ``0 .. n_rowlists - 1``, each used.  Row and segment squeeze give every activation its own
  list (id == activation index).  ``inputs`` is the per-activation view every consumer reads;
  the file stores each row list once.
* the quantized weights themselves, as blocks ``(row0, col0, q)`` of the K x N layer matrix (a
  grouped or depthwise layer is block-diagonal and is never stored densely), used by the
  baselines and by checks.

File format, version 2 (all integers little-endian)::

    magic    8 bytes   b"SMEPROG\\0"
    version  u32       2
    hlen     u32       length of the header
    header   hlen      UTF-8 JSON: {"config", "options", "shape", "n_steps", "stats", "meta",
                       "arrays": [{"name", "dtype", "shape", "offset", "nbytes"}, ...]}
    payload            the arrays' raw bytes, C order, at the offsets the header gives
    crc32    u32       zlib.crc32 of every byte before it

The arrays (:data:`ARRAY_LAYOUT`): ``cells``; ``rowlists`` ``(n_rowlists, ou_rows)`` int32, the
unique row lists; ``act_<field>`` for every descriptor field of :data:`ACT_FIELDS` (including
``act_rowlist``, the index into ``rowlists``; the loader rebuilds
``inputs = rowlists[act_rowlist]``); ``block_geometry`` and ``block_data``, the weight blocks.
Version 1 (no row lists, a per-activation ``inputs`` array) is refused: recompile the layer.

:func:`save` writes atomically (temporary file + rename).  :func:`load` rejects a wrong
magic, an unknown version, a truncated file, a checksum mismatch, a malformed header and (if
asked) a config different from the expected one, each with a :class:`ProgramError`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import struct
import zlib

import numpy as np

from .config import ConfigError, SMEConfig
from .fileio import atomic_write_bytes, check_size

__all__ = ["Program", "ProgramError", "save", "load", "dumps", "loads",
           "FORMAT_VERSION", "MAGIC", "ACT_FIELDS"]

MAGIC = b"SMEPROG\0"
FORMAT_VERSION = 2

#: Descriptor fields stored as one array each, with their dtypes.
ACT_FIELDS = {"step": np.int32, "xbar": np.int32, "window": np.int32, "colgroup": np.int32,
              "outgroup": np.int32, "plane": np.int32, "sign": np.int32, "shift": np.int32,
              "rowlist": np.int32}


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
    def n_rowlists(self) -> int:
        """Number of row lists (ids run 0 .. n_rowlists - 1, :func:`validate` checks it)."""
        return int(self.acts["rowlist"].max()) + 1 if self.n_act else 0

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
    ids = np.asarray(p.acts["rowlist"], dtype=np.int64)
    _, first = np.unique(ids, return_index=True)     # one activation of each list, by id
    arrs = {"cells": np.ascontiguousarray(p.cells, dtype=np.uint8),
            "rowlists": np.ascontiguousarray(p.inputs[first], dtype=np.int32)
            .reshape(-1, p.cfg.ou_rows)}
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


#: The arrays of a version-2 file: name -> (dtype as :func:`dumps` writes it, number of dims).
#: The loader accepts exactly these, so a file whose checksum is valid but whose arrays were
#: retyped (float inputs, signed cells) is refused instead of computing something else.
ARRAY_LAYOUT = {"cells": ("|u1", 5), "rowlists": ("<i4", 2),
                **{"act_" + name: ("<i4", 1) for name in ACT_FIELDS},
                "block_geometry": ("<i8", 2), "block_data": ("<i4", 1)}

#: Header keys of a program file and their JSON types.
HEADER_KEYS = {"config": dict, "options": dict, "shape": list, "n_steps": int, "stats": dict,
               "meta": dict, "arrays": list}

#: Compiler options a program records, with their types.
OPTION_TYPES = {"squeeze": str, "reorder": bool, "balance": bool}

#: Statistics every program carries (``sme stats`` and the report read them), integers >= 0.
STAT_KEYS = ("K", "N", "weights", "crossbars", "activations", "rowlists", "steps", "cycles",
             "index_bits", "nonzero_cells", "nonzero_segments", "floor_crossbars",
             "floor_activations", "floor_cycles")

#: A header longer than this, or nested deeper than ``MAX_HEADER_DEPTH``, is refused before it
#: is parsed (a real header holds a config, options, statistics and short metadata).
MAX_HEADER_BYTES = 1 << 22
MAX_HEADER_DEPTH = 16

_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


def json_depth(text: bytes) -> int:
    """Deepest bracket nesting of a JSON text (brackets inside strings do not count); linear
    time and no recursion, so it can vet a text before :func:`json.loads` sees it."""
    b = np.frombuffer(_JSON_STRING.sub(b'""', text), dtype=np.uint8)
    step = np.isin(b, (ord("["), ord("{"))).astype(np.int64) \
        - np.isin(b, (ord("]"), ord("}")))
    return int(np.cumsum(step).max(initial=0))


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def loads(data: bytes, expect_cfg: SMEConfig | None = None, source: str = "program") -> Program:
    """Parse and validate a program file's bytes.  A valid checksum proves integrity, not
    validity: every declared size, dtype, key and value range is checked against the config and
    the payload before anything is allocated from it (:func:`validate` then checks geometry)."""
    def fail(msg: str):
        raise ProgramError(f"{source}: {msg}")

    if len(data) < len(MAGIC) + 12:
        fail(f"truncated: {len(data)} bytes is shorter than any program file")
    if data[:len(MAGIC)] != MAGIC:
        fail("not an SME program file (bad magic)")
    version, hlen = struct.unpack_from("<II", data, len(MAGIC))
    if version == 1:
        fail("program file version 1 predates row lists (version 2); recompile the layer")
    if version != FORMAT_VERSION:
        fail(f"format version {version} is not supported (this tool reads {FORMAT_VERSION})")
    (crc,) = struct.unpack_from("<I", data, len(data) - 4)
    if zlib.crc32(memoryview(data)[:-4]) != crc:
        fail("checksum mismatch: the file is truncated or corrupt")
    start = len(MAGIC) + 8
    if start + hlen > len(data) - 4:
        fail(f"header length {hlen} runs past the end of the file")
    if hlen > MAX_HEADER_BYTES:
        fail(f"header of {hlen} bytes is larger than the {MAX_HEADER_BYTES} a program needs")
    raw = bytes(data[start:start + hlen])
    if json_depth(raw) > MAX_HEADER_DEPTH:
        fail(f"header JSON is nested deeper than {MAX_HEADER_DEPTH} levels")
    try:
        header = json.loads(raw.decode())
    except (ValueError, UnicodeDecodeError) as e:
        fail(f"malformed header ({type(e).__name__}: {e})")
    if not isinstance(header, dict):
        fail("malformed header (not a JSON object)")
    for key, typ in HEADER_KEYS.items():
        if key not in header:
            fail(f"malformed header (no {key!r})")
        if not isinstance(header[key], typ) or (typ is int and not _is_int(header[key])):
            fail(f"malformed header ({key!r} must be a JSON {typ.__name__})")
    try:
        cfg = SMEConfig.from_dict(header["config"])
    except (ConfigError, TypeError) as e:
        fail(f"bad config in header: {e}")
    shape = header["shape"]
    if len(shape) != 2 or not all(_is_int(v) and v >= 0 for v in shape):
        fail(f"malformed header (shape {shape!r} is not two integers >= 0)")
    options, stats = header["options"], header["stats"]
    for key, typ in OPTION_TYPES.items():
        if not isinstance(options.get(key), typ):
            fail(f"malformed header (option {key!r} missing or not a {typ.__name__})")
    if options["squeeze"] not in ("row", "segment", "span"):
        fail(f"malformed header (unknown squeeze mode {options['squeeze']!r})")
    for key in STAT_KEYS:
        if not _is_int(stats.get(key)) or stats[key] < 0:
            fail(f"malformed header (statistic {key!r} missing or not an integer >= 0)")
    arrs = _payload_arrays(header["arrays"], memoryview(data)[start + hlen:len(data) - 4], fail)
    rowlists, ids = arrs["rowlists"], arrs["act_rowlist"]
    if rowlists.shape[1] != cfg.ou_rows:
        fail(f"rowlists table has shape {rowlists.shape}, expected (n_rowlists, {cfg.ou_rows})")
    if ids.size and (ids.min() < 0 or ids.max() >= len(rowlists)):
        fail(f"descriptor field 'rowlist' out of range [0, {len(rowlists)})")
    used = int(ids.max()) + 1 if ids.size else 0
    if len(rowlists) != used:
        fail(f"{len(rowlists)} row lists stored, the descriptors use {used}")
    geo, flat = arrs["block_geometry"], arrs["block_data"]
    if geo.shape[1:] != (4,):
        fail(f"block table has shape {geo.shape}, expected (blocks, 4)")
    if geo.size and geo.min() < 0:
        fail("a weight block has a negative position or size")
    # Sizes are bounded one factor at a time so that no product can overflow int64.
    sizes = geo[:, 2] * geo[:, 3] if not geo.size or geo[:, 2:].max() <= len(flat) else None
    if sizes is None or (sizes.size and sizes.max() > len(flat)) or sizes.sum() != len(flat):
        fail(f"the block table does not describe the {len(flat)} weights in the payload")
    ends = np.cumsum(sizes)
    blocks = [(int(r0), int(c0), flat[e - kb * nb:e].reshape(kb, nb).astype(np.int64))
              for (r0, c0, kb, nb), e in zip(geo.tolist(), ends.tolist())]
    prog = Program(cfg=cfg, shape=(shape[0], shape[1]), cells=arrs["cells"],
                   acts={name: arrs["act_" + name] for name in ACT_FIELDS},
                   inputs=rowlists[ids], blocks=blocks, options=options, stats=stats,
                   meta=header["meta"])
    validate(prog, source)
    from .quantize import PatternError, check_pattern
    try:
        for _, c0, b in blocks:
            check_pattern(b, cfg, col0=c0)
    except PatternError as e:
        fail(f"a weight is not on the config's pattern: {e}")
    if header["n_steps"] != prog.n_steps:
        fail(f"header says {header['n_steps']} steps, the descriptors use {prog.n_steps}")
    _check_stats(prog, fail)
    if expect_cfg is not None and prog.cfg != expect_cfg:
        diff = {k: (v, getattr(prog.cfg, k)) for k, v in expect_cfg.to_dict().items()
                if getattr(prog.cfg, k) != v and k != "name"}
        if diff:
            fail("compiled for a different config: " + ", ".join(
                f"{k} is {got!r}, expected {want!r}" for k, (want, got) in diff.items()))
    return prog


def _payload_arrays(table: list, payload: memoryview, fail) -> dict[str, np.ndarray]:
    """The arrays of the header's table: exactly the names, dtypes and ranks of
    :data:`ARRAY_LAYOUT`, sizes that agree with their shapes, packed back to back over the
    whole payload.  Shapes are checked against the bytes present before anything is copied."""
    arrs, pos = {}, 0
    for ent in table:
        if not isinstance(ent, dict) or set(ent) != {"name", "dtype", "shape", "offset",
                                                     "nbytes"}:
            fail(f"malformed array table entry {str(ent)[:80]!r}")
        name, shape = ent["name"], ent["shape"]
        if name not in ARRAY_LAYOUT or name in arrs:
            fail(f"unexpected or repeated array {str(name)[:40]!r}")
        dtype, ndim = ARRAY_LAYOUT[name]
        if ent["dtype"] != dtype:
            fail(f"array {name!r} has dtype {str(ent['dtype'])[:20]!r}, expected {dtype!r}")
        if not (isinstance(shape, list) and len(shape) == ndim
                and all(_is_int(v) and v >= 0 for v in shape)):
            fail(f"array {name!r} has shape {str(shape)[:60]}, expected {ndim} sizes >= 0")
        o, n = ent["offset"], ent["nbytes"]
        if not (_is_int(o) and _is_int(n)) or o != pos or n > len(payload) - pos:
            fail(f"array {name!r} does not follow the previous one inside the payload")
        if math.prod(shape) * np.dtype(dtype).itemsize != n:
            fail(f"array {name!r} declares shape {shape} but holds {n} bytes")
        arrs[name] = np.frombuffer(payload[o:o + n], dtype=dtype).reshape(shape) \
            .astype(dtype[1:], copy=True)
        pos += n
    if set(arrs) != set(ARRAY_LAYOUT):
        fail("missing array(s): " + ", ".join(sorted(set(ARRAY_LAYOUT) - set(arrs))))
    if pos != len(payload):
        fail(f"{len(payload) - pos} bytes of payload follow the last array")
    return arrs


def _check_stats(p: Program, fail) -> None:
    """The statistics a program carries must describe its own arrays."""
    from .slicing import nonzero_digits

    cfg, s = p.cfg, p.stats
    want = {"K": p.shape[0], "N": p.shape[1], "crossbars": p.n_xbars,
            "weights": sum(b.size for _, _, b in p.blocks),
            "activations": cfg.input_bits * p.n_act, "rowlists": p.n_rowlists,
            "steps": p.n_steps,
            "cycles": cfg.input_bits * p.n_steps}
    want["nonzero_cells"] = nonzero_digits(p.blocks, cfg)
    want["floor_crossbars"] = -(-want["nonzero_cells"] // (cfg.xbar_rows * cfg.xbar_cols))
    for key, value in want.items():
        if s[key] != value:
            fail(f"statistic {key!r} is {s[key]}, the program's arrays give {value}")
    for key in OPTION_TYPES:
        if key in s and s[key] != p.options[key]:
            fail(f"statistic {key!r} disagrees with the option of the same name")


def validate(p: Program, source: str = "program") -> None:
    """Structural checks, so that a program that loads can always be executed: array shapes
    against the config, every value in range (cells below 2^cell_bits, descriptor fields
    within the tile's geometry, weights within +-max_magnitude on the pattern), and weight
    blocks that tile the K x N layer block-diagonally (disjoint rows, disjoint columns, every
    row and column covered), so that the declared shape is no larger than the weights."""
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
    if p.cells.size and (p.cells.min() < 0 or p.cells.max() > cfg.cell_max):
        fail(f"a cell holds {int(p.cells.max())}, outside the digits 0..{cfg.cell_max}")
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
    _check_rowlists(p, fail)
    if n_act:
        order = a["step"].astype(np.int64) * (p.n_xbars + 1) + a["xbar"]
        if np.any(np.diff(order) <= 0):
            fail("descriptors are not sorted by (step, xbar), or a crossbar issues twice "
                 "in one step")
    for r0, c0, b in p.blocks:
        if r0 < 0 or c0 < 0 or r0 + b.shape[0] > k or c0 + b.shape[1] > n:
            fail(f"weight block at ({r0}, {c0}) of shape {b.shape} lies outside {p.shape}")
        if b.size and int(np.abs(b).max()) > cfg.max_magnitude:
            fail(f"weight block at ({r0}, {c0}) holds a magnitude above {cfg.max_magnitude}")
    for axis, size, what in ((0, k, "rows"), (1, n, "columns")):
        spans = sorted((blk[axis], blk[axis] + blk[2].shape[axis]) for blk in p.blocks)
        covered = 0
        for lo, hi in spans:
            if lo != covered:
                fail(f"weight blocks {'overlap in' if lo < covered else 'leave out'} {what} "
                     f"{min(lo, covered)}..{max(lo, covered) - 1} of the {p.shape} layer")
            covered = hi
        if covered != size:
            fail(f"weight blocks cover {covered} of the layer's {size} {what}")


def _check_rowlists(p: Program, fail) -> None:
    """Row-list ids run 0 .. n_rowlists - 1, each used; the activations of one list share
    their ``inputs`` row, crossbar and window (one stored list drives one window's rows)."""
    ids = p.acts["rowlist"].astype(np.int64)
    if not len(ids):
        return
    if ids.min() < 0:
        fail("descriptor field 'rowlist' is negative")
    n_lists = int(ids.max()) + 1
    if n_lists > len(ids) or np.bincount(ids, minlength=n_lists).min() == 0:
        fail(f"row-list ids do not run 0..{n_lists - 1} with every id used")
    _, first = np.unique(ids, return_index=True)
    lead = first[ids]                   # the first activation of each activation's list
    for name in ("xbar", "window"):
        if np.any(p.acts[name] != p.acts[name][lead]):
            fail(f"activations of one row list have different {name}s")
    if np.any(p.inputs != p.inputs[lead]):
        fail("activations of one row list have different input rows")


def save(p: Program, path: str | os.PathLike) -> None:
    atomic_write_bytes(path, dumps(p))


def load(path: str | os.PathLike, expect_cfg: SMEConfig | None = None) -> Program:
    """:func:`loads` of a file; a file larger than the cap of :func:`golden.fileio.max_bytes`
    is refused before it is read."""
    try:
        with open(path, "rb") as f:
            check_size(os.fstat(f.fileno()).st_size, f"{path}: a program file")
            data = f.read()
    except OSError as e:
        raise ProgramError(f"{path}: cannot read ({e.strerror})") from None
    return loads(data, expect_cfg, source=str(path))
