"""cocotb bench of the whole SME tile (``rtl/tile.py``: controller, scheduler, crossbar
emulator, splice) in emitted Verilog, against the golden model.

Programs are files written by ``sme compile`` or partition files of whole layers
(``.smepart``, every tile program in order; paths in ``SME_PROGRAMS``, ``os.pathsep``
separated).  Per vector the bench checks the outputs and ``last`` flags against
``golden.vmm.run``, the clip count in ``status`` against the golden clipped samples, the issue
cycles (scheduler handshakes inside the tile, which must be consecutive) against
``golden.vmm.predicted_cycles``, and that ``status`` returns to idle without error.

Environment: ``SME_IDLE`` (driver idle on ``i_load``/``i_vec``) and ``SME_BACKPRESSURE``
(``o_vec`` sink): none | periodic | random (``tile_vectors`` takes comma-separated lists, paired
up, and sweeps them in one run; the other tests use the first); ``SME_VECTORS`` vectors per
program;
``SME_SHARED_PROGRAMS`` random programs with shared row lists
(``sim.stimulus.shared_rowlist_program``, inputs up to its ``meta["input_max"]``) run after the
files in ``tile_vectors`` and ``tile_soak``;
``SME_SOAK_CYCLES`` (``tile_soak`` only); ``SME_SHORT_FRAMES=1`` cuts the bad frames that fail
in their header short (big configs); ``SME_MUTATE=1`` falsifies one expected output (the
bench must then fail: see ``tests/test_cocotb_tile.py``).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import cocotb
from cocotb.triggers import ClockCycles, RisingEdge

from golden import tile_image as ti
from golden.program import load

from .models import tile_expected
from .stimulus import input_vectors, shared_rowlist_program, stale_rowlist_frame
from .streams import Monitor, Pattern, StreamDriver, StreamSink
from .tb import Bench, env_int, env_str


@dataclass
class Status:
    """The tile's ``status`` port, unpacked with ``Layouts.status``."""
    busy: int
    loaded: int
    error: ti.TileError
    clip_count: int


class TileIO:
    """Drivers, sink and probes of one tile, plus the load / vector / status operations."""

    def __init__(self, b: Bench, idle: Pattern, backpressure: Pattern):
        self.b, dut, lay = b, b.dut, b.lay
        b.check_ports({"i_load__payload": lay.load, "i_vec__payload": lay.vin,
                       "o_vec__payload": lay.vout, "status": lay.status})
        self.ld = StreamDriver(dut, "i_load", lay.load, b.clk, idle)
        self.vi = StreamDriver(dut, "i_vec", lay.vin, b.clk, idle)
        self.sink = StreamSink(dut, "o_vec", lay.vout, b.clk, backpressure, b.cycle).start()
        dut.abort.value = 0
        sched = dut.scheduler
        self.issues = Monitor(sched.o_stream__valid, sched.o_stream__ready, b.clk, b.cycle)

    def status(self) -> "Status":
        st = self.b.get(self.b.dut.status, self.b.lay.status)
        return Status(int(st.busy), int(st.loaded), ti.TileError(int(st.error.value)),
                      int(st.clip_count))

    async def idle(self, timeout: int = 100_000):
        """Wait until the controller is idle (``status.busy`` low); return the status."""
        for _ in range(timeout):
            st = self.status()
            if not st.busy:
                return st
            await RisingEdge(self.b.clk)
        raise TimeoutError(self.b.msg(f"tile still busy after {timeout} cycles"))

    async def load(self, words):
        words = [int(w) for w in words]
        await self.ld.send({"data": w, "last": int(i == len(words) - 1)}
                           for i, w in enumerate(words))
        await RisingEdge(self.b.clk)
        return await self.idle()

    def vector_items(self, x):
        return ({"data": int(v), "last": int(i == len(x) - 1)} for i, v in enumerate(x))

    async def vector(self, x, n: int, cycles: int):
        """Send one input vector, collect ``n`` outputs; returns (values, lasts, issue cycles).
        Gives up (TimeoutError) far beyond the ``cycles`` predicted: a hung tile fails fast."""
        self.issues.transfers.clear()
        await self.vi.send(self.vector_items(x))
        out = await self.sink.take(n, timeout=4 * cycles + 20 * n + 200)
        await RisingEdge(self.b.clk)
        return [o.data for o in out], [o.last for o in out], list(self.issues.transfers)


