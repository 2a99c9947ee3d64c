"""Baselines on the same quantized weights and parameters (SPEC 4).

``isaac``  dense ISAAC-style mapping: the ``planes`` digits of a weight sit in adjacent columns
           of one crossbar; positive and negative sets in separate crossbars.  Every OU that
           covers mapped rows and columns of a crossbar is activated for every input bit (a
           slightly stronger baseline than activating the unmapped rest of a partial crossbar).
``sre``    the same mapping, but within each OU column group the all-zero OU rows are skipped
           (SRE, ISCA'19): per crossbar, sum over column groups of ceil(non-zero rows /
           ou_rows) activations per input bit; an input index of ceil(log2 xbar_rows) bits is
           stored per kept row.  Same crossbar count as ``isaac``.
``planes`` SME's bit-plane slicing without squeeze: ``2 * planes`` crossbars per tile of the
           K x N grid, every OU over mapped rows and columns activated.

All crossbars of a layer run in parallel, so cycles per input vector = ``input_bits`` x the
busiest crossbar's activations per input bit.

Each scheme also reports ``events`` per input vector for :mod:`golden.ppa` (same keys as
:func:`golden.ppa.program_events`).  Dense mappings read, per input bit and per crossbar tile
with r mapped rows and c mapped columns, every cell once (r x c cell reads), drive each row once
per column group (r x ceil(c / ou_cols) wordline drives) and convert each column once per OU
window (ceil(r / ou_rows) x c conversions).  SRE reads only its kept rows: per (row block,
column group) with n kept rows, n x w cell reads and n wordline drives, ceil(n / ou_rows) x w
conversions (w = the group's columns) and n index entries of ceil(log2 xbar_rows) bits.

Block-diagonal layers (grouped, depthwise) count only the crossbar tiles that intersect a block.
"""

from __future__ import annotations


import numpy as np

from .config import SMEConfig, ceil_log2
from .slicing import as_blocks, digits

__all__ = ["baseline_stats", "BASELINES"]

BASELINES = ("isaac", "sre", "planes")


