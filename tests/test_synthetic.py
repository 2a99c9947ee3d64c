import math

import numpy as np
import pytest

from sme.workloads.importers import describe_source
from sme.workloads.networks import Layer, Network
from sme.workloads.synthetic import synthetic_layer, synthetic_source, synthetic_weights

NET = Network("t", (Layer("a", 64, 128, 3, 3), Layer("dw", 32, 32, 3, 3, groups=32),
                    Layer("fc", 512, 100, kind="fc")))


@pytest.mark.parametrize("dist", ["laplace", "normal", "student_t"])
def test_scale_follows_fan_in(dist):
    w = synthetic_weights(NET, seed=3, distribution=dist)
    for layer in NET.layers:
        assert w[layer.name].shape == layer.weight_shape
    std = np.std(w["a"])
    assert abs(std - math.sqrt(2 / 576)) < 0.05 * math.sqrt(2 / 576)
    # depthwise fan-in is 9, not 32 * 9 (which would give a 5.7x smaller spread)
    assert abs(np.std(w["dw"]) - math.sqrt(2 / 9)) < 0.3 * math.sqrt(2 / 9)


def test_laplace_is_heavier_tailed_than_normal():
    layer = Layer("a", 256, 256, 3, 3)
    lap = synthetic_layer(layer, np.random.default_rng(0), "laplace")
    nor = synthetic_layer(layer, np.random.default_rng(0), "normal")

    def kurt(x):
        x = x.ravel() / x.std()
        return float(np.mean(x ** 4))
    assert kurt(nor) < 3.2 < 5.5 < kurt(lap)   # normal: 3, Laplace: 6


def test_prune_and_seed():
    w = synthetic_weights(NET, seed=1, prune=0.6)
    frac = np.mean(w["a"] == 0)
    assert abs(frac - 0.6) < 1e-3
    kept = np.abs(w["a"][w["a"] != 0])
    assert kept.min() > 0
    again = synthetic_weights(NET, seed=1, prune=0.6)
    other = synthetic_weights(NET, seed=2, prune=0.6)
    assert np.array_equal(w["fc"], again["fc"])
    assert not np.array_equal(w["fc"], other["fc"])
    # per-layer streams: a layer does not depend on the others being generated
    assert np.array_equal(synthetic_weights(Network("s", NET.layers[:1]), seed=1, prune=0.6)["a"],
                          w["a"])


def test_validation_and_source():
    with pytest.raises(ValueError, match="prune"):
        synthetic_weights(NET, prune=1.0)
    with pytest.raises(ValueError, match="distribution"):
        synthetic_weights(NET, distribution="uniform")
    text = describe_source(synthetic_source(seed=5, prune=0.5))
    assert "SYNTHETIC" in text and "laplace" in text and "seed=5" in text and "prune=0.5" in text
