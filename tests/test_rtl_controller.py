"""Tile controller: bad frames, vectors before a program, abort and reset mid-vector, latency."""

import numpy as np
import pytest

from golden import compiler, tile_image as ti, vmm
from golden.config import preset
from sim.amaranth_tile import put, tile_load, tile_vector, vector_items
from sim.stimulus import fitting_layer, stale_rowlist_frame
from tests.rtl_support import TileHarness, run_sim, tile_error

CFG = preset("tiny")


def _program(cfg=CFG, seed=0):
    """A compiled random layer with at least two steps."""
    rng = np.random.default_rng(seed)
    p = None
    while p is None or p.n_steps < 2:
        q = fitting_layer(cfg, rng)
        p = compiler.compile_matrix(q, cfg, squeeze="segment")
    X = rng.integers(0, cfg.max_input + 1, size=(2, q.shape[0]))
    return p, X, vmm.run(p, X)[0].tolist()


def _recrc(words):
    words = np.array(words, dtype=np.uint32)
    words[-1] = ti.crc32_words(words[:-1])
    return words


def _bad_frames():
    p, _, _ = _program()
    img = ti.build_image(p)
    other = _program(preset("tiny_mlc"), 1)[0]

    def flip(i, bit=1):
        w = img.copy()
        w[i] ^= bit
        return w

    too_big = img.copy()
    too_big[3] = CFG.tile_steps + 1
    stale = stale_rowlist_frame(p)
    stale_flipped = stale.copy()
    stale_flipped[-1] ^= 1
    return {
        "flipped checksum": (flip(-1), ti.TileError.CHECKSUM),
        "flipped body word": (flip(len(img) // 2, 4), ti.TileError.CHECKSUM),
        "truncated": (img[:-3], ti.TileError.BAD_FRAME),
        "truncated header": (img[:4], ti.TileError.BAD_FRAME),
        "one word too many": (np.r_[img, img[-1]], ti.TileError.BAD_FRAME),
        "bad magic": (flip(0), ti.TileError.BAD_FRAME),
        "bad version": (_recrc(flip(1, 2)), ti.TileError.BAD_FRAME),
        # a version-1 frame (descriptors with their own rows, a 6-word header) is refused
        "version 1 frame": (_recrc(np.r_[img[:1], 1, img[2:6], img[7:]]), ti.TileError.BAD_FRAME),
        "too many row lists": (_recrc(np.r_[img[:6], CFG.tile_steps + 1, img[7:]]),
                               ti.TileError.TOO_BIG),
        "wrong config": (ti.build_image(other), ti.TileError.BAD_CONFIG),
        "too many steps": (_recrc(too_big), ti.TileError.TOO_BIG),
        "zero inputs": (_recrc(np.r_[img[:4], 0, img[5:]]), ti.TileError.TOO_BIG),
        # an active descriptor naming row list N_ROWLISTS (valid CRC): stale row-list memory
        "row-list id >= N_ROWLISTS": (stale, ti.TileError.BAD_FRAME),
        # the checksum is judged first (check_image's order)
        "row-list id >= N_ROWLISTS, bad checksum": (stale_flipped, ti.TileError.CHECKSUM),
    }


BAD = _bad_frames()


@pytest.mark.parametrize("case", list(BAD))
def test_bad_frame_sets_error_and_computes_nothing(case):
    words, code = BAD[case]
    assert ti.check_image(words, CFG) == code
    p, X, Y = _program()
    h = TileHarness(CFG)
    tile = h.tile
    rng = np.random.default_rng(1)
    seen = {}

    async def tb(ctx):
        await tile_load(ctx, tile, ti.build_image(p), rng)          # a good program first
        seen["good"] = await tile_vector(ctx, tile, X[0], p.shape[1], rng)
        issues = len(h.issues)
        await tile_load(ctx, tile, words, rng)
        st = ctx.get(tile.status)
        seen["after_load"] = (tile_error(st), st.loaded)
        await put(ctx, tile.i_vec, vector_items(X[1]), rng)
        for _ in range(60):
            await ctx.tick()
            assert not ctx.get(tile.o_vec.valid), "a vector produced output without a program"
        st = ctx.get(tile.status)
        seen["after_vec"] = (tile_error(st), st.loaded, st.busy, len(h.issues) - issues)
        await tile_load(ctx, tile, ti.build_image(p), rng)          # and it recovers
        seen["again"] = await tile_vector(ctx, tile, X[1], p.shape[1], rng)

    run_sim(h.top, tb, processes=[h.monitor])
    assert seen["good"] == Y[0]
    assert seen["after_load"] == (code, 0), f"{case}: status after load {seen['after_load']}"
    assert seen["after_vec"] == (ti.TileError.NO_PROGRAM, 0, 0, 0), seen["after_vec"]
    assert seen["again"] == Y[1]


def test_vector_before_program():
    h = TileHarness(CFG)
    tile = h.tile
    p, X, Y = _program()
    seen = {}

    async def tb(ctx):
        await put(ctx, tile.i_vec, vector_items([1, 2, 3]))
        for _ in range(20):
            await ctx.tick()
            assert not ctx.get(tile.o_vec.valid)
        st = ctx.get(tile.status)
        seen["status"] = (tile_error(st), st.loaded, st.busy)
        await tile_load(ctx, tile, ti.build_image(p))
        seen["error after load"] = tile_error(ctx.get(tile.status))
        seen["y"] = await tile_vector(ctx, tile, X[0], p.shape[1])

    run_sim(h.top, tb, processes=[h.monitor])
    assert seen == {"status": (ti.TileError.NO_PROGRAM, 0, 0),
                    "error after load": ti.TileError.NONE, "y": Y[0]}


@pytest.mark.parametrize("where", ["receiving", "running"])
@pytest.mark.parametrize("how", ["abort", "reset"])
def test_reset_mid_vector_then_good_vector(where, how):
    p, X, Y = _program(seed=4)
    assert p.n_steps >= 2
    h = TileHarness(CFG)
    tile = h.tile
    seen = {}

    async def tb(ctx):
        await tile_load(ctx, tile, ti.build_image(p))
        elems = vector_items(X[0])
        if where == "receiving":
            await put(ctx, tile.i_vec, elems[:max(1, len(elems) // 2)])
        else:
            await put(ctx, tile.i_vec, elems)
            while len(h.issues) < 3:
                await ctx.tick()
        sig = tile.abort if how == "abort" else h.rst
        ctx.set(sig, 1)
        await ctx.tick()
        ctx.set(sig, 0)
        await ctx.tick()
        st = ctx.get(tile.status)
        seen["status"] = (st.busy, st.loaded, tile_error(st))
        for _ in range(10):
            await ctx.tick()
            assert not ctx.get(tile.o_vec.valid), "output after a reset"
        if how == "reset":
            await tile_load(ctx, tile, ti.build_image(p))
        seen["y"] = await tile_vector(ctx, tile, X[1], p.shape[1], np.random.default_rng(2))

    run_sim(h.top, tb, processes=[h.monitor])
    assert seen["status"] == (0, int(how == "abort"), ti.TileError.NONE)
    assert seen["y"] == Y[1]


def test_latency_matches_property():
    p, X, Y = _program(seed=2)
    h = TileHarness(CFG)
    tile = h.tile

    async def tb(ctx):
        await tile_load(ctx, tile, ti.build_image(p))
        assert await tile_vector(ctx, tile, X[0], p.shape[1]) == Y[0]

    run_sim(h.top, tb, processes=[h.monitor])
    assert len(h.out_starts) == 1 and h.issues
    measured = h.out_starts[0] - h.issues[-1]
    assert measured == tile.latency, f"latency RTL {measured}, documented {tile.latency}"


def test_empty_latency_matches_property():
    """A program with no steps (all-zero weights): the first result is valid
    ``Tile.empty_latency`` cycles after the last input element's transfer, counted like
    ``Tile.latency`` above (sampled clock edges)."""
    p = compiler.compile_matrix(np.zeros((4, 3), dtype=np.int64), CFG)
    assert p.n_steps == 0
    h = TileHarness(CFG)
    tile = h.tile
    last_in = []

    async def watch_inputs(ctx):
        cycle = 0
        async for _, _, v, r in ctx.tick().sample(tile.i_vec.valid, tile.i_vec.ready):
            cycle += 1
            if v and r:
                last_in.append(cycle)

    async def tb(ctx):
        await tile_load(ctx, tile, ti.build_image(p))
        assert await tile_vector(ctx, tile, [1, 2, 3, 4], 3) == [0, 0, 0]

    run_sim(h.top, tb, processes=[h.monitor, watch_inputs])
    assert len(last_in) == 4 and len(h.out_starts) == 1 and not h.issues
    measured = h.out_starts[0] - last_in[-1]
    assert measured == tile.empty_latency, \
        f"empty-program latency RTL {measured}, documented {tile.empty_latency}"
