"""Read an ONNX model into a :class:`~sme.infer.graph.Graph` (``sme infer --network FILE``).

Contract: :func:`from_onnx` accepts float CNN classifiers made of ``Conv`` (2-D, square kernel,
equal strides, symmetric padding, groups), ``BatchNormalization`` directly after a ``Conv`` that
feeds nothing else (folded into it), ``Relu``, ``Clip`` with bounds (0, 6) (ReLU6) - both fused
into the node that produces their input -, ``Add``, ``MaxPool``, ``AveragePool`` (unpadded),
``GlobalAveragePool``, ``Flatten`` (axis 1) and ``Gemm`` (alpha = beta = 1, weight and bias
constant), with ``Identity`` and ``Dropout`` passed through.  The graph needs one input of static
shape (N, C, H, W) and one output.  Anything else raises :class:`~sme.infer.graph.GraphError`
naming the node and its operator ("unknown layer type"), before any computation.  The models
written by :func:`sme.infer.onnx_export.to_onnx` read back to the same network.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .graph import BN_EPS, Graph, GraphError, _Builder, _Params

__all__ = ["from_onnx"]

_PASS = ("Identity", "Dropout")


def from_onnx(path: str | os.PathLike) -> Graph:
    """The graph of the ONNX model at ``path`` (see the module docstring)."""
    import onnx

    from sme.workloads.importers import read_onnx

    model, consts = read_onnx(path)
    g = model.graph
    inputs = [i for i in g.input if i.name not in consts]
    if len(inputs) != 1 or len(g.output) != 1:
        raise GraphError(f"{path}: need exactly one data input and one output, found "
                         f"{len(inputs)} and {len(g.output)}")
    dims = [d.dim_value for d in inputs[0].type.tensor_type.shape.dim]
    if len(dims) != 4 or not all(dims[1:]):
        raise GraphError(f"{path}: input {inputs[0].name!r} must have a static shape "
                         f"(N, C, H, W), not {dims}")
    consumers: dict[str, int] = {}
    for node in g.node:
        for i in node.input:
            consumers[i] = consumers.get(i, 0) + 1

    sd: dict[str, np.ndarray] = {}
    b = _Builder(_Params(sd, Path(path).stem))
    names = {inputs[0].name: "input"}                      # ONNX tensor -> graph tensor
    channels = {inputs[0].name: dims[1]}
    nodes = [n for n in g.node if n.op_type != "Constant"]
    skip: set[int] = set()

    for idx, node in enumerate(nodes):
        if idx in skip:
            continue
        where = f"{path}: node {node.name or node.output[0]!r} ({node.op_type})"
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        data_in = [i for i in node.input if i and i not in consts]
        try:
            src = [names[i] for i in data_in]
        except KeyError as e:
            raise GraphError(f"{where}: input {e.args[0]!r} is not produced by a supported "
                             "node") from None
        out = node.output[0]
        if node.op_type in _PASS:
            names[out], channels[out] = src[0], channels.get(data_in[0])
            continue
        if node.op_type == "Conv":
            w = consts.get(node.input[1]) if len(node.input) > 1 else None
            if w is None or w.ndim != 4:
                raise GraphError(f"{where}: weight must be a constant 4-D tensor")
            cout, cg, kh, kw = w.shape
            group = int(attrs.get("group", 1))
            strides = list(attrs.get("strides", [1, 1]))
            pads = list(attrs.get("pads", [0, 0, 0, 0]))
            if kh != kw or len(set(strides)) != 1 or len(set(pads)) != 1 or \
                    attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET") or \
                    any(d != 1 for d in attrs.get("dilations", [1, 1])):
                raise GraphError(f"{where}: only square kernels, equal strides, symmetric "
                                 "padding and no dilation are supported")
            name = node.name or out
            sd[f"{name}.weight"] = w
            has_bias = len(node.input) > 2 and bool(node.input[2])
            if has_bias:
                sd[f"{name}.bias"] = consts[node.input[2]]
            bn, eps = None, BN_EPS
            nxt = _next(nodes, idx, out)
            if nxt is not None and nodes[nxt].op_type == "BatchNormalization" and \
                    consumers.get(out) == 1:
                bnode = nodes[nxt]
                bn = f"{name}:bn"
                for key, inp in zip(("weight", "bias", "running_mean", "running_var"),
                                    bnode.input[1:5]):
                    if inp not in consts:
                        raise GraphError(f"{where}: batch-norm parameters must be constant")
                    sd[f"{bn}.{key}"] = consts[inp]
                eps = float(next((onnx.helper.get_attribute_value(a) for a in bnode.attribute
                                  if a.name == "epsilon"), 1e-5))
                skip.add(nxt)
                out = bnode.output[0]
            act, out, fused = _activation(nodes, consts, out, consumers, onnx)
            skip.update(fused)
            y = b.conv(src[0], name, cg * group, cout, kh, strides[0], groups=group, bn=bn,
                       act=act, bias=has_bias, padding=pads[0], eps=eps)
            names[out], channels[out] = y, cout
        elif node.op_type == "Gemm":
            w = consts.get(node.input[1])
            bias = consts.get(node.input[2]) if len(node.input) > 2 else None
            if w is None or w.ndim != 2 or bias is None or attrs.get("transA", 0) or \
                    attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
                raise GraphError(f"{where}: need constant weight and bias, alpha = beta = 1, "
                                 "no transA")
            w = w if attrs.get("transB", 0) else w.T                     # (out, in)
            name = node.name or out
            sd[f"{name}.weight"], sd[f"{name}.bias"] = w, np.ravel(bias)
            act, out, fused = _activation(nodes, consts, out, consumers, onnx)
            skip.update(fused)
            names[out] = b.linear(src[0], name, w.shape[1], w.shape[0], act=act)
        elif node.op_type == "Add" and len(src) == 2:
            act, out, fused = _activation(nodes, consts, out, consumers, onnx)
            skip.update(fused)
            names[out] = b.node("add", src, act=act)
            channels[out] = channels.get(data_in[0])
        elif node.op_type in ("MaxPool", "AveragePool"):
            ks = list(attrs.get("kernel_shape", []))
            st = list(attrs.get("strides", ks))
            pads = list(attrs.get("pads", [0, 0, 0, 0]))
            if len(ks) != 2 or len(set(ks)) != 1 or len(set(st)) != 1 or len(set(pads)) != 1 \
                    or (node.op_type == "AveragePool" and pads[0]) or attrs.get("ceil_mode"):
                raise GraphError(f"{where}: only square, equal-stride, symmetric pooling "
                                 "(unpadded for AveragePool, no ceil_mode) is supported")
            op = "maxpool" if node.op_type == "MaxPool" else "avgpool"
            names[out] = b.node(op, src, kernel=ks[0], stride=st[0], padding=pads[0])
            channels[out] = channels.get(data_in[0])
        elif node.op_type == "GlobalAveragePool":
            names[out] = b.node("gap", src)
            channels[out] = channels.get(data_in[0])
        elif node.op_type in ("Relu", "Clip"):
            raise GraphError(f"{where}: an activation is supported only as the sole reader of "
                             "a Conv, Gemm or Add output")
        elif node.op_type == "Flatten" and attrs.get("axis", 1) == 1:
            names[out] = b.node("flatten", src)
        else:
            raise GraphError(f"{where}: unknown layer type {node.op_type!r} (supported: Conv, "
                             "BatchNormalization after Conv, Relu, Clip(0, 6), Add, MaxPool, "
                             "AveragePool, GlobalAveragePool, Flatten, Gemm)")
    result = g.output[0].name
    if result not in names:
        raise GraphError(f"{path}: output {result!r} is not produced by a supported node")
    graph = b.graph(Path(path).stem, tuple(dims[1:]), names[result])
    if not graph.ops:
        raise GraphError(f"{path}: no Conv or Gemm layer")
    return graph


def _next(nodes, idx: int, tensor: str) -> int | None:
    """Index of the first node after ``idx`` that reads ``tensor``."""
    for j in range(idx + 1, len(nodes)):
        if tensor in nodes[j].input:
            return j
    return None


def _activation(nodes, consts, out: str, consumers, onnx):
    """A Relu / Clip(0, 6) that is the only reader of ``out``: (act, its output, {index})."""
    j = _next(nodes, _producer(nodes, out), out)
    if j is None or consumers.get(out) != 1:
        return None, out, set()
    node = nodes[j]
    if node.op_type == "Relu":
        return "relu", node.output[0], {j}
    if node.op_type == "Clip":
        bounds = [float(np.asarray(consts[i])) if i in consts else None
                  for i in list(node.input[1:3])]
        for a in node.attribute:                            # opset < 11 keeps them as attributes
            if a.name in ("min", "max"):
                bounds.append(onnx.helper.get_attribute_value(a))
        if sorted(v for v in bounds if v is not None) == [0.0, 6.0]:
            return "relu6", node.output[0], {j}
        raise GraphError(f"node {node.name or node.output[0]!r} (Clip): only Clip(0, 6) "
                         f"(ReLU6) is supported, not bounds {bounds}")
    return None, out, set()


def _producer(nodes, tensor: str) -> int:
    """Index of the node that writes ``tensor``."""
    for j, n in enumerate(nodes):
        if tensor in n.output:
            return j
    return -1
