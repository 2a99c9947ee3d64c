import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from golden.config import preset
from golden.quantize import (ADMMState, PatternError, admm, admm_reconstruct, allowed_levels,
                             allowed_magnitudes, check_pattern, output_error, project_levels,
                             quantize)


def test_window3_levels_match_spec():
    cfg = preset("default")
    mags = allowed_magnitudes(cfg)
    assert len(mags) == 28 and len(allowed_levels(cfg)) == 55 and mags[-1] == 224
    expected = {0} | {1 << k for k in range(8)} | {3 << k for k in range(7)} \
        | {5 << k for k in range(6)} | {7 << k for k in range(6)}
    assert set(mags.tolist()) == expected


def test_max_ones_and_uniform_levels():
    cfg = preset("default")
    two = allowed_magnitudes(cfg.replace(pattern="max_ones", max_ones=2))
    assert all(bin(int(m)).count("1") <= 2 for m in two) and 255 not in two and 192 in two
    assert len(allowed_magnitudes(cfg.replace(pattern="uniform"))) == 256


@pytest.mark.parametrize("pattern", ["window", "max_ones", "uniform"])
def test_projection_is_nearest_level(pattern):
    cfg = preset("default").replace(pattern=pattern)
    rng = np.random.default_rng(0)
    v = rng.uniform(-300, 300, size=5000)
    q = project_levels(v, cfg)
    levels = allowed_levels(cfg)
    best = np.min(np.abs(levels[None, :] - v[:, None]), axis=1)
    assert np.allclose(np.abs(q - v), best)
    check_pattern(q, cfg)


def test_tie_rule_larger_magnitude():
    cfg = preset("default")
    # 9 lies between levels 8 and 10: a tie, goes to 10; -9 goes to -10
    assert project_levels(np.array([9.0, -9.0, 0.5, -0.5]), cfg).tolist() == [10, -10, 1, -1]
    # uniform agrees with round-half-away-from-zero
    u = preset("default").replace(pattern="uniform")
    assert project_levels(np.array([2.5, -2.5, 3.49]), u).tolist() == [3, -3, 3]


def test_check_pattern_names_the_entry():
    cfg = preset("default")
    with pytest.raises(PatternError, match=r"weight 9 at index \(0, 1\)"):
        check_pattern(np.array([[8, 9]]), cfg)
    with pytest.raises(PatternError, match="above 255"):
        check_pattern(np.array([[256]]), cfg)


def test_per_channel_scales():
    cfg = preset("default")
    w = np.stack([np.linspace(-1, 1, 50), np.linspace(-100, 100, 50)], axis=1)
    q, alpha = quantize(w, cfg, axis=1)
    assert alpha.shape == (1, 2) and alpha[0, 1] > 50 * alpha[0, 0]
    assert np.abs(q).max(axis=0).min() >= 100      # both channels use the range


def test_admm_least_squares_beats_rounding():
    """ADMM on a least-squares problem: every weight on the pattern, lower loss than
    projecting the float optimum (plain rounding)."""
    cfg = preset("default").replace(weight_bits=4, window=2)
    rng = np.random.default_rng(3)
    A = rng.normal(size=(400, 40))
    w_true = rng.laplace(size=40)
    b = A @ w_true + 0.05 * rng.normal(size=400)
    w_float = np.linalg.lstsq(A, b, rcond=None)[0]

    def loss(w):
        return float(np.sum((A @ w - b) ** 2) / len(b))

    def grad(w):
        return 2 * A.T @ (A @ w - b) / len(b)

    q_round, alpha_round = quantize(w_float, cfg)
    q_admm, alpha = admm(w_float, grad, cfg, lr=0.05, rho=0.05, iters=60, sgd_steps=20)
    check_pattern(q_admm, cfg)
    assert loss(q_admm * alpha) < loss(q_round * alpha_round)


