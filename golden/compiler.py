"""The SME compiler: integer layer -> squeezed crossbar images + grouped OU schedule (SPEC 3.2-3.5).

Three squeeze granularities compile to the same :class:`~golden.program.Program`:

``squeeze="row"`` (the paper's row squeeze, SPEC 3.4)
    The layer is cut into crossbar groups of ``xbar_rows`` input rows x ``xbar_cols`` output
    columns.  In each group every row r gets the shift s_r = the trailing zero bits shared by
    all its non-zero weights (both signs); the row is stored as |q| >> s_r, so the group needs
    fewer digit planes.  A (group, sign, plane) crossbar is allocated only if it holds a
    non-zero cell; all-zero rows are never activated.  With ``reorder=True`` the rows of each
    column block are re-clustered first: all-zero rows are dropped, the rest sorted by
    (stored bit length, shift), so rows of one group have similar magnitudes (more empty high
    planes) and rows of one OU window share their shift (fewer activations).  The per-row input
    index table then says which input drives each physical row.

``squeeze="segment"`` (ours, SPEC 3.4 "segment squeeze")
    Only ``ou_cols``-wide row segments matter to an OU read.  Every non-zero segment of
    (input row, sign, plane, output group) is a unit; units of one class (output group, sign,
    plane) are packed ``ou_rows`` at a time into cell blocks (one OU window x one column group
    of a crossbar), each block one activation.  Only whole OU windows are used (a crossbar
    whose row count is not a multiple of ``ou_rows`` leaves the last partial window empty).
    ``reorder=True`` deals the units of a class over its blocks heaviest first, which evens
    out the ADC column sums (fewer clipped samples when ``adc_bits`` is below lossless).
    ``balance=True`` spreads blocks round-robin over the crossbars (the grouped schedule);
    ``balance=False`` fills crossbar after crossbar (the naive schedule).

``squeeze="span"`` (ours: segment squeeze with shared row lists)
    The unit is a *fragment row*: the ``ou_cols`` weights of one input row in one output group,
    one sign, with its non-zero digit planes lo..hi (span = hi - lo + 1; the ``fragment``
    pattern bounds it by ``fragment_bits``, other patterns do not).  Fragment rows of one class
    (output group, sign, lo, span) are packed ``ou_rows`` at a time into a *block group*: cell
    blocks in the same crossbar and OU window, one per digit plane lo+j that a row of the group
    uses (column groups chosen by the packer), block j holding plane lo+j of every fragment row
    (zero where that row's plane is zero).  All blocks of a group share one *row list* (one
    activation per block, one ``rowlist`` id per group), so a fragment row costs one input
    index however many planes it spans.  Wordlines of a row list without a fragment row stay
    off.  Block groups are packed into windows first-fit decreasing by width; a config with
    fewer column groups than planes cuts fragment rows into chunks of ``colgroups`` planes.
    The partial last group of a class moves, when it fits, into the free rows of a wider class
    of the same output group and sign whose planes cover it.  ``reorder=True`` orders the
    fragment rows of a class by their plane set, heaviest first, before filling its groups (a
    group of rows with equal plane sets needs no block for a plane none of them uses);
    ``reorder=False`` fills them by input.  ``balance`` deals windows round-robin over the
    crossbars (``False``: crossbar after crossbar).

Scheduling (SPEC 3.5): an activation reads the rows of one OU window that share output
group and significance (plane, sign, shift); each crossbar issues one activation per step and
all crossbars of the layer run in parallel, so a step count is the busiest crossbar's activation
count and cycles per input vector = ``input_bits * steps``.
"""

from __future__ import annotations


import numpy as np

from .config import SMEConfig, ceil_log2
from .program import ACT_FIELDS, Program, validate
from .quantize import check_pattern
from .slicing import (LayerError, as_blocks, bit_length, digits, min_digits_table,
                      nonzero_digits, tile_grid, trailing_zeros)

__all__ = ["compile_matrix", "compile_blocks", "squeeze_rows", "index_widths", "SQUEEZE_MODES",
           "LayerError"]

