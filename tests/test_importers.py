import hashlib

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from sme.workloads.importers import (ImportError_, describe_source, load,  # noqa: E402
                                     load_neurosim_csv, load_npz, load_onnx, load_state_dict,
                                     save_npz)
from sme.workloads.networks import Layer, Network, layer_blocks, resnet50  # noqa: E402


def _init(name, a):
    return numpy_helper.from_array(np.asarray(a, dtype=np.float32), name)


def _save(model, path):
    onnx.save(model, str(path))
    return path


def _small_model(rng):
    """conv 3->8 (3x3) -> grouped conv 8->8 (groups 4, stride 2) -> depthwise 8 -> pool ->
    Gemm 8->6 (transB) -> MatMul 6->4."""
    ws = {"w1": rng.normal(size=(8, 3, 3, 3)), "w2": rng.normal(size=(8, 2, 3, 3)),
          "w3": rng.normal(size=(8, 1, 3, 3)), "w4": rng.normal(size=(6, 8)),
          "w5": rng.normal(size=(6, 4))}
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a"], ["a2"], name="relu1"),
        helper.make_node("Conv", ["a2", "w2"], ["b"], name="gconv", group=4, strides=[2, 2],
                         pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["b", "w3"], ["c"], name="dw", group=8, pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["c"], ["d"], name="gap"),
        helper.make_node("Flatten", ["d"], ["e"], name="flat"),
        helper.make_node("Gemm", ["e", "w4"], ["f"], name="fc1", transB=1),
        helper.make_node("MatMul", ["f", "w5"], ["y"], name="fc2"),
    ]
    graph = helper.make_graph(
        nodes, "small", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [_init(k, v) for k, v in ws.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), ws


def test_onnx_small_model_with_grouped_conv(tmp_path):
    model, ws = _small_model(np.random.default_rng(1))
    path = _save(model, tmp_path / "small.onnx")
    imp = load_onnx(path)
    net = imp.network
    assert [layer.name for layer in net.layers] == ["conv1", "gconv", "dw", "fc1", "fc2"]
    g = net["gconv"]
    assert (g.cin, g.cout, g.groups, g.stride, g.out_h, g.out_w) == (8, 8, 4, 2, 4, 4)
    assert net["dw"].groups == 8 and net["dw"].k_group == 9
    assert net["conv1"].pixels == 64
    assert (net["fc1"].cin, net["fc1"].cout, net["fc2"].cin, net["fc2"].cout) == (8, 6, 6, 4)
    # weights in PyTorch layout: Gemm transB keeps (N, K), MatMul (K, N) is transposed
    np.testing.assert_allclose(imp.weights["fc1"], ws["w4"], rtol=1e-6)
    np.testing.assert_allclose(imp.weights["fc2"], ws["w5"].T, rtol=1e-6)
    np.testing.assert_allclose(imp.weights["gconv"], ws["w2"], rtol=1e-6)
    blocks = layer_blocks(g, imp.weights["gconv"])
    assert len(blocks) == 4 and blocks[1][:2] == (18, 2) and blocks[1][2].shape == (18, 2)
    assert imp.source["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert "small.onnx" in describe_source(imp.source)


def _single(node, inits, shape=(1, 3, 8, 8)):
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("node,inits,match", [
    (helper.make_node("Conv", ["x", "w"], ["y"], name="badgroup", group=2),
     [_init("w", np.ones((3, 3, 1, 1)))], "node 'badgroup' .*group=2"),
    (helper.make_node("Conv", ["x", "w"], ["y"], name="runtime_w"), [],
     "node 'runtime_w' .*not an initializer"),
    (helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="deconv"),
     [_init("w", np.ones((3, 2, 3, 3)))], "node 'deconv' \\(ConvTranspose\\)"),
    (helper.make_node("MatMul", ["x", "x"], ["y"], name="attn"), [],
     "node 'attn' .*neither operand"),
    (helper.make_node("Conv", ["x", "w"], ["y"], name="conv3d"),
     [_init("w", np.ones((2, 3, 1, 1, 1)))], "node 'conv3d' .*2-D"),
    (helper.make_node("Conv", ["x", "w"], ["y"], name="wrongcin"),
     [_init("w", np.ones((2, 4, 1, 1)))], "node 'wrongcin' .*channels"),
])
def test_onnx_errors_name_the_node(tmp_path, node, inits, match):
    path = _save(_single(node, inits), tmp_path / "bad.onnx")
    with pytest.raises(ImportError_, match=match):
        load_onnx(path)


def test_onnx_garbage_and_empty(tmp_path):
    bad = tmp_path / "garbage.onnx"
    bad.write_bytes(b"\x00\x01 definitely not protobuf \xff" * 3)
    with pytest.raises(ImportError_, match="garbage.onnx"):
        load_onnx(bad)
    relu = _single(helper.make_node("Relu", ["x"], ["y"], name="r"), [])
    with pytest.raises(ImportError_, match="no Conv, Gemm or MatMul"):
        load_onnx(_save(relu, tmp_path / "relu.onnx"))


def test_npz_roundtrip_without_table(tmp_path):
    net = Network("t", (Layer("a", 4, 8, 3, 3, 1, 1, 6, 6), Layer("dw", 8, 8, 3, 3, 2, 8, 3, 3),
                        Layer("fc", 8, 5, kind="fc")))
    rng = np.random.default_rng(0)
    ws = {layer.name: rng.normal(size=layer.weight_shape) for layer in net.layers}
    save_npz(tmp_path / "w.npz", net, ws)
    imp = load(tmp_path / "w.npz")
    assert imp.network.layers == net.layers
    for k in ws:
        np.testing.assert_array_equal(imp.weights[k], ws[k])
    assert imp.source["format"] == ".npz"


def test_npz_against_table(tmp_path):
    net = resnet50().subset(2)
    ws = {f"{layer.name}.weight": np.zeros(layer.weight_shape) for layer in net.layers}
    np.savez(tmp_path / "sd.npz", **ws, **{"bn1.weight": np.ones(64)})
    imp = load_npz(tmp_path / "sd.npz", net)
    assert list(imp.weights) == ["conv1", "layer1.0.conv1"]
    np.savez(tmp_path / "short.npz", **{"conv1": np.zeros((64, 3, 7, 7))})
    with pytest.raises(ImportError_, match="layer1.0.conv1"):
        load_npz(tmp_path / "short.npz", net)
    np.savez(tmp_path / "wrong.npz", **{"conv1": np.zeros((64, 3, 3, 3)),
                                       "layer1.0.conv1": np.zeros((64, 64, 1, 1))})
    with pytest.raises(ImportError_, match="'conv1' has shape"):
        load_npz(tmp_path / "wrong.npz", net)


def test_state_dict_without_torch(tmp_path, mobilenet_v2_checkpoint):
    # torchvision's real (legacy-format) checkpoint against the MobileNet-v2 shape table
    imp = load(mobilenet_v2_checkpoint, "mobilenet_v2")
    assert len(imp.weights) == 53 and imp.source["format"] == "PyTorch state dict"
    assert imp.weights["features.1.conv.0.0"].shape == (32, 1, 3, 3)
    from safetensors.numpy import save_file
    save_file({"conv.weight": np.ones((4, 2, 3, 3), np.float32),
               "bn.weight": np.ones(4, np.float32), "fc.weight": np.ones((3, 4), np.float32)},
              str(tmp_path / "m.safetensors"))
    imp = load(tmp_path / "m.safetensors")
    assert [layer.name for layer in imp.network.layers] == ["conv", "fc"]
    (tmp_path / "x.pt").write_bytes(b"\x80\x02cos\nsystem\n(Vtouch pwned\ntR.")
    with pytest.raises(ImportError_, match="refusing to load global os.system"):
        load_state_dict(tmp_path / "x.pt")


def test_neurosim_csv(tmp_path):
    p = tmp_path / "NetWork_small.csv"
    p.write_text("IFM_H,IFM_W,Cin,kH,kW,Cout,pool,stride\n"
                 "32,32,3,3,3,128,0,1\n16,16,128,3,3,128,1,2\n8,8,128,3,3,128,0,1,128\n"
                 "1,1,8192,1,1,10,0,1\n")
    net = load_neurosim_csv(p)
    assert len(net) == 4
    assert (net.layers[0].out_h, net.layers[1].out_h) == (32, 8)
    assert net.layers[2].groups == 128 and net.layers[3].kind == "fc"
    p.write_text("32,32,3,3,3,128,0\n")
    with pytest.raises(ImportError_, match=":1: expected 8 fields"):
        load_neurosim_csv(p)


def test_load_dispatch_errors(tmp_path):
    with pytest.raises(ImportError_, match="no such file"):
        load(tmp_path / "nope.onnx")
    (tmp_path / "m.h5").write_bytes(b"x")
    with pytest.raises(ImportError_, match="unknown model format"):
        load(tmp_path / "m.h5")


def test_onnx_mapped_onto_a_table(tmp_path):
    model, ws = _small_model(np.random.default_rng(2))
    path = _save(model, tmp_path / "small.onnx")
    plain = load_onnx(path).network
    renamed = Network("table", tuple(Layer(f"t{i}", lyr.cin, lyr.cout, lyr.kh, lyr.kw,
                                           lyr.stride, lyr.groups, lyr.out_h, lyr.out_w,
                                           lyr.kind)
                                     for i, lyr in enumerate(plain.layers)))
    imp = load(path, network=renamed)
    assert list(imp.weights) == ["t0", "t1", "t2", "t3", "t4"]
    np.testing.assert_allclose(imp.weights["t1"], ws["w2"], rtol=1e-6)
    with pytest.raises(ImportError_, match="do not match"):
        load(path, network=Network("short", renamed.layers[:3]))
