"""Layer partitioner: a layer of any size as a list of tile programs (SPEC section 6).

A tile takes at most ``tile_inputs`` inputs, emits at most ``tile_outputs`` outputs, holds
``tile_xbars`` crossbars and ``tile_steps`` descriptor steps.  :func:`partition_layer` cuts a
K x N layer (a dense matrix or the blocks of a grouped / depthwise layer, never unrolled
densely) into :class:`TilePart` s, each one :class:`~golden.program.Program` that
:func:`golden.tile_image.fits_tile` accepts, and :class:`Partition` spells out how they combine.

The one data structure, and its contract
----------------------------------------
``Partition.parts`` is the execution order.  Part ``i`` reads the layer inputs ``rows`` (a
gather: tile input ``r`` is layer input ``rows[r]``) and adds its outputs into the layer
outputs ``cols`` (a scatter-add: tile output ``c`` goes to layer output ``cols[c]``)::

    Y = 0                                       (M x N, integers)
    for part in partition.parts:                (in order)
        Y[:, part.cols] += tile(part.program, X[:, part.rows])

so ``Y = X @ Q`` exactly whenever no ADC sample clips, whatever executes a tile: the golden
VMM (:func:`run`), the Amaranth simulation (:func:`run` with ``sim.amaranth_tile.simulate`` as
the runner), the emitted Verilog (``sim.verilator_tile.run_partition``) or a board
(``sme.hostclient.Client.run_partition``); the file format below carries it to any of them
(the cocotb tile bench runs every program of a ``.smepart`` file).  Integer addition
makes the order irrelevant to the result; it is fixed so that every executor reports clipped
samples and cycles part by part in the same sequence.

How a layer is cut
------------------
1. **Input slices**: the layer rows that hold weights are cut into slices of at most
   ``tile_inputs`` rows (``[k0, k0 + tile_inputs)``).
2. **Output slices**: within an input slice, the span of columns its blocks touch is cut into
   slices of at most ``tile_outputs`` columns; the rows of the input slice are then narrowed to
   the rows that hold weights for those columns.  For a depthwise layer an input slice of 9·c
   rows meets only c columns, so nothing off the diagonal is ever compiled.
3. **Compile** each (input slice, output slice) *region* with the layer's squeeze options.
4. **Crossbar split**: a region whose program needs more crossbars than the tile holds is split
   into parts of ``tile_xbars`` consecutive crossbars each, every part keeping the activations
   of its crossbars (their partial sums add like those of the other splits).
5. A region whose program (or part) still exceeds the descriptor memory is halved along its
   input slice and tried again; a single row that cannot fit raises
   :class:`~golden.tile_image.TileImageError`.
"""

from __future__ import annotations

import dataclasses
import json
import struct
import zlib
from typing import Callable

import numpy as np

from .compiler import compile_blocks, program_stats
from .config import SMEConfig
from .program import ACT_FIELDS, Program, ProgramError
from .program import dumps as program_dumps
from .program import loads as program_loads
from .program import validate
from .slicing import as_blocks
from .tile_image import TileImageError, fits_tile
from . import vmm

__all__ = ["TilePart", "Partition", "partition_layer", "partition_program", "run",
           "check_fits", "dumps", "loads", "MAGIC", "FORMAT_VERSION"]

MAGIC = b"SMEPART\0"
FORMAT_VERSION = 1


@dataclasses.dataclass
class TilePart:
    """One tile program and where it sits in the layer.

    ``rows`` int64 (k,): layer input feeding each tile input; ``cols`` int64 (n,): layer output
    each tile output is added to; ``program.shape == (k, n)``."""
    program: Program
    rows: np.ndarray
    cols: np.ndarray


@dataclasses.dataclass
class Partition:
    """A layer of ``shape`` (K, N) as tile programs for tiles of ``cfg``; see the module
    docstring for the execution contract."""
    cfg: SMEConfig
    shape: tuple[int, int]
    parts: list[TilePart]

    @property
    def n_parts(self) -> int:
        return len(self.parts)

    def cycles_per_vector(self) -> int:
        """Issue cycles per input vector with the parts run one after another on one tile."""
        return sum(p.program.cycles_per_vector() for p in self.parts)

    def map(self, fn: Callable[[Program], Program]) -> "Partition":
        """The same partition with every program replaced by ``fn(program)`` (same shape)."""
        parts = []
        for p in self.parts:
            q = fn(p.program)
            if q.shape != p.program.shape:
                raise ValueError(f"mapped program has shape {q.shape}, not {p.program.shape}")
            parts.append(TilePart(q, p.rows, p.cols))
        return Partition(self.cfg, self.shape, parts)