SQUEEZE_MODES = ("row", "segment", "span")


def index_widths(cfg: SMEConfig, shape: tuple[int, int], squeeze: str,
                 reorder: bool) -> tuple[int, int]:
    """Index entry widths ``(bits per stored row entry, bits per cell block)`` of a program.

    Row squeeze (SPEC 3.4): per physical row of a crossbar group, the shift and a zero-row
    flag, plus the input index of the row when rows are reordered; nothing per block.
    Segment squeeze: per packed unit (one physical row of a cell block) the input index, per
    cell block (one activation) the class tag (output group, plane, sign).  An activation reads
    the entries of its enabled wordlines and its block's tag (:mod:`golden.ppa`).
    Span squeeze: per row-list row holding a fragment row one input index (shared by the
    ``span`` blocks of its block group), per cell block the class tag (output group, plane,
    sign), as for segment squeeze.
    """
    k_bits = ceil_log2(max(1, shape[0]))
    if squeeze == "row":
        return ceil_log2(cfg.weight_bits) + 1 + (k_bits if reorder else 0), 0
    # segment and span: an input index per stored row entry, a class tag per block
    class_bits = ceil_log2(max(1, -(-shape[1] // cfg.ou_cols))) + ceil_log2(cfg.planes) + 1
    return k_bits, class_bits


def compile_matrix(q: np.ndarray, cfg: SMEConfig, **options) -> Program:
    """Compile a dense K x N integer matrix (already quantized onto ``cfg``'s pattern)."""
    return compile_blocks(q, None, cfg, **options)


def compile_blocks(blocks, shape, cfg: SMEConfig, *, squeeze: str = "row", reorder: bool = True,
                   balance: bool = True, check: bool = True, meta: dict | None = None) -> Program:
    """Compile a layer given as blocks ``(row0, col0, q)`` of a K x N matrix (or a dense matrix
    with ``shape=None``).  ``check`` verifies that every weight obeys ``cfg``'s pattern."""
    if squeeze not in SQUEEZE_MODES:
        raise LayerError(f"squeeze must be one of {', '.join(SQUEEZE_MODES)}, not {squeeze!r}")
    blocks, shape = as_blocks(blocks, shape)
    if check:
        for _, c0, b in blocks:
            check_pattern(b, cfg, col0=c0)
    options = {"squeeze": squeeze, "reorder": bool(reorder), "balance": bool(balance)}
    if squeeze == "row":
        cells, acts, inputs, index_bits = _row_squeeze(blocks, shape, cfg, reorder)
    elif squeeze == "segment":
        cells, acts, inputs, index_bits = _segment_squeeze(blocks, shape, cfg, reorder, balance)
    else:
        cells, acts, inputs, index_bits = _span_squeeze(blocks, shape, cfg, reorder, balance)
    if squeeze != "span":
        acts["rowlist"] = np.arange(len(inputs), dtype=ACT_FIELDS["rowlist"])   # a list each
    _assign_steps(acts, cells.shape[0])
    order = np.lexsort((acts["xbar"], acts["step"]))
    acts = {k: v[order] for k, v in acts.items()}
    inputs = inputs[order]
    # row-list ids numbered in order of first use (row, segment: id == activation index)
    _, first, inv = np.unique(acts["rowlist"], return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    acts["rowlist"] = rank[inv.reshape(-1)].astype(ACT_FIELDS["rowlist"])
    prog = Program(cfg=cfg, shape=shape, cells=cells, acts=acts, inputs=inputs, blocks=blocks,
                   options=options, meta=dict(meta or {}))
    validate(prog, "compiled program")
    prog.stats = program_stats(prog, index_bits)
    return prog


# ---- row squeeze ------------------------------------------------------------------------------

def _row_groups(blocks, shape, cfg: SMEConfig, reorder: bool):
    """Crossbar groups: (tiles (G, R, C) int64, row inputs (G, R) int64 (-1 = empty),
    column block of each group (G,))."""
    R, C = cfg.xbar_rows, cfg.xbar_cols
    coords, tiles = tile_grid(blocks, shape, R, C)
    k = shape[0]
    rows = coords[:, :1] * R + np.arange(R)[None, :]
    rows = np.where(rows < k, rows, -1)
    if not reorder or len(tiles) == 0:
        return tiles, rows, coords[:, 1]
    out_t, out_r, out_cb = [], [], []
    for cb in np.unique(coords[:, 1]):
        sel = coords[:, 1] == cb
        slab = tiles[sel].reshape(-1, C)
        ids = rows[sel].reshape(-1)
        keep = np.any(slab != 0, axis=1)
        slab, ids = slab[keep], ids[keep]
        if len(ids) == 0:
            continue
        mag = np.abs(slab)
        s = trailing_zeros(mag, cfg.weight_bits).min(axis=1)
        top = bit_length(mag.max(axis=1) >> s)
        order = np.lexsort((ids, s, top))
        slab, ids = slab[order], ids[order]
        n_groups = -(-len(ids) // R)
        pad = n_groups * R - len(ids)
        slab = np.concatenate([slab, np.zeros((pad, C), dtype=slab.dtype)])
        ids = np.concatenate([ids, -np.ones(pad, dtype=ids.dtype)])
        out_t.append(slab.reshape(n_groups, R, C))
        out_r.append(ids.reshape(n_groups, R))
        out_cb.append(np.full(n_groups, cb))
    if not out_t:
        return tiles[:0], rows[:0], coords[:0, 1]
    return np.concatenate(out_t), np.concatenate(out_r), np.concatenate(out_cb)


def squeeze_rows(q: np.ndarray, cfg: SMEConfig) -> tuple[np.ndarray, np.ndarray]:
    """Row squeeze of a crossbar group (last axis = columns): returns ``(shift, stored)``.

    ``shift[..., r]`` is the number of trailing zero bits shared by all non-zero weights of row
    r (0 for an all-zero row) and ``stored = |q| >> shift``, exact by construction.
    """
    mag = np.abs(np.asarray(q, dtype=np.int64))
    shift = trailing_zeros(mag, cfg.weight_bits).min(axis=-1) if mag.shape[-1] else \
        np.zeros(mag.shape[:-1], dtype=np.int64)
    shift = np.where(shift >= cfg.weight_bits, 0, shift)
    return shift, mag >> shift[..., None]


def _sign_sets(q: np.ndarray) -> np.ndarray:
    """Positive and negative magnitude sets of signed integers: new axis 1 of length 2, uint16."""
    q = np.asarray(q)
    pos = np.where(q > 0, q, 0).astype(np.uint16)
    neg = np.where(q < 0, -q, 0).astype(np.uint16)
    return np.stack([pos, neg], axis=1)


def _any_last(a: np.ndarray) -> np.ndarray:
    """``a.any(axis=-1)`` for a C-contiguous uint8 array, fast for widths 1, 2, 4 and 8."""
    a = np.ascontiguousarray(a)
    width = a.shape[-1]
    if a.dtype == np.uint8 and width in (1, 2, 4, 8):
        return a.view(f"u{width}")[..., 0] != 0
    return a.any(axis=-1)


def _pad_rows(a: np.ndarray, cfg: SMEConfig, axis: int, fill=0) -> np.ndarray:
    pad = cfg.windows * cfg.ou_rows - cfg.xbar_rows
    if pad == 0:
        return a
    widths = [(0, 0)] * a.ndim
    widths[axis] = (0, pad)
    return np.pad(a, widths, constant_values=fill)


def _row_squeeze(blocks, shape, cfg: SMEConfig, reorder: bool):
    tiles, row_in, col_block = _row_groups(blocks, shape, cfg, reorder)
    n_groups = len(tiles)
    if n_groups == 0:
        cells = np.zeros((0, cfg.windows, cfg.colgroups, cfg.ou_rows, cfg.ou_cols), np.uint8)
        acts, inputs = _collect({name: [] for name in ACT_FIELDS}, [], cfg)
        return cells, acts, inputs, 0
    W, Gc, ru, cu = cfg.windows, cfg.colgroups, cfg.ou_rows, cfg.ou_cols
    shift, stored = squeeze_rows(tiles, cfg)
    sets = _sign_sets(np.where(tiles < 0, -stored, stored))                      # G,2,R,C
    used = digits(np.bitwise_or.reduce(sets.reshape(n_groups, 2, -1), axis=-1), cfg) != 0
    g_idx, s_idx, p_idx = np.nonzero(used)                                      # G,2,P
    xb = ((sets[g_idx, s_idx] >> (p_idx * cfg.cell_bits).astype(np.uint16)[:, None, None])
          & np.uint16(cfg.cell_max)).astype(np.uint8)                           # X,R,C
    xb = _pad_rows(xb, cfg, axis=1)
    cells = xb.reshape(-1, W, ru, Gc, cu).transpose(0, 1, 3, 2, 4).copy()
    X = len(cells)

    row_shift = _pad_rows(shift, cfg, axis=1)[g_idx].reshape(X, W, 1, ru)
    row_input = _pad_rows(row_in, cfg, axis=1, fill=-1)[g_idx].reshape(X, W, 1, ru)
    seg_nz = _any_last(cells)                                                   # X,W,Gc,ru
    parts = {name: [] for name in ACT_FIELDS}
    in_parts = []
    for s in range(cfg.weight_bits):
        m = seg_nz & (row_shift == s)
        x, w, g = np.nonzero(m.any(axis=-1))
        if len(x) == 0:
            continue
        rows = m[x, w, g]                                                        # n, ru
        inp = np.where(rows, np.broadcast_to(row_input, m.shape)[x, w, g], -1)
        parts["xbar"].append(x)
        parts["window"].append(w)
        parts["colgroup"].append(g)
        parts["outgroup"].append(col_block[g_idx[x]] * Gc + g)
        parts["plane"].append(p_idx[x])
        parts["sign"].append(s_idx[x])
        parts["shift"].append(np.full(len(x), s))
        in_parts.append(inp)
    acts, inputs = _collect(parts, in_parts, cfg)

    # Index storage (SPEC 3.4): one entry per row of every crossbar group (index_widths).
    per_row, _ = index_widths(cfg, shape, "row", reorder)
    return cells, acts, inputs, n_groups * cfg.xbar_rows * per_row


def _collect(parts, in_parts, cfg: SMEConfig):
    parts["step"] = parts["rowlist"] = []     # both assigned later (steps, final order)
    acts = {}
    for name, dt in ACT_FIELDS.items():
        acts[name] = (np.concatenate(parts[name]).astype(dt) if parts[name]
                      else np.zeros(0, dtype=dt))
    acts["step"] = np.zeros(len(acts["xbar"]), dtype=np.int32)
    acts["rowlist"] = np.zeros(len(acts["xbar"]), dtype=np.int32)
    inputs = (np.concatenate(in_parts).astype(np.int32) if in_parts
              else np.zeros((0, cfg.ou_rows), dtype=np.int32))
    return acts, inputs


# ---- segment squeeze --------------------------------------------------------------------------

def _deal(cls_id: np.ndarray, ru: int, reorder: bool):
    """Pack units sorted by class ``ou_rows`` at a time into blocks (or block groups) of their
    class.  Returns ``(starts, count, blk, row)``: the first unit of each class, each class's
    block count, and every unit's block (numbered class after class) and row in it.
    ``reorder`` deals the units round-robin over the class's blocks (units sorted heaviest
    first: even column sums), otherwise blocks are filled in order."""
    n = len(cls_id)
    starts = np.flatnonzero(np.r_[True, cls_id[1:] != cls_id[:-1]]) if n else \
        np.zeros(0, dtype=np.int64)
    sizes = np.diff(np.r_[starts, n])
    class_of = np.repeat(np.arange(len(starts)), sizes)
    rank = np.arange(n) - starts[class_of]
    count = -(-sizes // ru)
    first = np.r_[0, np.cumsum(count)[:-1]].astype(np.int64)
    if reorder:
        return starts, count, first[class_of] + rank % count[class_of], rank // count[class_of]
    return starts, count, first[class_of] + rank // ru, rank % ru


def _segment_squeeze(blocks, shape, cfg: SMEConfig, reorder: bool, balance: bool):
    R, C = cfg.xbar_rows, cfg.xbar_cols
    Gc, ru, cu, P = cfg.colgroups, cfg.ou_rows, cfg.ou_cols, cfg.planes
    coords, tiles = tile_grid(blocks, shape, R, C)
    T = len(tiles)
    tl = tiles.reshape(T, R, Gc, cu)
    sets = _sign_sets(tl)                                                       # T,2,R,Gc,cu
    # a segment's digit plane is non-zero iff that digit of the OR of its magnitudes is
    nz = digits(np.bitwise_or.reduce(sets, axis=-1), cfg) != 0                  # T,2,R,Gc,P
    t, sg, r, g, p = np.nonzero(nz)
    data = ((sets[t, sg, r, g] >> (p * cfg.cell_bits).astype(np.uint16)[:, None])
            & np.uint16(cfg.cell_max)).astype(np.uint8)                         # n, cu
    inp = coords[t, 0] * R + r
    outg = coords[t, 1] * Gc + g
    n = len(inp)
    # Sort units by class (outgroup, sign, plane); within a class by weight (reorder) or input.
    cls_id = (outg.astype(np.int64) * 2 + sg) * P + p
    tie = inp.astype(np.int64)
    if reorder:
        weight = data.sum(axis=1, dtype=np.int64)
        tie = (cu * cfg.cell_max - weight) * max(1, shape[0]) + tie
    order = np.argsort(cls_id * (max(1, shape[0]) * (cu * cfg.cell_max + 1)) + tie,
                       kind="stable")
    data, inp, outg, sg, p = data[order], inp[order], outg[order], sg[order], p[order]
    cls_id = cls_id[order]
    starts, nblk, blk, row = _deal(cls_id, ru, reorder)
    n_blocks = int(nblk.sum())
    slots = (R // ru) * Gc
    X = -(-n_blocks // slots) if n_blocks else 0
    b = np.arange(n_blocks)
    if balance:
        bx, bslot = b % max(X, 1), b // max(X, 1)
    else:
        bx, bslot = b // slots, b % slots
    bw, bg = bslot // Gc, bslot % Gc
    cells = np.zeros((X, cfg.windows, Gc, ru, cu), dtype=np.uint8)
    cells[bx[blk], bw[blk], bg[blk], row] = data
    inputs = np.full((n_blocks, ru), -1, dtype=np.int32)
    inputs[blk, row] = inp
    blk_class = np.repeat(np.arange(len(starts)), nblk)
    cstart = starts[blk_class] if n_blocks else starts
    acts = {"xbar": bx, "window": bw, "colgroup": bg, "outgroup": outg[cstart],
            "plane": p[cstart], "sign": sg[cstart], "shift": np.zeros(n_blocks),
            "step": np.zeros(n_blocks), "rowlist": np.zeros(n_blocks)}
    acts = {k: np.asarray(v).astype(ACT_FIELDS[k]) for k, v in acts.items()}
    # Index storage: an input index per packed unit, a class tag per block (index_widths).
    per_unit, class_bits = index_widths(cfg, shape, "segment", reorder)
    index_bits = n * per_unit + n_blocks * class_bits
    return cells, acts, inputs, index_bits


# ---- span squeeze -----------------------------------------------------------------------------

def _pack_windows(width: np.ndarray, slots: int):
    """First-fit decreasing of items of ``width`` (1..slots) column groups into windows of
    ``slots`` column groups.  Items of equal width are placed as one batch (first fit of equal
    items fills each open window in order), so the loop runs over widths, not items.
    Returns ``(window, offset)`` of every item and the number of windows."""
    n = len(width)
    win = np.zeros(n, dtype=np.int64)
    off = np.zeros(n, dtype=np.int64)
    free = np.zeros(0, dtype=np.int64)            # free column groups of each open window
    for s in range(slots, 0, -1):
        items = np.flatnonzero(width == s)
        if not len(items):
            continue
        take = free // s                           # items of width s each open window takes
        per = slots // s
        more = max(0, -(-(len(items) - int(take.sum())) // per))
        free = np.r_[free, np.full(more, slots, dtype=np.int64)]
        take = np.r_[take, np.full(more, per, dtype=np.int64)]
        end = np.cumsum(take)
        w = np.searchsorted(end, np.arange(len(items)), side="right")
        k = np.arange(len(items)) - (end[w] - take[w])     # rank of the item in its window
        win[items] = w
        off[items] = slots - free[w] + k * s
        free = free - s * np.bincount(w, minlength=len(free))
    return win, off, len(free)


def _fill_partial_groups(cls_id, os_id, lo, span, ru: int, P: int, Wc: int):
    """Container class of every unit for span squeeze: units sorted by class ``cls_id`` (one
    class per (``os_id`` = output group and sign, ``lo``, ``span``)).  A class whose unit count
    is not a multiple of ``ou_rows`` leaves free rows in its block groups; the partial group's
    worth of units (the class's last ``count % ou_rows``) of a narrower class whose planes it
    covers moves there, which saves that class a block group.  Hosts are taken widest first,
    guests widest first.  The loop runs over (lo, span) pairs (at most planes x colgroups),
    vectorized over output groups and signs.  Returns ``(container lo, container span)``."""
    n = len(cls_id)
    if not n:
        return lo, span
    starts = np.flatnonzero(np.r_[True, cls_id[1:] != cls_id[:-1]])
    sizes = np.diff(np.r_[starts, n])
    osu, c_os = np.unique(os_id[starts], return_inverse=True)
    c_lo, c_sp = lo[starts], span[starts]
    cnt = np.zeros((len(osu), P, Wc + 1), dtype=np.int64)
    cnt[c_os, c_lo, c_sp] = sizes
    moved = np.zeros_like(cnt)
    dest = np.zeros(cnt.shape + (2,), dtype=np.int64)
    for sh in range(Wc, 1, -1):
        for lh in range(P - sh + 1):
            free = (-cnt[:, lh, sh]) % ru
            if not free.any():
                continue
            for sg in range(sh, 0, -1):
                for lg in range(lh, lh + sh - sg + 1):
                    if sg == sh:
                        continue
                    r = cnt[:, lg, sg] % ru
                    mv = np.flatnonzero((r > 0) & (r <= free))
                    if not len(mv):
                        continue
                    moved[mv, lg, sg] = r[mv]
                    dest[mv, lg, sg] = (lh, sh)
                    free[mv] -= r[mv]
                    cnt[mv, lg, sg] -= r[mv]
                    cnt[mv, lh, sh] += r[mv]
    cls = np.repeat(np.arange(len(starts)), sizes)
    rank = np.arange(n) - starts[cls]
    go = rank >= (sizes - moved[c_os, c_lo, c_sp])[cls]
    to = dest[c_os, c_lo, c_sp][cls]
    return np.where(go, to[:, 0], lo), np.where(go, to[:, 1], span)


def _span_squeeze(blocks, shape, cfg: SMEConfig, reorder: bool, balance: bool):
    R, C = cfg.xbar_rows, cfg.xbar_cols
    Gc, ru, cu, P = cfg.colgroups, cfg.ou_rows, cfg.ou_cols, cfg.planes
    Wc = min(P, Gc)                     # a block group spans at most one window's column groups
    n_ch = -(-P // Wc)                  # plane chunks (one unless planes > column groups)
    coords, tiles = tile_grid(blocks, shape, R, C)
    T = len(tiles)
    sets = _sign_sets(tiles.reshape(T, R, Gc, cu))                              # T,2,R,Gc,cu
    nz = digits(np.bitwise_or.reduce(sets, axis=-1), cfg) != 0                  # T,2,R,Gc,P
    nz = np.pad(nz, [(0, 0)] * 4 + [(0, n_ch * Wc - P)]).reshape(T, 2, R, Gc, n_ch, Wc)
    # a unit: a fragment row (input row, output group, sign) in one plane chunk
    t, sg, r, g, ch = np.nonzero(nz.any(axis=-1))
    unz = nz[t, sg, r, g, ch]                                                   # n, Wc
    first = unz.argmax(axis=1)
    last = Wc - 1 - unz[:, ::-1].argmax(axis=1)
    lo, span = ch * Wc + first, last - first + 1
    mags = sets[t, sg, r, g]                                                    # n, cu
    inp = coords[t, 0] * R + r
    outg = coords[t, 1] * Gc + g
    n = len(inp)
    # Planes of each unit as bits of its absolute digit plane (planes <= 16 fit an int64).
    umask = (unz.astype(np.int64) << np.arange(Wc)).sum(axis=1) << (ch * Wc) if n else \
        np.zeros(0, dtype=np.int64)
    os_id = outg.astype(np.int64) * 2 + sg
    # reorder: heaviest units first (a group's rows then have similar magnitudes)
    light = -mags.sum(axis=1, dtype=np.int64) if reorder else np.zeros(n, dtype=np.int64)

    def by_class(lo_, span_):
        return (os_id * P + lo_) * (Wc + 1) + span_

    # Classes (outgroup, sign, lo, span); the last partial block group of a class moves into
    # the free rows of a wider class of the same output group and sign that covers its planes.
    order = np.lexsort((inp, light, by_class(lo, span)))
    inp, os_id, lo, span, mags, umask, light = (
        x[order] for x in (inp, os_id, lo, span, mags, umask, light))
    clo, cspan = _fill_partial_groups(by_class(lo, span), os_id, lo, span, ru, P, Wc)
    # Pack each container class ou_rows units at a time into block groups, in order: with
    # reorder, units of one plane set (relative to the container) next to each other, so that
    # a group's blocks hold few zero rows (a plane no unit of a group uses gets no block);
    # without, by input.
    keys = (inp, light, umask >> clo, by_class(clo, cspan)) if reorder else \
        (inp, by_class(clo, cspan))
    order = np.lexsort(keys)
    inp, os_id, clo, cspan, mags, umask = (
        x[order] for x in (inp, os_id, clo, cspan, mags, umask))
    starts, ngrp, grp, row = _deal(by_class(clo, cspan), ru, False)
    n_grp = int(ngrp.sum())
    gstart = starts[np.repeat(np.arange(len(starts)), ngrp)] if n_grp else starts
    # A group gets a block for every plane of its container that one of its units uses (a
    # plane no unit uses would be an all-zero block: never stored, never activated).
    rel = np.arange(Wc)
    urel = umask >> clo                                # unit planes relative to the container
    gmask = np.zeros(n_grp, dtype=np.int64)
    np.bitwise_or.at(gmask, grp, urel)
    gbits = ((gmask[:, None] >> rel) & 1).astype(bool)                         # n_grp, Wc
    width = gbits.sum(axis=1)
    bpos = np.cumsum(gbits, axis=1) - 1                # block of each used plane in its group
    win, off, n_win = _pack_windows(width, Gc)
    wpx = R // ru                                      # whole OU windows per crossbar
    X = -(-n_win // wpx) if n_win else 0
    if balance:
        gx, gw = win % max(X, 1), win // max(X, 1)
    else:
        gx, gw = win // wpx, win % wpx
    # cells: every used plane of every unit, in block bpos of its group
    cells = np.zeros((X, cfg.windows, Gc, ru, cu), dtype=np.uint8)
    u, j = np.nonzero((urel[:, None] >> rel) & 1)
    pl = clo[u] + j
    gu = grp[u]
    cells[gx[gu], gw[gu], off[gu] + bpos[gu, j], row[u]] = \
        ((mags[u] >> (pl * cfg.cell_bits).astype(np.uint16)[:, None])
         & np.uint16(cfg.cell_max)).astype(np.uint8)
    rowlists = np.full((n_grp, ru), -1, dtype=np.int32)
    rowlists[grp, row] = inp
    # one activation per block
    bg, bj = np.nonzero(gbits)
    cs = gstart[bg]
    acts = {"xbar": gx[bg], "window": gw[bg], "colgroup": off[bg] + bpos[bg, bj],
            "outgroup": os_id[cs] // 2, "plane": clo[cs] + bj, "sign": os_id[cs] % 2,
            "shift": np.zeros(len(bg)), "step": np.zeros(len(bg)), "rowlist": bg}
    acts = {k: np.asarray(v).astype(ACT_FIELDS[k]) for k, v in acts.items()}
    # Index storage: an input index per row-list row, a class tag per block (index_widths).
    per_row, class_bits = index_widths(cfg, shape, "span", reorder)
    index_bits = n * per_row + len(bg) * class_bits
    return cells, acts, rowlists[bg], index_bits


# ---- scheduling ------------------------------------------------------------------------------

def _assign_steps(acts: dict, n_xbars: int) -> None:
    """Step of each activation = its rank among its crossbar's activations (in window,
    column group, shift order); crossbars issue in parallel."""
    n = len(acts["xbar"])
    if n == 0:
        return
    order = np.lexsort((acts["shift"], acts["colgroup"], acts["window"], acts["xbar"]))
    xs = acts["xbar"][order]
    first = np.r_[0, np.flatnonzero(np.diff(xs)) + 1]
    counts = np.diff(np.r_[first, n])
    rank = np.arange(n) - np.repeat(first, counts)
    step = np.empty(n, dtype=np.int32)
    step[order] = rank
    acts["step"] = step


# ---- statistics ------------------------------------------------------------------------------

def program_stats(p: Program, index_bits: int) -> dict:
    cfg = p.cfg
    A = cfg.input_bits
    nz_cells = nonzero_digits(p.blocks, cfg)
    # Non-zero ou_cols-wide segments (each counted with its fewest digit planes under any
    # exact shift): no schedule can activate fewer than ceil(segments / ou_rows) OUs per bit.
    segs = 0
    table = min_digits_table(cfg)   # non-zero planes of a segment under its best exact shift
    for r0, c0, b in p.blocks:
        lead = c0 % cfg.ou_cols          # align segments to the global output groups
        b = np.pad(b, ((0, 0), (lead, (-(lead + b.shape[1])) % cfg.ou_cols)))
        sets = _sign_sets(b.reshape(b.shape[0], -1, cfg.ou_cols))              # k,2,ng,cu
        segs += int(table[np.bitwise_or.reduce(sets, axis=-1)].sum())
    # Placement floor: the busiest crossbar, were its non-zero rows of each column group
    # packed into full OU windows with no significance constraint.
    if p.n_xbars:
        rows_nz = _any_last(p.cells).sum(axis=(1, 3))                 # X, Gc
        floor_steps = int((-(-rows_nz // cfg.ou_rows)).sum(axis=1).max())
    else:
        floor_steps = 0
    return {
        "squeeze": p.options["squeeze"], "reorder": p.options["reorder"],
        "balance": p.options["balance"],
        "K": p.shape[0], "N": p.shape[1],
        "weights": int(sum(b.size for _, _, b in p.blocks)),
        "crossbars": p.n_xbars,
        "activations": A * p.n_act,
        "rowlists": p.n_rowlists,
        "steps": p.n_steps,
        "cycles": A * p.n_steps,
        "index_bits": int(index_bits),
        "nonzero_cells": nz_cells,
        "nonzero_segments": segs,
        "floor_crossbars": -(-nz_cells // (cfg.xbar_rows * cfg.xbar_cols)),
        "floor_activations": A * -(-segs // cfg.ou_rows),
        "floor_cycles": A * floor_steps,
    }