def test_admm_state_numpy_api():
    """The Z, U updates and the penalty gradient on a hand-checked example (tiny preset, levels
    0 1 2 3 4 6 8 12 and negatives, scale 1): Z = nearest level (ties to the larger magnitude),
    U accumulates W - Z, the residual is ||W - Z||."""
    cfg = preset("tiny")
    w = np.array([0.4, 5.2, -7.0, 10.0, 13.0])
    st = ADMMState(w, cfg, rho=0.5, alpha=np.array(1.0))
    np.testing.assert_array_equal(st.z, [0, 6, -8, 12, 12])           # 5.2 -> 6, -7 -> -8 (tie)
    np.testing.assert_allclose(st.penalty_grad(w), 0.5 * (w - st.z))  # U starts at zero
    res = st.update(w)                                                  # Z = Pi(W + 0)
    np.testing.assert_allclose(st.u, w - st.z)
    assert res == pytest.approx(np.linalg.norm(w - np.array([0, 6, -8, 12, 12])))
    w2 = 0.5 * w                                      # W + U = [0.6, 1.8, -2.5, 3, 7.5]
    res = st.update(w2)
    np.testing.assert_array_equal(st.z, [1, 2, -3, 3, 8])              # -2.5 -> -3 (tie)
    np.testing.assert_allclose(st.u, [-0.4, -0.2, 0.5, 0.0, -0.5], atol=1e-12)
    assert res == pytest.approx(np.linalg.norm([-0.8, 0.6, -0.5, 2.0, -1.5]))
    np.testing.assert_array_equal(st.integers(), st.z)
    check_pattern(st.integers(), cfg)


# ---- the fragment pattern --------------------------------------------------------------------

def _fragment_ok(frag, k: int, one_sign: bool) -> bool:
    """The definition, written independently: the OR of the magnitudes, with its trailing zeros
    stripped, is below 2^k; with one_sign no two non-zero weights differ in sign."""
    orv = 0
    for v in frag:
        orv |= abs(int(v))
    while orv and orv % 2 == 0:
        orv //= 2
    mixed = any(v > 0 for v in frag) and any(v < 0 for v in frag)
    return orv < (1 << k) and not (one_sign and mixed)


def _all_fragments(cfg, width: int) -> np.ndarray:
    levels = np.arange(-cfg.max_magnitude, cfg.max_magnitude + 1)
    grid = np.stack(np.meshgrid(*[levels] * width, indexing="ij"), -1).reshape(-1, width)
    keep = [_fragment_ok(f, cfg.fragment_bits, cfg.fragment_sign) for f in grid]
    return grid[np.array(keep)]


def _fragment_cfg(k: int, one_sign: bool, cu: int):
    return preset("tiny").replace(pattern="fragment", fragment_bits=k, fragment_sign=one_sign,
                                  ou_cols=cu, xbar_cols=8, tile_outputs=8 * cu)


@settings(max_examples=60, deadline=None)
@given(k=st.integers(1, 4), one_sign=st.booleans(), cu=st.sampled_from([1, 2, 4]),
       seed=st.integers(0, 2**32 - 1), col0=st.integers(0, 5))
def test_fragment_projection_is_exact_and_idempotent(k, one_sign, cu, seed, col0):
    """Property: every fragment goes to a nearest point of the allowed set (brute force over all
    allowed fragments of a 4-bit config), the result obeys the pattern, projecting it again
    changes nothing."""
    cfg = _fragment_cfg(k, one_sign, cu)
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 9))
    v = rng.uniform(-18, 18, size=(3, n)) * (rng.random((3, n)) < 0.8)
    q = project_levels(v, cfg, col0=col0)
    check_pattern(q, cfg, col0=col0)
    assert np.array_equal(project_levels(q.astype(float), cfg, col0=col0), q)
    width = min(cu, 2)                   # brute force over widths 1 and 2 (31^2 fragments)
    allowed = _all_fragments(cfg, width)
    lead = col0 % cu
    for r in range(v.shape[0]):
        for g0 in range(-lead, n, cu):   # the global output groups that meet this array
            cols = [c for c in range(g0, g0 + cu) if 0 <= c < n]
            if len(cols) > width:
                continue
            vv = np.zeros(width)
            vv[:len(cols)] = v[r, cols]
            best = np.min(np.sum((allowed - vv) ** 2, axis=1))
            assert np.isclose(np.sum((q[r, cols] - v[r, cols]) ** 2), best), (r, cols)


