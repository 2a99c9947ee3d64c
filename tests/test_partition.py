"""golden/partition.py: layers of any size as tile programs whose parts add up to x @ W."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from golden import partition as gp
from golden.compiler import compile_blocks, compile_matrix
from golden.config import preset
from golden.program import ProgramError
from golden.tile_image import TileImageError, fits_tile
from golden.vmm import effective_weights
from sim.stimulus import input_vectors as inputs, random_q

from .strategies import configs, dense, layers


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=configs(), data=st.data(), squeeze=st.sampled_from(["row", "segment", "span"]))
def test_partitioned_layer_equals_matmul(cfg, data, squeeze):
    blocks, shape = data.draw(layers(cfg))
    part = gp.partition_layer(blocks, shape, cfg, squeeze=squeeze)
    gp.check_fits(part)
    for tp in part.parts:
        fits_tile(tp.program, cfg)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    X = inputs(rng, cfg, 4, shape[0])
    Y, clipped = gp.run(part, X)
    assert np.array_equal(Y, X @ dense(blocks, shape))
    assert clipped == [0] * part.n_parts


@pytest.mark.parametrize("squeeze", ["row", "segment", "span"])
def test_beyond_one_tile_and_depthwise(squeeze):
    """A dense layer several tiles wide and deep (crossbar split included) and a depthwise
    layer whose regions hold only diagonal blocks."""
    cfg = preset("fpga_small")
    rng = np.random.default_rng(1)
    q = random_q(rng, (100, 40), cfg, 0.8)
    part = gp.partition_layer(q, None, cfg, squeeze=squeeze)
    assert part.n_parts >= 4 * 3
    X = inputs(rng, cfg, 5, 100)
    assert np.array_equal(gp.run(part, X)[0], X @ q)
    C = 40
    blocks = [(9 * g, g, random_q(rng, (9, 1), cfg, 1.0)) for g in range(C)]
    dw = gp.partition_layer(blocks, (9 * C, C), cfg, squeeze=squeeze)
    for tp in dw.parts:                      # a region meets only its own channels
        assert len(tp.cols) <= -(-len(tp.rows) // 9) + 1
    X = inputs(rng, cfg, 5, 9 * C)
    assert np.array_equal(gp.run(dw, X)[0], X @ dense(blocks, (9 * C, C)))


def test_crossbar_split_parts_fit_and_add_up():
    cfg = preset("default")
    q = random_q(np.random.default_rng(2), (128, 128), cfg, 1.0)
    whole = compile_matrix(q, cfg)
    assert whole.n_xbars > cfg.tile_xbars                 # needs the crossbar split
    part = gp.partition_program(whole)
    assert part.n_parts == -(-whole.n_xbars // cfg.tile_xbars)
    assert sum(tp.program.n_xbars for tp in part.parts) == whole.n_xbars
    total = sum(tp.program.blocks[0][2] for tp in part.parts)
    assert np.array_equal(total, q)


def test_fitting_program_is_one_part():
    cfg = preset("tiny")
    q = np.abs(random_q(np.random.default_rng(3), (8, 6), cfg, 0.5)) & 3   # 2 planes, 1 sign
    prog = compile_matrix(q, cfg)
    fits_tile(prog)
    part = gp.partition_program(prog)
    assert part.n_parts == 1 and part.parts[0].program is prog
    assert gp.partition_layer(q, None, cfg).n_parts == 1


def test_effective_weights_are_the_compiled_matrix():
    cfg = preset("tiny_mlc")
    blocks = [(0, 0, random_q(np.random.default_rng(4), (20, 7), cfg, 0.6)),
              (20, 7, random_q(np.random.default_rng(5), (5, 3), cfg, 0.6))]
    for squeeze in ("row", "segment"):
        prog = compile_blocks(blocks, (25, 10), cfg, squeeze=squeeze)
        assert np.array_equal(effective_weights(prog), prog.dense_q())


def test_does_not_fit_is_a_clear_error():
    cfg = preset("tiny")
    q = random_q(np.random.default_rng(6), (40, 20), cfg, 0.9)
    with pytest.raises(TileImageError, match="another config"):
        gp.partition_layer(q, None, cfg, tile_cfg=preset("fpga_small"))
    big = compile_matrix(q, cfg)
    bad = gp.Partition(cfg, (40, 20), [gp.TilePart(big, np.arange(40), np.arange(20))])
    with pytest.raises(TileImageError, match="part 0: program does not fit"):
        gp.check_fits(bad)


def test_file_round_trip_and_corruption():
    cfg = preset("tiny")
    q = random_q(np.random.default_rng(7), (30, 12), cfg, 0.7)
    part = gp.partition_layer(q, None, cfg)
    data = gp.dumps(part)
    back = gp.loads(data)
    X = inputs(np.random.default_rng(8), cfg, 3, 30)
    assert np.array_equal(gp.run(back, X)[0], X @ q)
    assert [len(t.rows) for t in back.parts] == [len(t.rows) for t in part.parts]
    broken = bytearray(data)
    broken[len(data) // 2] ^= 1
    with pytest.raises(ProgramError, match="checksum"):
        gp.loads(bytes(broken))
    with pytest.raises(ProgramError, match="magic"):
        gp.loads(data[:10])


@pytest.mark.slow
def test_partition_runs_on_the_amaranth_tile():
    """The same partition contract with the RTL tile in Amaranth's simulator as the runner."""
    from sim.amaranth_tile import simulate

    cfg = preset("tiny").replace(adc_bits=2)
    rng = np.random.default_rng(9)
    q = random_q(rng, (18, 6), cfg, 0.8)
    part = gp.partition_layer(q, None, cfg)
    assert part.n_parts > 1
    X = inputs(rng, cfg, 2, 18)

    def tile(prog, x):
        r = simulate(prog, x)
        assert r.error == 0
        return r.outputs, r.clipped

    Y, clipped = gp.run(part, X, tile)
    want, want_clipped = gp.run(part, X)
    assert np.array_equal(Y, want) and clipped == want_clipped