# ---- partitioning -----------------------------------------------------------------------------

def _sub_blocks(blocks, r0: int, r1: int, c0: int, c1: int):
    """The blocks clipped to rows [r0, r1) x cols [c0, c1), renumbered onto the rows and
    columns they cover: returns ``(local blocks, rows, cols)`` with ``rows``/``cols`` the layer
    indices of the local ones.  Zero blocks are kept, so the local blocks cover every local
    row and column (a program's blocks must tile its layer block-diagonally)."""
    clipped = []
    for br, bc, b in blocks:
        gr0, gr1 = max(r0, br), min(r1, br + b.shape[0])
        gc0, gc1 = max(c0, bc), min(c1, bc + b.shape[1])
        if gr0 < gr1 and gc0 < gc1:
            clipped.append((gr0, gc0, b[gr0 - br:gr1 - br, gc0 - bc:gc1 - bc]))
    if not any(b.any() for _, _, b in clipped):
        return [], None, None
    rows = np.unique(np.concatenate([np.arange(r, r + b.shape[0]) for r, _, b in clipped]))
    cols = np.unique(np.concatenate([np.arange(c, c + b.shape[1]) for _, c, b in clipped]))
    local = [(int(np.searchsorted(rows, r)), int(np.searchsorted(cols, c)), b)
             for r, c, b in clipped]
    return local, rows.astype(np.int64), cols.astype(np.int64)


def _span(blocks, axis: int, lo: int, hi: int, other_lo: int, other_hi: int):
    """[min, max+1) of the non-zero entries' coordinates along ``axis`` (0 = rows) among the
    blocks' entries whose other coordinate lies in [other_lo, other_hi); None if empty."""
    first, last = None, None
    for br, bc, b in blocks:
        o0 = (bc, br)[axis]
        a0 = (br, bc)[axis]
        s0, s1 = max(other_lo, o0), min(other_hi, o0 + b.shape[1 - axis])
        t0, t1 = max(lo, a0), min(hi, a0 + b.shape[axis])
        if s0 >= s1 or t0 >= t1:
            continue
        sub = b[t0 - a0:t1 - a0, s0 - o0:s1 - o0] if axis == 0 else \
            b[s0 - o0:s1 - o0, t0 - a0:t1 - a0].T
        nz = np.flatnonzero(sub.any(axis=1))
        if len(nz) == 0:
            continue
        f, la = t0 + int(nz[0]), t0 + int(nz[-1]) + 1
        first = f if first is None else min(first, f)
        last = la if last is None else max(last, la)
    return None if first is None else (first, last)


def _split_xbars(prog: Program, cfg: SMEConfig) -> list[Program]:
    """A program cut into programs of at most ``cfg.tile_xbars`` consecutive crossbars."""
    T = cfg.tile_xbars
    if prog.n_xbars <= T:
        return [prog]
    out = []
    for x0 in range(0, prog.n_xbars, T):
        sel = (prog.acts["xbar"] >= x0) & (prog.acts["xbar"] < x0 + T)
        acts = {k: v[sel].astype(ACT_FIELDS[k]) for k, v in prog.acts.items()}
        acts["xbar"] = (acts["xbar"] - x0).astype(ACT_FIELDS["xbar"])
        # a row list belongs to one crossbar, so the part holds whole lists: renumber 0..
        acts["rowlist"] = np.unique(acts["rowlist"], return_inverse=True)[1] \
            .astype(ACT_FIELDS["rowlist"])
        part = Program(cfg=prog.cfg, shape=prog.shape, cells=prog.cells[x0:x0 + T].copy(),
                       acts=acts, inputs=prog.inputs[sel].copy(), blocks=[],
                       options=dict(prog.options),
                       meta={**prog.meta, "xbar_split": [x0, min(x0 + T, prog.n_xbars)]})
        # A part computes only its crossbars' share of the weights (a subset of the digits
        # of each weight, so still on the pattern): its blocks say so.
        part.blocks = [(0, 0, vmm.effective_weights(part))]
        validate(part, "crossbar part")
        # every tile holding a part of the region needs the region's whole index table
        part.stats = program_stats(part, prog.stats["index_bits"])
        out.append(part)
    return out


