"""Network graphs built from state dicts, and one executor with a replaceable matmul.

A :class:`Graph` is a list of :class:`Node` in execution order over named NHWC tensors.  Every
convolution and fully connected layer is a :class:`MatmulOp` and is executed through the one
backend hook ``backend.matmul(op, cols)``; everything else (bias, ReLU/ReLU6, residual adds,
pooling, flatten) runs in float in the engine.  Batch-norm is folded into the preceding
convolution (``w' = w * g / sqrt(v + eps)``, ``b' = (b - m) * g / sqrt(v + eps) + beta``); the
raw, unfolded parameters stay in :attr:`Node.src` for exporters (:mod:`sme.infer.onnx_export`
rebuilds Conv + BatchNormalization from them, an independent check of the folding).

Builders (:data:`NETWORKS`) follow torchvision exactly, with its state-dict key names:
``mobilenet_v2`` (width 1.0, eps 1e-5, ReLU6, dropout ignored) and ``resnet50`` (v1.5: stride in
the 3 x 3 conv), plus ``digits``, the project's numpy CNN (:mod:`sme.workloads.digits` parameters
``w1, b1, w2, b2, w3, b3``).  A state dict that does not match raises :class:`GraphError` naming
the missing keys, the unexpected keys and the wrong shapes (``num_batches_tracked`` is ignored).

The backend interface (shared with :mod:`sme.infer.hardware`; change it only together):

- ``MatmulOp(name, weight, bias, kind)``: ``weight`` float ``(groups, K_g, N_g)``; for a conv
  ``K_g = (Cin/groups)*kh*kw`` in torch's weight order, ``w_g = W[g*N_g:(g+1)*N_g]
  .reshape(N_g, -1).T``; a linear layer has ``groups = 1``, ``K = in``, ``N = out``.  ``bias``
  float ``(groups*N_g,)`` or ``None``; ``kind`` is ``"conv"`` or ``"linear"``.  ``name`` is the
  torchvision layer name (the state-dict key without ``.weight``, as in
  :mod:`sme.workloads.networks` tables).
- ``backend.prepare(ops)``: called once with every op of the graph, in network order.
- ``backend.calibrate(op, cols)``: then called once per op, in network order, with the float
  im2col rows of the calibration images (the network run in float).
- ``backend.matmul(op, cols) -> y``: ``cols`` float ``(M, groups, K_g)`` (M = batch * H_out *
  W_out im2col rows, zeros in the padding), ``y`` float ``(M, groups*N_g)`` with channel
  ``g*N_g + j``, WITHOUT bias (the engine adds it).

:class:`FloatBackend` is the reference: one BLAS matmul per dense conv, an einsum for depthwise.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterable

import numpy as np

from sme.workloads.networks import MOBILENET_V2_SETTINGS, RESNET50_STAGES

__all__ = ["MatmulOp", "Node", "Graph", "GraphError", "FloatBackend", "forward", "run",
           "calibrate", "prepare", "im2col", "build", "mobilenet_v2", "resnet50", "digits",
           "NETWORKS", "random_state_dict", "BN_EPS"]

BN_EPS = 1e-5                                          # torchvision's BatchNorm2d default


class GraphError(ValueError):
    """A network or state dict that cannot be built or run; the message names the cause."""


@dataclasses.dataclass
class MatmulOp:
    name: str
    weight: np.ndarray      # float, (groups, K_g, N_g)
    bias: np.ndarray | None  # float, (groups*N_g,)
    kind: str               # "conv" | "linear"

    @property
    def groups(self) -> int:
        return self.weight.shape[0]

    @property
    def k_group(self) -> int:
        return self.weight.shape[1]

    @property
    def n_out(self) -> int:
        return self.weight.shape[0] * self.weight.shape[2]


@dataclasses.dataclass
class Node:
    """One step.  ``op`` is one of ``conv``, ``linear``, ``add``, ``maxpool``, ``avgpool``,
    ``gap`` (global average pool), ``flatten``; ``act`` (``None``, ``"relu"``, ``"relu6"``)
    is applied to the result.  ``attrs``: conv ``kernel, stride, padding, groups, cin``;
    pools ``kernel, stride, padding``.  ``src``: unfolded parameters (``weight``, ``bias``,
    ``bn = (gamma, beta, mean, var, eps)``) for exporters."""
    op: str
    inputs: tuple[str, ...]
    output: str
    matmul: MatmulOp | None = None
    act: str | None = None
    attrs: dict = dataclasses.field(default_factory=dict)
    src: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Graph:
    name: str
    nodes: list[Node]
    input_shape: tuple[int, int, int]       # (C, H, W) of one image
    output: str
    input: str = "input"
    source: dict = dataclasses.field(default_factory=dict)

    @property
    def ops(self) -> list[MatmulOp]:
        return [n.matmul for n in self.nodes if n.matmul is not None]

    @property
    def num_classes(self) -> int:
        return self.ops[-1].n_out


# ---- the float backend and the im2col -------------------------------------------------------

class FloatBackend:
    """The reference: ``cols @ w`` in ``dtype`` (float32 by default, float64 for checks)."""

    name = "float"

    def __init__(self, dtype=np.float32):
        self.dtype = np.dtype(dtype)
        self._w: dict[str, np.ndarray] = {}

    def prepare(self, ops: list[MatmulOp]) -> None:
        self._w = {op.name: np.ascontiguousarray(op.weight, dtype=self.dtype) for op in ops}

    def calibrate(self, op: MatmulOp, cols: np.ndarray) -> None:
        """Nothing to calibrate in float."""

    def matmul(self, op: MatmulOp, cols: np.ndarray) -> np.ndarray:
        w = self._w.get(op.name)
        if w is None:
            w = self._w[op.name] = np.ascontiguousarray(op.weight, dtype=self.dtype)
        cols = cols.astype(self.dtype, copy=False)
        m, g, _ = cols.shape
        if g == 1:
            return cols[:, 0, :] @ w[0]
        if w.shape[2] == 1:                                # depthwise
            return np.einsum("mgk,gk->mg", cols, w[:, :, 0], optimize=False)
        return np.einsum("mgk,gkn->mgn", cols, w).reshape(m, -1)


def im2col(x: np.ndarray, kernel: tuple[int, int], stride: int, padding: int, groups: int,
           pad_value: float = 0.0) -> tuple[np.ndarray, int, int]:
    """NHWC ``x`` -> ``(cols (N*Ho*Wo, groups, (C/groups)*kh*kw), Ho, Wo)``, K in torch's
    ``(c, kh, kw)`` order.  A 1 x 1 stride-1 convolution is a reshape (no copy)."""
    n, h, w, c = x.shape
    kh, kw = kernel
    if padding:
        x = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)),
                   constant_values=pad_value)
    ho = (h + 2 * padding - kh) // stride + 1
    wo = (w + 2 * padding - kw) // stride + 1
    if ho < 1 or wo < 1:
        raise GraphError(f"a {kh}x{kw} window does not fit a {h}x{w} input (padding {padding})")
    if kh == kw == 1:
        v = x[:, ::stride, ::stride, :][:, :ho, :wo, :]
        return v.reshape(n * ho * wo, groups, c // groups), ho, wo
    v = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))  # N,H',W',C,kh,kw
    # gather with C innermost (contiguous runs), then put K in torch's (c, kh, kw) order with a
    # row-local transpose: ~5x faster than gathering (c, kh, kw) directly
    v = np.ascontiguousarray(v[:, ::stride, ::stride][:, :ho, :wo].transpose(0, 1, 2, 4, 5, 3))
    v = v.reshape(n * ho * wo, kh * kw, c).transpose(0, 2, 1)              # (M, C, kh*kw) view
    cg = c // groups
    if cg == 1:                                                              # depthwise: a view
        return v, ho, wo
    return v.reshape(n * ho * wo, groups, cg * kh * kw), ho, wo


def _pool(x: np.ndarray, node: Node) -> np.ndarray:
    k, s, p = node.attrs["kernel"], node.attrs["stride"], node.attrs.get("padding", 0)
    n, _, _, c = x.shape
    if node.op == "maxpool":
        cols, ho, wo = im2col(x, (k, k), s, p, c, pad_value=-np.inf)
        return cols.max(axis=2).reshape(n, ho, wo, c)
    if p:
        raise GraphError("padded average pooling is not supported")
    cols, ho, wo = im2col(x, (k, k), s, 0, c)
    return cols.mean(axis=2).reshape(n, ho, wo, c)


def _activate(y: np.ndarray, act: str | None) -> np.ndarray:
    if act == "relu":
        return np.maximum(y, 0, out=y)
    if act == "relu6":
        return np.clip(y, 0, 6, out=y)
    return y


MatmulFn = Callable[[MatmulOp, np.ndarray], np.ndarray]


def forward(graph: Graph, x: np.ndarray, matmul: MatmulFn,
            observe: Callable[[MatmulOp, np.ndarray], None] | None = None,
            dtype=np.float32) -> np.ndarray:
    """Run one batch ``x`` (N, C, H, W) through ``graph``; every conv/linear calls
    ``matmul(op, cols)``.  ``observe(op, y)`` sees each layer's output (bias added, before the
    activation; NHWC or (N, out)).  Returns the network output (N, classes)."""
    x = np.asarray(x)
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(graph.input_shape):
        want = ", ".join(map(str, graph.input_shape))
        raise GraphError(f"{graph.name} expects inputs of shape (N, {want}), got {x.shape}")
    env = {graph.input: np.ascontiguousarray(x.transpose(0, 2, 3, 1), dtype=dtype)}
    uses: dict[str, int] = {}
    for node in graph.nodes:
        for i in node.inputs:
            uses[i] = uses.get(i, 0) + 1
    for node in graph.nodes:
        ins = [env[i] for i in node.inputs]
        if node.op == "conv":
            a = node.attrs
            x0 = ins[0]
            cols, ho, wo = im2col(x0, a["kernel"], a["stride"], a["padding"], a["groups"])
            y = np.asarray(matmul(node.matmul, cols), dtype=dtype)
            if node.matmul.bias is not None:
                y = y + node.matmul.bias.astype(dtype)
            y = y.reshape(x0.shape[0], ho, wo, -1)
        elif node.op == "linear":
            x0 = ins[0]
            y = np.asarray(matmul(node.matmul, x0.reshape(len(x0), 1, -1)), dtype=dtype)
            if node.matmul.bias is not None:
                y = y + node.matmul.bias.astype(dtype)
        elif node.op == "add":
            y = ins[0] + ins[1]
        elif node.op in ("maxpool", "avgpool"):
            y = _pool(ins[0], node)
        elif node.op == "gap":
            y = ins[0].mean(axis=(1, 2), keepdims=True)
        elif node.op == "flatten":
            # torch flattens NCHW: channel-major order
            y = ins[0].transpose(0, 3, 1, 2).reshape(len(ins[0]), -1)
        else:
            raise GraphError(f"node {node.output!r}: unknown layer type {node.op!r}")
        if observe is not None and node.matmul is not None:
            observe(node.matmul, y)
        env[node.output] = _activate(y, node.act)
        for i in node.inputs:                               # free what nobody reads again
            uses[i] -= 1
            if uses[i] == 0 and i != graph.output:
                env.pop(i, None)
    return env[graph.output]


def prepare(graph: Graph, backend, calib: np.ndarray | None = None) -> None:
    """``backend.prepare(ops)``, then :func:`calibrate` on ``calib`` images if given."""
    backend.prepare(graph.ops)
    if calib is not None:
        calibrate(graph, backend, calib)


def calibrate(graph: Graph, backend, x: np.ndarray) -> None:
    """Run ``x`` through the graph in float; ``backend.calibrate(op, cols)`` sees every op's
    float input rows, in network order."""
    ref = FloatBackend()

    def hook(op, cols):
        backend.calibrate(op, cols)
        return ref.matmul(op, cols)

    forward(graph, x, hook)


def run(graph: Graph, x: np.ndarray, backend=None, batch: int = 16,
        progress: Callable[[int], None] | None = None,
        observe: Callable[[MatmulOp, np.ndarray], None] | None = None) -> np.ndarray:
    """Outputs (N, classes) of ``x`` (N, C, H, W) through an already prepared ``backend``
    (default: a fresh :class:`FloatBackend`), ``batch`` images at a time; ``progress(n)`` after
    each batch with the number of images done."""
    if backend is None:
        backend = FloatBackend()
        backend.prepare(graph.ops)
    outs = []
    for i in range(0, len(x), batch):
        outs.append(forward(graph, x[i:i + batch], backend.matmul, observe))
        if progress is not None:
            progress(min(i + batch, len(x)))
    if not outs:
        return np.zeros((0, graph.num_classes), dtype=np.float32)
    return np.concatenate(outs)


# ---- building graphs from state dicts -------------------------------------------------------

class _Params:
    """Hands out state-dict entries by key and shape; collects every mismatch for one error."""

    def __init__(self, sd: dict[str, np.ndarray], network: str):
        self.sd, self.network = sd, network
        self.used: set[str] = set()
        self.missing: list[str] = []
        self.wrong: list[str] = []

    def get(self, key: str, shape: tuple[int, ...]) -> np.ndarray:
        self.used.add(key)
        if key not in self.sd:
            self.missing.append(key)
            return np.zeros(shape)
        a = np.asarray(self.sd[key])
        if tuple(a.shape) != tuple(shape):
            self.wrong.append(f"{key} has shape {tuple(a.shape)}, expected {tuple(shape)}")
            return np.zeros(shape)
        if not np.issubdtype(a.dtype, np.floating):
            self.wrong.append(f"{key} has dtype {a.dtype}, expected a float tensor")
            return np.zeros(shape)
        return a.astype(np.float64)

    def check(self) -> None:
        """Raise :class:`GraphError` listing missing keys, unexpected keys and wrong shapes."""
        extra = [k for k in self.sd if k not in self.used and
                 not k.endswith("num_batches_tracked")]
        parts = []
        for label, items in (("missing keys", self.missing), ("unexpected keys", extra),
                             ("wrong shapes", self.wrong)):
            if items:
                more = f" (+{len(items) - 6} more)" if len(items) > 6 else ""
                parts.append(f"{label}: " + ", ".join(items[:6]) + more)
        if parts:
            raise GraphError(f"the checkpoint does not match {self.network}: " + "; ".join(parts))


def _params(sd, network: str) -> _Params:
    return sd if isinstance(sd, _Params) else _Params(sd, network)


class _Builder:
    def __init__(self, params: _Params):
        self.p = params
        self.nodes: list[Node] = []
        self.count = 0

    def _name(self, hint: str) -> str:
        self.count += 1
        return f"{hint}#{self.count}"

    def conv(self, x: str, prefix: str, cin: int, cout: int, k: int, stride: int = 1,
             groups: int = 1, bn: str | None = None, act: str | None = None,
             bias: bool = False, padding: int | None = None, wkey: str | None = None,
             bkey: str | None = None, eps: float = BN_EPS) -> str:
        """A conv with weight ``wkey`` (default ``prefix + '.weight'``) and optional batch-norm
        ``bn`` (a key prefix, epsilon ``eps``), folded."""
        w = self.p.get(wkey or f"{prefix}.weight", (cout, cin // groups, k, k))
        b = self.p.get(bkey or f"{prefix}.bias", (cout,)) if bias else None
        src = {"weight": w, "bias": b}
        wf, bf = w, (b if b is not None else None)
        if bn is not None:
            gamma = self.p.get(f"{bn}.weight", (cout,))
            beta = self.p.get(f"{bn}.bias", (cout,))
            mean = self.p.get(f"{bn}.running_mean", (cout,))
            var = self.p.get(f"{bn}.running_var", (cout,))
            scale = gamma / np.sqrt(var + eps)
            wf = w * scale[:, None, None, None]
            bf = ((b if b is not None else 0.0) - mean) * scale + beta
            src["bn"] = (gamma, beta, mean, var, eps)
        ng = cout // groups
        wm = wf.reshape(groups, ng, -1).transpose(0, 2, 1)          # (groups, K_g, N_g)
        op = MatmulOp(prefix, np.ascontiguousarray(wm), bf, "conv")
        out = self._name(prefix)
        pad = (k - 1) // 2 if padding is None else padding
        self.nodes.append(Node("conv", (x,), out, op, act,
                               dict(kernel=(k, k), stride=stride, padding=pad, groups=groups,
                                    cin=cin), src))
        return out

    def linear(self, x: str, prefix: str, fin: int, fout: int, act: str | None = None,
               wkey: str | None = None, bkey: str | None = None) -> str:
        w = self.p.get(wkey or f"{prefix}.weight", (fout, fin))
        b = self.p.get(bkey or f"{prefix}.bias", (fout,))
        op = MatmulOp(prefix, np.ascontiguousarray(w.T[None]), b, "linear")
        out = self._name(prefix)
        self.nodes.append(Node("linear", (x,), out, op, act, {}, {"weight": w, "bias": b}))
        return out

    def node(self, op: str, inputs: Iterable[str], act: str | None = None, **attrs) -> str:
        out = self._name(op)
        self.nodes.append(Node(op, tuple(inputs), out, None, act, attrs))
        return out

    def graph(self, name: str, input_shape, output: str) -> Graph:
        self.p.check()
        return Graph(name, self.nodes, tuple(input_shape), output)



def mobilenet_v2(sd: dict[str, np.ndarray], num_classes: int = 1000,
                 size: int = 224) -> Graph:
    """torchvision ``mobilenet_v2`` (width 1.0)."""
    b = _Builder(_params(sd, "mobilenet_v2"))
    x = b.conv("input", "features.0.0", 3, 32, 3, 2, bn="features.0.1", act="relu6")
    cin, idx = 32, 1
    for t, c, n, s in MOBILENET_V2_SETTINGS:
        for i in range(n):
            stride = s if i == 0 else 1
            hidden, pre, j = cin * t, f"features.{idx}.conv", 0
            y = x
            if t != 1:
                y = b.conv(y, f"{pre}.0.0", cin, hidden, 1, bn=f"{pre}.0.1", act="relu6")
                j = 1
            y = b.conv(y, f"{pre}.{j}.0", hidden, hidden, 3, stride, groups=hidden,
                       bn=f"{pre}.{j}.1", act="relu6")
            y = b.conv(y, f"{pre}.{j + 1}", hidden, c, 1, bn=f"{pre}.{j + 2}")
            if stride == 1 and cin == c:
                y = b.node("add", (x, y))
            x, cin, idx = y, c, idx + 1
    x = b.conv(x, f"features.{idx}.0", cin, 1280, 1, bn=f"features.{idx}.1", act="relu6")
    x = b.node("gap", (x,))
    x = b.node("flatten", (x,))
    x = b.linear(x, "classifier.1", 1280, num_classes)
    return b.graph("mobilenet_v2", (3, size, size), x)


def resnet50(sd: dict[str, np.ndarray], num_classes: int = 1000, size: int = 224) -> Graph:
    """torchvision ``resnet50`` (v1.5: the stride sits in each block's 3 x 3 conv)."""
    b = _Builder(_params(sd, "resnet50"))
    x = b.conv("input", "conv1", 3, 64, 7, 2, bn="bn1", act="relu", padding=3)
    x = b.node("maxpool", (x,), kernel=3, stride=2, padding=1)
    cin = 64
    for stage, (planes, blocks, stride) in enumerate(RESNET50_STAGES, start=1):
        for i in range(blocks):
            s = stride if i == 0 else 1
            pre = f"layer{stage}.{i}"
            y = b.conv(x, f"{pre}.conv1", cin, planes, 1, bn=f"{pre}.bn1", act="relu")
            y = b.conv(y, f"{pre}.conv2", planes, planes, 3, s, bn=f"{pre}.bn2", act="relu")
            y = b.conv(y, f"{pre}.conv3", planes, planes * 4, 1, bn=f"{pre}.bn3")
            if i == 0:
                x = b.conv(x, f"{pre}.downsample.0", cin, planes * 4, 1, s,
                           bn=f"{pre}.downsample.1")
            x = b.node("add", (x, y), act="relu")
            cin = planes * 4
    x = b.node("gap", (x,))
    x = b.node("flatten", (x,))
    x = b.linear(x, "fc", 2048, num_classes)
    return b.graph("resnet50", (3, size, size), x)


def digits(sd: dict[str, np.ndarray]) -> Graph:
    """The project's digits CNN (:mod:`sme.workloads.digits`): conv 3x3 1->c1 (pad 1) - ReLU - 2x2
    average pool - conv 3x3 c1->c2 - ReLU - 2x2 average pool - fc (4*c2 -> 10); parameters
    ``w1, b1, w2, b2, w3, b3``; input (1, 8, 8).  Ops are named ``conv1``, ``conv2``, ``fc``."""
    raw = sd.sd if isinstance(sd, _Params) else sd
    c1 = int(np.shape(raw["w1"])[0]) if "w1" in raw else 16
    c2 = int(np.shape(raw["w2"])[0]) if "w2" in raw else 32
    b = _Builder(_params(sd, "digits"))
    x = b.conv("input", "conv1", 1, c1, 3, bias=True, act="relu", wkey="w1", bkey="b1")
    x = b.node("avgpool", (x,), kernel=2, stride=2)
    x = b.conv(x, "conv2", c1, c2, 3, bias=True, act="relu", wkey="w2", bkey="b2")
    x = b.node("avgpool", (x,), kernel=2, stride=2)
    x = b.node("flatten", (x,))
    x = b.linear(x, "fc", 4 * c2, 10, wkey="w3", bkey="b3")
    return b.graph("digits", (1, 8, 8), x)


NETWORKS: dict[str, Callable[..., Graph]] = {
    "mobilenet_v2": mobilenet_v2, "resnet50": resnet50, "digits": digits}


def build(name: str, sd: dict[str, np.ndarray]) -> Graph:
    """The graph of built-in network ``name`` with the weights of state dict ``sd``."""
    try:
        builder = NETWORKS[name]
    except KeyError:
        raise GraphError(f"unknown network {name!r} (known: {', '.join(NETWORKS)})") from None
    return builder(sd)


def random_state_dict(name: str, seed: int = 0) -> dict[str, np.ndarray]:
    """A state dict with every key and shape ``name`` needs, random values: He-normal
    weights, batch-norm statistics near identity (scale 0.5 on the last BN of a residual branch
    keeps activations bounded).  For structure checks only - never call its outputs real."""
    if name not in NETWORKS:
        raise GraphError(f"unknown network {name!r} (known: {', '.join(NETWORKS)})")
    rng = np.random.default_rng(seed)
    shapes: dict[str, tuple[int, ...]] = {}

    class _Recorder(_Params):
        def get(self, key, shape):
            shapes[key] = tuple(shape)
            return np.zeros(shape)

    NETWORKS[name](_Recorder({}, name))
    sd = {}
    for key, shape in shapes.items():
        if len(shape) >= 2:
            fan = int(np.prod(shape[1:]))
            sd[key] = rng.standard_normal(shape, dtype=np.float32) * np.float32(
                np.sqrt(2.0 / fan))
        elif key.endswith("running_var"):
            sd[key] = rng.uniform(0.5, 1.5, size=shape)
        elif key.endswith("running_mean") or key.endswith("bias") or key[0] == "b":
            sd[key] = rng.normal(0, 0.1, size=shape)
        else:                                               # BN gamma
            last = key.endswith("bn3.weight") or key.endswith("conv.3.weight")
            sd[key] = rng.uniform(0.3, 0.7, size=shape) if last else \
                rng.uniform(0.8, 1.2, size=shape)
    return {k: v.astype(np.float32) for k, v in sd.items()}
