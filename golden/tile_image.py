"""The tile load image: a compiled :class:`~golden.program.Program` as the word stream the RTL
tile controller loads (SPEC section 6).  Pure numpy; the RTL mirrors every layout here with
``data.StructLayout`` objects built from the same config (``rtl/layouts.py``), and a test checks
that the two agree bit for bit.

Frame format, version 2
-----------------------
A frame is a sequence of 32-bit words (sent over the tile's ``i_load`` stream, one word per
transfer, ``last`` set on the final word only; as bytes, each word is little-endian)::

    word 0        MAGIC      0x54454D53 (b"SMET" as little-endian bytes)
    word 1        VERSION    2 (a version-1 frame is refused: BAD_FRAME)
    word 2        CONFIG_ID  zlib.crc32 of the canonical JSON of the config fields the
                             hardware depends on (:func:`config_id`; pattern and name are
                             excluded, adc_bits and tile_rowlists are the effective values);
                             the tile rejects any other value
    word 3        N_STEPS    descriptor steps (0 .. cfg.tile_steps)
    word 4        K          input vector length (1 .. cfg.tile_inputs)
    word 5        N          output vector length (1 .. cfg.tile_outputs)
    word 6        N_ROWLISTS row lists per lane (0 .. cfg.effective_tile_rowlists): the most
                             that any one lane uses
    cells         tile_xbars * windows * colgroups items of ``cell_words`` words each, lane-major
                  (lane, then address ``window*colgroups + colgroup``).  An item is one cell
                  memory word: bit ``(r*ou_cols + c)*cell_bits + k`` is bit k of the digit at
                  OU row r, column c.  Lanes the program does not use hold zeros.
    row lists     tile_xbars * N_ROWLISTS items of ``rowlist_words`` words each, lane-major
                  (lane, then row-list id).  An item is a *row list*: ou_rows x (en 1, index
                  input_index_bits) (:func:`row_fields`), the input index that drives each
                  wordline of a window, ``en`` = 0 where the wordline stays off.  Ids are the
                  lane's own (0 .. its count - 1, in the order of the program's ids); a lane
                  with fewer lists is padded with all-zero items.
    descriptors   N_STEPS * tile_xbars items of ``desc_words`` words each, step-major (step,
                  then lane).  An item is one descriptor, fields from bit 0 upwards
                  (:func:`desc_fields`): active 1, window, colgroup, outgroup, plane, sign 1,
                  shift, rowlist (the id of its row list in the lane's row-list memory).  A
                  lane with no activation in a step holds an all-zero (inactive) descriptor.
    crc           zlib.crc32 of all previous words as little-endian bytes

Activations that share a row list (``golden.program``'s ``rowlist`` field: same crossbar, same
inputs; "span" squeeze puts the digit planes of one fragment in several column groups of one
window, all driven by the same wordlines) store it once; a program without that field gets one
row list per activation.  Version 1 held ou_rows x (en, index) inside every descriptor.

An item of w bits spans ceil(w/32) words, least significant word first, zero padded.  Field
widths are ``ceil_log2(n)`` = the width that holds ``0 .. n-1`` (at least 1).

Error codes (:class:`TileError`) are those the tile controller reports; :func:`check_image` is the
controller's loader in software and returns the code the tile must report for a frame.
"""

from __future__ import annotations

import enum
import json
import zlib

import numpy as np

from .config import SMEConfig, ceil_log2
from .program import Program

__all__ = ["MAGIC", "VERSION", "HEADER_WORDS", "HARDWARE_FIELDS", "TileError", "TileImageError",
           "config_id", "hardware_dict", "desc_fields", "row_fields", "desc_bits",
           "rowlist_bits", "desc_memory_bits", "program_desc_memory_bits", "cell_bits_per_word",
           "cell_words", "desc_words", "rowlist_words", "frame_words", "fits_tile",
           "lane_rowlists", "cell_items", "rowlist_items", "desc_items", "build_image",
           "check_image", "crc32_words", "desc_offsets", "frame_descriptors"]

