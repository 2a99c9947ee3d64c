"""Export a :class:`~sme.infer.graph.Graph` to ONNX and run it with onnxruntime.

Contract: :func:`to_onnx` builds an ONNX model (opset 17, NCHW, float32) of the same network
from the *unfolded* parameters kept in :attr:`Node.src`: a ``Conv`` with the original weight
followed by a ``BatchNormalization`` with the checkpoint's statistics, ``Relu`` / ``Clip(0, 6)``,
``Add``, ``MaxPool``, ``AveragePool``, ``GlobalAveragePool``, ``Flatten`` and ``Gemm``.  None of
the engine's own arithmetic (batch-norm folding, im2col, the ``(groups, K_g, N_g)`` weight layout,
NHWC) is reused, so :func:`run_onnxruntime` is an independent executor to check the ``float``
backend against.  The exported file can also be read back by :func:`sme.infer.onnx_import`
when given as ``sme infer --network FILE.onnx``.
"""

from __future__ import annotations

import numpy as np

from .graph import Graph, GraphError

__all__ = ["to_onnx", "run_onnxruntime", "OPSET"]

OPSET = 17


def to_onnx(graph: Graph):
    """The ONNX ``ModelProto`` of ``graph`` (see the module docstring)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits, nodes = [], []

    def const(name, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name))
        return name

    for i, nd in enumerate(graph.nodes):
        out = nd.output if nd.act is None else nd.output + ":pre"
        ins = list(nd.inputs)
        if nd.op == "conv":
            a, src = nd.attrs, nd.src
            conv_in = [ins[0], const(f"{nd.matmul.name}.weight", src["weight"])]
            if src.get("bias") is not None:
                conv_in.append(const(f"{nd.matmul.name}.bias", src["bias"]))
            kh, kw = a["kernel"]
            p = a["padding"]
            conv_out = out if "bn" not in src else out + ":conv"
            nodes.append(helper.make_node(
                "Conv", conv_in, [conv_out], name=nd.matmul.name, kernel_shape=[kh, kw],
                strides=[a["stride"]] * 2, pads=[p, p, p, p], group=a["groups"]))
            if "bn" in src:
                gamma, beta, mean, var, eps = src["bn"]
                pre = f"{nd.matmul.name}:bn"
                nodes.append(helper.make_node(
                    "BatchNormalization",
                    [conv_out, const(pre + ".g", gamma), const(pre + ".b", beta),
                     const(pre + ".m", mean), const(pre + ".v", var)], [out],
                    name=pre, epsilon=float(eps)))
        elif nd.op == "linear":
            nodes.append(helper.make_node(
                "Gemm", [ins[0], const(f"{nd.matmul.name}.weight", nd.src["weight"]),
                         const(f"{nd.matmul.name}.bias", nd.src["bias"])], [out],
                name=nd.matmul.name, transB=1))
        elif nd.op == "add":
            nodes.append(helper.make_node("Add", ins, [out], name=f"add{i}"))
        elif nd.op in ("maxpool", "avgpool"):
            k, s, p = nd.attrs["kernel"], nd.attrs["stride"], nd.attrs.get("padding", 0)
            nodes.append(helper.make_node(
                "MaxPool" if nd.op == "maxpool" else "AveragePool", ins, [out],
                name=f"pool{i}", kernel_shape=[k, k], strides=[s, s], pads=[p, p, p, p]))
        elif nd.op == "gap":
            nodes.append(helper.make_node("GlobalAveragePool", ins, [out], name=f"gap{i}"))
        elif nd.op == "flatten":
            nodes.append(helper.make_node("Flatten", ins, [out], name=f"flatten{i}", axis=1))
        else:
            raise GraphError(f"node {nd.output!r}: no ONNX export for layer type {nd.op!r}")
        if nd.act == "relu":
            nodes.append(helper.make_node("Relu", [out], [nd.output], name=f"relu{i}"))
        elif nd.act == "relu6":
            nodes.append(helper.make_node(
                "Clip", [out, const(f"c0.{i}", 0.0), const(f"c6.{i}", 6.0)], [nd.output],
                name=f"relu6_{i}"))
        elif nd.act is not None:
            raise GraphError(f"node {nd.output!r}: unknown activation {nd.act!r}")
    c, h, w = graph.input_shape
    g = helper.make_graph(
        nodes, graph.name,
        [helper.make_tensor_value_info(graph.input, TensorProto.FLOAT, ["N", c, h, w])],
        [helper.make_tensor_value_info(graph.output, TensorProto.FLOAT,
                                       ["N", graph.num_classes])],
        initializer=inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="sme.infer.onnx_export")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def run_onnxruntime(model, x: np.ndarray, batch: int | None = None) -> np.ndarray:
    """Outputs of ONNX ``model`` (a ``ModelProto``, its bytes or a file path) on ``x``
    (N, C, H, W), on onnxruntime's CPU provider, float32, ``batch`` images per call (all at
    once by default)."""
    import onnxruntime as ort

    data = model.SerializeToString() if hasattr(model, "SerializeToString") else model
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    step = batch or max(len(x), 1)
    outs = [sess.run(None, {name: np.ascontiguousarray(x[i:i + step], dtype=np.float32)})[0]
            for i in range(0, len(x), step)]
    return np.concatenate(outs)
