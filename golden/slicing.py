"""Bit-plane slicing (SPEC 3.2): signed integers -> sign sets -> digit planes -> crossbar tiles.

A layer is a K x N integer matrix given as blocks ``(row0, col0, q)``: one block for a dense
layer, one block per group for a grouped or depthwise convolution (block-diagonal; the zero
blocks in between are never materialised).  Crossbar tiles are the ``xbar_rows x xbar_cols``
cells of the K x N grid that intersect at least one block.
"""

from __future__ import annotations

import numpy as np

from .config import SMEConfig

__all__ = ["as_blocks", "tile_grid", "digits", "trailing_zeros", "bit_length", "nonzero_digits", "min_digits_table",
           "LayerError"]


class LayerError(ValueError):
    """A weight matrix or block list that cannot be compiled."""


def as_blocks(q: np.ndarray | list, shape: tuple[int, int] | None = None):
    """Normalise a dense matrix or a block list to ``(blocks, (K, N))`` with int64 blocks."""
    if isinstance(q, np.ndarray) or not isinstance(q, (list, tuple)):
        q = np.asarray(q)
        if q.ndim != 2:
            raise LayerError(f"a weight matrix must be 2-D (K x N), got shape {q.shape}")
        blocks = [(0, 0, q)]
        shape = q.shape if shape is None else shape
    else:
        blocks = list(q)
        if shape is None:
            raise LayerError("a block list needs the layer shape (K, N)")
    out = []
    k, n = int(shape[0]), int(shape[1])
    for i, blk in enumerate(blocks):
        try:
            r0, c0, b = blk
        except (TypeError, ValueError):
            raise LayerError(f"block {i} is not a (row0, col0, array) triple") from None
        b = np.asarray(b)
        if b.ndim != 2:
            raise LayerError(f"block {i} must be 2-D, got shape {b.shape}")
        if not np.issubdtype(b.dtype, np.integer):
            if b.size and (not np.all(np.isfinite(b)) or np.any(b != np.round(b))):
                raise LayerError(f"block {i} holds non-integer values; quantize it first")
        r0, c0 = int(r0), int(c0)
        if r0 < 0 or c0 < 0 or r0 + b.shape[0] > k or c0 + b.shape[1] > n:
            raise LayerError(f"block {i} at ({r0}, {c0}) of shape {b.shape} lies outside "
                             f"the layer shape {(k, n)}")
        out.append((r0, c0, b.astype(np.int64)))
    return out, (k, n)


def tile_grid(blocks, shape, rows: int, cols: int):
    """Dense tiles of the K x N grid that intersect a block.

    Returns ``(coords, tiles)``: coords (T, 2) int64 of (row block, column block), sorted, and
    tiles (T, rows, cols) int64 holding the weights (zero outside blocks and outside K x N).
    """
    coords = set()
    for r0, c0, b in blocks:
        if b.size == 0:
            continue
        for rb in range(r0 // rows, (r0 + b.shape[0] - 1) // rows + 1):
            for cb in range(c0 // cols, (c0 + b.shape[1] - 1) // cols + 1):
                coords.add((rb, cb))
    coords = np.array(sorted(coords), dtype=np.int64).reshape(-1, 2)
    tiles = np.zeros((len(coords), rows, cols), dtype=np.int64)
    index = {(int(rb), int(cb)): i for i, (rb, cb) in enumerate(coords)}
    for r0, c0, b in blocks:
        if b.size == 0:
            continue
        for rb in range(r0 // rows, (r0 + b.shape[0] - 1) // rows + 1):
            for cb in range(c0 // cols, (c0 + b.shape[1] - 1) // cols + 1):
                t = index[(rb, cb)]
                gr0, gr1 = max(r0, rb * rows), min(r0 + b.shape[0], (rb + 1) * rows)
                gc0, gc1 = max(c0, cb * cols), min(c0 + b.shape[1], (cb + 1) * cols)
                tiles[t, gr0 - rb * rows:gr1 - rb * rows, gc0 - cb * cols:gc1 - cb * cols] = \
                    b[gr0 - r0:gr1 - r0, gc0 - c0:gc1 - c0]
    return coords, tiles


def digits(mag: np.ndarray, cfg: SMEConfig) -> np.ndarray:
    """Digit planes of non-negative magnitudes: out[..., p] = (mag >> p*cell_bits) & cell_max.

    Returns uint8 with a new last axis of length ``cfg.planes``."""
    mag = np.asarray(mag).astype(np.uint16)            # magnitudes have at most 16 bits
    out = np.empty(mag.shape + (cfg.planes,), dtype=np.uint8)
    for p in range(cfg.planes):
        out[..., p] = (mag >> np.uint16(p * cfg.cell_bits)) & np.uint16(cfg.cell_max)
    return out


def trailing_zeros(mag: np.ndarray, limit: int) -> np.ndarray:
    """Trailing zero bits of each magnitude; zero entries get ``limit``."""
    mag = np.asarray(mag, dtype=np.int64)
    tz = np.full(mag.shape, limit, dtype=np.int64)
    low = mag & -mag                      # lowest set bit
    nz = mag != 0
    tz[nz] = np.log2(low[nz]).astype(np.int64)
    return tz


def bit_length(mag: np.ndarray) -> np.ndarray:
    """Bit length of non-negative int64 magnitudes (0 -> 0)."""
    mag = np.asarray(mag, dtype=np.int64)
    out = np.zeros(mag.shape, dtype=np.int64)
    nz = mag > 0
    out[nz] = np.floor(np.log2(mag[nz])).astype(np.int64) + 1
    return out


def min_digits_table(cfg: SMEConfig) -> np.ndarray:
    """For every magnitude m: the fewest non-zero digits of m >> s over the exact shifts
    s <= trailing_zeros(m).  With 1-bit cells that is the bit count of m; with wider cells a
    shift can merge digits (6 = digits 1,2 in base 4, but 6 >> 1 = 3 is one digit)."""
    m = np.arange(cfg.max_magnitude + 1, dtype=np.int64)
    tz = trailing_zeros(m, 0)
    best = np.count_nonzero(digits(m, cfg), axis=-1)
    for s in range(1, cfg.weight_bits):
        ok = tz >= s
        best = np.where(ok, np.minimum(best, np.count_nonzero(digits(m >> s, cfg), axis=-1)),
                        best)
    return best


def nonzero_digits(blocks, cfg: SMEConfig) -> int:
    """Non-zero cells a layer needs at the least: the fewest non-zero digits of every |q|
    under any exact shift (see :func:`min_digits_table`)."""
    table = min_digits_table(cfg)
    return int(sum(table[np.abs(b)].sum() for _, _, b in blocks))
