"""Hypothesis strategies shared by the tests: configs and layers (drawn with ``sim.stimulus``);
and :func:`craft`, which re-packs a program file the way an attacker can (valid checksum)."""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np
from hypothesis import strategies as st

from golden.config import SMEConfig, preset
from golden.program import FORMAT_VERSION, MAGIC
from sim.stimulus import random_q


@st.composite
def configs(draw, lossless: bool = True) -> SMEConfig:
    base = draw(st.sampled_from(["tiny", "tiny_mlc", "fpga_small"]))
    cfg = preset(base)
    cell_bits = draw(st.sampled_from([1, 2])) if cfg.weight_bits % 2 == 0 else 1
    cols = draw(st.sampled_from([4, 8, 16]))
    ou_cols = draw(st.sampled_from([c for c in (1, 2, 4, 8) if cols % c == 0]))
    rows = draw(st.integers(2, 20))
    return cfg.replace(
        name="hyp", pattern=draw(st.sampled_from(["window", "max_ones", "uniform", "fragment"])),
        fragment_bits=draw(st.integers(1, cfg.weight_bits)), fragment_sign=draw(st.booleans()),
        cell_bits=cell_bits, xbar_rows=rows, xbar_cols=cols,
        ou_rows=draw(st.integers(1, min(rows, 9))), ou_cols=ou_cols,
        input_bits=draw(st.integers(1, 8)),
        tile_outputs=((cfg.tile_outputs + ou_cols - 1) // ou_cols) * ou_cols,
        adc_bits=None if lossless else draw(st.integers(1, 3)))


@st.composite
def layers(draw, cfg: SMEConfig):
    """A layer as (blocks, shape): dense, all-zero, single-row, or grouped/depthwise."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["dense", "dense", "dense", "zero", "row", "grouped",
                                 "depthwise"]))
    density = draw(st.sampled_from([0.05, 0.3, 1.0]))
    if kind in ("dense", "zero", "row"):
        k = 1 if kind == "row" else draw(st.integers(1, 45))
        n = draw(st.integers(1, 21))
        q = random_q(rng, (k, n), cfg, 0.0 if kind == "zero" else density)
        return [(0, 0, q)], (k, n)
    groups = draw(st.integers(2, 6))
    kg = draw(st.integers(1, 9))
    ng = 1 if kind == "depthwise" else draw(st.integers(1, 5))
    blocks = [(g * kg, g * ng, random_q(rng, (kg, ng), cfg, density, col0=g * ng))
              for g in range(groups)]
    return blocks, (groups * kg, groups * ng)


def dense(blocks, shape) -> np.ndarray:
    """The K x N matrix of a block list (for checks on small layers)."""
    q = np.zeros(shape, dtype=np.int64)
    for r0, c0, b in blocks:
        q[r0:r0 + b.shape[0], c0:c0 + b.shape[1]] = b
    return q


def craft(data: bytes, edit_header=None, edit_arrays=None) -> bytes:
    """Re-pack a program file after editing its parsed header and/or its raw arrays (a dict
    name -> bytes), with offsets, sizes and the checksum recomputed: what an attacker can do."""
    hlen = struct.unpack_from("<I", data, 12)[0]
    header = json.loads(data[16:16 + hlen])
    payload = data[16 + hlen:-4]
    raw = {e["name"]: payload[e["offset"]:e["offset"] + e["nbytes"]] for e in header["arrays"]}
    if edit_arrays:
        edit_arrays(header, raw)
    off = 0
    for e in header["arrays"]:
        if e["name"] in raw:
            e["offset"], e["nbytes"] = off, len(raw[e["name"]])
            off += len(raw[e["name"]])
    if edit_header:
        edit_header(header)
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    if callable(getattr(edit_header, "raw", None)):
        h = edit_header.raw(h)
    body = MAGIC + struct.pack("<II", FORMAT_VERSION, len(h)) + h + b"".join(
        raw[e["name"]] for e in header["arrays"] if e["name"] in raw)
    return body + struct.pack("<I", zlib.crc32(body))