def _mapped_extent(blocks, shape, rows: int, cols: int, col_scale: int):
    """Per intersecting tile of the (K x N*col_scale) grid: mapped rows and columns."""
    k, n = shape
    seen = {}
    for r0, c0, b in blocks:
        if b.size == 0:
            continue
        kr, kc = b.shape
        cs, ce = c0 * col_scale, (c0 + kc) * col_scale
        for rb in range(r0 // rows, (r0 + kr - 1) // rows + 1):
            for cb in range(cs // cols, (ce - 1) // cols + 1):
                nr = min(r0 + kr, (rb + 1) * rows) - max(r0, rb * rows)
                nc = min(ce, (cb + 1) * cols) - max(cs, cb * cols)
                # blocks of a block-diagonal layer occupy disjoint rows and columns
                pr, pc = seen.get((rb, cb), (0, 0))
                seen[(rb, cb)] = (pr + nr, pc + nc)
    return seen


def _io_events(shape, cfg: SMEConfig) -> dict:
    """Per-vector buffer traffic and output values (every scheme moves the same data)."""
    return {"buffer_bits": (shape[0] + shape[1]) * cfg.input_bits, "output_values": shape[1]}


def _dense_events(extent: dict, sets: int, shape, cfg: SMEConfig) -> dict:
    """Events per input vector when every mapped OU of ``sets`` copies of the tiles is read."""
    cells = wl = conv = 0
    for r, c in extent.values():
        r, c = min(r, cfg.xbar_rows), min(c, cfg.xbar_cols)
        cells += r * c
        wl += r * -(-c // cfg.ou_cols)
        conv += -(-r // cfg.ou_rows) * c
    A = cfg.input_bits * sets
    return {"cell_reads": A * cells, "wordline_drives": A * wl, "adc_conversions": A * conv,
            "sample_holds": A * conv, "shift_adds": A * conv, "index_bits_read": 0,
            "descriptor_bits_read": 0, "input_register_bits": A * wl, **_io_events(shape, cfg)}


def _dense_ou(extent: dict, cfg: SMEConfig) -> tuple[int, int]:
    """(total, busiest) OU activations per input bit when every mapped OU is read."""
    per = [-(-min(r, cfg.xbar_rows) // cfg.ou_rows) * -(-min(c, cfg.xbar_cols) // cfg.ou_cols)
           for r, c in extent.values()]
    return (sum(per), max(per)) if per else (0, 0)


def baseline_stats(blocks, shape=None, cfg: SMEConfig | None = None) -> dict:
    """Crossbars, activations and cycles per input vector, index bits for each baseline."""
    blocks, shape = as_blocks(blocks, shape)
    A, P, R, C = cfg.input_bits, cfg.planes, cfg.xbar_rows, cfg.xbar_cols
    out = {}

    # ISAAC-style dense: weight j occupies columns j*P .. j*P+P-1.
    ext = _mapped_extent(blocks, shape, R, C, P)
    total, busiest = _dense_ou(ext, cfg)
    out["isaac"] = {"crossbars": 2 * len(ext), "activations": A * 2 * total,
                    "cycles": A * busiest, "index_bits": 0, "descriptor_bits": 0,
                    "events": _dense_events(ext, 2, shape, cfg)}

    # SRE: same layout, all-zero OU rows skipped per column group.  Count non-zero OU rows
    # per (row block, global column group) from the non-zero digit positions.
    cu = cfg.ou_cols
    groups_per_xbar = C // cu
    n_groups = -(-shape[1] * P // cu)
    sre_total, sre_busiest, sre_rows = 0, 0, 0
    sre_cells = sre_conv = 0
    for sgn in (1, -1):
        keys = []
        for r0, c0, b in blocks:
            wide = _interleave(b, cfg, sgn) != 0                          # k, n*P
            lead = (c0 * P) % cu
            wide = np.pad(wide, ((0, 0), (lead, (-(lead + wide.shape[1])) % cu)))
            rr, gg = np.nonzero(wide.reshape(wide.shape[0], -1, cu).any(axis=2))
            keys.append((r0 + rr) // R * n_groups + (c0 * P) // cu + gg)
        keys = np.concatenate(keys) if keys else np.zeros(0, dtype=np.int64)
        if not len(keys):
            continue
        uniq, rows_nz = np.unique(keys, return_counts=True)               # per (rb, group)
        acts = -(-rows_nz // cfg.ou_rows)
        width = np.minimum(cu, shape[1] * P - (uniq % n_groups) * cu)     # columns read
        sre_cells += int((rows_nz * width).sum())
        sre_conv += int((acts * width).sum())
        xbar = uniq // n_groups * (n_groups // groups_per_xbar + 1) \
            + (uniq % n_groups) // groups_per_xbar
        per_xbar = np.bincount(np.unique(xbar, return_inverse=True)[1], weights=acts)
        sre_total += int(acts.sum())
        sre_busiest = max(sre_busiest, int(per_xbar.max()))
        sre_rows += int(rows_nz.sum())
    row_bits = ceil_log2(R)
    out["sre"] = {"crossbars": 2 * len(ext), "activations": A * sre_total,
                  "cycles": A * sre_busiest, "index_bits": sre_rows * row_bits,
                  "descriptor_bits": 0,
                  "events": {"cell_reads": A * sre_cells, "wordline_drives": A * sre_rows,
                             "adc_conversions": A * sre_conv, "sample_holds": A * sre_conv,
                             "shift_adds": A * sre_conv, "index_bits_read": A * sre_rows * row_bits,
                             "descriptor_bits_read": 0, "input_register_bits": A * sre_rows,
                             **_io_events(shape, cfg)}}
    # Bit planes without squeeze.
    ext1 = _mapped_extent(blocks, shape, R, C, 1)
    total1, busiest1 = _dense_ou(ext1, cfg)
    out["planes"] = {"crossbars": 2 * P * len(ext1), "activations": A * 2 * P * total1,
                     "cycles": A * busiest1, "index_bits": 0, "descriptor_bits": 0,
                     "events": _dense_events(ext1, 2 * P, shape, cfg)}
    return out


def _interleave(b: np.ndarray, cfg: SMEConfig, sgn: int) -> np.ndarray:
    """ISAAC layout of one sign set: (k, n) -> (k, n*P) digits, weight-major."""
    mag = np.where(np.sign(b) == sgn, np.abs(b), 0)
    return digits(mag, cfg).reshape(b.shape[0], -1)
