"""sme.infer.calibration: Gram matrices of layer inputs."""

import numpy as np

from sme.workloads.digits import _im2col, init_params
from sme.infer import graph as G
from sme.infer.calibration import layer_grams


def test_grams_equal_direct_products_and_predict_output_error():
    p = init_params(np.random.default_rng(0), c1=4, c2=6)
    g = G.digits(p)
    x = np.random.default_rng(1).random((5, 1, 8, 8))
    grams = layer_grams(g, x, batch=2)                 # two batches + a remainder
    assert {k: v.shape for k, v in grams.items()} == {
        "conv1": (1, 9, 9), "conv2": (1, 36, 36), "fc": (1, 24, 24)}
    cols = _im2col(x)                                  # sme.workloads.digits' own im2col
    # the engine runs in float32: inputs are rounded to float32 before the products
    np.testing.assert_allclose(grams["conv1"][0], cols.T @ cols / len(cols), rtol=1e-6)
    # the quantity layer-wise reconstruction minimises: ||X dW||^2 / M = tr(dW^T G dW)
    w = g.ops[0].weight[0]
    dw = np.random.default_rng(2).normal(size=w.shape) * 0.01
    direct = np.sum((cols @ dw) ** 2) / len(cols)
    assert np.isclose(np.trace(dw.T @ grams["conv1"][0] @ dw), direct, rtol=1e-6)


def test_depthwise_grams_are_per_channel():
    sd = G.random_state_dict("mobilenet_v2")
    g = G.mobilenet_v2(sd, size=32)
    grams = layer_grams(g, np.random.default_rng(0).normal(size=(2, 3, 32, 32)))
    assert grams["features.1.conv.0.0"].shape == (32, 9, 9)
    assert grams["features.0.0"].shape == (1, 27, 27)
    assert np.all(np.diagonal(grams["features.2.conv.1.0"], axis1=1, axis2=2) >= 0)