MAGIC = 0x54454D53
VERSION = 2
HEADER_WORDS = 7


class TileError(enum.IntEnum):
    """Error codes of the tile controller's status (the RTL enum has the same values)."""
    NONE = 0
    BAD_FRAME = 1            #: wrong magic or version, truncated or over-long frame
    CHECKSUM = 2             #: CRC mismatch
    NO_PROGRAM = 3           #: an input vector arrived while no program was loaded
    BAD_CONFIG = 4           #: the frame was built for another config
    TOO_BIG = 5              #: N_STEPS, K, N or N_ROWLISTS outside what the tile holds
    #: An active descriptor's ``rowlist`` id >= N_ROWLISTS is also BAD_FRAME: the frame is
    #: inconsistent in itself (it names a row list it does not carry), whatever the tile's
    #: size, whereas TOO_BIG means a consistent frame for a bigger tile.


class TileImageError(ValueError):
    """A program that does not fit the tile, or a malformed image."""


#: Config fields the tile hardware depends on (the weight pattern and the name do not matter).
HARDWARE_FIELDS = ("weight_bits", "cell_bits", "xbar_rows", "xbar_cols", "ou_rows", "ou_cols",
                   "input_bits", "tile_xbars", "tile_inputs", "tile_outputs", "tile_rowlists")


def hardware_dict(cfg: SMEConfig) -> dict:
    """The hardware fields of ``cfg``, with the effective ``adc_bits`` and ``tile_rowlists``
    (a config that leaves them to their defaults builds the same tile as one that spells the
    default values out)."""
    d = {f: getattr(cfg, f) for f in HARDWARE_FIELDS}
    d["adc_bits"] = cfg.effective_adc_bits
    d["tile_rowlists"] = cfg.effective_tile_rowlists
    return d


def config_id(cfg: SMEConfig) -> int:
    """CRC-32 of the canonical JSON of :func:`hardware_dict`: equal for every config that
    builds the same tile."""
    return zlib.crc32(json.dumps(hardware_dict(cfg), sort_keys=True).encode()) & 0xFFFFFFFF


def row_fields(cfg: SMEConfig) -> list[tuple[str, int]]:
    """One wordline of a row list, LSB first (a row list is ou_rows of these)."""
    return [("en", 1), ("index", cfg.input_index_bits)]


