"""sme.infer.graph: torchvision structures, the float executor and its matmul hook, checked
against onnxruntime (an independent executor) and sme.workloads.digits."""

import numpy as np
import pytest

from sme.workloads import networks as tables
from sme.workloads.digits import forward as digits_forward, init_params
from sme.infer import graph as G
from sme.infer.onnx_export import run_onnxruntime, to_onnx
from sme.workloads import images


@pytest.fixture(scope="module")
def mobilenet(mobilenet_v2_state_dict):
    return G.mobilenet_v2(mobilenet_v2_state_dict)


@pytest.fixture(scope="module")
def few_images():
    return images.bundled(4)


def test_mobilenet_v2_real_weights_agree_with_onnxruntime(mobilenet, few_images):
    ours = G.run(mobilenet, few_images)
    ref = run_onnxruntime(to_onnx(mobilenet), few_images)
    scale = np.abs(ref).max()
    assert np.abs(ours - ref).max() <= 1e-5 * scale
    assert (ours.argmax(1) == ref.argmax(1)).all()


def test_mobilenet_v2_real_weights_recognise_photographs(mobilenet):
    from sme.workloads.images import load_source, preprocess
    x = np.stack([preprocess(load_source(n)[:300, 75:375]) for n in ("chelsea", "coffee")])
    top = G.run(mobilenet, x).argmax(1)
    assert 281 <= top[0] <= 285                        # ImageNet's domestic cat classes
    assert top[1] in (504, 967, 968)                   # coffee mug, espresso, cup


def test_resnet50_random_weights_agree_with_onnxruntime():
    sd = G.random_state_dict("resnet50", seed=3)
    g = G.resnet50(sd, size=32)                       # 32 x 32: every stage still runs
    x = np.random.default_rng(0).normal(size=(2, 3, 32, 32)).astype(np.float32)
    ours = G.run(g, x)
    ref = run_onnxruntime(to_onnx(g), x)
    assert np.abs(ours - ref).max() <= 1e-4 * np.abs(ref).max()


def test_digits_equals_the_project_numpy_cnn():
    p = init_params(np.random.default_rng(1), c1=8, c2=16)
    p = {k: v + (0.1 if k[0] == "b" else 0) for k, v in p.items()}     # non-zero biases
    x = np.random.default_rng(2).random((7, 1, 8, 8))
    want = digits_forward(p, x)
    be = G.FloatBackend(np.float64)
    g = G.digits(p)
    be.prepare(g.ops)
    got = G.run(g, x, be)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(run_onnxruntime(to_onnx(g), x), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["mobilenet_v2", "resnet50"])
def test_ops_match_the_project_shape_tables(name):
    g = G.build(name, G.random_state_dict(name))
    table = tables.network(name)
    assert [op.name for op in g.ops] == [layer.name for layer in table.layers]
    for op, layer in zip(g.ops, table.layers):
        assert op.groups == layer.groups
        assert op.weight.shape == (layer.groups, layer.k_group, layer.n_group)
        assert op.kind == ("linear" if layer.kind == "fc" else "conv")


def test_checkpoint_mismatch_names_keys_and_shapes():
    sd = G.random_state_dict("mobilenet_v2")
    sd.pop("features.3.conv.1.0.weight")
    sd["features.5.conv.2.weight"] = np.zeros((32, 192, 3, 3), np.float32)
    sd["head.extra.weight"] = np.zeros(3, np.float32)
    with pytest.raises(G.GraphError) as e:
        G.mobilenet_v2(sd)
    msg = str(e.value)
    assert "missing keys: features.3.conv.1.0.weight" in msg
    assert "unexpected keys: head.extra.weight" in msg
    assert "features.5.conv.2.weight has shape (32, 192, 3, 3), expected (32, 192, 1, 1)" in msg
    with pytest.raises(G.GraphError, match="does not match resnet50"):
        G.resnet50(G.random_state_dict("mobilenet_v2"))


def _direct_conv(x, w, stride, pad, groups):
    """NCHW convolution by explicit loops (an independent reference for grouped convs)."""
    n, c, h, wd = x.shape
    cout, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho, wo = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    out = np.zeros((n, cout, ho, wo))
    ng = cout // groups
    for o in range(cout):
        g = o // ng
        for i in range(ho):
            for j in range(wo):
                patch = xp[:, g * cg:(g + 1) * cg, i * stride:i * stride + kh,
                           j * stride:j * stride + kw]
                out[:, o, i, j] = np.sum(patch * w[o], axis=(1, 2, 3))
    return out