def _programs(cfg, rng=None):
    """The programs of ``SME_PROGRAMS``: program files, and partition files (``.smepart``,
    :mod:`golden.partition`) whose every tile program is run in the partition's order; with
    ``rng``, then ``SME_SHARED_PROGRAMS`` random programs with shared row lists."""
    from golden import partition

    paths = [p for p in env_str("SME_PROGRAMS", "").split(os.pathsep) if p]
    assert paths, "SME_PROGRAMS names no program file"
    out = []
    for p in paths:
        if p.endswith(".smepart"):
            part = partition.loads(Path(p).read_bytes(), source=p)
            out += [(f"{Path(p).name}[{i}]", tp.program) for i, tp in enumerate(part.parts)]
        else:
            out.append((Path(p).name, load(p, expect_cfg=cfg)))
    if rng is not None:
        out += [(f"shared-rowlists[{i}]", shared_rowlist_program(cfg, rng))
                for i in range(env_int("SME_SHARED_PROGRAMS", 0))]
    return out


def _check_vector(b, name, i, got, lasts, issues, exp, clip_before, st, mutate=False):
    """Every per-vector check; returns a list of mismatch descriptions (empty when correct)."""
    want = list(exp.y)
    if mutate and i == 0:
        want[0] += 1                               # deliberately wrong expectation
    bad = []
    if got != want:
        bad.append(f"{name} vector {i}: outputs {got} != golden {want}")
    if lasts != [0] * (len(want) - 1) + [1]:
        bad.append(f"{name} vector {i}: last flags {lasts}")
    span = issues[-1] - issues[0] + 1 if issues else 0
    if len(issues) != exp.cycles or span != exp.cycles:
        bad.append(f"{name} vector {i}: {len(issues)} issue cycles over a span of {span}, "
                   f"predicted {exp.cycles}")
    if st.clip_count != clip_before + exp.clips:
        bad.append(f"{name} vector {i}: clip_count {st.clip_count}, expected "
                   f"{clip_before} + {exp.clips}")
    if st.busy or st.error != ti.TileError.NONE or not st.loaded:
        bad.append(f"{name} vector {i}: status after the vector {st}")
    return bad


async def _run_program(b, io, name, p, m, mutate=False):
    cfg = b.cfg
    st = await io.load(ti.build_image(p, cfg))
    assert st.loaded and st.error == ti.TileError.NONE and st.clip_count == 0, \
        b.msg(f"{name}: status after load {st}")
    X = input_vectors(b.rng, cfg, m, p.shape[0], p.meta.get("input_max"))
    bad, clips = [], 0
    for i, (x, exp) in enumerate(zip(X, tile_expected(p, X))):
        try:
            got, lasts, issues = await io.vector(x, p.shape[1], exp.cycles)
        except TimeoutError as e:                 # a hung tile: count it, reset, go on
            bad.append(f"{name} vector {i}: {e}")
            await b.reset()
            io.sink.items.clear()
            return bad, i + 1, clips
        st = await io.idle()
        bad += _check_vector(b, name, i, got, lasts, issues, exp, clips, st, mutate)
        clips += exp.clips
    return bad, m, clips


