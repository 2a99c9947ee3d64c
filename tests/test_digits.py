import json

import numpy as np
import pytest

pytest.importorskip("sklearn")

from golden.config import preset  # noqa: E402
from golden.quantize import check_pattern  # noqa: E402
from sme.workloads import digits  # noqa: E402


def test_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    p = digits.init_params(rng, 2, 3)
    for k in p:
        p[k] = p[k] + rng.normal(0, 0.1, size=p[k].shape)   # non-zero biases too
    x = rng.uniform(0, 1, size=(5, 1, 8, 8))
    y = rng.integers(0, 10, size=5)
    _, g = digits.loss_and_grads(p, x, y)
    for k in p:
        for _ in range(3):
            idx = tuple(int(rng.integers(0, s)) for s in p[k].shape)
            old = p[k][idx]
            p[k][idx] = old + 1e-5
            lp, _ = digits.loss_and_grads(p, x, y)
            p[k][idx] = old - 1e-5
            lm, _ = digits.loss_and_grads(p, x, y)
            p[k][idx] = old
            assert abs((lp - lm) / 2e-5 - g[k][idx]) < 1e-6 + 1e-4 * abs(g[k][idx]), (k, idx)


def test_bit_density():
    cfg = preset("default")
    # 7 = three ones, 0 = none, -128 = one: 4 ones in 3 * 8 bits
    assert digits.bit_density([np.array([7, 0, -128])], cfg) == 4 / 24


def test_reduced_experiment(tmp_path):
    res = digits.run(preset("default"), seed=0, **digits.FAST,
                     patterns=("window", "max_ones", "uniform", "fragment-3"))
    assert res["float_acc"] > 0.8                       # chance is 0.1
    assert res["float_finetuned_acc"] > 0.8 and res["n_test"] == 450
    assert set(res["patterns"]) == {"window", "max_ones", "uniform", "fragment-3"}
    # (run checks every ADMM weight on its pattern, fragments along the output channels)
    assert res["patterns"]["fragment-3"]["admm_density"] < res["patterns"]["window"][
        "admm_density"]
    dens = {p: e["admm_density"] for p, e in res["patterns"].items()}
    # window(3) / max_ones(2) leave fewer one bits than uniform 8-bit magnitudes
    assert dens["max_ones"] < dens["uniform"] and dens["window"] < dens["uniform"]
    for e in res["patterns"].values():
        assert e["admm_acc"] > res["float_acc"] - 0.1
        assert e["rounding_acc"] > 0.5
        assert 0 < e["rounding_density"] < 1
    json.dumps(res)                                     # JSON-able


def test_admm_weights_obey_pattern_and_command(tmp_path, capsys):
    # The command writes its figures atomically; the ADMM weights are exactly on the pattern.
    cfg = preset("default").replace(pattern="max_ones", max_ones=1)
    xtr, _, ytr, _ = digits.load_data(0)
    rng = np.random.default_rng(0)
    p = digits.train(digits.init_params(rng, 4, 4), xtr[:200], ytr[:200], 1, rng)
    from golden.quantize import ADMMState
    st = {k: ADMMState(p[k], cfg, rho=1e-2, axis=0) for k in digits.WEIGHTS}
    pa = digits.train(p, xtr[:200], ytr[:200], 1, rng, admm=st)
    for k in digits.WEIGHTS:
        q = st[k].integers(st[k].finalize(pa[k]))
        check_pattern(q, cfg)
        assert np.all(np.bitwise_and(np.abs(q), np.abs(q) - 1) == 0)   # powers of two only
    assert digits.main(["--fast", "--epochs", "1", "--out", str(tmp_path)]) == 0
    out = json.loads((tmp_path / "digits.json").read_text())
    assert out["schedule"]["epochs"] == 1
    assert "Float test accuracy" in capsys.readouterr().out
    from sme.cli import main as cli_main
    assert cli_main(["digits", "--fast", "--patterns", "fragment-9"]) == 2
    assert "unknown pattern point" in capsys.readouterr().err
    assert cli_main(["digits", "--fast", "--patterns", "window-3-rd1"]) == 2
    assert "need a fragment pattern point" in capsys.readouterr().err