def test_fragment_layout_and_col0():
    """Fragments follow the output axis and the global output groups of the layer."""
    cfg = preset("default").replace(pattern="fragment", fragment_bits=2)
    row = np.array([[1.0, 64.0, 0, 0, 0, 0, 0, 0, 1.0, 3.0]])
    q = project_levels(row, cfg)
    assert q[0, :8].tolist() == [0, 64, 0, 0, 0, 0, 0, 0] and q[0, 8:].tolist() == [1, 3]
    # shifted by col0 = 7, the 1 sits alone in the last column of the first group
    assert project_levels(row, cfg, col0=7)[0, :2].tolist() == [1, 64]
    # the PyTorch layout (outputs first) groups the same weights
    assert np.array_equal(project_levels(row.T, cfg, out_axis=0), q.T)
    sign = cfg.replace(fragment_sign=True)
    # -4 goes (one sign); e = 1 gives [6, 0, 2] and e = 2 gives [4, 0, 0], both at squared
    # error 18: the tie goes to the smaller exponent
    assert project_levels(np.array([[5.0, -4.0, 1.0]]), sign).tolist() == [[6, 0, 2]]


def test_check_pattern_names_the_fragment():
    cfg = preset("default").replace(pattern="fragment", fragment_bits=2)
    check_pattern(np.array([[12, 4, 8, 0, 0, 0, 0, 0, 1]]), cfg)
    with pytest.raises(PatternError, match=r"row 0, output columns 0\.\.7 .*spans more"):
        check_pattern(np.array([[12, 2, 0, 0, 0, 0, 0, 0]]), cfg)
    check_pattern(np.array([[12, 2]]), cfg, col0=7)          # different groups there
    with pytest.raises(PatternError, match="mixes signs"):
        check_pattern(np.array([[4, -4]]), cfg.replace(fragment_sign=True))
    with pytest.raises(PatternError, match="violates"):
        check_pattern(np.array([[5]]), cfg)                  # 101 needs three bits


