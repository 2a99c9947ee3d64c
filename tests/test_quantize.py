import numpy as np
import pytest

from golden.config import preset
from golden.quantize import (ADMMState, PatternError, admm, allowed_levels, allowed_magnitudes,
                             check_pattern, project_levels, quantize)


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
    cfg = preset("default")
    st = ADMMState(np.linspace(-1, 1, 11), cfg)
    res = st.update(np.linspace(-1, 1, 11))
    assert res >= 0 and st.penalty_grad(np.zeros(11)).shape == (11,)
    check_pattern(st.integers(), cfg)
