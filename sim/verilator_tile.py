"""Whole layers on the emitted Verilog tile, compiled by Verilator with a C++ driver.

This is the RTL path of the inference engine (``sme infer --backend rtl``): a layer's
:class:`golden.partition.Partition` runs part after part on one ``sme_tile`` (the Verilog
that ``sim/harness.py`` emits for the cocotb benches), each part loaded once over ``i_load``
and every input vector of the layer streamed through it.  The driver (``sim/tile_driver.cpp``)
keeps the streams full, so a vector costs its issue cycles plus the tile's input, pipeline
and output cycles; idle and backpressure patterns are the cocotb benches' business.  Why not
cocotb here: a Python coroutine per clock edge runs tens of thousands of cycles per second,
and the digits test set needs tens of millions of cycles; the C++ loop runs millions per
second on the same Verilog.

Command file (little-endian u32 words), one per layer call::

    1, n, word[n]               load a tile image (golden.tile_image.build_image)
    2, m, k, n, x[m*k]          stream m vectors of k unsigned inputs, collect m*n outputs
    0                           end

Result file: per load ``u32 error, u32 loaded``; per vector batch ``i64 y[m*n]`` (sign-extended
``o_vec`` data), ``u64 cycles`` (driver cycles for the batch), ``u64 clip_count`` (the tile's
status after the batch, counted since the load).

Builds live in ``build/sim/verilator_cpp/<config crc>/`` and are reused while the RTL sources,
the config and the driver are unchanged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import tempfile
import zlib
from pathlib import Path

import numpy as np

from golden import tile_image as ti
from golden.config import SMEConfig
from golden.partition import Partition, check_fits

from .harness import ROOT, _locked, _rtl_key, _verilator_env, emit

__all__ = ["TileResult", "build", "run_partition", "DRIVER"]

DRIVER = Path(__file__).with_name("tile_driver.cpp")


@dataclasses.dataclass
class TileResult:
    outputs: np.ndarray        # int64 (M, N): the layer's integer outputs
    clipped: list[int]         # the tile's clip counter per part
    cycles: int                # driver cycles over all parts (loads excluded)


def _layout_args(cfg: SMEConfig) -> list[str]:
    from rtl.layouts import Layouts
    lay = Layouts(cfg)

    def f(layout, name):
        return layout[name].offset, layout[name].width

    out = [f(lay.load, "data")[0], f(lay.load, "last")[0], f(lay.vin, "data")[0],
           f(lay.vin, "last")[0], *f(lay.vout, "data"), f(lay.vout, "last")[0],
           f(lay.status, "busy")[0], f(lay.status, "loaded")[0], *f(lay.status, "error"),
           *f(lay.status, "clip_count")]
    if max(lay.load.size, lay.vin.size, lay.vout.size, lay.status.size) > 64:
        raise RuntimeError("tile_driver handles ports of at most 64 bits")
    return [str(v) for v in out]


def build(cfg: SMEConfig) -> Path:
    """Emit ``sme_tile`` for ``cfg`` and compile it with the C++ driver; returns the binary."""
    _verilator_env()
    key = hashlib.sha256((_rtl_key(cfg, "sme_tile") + DRIVER.read_text()).encode()).hexdigest()
    out = ROOT / "build" / "sim" / "verilator_cpp" / f"{zlib.crc32(cfg.to_json().encode()):08x}"
    exe = out / "obj" / "Vsme_tile"
    with _locked(out):
        stamp = out / "build.key"
        if exe.exists() and stamp.exists() and stamp.read_text() == key:
            return exe
        v, _ = emit(cfg, "sme_tile", out / "rtl")
        cmd = ["verilator", "--cc", "--exe", "--build", "-O2", "-Wno-fatal", "-Wno-lint",
               "--top-module", "sme_tile", "--Mdir", str(out / "obj"), "-j", "2",
               "-CFLAGS", "-O2", str(v), str(DRIVER), "-o", "Vsme_tile"]
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=out)
        if r.returncode != 0:
            raise RuntimeError(f"verilator build failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
        stamp.write_text(key)
    return exe


def run_partition(part: Partition, X: np.ndarray, max_cycles: int = 2_000_000_000) -> TileResult:
    """Run input vectors ``X`` (M x K unsigned) through every part of ``part`` on the Verilog
    tile, by the partition's contract (gather rows, scatter-add cols)."""
    check_fits(part)
    cfg = part.cfg
    X = np.atleast_2d(np.asarray(X, dtype=np.int64))
    M = X.shape[0]
    K, N = part.shape
    if X.shape[1] != K:
        raise ValueError(f"inputs must be M x K with K = {K}, got shape {X.shape}")
    Y = np.zeros((M, N), dtype=np.int64)
    if M == 0 or not part.parts:
        return TileResult(Y, [0] * part.n_parts, 0)
    exe = build(cfg)
    words = []
    for tp in part.parts:
        img = ti.build_image(tp.program, cfg).astype("<u4")
        xs = np.ascontiguousarray(X[:, tp.rows], dtype="<u4")
        k, n = tp.program.shape
        words += [np.array([1, len(img)], "<u4"), img,
                  np.array([2, M, k, n], "<u4"), xs.ravel()]
    words.append(np.zeros(1, "<u4"))
    with tempfile.TemporaryDirectory(prefix="sme-rtl-") as tmp:
        cmd_file, out_file = Path(tmp) / "cmd.bin", Path(tmp) / "out.bin"
        cmd_file.write_bytes(np.concatenate(words).tobytes())
        r = subprocess.run([str(exe), str(cmd_file), str(out_file), *_layout_args(cfg),
                            str(max_cycles)], capture_output=True, text=True,
                           env={**os.environ})
        if r.returncode != 0:
            raise RuntimeError(f"tile driver failed ({r.returncode}): {r.stderr.strip()}")
        data = out_file.read_bytes()
    pos, clipped, cycles = 0, [], 0
    for i, tp in enumerate(part.parts):
        err, loaded = np.frombuffer(data, "<u4", 2, pos)
        pos += 8
        if err != 0 or not loaded:
            raise RuntimeError(f"part {i}: the tile refused its image (error "
                               f"{ti.TileError(int(err)).name}, loaded {int(loaded)})")
        k, n = tp.program.shape
        y = np.frombuffer(data, "<i8", M * n, pos).reshape(M, n)
        pos += 8 * M * n
        c, clip = np.frombuffer(data, "<u8", 2, pos)
        pos += 16
        Y[:, tp.cols] += y
        clipped.append(int(clip))
        cycles += int(c)
    return TileResult(Y, clipped, cycles)