@cocotb.test()
async def tile_vectors(dut):
    """Programs from `sme compile`, random vectors, under each idle/backpressure pair of the
    sweep (``SME_IDLE`` and ``SME_BACKPRESSURE`` are comma-separated lists, paired)."""
    b = Bench(dut, salt=1)
    idles = env_str("SME_IDLE", "none").split(",")
    bps = env_str("SME_BACKPRESSURE", "none").split(",")
    assert len(idles) == len(bps), "SME_IDLE and SME_BACKPRESSURE must pair up"
    io = TileIO(b, Pattern(), Pattern())
    await b.reset()
    m = env_int("SME_VECTORS", 4)
    mutate = env_str("SME_MUTATE", "0") == "1"
    bad = []
    for j, (idle, bp) in enumerate(zip(idles, bps)):
        io.ld.idle = io.vi.idle = Pattern(idle, seed=b.seed * 1000 + 10 * j + 1)
        io.sink.backpressure = Pattern(bp, seed=b.seed * 1000 + 10 * j + 2)
        for name, p in _programs(b.cfg, b.rng):
            more = (await _run_program(b, io, name, p, m, mutate))[0]
            bad += [f"[idle {idle}, backpressure {bp}] {line}" for line in more]
    assert not bad, b.msg("\n".join(bad))


@cocotb.test()
async def tile_bad_frames(dut):
    """Vector before a program, corrupt frames (checksum, truncated, wrong config, too big,
    bad magic, over-long, a version-1 frame, a descriptor naming a row list >= N_ROWLISTS):
    the tile reports ``check_image``'s code, stays unloaded, and a good frame afterwards
    works."""
    b = Bench(dut, salt=2)
    cfg = b.cfg
    io = TileIO(b, b.pattern("SME_IDLE", salt=1), b.pattern("SME_BACKPRESSURE", salt=2))
    await b.reset()
    name, p = _programs(cfg)[0]
    k, n = p.shape

    async def vector_without_program():
        await io.vi.send(io.vector_items(input_vectors(b.rng, cfg, 1, k)[0]))
        st = await io.idle()
        await ClockCycles(b.clk, 20)
        assert not io.sink.items, b.msg("the tile emitted outputs without a program")
        assert st.error == ti.TileError.NO_PROGRAM and not st.loaded, \
            b.msg(f"vector without program: status {st}")

    await vector_without_program()
    good = [int(w) for w in ti.build_image(p, cfg)]
    cases = {
        "flipped checksum": good[:-1] + [good[-1] ^ 1],
        "flipped body bit": good[:8] + [good[8] ^ 4] + good[9:],
        "truncated": good[:-3],
        "header only": good[:ti.HEADER_WORDS],
        "wrong config": good[:2] + [good[2] ^ 0x10] + good[3:],
        "bad magic": [good[0] ^ 1] + good[1:],
        "too many steps": good[:3] + [cfg.tile_steps + 1] + good[4:],
        "too many row lists": good[:6] + [cfg.effective_tile_rowlists + 1] + good[7:],
        "version 1 frame": good[:1] + [1] + good[2:6] + good[7:],
        "over-long": good + [0],
        "row-list id >= N_ROWLISTS": [int(w) for w in stale_rowlist_frame(p, cfg)],
    }
    if env_str("SME_SHORT_FRAMES", "0") == "1":
        # Big configs: frames whose error shows in the header end right after it (the tile
        # reports the same code; only the drain of the rest is not exercised).
        for what in ("wrong config", "bad magic", "too many steps", "too many row lists",
                     "version 1 frame"):
            cases[what] = cases[what][:ti.HEADER_WORDS + 2]
        cases["truncated"] = good[:ti.HEADER_WORDS + 3]
    for what, words in cases.items():
        want = ti.check_image(words, cfg)
        assert want != ti.TileError.NONE, f"case {what!r} is not a bad frame"
        st = await io.load(words)
        assert st.error == want and not st.loaded, \
            b.msg(f"{what}: status {st}, expected error {want.name}")
        if what in ("flipped checksum", "wrong config"):
            await vector_without_program()
    st = await io.load(good)
    assert st.loaded and st.error == ti.TileError.NONE, b.msg(f"good frame after bad: {st}")
    x = input_vectors(b.rng, cfg, 1, k)[0]
    exp = tile_expected(p, x)[0]
    got, lasts, issues = await io.vector(x, n, exp.cycles)
    bad = _check_vector(b, name, 0, got, lasts, issues, exp, 0, await io.idle())
    assert not bad, b.msg("\n".join(bad))