def _region(blocks, r0, r1, c0, c1, cfg, tile_cfg, options, meta) -> list[TilePart]:
    """Compile rows [r0, r1) x cols [c0, c1) into parts that fit, halving rows if needed."""
    sub, rows, cols = _sub_blocks(blocks, r0, r1, c0, c1)
    if not sub:
        return []
    prog = compile_blocks(sub, (len(rows), len(cols)), cfg, check=False,
                          meta={**meta, "region": [r0, r1, c0, c1]}, **options)
    progs = _split_xbars(prog, tile_cfg)
    try:
        for p in progs:
            fits_tile(p, tile_cfg)
    except TileImageError:
        if r1 - r0 == 1:
            raise
        mid = (r0 + r1) // 2
        return (_region(blocks, r0, mid, c0, c1, cfg, tile_cfg, options, meta)
                + _region(blocks, mid, r1, c0, c1, cfg, tile_cfg, options, meta))
    return [TilePart(p, rows, cols) for p in progs]


def partition_layer(q, shape, cfg: SMEConfig, *, tile_cfg: SMEConfig | None = None,
                    squeeze: str = "row", reorder: bool = True, balance: bool = True,
                    check: bool = True, meta: dict | None = None) -> Partition:
    """Partition a layer (dense K x N integer matrix with ``shape=None``, or blocks
    ``(row0, col0, q)`` with ``shape``) into tile programs for tiles of ``tile_cfg`` (default
    ``cfg``).  ``check`` verifies the weights obey ``cfg``'s pattern.  Raises
    :class:`~golden.tile_image.TileImageError` if the tile cannot hold the layer's config or a
    single row of it."""
    from .quantize import check_pattern

    tile_cfg = cfg if tile_cfg is None else tile_cfg
    blocks, shape = as_blocks(q, shape)
    if check:
        for _, c0, b in blocks:
            check_pattern(b, cfg, col0=c0)
    # A config mismatch is found on an empty probe program, before any compile work.
    probe = compile_blocks([(0, 0, np.zeros((1, 1), np.int64))], (1, 1), cfg, check=False)
    fits_tile(probe, tile_cfg)
    options = {"squeeze": squeeze, "reorder": reorder, "balance": balance}
    K, N = shape
    parts: list[TilePart] = []
    span = _span(blocks, 0, 0, K, 0, N)
    if span is not None:
        for k0 in range(span[0], span[1], tile_cfg.tile_inputs):
            k1 = min(k0 + tile_cfg.tile_inputs, span[1])
            cspan = _span(blocks, 1, 0, N, k0, k1)
            if cspan is None:
                continue
            for c0 in range(cspan[0], cspan[1], tile_cfg.tile_outputs):
                c1 = min(c0 + tile_cfg.tile_outputs, cspan[1])
                rspan = _span(blocks, 0, k0, k1, c0, c1)
                if rspan is None:
                    continue
                parts += _region(blocks, rspan[0], rspan[1], c0, c1, cfg, tile_cfg, options,
                                 dict(meta or {}))
    return Partition(tile_cfg, (K, N), parts)


def partition_program(prog: Program, tile_cfg: SMEConfig | None = None) -> Partition:
    """Partition a compiled layer with the options it was compiled with.  A program that
    already fits one tile gives one part: the program itself."""
    tile_cfg = prog.cfg if tile_cfg is None else tile_cfg
    k, n = prog.shape
    try:
        fits_tile(prog, tile_cfg)
        return Partition(tile_cfg, prog.shape, [TilePart(prog, np.arange(k, dtype=np.int64),
                                                         np.arange(n, dtype=np.int64))])
    except TileImageError:
        pass
    opts = {key: prog.options[key] for key in ("squeeze", "reorder", "balance")
            if key in prog.options}
    return partition_layer(prog.blocks, prog.shape, prog.cfg, tile_cfg=tile_cfg, check=False,
                           meta=prog.meta, **opts)


def check_fits(part: Partition) -> None:
    """Raise :class:`TileImageError` naming the first part that does not fit the tile, or whose
    rows / cols do not match its program or lie outside the layer."""
    K, N = part.shape
    for i, tp in enumerate(part.parts):
        k, n = tp.program.shape
        try:
            fits_tile(tp.program, part.cfg)
        except TileImageError as e:
            raise TileImageError(f"part {i}: {e}") from None
        if tp.rows.shape != (k,) or tp.cols.shape != (n,):
            raise TileImageError(f"part {i}: rows/cols of length {len(tp.rows)}/{len(tp.cols)} "
                                 f"for a program of shape {(k, n)}")
        if k and (tp.rows.min() < 0 or tp.rows.max() >= K):
            raise TileImageError(f"part {i}: an input row lies outside [0, {K})")
        if n and (tp.cols.min() < 0 or tp.cols.max() >= N):
            raise TileImageError(f"part {i}: an output column lies outside [0, {N})")


