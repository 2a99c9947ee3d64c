"""``sme simulate``: a compiled program on the RTL tile in Amaranth's simulator vs golden."""

import numpy as np
import pytest

from golden.compiler import compile_matrix
from golden.config import preset
from golden.program import save
from sme.cli import check_on_tile, main

from sim.stimulus import random_q


@pytest.fixture
def small(tmp_path):
    cfg = preset("tiny")
    q = random_q(np.random.default_rng(7), (8, 4), cfg, 0.6)
    prog = compile_matrix(q, cfg, squeeze="segment")
    x = np.random.default_rng(8).integers(0, 16, size=(2, 8))
    save(prog, tmp_path / "p.smeprog")
    np.save(tmp_path / "x.npy", x)
    return tmp_path, prog, x


def test_simulate_matches_golden(small, capsys):
    d, _, _ = small
    assert main(["simulate", str(d / "p.smeprog"), "--inputs", str(d / "x.npy"),
                 "--idle", "0.3"]) == 0
    assert "RTL outputs equal golden: True" in capsys.readouterr().out


def test_mismatch_is_reported(small, monkeypatch):
    _, prog, x = small
    import golden.vmm
    real = golden.vmm.run
    monkeypatch.setattr(golden.vmm, "run", lambda p, X: (real(p, X)[0] + 1, 0))
    ok, summary = check_on_tile(prog, x)
    assert not ok and "equal golden: False" in summary


def test_program_too_big_for_tile(tmp_path, capsys):
    cfg = preset("tiny")
    q = random_q(np.random.default_rng(1), (40, 8), cfg, 1.0)
    save(compile_matrix(q, cfg), tmp_path / "big.smeprog")
    np.save(tmp_path / "x.npy", np.zeros((1, 40), dtype=int))
    assert main(["simulate", str(tmp_path / "big.smeprog"), "--inputs",
                 str(tmp_path / "x.npy")]) == 2
    assert "does not fit the tile" in capsys.readouterr().err
