"""The whole tile on compiled programs: outputs == golden ``run``, issue cycles == prediction."""

import zlib

import numpy as np
import pytest

from golden import compiler, tile_image as ti, vmm
from golden.config import preset
from golden.program import validate
from golden.scheduler import issue_trace
from sim.amaranth_tile import tile_load, tile_vector
from sim.stimulus import fitting_layer, input_vectors, random_program, shared_rowlist_program
from tests.rtl_support import TileHarness, run_sim, seeded, tile_error

PRESETS = ["tiny", "tiny_mlc", "fpga_small"]


def run_program(cfg, p, X, seed, p_idle=0.3):
    """Load p, run the rows of X with random stalls; check everything against the golden model."""
    rng = np.random.default_rng(seed)
    h = TileHarness(cfg)
    tile = h.tile
    got, status = [], {}

    async def tb(ctx):
        await tile_load(ctx, tile, ti.build_image(p, cfg), rng)
        status["load"] = ctx.get(tile.status)
        for x in X:
            got.append(await tile_vector(ctx, tile, x, p.shape[1], rng))
        status["end"] = ctx.get(tile.status)

    img_words = len(ti.build_image(p, cfg))
    per_vec = p.shape[0] + p.shape[1] + vmm.predicted_cycles(p) + tile.latency + 10
    run_sim(h.top, tb, processes=[h.monitor], max_cycles=4 * (img_words + len(X) * per_vec) + 500)
    Y, clipped = vmm.run(p, X)
    what = f"{cfg.name} {p.options} shape {p.shape} n_steps {p.n_steps}"
    assert status["load"].loaded and tile_error(status["load"]) == ti.TileError.NONE, \
        seeded(seed, f"{what}: load failed: {status['load']}")
    assert np.array_equal(np.array(got), Y), seeded(seed, f"{what}: RTL {got} != golden {Y}")
    assert status["end"].clip_count == clipped, \
        seeded(seed, f"{what}: clip count {status['end'].clip_count} != golden {clipped}")
    runs = h.split()
    predicted = vmm.predicted_cycles(p)
    measured = [last - first + 1 for first, last, _ in runs]
    assert measured == [predicted] * (len(X) if predicted else 0), \
        seeded(seed, f"{what}: issue cycles per vector RTL {measured}, model {predicted}")
    assert all(n == predicted for _, _, n in runs)


@pytest.mark.parametrize("name", PRESETS)
@pytest.mark.parametrize("squeeze", ["row", "segment", "span"])
@pytest.mark.parametrize("pattern", ["window", "max_ones", "uniform", "fragment"])
def test_tile_matches_golden(name, squeeze, pattern):
    cfg = preset(name)
    seed = zlib.crc32(f"{name} {squeeze} {pattern}".encode()) % 10000
    rng = np.random.default_rng(seed)
    pcfg = cfg.replace(pattern=pattern)
    q = fitting_layer(cfg, rng, pattern_cfg=pcfg, squeezes=(squeeze,))
    p = compiler.compile_matrix(q, pcfg, squeeze=squeeze)
    # every row list is stored once, in its own lane's memory
    assert ti.lane_rowlists(p)[1].sum() == p.n_rowlists
    X = rng.integers(0, cfg.max_input + 1, size=(3, q.shape[0]))
    X[0] = cfg.max_input
    run_program(cfg, p, X, seed)


@pytest.mark.parametrize("name", PRESETS)
@pytest.mark.parametrize("squeeze", ["row", "segment"])
def test_tile_all_zero_and_single_row_layers(name, squeeze):
    cfg = preset(name)
    rng = np.random.default_rng(5)
    zero = np.zeros((5, 3), dtype=np.int64)
    p = compiler.compile_matrix(zero, cfg, squeeze=squeeze)
    run_program(cfg, p, rng.integers(0, cfg.max_input + 1, size=(2, 5)), 5)
    q = fitting_layer(cfg, rng, k_max=1)
    assert q.shape[0] == 1
    p = compiler.compile_matrix(q, cfg, squeeze=squeeze)
    run_program(cfg, p, rng.integers(0, cfg.max_input + 1, size=(2, 1)), 5)


@pytest.mark.parametrize("squeeze", ["row", "segment"])
def test_tile_accumulator_worst_case(squeeze):
    """All-max weights (both signs) on every input, all-max inputs: |y| hits the bound the
    accumulator width is derived from (config.accumulator_bits)."""
    cfg = preset("tiny").replace(name="tiny_wide", pattern="uniform", tile_xbars=16)
    k = cfg.tile_inputs
    q = np.full((k, 2), cfg.max_magnitude, dtype=np.int64)
    q[:, 1] = -cfg.max_magnitude
    p = compiler.compile_matrix(q, cfg, squeeze=squeeze)
    X = np.full((1, k), cfg.max_input)
    bound = k * cfg.max_magnitude * cfg.max_input
    assert vmm.run(p, X)[0].tolist() == [[bound, -bound]]
    assert bound >= 1 << (cfg.accumulator_bits - 2)      # the top magnitude bit is used
    run_program(cfg, p, X, 0, p_idle=0.0)


