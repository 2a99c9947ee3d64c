import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from golden.compiler import compile_blocks, compile_matrix, squeeze_rows
from golden.config import preset
from golden.program import Program
from golden.slicing import LayerError
from golden.quantize import PatternError
from golden.vmm import run, run_blocks
from sim.stimulus import input_vectors, random_q

from .strategies import configs, dense, layers


@settings(max_examples=260, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_sliced_vmm_is_exact(data):
    """Property: every config x layer x schedule option computes exactly x @ Q (lossless ADC)."""
    cfg = data.draw(configs())
    blocks, shape = data.draw(layers(cfg))
    squeeze = data.draw(st.sampled_from(["row", "segment", "span"]))
    reorder, balance = data.draw(st.booleans()), data.draw(st.booleans())
    prog = compile_blocks(blocks, shape, cfg, squeeze=squeeze, reorder=reorder, balance=balance)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    X = input_vectors(rng, cfg, 4, shape[0])
    Y, clipped = run(prog, X)
    assert clipped == 0
    np.testing.assert_array_equal(Y, X @ dense(blocks, shape))
    # structural facts of any schedule
    assert prog.stats["crossbars"] >= prog.stats["floor_crossbars"]
    assert prog.stats["activations"] >= prog.stats["floor_activations"]
    assert prog.stats["cycles"] >= prog.stats["floor_cycles"]


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_clipping_is_counted(data):
    """With a lossy ADC the result equals the block models' issue-by-issue evaluation (clipped
    samples and all), and it differs from x @ Q only when clipping was counted."""
    cfg = data.draw(configs(lossless=False))
    blocks, shape = data.draw(layers(cfg))
    prog = compile_blocks(blocks, shape, cfg,
                          squeeze=data.draw(st.sampled_from(["row", "segment", "span"])))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    X = input_vectors(rng, cfg, 3, shape[0])
    Y, clipped = run(prog, X)
    Y_blocks, clipped_blocks = run_blocks(prog, X)
    np.testing.assert_array_equal(Y, Y_blocks)
    assert clipped == clipped_blocks
    if clipped == 0:
        np.testing.assert_array_equal(Y, X @ dense(blocks, shape))


def test_lossy_adc_clips_and_reports():
    cfg = preset("default").replace(adc_bits=2)
    q = np.full((9, 8), 224)
    prog = compile_matrix(q, cfg)
    Y, clipped = run(prog, np.full((1, 9), 255))
    assert clipped > 0 and np.all(Y < (np.full((1, 9), 255) @ q))


def test_worked_example_row_squeeze():
    """SPEC 3.4's rule on a hand-worked example: B = 8, one group with two columns."""
    cfg = preset("default")
    q = np.array([[24, 12], [80, 32], [7, 0], [224, 128]])
    shift, stored = squeeze_rows(q, cfg)
    assert shift.tolist() == [2, 4, 0, 5]
    assert stored.tolist() == [[6, 3], [5, 2], [7, 0], [7, 4]]
    prog = compile_matrix(q, cfg, squeeze="row", reorder=False)
    assert prog.n_xbars == 3                         # 3 planes instead of 8, one sign set
    assert sorted(set(prog.acts["plane"].tolist())) == [0, 1, 2]
    x = np.array([[1, 2, 3, 4]])
    assert np.array_equal(run(prog, x)[0], x @ q)


def test_all_zero_rows_never_activated():
    cfg = preset("tiny")
    q = np.zeros((12, 8), dtype=np.int64)
    q[5, 3] = 6
    for squeeze in ("row", "segment", "span"):
        prog = compile_matrix(q, cfg, squeeze=squeeze)
        active = set(prog.inputs[prog.inputs >= 0].tolist())
        assert active == {5}


def test_reorder_groups_rows_by_shift():
    """Rows with shifts alternating 0,1,0,1 in one window: without reordering every window
    needs an activation per shift; reordering puts equal shifts together."""
    cfg = preset("default").replace(weight_bits=4, window=2, xbar_rows=8, xbar_cols=8,
                                    ou_rows=2, ou_cols=8)
    q = np.array([[1], [2], [1], [2], [1], [2], [1], [2]])
    naive = compile_matrix(q, cfg, reorder=False)
    grouped = compile_matrix(q, cfg, reorder=True)
    assert naive.n_act == 8 and grouped.n_act == 4


def test_segment_balance_spreads_blocks():
    cfg = preset("tiny")
    rng = np.random.default_rng(1)
    q = random_q(rng, (64, 8), cfg, 1.0)
    q[:, :4] = 0
    q[:, 4:] = np.where(q[:, 4:] == 0, 1, q[:, 4:])
    bal = compile_matrix(q, cfg, squeeze="segment", balance=True)
    fill = compile_matrix(q, cfg, squeeze="segment", balance=False)
    assert bal.n_xbars == fill.n_xbars
    assert bal.n_steps <= fill.n_steps
    counts = np.bincount(bal.acts["xbar"])
    assert counts.max() - counts.min() <= 1


def test_row_squeeze_drops_empty_high_planes():
    cfg = preset("default")
    q = np.full((128, 128), 3)            # bits 0..1 only
    prog = compile_matrix(q, cfg)
    assert prog.n_xbars == 2 and prog.stats["floor_crossbars"] == 2


def test_bad_layers_rejected():
    cfg = preset("default")
    with pytest.raises(PatternError):
        compile_matrix(np.array([[9]]), cfg)
    with pytest.raises(LayerError, match="2-D"):
        compile_matrix(np.zeros(3, dtype=int), cfg)
    with pytest.raises(LayerError, match="outside"):
        compile_blocks([(0, 0, np.ones((3, 3), dtype=int))], (2, 3), cfg)
    with pytest.raises(LayerError, match="squeeze"):
        compile_matrix(np.ones((2, 2), dtype=int), cfg, squeeze="column")


def test_wrong_splice_shift_is_detected():
    """The exactness check has teeth: a program whose shift field is off by one fails."""
    cfg = preset("tiny")
    rng = np.random.default_rng(2)
    q = random_q(rng, (20, 8), cfg, 1.0)
    prog = compile_matrix(q, cfg)
    X = rng.integers(1, cfg.max_input + 1, size=(2, 20))
    assert np.array_equal(run(prog, X)[0], X @ q)
    acts = dict(prog.acts, shift=prog.acts["shift"] + (prog.acts["shift"] < cfg.max_shift))
    bad = Program(**{**prog.__dict__, "acts": acts})
    assert not np.array_equal(run(bad, X)[0], X @ q)


@pytest.mark.parametrize("reorder", [True, False])
def test_index_bits_counted_from_the_program(reorder):
    """The index bits RESULTS.md reports, recounted by hand for a 300 x 20 layer on ``default``
    (128 x 128 crossbars, OU 9 x 8, 8 planes): input index = ceil(log2 300) = 9 bits.
    Row squeeze: per physical row of each of the 3 crossbar groups (300 rows -> 3 groups of
    128, 20 outputs -> 1 column block) a 3-bit shift, a zero-row flag and, reordered, the
    input index.  Segment squeeze: per packed unit (an enabled wordline of an activation) the
    input index; per activation the class tag: output group of ceil(20 / 8) = 3 (2 bits),
    plane (3 bits), sign (1 bit)."""
    cfg = preset("default")
    q = random_q(np.random.default_rng(4), (300, 20), cfg, 0.8)
    row = compile_matrix(q, cfg, squeeze="row", reorder=reorder)
    assert row.stats["index_bits"] == 3 * 128 * (3 + 1 + (9 if reorder else 0))
    seg = compile_matrix(q, cfg, squeeze="segment", reorder=reorder)
    units = int((seg.inputs >= 0).sum())
    assert seg.stats["index_bits"] == units * 9 + seg.n_act * (2 + 3 + 1)


def _span_layer(seed=3, k=300, n=40, bits=3):
    cfg = preset("default").replace(pattern="fragment", fragment_bits=bits)
    return cfg, random_q(np.random.default_rng(seed), (k, n), cfg, 0.6)


def test_span_block_groups_hold_the_planes_of_their_fragment_rows():
    """Span squeeze, read back from the program: the activations of a row list are blocks of
    one class (output group, sign) on distinct column groups and distinct planes inside one
    fragment-bits range, and block (plane p) holds digit p of each listed fragment row;
    every non-zero fragment row (input, output group, sign) sits in exactly one list row."""
    cfg, q = _span_layer()
    p = compile_matrix(q, cfg, squeeze="span")
    a, cu = p.acts, cfg.ou_cols
    assert p.n_rowlists < p.n_act
    mags = np.stack([np.where(q > 0, q, 0), np.where(q < 0, -q, 0)])            # 2, K, N
    mags = np.pad(mags, ((0, 0), (0, 0), (0, -q.shape[1] % cu)))
    seen = set()
    for rl in range(p.n_rowlists):
        i = np.flatnonzero(a["rowlist"] == rl)
        og, sg = a["outgroup"][i], a["sign"][i]
        assert len(set(og)) == 1 and len(set(sg)) == 1
        assert len(set(a["colgroup"][i])) == len(i) == len(set(a["plane"][i]))
        assert a["plane"][i].max() - a["plane"][i].min() < cfg.fragment_bits
        rows = p.inputs[i[0]]
        for r, k in enumerate(rows):
            if k < 0:
                continue
            key = (int(k), int(og[0]), int(sg[0]))
            assert key not in seen
            seen.add(key)
            seg = mags[sg[0], k, og[0] * cu:(og[0] + 1) * cu]
            for j in i:
                cell = p.cells[a["xbar"][j], a["window"][j], a["colgroup"][j], r]
                np.testing.assert_array_equal(cell, (seg >> a["plane"][j]) & 1)
    want = {(k, g // cu, s) for s in range(2) for k, g in zip(*np.nonzero(mags[s]))}
    assert seen == want


def test_span_index_bits_counted_from_the_program():
    """Span squeeze index: one input index (ceil(log2 300) = 9 bits) per fragment row of a row
    list, one class tag per block: output group of ceil(40 / 8) = 5 (3 bits), plane (3 bits),
    sign (1 bit).  Fewer than segment squeeze, whose every plane of a row has its own index."""
    cfg, q = _span_layer()
    span = compile_matrix(q, cfg, squeeze="span")
    _, first = np.unique(span.acts["rowlist"], return_index=True)
    rows = int((span.inputs[first] >= 0).sum())
    assert span.stats["index_bits"] == rows * 9 + span.n_act * (3 + 3 + 1)
    seg = compile_matrix(q, cfg, squeeze="segment")
    assert span.stats["index_bits"] < 0.75 * seg.stats["index_bits"]


def test_span_with_one_column_group_is_segment_squeeze():
    """With a single column group per window a block group holds one plane: span squeeze
    packs exactly the blocks segment squeeze does, one row list per activation."""
    cfg = preset("tiny").replace(xbar_cols=4, ou_cols=4, tile_outputs=8)
    q = random_q(np.random.default_rng(5), (40, 9), cfg, 0.7)
    span = compile_matrix(q, cfg, squeeze="span")
    seg = compile_matrix(q, cfg, squeeze="segment")
    assert span.n_rowlists == span.n_act == seg.n_act
    assert span.n_xbars == seg.n_xbars
    X = input_vectors(np.random.default_rng(6), cfg, 3, 40)
    np.testing.assert_array_equal(run(span, X)[0], X @ q)


@pytest.mark.parametrize("short, lists, blocks", [(4, 1, 3), (5, 2, 4)])
def test_span_fills_free_rows_of_a_wider_group(short, lists, blocks):
    """Five fragment rows on planes 0..2 leave 4 of a block group's 9 rows free; fragment rows
    on plane 1 alone fit under it (one row list, blocks for planes 0, 1, 2) when there are at
    most 4 of them; 5 of them keep their own group (a second list and block)."""
    cfg = preset("default")
    q = np.zeros((5 + short, 8), dtype=np.int64)
    q[:5, 0] = 7                       # planes 0..2
    q[5:, 3] = 2                       # plane 1
    p = compile_matrix(q, cfg, squeeze="span")
    assert (p.n_rowlists, p.n_act) == (lists, blocks)
    X = input_vectors(np.random.default_rng(0), cfg, 3, q.shape[0])
    np.testing.assert_array_equal(run(p, X)[0], X @ q)


def test_span_reorder_groups_rows_by_plane_set():
    """Nine fragment rows on planes {0, 1, 2} and nine on {0, 2}, interleaved by input and by
    weight: by input (or by weight alone) every block group mixes them (3 + 3 blocks);
    reordered, each group holds one plane set and the {0, 2} group needs no block for plane 1
    (3 + 2 blocks)."""
    cfg = preset("default")
    q = np.zeros((18, 8), dtype=np.int64)
    for j in range(8):                  # weights 7, 14, .. 56 and 5, 10, .. 40
        q[2 * j, :j + 1], q[2 * j + 1, :j + 1] = 7, 5
    q[16, :2], q[17, :2] = (6, 1), (4, 1)
    for reorder, blocks in ((False, 6), (True, 5)):
        p = compile_matrix(q, cfg, squeeze="span", reorder=reorder)
        assert (p.n_rowlists, p.n_act) == (2, blocks)
        X = input_vectors(np.random.default_rng(0), cfg, 3, 18)
        np.testing.assert_array_equal(run(p, X)[0], X @ q)
