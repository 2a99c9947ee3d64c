"""Reference model of the bit-splice adders (``rtl/splice.py``): shift-and-add into accumulators.

Every active sample adds ``(-1)^sign * sample << (t + plane*cell_bits + shift)`` into
accumulator ``outgroup*ou_cols + c`` (SPEC 3.3).  The accumulators are ``accumulator_bits`` wide
and signed; :func:`wrap_signed` states the two's-complement wrap the hardware does (the config
sizes them so that no real layer wraps).
"""

from __future__ import annotations

from .config import SMEConfig

__all__ = ["splice_accumulate", "wrap_signed"]


def wrap_signed(v: int, width: int) -> int:
    """``v`` as a signed ``width``-bit two's-complement number."""
    v &= (1 << width) - 1
    return v - (1 << width) if v >> (width - 1) else v


def splice_accumulate(cfg: SMEConfig, samples, outputs: int | None = None,
                      wrap: bool = True) -> tuple[list[int], int]:
    """Accumulators and clip count after ``samples``: an iterable of ``(t, [(active, outgroup,
    plane, sign, shift, [sample per column], [clip per column]) per lane])`` (see
    ``golden.xbar.trace_samples``).  ``outputs`` accumulators (default: the tile's
    ``cfg.tile_outputs``), wrapped to ``accumulator_bits`` as the hardware does unless ``wrap``
    is false (a whole layer larger than a tile)."""
    acc = [0] * (cfg.tile_outputs if outputs is None else outputs)
    clips = 0
    for t, lanes in samples:
        for active, og, plane, sign, shift, vals, clip in lanes:
            if not active:
                continue
            sh = t + plane * cfg.cell_bits + shift
            for c, v in enumerate(vals):
                acc[og * cfg.ou_cols + c] += (-1) ** sign * (v << sh)
                clips += int(clip[c])
    if wrap:
        acc = [wrap_signed(a, cfg.accumulator_bits) for a in acc]
    return acc, clips