@pytest.mark.parametrize("name,adc_bits", [("tiny", 1), ("tiny_mlc", 2)])
def test_tile_counts_clipped_samples(name, adc_bits):
    """The compiler avoids clipping, so a hand-made program with full OU reads forces it."""
    cfg = preset(name).replace(adc_bits=adc_bits)
    rng = np.random.default_rng(adc_bits)
    p = random_program(cfg, rng, n_xbars=cfg.tile_xbars, n_steps=3, k=6, n=8, density=1.0)
    rows = rng.integers(0, 6, size=(p.acts["rowlist"].max() + 1, cfg.ou_rows))
    p.inputs[:] = rows[p.acts["rowlist"]]                 # full rows, row lists still shared
    X = np.full((2, 6), cfg.max_input)
    assert vmm.run(p, X)[1] > 0
    run_program(cfg, p, X, adc_bits)


@pytest.mark.parametrize("name", PRESETS)
def test_tile_program_with_empty_steps(name):
    """Steps without any activation (legal: a step index only has to stay below the
    activation count) still take their issue cycle, in the golden model and in the RTL."""
    cfg = preset(name)
    rng = np.random.default_rng(9)
    p = random_program(cfg, rng, n_xbars=cfg.tile_xbars, n_steps=3, density=1.0)
    step = p.acts["step"]
    step[:] = np.where(step >= 1, step + 2, step)           # steps 1 and 2 now empty
    validate(p)
    assert p.n_steps == 5 and set(step.tolist()) == {0, 3, 4}
    # small inputs: a hand-made program is no layer, its sums are not bounded by the
    # accumulator width (config.accumulator_bits) unless the inputs are
    x = rng.integers(0, 4, size=(2, p.shape[0]))
    assert np.abs(vmm.run(p, x)[0]).max() < 1 << (cfg.accumulator_bits - 1)
    assert vmm.predicted_cycles(p) == len(issue_trace(p, x[0])) == 5 * cfg.input_bits
    run_program(cfg, p, x, 9)


@pytest.mark.parametrize("name", PRESETS)
def test_tile_shared_row_lists(name):
    """Activations that share one row list (one wordline list, several column groups with their
    own output group, plane, sign and shift, as span squeeze emits): the tile stores each list
    once per lane and still equals the golden model, outputs and cycles."""
    cfg = preset(name)
    seed = zlib.crc32(f"shared {name}".encode()) % 10000
    rng = np.random.default_rng(seed)
    p = shared_rowlist_program(cfg, rng)
    ids, lanes = p.acts["rowlist"], p.acts["xbar"]
    shared = [i for i in range(p.n_act) if np.sum(ids == ids[i]) > 1]
    assert len(shared) >= cfg.tile_xbars, "too little sharing drawn"
    # the sharers differ in their tags, so a tag taken from the wrong activation shows
    assert any(len({(int(p.acts["plane"][j]), int(p.acts["colgroup"][j]))
                    for j in np.flatnonzero(ids == ids[i])}) > 1 for i in shared)
    _, counts, _ = ti.lane_rowlists(p)
    assert counts.sum() == len(set(ids.tolist())) < p.n_act
    assert all(counts[x] == len(set(ids[lanes == x].tolist())) for x in range(cfg.tile_xbars))
    run_program(cfg, p, input_vectors(rng, cfg, 3, p.shape[0], p.meta["input_max"]), seed)


@pytest.mark.slow
def test_tile_default_preset_one_vector():
    cfg = preset("default")
    rng = np.random.default_rng(3)
    q = fitting_layer(cfg, rng, k_max=24, n_max=16)
    p = compiler.compile_matrix(q, cfg, squeeze="segment")
    run_program(cfg, p, rng.integers(0, cfg.max_input + 1, size=(1, q.shape[0])), 3, 0.1)


@pytest.mark.parametrize("cfg", [
    # row lists of 2 words, cells and descriptors of 1
    preset("tiny").replace(name="tiny_wide_k", tile_inputs=128, ou_rows=8),
    # cells of 2 words, row lists and descriptors of 1
    preset("fpga_ice40").replace(name="ice40_ou4x16", ou_rows=4, ou_cols=16, tile_outputs=16)],
    ids=lambda c: c.name)
def test_tile_cell_and_descriptor_items_of_different_word_counts(cfg):
    """Regression: when cell, row-list and descriptor items span different numbers of 32-bit
    words, each memory must take its own item's words from the load frame."""
    from sim.amaranth_tile import simulate
    widths = (ti.cell_words(cfg), ti.rowlist_words(cfg), ti.desc_words(cfg))
    assert len(set(widths)) == 2, widths
    rng = np.random.default_rng(11)
    q = np.zeros((6, 4), dtype=np.int64)
    q[np.arange(4), np.arange(4)] = [1, 2, 1, 3 if cfg.weight_bits > 1 else 1]
    q[5, 1] = -1
    prog = compiler.compile_matrix(q, cfg, squeeze="segment")
    X = rng.integers(0, cfg.max_input + 1, size=(3, 6))
    res = simulate(prog, X, p_idle=0.2, seed=11)
    assert res.error == 0
    np.testing.assert_array_equal(res.outputs, vmm.run(prog, X)[0])
    assert res.issue_cycles == [vmm.predicted_cycles(prog)] * 3
    # per vector at least: K elements in, the issue cycles, N results out
    assert len(res.vector_cycles) == 3
    assert all(v >= 6 + vmm.predicted_cycles(prog) + 4 for v in res.vector_cycles)
    assert sum(res.vector_cycles) <= res.sim_cycles
