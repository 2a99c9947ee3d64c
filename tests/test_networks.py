import numpy as np
import pytest

from golden.config import preset
from sme.workloads.networks import (Layer, isaac_dense_crossbars, layer_blocks, mobilenet_v2,
                                    network, resnet50)


def test_resnet50_shape_cross_checks():
    net = resnet50()
    assert len(net) == 54
    assert net.weights == 25_502_912
    assert round(net.macs / 1e6, 1) == 4089.2
    assert sum(1 for layer in net.layers if layer.kind == "fc") == 1
    assert net["layer4.2.conv3"].pixels == 7 * 7
    assert net["layer2.0.conv2"].stride == 2 and net["layer2.0.conv1"].stride == 1


def test_mobilenet_v2_shape_cross_checks():
    net = mobilenet_v2()
    assert len(net) == 53
    assert net.weights == 3_469_760
    assert round(net.macs / 1e6, 1) == 300.8
    depthwise = [layer for layer in net.layers if layer.groups > 1]
    assert len(depthwise) == 17
    assert all(layer.groups == layer.cin == layer.cout and layer.k_group == 9
               for layer in depthwise)


def test_isaac_dense_count_resnet50():
    cfg = preset("default")
    net = resnet50()
    assert sum(isaac_dense_crossbars(layer, cfg) for layer in net.layers) == 12_504
    assert sum(isaac_dense_crossbars(layer, cfg, sign_sets=2) for layer in net.layers) == 25_008
    # fc: ceil(2048/128) * ceil(1000*8/128) = 16 * 63
    assert isaac_dense_crossbars(net["fc"], cfg) == 1008


def test_layer_blocks_grouped_is_block_diagonal():
    layer = Layer("g", cin=4, cout=6, kh=3, kw=3, groups=2)
    rng = np.random.default_rng(0)
    w = rng.integers(-5, 6, size=layer.weight_shape)
    blocks = layer_blocks(layer, w)
    assert [(r0, c0, b.shape) for r0, c0, b in blocks] == [(0, 0, (18, 3)), (18, 3, (18, 3))]
    # The block-diagonal matrix reproduces a grouped convolution on one im2col patch.
    x = rng.integers(0, 4, size=(4, 3, 3))
    dense = np.zeros(layer.shape, dtype=np.int64)
    for r0, c0, b in blocks:
        dense[r0:r0 + b.shape[0], c0:c0 + b.shape[1]] = b
    y = x.reshape(-1) @ dense
    ref = [np.sum(w[o] * x[(o // 3) * 2:(o // 3) * 2 + 2]) for o in range(6)]
    assert y.tolist() == ref


def test_layer_blocks_rejects_wrong_shape():
    with pytest.raises(ValueError, match="layer 'g'"):
        layer_blocks(Layer("g", 4, 6, 3, 3, groups=2), np.zeros((6, 4, 3, 3)))


def test_layer_validation_and_lookup():
    with pytest.raises(ValueError, match="groups"):
        Layer("bad", cin=3, cout=6, groups=2)
    with pytest.raises(ValueError, match="unknown built-in network"):
        network("vgg")
    with pytest.raises(KeyError):
        resnet50()["nope"]


def test_isaac_conventions_for_grouped_layers():
    cfg = preset("default")
    res, mob = resnet50(), mobilenet_v2()
    assert sum(isaac_dense_crossbars(lyr, cfg, convention="tiles") for lyr in res.layers) == 12_504
    assert sum(isaac_dense_crossbars(lyr, cfg) for lyr in mob.layers) == 22_017
    assert sum(isaac_dense_crossbars(lyr, cfg, convention="tiles") for lyr in mob.layers) == 2_899
    # the report's baseline (golden.baselines) counts the same tiles
    from golden.baselines import baseline_stats
    dw = mob["features.2.conv.1.0"]                      # 96 channels, 3x3 depthwise
    blocks = layer_blocks(dw, np.ones(dw.weight_shape, dtype=np.int64))
    assert baseline_stats(blocks, dw.shape, cfg)["isaac"]["crossbars"] == \
        isaac_dense_crossbars(dw, cfg, sign_sets=2, convention="tiles") == 24
    with pytest.raises(ValueError, match="convention"):
        isaac_dense_crossbars(dw, cfg, convention="packed")


def test_with_input_size_fills_unknown_sizes_along_the_chain():
    from sme.workloads.networks import Layer, Network
    net = Network("bare", (Layer("c1", 3, 8, 3, 3, 2, out_h=0, out_w=0),
                           Layer("c2", 8, 8, 3, 3, 1, out_h=0, out_w=0),
                           Layer("c3", 8, 16, 1, 1, 2, out_h=5, out_w=5),
                           Layer("c4", 16, 16, 3, 3, 1, out_h=0, out_w=0),
                           Layer("fc", 16, 10, kind="fc")))
    assert net.unsized == ["c1", "c2", "c4"] and net.macs < net.weights * 2
    sized = net.with_input_size(32)
    assert [layer.out_h for layer in sized.layers] == [16, 16, 5, 5, 1]
    assert sized.unsized == [] and sized.layers[2] == net.layers[2]
    with pytest.raises(ValueError, match="positive integer"):
        net.with_input_size(0)
