"""sme.infer.fidelity: the proxy metrics on hand-made logits, per-layer SNR on a perturbed
backend."""

import math

import numpy as np
import pytest

from sme.workloads.digits import init_params
from sme.infer import fidelity as F
from sme.infer import graph as G


def test_metrics_on_known_logits():
    ref = np.array([[5.0, 4, 3, 2, 1, 0], [0, 1, 2, 3, 4, 5]])
    same = ref.copy()
    assert F.top1_agreement(ref, same) == 1.0
    assert F.top5_overlap(ref, same) == 1.0
    assert F.mean_kl(ref, same) == pytest.approx(0.0, abs=1e-12)
    other = np.array([[4.0, 5, 3, 2, 1, 0], [5, 1, 2, 3, 4, 0]])
    assert F.top1_agreement(ref, other) == 0.0
    # image 0: same top-5 set; image 1: top-5 {1..5} vs {0, 1, 2, 3, 4} share 4
    assert F.top5_overlap(ref, other) == pytest.approx((1.0 + 0.8) / 2)
    p, q = F.softmax(ref[:1]), F.softmax(other[:1])
    assert F.mean_kl(ref[:1], other[:1]) == pytest.approx(float(np.sum(p * np.log(p / q))))
    assert F.accuracy(ref, [0, 0]) == 0.5


class _Noisy(G.FloatBackend):
    def matmul(self, op, cols):
        y = super().matmul(op, cols)
        return y * 1.01 if op.name == "conv2" else y


def test_layer_snr_locates_the_perturbed_layer():
    g = G.digits(init_params(np.random.default_rng(0), c1=4, c2=8))
    be = _Noisy()
    be.prepare(g.ops)
    x = np.random.default_rng(1).random((5, 1, 8, 8))
    ref, test, snr = F.compare(g, x, be, batch=2)
    db = snr.db()
    assert db["conv1"] == math.inf
    assert 35 < db["conv2"] < 45                      # 1 % error = 40 dB (bias not scaled)
    assert db["fc"] < math.inf
    np.testing.assert_allclose(ref, G.run(g, x), rtol=1e-5)
    assert F.summarize(ref, test)["images"] == 5