@cocotb.test()
async def tile_reset_mid_vector(dut):
    """Reset (``rst``) and ``abort`` in the middle of a vector, while it is received and
    while it runs: after a reset the program is gone and reloads; after an abort it is kept;
    either way the next vector is exact."""
    b = Bench(dut, salt=3)
    cfg = b.cfg
    io = TileIO(b, b.pattern("SME_IDLE", salt=1), b.pattern("SME_BACKPRESSURE", salt=2))
    await b.reset()
    name, p = _programs(cfg)[0]
    k, n = p.shape
    image = ti.build_image(p, cfg)
    cycles = tile_expected(p, input_vectors(b.rng, cfg, 1, k))[0].cycles

    async def interrupted(kind: str, during: str):
        x = input_vectors(b.rng, cfg, 1, k)[0]
        task = cocotb.start_soon(io.vi.send(io.vector_items(x)))
        if during == "receive":
            wait = int(b.rng.integers(1, max(2, k)))
        else:                                     # after the last element, before the results
            await task
            wait = int(b.rng.integers(1, cycles + 3)) if cycles else 1
        await ClockCycles(b.clk, wait)
        task.cancel()
        io.vi.stop()
        if kind == "reset":
            await b.reset()
        else:
            dut.abort.value = 1
            await RisingEdge(b.clk)
            dut.abort.value = 0
            await RisingEdge(b.clk)
        st = await io.idle()
        await ClockCycles(b.clk, 10)
        io.sink.items.clear()
        return st

    for kind in ("reset", "abort"):
        for during in ("receive", "run"):
            st = await io.load(image)
            assert st.loaded, b.msg(f"load failed: {st}")
            st = await interrupted(kind, during)
            if kind == "reset":
                assert not st.loaded and st.error == ti.TileError.NONE and st.clip_count == 0, \
                    b.msg(f"status after reset during {during}: {st}")
                st = await io.load(image)
            assert st.loaded and st.error == ti.TileError.NONE, \
                b.msg(f"status after {kind} during {during}: {st}")
            clips = st.clip_count
            x = input_vectors(b.rng, cfg, 1, k)[0]
            exp = tile_expected(p, x)[0]
            got, lasts, issues = await io.vector(x, n, exp.cycles)
            bad = _check_vector(b, f"{name} after {kind} during {during}", 0, got, lasts,
                                issues, exp, clips, await io.idle())
            assert not bad, b.msg("\n".join(bad))


@cocotb.test(skip=not os.environ.get("SME_SOAK_CYCLES"))
async def tile_soak(dut):
    """At least ``SME_SOAK_CYCLES`` clock cycles of programs and vectors with random stalls on
    every stream; mismatches are counted (and must be zero), a summary goes to soak.json."""
    b = Bench(dut, salt=4)
    target = env_int("SME_SOAK_CYCLES", 0)
    io = TileIO(b, Pattern("random", p=0.3, seed=b.seed),
                Pattern("random", p=0.4, seed=b.seed + 1))
    await b.reset()
    programs = _programs(b.cfg, b.rng)
    start, t0 = b.cycle(), time.monotonic()
    bad, vectors, clips, rounds = [], 0, 0, 0
    while b.cycle() - start < target:
        name, p = programs[rounds % len(programs)]
        more, m, c = await _run_program(b, io, name, p, env_int("SME_VECTORS", 16))
        bad += more
        vectors, clips, rounds = vectors + m, clips + c, rounds + 1
    wall = time.monotonic() - t0
    summary = {"cycles": b.cycle() - start, "wall_seconds": round(wall, 3),
               "cycles_per_second": round((b.cycle() - start) / wall, 1), "vectors": vectors,
               "programs_loaded": rounds,
               "clipped_samples": clips, "mismatches": len(bad), "first": bad[:10],
               "seed": b.seed, "config": b.cfg.name}
    Path(os.environ.get("SME_RUN_DIR", ".")).joinpath("soak.json").write_text(
        json.dumps(summary, indent=2))
    assert not bad, b.msg(f"{len(bad)} mismatches; first: " + "\n".join(bad[:10]))