def desc_fields(cfg: SMEConfig) -> list[tuple[str, int]]:
    """Descriptor fields, LSB first."""
    return [("active", 1), ("window", ceil_log2(cfg.windows)),
            ("colgroup", ceil_log2(cfg.colgroups)),
            ("outgroup", ceil_log2(cfg.tile_outputs // cfg.ou_cols)),
            ("plane", ceil_log2(cfg.planes)), ("sign", 1), ("shift", ceil_log2(cfg.max_shift + 1)),
            ("rowlist", ceil_log2(cfg.effective_tile_rowlists))]


def desc_bits(cfg: SMEConfig) -> int:
    """Bits of one descriptor (the row list it points to not included)."""
    return sum(w for _, w in desc_fields(cfg))


def rowlist_bits(cfg: SMEConfig) -> int:
    """Bits of one row list: ou_rows x (en, index)."""
    return cfg.ou_rows * sum(w for _, w in row_fields(cfg))


def desc_memory_bits(cfg: SMEConfig, n_descriptors: int | None = None,
                     n_rowlists: int | None = None) -> int:
    """Bits of descriptor memory (descriptors and row lists) that ``n_descriptors``
    descriptors and ``n_rowlists`` row lists occupy; by default the capacity of the whole tile
    of ``cfg``: ``tile_xbars * (tile_steps * desc_bits + tile_rowlists * rowlist_bits)``."""
    if n_descriptors is None:
        n_descriptors = cfg.tile_xbars * cfg.tile_steps
    if n_rowlists is None:
        n_rowlists = cfg.tile_xbars * cfg.effective_tile_rowlists
    return n_descriptors * desc_bits(cfg) + n_rowlists * rowlist_bits(cfg)


def program_desc_memory_bits(program: Program, cfg: SMEConfig | None = None) -> int:
    """Descriptor-memory bits the program's index occupies on a tile of ``cfg``: one
    descriptor per activation and each lane's distinct row lists (idle slots not counted)."""
    cfg = program.cfg if cfg is None else cfg
    _, counts, _ = lane_rowlists(program, cfg)
    return desc_memory_bits(cfg, program.n_act, int(counts.sum()))


def cell_bits_per_word(cfg: SMEConfig) -> int:
    return cfg.ou_rows * cfg.ou_cols * cfg.cell_bits


def cell_words(cfg: SMEConfig) -> int:
    return -(-cell_bits_per_word(cfg) // 32)


def desc_words(cfg: SMEConfig) -> int:
    return -(-desc_bits(cfg) // 32)


def rowlist_words(cfg: SMEConfig) -> int:
    return -(-rowlist_bits(cfg) // 32)


def frame_words(cfg: SMEConfig, n_steps: int, n_rowlists: int) -> int:
    """Words of a frame of ``n_steps`` steps and ``n_rowlists`` row lists per lane."""
    return (HEADER_WORDS + cfg.tile_xbars * cfg.windows * cfg.colgroups * cell_words(cfg)
            + cfg.tile_xbars * n_rowlists * rowlist_words(cfg)
            + n_steps * cfg.tile_xbars * desc_words(cfg) + 1)


def lane_rowlists(program: Program, cfg: SMEConfig | None = None):
    """The row lists of ``program`` as the lanes' memories hold them: ``(local, counts,
    rows)``.  ``local[i]`` is activation i's row-list id in its lane's memory, ``counts[lane]``
    the lane's number of row lists (``tile_xbars`` entries), ``rows[lane][j]`` the input
    indices (ou_rows, -1 = off) of list j of that lane.  Ids come from the program's
    ``rowlist`` field (one per activation if it has none), renumbered per lane in increasing
    order.  Raises :class:`TileImageError` if activations that share an id in one lane hold
    different inputs."""
    cfg = program.cfg if cfg is None else cfg
    a, n_act = program.acts, program.n_act
    ids = np.asarray(a["rowlist"] if "rowlist" in a else np.arange(n_act), dtype=np.int64)
    xbar = np.asarray(a["xbar"], dtype=np.int64)
    span = int(ids.max()) + 1 if n_act else 1
    keys, first, inv = np.unique(xbar * span + ids, return_index=True, return_inverse=True)
    inv = inv.reshape(-1)
    lane = keys // span
    start = np.searchsorted(lane, lane, side="left")
    local = (np.arange(len(keys)) - start)[inv]
    lists = program.inputs[first]
    bad = np.flatnonzero(np.any(program.inputs != lists[inv], axis=1))
    if len(bad):
        i = int(bad[0])
        raise TileImageError(f"activation {i} shares row list {int(ids[i])} of crossbar "
                             f"{int(xbar[i])} but holds other inputs than its first user")
    counts = np.bincount(lane, minlength=cfg.tile_xbars)
    rows = [lists[lane == x] for x in range(cfg.tile_xbars)]
    return local, counts, rows


def fits_tile(program: Program, cfg: SMEConfig | None = None) -> None:
    """Raise :class:`TileImageError` saying why ``program`` cannot run on a tile of ``cfg``."""
    cfg = program.cfg if cfg is None else cfg
    k, n = program.shape
    pc, tc = hardware_dict(program.cfg), hardware_dict(cfg)
    if pc != tc:
        diff = ", ".join(f"{f} {pc[f]!r} vs {tc[f]!r}" for f in tc if pc[f] != tc[f])
        raise TileImageError(f"program was compiled for another config ({diff})")
    problems = []
    if program.n_xbars > cfg.tile_xbars:
        problems.append(f"it uses {program.n_xbars} crossbars, the tile has {cfg.tile_xbars}")
    if not 1 <= k <= cfg.tile_inputs:
        problems.append(f"K = {k} inputs, the tile takes 1 .. {cfg.tile_inputs}")
    if not 1 <= n <= cfg.tile_outputs:
        problems.append(f"N = {n} outputs, the tile emits 1 .. {cfg.tile_outputs}")
    if program.n_steps > cfg.tile_steps:
        problems.append(f"it has {program.n_steps} steps, the descriptor memory holds "
                        f"{cfg.tile_steps}")
    if program.n_xbars <= cfg.tile_xbars:
        counts = lane_rowlists(program, cfg)[1]
        if counts.max(initial=0) > cfg.effective_tile_rowlists:
            lane = int(np.argmax(counts))
            problems.append(f"crossbar {lane} uses {int(counts[lane])} row lists, the row-list "
                            f"memory holds {cfg.effective_tile_rowlists}")
    if problems:
        raise TileImageError("program does not fit the tile: " + "; ".join(problems)
                             + " (split the layer into smaller programs)")


def _pack_items(bitmat: np.ndarray, n_words: int) -> np.ndarray:
    """(items, w) array of 0/1 bits (LSB first) -> (items, n_words) uint32 words."""
    items, w = bitmat.shape
    padded = np.zeros((items, n_words * 32), dtype=np.uint8)
    padded[:, :w] = bitmat
    return np.packbits(padded, axis=1, bitorder="little").view("<u4").reshape(items, n_words)


def _field_bits(values: np.ndarray, width: int) -> np.ndarray:
    v = np.asarray(values, dtype=np.int64)
    return ((v[..., None] >> np.arange(width)) & 1).astype(np.uint8)


def cell_items(program: Program, cfg: SMEConfig) -> np.ndarray:
    """(tile_xbars, windows*colgroups, cell_words) uint32: the cell memories' contents."""
    x, w, g, r, c = program.cells.shape
    cells = np.zeros((cfg.tile_xbars, w, g, r, c), dtype=np.int64)
    cells[:x] = program.cells
    b = _field_bits(cells, cfg.cell_bits).reshape(cfg.tile_xbars * w * g, -1)
    return _pack_items(b, cell_words(cfg)).reshape(cfg.tile_xbars, w * g, cell_words(cfg))


def rowlist_items(program: Program, cfg: SMEConfig) -> np.ndarray:
    """(tile_xbars, n_rowlists, rowlist_words) uint32: the row-list memories' contents, where
    n_rowlists is the most row lists of any lane (:func:`lane_rowlists`)."""
    _, counts, rows = lane_rowlists(program, cfg)
    depth = int(counts.max(initial=0))
    table = np.full((cfg.tile_xbars, depth, cfg.ou_rows), -1, dtype=np.int64)
    for lane, r in enumerate(rows):
        table[lane, :len(r)] = r
    en = table >= 0
    bits = np.concatenate([_field_bits(en, 1), _field_bits(np.where(en, table, 0),
                                                           cfg.input_index_bits)], axis=3)
    flat = bits.reshape(cfg.tile_xbars * depth, rowlist_bits(cfg))
    return _pack_items(flat, rowlist_words(cfg)).reshape(cfg.tile_xbars, depth,
                                                         rowlist_words(cfg))


def desc_items(program: Program, cfg: SMEConfig) -> np.ndarray:
    """(n_steps, tile_xbars, desc_words) uint32: the descriptor memories' contents."""
    n_steps, lanes = program.n_steps, cfg.tile_xbars
    a = program.acts
    slot = a["step"].astype(np.int64) * lanes + a["xbar"]
    local = lane_rowlists(program, cfg)[0]
    parts = ([np.ones(program.n_act, dtype=np.int64)]
             + [a[f] for f, _ in desc_fields(cfg)[1:-1]] + [local])
    act_bits = np.concatenate([_field_bits(v, wd) for v, (_, wd) in zip(parts, desc_fields(cfg))],
                              axis=1)
    allbits = np.zeros((n_steps * lanes, desc_bits(cfg)), dtype=np.uint8)
    allbits[slot] = act_bits
    return _pack_items(allbits, desc_words(cfg)).reshape(n_steps, lanes, desc_words(cfg))


def desc_offsets(cfg: SMEConfig) -> dict[str, int]:
    """Bit offset of each descriptor field (:func:`desc_fields`) inside a descriptor item."""
    names, widths = zip(*desc_fields(cfg))
    return dict(zip(names, np.cumsum((0,) + widths[:-1]).tolist()))


def frame_descriptors(words, cfg: SMEConfig) -> dict[str, np.ndarray]:
    """The fields of every descriptor item of a frame whose length matches its header
    (N_STEPS * tile_xbars items, step-major), each an int64 array."""
    words = np.asarray(words, dtype=np.uint64)
    start = frame_words(cfg, 0, int(words[6])) - 1
    dw = desc_words(cfg)
    items = words[start:start + int(words[3]) * cfg.tile_xbars * dw].reshape(-1, dw)
    value = [sum(int(w) << (32 * i) for i, w in enumerate(item)) for item in items]
    off = desc_offsets(cfg)
    return {name: np.array([v >> off[name] & ((1 << wd) - 1) for v in value], dtype=np.int64)
            for name, wd in desc_fields(cfg)}


def crc32_words(words: np.ndarray) -> int:
    return zlib.crc32(np.asarray(words, dtype="<u4").tobytes()) & 0xFFFFFFFF


def build_image(program: Program, cfg: SMEConfig | None = None) -> np.ndarray:
    """The load frame of ``program`` for a tile of ``cfg``, as a uint32 array."""
    cfg = program.cfg if cfg is None else cfg
    fits_tile(program, cfg)
    k, n = program.shape
    rowlists = rowlist_items(program, cfg)
    head = np.array([MAGIC, VERSION, config_id(cfg), program.n_steps, k, n, rowlists.shape[1]],
                    dtype=np.uint32)
    body = np.concatenate([head, cell_items(program, cfg).ravel(), rowlists.ravel(),
                           desc_items(program, cfg).ravel()]).astype(np.uint32)
    return np.concatenate([body, np.array([crc32_words(body)], dtype=np.uint32)])


def check_image(words, cfg: SMEConfig) -> TileError:
    """The error code the tile controller reports after loading ``words`` (``last`` on the
    final word).  Mirrors the RTL's order of checks: header words as they arrive, then length,
    then the checksum, then the descriptors' row-list ids: an active descriptor whose
    ``rowlist`` is >= N_ROWLISTS (a row list the frame does not carry) is ``BAD_FRAME``
    (see :class:`TileError`).  The tile registers that comparison per descriptor and reports
    it with the checksum's verdict, so a corrupted frame still reads ``CHECKSUM``."""
    words = [int(w) & 0xFFFFFFFF for w in words]
    want = [MAGIC, VERSION, config_id(cfg)]
    codes = [TileError.BAD_FRAME, TileError.BAD_FRAME, TileError.BAD_CONFIG]
    for i in range(min(len(words), HEADER_WORDS)):
        if i < 3 and words[i] != want[i]:
            return codes[i]
        if i == 3 and words[i] > cfg.tile_steps:
            return TileError.TOO_BIG
        if i == 4 and not 1 <= words[i] <= cfg.tile_inputs:
            return TileError.TOO_BIG
        if i == 5 and not 1 <= words[i] <= cfg.tile_outputs:
            return TileError.TOO_BIG
        if i == 6 and words[i] > cfg.effective_tile_rowlists:
            return TileError.TOO_BIG
    if len(words) < HEADER_WORDS or len(words) != frame_words(cfg, words[3], words[6]):
        return TileError.BAD_FRAME
    if crc32_words(np.array(words[:-1], dtype=np.uint32)) != words[-1]:
        return TileError.CHECKSUM
    desc = frame_descriptors(words, cfg)
    if np.any((desc["active"] == 1) & (desc["rowlist"] >= words[6])):
        return TileError.BAD_FRAME
    return TileError.NONE