@settings(max_examples=25, deadline=None)
@given(pattern=st.sampled_from(["window", "fragment"]), one_sign=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_admm_reconstruct_ends_on_pattern_and_beats_rounding(pattern, one_sign, seed):
    """Property: layer-wise ADMM returns weights on the pattern whose output error on the
    calibration inputs is no worse than plain projection (usually much better)."""
    cfg = preset("default").replace(pattern=pattern, fragment_sign=one_sign)
    rng = np.random.default_rng(seed)
    k, n = int(rng.integers(4, 40)), int(rng.integers(1, 20))
    x = rng.normal(size=(200, k)) @ rng.normal(size=(k, k))          # correlated inputs
    gram = x.T @ x / len(x)
    w = rng.laplace(size=(k, n))
    q, alpha = admm_reconstruct(w, gram, cfg, iters=15)
    check_pattern(q, cfg)
    q0 = project_levels(w / alpha, cfg)
    assert output_error(w, q * alpha, gram) <= output_error(w, q0 * alpha, gram) + 1e-12


def test_admm_reconstruct_improves_a_correlated_layer():
    cfg = preset("default").replace(pattern="fragment", fragment_bits=2, fragment_sign=True)
    rng = np.random.default_rng(7)
    x = np.maximum(rng.normal(size=(2000, 64)) @ rng.normal(size=(64, 64)), 0)
    gram = x.T @ x / len(x)
    w = rng.laplace(size=(64, 32))
    q, alpha = admm_reconstruct(w, gram, cfg)
    q0 = project_levels(w / alpha, cfg)
    assert output_error(w, q * alpha, gram) < 0.8 * output_error(w, q0 * alpha, gram)


def test_admm_reconstruct_white_inputs_is_the_projection():
    """With white calibration inputs (G = I) the output error is the weight error, whose
    minimiser is the projection itself: ADMM must return exactly that."""
    cfg = preset("default").replace(pattern="fragment", fragment_bits=2, fragment_sign=True)
    w = np.random.default_rng(1).laplace(size=(30, 16))
    q, alpha = admm_reconstruct(w, np.eye(30), cfg, iters=10)
    assert np.array_equal(q, project_levels(w / alpha, cfg))


# ---- rate-distortion projection (span packing) ------------------------------------------------

def _span_cost(q, cfg, weight, v, lam):
    """Brute-force objective of one fragment: weighted squared error + lam * planes."""
    planes = 0
    for s in (1, -1):
        m = np.where(np.sign(q) == s, np.abs(q), 0)
        orv = int(np.bitwise_or.reduce(m.astype(np.int64)))
        if orv:
            planes += orv.bit_length() - ((orv & -orv).bit_length() - 1)
    return float(np.sum(weight * (q - v) ** 2)) + lam * planes, planes


@settings(max_examples=60, deadline=None)
@given(k=st.integers(1, 4), one_sign=st.booleans(), cu=st.sampled_from([1, 2, 4]),
       seed=st.integers(0, 2**32 - 1), col0=st.integers(0, 5),
       lam=st.sampled_from([0.0, 0.3, 2.0, 9.0, 40.0]), weighted=st.booleans())
def test_project_rd_is_exact_against_brute_force(k, one_sign, cu, seed, col0, lam, weighted):
    """Property: every fragment of ``project_rd`` reaches the least error + lambda x planes over
    all allowed fragments (brute force, 4-bit config), and the result is on the pattern."""
    from golden.quantize import fragment_planes, project_rd
    cfg = _fragment_cfg(k, one_sign, cu)
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 9))
    v = rng.uniform(-18, 18, size=(3, n)) * (rng.random((3, n)) < 0.8)
    if rng.random() < 0.3:
        v = np.round(v * 2) / 2                       # half-integers: ties
    wt = rng.uniform(0.1, 3.0, size=(3, 1)) if weighted else np.ones((3, 1))
    q = project_rd(v, cfg, lam, col0=col0, weight=wt if weighted else None)
    check_pattern(q, cfg, col0=col0)
    width = min(cu, 2)
    allowed = _all_fragments(cfg, width)
    lead = col0 % cu
    total = 0
    for r in range(v.shape[0]):
        for g0 in range(-lead, n, cu):
            cols = [c for c in range(g0, g0 + cu) if 0 <= c < n]
            total += _span_cost(q[r, cols], cfg, wt[r, 0], v[r, cols], 0)[1]
            if len(cols) > width:
                continue
            vv = np.zeros(width)
            vv[:len(cols)] = v[r, cols]
            best = min(_span_cost(a, cfg, wt[r, 0], vv, lam)[0] for a in allowed)
            got = _span_cost(q[r, cols], cfg, wt[r, 0], v[r, cols], lam)[0]
            assert np.isclose(got, best), (r, cols, q[r, cols], got, best)
    assert fragment_planes(q, cfg, col0=col0) == total


@settings(max_examples=60, deadline=None)
@given(k=st.integers(1, 8), one_sign=st.booleans(), seed=st.integers(0, 2**32 - 1),
       halves=st.booleans())
def test_project_rd_at_zero_lambda_is_the_projection(k, one_sign, seed, halves):
    """lambda = 0 gives exactly today's projection, ties included (8-bit default config)."""
    from golden.quantize import project_rd
    cfg = preset("default").replace(pattern="fragment", fragment_bits=k, fragment_sign=one_sign)
    rng = np.random.default_rng(seed)
    v = rng.laplace(scale=rng.uniform(1, 60), size=(12, 19)) * (rng.random((12, 19)) < 0.9)
    if halves:
        v = np.round(v * 2) / 2
    assert np.array_equal(project_rd(v, cfg, 0.0), project_levels(v, cfg))