# ---- execution ---------------------------------------------------------------------------------

Runner = Callable[[Program, np.ndarray], "tuple[np.ndarray, int]"]


def run(part: Partition, X: np.ndarray, runner: Runner | None = None) \
        -> tuple[np.ndarray, list[int]]:
    """Execute ``part`` on input vectors ``X`` (M x K unsigned integers) by the contract above.

    ``runner(program, X_local) -> (Y_local, clipped)`` executes one tile program (default: the
    golden sliced VMM, :func:`golden.vmm.run`).  Returns ``(Y, clipped per part)``."""
    runner = vmm.run if runner is None else runner
    X = np.atleast_2d(np.asarray(X))
    K, N = part.shape
    if X.ndim != 2 or X.shape[1] != K:
        raise vmm.InputError(f"inputs must be M x K with K = {K}, got shape {X.shape}")
    Y = np.zeros((X.shape[0], N), dtype=np.int64)
    clipped = []
    for tp in part.parts:
        y, c = runner(tp.program, X[:, tp.rows])
        Y[:, tp.cols] += y
        clipped.append(int(c))
    return Y, clipped


# ---- file format -------------------------------------------------------------------------------
# magic 8 bytes | version u32 | hlen u32 | header JSON {"shape", "config", "parts": [{"k", "n",
# "nbytes"}]} | per part: rows int64[k], cols int64[n], program file bytes | crc32 u32

def dumps(part: Partition) -> bytes:
    """The partition as bytes (each part's program in the program file format)."""
    blobs, table = [], []
    for tp in part.parts:
        pb = program_dumps(tp.program)
        blobs += [tp.rows.astype("<i8").tobytes(), tp.cols.astype("<i8").tobytes(), pb]
        table.append({"k": len(tp.rows), "n": len(tp.cols), "nbytes": len(pb)})
    header = json.dumps({"shape": list(part.shape), "config": part.cfg.to_dict(),
                         "parts": table}, sort_keys=True).encode()
    body = b"".join([MAGIC, struct.pack("<II", FORMAT_VERSION, len(header)), header] + blobs)
    return body + struct.pack("<I", zlib.crc32(body))


def loads(data: bytes, source: str = "partition") -> Partition:
    """Read :func:`dumps` output; a corrupt or truncated file raises
    :class:`~golden.program.ProgramError`, a part that does not fit raises
    :class:`TileImageError`."""
    def fail(msg):
        raise ProgramError(f"{source}: {msg}")

    if len(data) < len(MAGIC) + 12 or data[:len(MAGIC)] != MAGIC:
        fail("not an SME partition file (bad magic or truncated)")
    version, hlen = struct.unpack_from("<II", data, len(MAGIC))
    if version != FORMAT_VERSION:
        fail(f"format version {version} is not supported (this tool reads {FORMAT_VERSION})")
    if zlib.crc32(data[:-4]) != struct.unpack_from("<I", data, len(data) - 4)[0]:
        fail("checksum mismatch: the file is truncated or corrupt")
    pos = len(MAGIC) + 8
    try:
        header = json.loads(data[pos:pos + hlen].decode())
        cfg = SMEConfig.from_dict(header["config"])
        pos += hlen
        parts = []
        for i, ent in enumerate(header["parts"]):
            k, n, nb = int(ent["k"]), int(ent["n"]), int(ent["nbytes"])
            rows = np.frombuffer(data, "<i8", k, pos).astype(np.int64)
            cols = np.frombuffer(data, "<i8", n, pos + 8 * k).astype(np.int64)
            pos += 8 * (k + n)
            prog = program_loads(data[pos:pos + nb], source=f"{source} part {i}")
            pos += nb
            parts.append(TilePart(prog, rows, cols))
        result = Partition(cfg, tuple(int(v) for v in header["shape"]), parts)
    except (KeyError, TypeError, ValueError, UnicodeDecodeError) as e:
        if isinstance(e, ProgramError):
            raise
        fail(f"malformed header or parts ({type(e).__name__}: {e})")
    check_fits(result)
    return result
