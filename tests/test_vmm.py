import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from golden.compiler import compile_blocks, compile_matrix
from golden.config import preset
from golden.scheduler import issue_trace
from golden.vmm import InputError, predicted_cycles, run
from sim.stimulus import input_vectors, random_q

from .strategies import configs, layers


@pytest.fixture
def prog():
    cfg = preset("tiny")
    return compile_matrix(random_q(np.random.default_rng(5), (30, 10), cfg, 0.7), cfg)


def test_chunking_does_not_change_results(prog):
    X = np.random.default_rng(0).integers(0, 16, size=(37, 30))
    full, _ = run(prog, X)
    tiny_chunks, _ = run(prog, X, chunk_elems=1)
    assert np.array_equal(full, tiny_chunks)
    assert np.array_equal(full, X @ prog.dense_q())


def test_single_vector_and_empty_batch(prog):
    x = np.arange(30) % 16
    assert run(prog, x)[0].shape == (1, 10)
    assert run(prog, np.zeros((0, 30), dtype=int))[0].shape == (0, 10)


@pytest.mark.parametrize("bad, msg", [
    (np.full((2, 30), 16), r"\[0, 15\]"),
    (np.full((2, 30), -1), r"\[0, 15\]"),
    (np.ones((2, 29), dtype=int), "K = 30"),
    (np.full((2, 30), 0.5), "integers"),
])
def test_bad_inputs(prog, bad, msg):
    with pytest.raises(InputError, match=msg):
        run(prog, bad)


def test_clip_path_matches_bit_serial_definition():
    """Lossy ADC: the result equals a direct bit-serial evaluation of the definition."""
    cfg = preset("tiny").replace(adc_bits=1)
    q = random_q(np.random.default_rng(3), (24, 8), cfg, 1.0)
    p = compile_matrix(q, cfg)
    X = np.random.default_rng(4).integers(0, 16, size=(3, 24))
    Y, clipped = run(p, X)
    ref = np.zeros_like(Y)
    n_clip = 0
    a = p.acts
    for m in range(len(X)):
        for t in range(cfg.input_bits):
            for i in range(p.n_act):
                cells = p.cells[a["xbar"][i], a["window"][i], a["colgroup"][i]]
                for c in range(cfg.ou_cols):
                    s = sum(int(cells[r, c]) * ((int(X[m, k]) >> t) & 1)
                            for r, k in enumerate(p.inputs[i]) if k >= 0)
                    if s > cfg.adc_max:
                        s, n_clip = cfg.adc_max, n_clip + 1
                    col = a["outgroup"][i] * cfg.ou_cols + c
                    if col < p.shape[1]:
                        shift = t + a["plane"][i] * cfg.cell_bits + a["shift"][i]
                        ref[m, col] += (1 - 2 * a["sign"][i]) * (s << shift)
    assert clipped == n_clip > 0
    assert np.array_equal(Y, ref)


@pytest.mark.parametrize("squeeze", ["row", "segment", "span"])
def test_predicted_cycles(squeeze):
    """Cycles per vector counted two ways that do not use the formula: the scheduler model
    issues one step per cycle (its trace has one entry per cycle), and the compiler's schedule
    keeps the busiest crossbar issuing in every step, so a vector takes input_bits times that
    crossbar's activation count."""
    cfg = preset("tiny")
    p = compile_matrix(random_q(np.random.default_rng(5), (30, 10), cfg, 0.7), cfg,
                       squeeze=squeeze)
    x = np.random.default_rng(1).integers(0, cfg.max_input + 1, 30)
    busiest = int(np.bincount(p.acts["xbar"]).max())
    assert predicted_cycles(p) == len(issue_trace(p, x)) == cfg.input_bits * busiest
    assert p.stats["cycles"] == predicted_cycles(p)


def _definition(p, X):
    """SPEC 3.3 evaluated literally, vectorized only over vectors: every input bit, every
    activation, every bitline, clip, shift, add."""
    cfg, a = p.cfg, p.acts
    Y = np.zeros((len(X), p.shape[1]), dtype=np.int64)
    clipped = 0
    for i in range(p.n_act):
        cells = p.cells[a["xbar"][i], a["window"][i], a["colgroup"][i]].astype(np.int64)
        on = p.inputs[i] >= 0
        xs = X[:, p.inputs[i][on]]
        for t in range(cfg.input_bits):
            s = ((xs >> t) & 1) @ cells[on]                                   # m, cu
            clipped += int((s > cfg.adc_max).sum())
            s = np.minimum(s, cfg.adc_max) << (t + int(a["plane"][i]) * cfg.cell_bits
                                               + int(a["shift"][i]))
            for c in range(cfg.ou_cols):
                j = int(a["outgroup"][i]) * cfg.ou_cols + c
                if j < p.shape[1]:
                    Y[:, j] += -s[:, c] if a["sign"][i] else s[:, c]
    return Y, clipped


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_run_equals_the_definition_with_a_lossy_adc(data):
    """Every path of run (linear product for activations that cannot clip, table-driven
    bit-serial for the others, packed and unpacked lanes) against the literal definition."""
    cfg = data.draw(configs(lossless=False))
    if data.draw(st.booleans()):                 # bitline groups that do not pack into a word
        cfg = cfg.replace(xbar_cols=6, ou_cols=3, tile_outputs=cfg.tile_outputs * 3)
    blocks, shape = data.draw(layers(cfg))
    prog = compile_blocks(blocks, shape, cfg,
                          squeeze=data.draw(st.sampled_from(["row", "segment", "span"])))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    X = input_vectors(rng, cfg, 5, shape[0])
    Y, clipped = run(prog, X, chunk_elems=data.draw(st.sampled_from([1, 1 << 24])))
    want, want_clipped = _definition(prog, X)
    assert clipped == want_clipped
    np.testing.assert_array_equal(Y, want)