@settings(max_examples=30, deadline=None)
@given(k=st.integers(2, 5), one_sign=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_project_rd_planes_never_grow_with_lambda(k, one_sign, seed):
    """Property: planes (the span-packing rate) are non-increasing and error non-decreasing in
    lambda; a large lambda empties every fragment."""
    from golden.quantize import fragment_planes, project_rd
    cfg = preset("default").replace(pattern="fragment", fragment_bits=k, fragment_sign=one_sign)
    rng = np.random.default_rng(seed)
    v = rng.laplace(scale=20, size=(16, 24))
    planes, errs = [], []
    for lam in (0.0, 0.5, 2.0, 8.0, 32.0, 128.0, 1e7):
        q = project_rd(v, cfg, lam)
        planes.append(fragment_planes(q, cfg))
        errs.append(float(np.sum((q - v) ** 2)))
    assert all(b <= a for a, b in zip(planes, planes[1:])), planes
    assert all(b >= a - 1e-9 for a, b in zip(errs, errs[1:])), errs
    assert planes[-1] == 0 and planes[0] > planes[-2] > 0


def test_project_rd_trades_a_plane_for_error():
    """A hand case: [5, 4] (k = 3) needs planes 0..2 exactly; dropping the low plane ([4, 4],
    error 1) saves two planes and wins once lambda > 1/2; the weight scales the error."""
    from golden.quantize import project_rd
    cfg = preset("default").replace(pattern="fragment", fragment_bits=3)
    v = np.array([[5.0, 4.0]])
    assert project_rd(v, cfg, 0.4).tolist() == [[5, 4]]
    assert project_rd(v, cfg, 0.6).tolist() == [[4, 4]]
    assert project_rd(v, cfg, 0.6, weight=np.array([[2.0]])).tolist() == [[5, 4]]
    with pytest.raises(ValueError, match="rd_lambda"):
        project_rd(v, cfg, -1.0)
    with pytest.raises(ValueError, match="fragment"):
        project_rd(v, preset("default"), 1.0)


def test_admm_reconstruct_keeps_the_projection_when_iterates_are_worse():
    """The best-iterate tracking starts from the projection's own error: with one or two
    iterations ADMM's iterates are sometimes worse than rounding (seed 12 here), and the
    result must then be the projection, never the worse iterate."""
    cfg = preset("default").replace(pattern="fragment", fragment_bits=2)
    for seed in range(14):
        rng = np.random.default_rng(seed)
        k, n = int(rng.integers(4, 40)), int(rng.integers(1, 20))
        x = rng.normal(size=(200, k)) @ rng.normal(size=(k, k))
        gram = x.T @ x / len(x)
        w = rng.laplace(size=(k, n))
        for iters in (1, 2):
            q, alpha = admm_reconstruct(w, gram, cfg, iters=iters)
            q0 = project_levels(w / alpha, cfg)
            assert output_error(w, q * alpha, gram) <= output_error(w, q0 * alpha, gram), seed


def test_admm_state_with_rd_lambda_ends_on_pattern_with_fewer_planes():
    """ADMMState(rd_lambda=...) makes every Z-step the rate-distortion projection: the final
    integers are on the pattern and use fewer span-packing planes than plain ADMM."""
    from golden.quantize import fragment_planes, project_rd
    cfg = preset("default").replace(pattern="fragment", fragment_bits=4)
    rng = np.random.default_rng(4)
    A = rng.normal(size=(300, 24))
    w_true = rng.laplace(size=(24, 16))
    b = A @ w_true

    def grad(w):
        return 2 * A.T @ (A @ w - b) / len(A)
    planes = []
    for lam in (0.0, 20.0):
        st = ADMMState(w_true, cfg, rho=1e-2, axis=1, rd_lambda=lam)
        w = w_true.copy()
        for _ in range(10):
            for _ in range(5):
                w -= 0.05 * (grad(w) + st.penalty_grad(w))
            st.update(w)
        q = st.integers(st.finalize(w))
        check_pattern(q, cfg)
        assert np.allclose(q * st.alpha, st.finalize(w))
        assert np.array_equal(st.integers(w), project_rd(w / st.alpha, cfg, lam)
                              if lam else project_levels(w / st.alpha, cfg))
        planes.append((fragment_planes(q, cfg),
                       fragment_planes(np.rint(st.z / st.alpha).astype(np.int64), cfg)))
    assert planes[1][0] < planes[0][0] and planes[1][1] < planes[0][1]