@pytest.mark.parametrize("groups,stride,k", [(1, 1, 3), (2, 2, 3), (4, 1, 1), (6, 2, 3)])
def test_grouped_strided_conv_matches_direct_loops(groups, stride, k):
    rng = np.random.default_rng(groups * 10 + stride)
    cin, cout = 6 if groups != 4 else 8, 12
    w = rng.normal(size=(cout, cin // groups, k, k))
    b = G._Builder(G._Params({"c.weight": w}, "t"))
    out = b.conv("input", "c", cin, cout, k, stride, groups=groups)
    g = b.graph("t", (cin, 7, 7), out)
    x = rng.normal(size=(2, cin, 7, 7))
    be = G.FloatBackend(np.float64)
    be.prepare(g.ops)
    got = G.forward(g, x, be.matmul, dtype=np.float64)
    want = _direct_conv(x, w, stride, (k - 1) // 2, groups).transpose(0, 2, 3, 1)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


class _Recording:
    """A backend that checks the interface's shapes and records the call order."""

    def __init__(self):
        self.calls = []
        self.ref = G.FloatBackend()

    def prepare(self, ops):
        self.calls.append(("prepare", [op.name for op in ops]))
        self.ref.prepare(ops)

    def calibrate(self, op, cols):
        assert cols.ndim == 3 and cols.shape[1:] == op.weight.shape[:2]
        self.calls.append(("calibrate", op.name))

    def matmul(self, op, cols):
        assert cols.ndim == 3 and cols.shape[1:] == op.weight.shape[:2]
        self.calls.append(("matmul", op.name))
        return self.ref.matmul(op, cols) * 2.0          # visible: every layer goes through here


def test_every_layer_goes_through_the_backend_hook():
    p = init_params(np.random.default_rng(1), c1=4, c2=8)
    g = G.digits(p)
    be = _Recording()
    x = np.random.default_rng(3).random((3, 1, 8, 8))
    G.prepare(g, be, calib=x[:2])
    names = [op.name for op in g.ops]
    assert be.calls[0] == ("prepare", names)
    assert [c[1] for c in be.calls[1:]] == names and all(c[0] == "calibrate"
                                                         for c in be.calls[1:])
    be.calls.clear()
    out = G.run(g, x, be, batch=2)
    assert [c[1] for c in be.calls] == names * 2
    # the doubled matmuls change the output: nothing bypasses the hook
    assert not np.allclose(out, G.run(g, x))


def test_bad_input_shape_and_unknown_layer_type():
    g = G.digits(init_params(np.random.default_rng(1), c1=4, c2=8))
    with pytest.raises(G.GraphError, match=r"expects inputs of shape \(N, 1, 8, 8\)"):
        G.run(g, np.zeros((1, 1, 9, 9)))
    g.nodes[1].op = "lstm"
    with pytest.raises(G.GraphError, match="unknown layer type 'lstm'"):
        G.run(g, np.zeros((1, 1, 8, 8)))


@pytest.mark.parametrize("name", ["mobilenet_v2", "resnet50"])
def test_onnx_export_reads_back_to_the_same_network(tmp_path, name):
    import onnx
    from sme.infer.onnx_import import from_onnx
    g = G.NETWORKS[name](G.random_state_dict(name, seed=1), size=32)
    onnx.save(to_onnx(g), str(tmp_path / "m.onnx"))
    back = from_onnx(tmp_path / "m.onnx")
    assert [op.name for op in back.ops] == [op.name for op in g.ops]
    assert [n.op for n in back.nodes] == [n.op for n in g.nodes]
    assert [n.act for n in back.nodes] == [n.act for n in g.nodes]
    x = np.random.default_rng(0).normal(size=(2, 3, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(G.run(back, x), G.run(g, x), rtol=1e-4, atol=1e-4)


def test_onnx_clip_other_than_relu6_is_refused(tmp_path):
    import onnx
    from onnx import numpy_helper
    from sme.infer.onnx_import import from_onnx
    m = to_onnx(G.mobilenet_v2(G.random_state_dict("mobilenet_v2"), size=32))
    for init in m.graph.initializer:
        if init.name.startswith("c6."):
            init.CopyFrom(numpy_helper.from_array(np.array(4.0, np.float32), init.name))
            break
    onnx.save(m, str(tmp_path / "m.onnx"))
    with pytest.raises(G.GraphError, match=r"only Clip\(0, 6\)"):
        from_onnx(tmp_path / "m.onnx")
